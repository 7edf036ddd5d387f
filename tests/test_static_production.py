"""Static files as production serves them: only the files the pages load (htmx, Chart.js, our own), under
content-hashed names with compressed copies and a year-long immutable cache; and htmx's history restores get the
whole page (Vary: HX-Request)."""
import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

SERVE = r"""
import json, sys
import django
django.setup()
from django.test import Client
from django.templatetags.static import static
client = Client()
out = {"htmx_url": static("vendor/htmx.org/dist/htmx.min.js"), "css_url": static("frontend/rollgate.css")}
answer = client.get(out["htmx_url"], HTTP_ACCEPT_ENCODING="gzip, br", secure=True)
out["htmx"] = {"status": answer.status_code, "encoding": answer.headers.get("Content-Encoding"),
               "cache": answer.headers.get("Cache-Control"), "vary": answer.headers.get("Vary")}
plain = client.get(out["htmx_url"], secure=True)
out["htmx_plain"] = {"status": plain.status_code, "encoding": plain.headers.get("Content-Encoding")}
for name in ("/static/vendor/htmx.org/package.json", "/static/vendor/chart.js/README.md",
             "/static/vendor/htmx.org/dist/htmx.js", "/static/vendor/htmx.org/dist/htmx.min.js"):
    out[name] = client.get(name, secure=True).status_code
login = client.get("/login/", secure=True)
out["login"] = login.content.decode()
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def collected(tmp_path_factory):
    static_root = tmp_path_factory.mktemp("staticfiles")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_SETTINGS_MODULE", "SECRET_KEY",
                                                                       "ROLLGATE_CREDENTIALS_KEY"))}
    env.update(DJANGO_SETTINGS_MODULE="config.settings.production", SECRET_KEY=secrets.token_urlsafe(50),
               ROLLGATE_CREDENTIALS_KEY=secrets.token_urlsafe(32), STATIC_ROOT=str(static_root),
               ALLOWED_HOSTS="testserver")
    done = subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    served = subprocess.run([sys.executable, "-c", SERVE], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=120)
    assert served.returncode == 0, served.stderr
    return static_root, json.loads(served.stdout.strip().splitlines()[-1])


def test_collectstatic_publishes_only_the_vendor_files_the_pages_load_under_hashed_names(collected):
    root, _ = collected
    manifest = json.loads((root / "staticfiles.json").read_text())["paths"]
    vendor = sorted(name for name in manifest if name.startswith("vendor/"))
    assert vendor == ["vendor/chart.js/dist/chart.umd.js", "vendor/chart.js/dist/chart.umd.js.map",
                      "vendor/htmx.org/dist/htmx.min.js"]
    sidecar = sorted(name for name in manifest if name.startswith("drf_spectacular_sidecar/"))
    assert [name.rpartition("/")[2] for name in sidecar] == [
        "favicon-32x32.png", "swagger-ui-bundle.js", "swagger-ui-standalone-preset.js", "swagger-ui.css",
        "swagger-ui.css.map"]  # Swagger UI for /api/docs/; never Redoc or the other 9 MB of the package
    on_disk = sorted(str(p.relative_to(root)) for p in (root / "vendor").rglob("*") if p.is_file())
    assert not [p for p in on_disk if "package.json" in p or p.endswith((".md", ".ts", ".cjs"))]
    for name in ["vendor/htmx.org/dist/htmx.min.js", "vendor/chart.js/dist/chart.umd.js", "frontend/live.js",
                 "frontend/sla.js", "frontend/actions.js", "frontend/rollgate.css"]:
        hashed = manifest[name]
        stem, _, suffix = name.rpartition(".")
        assert hashed.startswith(stem + ".") and hashed.endswith("." + suffix) and len(hashed) == len(name) + 13
        assert (root / hashed).is_file() and (root / (hashed + ".gz")).is_file()
        assert not (root / name).exists()  # only hashed copies are kept
        assert (root / (hashed + ".gz")).stat().st_size < (root / hashed).stat().st_size
    # the source map reference inside Chart.js names the hashed map
    chart = (root / manifest["vendor/chart.js/dist/chart.umd.js"]).read_text()
    assert chart.rstrip().endswith(f"//# sourceMappingURL={Path(manifest['vendor/chart.js/dist/chart.umd.js.map']).name}")


def test_production_serves_hashed_files_compressed_with_a_long_immutable_cache(collected):
    _, served = collected
    assert served["htmx_url"].startswith("/static/vendor/htmx.org/dist/htmx.min.") and \
        served["htmx_url"] != "/static/vendor/htmx.org/dist/htmx.min.js"
    assert served["htmx"]["status"] == 200 and served["htmx"]["encoding"] in ("gzip", "br")
    assert served["htmx"]["cache"] == "max-age=315360000, public, immutable"
    assert "Accept-Encoding" in served["htmx"]["vary"]
    assert served["htmx_plain"] == {"status": 200, "encoding": None}
    for name in ("/static/vendor/htmx.org/package.json", "/static/vendor/chart.js/README.md",
                 "/static/vendor/htmx.org/dist/htmx.js", "/static/vendor/htmx.org/dist/htmx.min.js"):
        assert served[name] == 404, name  # never published, or only under its hashed name
    assert f'src="{served["htmx_url"]}"' in served["login"] and f'href="{served["css_url"]}"' in served["login"]


def test_local_runs_serve_the_same_short_list_from_node_modules(client):
    assert client.get("/static/vendor/htmx.org/dist/htmx.min.js").status_code == 200
    assert client.get("/static/vendor/chart.js/dist/chart.umd.js").status_code == 200
    assert client.get("/static/vendor/htmx.org/package.json").status_code == 404
    assert client.get("/static/vendor/chart.js/dist/chart.js").status_code == 404
    assert client.get("/static/frontend/live.js").status_code == 200


def test_the_vendored_libraries_are_the_pinned_current_releases():
    package = json.loads((ROOT / "package.json").read_text())["dependencies"]
    installed = {name: json.loads((ROOT / "node_modules" / name / "package.json").read_text())["version"]
                 for name in package}
    assert installed == package == {"htmx.org": "2.0.11", "chart.js": "4.6.1"}


@pytest.mark.django_db
def test_htmx_fragments_vary_on_hx_request_and_a_history_restore_gets_the_whole_page(client, auditor):
    client.force_login(auditor)
    fragment = client.get("/audit/", HTTP_HX_REQUEST="true")
    assert fragment.status_code == 200 and "<html" not in fragment.content.decode()
    assert "HX-Request" in fragment.headers["Vary"]
    restored = client.get("/audit/", HTTP_HX_REQUEST="true", HTTP_HX_HISTORY_RESTORE_REQUEST="true")
    page = restored.content.decode()
    assert restored.status_code == 200 and "<html" in page and "<nav>" in page
    full = client.get("/audit/")
    assert "HX-Request" in full.headers["Vary"] and "<html" in full.content.decode()
    assert "HX-Request" not in client.get("/api/health/").headers.get("Vary", "")
