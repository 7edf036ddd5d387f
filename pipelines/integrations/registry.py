"""Image push (through the Docker Engine API) and manifest read-back (Registry HTTP API v2).

The push stage calls `image_push`: up to `max_attempts` pushes with backoff, every
failure's reason kept, then the pushed digest verified by reading the manifest back
straight from the registry, so a push that "succeeded" into a proxy or cache that lost
it is still caught.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import docker
import docker.errors
import httpx

from pipelines.integrations.docker_build import (
    ImageReference,
    docker_client,
    parse_image_reference,
)

LogFn = Callable[[str], None]

MANIFEST_ACCEPT = ", ".join([
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
])
_PUSHED_DIGEST = re.compile(r"digest: (sha256:[0-9a-f]{64})")
DEFAULT_BACKOFF_S = (2.0, 5.0)


class PushFailed(Exception):
    """All attempts failed; `attempts` holds each one's reason."""

    def __init__(self, reference: str, attempts: list[PushAttempt]):
        reasons = "; ".join(f"attempt {a.number}: {a.reason}" for a in attempts)
        super().__init__(f"push of {reference} failed after {len(attempts)} attempts: {reasons}")
        self.reference = reference
        self.attempts = attempts


class ManifestError(Exception):
    pass


@dataclass
class PushAttempt:
    number: int
    succeeded: bool
    reason: str = ""
    duration_s: float = 0.0
    digest: str = ""


@dataclass
class PushResult:
    reference: str
    digest: str
    attempts: list[PushAttempt] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "reference": self.reference,
            "digest": self.digest,
            "attempts": [vars(a) for a in self.attempts],
        }


def registry_is_loopback(registry: str) -> bool:
    host = registry.rsplit(":", 1)[0] if registry.count(":") == 1 else registry
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def manifest_digest(
    *, reference: ImageReference | str, insecure: bool | None = None, timeout_s: float = 10.0,
    auth: tuple[str, str] | None = None,
) -> str:
    """GET /v2/<name>/manifests/<tag> and return its verified Docker-Content-Digest.

    The header is only trusted after checking it against the sha256 of the bytes the
    registry actually returned.
    """
    ref = parse_image_reference(reference) if isinstance(reference, str) else reference
    if insecure is None:
        insecure = registry_is_loopback(ref.registry)
    scheme = "http" if insecure else "https"
    url = f"{scheme}://{ref.registry}/v2/{ref.name}/manifests/{ref.tag}"
    try:
        response = httpx.get(url, headers={"Accept": MANIFEST_ACCEPT}, timeout=timeout_s,
                             auth=auth)
    except httpx.HTTPError as exc:
        raise ManifestError(f"cannot read the manifest of {ref}: {exc}") from exc
    if response.status_code != 200:
        raise ManifestError(
            f"registry answered {response.status_code} for the manifest of {ref}: "
            f"{response.text[:200]}"
        )
    header_digest = response.headers.get("Docker-Content-Digest", "")
    body_digest = "sha256:" + hashlib.sha256(response.content).hexdigest()
    if header_digest and header_digest != body_digest:
        raise ManifestError(
            f"registry's Docker-Content-Digest {header_digest} does not match the manifest "
            f"it returned ({body_digest})"
        )
    return body_digest


def _push_stream(client: docker.DockerClient, ref: ImageReference, insecure: bool):
    """Yield decoded push-progress entries.

    `APIClient.push` cannot pass Podman's `tlsVerify` query parameter, and Podman
    (unlike Docker) does not treat loopback registries as plain HTTP, so the request is
    made with the SDK's own request helpers. Docker ignores the unknown parameter.
    """
    api = client.api
    params = {"tag": ref.tag}
    if insecure:
        params["tlsVerify"] = "false"
    response = api._post(api._url("/images/{0}/push", ref.repository), params=params,
                         stream=True, headers={"X-Registry-Auth": "e30="})  # "{}" base64
    api._raise_for_status(response)
    yield from api._stream_helper(response, decode=True)


def _push_once(client, ref: ImageReference, insecure: bool, log: LogFn) -> str:
    """One push; returns the digest the engine reported. Raises RuntimeError with the reason."""
    pushed_digest = ""
    try:
        for entry in _push_stream(client, ref, insecure):
            if "error" in entry or "errorDetail" in entry:
                message = entry.get("error") or entry.get("errorDetail", {}).get("message", "")
                raise RuntimeError(f"registry error in push stream: {message.strip()}")
            status = entry.get("status", "")
            if status:
                log(status if not entry.get("progress") else f"{status} {entry['progress']}")
                match = _PUSHED_DIGEST.search(status)
                if match:
                    pushed_digest = match.group(1)
            aux = entry.get("aux")
            if isinstance(aux, dict) and aux.get("Digest"):
                pushed_digest = aux["Digest"]
    except docker.errors.APIError as exc:
        raise RuntimeError(f"engine refused the push: {exc.explanation or exc}") from exc
    except RuntimeError:
        raise  # our own reason, from the stream above
    except Exception as exc:  # noqa: BLE001 - requests, urllib3 and socket errors all end a push the same way
        # The engine relays the registry: when the engine's answer stops, the registry behind it is the usual
        # cause, so the reason names the registry (the local socket's name says nothing to the reader).
        if _is_timeout(exc):
            waited = getattr(client.api, "timeout", None)
            raise RuntimeError(f"registry {ref.registry} stopped answering: no progress from the push of {ref} for "
                               f"{waited} s (read timeout)") from exc
        raise RuntimeError(f"push of {ref} to registry {ref.registry} interrupted: {type(exc).__name__}") from exc
    return pushed_digest


def _is_timeout(exc: BaseException) -> bool:
    """A read timeout, whichever layer raised it (socket, urllib3, requests, or one wrapping the other)."""
    import requests.exceptions
    import urllib3.exceptions

    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, (TimeoutError, requests.exceptions.Timeout, urllib3.exceptions.TimeoutError)):
            return True
        exc = exc.__cause__ or exc.__context__ or (exc.args[0] if exc.args and isinstance(exc.args[0],
                                                                                          BaseException) else None)
    return False


def image_push(
    *,
    reference: ImageReference | str,
    max_attempts: int = 3,
    backoff_s: Sequence[float] = DEFAULT_BACKOFF_S,
    insecure: bool | None = None,
    log: LogFn = lambda line: None,
    client: docker.DockerClient | None = None,
    sleep: Callable[[float], None] = time.sleep,
    timeout_s: float = 120.0,
) -> PushResult:
    """Push with retries and verify the digest by reading the manifest back.

    `backoff_s[i]` is the wait after failed attempt i+1 (the last value repeats).
    A digest mismatch, an unreadable manifest, a refusal and a registry that stops answering (no progress for
    `timeout_s`, a read timeout) each count as a failed attempt; every reason names the registry's address.
    Raises PushFailed with every attempt's reason when none succeeded.
    """
    ref = parse_image_reference(reference) if isinstance(reference, str) else reference
    if insecure is None:
        insecure = registry_is_loopback(ref.registry)
    client = client or docker_client(timeout_s=timeout_s)
    attempts: list[PushAttempt] = []
    for number in range(1, max_attempts + 1):
        started = time.monotonic()
        attempt = PushAttempt(number=number, succeeded=False)
        attempts.append(attempt)
        try:
            log(f"push attempt {number}/{max_attempts} of {ref}")
            pushed_digest = _push_once(client, ref, insecure, log)
            registry_digest = manifest_digest(reference=ref, insecure=insecure)
            if pushed_digest and pushed_digest != registry_digest:
                raise RuntimeError(
                    f"digest mismatch: engine pushed {pushed_digest}, registry serves "
                    f"{registry_digest}"
                )
            attempt.succeeded = True
            attempt.digest = registry_digest
            log(f"pushed {ref} digest {registry_digest} (verified from the registry)")
            return PushResult(reference=str(ref), digest=registry_digest, attempts=attempts)
        except (RuntimeError, ManifestError) as exc:
            attempt.reason = str(exc)
            log(f"push attempt {number} failed: {attempt.reason}")
        finally:
            attempt.duration_s = round(time.monotonic() - started, 3)
        if number < max_attempts and backoff_s:
            sleep(backoff_s[min(number - 1, len(backoff_s) - 1)])
    raise PushFailed(str(ref), attempts)
