"""Apply/rollout timings of the Kubernetes target against the fake API server (loopback only).

Figures (median of N runs, milliseconds):
  k8s_apply_new_revision_ms        apply of a changed revision (5 objects, one write)
  k8s_apply_same_revision_ms       apply of an unchanged revision (reads only)
  k8s_rollout_watch_ms             watch until 4 replicas are rolled out (fake controller ticks 20 ms)
  k8s_crashloop_detect_ms          watch until a crash-looping release is reported, with diagnostics
Run: PYTHONPATH=. .venv/bin/python bench/k8s_fake_apply.py
"""

from __future__ import annotations

import statistics
import time

from deploy.targets.k8s_credentials import KubernetesCredentials
from deploy.targets.kubernetes import KubernetesTarget
from tests.deploy.fake_k8s import FakeKubernetes
from tests.deploy.targets.conftest import TOKEN, revision_for, settings

RUNS = 10


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


def main() -> None:
    fake = FakeKubernetes(token=TOKEN).start()
    target = KubernetesTarget(KubernetesCredentials.from_token(fake.host, TOKEN), log=lambda line: None, settings=settings())
    figures: dict[str, list[float]] = {k: [] for k in ("apply_new", "apply_same", "watch", "crash")}
    try:
        for run in range(RUNS):
            revision = revision_for(f"v1.{run}.0")
            figures["apply_new"].append(timed(lambda: target.apply(revision)))
            figures["watch"].append(timed(lambda: target.watch_rollout(revision)))
            figures["apply_same"].append(timed(lambda: target.apply(revision)))
        for run in range(3):
            bad = revision_for(f"v9.{run}.0")
            fake.fail_image(bad.image_tag, "crashloop")
            target.apply(bad)
            figures["crash"].append(timed(lambda: target.watch_rollout(bad)))
            good = revision_for(f"v1.{RUNS - 1}.0")
            target.apply(good)
            target.watch_rollout(good)
    finally:
        target.close()
        fake.stop()
    print(f"k8s_apply_new_revision_ms {statistics.median(figures['apply_new']):.1f}")
    print(f"k8s_apply_same_revision_ms {statistics.median(figures['apply_same']):.1f}")
    print(f"k8s_rollout_watch_ms {statistics.median(figures['watch']):.1f}")
    print(f"k8s_crashloop_detect_ms {statistics.median(figures['crash']):.1f}")


if __name__ == "__main__":
    main()
