"""Local deploy target timings: how long a version takes to answer its health check, and to stop (whole group).

    .venv/bin/python bench/local_target.py
Prints `local_start_to_healthy_s <median>`, `local_stop_s <median>` and `local_live_rollback_s <median>` (restore the
previous version as stable, healthy, then stop the bad one) over 5 rounds on 127.0.0.1.
"""
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from deploy.targets.local import LocalTarget  # noqa: E402

ROUNDS = 5


def main() -> None:
    starts, stops, rollbacks = [], [], []
    with tempfile.TemporaryDirectory() as state_dir:
        target = LocalTarget(state_dir, log=lambda line: None)
        try:
            for _ in range(ROUNDS):
                began = time.perf_counter()
                process, _ = target.start("agent-infer", "bench", "v1.0.0")
                assert target.wait_healthy(process).ok
                starts.append(time.perf_counter() - began)
                began = time.perf_counter()
                target.stop()
                stops.append(time.perf_counter() - began)

                bad, _ = target.start("agent-infer", "bench", "v1.1.0")
                assert target.wait_healthy(bad).ok
                began = time.perf_counter()
                target.roll_back("agent-infer", "bench", "v1.1.0", restore="v1.0.0")
                rollbacks.append(time.perf_counter() - began)
                target.stop()
        finally:
            target.stop()
    print(f"local_start_to_healthy_s {statistics.median(starts):.3f}")
    print(f"local_stop_s {statistics.median(stops):.3f}")
    print(f"local_live_rollback_s {statistics.median(rollbacks):.3f}")


if __name__ == "__main__":
    main()
