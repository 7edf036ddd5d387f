"""`rollgate` from a terminal or a CI job, against a live server: every command, its words, --json and exit codes."""
import json
import stat
import time
import tomllib

import pytest

from releases.choices import ReleaseStatus as S
from releases.models import Release
from releases.services import Actor, release_pause, release_promote, release_rollback, release_worker_transition
from rollgate_cli.api import accept_language
from rollgate_cli.main import main
from tests.conftest import sha
from tests.live_server import ROOT

pytestmark = pytest.mark.django_db(transaction=True)


def to(release_id: int, to_status: str, from_statuses=(S.PENDING,), reason: str = ""):
    assert release_worker_transition(release_id=release_id, from_statuses=set(from_statuses), to_status=to_status,
                                     actor_name="pipeline", action=f"test.{to_status}", reason=reason)


def test_login_saves_the_token_readable_only_by_its_owner(cli, rm, make_release):
    release = make_release("v2.3.4", "staging")
    result = cli("login", "--url", cli.url, "--username", "rm", "--password-stdin", stdin="pw-rm\n")
    assert result.code == 0, result.stderr
    assert f"logged in to {cli.url} as rm" in result.stdout
    assert stat.S_IMODE(cli.config.stat().st_mode) == 0o600
    assert stat.S_IMODE(cli.config.parent.stat().st_mode) == 0o700
    saved = json.loads(cli.config.read_text())
    assert saved["url"] == cli.url and saved["username"] == "rm" and len(saved["token"]) >= 20
    # the saved token is what later commands use
    status = cli("status", str(release.pk))
    assert status.code == 0, status.stderr
    assert f"#{release.pk} agent-infer v2.3.4 in staging: ready" in status.stdout
    assert "you may: " in status.stdout and "promote" in status.stdout

    # logging in again replaces the file, still 0600; the old token stops working (one token per login)
    cli.config.chmod(0o644)
    assert cli("login", "--url", cli.url, "-u", "rm", "--password-stdin", stdin="pw-rm\n").code == 0
    assert stat.S_IMODE(cli.config.stat().st_mode) == 0o600
    stale = cli("status", str(release.pk), env={"ROLLGATE_TOKEN": saved["token"]})
    assert stale.code == 1
    assert "refused (401)" in stale.stderr and "rollgate login" in stale.stderr


def test_login_with_a_wrong_password_prints_the_api_answer_and_saves_nothing(cli, rm):
    result = cli("login", "--url", cli.url, "--username", "rm", "--password-stdin", stdin="not-the-password\n")
    assert result.code == 1
    assert "POST /api/auth/token/ refused (400)" in result.stderr
    assert "Unable to log in" in result.stderr
    assert not cli.config.exists()


def test_login_without_a_terminal_to_ask_says_how_to_log_in_from_ci(cli, rm):
    no_input = cli("login", "--url", cli.url, stdin="")  # a CI job: nothing to read the username from
    assert no_input.code == 2 and "Traceback" not in no_input.stderr
    assert "--password-stdin" in no_input.stderr and "ROLLGATE_TOKEN" in no_input.stderr
    empty = cli("login", "--url", cli.url, "--username", "rm", "--password-stdin", stdin="\n")
    assert empty.code == 2 and "must not be empty" in empty.stderr
    assert not cli.config.exists()


def test_without_login_or_server_the_cli_says_what_to_do(cli, tmp_path):
    assert cli("status", "1").code == 7
    assert "rollgate login" in cli("status", "1").stderr
    nobody_listens = cli("status", "1", env={"ROLLGATE_URL": "http://127.0.0.1:9", "ROLLGATE_TOKEN": "x" * 40})
    assert nobody_listens.code == 7 and "cannot reach http://127.0.0.1:9" in nobody_listens.stderr
    assert cli("promote").code == 2  # argparse: the release id is missing
    assert cli("reject", "3").code == 2  # a rejection needs --comment


def test_release_create_prints_the_id_the_release_and_the_rules_it_broke(cli, login, dev, environments, service):
    login("dev")
    commit = sha()
    quiet = cli("release", "create", "--service", "agent-infer", "-e", "staging", "--tag", "v3.1.0-rc2",
                "--commit", commit, "-q")
    assert quiet.code == 0, quiet.stderr
    release = Release.objects.get(pk=int(quiet.stdout.strip()))
    assert (release.version.tag, release.version.commit_sha, release.status) == ("v3.1.0-rc2", commit, S.PENDING)

    as_json = cli("release", "create", "--json", "--service", "agent-infer", "--environment", "dev", "--tag",
                  "dev-latest", env={"CI_COMMIT_SHA": sha(), "CI_COMMIT_BRANCH": "develop"})
    assert as_json.code == 0, as_json.stderr
    body = as_json.json()
    assert (body["tag"], body["environment"], body["branch"], body["status"]) == ("dev-latest", "dev", "develop",
                                                                                 "pending")

    words = cli("release", "create", "--service", "agent-infer", "-e", "staging", "--tag", "v3.2.0-rc1",
                "--commit", sha())
    assert words.code == 0 and words.stdout.startswith("created #") and "v3.2.0-rc1 in staging: pending" in words.stdout

    bad_tag = cli("release", "create", "--service", "agent-infer", "-e", "staging", "--tag", "latest-ish",
                  "--commit", sha())
    assert bad_tag.code == 1
    assert "refused (400)" in bad_tag.stderr and "'latest-ish' fits no tag convention" in bad_tag.stderr
    assert "v3.3.0-rc1 (staging candidate)" in bad_tag.stderr
    bad_commit = cli("release", "create", "--json", "--service", "agent-infer", "-e", "staging", "--tag", "v3.3.0-rc1",
                     "--commit", "abc123")
    assert bad_commit.code == 1
    assert "commit: must be the full 40-character lowercase hex git commit sha" in bad_commit.stderr
    assert bad_commit.json()["status"] == 400 and "commit" in bad_commit.json()["error"]["errors"]

    listing = cli("release", "list", "--environment", "staging")
    assert listing.code == 0 and listing.stdout.splitlines()[0].endswith("v3.2.0-rc1 in staging: pending")
    assert len(cli("release", "list", "--json", "--service", "agent-infer").json()) == 3


def test_a_role_that_may_not_act_gets_the_rule_and_exit_code_1(cli, login, qa, make_release):
    release = make_release("v1.4.0", "staging")
    login("qa")
    refused = cli("promote", str(release.pk))
    assert refused.code == 1
    assert f"POST /api/releases/{release.pk}/promote/ refused (403)" in refused.stderr
    created = cli("release", "create", "--service", "agent-infer", "-e", "staging", "--tag", "v1.5.0", "--commit", sha())
    assert created.code == 1 and "refused (403)" in created.stderr
    missing = cli("status", "987654")
    assert missing.code == 1 and "no release with id 987654" in missing.stderr


def test_promote_pause_resume_and_rollback_walk_the_gray_ladder(cli, login, rm, live_release, make_release):
    release = make_release("v1.1.0", "staging")
    login("rm")
    first = cli("promote", str(release.pk), "--json", "-m", "canary please")
    assert first.code == 0, first.stderr
    assert (first.json()["status"], first.json()["gray_weight"]) == ("gray", 5)
    # the weight I saw is stale: refused with the rule, nothing moves
    stale = cli("promote", str(release.pk), "--expected-weight", "0")
    assert stale.code == 1 and "refused (409)" in stale.stderr
    release.refresh_from_db()
    assert release.gray_weight == 5
    second = cli("promote", str(release.pk), "--expected-weight", "5")
    assert second.code == 0 and f"promote: #{release.pk} agent-infer v1.1.0 in staging: gray at 10 %" in second.stdout

    paused = cli("pause", str(release.pk), "--comment", "latency looks odd")
    assert paused.code == 0 and "paused at 10 %" in paused.stdout
    assert cli("pause", str(release.pk)).code == 1  # already paused: the transition is refused
    resumed = cli("resume", str(release.pk), "--json")
    assert resumed.code == 0 and resumed.json()["status"] == "gray"
    # right after a move the API wants the weight I saw (no double click skips a rung): it says so
    hasty = cli("promote", str(release.pk), "--full")
    assert hasty.code == 1 and "send expected_weight=10" in hasty.stderr
    full = cli("promote", str(release.pk), "--full", "--expected-weight", "10")
    assert full.code == 0 and "staging: live" in full.stdout
    rolled = cli("rollback", str(release.pk), "-m", "restore v1.0.0")
    assert rolled.code == 0 and "rolled_back" in rolled.stdout
    live_release.refresh_from_db()
    assert live_release.status == S.LIVE


def test_approve_and_reject_in_a_protected_environment(cli, login, dev, rm, qa, make_release):
    release = make_release("v2.0.0", "prod")
    login("rm")
    status = cli("status", str(release.pk))
    assert "waiting for approval from 1 qa, 1 release_manager" in status.stdout
    promote = cli("promote", str(release.pk))
    assert promote.code == 1 and "refused (409)" in promote.stderr and "approv" in promote.stderr
    approved = cli("approve", str(release.pk), "-m", "change ticket 4711")
    assert approved.code == 0, approved.stderr
    after = cli("status", str(release.pk))
    assert "waiting for approval from 1 qa" in after.stdout and "approved by rm (release_manager): change ticket 4711" \
        in after.stdout

    other = make_release("v2.0.1", "prod")
    login("qa")
    rejected = cli("reject", str(other.pk), "--comment", "fails the regression suite", "--json")
    assert rejected.code == 0 and rejected.json()["status"] == "rejected"
    assert cli("approve", str(other.pk)).code == 1  # nothing to approve any more


def test_promote_next_env_prints_the_api_answer(cli, login, rm, make_release):
    release = make_release("v1.2.0", "staging")
    login("rm")
    result = cli("promote-next-env", str(release.pk), "--json")
    body = result.json()
    if result.code == 0:  # the endpoint exists (issue 15): it answers a release
        assert "status" in body
    else:
        assert result.code == 1
        assert f"POST /api/releases/{release.pk}/promote-next-env/ refused" in result.stderr
        assert body["status"] in (400, 404, 409) and body["error"]["detail"] in result.stderr


def _wait(cli, release_id: int, *args: str):
    return cli.popen("wait", str(release_id), "--interval", "0.2", *args)


def _finish(process, limit: float = 30) -> tuple[int, str, str]:
    stdout, stderr = process.communicate(timeout=limit)
    return process.returncode, stdout, stderr


def test_wait_until_ready_exits_0_when_the_pipeline_succeeds(cli, login, rm, make_release):
    release = make_release("v5.0.0", "staging", status=S.PENDING)
    login("rm")
    process = _wait(cli, release.pk, "--timeout", "30")
    time.sleep(1.0)
    to(release.pk, S.BUILDING)
    time.sleep(0.6)
    to(release.pk, S.READY, from_statuses=(S.BUILDING,))
    code, stdout, _ = _finish(process)
    assert code == 0
    lines = stdout.splitlines()
    assert lines[0].endswith("staging: pending") and any(line.endswith("staging: building") for line in lines)
    assert lines[-2].endswith("staging: ready") and lines[-1] == "wait: reached ready"


@pytest.mark.parametrize("status,code,words", [(S.CI_FAILED, 3, "failed"), (S.BLOCKED, 4, "blocked"),
                                               (S.REJECTED, 3, "failed")])
def test_wait_exit_code_names_the_outcome(cli, login, rm, make_release, status, code, words):
    release = make_release("v5.1.0", "staging", status=S.PENDING)
    login("rm")
    process = _wait(cli, release.pk, "--json", "--timeout", "30")
    time.sleep(0.8)
    to(release.pk, status, reason="scan found CVE-2026-0001" if status == S.BLOCKED else "")
    returned, stdout, stderr = _finish(process)
    assert returned == code
    body = json.loads(stdout)
    assert body["outcome"] == words and body["exit_code"] == code and body["release"]["status"] == status
    assert "staging: pending" in stderr  # progress goes to stderr under --json


def test_wait_times_out_with_exit_5(cli, login, rm, make_release):
    release = make_release("v5.2.0", "staging", status=S.PENDING)
    login("rm")
    started = time.monotonic()
    result = cli("wait", str(release.pk), "--timeout", "1.5", "--interval", "0.3")
    assert result.code == 5
    assert 1.4 < time.monotonic() - started < 15
    assert "timed out after 1.5 s waiting for ready; still pending" in result.stdout


def test_wait_until_live_follows_the_ramp_and_stops_at_a_pause(cli, login, rm, live_release, make_release):
    release = make_release("v6.0.0", "staging")
    release_promote(actor=Actor.of(rm), release_id=release.pk)
    login("rm")
    process = _wait(cli, release.pk, "--until", "live", "--timeout", "30")
    time.sleep(0.8)
    release_promote(actor=Actor.of(rm), release_id=release.pk, expected_weight=5)
    time.sleep(0.6)
    release_pause(actor=Actor.of(rm), release_id=release.pk, comment="gate says no")
    code, stdout, _ = _finish(process)
    assert code == 6
    assert "gray at 5 %" in stdout and "gray at 10 %" in stdout and "paused at 10 %" in stdout
    assert "a person (or the SLA gate) must act" in stdout

    # already live: exit 0 straight away; ready is reached by a live release too
    assert cli("wait", str(live_release.pk), "--until", "live", "--timeout", "5").code == 0
    assert cli("wait", str(live_release.pk), "--timeout", "5").code == 0


def test_sla_prints_the_verdict_sentence_and_each_rule(cli, login, qa, live_release, make_release, rm):
    from tests.sla.test_gate_v2_api import SUMMARY, gate_record

    release = make_release("v1.1.0", "staging")
    login("qa")
    nothing = cli("sla", str(release.pk))
    assert nothing.code == 0 and nothing.stdout.strip() == "the SLA gate has not judged this release yet"
    release_promote(actor=Actor.of(rm), release_id=release.pk)
    gate_record(release)
    result = cli("sla", str(release.pk))
    assert result.code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == SUMMARY
    assert lines[1].startswith("manual review waiting since 2026-11-29T12:48:20")
    assert "  FIRED callback_failure_rate: callback failure rate 3.10 % > 2.00 %: output channel anomaly " \
           "[measured 3.10 %, threshold 2.00 %]" in lines
    assert "  ok    p95_latency_rollback: p95 1,234 ms <= 1,500 ms [measured 1234 ms, threshold 1500 ms]" in lines
    assert "  ok    evidence_power: enough evidence [measured 12345, threshold 6789]" in lines
    as_json = cli("sla", str(release.pk), "--json").json()
    assert as_json["summary"] == SUMMARY and len(as_json["verdict"]["findings"]) == 3
    release_rollback(actor=Actor.of(rm), release_id=release.pk, comment="settled by hand")
    history = cli("sla", str(release.pk)).stdout.splitlines()
    assert history[0] == "the gate no longer judges this release (it is rolled_back); its last verdict was:"
    assert history[1] == SUMMARY


def test_the_rollgate_command_is_declared_and_json_goes_before_or_after_the_command(capsys, monkeypatch, tmp_path):
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"rollgate": "rollgate_cli.main:main"}
    monkeypatch.setenv("ROLLGATE_CONFIG", str(tmp_path / "none.json"))
    monkeypatch.delenv("ROLLGATE_URL", raising=False)
    monkeypatch.delenv("ROLLGATE_TOKEN", raising=False)
    assert main(["--json", "status", "5"]) == 7
    assert "no server: run `rollgate login --url" in capsys.readouterr().err
    assert main(["status", "5", "--json", "--url", "http://127.0.0.1:9"]) == 7
    captured = capsys.readouterr()
    assert "not logged in: run `rollgate login`" in captured.err and captured.out == ""


def test_the_cli_asks_for_the_shells_language_and_prints_chinese_refusals(cli, login, rm, live_release, make_release):
    assert accept_language({"LANG": "zh_CN.UTF-8"}) == "zh-hans"
    assert accept_language({"LANG": "en_US.UTF-8", "LC_ALL": "zh_CN.GB18030"}) == "zh-hans"  # LC_ALL wins
    assert accept_language({"LANG": "C.UTF-8"}) == "" and accept_language({}) == ""
    assert accept_language({"LANG": "en_GB.UTF-8"}) == "en-gb"
    release = make_release("v1.1.0", "staging")
    login("rm")
    chinese = cli("pause", str(release.pk), env={"LANG": "zh_CN.UTF-8"})
    assert chinese.code == 1 and f"无法暂停发布 #{release.pk}" in chinese.stderr
    english = cli("pause", str(release.pk))
    assert english.code == 1 and f"cannot pause release #{release.pk}" in english.stderr
