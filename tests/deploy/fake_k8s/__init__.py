"""A fake Kubernetes API server (HTTP on 127.0.0.1) for exercising the official client in tests."""

from .server import FakeKubernetes

__all__ = ["FakeKubernetes"]
