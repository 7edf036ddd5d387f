"""Chinese and English: the zh-hans catalogue is complete (and covers every string the templates mark), pages
follow the switcher or the browser's language, and times follow the person's time zone."""
import re
import shutil
import subprocess
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from frontend.models import Preference
from releases.services import Actor, audit_record

ROOT = Path(__file__).resolve().parents[2]
CATALOGUE = ROOT / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po"
IGNORE = ["-i", ".venv/*", "-i", "node_modules/*", "-i", "tests/*", "-i", "bench/*", "-i", "var/*",
          "-i", "staticfiles/*", "-i", "test-artifacts/*"]


def entries(text: str) -> list[dict]:
    """A small .po reader: msgid, msgstr (or msgstr[0]) and flags of every entry but the header."""
    found = []
    for block in text.split("\n\n"):
        lines = block.strip().splitlines()
        entry, key = {"flags": "", "msgid": "", "msgstr": ""}, None
        for line in lines:
            if line.startswith("#,"):
                entry["flags"] += line
            elif line.startswith("msgid_plural"):
                key = "plural"
            elif line.startswith("msgid "):
                key, entry["msgid"] = "msgid", eval(line[6:])  # noqa: S307 (a quoted .po string)
            elif line.startswith(("msgstr ", "msgstr[0] ")):
                key, entry["msgstr"] = "msgstr", eval(line.split(" ", 1)[1])  # noqa: S307
            elif line.startswith('"') and key in ("msgid", "msgstr"):
                entry[key] += eval(line)  # noqa: S307
        if entry["msgid"]:
            found.append(entry)
    return found


def test_every_string_in_the_zh_hans_catalogue_is_translated():
    catalogue = entries(CATALOGUE.read_text(encoding="utf-8"))
    assert len(catalogue) > 100
    untranslated = [e["msgid"] for e in catalogue if not e["msgstr"].strip()]
    fuzzy = [e["msgid"] for e in catalogue if "fuzzy" in e["flags"]]
    assert untranslated == [] and fuzzy == []
    # placeholders survive translation
    for entry in catalogue:  # every placeholder survives translation, and no new one appears
        assert sorted(re.findall(r"%\(\w+\)s", entry["msgid"])) == \
            sorted(re.findall(r"%\(\w+\)s", entry["msgstr"])), entry["msgid"]


@pytest.mark.skipif(shutil.which("msgfmt") is None, reason="gettext (msgfmt, xgettext) is not installed")
def test_the_catalogue_covers_every_marked_string_and_the_compiled_file_is_current(tmp_path):
    original = CATALOGUE.read_bytes()
    compiled = (CATALOGUE.with_suffix(".mo")).read_bytes()
    try:
        done = subprocess.run([sys.executable, "manage.py", "makemessages", "-l", "zh_Hans", *IGNORE], cwd=ROOT,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        refreshed = entries(CATALOGUE.read_text(encoding="utf-8"))
    finally:
        CATALOGUE.write_bytes(original)
    missing = [e["msgid"] for e in refreshed if not e["msgstr"].strip() or "fuzzy" in e["flags"]]
    assert missing == [], "run `make messages` and translate these"
    subprocess.run(["msgfmt", "-o", str(tmp_path / "django.mo"), str(CATALOGUE)], check=True, timeout=60)
    assert (tmp_path / "django.mo").read_bytes() == compiled, "run `make messages` (compilemessages)"


@pytest.mark.django_db
def test_pages_follow_the_browser_language_and_the_switcher(client, dev):
    login = client.get("/login/", HTTP_ACCEPT_LANGUAGE="zh-CN,zh;q=0.9")
    html = login.content.decode()
    assert '<html lang="zh-hans">' in html and "用户名" in html and "密码" in html and "登录" in html
    assert "Username" in client.get("/login/", HTTP_ACCEPT_LANGUAGE="en-US").content.decode()
    client.force_login(dev)
    switched = client.post("/i18n/setlang/", {"language": "zh-hans", "next": "/"})
    assert switched.status_code == 302
    fleet = client.get("/", HTTP_ACCEPT_LANGUAGE="en-US").content.decode()  # the choice beats the browser
    assert "服务总览" in fleet and "退出登录" in fleet and "没有匹配的服务。" in fleet
    client.post("/i18n/setlang/", {"language": "en", "next": "/"})
    assert ">Fleet</a>" in client.get("/").content.decode()


@pytest.mark.django_db
def test_times_are_shown_in_the_persons_time_zone(client, auditor):
    event = audit_record(actor=Actor.system("test"), action="test.event", object_type="thing", object_id=1,
                         reason="a moment in time")  # audit rows are append-only: take the time it got

    def shown(zone: str) -> str:
        return event.created_at.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M:%S")

    assert len({shown("UTC"), shown("America/New_York"), shown("Asia/Shanghai")}) == 3
    client.force_login(auditor)
    utc = client.get("/audit/").content.decode()
    assert shown("UTC") in utc and "time (UTC)" in utc
    client.cookies["rollgate_tz"] = "America/New_York"  # the browser's zone, set by timezone.js
    browser = client.get("/audit/").content.decode()
    assert shown("America/New_York") in browser and "time (America/New_York)" in browser
    answer = client.post("/preferences/", {"language": "zh-hans", "time_zone": "Asia/Shanghai"})
    assert answer.status_code == 302 and Preference.objects.get(user=auditor).time_zone == "Asia/Shanghai"
    chosen = client.get("/audit/").content.decode()  # the preference beats the browser
    assert shown("Asia/Shanghai") in chosen and "时间（Asia/Shanghai）" in chosen
    client.logout()
    client.force_login(auditor)  # a new session: the preference is read at login
    assert shown("Asia/Shanghai") in client.get("/audit/").content.decode()
    bad = client.post("/preferences/", {"language": "en", "time_zone": "Mars/Olympus_Mons"})
    assert bad.status_code == 200 and "Mars/Olympus_Mons" in bad.content.decode()
    assert Preference.objects.get(user=auditor).time_zone == "Asia/Shanghai"
    client.cookies["rollgate_tz"] = "Not/AZone"
    client.post("/preferences/", {"language": "en", "time_zone": ""})
    assert shown("UTC") in client.get("/audit/").content.decode()  # nonsense cookie: UTC
