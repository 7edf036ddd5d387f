"""Build, check and push against the real Podman service and the real registry."""

import httpx
import pytest

from pipelines.integrations.docker_build import (
    BuildFailed,
    ImageRejected,
    image_build_and_check,
    image_reference,
)
from pipelines.integrations.registry import PushFailed, image_push, manifest_digest
from tests.pipelines.flaky_registry import FlakyRegistryProxy

NO_WAIT = (0.05,)


def test_built_image_is_checked_pushed_and_its_digest_read_back(
        engine, registry, build_context, unique_reference):
    ref = unique_reference()
    lines = []
    built, check = image_build_and_check(context_dir=build_context, reference=ref,
                                         max_size_bytes=50 * 1024**2, log=lines.append,
                                         client=engine)
    assert check.passed, check.problems
    assert check.layer_count >= 1 and check.size_bytes > 0
    assert check.entrypoint == ["/bin/busybox", "sh"] and check.cmd == ["/app/run.sh"]
    assert built.image_id == check.image_id and built.image_id.startswith("sha256:")
    assert any("FROM scratch AS assemble" in line for line in lines)  # multi-stage log streamed

    result = image_push(reference=ref, log=lines.append, client=engine, backoff_s=NO_WAIT)
    assert [a.succeeded for a in result.attempts] == [True]
    # Read back independently of the module under test.
    response = httpx.get(f"http://{registry}/v2/{ref.name}/manifests/{ref.tag}",
                         headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json,"
                                            "application/vnd.oci.image.manifest.v1+json"})
    assert response.status_code == 200
    assert response.headers["Docker-Content-Digest"] == result.digest
    assert manifest_digest(reference=ref) == result.digest


def test_built_image_runs_its_command(engine, build_context, unique_reference):
    ref = unique_reference()
    image_build_and_check(context_dir=build_context, reference=ref, client=engine)
    output = engine.containers.run(str(ref), remove=True, network_mode="none")
    assert output.strip() == b"agent service ready"


def test_image_without_cmd_or_entrypoint_is_refused(engine, build_context, unique_reference):
    (build_context / "Dockerfile").write_text("FROM scratch\nCOPY app/run.sh /run.sh\n")
    ref = unique_reference()
    with pytest.raises(ImageRejected) as rejected:
        image_build_and_check(context_dir=build_context, reference=ref, client=engine)
    assert rejected.value.check.problems == [
        "image has neither CMD nor ENTRYPOINT, so it cannot start"]


def test_image_over_the_size_limit_is_refused(engine, build_context, unique_reference):
    ref = unique_reference()
    with pytest.raises(ImageRejected) as rejected:
        image_build_and_check(context_dir=build_context, reference=ref,
                              max_size_bytes=1024 * 1024, client=engine)
    check = rejected.value.check
    assert check.size_bytes > 1024 * 1024
    assert check.problems == [f"image is {check.size_bytes} bytes, over the 1048576-byte limit"]


def test_error_inside_the_build_stream_fails_the_build(engine, build_context, unique_reference):
    (build_context / "Dockerfile").write_text(
        "FROM scratch\nCOPY does-not-exist /x\nCMD [\"/x\"]\n")
    lines = []
    with pytest.raises(BuildFailed) as failed:
        image_build_and_check(context_dir=build_context, reference=unique_reference(),
                              log=lines.append, client=engine)
    assert "does-not-exist" in failed.value.reason


def test_missing_dockerfile_is_a_build_failure_naming_it(build_context, unique_reference):
    (build_context / "Dockerfile").unlink()
    with pytest.raises(BuildFailed, match="no Dockerfile in the build context"):
        image_build_and_check(context_dir=build_context, reference=unique_reference())


def test_registry_refusing_twice_then_accepting_succeeds_on_third_attempt(
        engine, registry, build_context, unique_reference):
    with FlakyRegistryProxy(upstream=registry, refuse_pushes=2) as proxy:
        ref = unique_reference(registry_address=proxy.address)
        image_build_and_check(context_dir=build_context, reference=ref, client=engine)
        waits = []
        result = image_push(reference=ref, client=engine, backoff_s=(0.01, 0.02),
                            sleep=waits.append)
    assert [a.succeeded for a in result.attempts] == [False, False, True]
    # Podman reports the status line, not the registry's error body.
    assert all("503 Service Unavailable" in a.reason for a in result.attempts[:2])
    assert "in push stream" in result.attempts[0].reason
    assert waits == [0.01, 0.02]
    assert proxy.manifest_puts == 3
    # The image is really in the registry behind the proxy.
    direct = image_reference(registry=registry, path=ref.path, service=ref.service, tag=ref.tag)
    assert manifest_digest(reference=direct) == result.digest


def test_registry_refusing_three_times_fails_with_every_reason(
        engine, registry, build_context, unique_reference):
    with FlakyRegistryProxy(upstream=registry, refuse_pushes=3) as proxy:
        ref = unique_reference(registry_address=proxy.address)
        image_build_and_check(context_dir=build_context, reference=ref, client=engine)
        with pytest.raises(PushFailed) as failed:
            image_push(reference=ref, client=engine, backoff_s=NO_WAIT)
    attempts = failed.value.attempts
    assert [a.number for a in attempts] == [1, 2, 3]
    assert not any(a.succeeded for a in attempts)
    assert all("uploading manifest" in a.reason and "503 Service Unavailable" in a.reason
               for a in attempts)
    assert "failed after 3 attempts" in str(failed.value)
    assert proxy.manifest_puts == 3


def test_unreachable_registry_fails_every_attempt_with_reason(engine, build_context,
                                                              unique_reference):
    # A port nothing listens on: bind one, close it, use its number.
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{s.getsockname()[1]}"
    ref = unique_reference(registry_address=dead)
    image_build_and_check(context_dir=build_context, reference=ref, client=engine)
    with pytest.raises(PushFailed) as failed:
        image_push(reference=ref, client=engine, max_attempts=2, backoff_s=NO_WAIT)
    assert len(failed.value.attempts) == 2
    assert all("connection refused" in a.reason for a in failed.value.attempts)


@pytest.mark.parametrize("hangs", [1, 2])
def test_registry_that_hangs_is_retried_and_named(engine, registry, build_context, unique_reference, hangs):
    """A registry that stops answering (the push stream shows no progress) is a failed attempt like a refusal:
    retried after the backoff, and the reason names the registry, not the engine's local socket."""
    from pipelines.integrations.docker_build import docker_client

    with FlakyRegistryProxy(upstream=registry, refuse_pushes=hangs, hang_s=6.0) as proxy:
        ref = unique_reference(registry_address=proxy.address)
        image_build_and_check(context_dir=build_context, reference=ref, client=engine)
        impatient = docker_client(timeout_s=2)  # the push's read timeout: no progress for 2 s
        try:
            result = image_push(reference=ref, client=impatient, max_attempts=hangs + 1, backoff_s=(6.5,))
        finally:
            impatient.close()
    assert [a.succeeded for a in result.attempts] == [False] * hangs + [True]
    for attempt in result.attempts[:hangs]:
        assert f"registry {proxy.address} stopped answering" in attempt.reason
        assert "read timeout" in attempt.reason and "sock" not in attempt.reason
    direct = image_reference(registry=registry, path=ref.path, service=ref.service, tag=ref.tag)
    assert manifest_digest(reference=direct) == result.digest
