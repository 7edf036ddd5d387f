"""How the SLA gate reaches the Prometheus of each environment: URL, TLS, credentials, headers (from settings).

Settings are read here, once, and handed to the Django-free client (sla/prometheus.py) as plain arguments.
"""
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings

from sla.prometheus import PrometheusClient

ENVIRONMENT_KEYS = {"url", "tls_verify", "ca_bundle", "bearer_token_file", "username", "password_file", "headers"}


class AccessConfigError(ValueError):
    """ROLLGATE_PROMETHEUS_ENVIRONMENTS names a key or value Rollgate does not understand."""


@dataclass(frozen=True)
class PrometheusAccess:
    url: str
    verify_tls: bool = True
    ca_bundle: str = ""
    bearer_token: str = field(default="", repr=False)
    username: str = ""
    password: str = field(default="", repr=False)
    headers: tuple[tuple[str, str], ...] = ()

    def client(self, *, timeout_s: float) -> PrometheusClient:
        return PrometheusClient(self.url, timeout_s=timeout_s, verify_tls=self.verify_tls, ca_bundle=self.ca_bundle,
                                bearer_token=self.bearer_token,
                                basic_auth=(self.username, self.password) if self.username else None,
                                headers=dict(self.headers))


def _read_secret(path: str, *, what: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError as error:
        raise AccessConfigError(f"{what}: cannot read {path}: {error.strerror}") from error


def prometheus_access(environment: str, *, url: str | None = None) -> PrometheusAccess:
    """The access to `environment`'s Prometheus: its ROLLGATE_PROMETHEUS_ENVIRONMENTS entry over the defaults.
    `url` (a test's or a benchmark's own Prometheus) replaces every URL."""
    entry = settings.ROLLGATE_PROMETHEUS_ENVIRONMENTS.get(environment) or {}
    unknown = sorted(set(entry) - ENVIRONMENT_KEYS)
    if unknown:
        raise AccessConfigError(f"ROLLGATE_PROMETHEUS_ENVIRONMENTS[{environment!r}]: unknown keys {unknown}; "
                                f"known: {sorted(ENVIRONMENT_KEYS)}")
    where = f"ROLLGATE_PROMETHEUS_ENVIRONMENTS[{environment!r}]"
    bearer = (_read_secret(entry["bearer_token_file"], what=f"{where}.bearer_token_file")
              if entry.get("bearer_token_file") else settings.PROMETHEUS_BEARER_TOKEN)
    username = entry.get("username", settings.PROMETHEUS_USERNAME)
    password = (_read_secret(entry["password_file"], what=f"{where}.password_file")
                if entry.get("password_file") else settings.PROMETHEUS_PASSWORD)
    headers = {**settings.PROMETHEUS_HEADERS, **(entry.get("headers") or {})}
    if "bearer_token_file" in entry and "username" in entry:
        raise AccessConfigError(f"{where}: a bearer token or a username/password, not both")
    if entry.get("username"):
        bearer = ""  # the environment chose basic auth over the default token
    elif entry.get("bearer_token_file"):
        username = password = ""
    return PrometheusAccess(
        url=url or entry.get("url") or settings.PROMETHEUS_URL,
        verify_tls=bool(entry.get("tls_verify", settings.PROMETHEUS_TLS_VERIFY)),
        ca_bundle=entry.get("ca_bundle", settings.PROMETHEUS_CA_BUNDLE),
        bearer_token=bearer, username=username, password=password,
        headers=tuple(sorted((str(k), str(v)) for k, v in headers.items())))


class MisconfiguredClient:
    """Stands in for the client of an environment whose access settings are broken: every query fails with the
    configuration error, so the gate reports it on that environment's releases (and the others still run)."""

    def __init__(self, error: Exception):
        self.error = error

    def instant_many(self, queries, *, window_s, at):
        from sla.prometheus import PrometheusUnavailable

        raise PrometheusUnavailable(f"Prometheus access is misconfigured: {self.error}")

    instant = instant_many

    def close(self) -> None:
        pass


def prometheus_client_for(environment: str, *, url: str | None = None, timeout_s: float):
    try:
        return prometheus_access(environment, url=url).client(timeout_s=timeout_s)
    except (AccessConfigError, ValueError) as error:
        return MisconfiguredClient(error)
