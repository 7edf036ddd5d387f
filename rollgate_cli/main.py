"""`rollgate` commands. Every command takes --json (the API's answer as it came, for scripts) and exits with a code
a CI job can branch on:

  0 done / the awaited status was reached     4 wait: the release was blocked (scan or SLA gate)
  1 the API refused: its rule is printed       5 wait: timed out
  2 usage error (bad arguments)                6 wait --until live: paused, a person or the gate must act
  3 wait: the release failed (ci_failed, failed, rejected, rolled_back)
  7 cannot reach the server, it failed (5xx), or not logged in
"""
import argparse
import getpass
import json
import os
import sys
import time

from rollgate_cli.api import ApiError, RollgateApi, Unreachable
from rollgate_cli.credentials import Credentials, NotLoggedIn, credentials_load, credentials_path, credentials_save

EXIT_OK, EXIT_REFUSED, EXIT_USAGE, EXIT_FAILED, EXIT_BLOCKED, EXIT_TIMEOUT, EXIT_PAUSED, EXIT_UNAVAILABLE = range(8)

FAILED_STATUSES = frozenset({"ci_failed", "failed", "rejected", "rolled_back"})
# What counts as "got there" for `wait --until X`: the status itself or any later one on the way to live.
REACHED = {
    "ready": frozenset({"ready", "deploying", "gray", "paused", "live", "superseded"}),
    "live": frozenset({"live", "superseded"}),
}


class Output:
    def __init__(self, as_json: bool):
        self.as_json = as_json

    def say(self, text: str):
        """Words for people: stdout normally, stderr under --json so stdout stays one JSON document."""
        print(text, file=sys.stderr if self.as_json else sys.stdout, flush=True)

    @staticmethod
    def error(text: str):
        print(text, file=sys.stderr, flush=True)

    def data(self, payload, words: str | None = None):
        if self.as_json:
            print(json.dumps(payload, indent=2, ensure_ascii=False), flush=True)
        elif words is not None:
            print(words, flush=True)


def describe(release: dict) -> str:
    status = release.get("status", "?")
    if status in ("gray", "paused"):
        status = f"{status} at {release.get('gray_weight', 0)} %"
    line = (f"#{release.get('id')} {release.get('service')} {release.get('tag')} in {release.get('environment')}: "
            f"{status}")
    if release.get("status_reason"):
        line += f" ({release['status_reason']})"
    return line


def describe_detail(release: dict) -> str:
    lines = [describe(release)]
    approvals = release.get("approvals") or {}
    missing = approvals.get("missing") or {}
    if missing:
        lines.append("waiting for approval from " + ", ".join(f"{count} {role}" for role, count in missing.items()))
    for decision in approvals.get("decisions") or []:
        comment = f": {decision['comment']}" if decision.get("comment") else ""
        lines.append(f"  {decision['decision']} by {decision['user']} ({decision['role']}){comment}")
    actions = release.get("actions") or {}
    allowed = [name for name, state in actions.items() if state.get("allowed")]
    if actions:
        lines.append("you may: " + (", ".join(allowed) if allowed else "nothing now"))
    return "\n".join(lines)


# --- commands ------------------------------------------------------------------------------------------------


def cmd_login(args, out: Output) -> int:
    url = (args.url or os.environ.get("ROLLGATE_URL", "")).rstrip("/")
    if not url:
        out.error("login: give the server with --url https://rollgate.example.com (or set ROLLGATE_URL)")
        return EXIT_USAGE
    try:
        username = args.username or os.environ.get("ROLLGATE_USERNAME", "") or input("username: ")
        if args.password_stdin:
            password = sys.stdin.readline().rstrip("\n")
        else:
            password = os.environ.get("ROLLGATE_PASSWORD", "") or getpass.getpass("password: ")
    except (EOFError, KeyboardInterrupt):  # no terminal to ask (CI), or the person gave up
        out.error("login: no username or password given; in CI use -u NAME --password-stdin (or ROLLGATE_USERNAME "
                  "and ROLLGATE_PASSWORD), or skip login and set ROLLGATE_URL and ROLLGATE_TOKEN")
        return EXIT_USAGE
    if not username or not password:
        out.error("login: username and password must not be empty")
        return EXIT_USAGE
    api = RollgateApi(url)
    try:
        answer = api.post("/api/auth/token/", {"username": username, "password": password})
    finally:
        api.close()
    path = credentials_save(Credentials(url=url, token=answer["token"], username=username))
    out.data({"url": url, "username": username, "credentials": str(path)},
             f"logged in to {url} as {username}; token saved in {path} (mode 0600)")
    return EXIT_OK


def cmd_release_create(args, out: Output, api: RollgateApi) -> int:
    commit = args.commit or os.environ.get("CI_COMMIT_SHA", "")
    if not commit:
        out.error("release create: give --commit (the full 40-character sha), or run in GitLab CI (CI_COMMIT_SHA)")
        return EXIT_USAGE
    body = {"service": args.service, "environment": args.environment, "tag": args.tag, "commit": commit}
    branch = args.branch if args.branch is not None else os.environ.get("CI_COMMIT_BRANCH", "")
    if branch:
        body["branch"] = branch
    release = api.post("/api/releases/", body)
    if args.quiet and not out.as_json:
        print(release["id"])
        return EXIT_OK
    out.data(release, "created " + describe_detail(release))
    return EXIT_OK


def cmd_release_list(args, out: Output, api: RollgateApi) -> int:
    releases = api.get("/api/releases/", service=args.service, environment=args.environment, status=args.status,
                       tag=args.tag, limit=args.limit)
    out.data(releases, "\n".join(describe(r) for r in releases) if releases else "no releases match")
    return EXIT_OK


def cmd_status(args, out: Output, api: RollgateApi) -> int:
    release = api.get(f"/api/releases/{args.release}/")
    out.data(release, describe_detail(release))
    return EXIT_OK


def _action(name: str, path: str | None = None):
    def run(args, out: Output, api: RollgateApi) -> int:
        body = {}
        if getattr(args, "comment", None):
            body["comment"] = args.comment
        if getattr(args, "full", False):
            body["full"] = True
        if getattr(args, "expected_weight", None) is not None:
            body["expected_weight"] = args.expected_weight
        answer = api.post(f"/api/releases/{args.release}/{path or name}/", body)
        if isinstance(answer, dict) and "status" in answer and "tag" in answer:
            out.data(answer, f"{name}: " + describe(answer))
        else:
            out.data(answer, f"{name}: " + json.dumps(answer, ensure_ascii=False))
        return EXIT_OK

    return run


def wait_outcome(status: str, until: str) -> int | None:
    """The exit code once `status` settles the wait, or None to keep waiting."""
    if status in REACHED[until]:
        return EXIT_OK
    if status == "blocked":
        return EXIT_BLOCKED
    if status in FAILED_STATUSES:
        return EXIT_FAILED
    if until == "live" and status == "paused":
        return EXIT_PAUSED
    return None


def cmd_wait(args, out: Output, api: RollgateApi) -> int:
    deadline = time.monotonic() + args.timeout
    seen = None
    while True:
        release = api.get(f"/api/releases/{args.release}/")
        line = describe(release)
        if line != seen:
            out.say(line)
            seen = line
        outcome = wait_outcome(release["status"], args.until)
        if outcome is not None:
            words = {EXIT_OK: f"reached {args.until}", EXIT_BLOCKED: "blocked", EXIT_FAILED: "failed",
                     EXIT_PAUSED: "paused before going live: a person (or the SLA gate) must act"}[outcome]
            out.data({"outcome": words, "exit_code": outcome, "release": release}, f"wait: {words}")
            return outcome
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            out.data({"outcome": "timeout", "exit_code": EXIT_TIMEOUT, "release": release},
                     f"wait: timed out after {args.timeout:g} s waiting for {args.until}; still {release['status']}")
            return EXIT_TIMEOUT
        time.sleep(min(args.interval, remaining))


def _number(value, unit) -> str:
    if value is None:
        return "-"
    if unit == "ratio":
        return f"{value * 100:.2f} %"
    if unit == "ms":
        return f"{value:.0f} ms"
    if unit == "s":
        return f"{value:g} s"
    if isinstance(value, float) and unit == "count":
        return f"{value:.0f}"
    return f"{value:g}" if isinstance(value, float) else str(value)


ON_THE_RAMP = ("deploying", "gray", "paused")  # the statuses the SLA gate judges


def cmd_sla(args, out: Output, api: RollgateApi) -> int:
    sla = api.get(f"/api/releases/{args.release}/sla/")
    lines = [sla.get("summary") or "the SLA gate has not judged this release yet"]
    status = api.get(f"/api/releases/{args.release}/").get("status")
    if sla.get("summary") and status not in ON_THE_RAMP:
        lines.insert(0, f"the gate no longer judges this release (it is {status}); its last verdict was:")
    review = sla.get("manual_review")
    if review:
        lines.append(f"manual review waiting since {review['since']}: {review['reason']}")
    verdict = sla.get("verdict") or {}
    for finding in verdict.get("findings") or []:
        mark = "FIRED" if finding.get("fired") else "ok   "
        unit = finding.get("unit")
        numbers = ""
        if finding.get("measured") is not None or finding.get("threshold") is not None:
            numbers = f" [measured {_number(finding.get('measured'), unit)}, threshold " \
                      f"{_number(finding.get('threshold'), unit)}]"
        lines.append(f"  {mark} {finding.get('rule')}: {finding.get('text')}{numbers}")
    out.data(sla, "\n".join(lines))
    return EXIT_OK


# --- parser --------------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    # SUPPRESS: an option given before the command is not reset by the command's own parser.
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                        help="print the API's answer as JSON on stdout (messages go to stderr)")
    common.add_argument("--url", default=argparse.SUPPRESS, help="Rollgate's address (default: ROLLGATE_URL, "
                                                                  "then the one saved by login)")
    parser = argparse.ArgumentParser(prog="rollgate", parents=[common], description="Rollgate from CI and terminals.",
                                     epilog=__doc__.split("\n", 2)[2], formatter_class=argparse.RawTextHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True, metavar="command")

    login = commands.add_parser("login", parents=[common], help="get an API token and save it (mode 0600)")
    login.add_argument("--username", "-u", default="")
    login.add_argument("--password-stdin", action="store_true", help="read the password from stdin (CI)")
    login.set_defaults(handler=cmd_login, needs_api=False)

    release = commands.add_parser("release", help="create or list releases")
    release_commands = release.add_subparsers(dest="release_command", required=True, metavar="create|list")
    create = release_commands.add_parser("create", parents=[common], help="start a release (its pipeline runs)")
    create.add_argument("--service", required=True)
    create.add_argument("--environment", "-e", required=True)
    create.add_argument("--tag", required=True)
    create.add_argument("--commit", default="", help="full sha (default: CI_COMMIT_SHA)")
    create.add_argument("--branch", default=None, help="default: CI_COMMIT_BRANCH")
    create.add_argument("--quiet", "-q", action="store_true", help="print only the new release's id")
    create.set_defaults(handler=cmd_release_create)
    listing = release_commands.add_parser("list", parents=[common], help="newest first")
    for name in ("service", "environment", "status", "tag"):
        listing.add_argument(f"--{name}", default="")
    listing.add_argument("--limit", type=int, default=20)
    listing.set_defaults(handler=cmd_release_list)

    status = commands.add_parser("status", parents=[common], help="a release, its approvals and what you may do")
    status.add_argument("release", type=int)
    status.set_defaults(handler=cmd_status)

    wait = commands.add_parser("wait", parents=[common], help="poll until the release is ready or live, "
                                                             "or failed / blocked (exit codes above)")
    wait.add_argument("release", type=int)
    wait.add_argument("--until", choices=sorted(REACHED), default="ready")
    wait.add_argument("--timeout", type=float, default=1800.0, help="seconds (default 1800)")
    wait.add_argument("--interval", type=float, default=5.0, help="seconds between polls (default 5)")
    wait.set_defaults(handler=cmd_wait)

    for name, words in [("promote", "one rung up the gray ladder (--full: to 100 %%)"), ("pause", "hold the ramp"),
                        ("resume", "resume a paused ramp"), ("rollback", "cut the canary or restore the previous live"),
                        ("approve", "approve (protected environments)"), ("reject", "reject: stops the release"),
                        ("promote-next-env", "start this version in the next environment of the path")]:
        action = commands.add_parser(name, parents=[common], help=words)
        action.add_argument("release", type=int)
        action.add_argument("--comment", "-m", default="", required=name == "reject",
                            help="required for reject" if name == "reject" else None)
        if name == "promote":
            action.add_argument("--full", action="store_true", help="straight to 100 %%")
            action.add_argument("--expected-weight", type=int, default=None,
                                help="the weight you saw; refused (409) if the release moved meanwhile")
        action.set_defaults(handler=_action(name))

    sla = commands.add_parser("sla", parents=[common], help="the SLA gate's verdict sentence and its rules")
    sla.add_argument("release", type=int)
    sla.set_defaults(handler=cmd_sla)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    out = Output(getattr(args, "json", False))
    args.url = getattr(args, "url", "")
    api = None
    try:
        if not getattr(args, "needs_api", True):
            return args.handler(args, out)
        credentials = credentials_load(args.url)
        api = RollgateApi(credentials.url, credentials.token)
        return args.handler(args, out, api)
    except ApiError as error:
        out.data({"status": error.status, "error": error.body})
        out.error(f"rollgate: {error.method} {error.path} refused ({error.status}): {error.detail}")
        if error.status == 401:
            out.error(f"rollgate: log in again (`rollgate login`); credentials are read from {credentials_path()} "
                    "or ROLLGATE_TOKEN")
        return EXIT_UNAVAILABLE if error.status >= 500 else EXIT_REFUSED
    except (Unreachable, NotLoggedIn) as error:
        out.error(f"rollgate: {error}")
        return EXIT_UNAVAILABLE
    except KeyboardInterrupt:
        return 130
    finally:
        if api is not None:
            api.close()


if __name__ == "__main__":
    sys.exit(main())
