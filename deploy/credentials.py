"""Encryption at rest for environment credentials, and turning a TargetCredential into KubernetesCredentials.

The Fernet key is derived (HKDF-SHA256) from settings.ROLLGATE_CREDENTIALS_KEY, which comes from the environment
variable of that name or the file named by ROLLGATE_CREDENTIALS_KEY_FILE. Only local and test settings have a
default; without a key, credentials cannot be stored or read and the error says so (the rest of Rollgate runs).
"""
import base64
import json
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

from deploy.models import CredentialKind, TargetCredential
from deploy.targets.base import TargetError
from deploy.targets.k8s_credentials import KubernetesCredentials


class CredentialKeyMissing(TargetError):
    """No ROLLGATE_CREDENTIALS_KEY is configured."""


def _fernet() -> Fernet:
    secret = getattr(settings, "ROLLGATE_CREDENTIALS_KEY", "") or ""
    if not secret:
        raise CredentialKeyMissing("credentials cannot be stored or read: set ROLLGATE_CREDENTIALS_KEY "
                                   "(or ROLLGATE_CREDENTIALS_KEY_FILE) on the web and worker processes")
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"rollgate target credentials v1").derive(
        secret.encode())
    return Fernet(base64.urlsafe_b64encode(key))


def encrypt_payload(payload: dict) -> bytes:
    return _fernet().encrypt(json.dumps(payload, sort_keys=True).encode())


def decrypt_payload(ciphertext: bytes) -> dict:
    try:
        return json.loads(_fernet().decrypt(bytes(ciphertext)))
    except InvalidToken:
        raise TargetError("the stored credentials cannot be decrypted with the configured ROLLGATE_CREDENTIALS_KEY; "
                          "the key changed since they were saved: set them again") from None


def credential_file_allowed(path: str) -> bool:
    """Secret files may only be read from the directories where secrets are mounted (no ../ escapes)."""
    resolved = os.path.realpath(path)
    return any(resolved.startswith(os.path.realpath(root).rstrip("/") + "/")
               for root in settings.ROLLGATE_CREDENTIAL_FILE_DIRS)


def kubernetes_credentials(credential: TargetCredential | None, *, environment_name: str) -> KubernetesCredentials:
    """Build the target's credentials. Reads secret files at call time, so a rotated file is picked up."""
    if credential is None:
        raise TargetError(f"environment {environment_name} has no credentials for its kubernetes target; ops set "
                          f"them with PUT /api/environments/{environment_name}/credentials/")
    kind = credential.kind
    if kind == CredentialKind.KUBECONFIG:
        payload = decrypt_payload(credential.ciphertext)
        return KubernetesCredentials.from_kubeconfig(payload["kubeconfig"], context=credential.context or None)
    if kind == CredentialKind.TOKEN:
        payload = decrypt_payload(credential.ciphertext)
        return KubernetesCredentials.from_token(credential.host, payload["token"],
                                                ca_cert_pem=payload.get("ca_cert_pem") or None)
    for path in (credential.secret_path, credential.ca_path):
        if path and not credential_file_allowed(path):
            raise TargetError(f"environment {environment_name}: credential file outside the allowed secret directories")
    if kind == CredentialKind.KUBECONFIG_FILE:
        return KubernetesCredentials.from_kubeconfig(Path(credential.secret_path), context=credential.context or None)
    if kind == CredentialKind.TOKEN_FILE:
        return KubernetesCredentials.from_token_file(credential.host, credential.secret_path,
                                                     ca_path=credential.ca_path or None)
    raise TargetError(f"environment {environment_name}: unknown credential kind {kind!r}")
