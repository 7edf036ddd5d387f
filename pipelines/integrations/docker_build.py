"""Image builds through the Docker Engine API (Docker or Podman's compatible service).

The only module that talks to the `docker` SDK for builds; pipeline stage tasks call
`image_build` and then `image_check` before an image may be pushed. Nothing here
imports Django: callers pass plain values and a `log` callable for the stage log.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import docker
import docker.errors

DEFAULT_DOCKER_HOST = "unix:///run/podman/podman.sock"
DEFAULT_MAX_IMAGE_BYTES = 2 * 1024**3
DEFAULT_BUILD_TIMEOUT_S = 1800

LogFn = Callable[[str], None]

# Docker's reference grammar, simplified to what Rollgate emits: lowercase path
# components separated by '/', '.', '_' or '-', and a tag of at most 128 characters.
_PATH_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_REGISTRY_HOST = re.compile(r"^[A-Za-z0-9.-]+(?::[0-9]{1,5})?$")


class BuildFailed(Exception):
    """The build did not produce an image; `reason` is safe to show to users."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class ImageRejected(Exception):
    """The image was built but may not leave: it failed the pre-push checks."""

    def __init__(self, check: ImageCheck):
        super().__init__("; ".join(check.problems))
        self.check = check


@dataclass(frozen=True)
class ImageReference:
    registry: str
    path: str
    service: str
    tag: str

    @property
    def repository(self) -> str:
        """`<registry>/<path>/<service>` without the tag."""
        parts = [self.registry, self.path.strip("/"), self.service]
        return "/".join(p for p in parts if p)

    @property
    def name(self) -> str:
        """The repository name inside the registry (what /v2/<name>/ uses)."""
        return self.repository.split("/", 1)[1]

    def __str__(self) -> str:
        return f"{self.repository}:{self.tag}"


def image_reference(*, registry: str, path: str, service: str, tag: str) -> ImageReference:
    """Build and validate `<registry>/<path>/<service>:<tag>`; errors name the bad part."""
    if not _REGISTRY_HOST.match(registry or ""):
        raise ValueError(f"registry {registry!r} must be a host or host:port, e.g. 127.0.0.1:5000")
    for component in [c for c in (path or "").strip("/").split("/") if c] + [service]:
        if not _PATH_COMPONENT.match(component or ""):
            raise ValueError(
                f"image path component {component!r} must be lowercase letters and digits "
                "separated by '.', '_' or '-'"
            )
    if not _TAG.match(tag or ""):
        raise ValueError(
            f"image tag {tag!r} must be 1-128 characters of letters, digits, '_', '.' or '-' "
            "and must not start with '.' or '-'"
        )
    return ImageReference(registry=registry, path=(path or "").strip("/"), service=service, tag=tag)


def parse_image_reference(reference: str) -> ImageReference:
    """Inverse of `str(ImageReference)`: `host:port/a/b/service:tag`."""
    repository, sep, tag = reference.rpartition(":")
    if not sep or "/" in tag:
        raise ValueError(f"image reference {reference!r} has no tag")
    registry, _, rest = repository.partition("/")
    path, _, service = rest.rpartition("/")
    return image_reference(registry=registry, path=path, service=service, tag=tag)


def docker_client(*, docker_host: str | None = None, timeout_s: int = 120) -> docker.DockerClient:
    """A client for DOCKER_HOST, falling back to the Podman socket `setup-pipelines.sh` starts."""
    base_url = docker_host or os.environ.get("DOCKER_HOST") or DEFAULT_DOCKER_HOST
    # version="auto" asks the daemon; Podman 4 answers with a Docker-compatible API version.
    return docker.DockerClient(base_url=base_url, version="auto", timeout=timeout_s)


@dataclass
class BuiltImage:
    reference: str
    image_id: str
    duration_s: float
    log_line_count: int


def image_build(
    *,
    context_dir: str | os.PathLike,
    reference: ImageReference | str,
    dockerfile: str = "Dockerfile",
    build_args: Mapping[str, str] | None = None,
    target: str | None = None,
    log: LogFn = lambda line: None,
    client: docker.DockerClient | None = None,
    timeout_s: int = DEFAULT_BUILD_TIMEOUT_S,
) -> BuiltImage:
    """Build `context_dir` with its Dockerfile and tag it as `reference`.

    Every line of the build output goes to `log` as it arrives. An `error` entry in
    the stream fails the build even when the HTTP call itself succeeded: the Engine
    API reports build errors inside a 200 response.
    """
    context = Path(context_dir)
    if not (context / dockerfile).is_file():
        raise BuildFailed(f"no {dockerfile} in the build context {context}")
    client = client or docker_client(timeout_s=timeout_s)
    started = time.monotonic()
    image_id = None
    line_count = 0
    try:
        stream = client.api.build(
            path=str(context),
            dockerfile=dockerfile,
            tag=str(reference),
            buildargs=dict(build_args or {}),
            target=target,
            rm=True,
            forcerm=True,
            pull=False,
            decode=True,
            timeout=timeout_s,
        )
        for chunk in stream:
            if "error" in chunk or "errorDetail" in chunk:
                message = chunk.get("error") or chunk.get("errorDetail", {}).get("message", "")
                log(f"ERROR {message.strip()}")
                raise BuildFailed(f"build error: {message.strip() or 'unknown error'}")
            text = chunk.get("stream") or chunk.get("status")
            if text:
                for line in text.splitlines():
                    if line.strip():
                        line_count += 1
                        log(line.rstrip())
            aux = chunk.get("aux")
            if isinstance(aux, dict) and aux.get("ID"):
                image_id = aux["ID"]
    except docker.errors.APIError as exc:
        raise BuildFailed(f"build refused by the engine: {exc.explanation or exc}") from exc
    except docker.errors.DockerException as exc:
        raise BuildFailed(f"cannot reach the build engine: {exc}") from exc
    except OSError as exc:
        raise BuildFailed(f"build interrupted: {exc}") from exc

    try:
        # The tag is the source of truth: some engines omit the aux ID entry.
        image = client.images.get(str(reference))
    except docker.errors.NotFound as exc:
        raise BuildFailed(f"build finished without producing {reference}") from exc
    if image_id and image.id != image_id:
        raise BuildFailed(f"{reference} points at {image.id}, not the built image {image_id}")
    return BuiltImage(
        reference=str(reference),
        image_id=image.id,
        duration_s=round(time.monotonic() - started, 3),
        log_line_count=line_count,
    )


@dataclass
class ImageCheck:
    reference: str
    image_id: str
    size_bytes: int
    layer_count: int
    cmd: list[str] | None
    entrypoint: list[str] | None
    max_size_bytes: int
    repo_digests: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict:
        return {
            "reference": self.reference,
            "image_id": self.image_id,
            "size_bytes": self.size_bytes,
            "layer_count": self.layer_count,
            "cmd": self.cmd,
            "entrypoint": self.entrypoint,
            "max_size_bytes": self.max_size_bytes,
            "repo_digests": self.repo_digests,
            "problems": self.problems,
            "passed": self.passed,
        }


def image_check(
    *,
    reference: ImageReference | str,
    max_size_bytes: int = DEFAULT_MAX_IMAGE_BYTES,
    client: docker.DockerClient | None = None,
) -> ImageCheck:
    """Inspect a built image and list every reason it may not leave (all, not just the first)."""
    client = client or docker_client()
    try:
        attrs = client.api.inspect_image(str(reference))
    except docker.errors.NotFound:
        return ImageCheck(
            reference=str(reference), image_id="", size_bytes=0, layer_count=0, cmd=None,
            entrypoint=None, max_size_bytes=max_size_bytes,
            problems=[f"image {reference} does not exist"],
        )
    config = attrs.get("Config") or {}
    layers = (attrs.get("RootFS") or {}).get("Layers") or []
    size = int(attrs.get("Size") or 0)
    check = ImageCheck(
        reference=str(reference),
        image_id=attrs.get("Id", ""),
        size_bytes=size,
        layer_count=len(layers),
        cmd=config.get("Cmd") or None,
        entrypoint=config.get("Entrypoint") or None,
        max_size_bytes=max_size_bytes,
        repo_digests=list(attrs.get("RepoDigests") or []),
    )
    if not layers or size == 0:
        check.problems.append("image is empty: it has no layers or files")
    if not check.cmd and not check.entrypoint:
        check.problems.append("image has neither CMD nor ENTRYPOINT, so it cannot start")
    if size > max_size_bytes:
        check.problems.append(
            f"image is {size} bytes, over the {max_size_bytes}-byte limit"
        )
    return check


def image_build_and_check(
    *,
    context_dir: str | os.PathLike,
    reference: ImageReference | str,
    max_size_bytes: int = DEFAULT_MAX_IMAGE_BYTES,
    log: LogFn = lambda line: None,
    client: docker.DockerClient | None = None,
    **build_options,
) -> tuple[BuiltImage, ImageCheck]:
    """The build stage in one call: build, then raise ImageRejected if the image may not leave."""
    client = client or docker_client()
    built = image_build(context_dir=context_dir, reference=reference, log=log, client=client,
                        **build_options)
    check = image_check(reference=reference, max_size_bytes=max_size_bytes, client=client)
    log(f"image {check.reference}: id {check.image_id}, {check.size_bytes} bytes, "
        f"{check.layer_count} layers")
    if not check.passed:
        for problem in check.problems:
            log(f"REJECTED {problem}")
        raise ImageRejected(check)
    return built, check


def image_remove(*, reference: ImageReference | str,
                 client: docker.DockerClient | None = None) -> None:
    """Untag/remove a local image; missing images are fine (idempotent clean-up)."""
    client = client or docker_client()
    try:
        client.api.remove_image(str(reference), force=True)
    except docker.errors.NotFound:
        pass
