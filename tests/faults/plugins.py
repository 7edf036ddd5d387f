"""Stage runners for the fault tests: work that takes a while (ROLLGATE_TEST_STAGE_SECONDS), so there is work in
flight when the broker, the database or a worker goes away. Each start and finish is appended to the file named by
ROLLGATE_TEST_STAGE_JOURNAL when it is set ("<stage id> <name> start <attempt> <pid>", "... done ..."), so a test
can kill the very process that runs a stage. ROLLGATE_TEST_STAGE_SECONDS_<NAME> (e.g. _BUILD) sets one stage's
duration."""
import os
import time
from pathlib import Path


def _journal(line: str) -> None:
    path = os.environ.get("ROLLGATE_TEST_STAGE_JOURNAL")
    if path:
        with Path(path).open("a") as f:
            f.write(line + "\n")


def timed_stage(ctx) -> None:
    _journal(f"{ctx.stage_id} {ctx.name} start {ctx.attempt} {os.getpid()}")
    ctx.log(f"{ctx.name} working")
    seconds = os.environ.get(f"ROLLGATE_TEST_STAGE_SECONDS_{ctx.name.upper()}") or os.environ.get(
        "ROLLGATE_TEST_STAGE_SECONDS", "0.3")
    deadline = time.monotonic() + float(seconds)
    while time.monotonic() < deadline:
        time.sleep(0.05)
        if os.environ.get("ROLLGATE_TEST_STAGE_LOG_EVERY"):  # a build that writes log lines as it goes
            ctx.log(f"{ctx.name} still working")
            time.sleep(float(os.environ["ROLLGATE_TEST_STAGE_LOG_EVERY"]))
    _journal(f"{ctx.stage_id} {ctx.name} done {ctx.attempt} {os.getpid()}")
