"""Credentials for one environment's cluster, and the ApiClient built from them.

An environment authenticates with either a kubeconfig (dict, YAML text or file) or a host plus a
service-account token and CA. The secret parts never appear in repr(), logs or error messages:
``repr=False`` keeps them out of dataclass output, and every log line and error message the
target produces passes through ``Redactor`` as a second line of defence.
"""

from __future__ import annotations

import atexit
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config

from .base import LogFn, TargetError

REDACTED = "[redacted]"
# kubeconfig user fields that authenticate; their values are secrets.
_SECRET_USER_FIELDS = ("token", "password", "client-key-data", "client-certificate-data")


@dataclass(frozen=True)
class KubernetesCredentials:
    host: str | None = None
    token: str | None = field(default=None, repr=False)
    ca_cert_pem: str | None = field(default=None, repr=False)
    kubeconfig: dict | None = field(default=None, repr=False)
    context: str | None = None
    verify_ssl: bool = True

    @classmethod
    def from_token(cls, host: str, token: str, *, ca_cert_pem: str | None = None, verify_ssl: bool = True) -> "KubernetesCredentials":
        if not token or not token.strip():
            raise TargetError("the service-account token is empty")
        return cls(host=host, token=token.strip(), ca_cert_pem=ca_cert_pem, verify_ssl=verify_ssl)

    @classmethod
    def from_token_file(cls, host: str, token_path: str | os.PathLike, *, ca_path: str | os.PathLike | None = None) -> "KubernetesCredentials":
        """Read a mounted service-account token (and CA) from secret files."""
        try:
            token = Path(token_path).read_text()
            ca = Path(ca_path).read_text() if ca_path else None
        except OSError as exc:
            raise TargetError(f"cannot read credential file {exc.filename}: {exc.strerror}") from None
        return cls.from_token(host, token, ca_cert_pem=ca)

    @classmethod
    def from_kubeconfig(cls, source: dict | str | os.PathLike, *, context: str | None = None) -> "KubernetesCredentials":
        """``source`` is a parsed kubeconfig, its YAML text, or a path to it."""
        if isinstance(source, dict):
            document = source
        else:
            text = str(source)
            # Only an explicit path is read from disk: inline text that happens to name a file must not be.
            if isinstance(source, os.PathLike):
                try:
                    text = Path(source).read_text()
                except OSError as exc:
                    raise TargetError(f"cannot read kubeconfig file {exc.filename}: {exc.strerror}") from None
            try:
                document = yaml.safe_load(text)
            except yaml.YAMLError:
                raise TargetError("the kubeconfig is not valid YAML") from None
        if not isinstance(document, dict) or not document.get("clusters"):
            raise TargetError("the kubeconfig has no clusters")
        _refuse_unsafe_kubeconfig(document)
        return cls(kubeconfig=document, context=context)

    def secret_values(self) -> list[str]:
        """Every string that must never be shown (used by the redactor)."""
        secrets = [self.token] if self.token else []
        for user in (self.kubeconfig or {}).get("users") or []:
            details = (user or {}).get("user") or {}
            secrets.extend(str(details[key]) for key in _SECRET_USER_FIELDS if details.get(key))
        return [secret for secret in secrets if len(secret) >= 4]

    def describe(self) -> str:
        """A safe one-line description: where, and which kind of credential."""
        if self.kubeconfig is not None:
            return f"kubeconfig (context {self.context or self.kubeconfig.get('current-context') or 'default'})"
        return f"service-account token for {_strip_userinfo(self.host or '')}"


# Kubeconfig keys that make the client run a program or read a file on the worker. Credentials are data: embed
# them (token, client-certificate-data, certificate-authority-data) instead.
_UNSAFE_USER_KEYS = ("exec", "auth-provider", "tokenFile", "client-certificate", "client-key")
_UNSAFE_CLUSTER_KEYS = ("certificate-authority",)


def _refuse_unsafe_kubeconfig(document: dict) -> None:
    for section, key, unsafe in (("users", "user", _UNSAFE_USER_KEYS), ("clusters", "cluster", _UNSAFE_CLUSTER_KEYS)):
        for entry in document.get(section) or []:
            details = (entry or {}).get(key) or {}
            if not isinstance(details, dict):
                raise TargetError(f"the kubeconfig's {section} entries must be mappings")
            found = [name for name in unsafe if name in details]
            if found:
                raise TargetError(
                    f"the kubeconfig's {section} entry '{(entry or {}).get('name', '?')}' uses {', '.join(found)}: "
                    f"Rollgate does not run credential plugins or read files named in a kubeconfig; embed the "
                    f"credential (token, client-certificate-data, certificate-authority-data) instead")


class Redactor:
    """Replaces credential values in text; wraps a log callable so nothing secret reaches it."""

    def __init__(self, secrets: list[str]):
        self._secrets = sorted(set(secrets), key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return _strip_userinfo(text)

    def wrap(self, log: LogFn) -> LogFn:
        def redacted_log(line: str) -> None:
            log(self(line))

        return redacted_log


def _strip_userinfo(text: str) -> str:
    return re.sub(r"(https?://)[^/@\s]+@", r"\1", text)


def _write_temp_ca(pem: str) -> str:
    handle = tempfile.NamedTemporaryFile("w", prefix="rollgate-ca-", suffix=".pem", delete=False)
    with handle:
        handle.write(pem)
    atexit.register(lambda: os.path.exists(handle.name) and os.unlink(handle.name))
    return handle.name


def build_api_client(credentials: KubernetesCredentials, *, request_timeout_seconds: float | None = None) -> k8s_client.ApiClient:
    """An ApiClient for these credentials; never the process-wide default configuration."""
    configuration = k8s_client.Configuration()
    if credentials.kubeconfig is not None:
        try:
            k8s_config.load_kube_config_from_dict(
                credentials.kubeconfig,
                context=credentials.context,
                client_configuration=configuration,
                persist_config=False,
            )
        except Exception as exc:  # the loader raises ConfigException, KeyError, ValueError...
            detail = Redactor(credentials.secret_values())(str(exc))
            raise TargetError(f"the kubeconfig cannot be used: {detail}") from None
    else:
        if not credentials.host or not credentials.token:
            raise TargetError("Kubernetes credentials need a host and a token, or a kubeconfig")
        configuration.host = credentials.host.rstrip("/")
        configuration.api_key = {"authorization": credentials.token}
        configuration.api_key_prefix = {"authorization": "Bearer"}
        configuration.verify_ssl = credentials.verify_ssl
        if credentials.ca_cert_pem:
            configuration.ssl_ca_cert = _write_temp_ca(credentials.ca_cert_pem)
    configuration.debug = False  # debug mode logs request headers, including the bearer token
    api_client = k8s_client.ApiClient(configuration)
    api_client.user_agent = "rollgate-deploy"
    return api_client


def api_client_host(api_client: Any) -> str:
    return _strip_userinfo(getattr(api_client.configuration, "host", "") or "")
