"""The GitLab CI template (examples/gitlab-ci/rollgate.gitlab-ci.yml): each ref maps to a tag Rollgate accepts in
its environment, every `rollgate` line is a command the CLI parses, and prod promotion waits for a person."""
import os
import re
import shlex
import subprocess

import pytest
import yaml

from releases.conventions import check_branch, check_tag_environment, parse_tag
from rollgate_cli.main import build_parser
from tests.live_server import ROOT

TEMPLATE = ROOT / "examples" / "gitlab-ci" / "rollgate.gitlab-ci.yml"
PROJECT = ROOT / "examples" / "gitlab-ci" / ".gitlab-ci.yml"


class GitLabLoader(yaml.SafeLoader):
    pass


GitLabLoader.add_constructor("!reference", lambda loader, node: {"!reference": loader.construct_sequence(node)})


def load(path):
    return yaml.load(path.read_text(), Loader=GitLabLoader)  # noqa: S506 (SafeLoader plus GitLab's !reference)


def resolve_ref(ref: str, *, tag: str = "", iid: str = "17") -> tuple[int, str, str]:
    """Run the template's ref -> environment/tag snippet the way the job's shell would."""
    snippet = load(TEMPLATE)[".rollgate-ref"]["before_script"][0]
    env = {"PATH": os.environ["PATH"], "CI_COMMIT_REF_NAME": ref, "CI_COMMIT_TAG": tag, "CI_PIPELINE_IID": iid}
    done = subprocess.run(["sh", "-c", snippet + '\necho "$ROLLGATE_ENVIRONMENT $ROLLGATE_TAG"'], env=env,
                          capture_output=True, text=True, timeout=10)
    environment, _, rollgate_tag = done.stdout.strip().rpartition("\n")[2].partition(" ")
    return done.returncode, environment, rollgate_tag


@pytest.mark.parametrize("ref,tag,iid,branch,expected", [
    ("develop", "", "3", "develop", ("dev", "dev-latest")),
    ("release/v1.4.0", "", "17", "release/v1.4.0", ("staging", "v1.4.0-rc17")),
    ("release/v10.0.2", "", "250", "release/v10.0.2", ("staging", "v10.0.2-rc250")),
    ("v2.0.0", "v2.0.0", "9", "", ("prod", "v2.0.0")),
])
def test_each_ref_becomes_a_release_rollgate_accepts(ref, tag, iid, branch, expected):
    code, environment, rollgate_tag = resolve_ref(ref, tag=tag, iid=iid)
    assert code == 0 and (environment, rollgate_tag) == expected
    check_tag_environment(parse_tag(rollgate_tag), environment)  # raises ConventionError when Rollgate would refuse
    if branch:
        check_branch(branch, environment)


def test_other_refs_fail_the_job_with_the_conventions():
    code, _, _ = resolve_ref("feature/login-page")
    assert code == 1


def _rollgate_lines(config: dict):
    for name, job in config.items():
        if not isinstance(job, dict):
            continue
        for line in job.get("script", []):
            for command in re.findall(r"rollgate (?:release create|status|wait|promote|sla)[^)\n]*", line):
                yield name, command


def test_every_rollgate_line_is_a_command_the_cli_parses():
    config = load(TEMPLATE)
    lines = list(_rollgate_lines(config))
    assert {command.split()[1] for _, command in lines} == {"release", "status", "wait", "promote", "sla"}
    sample = {"$ROLLGATE_RELEASE_ID": "42", "$ROLLGATE_WAIT_READY_SECONDS": "1800", "$ROLLGATE_WAIT_LIVE_SECONDS":
              "3600", "$SERVICE": "agent-infer", "$ROLLGATE_ENVIRONMENT": "staging", "$ROLLGATE_TAG": "v1.4.0-rc17",
              "$CI_PIPELINE_URL": "https://gitlab.example.com/p/1"}
    for job, command in lines:
        for name, value in sample.items():
            command = command.replace(name, value)
        assert "$" not in command, f"{job}: unknown variable in {command}"
        args = build_parser().parse_args(shlex.split(command)[1:])  # SystemExit (exit 2) on a bad command
        assert callable(args.handler)
    waits = [command for _, command in lines if command.startswith("rollgate wait")]
    assert any("--until ready" in w for w in waits) and any("--until live" in w for w in waits)


def test_stages_run_build_release_wait_promote_and_prod_promotion_is_manual():
    config = load(TEMPLATE)
    assert config["stages"] == ["build", "release", "wait", "promote"]
    assert [config[job]["stage"] for job in ("rollgate-build", "rollgate-release", "rollgate-wait-ready",
                                             "rollgate-promote")] == ["build", "release", "wait", "promote"]
    assert config["rollgate-release"]["artifacts"]["reports"]["dotenv"] == "rollgate.env"
    promote_rules = config["rollgate-promote"]["rules"]
    assert [r.get("when") for r in promote_rules if "CI_COMMIT_TAG" in r["if"]] == ["manual"]
    assert all(r.get("when") is None for r in promote_rules if "CI_COMMIT_BRANCH" in r["if"])


def test_the_example_project_includes_the_template_and_orders_its_stages():
    project = load(PROJECT)
    assert project["include"][0]["file"] == "examples/gitlab-ci/rollgate.gitlab-ci.yml"
    assert project["stages"] == ["test", *load(TEMPLATE)["stages"]]
