"""Gray-routing benchmark: prints one `<figure_name> <value>` line per figure it measures.

    python bench/routing.py

choose_per_s: RoutingClient.choose() calls per second on one core, for a gray release at
30 % with tenant and gray-tag rules present, each call passing tenant, region and headers
(the full rule check and the hash run on most calls).  Trace ids are made before the clock starts.
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rollgate_client import GrayRule, RoutingClient, RoutingTable  # noqa: E402

CALLS_PER_RUN = 200_000
RUNS = 5


def pin_to_one_core() -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})


def measure_choose_per_s() -> float:
    table = RoutingTable(
        service="agent-infer",
        environment="prod",
        revision=1,
        stable_version="v3.3.0",
        canary_version="v3.3.1",
        canary_weight=30,
        gray_rules=(GrayRule(tenants=["acme", "initech"]), GrayRule(gray_tags=["gray-phase-A"])),
    )
    client = RoutingClient(None, initial_table=table)
    rng = random.Random(7)
    trace_ids = ["%032x" % rng.getrandbits(128) for _ in range(CALLS_PER_RUN)]
    tenants = [rng.choice(["globex", "umbrella", "hooli", "acme"]) for _ in range(CALLS_PER_RUN)]
    headers = {"x-request-id": "r-1"}
    choose = client.choose
    rates = []
    for _ in range(RUNS):
        started = time.perf_counter()
        for trace_id, tenant in zip(trace_ids, tenants):
            choose(trace_id, tenant, "cn-bj", headers)
        rates.append(CALLS_PER_RUN / (time.perf_counter() - started))
    client.close()
    return statistics.median(rates)


# ingest_per_s (trace results ingested end to end through Rollgate's HTTP endpoint) needs the
# Django server; it gets its own measure_ingest_per_s() next to this one and a line in main().


def main() -> None:
    pin_to_one_core()
    figures = {"choose_per_s": measure_choose_per_s()}
    for name, value in figures.items():
        print(f"{name} {value:.0f}")


if __name__ == "__main__":
    main()
