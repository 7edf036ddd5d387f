"""Rollgate's scheduler-side client for gray routing; needs only the standard library.

    from rollgate_client import RoutingClient
    client = RoutingClient("http://rollgate/api/routing/agent-infer/prod", default_stable="v3.3.0")
    version = client.choose(trace_id, tenant="acme", region="cn-bj", headers=request_headers)
    ...
    client.close()

Pieces: ``table`` (the JSON shape shared with the server), ``router`` (the pure decision),
``client`` (background freshness loop), ``results`` (trace-result batches).
"""

from rollgate_client.client import RoutingClient, TableFetchError
from rollgate_client.results import (
    MAX_BATCH_SIZE,
    BatchRejectedError,
    ResultsPostError,
    TraceResult,
    batch_response,
    post_results,
    validate_batch,
)
from rollgate_client.router import NoRoutableVersionError, Router, trace_point
from rollgate_client.table import GRAY_TAG_HEADER, GrayRule, RoutingTable, RoutingTableError

__all__ = [
    "GRAY_TAG_HEADER",
    "MAX_BATCH_SIZE",
    "BatchRejectedError",
    "GrayRule",
    "NoRoutableVersionError",
    "ResultsPostError",
    "Router",
    "RoutingClient",
    "RoutingTable",
    "RoutingTableError",
    "TableFetchError",
    "TraceResult",
    "batch_response",
    "post_results",
    "trace_point",
    "validate_batch",
]
