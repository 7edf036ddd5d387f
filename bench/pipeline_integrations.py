"""Wall time of the real build, image check, push (+ manifest read-back) and scan steps.

Needs scripts/setup-pipelines.sh to have run. Prints one `<figure> <value>` line each.
Run: /work/main/.venv/bin/python bench/pipeline_integrations.py
"""

import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipelines.integrations.docker_build import (  # noqa: E402
    docker_client, image_build_and_check, image_reference, image_remove)
from pipelines.integrations.registry import image_push  # noqa: E402
from pipelines.integrations.scanners import service_scan  # noqa: E402

FIXTURE = Path(__file__).resolve().parent.parent / "tests/pipelines/fixtures/agent_service"
ROUNDS = 3


def main():
    client = docker_client()
    build, push, scan = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        context = Path(tmp) / "svc"
        shutil.copytree(FIXTURE, context)
        shutil.copy2("/bin/busybox", context / "busybox")
        for round_number in range(ROUNDS):
            # A new file per round so the build cannot be served from cache.
            (context / "app" / "round.txt").write_text(uuid.uuid4().hex)
            ref = image_reference(registry="127.0.0.1:5000", path="rollgate-bench",
                                  service="agent", tag=f"r{round_number}-{uuid.uuid4().hex[:6]}")
            started = time.monotonic()
            image_build_and_check(context_dir=context, reference=ref, client=client)
            build.append(time.monotonic() - started)
            started = time.monotonic()
            image_push(reference=ref, client=client)
            push.append(time.monotonic() - started)
            started = time.monotonic()
            service_scan(context_dir=context, image=str(ref), sbom_output=Path(tmp) / "sbom.json")
            scan.append(time.monotonic() - started)
            image_remove(reference=ref, client=client)
    median = lambda values: sorted(values)[len(values) // 2]  # noqa: E731
    print(f"build_and_check_s {median(build):.3f}")
    print(f"push_and_verify_s {median(push):.3f}")
    print(f"scan_all_checks_s {median(scan):.3f}")


if __name__ == "__main__":
    main()
