"""Stage runners and a deploy driver used as plugins by the tests (registered like any other runner/driver).

`slow_build` records each start and finish in the file named by ROLLGATE_TEST_STAGE_JOURNAL and takes a few
seconds, so a test can kill the worker in the middle of it.
"""
import os
import time
from pathlib import Path


def slow_build(ctx) -> None:
    journal = Path(os.environ["ROLLGATE_TEST_STAGE_JOURNAL"])
    with journal.open("a") as f:
        f.write(f"start {ctx.attempt}\n")
    ctx.log("slow build working")
    time.sleep(float(os.environ.get("ROLLGATE_TEST_STAGE_SECONDS", "3")))
    with journal.open("a") as f:
        f.write(f"done {ctx.attempt}\n")
