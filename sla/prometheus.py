"""The one wrapper around prometheus-api-client.

Only this module imports `prometheus_api_client` (house rule: third-party SDKs are wrapped once).  It runs
instant queries at an explicit evaluation time, with a client and a server-side timeout, and turns every
failure into :class:`PrometheusUnavailable` (cannot reach or overloaded: try again later) or
:class:`QueryError` (Prometheus rejected the query: a bug or a bad configuration).  Nothing raw escapes.

Every number comes back as a :class:`Reading` that carries the exact query, the window and the evaluation
time that produced it, so reports can show where each figure came from.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Hashable, Mapping

import requests
from prometheus_api_client import PrometheusApiClientException, PrometheusConnect
from urllib3.util.retry import Retry


class PrometheusError(Exception):
    """Base class: a query could not produce readings."""

    def __init__(self, message: str, *, query: str | None = None):
        super().__init__(message)
        self.message = message
        self.query = query

    def __str__(self) -> str:
        return self.message if not self.query else f"{self.message} (query: {self.query})"


class PrometheusUnavailable(PrometheusError):
    """Prometheus could not be reached, timed out or answered with a server error."""


class QueryError(PrometheusError):
    """Prometheus rejected the query (bad PromQL, bad parameters)."""


@dataclass(frozen=True)
class Reading:
    """One number and its provenance. `value` is None when Prometheus returned NaN (e.g. 0/0)."""

    value: float | None
    query: str
    window_s: int | None
    at: datetime

    def to_dict(self) -> dict:
        return {
            "value": self.value,
            "query": self.query,
            "window_s": self.window_s,
            "at": self.at.isoformat(),
        }


@dataclass(frozen=True)
class Sample:
    labels: dict
    reading: Reading


def _to_float(raw: str) -> float | None:
    value = float(raw)
    return None if math.isnan(value) else value


class PrometheusClient:
    """Instant queries against one Prometheus (or a compatible API: Thanos, Mimir, a cluster's auth proxy).

    TLS certificates are verified by default (``verify_tls``), against ``ca_bundle`` (a PEM file) when the server's
    CA is private. ``bearer_token`` or ``basic_auth`` (user, password) authenticate; ``headers`` are sent with every
    request (X-Scope-OrgID for a multi-tenant Mimir, say). Secrets never appear in errors or in ``repr``.
    """

    def __init__(self, url: str, *, timeout_s: float = 5.0, max_workers: int = 4, verify_tls: bool = True,
                 ca_bundle: str = "", bearer_token: str = "", basic_auth: tuple[str, str] | None = None,
                 headers: Mapping[str, str] | None = None):
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s
        self.max_workers = max_workers
        if bearer_token and basic_auth:
            raise ValueError("Prometheus access takes a bearer token or basic auth, not both")
        session = requests.Session()
        session.verify = (ca_bundle or True) if verify_tls else False
        request_headers = dict(headers or {})
        if bearer_token:
            request_headers["Authorization"] = f"Bearer {bearer_token}"
        # No retries inside a request: the gate evaluates again soon and counts consecutive failures itself;
        # retrying here would only make "Prometheus is down" slower to report.  POST: batched selectors can
        # be long.
        self._connection = PrometheusConnect(
            url=self.url,
            headers=request_headers or None,
            auth=tuple(basic_auth) if basic_auth else None,
            session=session,
            retry=Retry(total=0, connect=0, read=0, backoff_factor=0),
            timeout=timeout_s,
            method="POST",
        )

    def __repr__(self) -> str:
        return f"PrometheusClient({self.url!r})"

    def instant(self, query: str, *, window_s: int | None, at: datetime) -> list[Sample]:
        """Evaluate `query` at time `at`; one Sample per returned series."""
        at = at.astimezone(timezone.utc) if at.tzinfo else at.replace(tzinfo=timezone.utc)
        params = {"time": f"{at.timestamp():.3f}", "timeout": f"{int(self.timeout_s * 1000)}ms"}
        try:
            result = self._connection.custom_query(query, params=params)
        except requests.exceptions.SSLError as exc:
            raise PrometheusUnavailable(
                f"TLS verification of Prometheus at {self.url} failed (a private CA? set its PEM file as the CA "
                f"bundle): {type(exc).__name__}", query=query
            ) from exc
        except requests.Timeout as exc:
            raise PrometheusUnavailable(
                f"Prometheus at {self.url} did not answer within {self.timeout_s}s", query=query
            ) from exc
        except requests.RequestException as exc:
            raise PrometheusUnavailable(
                f"Prometheus at {self.url} is unreachable: {type(exc).__name__}", query=query
            ) from exc
        except PrometheusApiClientException as exc:
            text = str(exc)
            if "HTTP Status Code 400" in text or "HTTP Status Code 422" in text:
                raise QueryError(f"Prometheus rejected the query: {text[:300]}", query=query) from exc
            if "HTTP Status Code 401" in text or "HTTP Status Code 403" in text:
                raise PrometheusUnavailable(
                    f"Prometheus at {self.url} refused Rollgate's credentials (HTTP {text.split('Code ')[1][:3]}): "
                    f"check the bearer token or basic auth", query=query) from exc
            raise PrometheusUnavailable(f"Prometheus answered with an error: {text[:300]}", query=query) from exc
        except ValueError as exc:  # a proxy answering 200 with non-JSON, for instance
            raise PrometheusUnavailable(f"Prometheus answered with malformed JSON: {exc}", query=query) from exc
        except (KeyError, TypeError) as exc:
            raise PrometheusUnavailable(f"unexpected answer shape from Prometheus: {exc!r}", query=query) from exc

        samples = []
        try:
            for series in result:
                _ts, raw = series["value"]
                samples.append(
                    Sample(
                        labels=dict(series.get("metric", {})),
                        reading=Reading(value=_to_float(raw), query=query, window_s=window_s, at=at),
                    )
                )
        except (KeyError, TypeError, ValueError) as exc:
            # a scalar/string/matrix result where a vector was expected
            raise QueryError(f"query did not return an instant vector: {exc!r}", query=query) from exc
        return samples

    def grouped(
        self, query: str, *, by: tuple[str, ...], window_s: int | None, at: datetime
    ) -> dict[tuple[str, ...], Reading]:
        """Evaluate a query aggregated `by (...)` and index the readings by those label values."""
        return {
            tuple(s.labels.get(label, "") for label in by): s.reading
            for s in self.instant(query, window_s=window_s, at=at)
        }

    def instant_many(
        self, queries: Mapping[Hashable, str], *, window_s: int | None, at: datetime
    ) -> dict[Hashable, list[Sample]]:
        """Evaluate several queries at the same `at`, a few in parallel; the first failure is raised."""
        keys = list(queries)
        with ThreadPoolExecutor(max_workers=max(1, min(self.max_workers, len(keys)))) as pool:
            futures = {k: pool.submit(self.instant, queries[k], window_s=window_s, at=at) for k in keys}
            return {k: futures[k].result() for k in keys}

    def close(self) -> None:
        self._connection.close()
