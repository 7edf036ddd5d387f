"""Secrets at rest that Rollgate must read back (webhook URLs with tokens in them, signing secrets): encrypted with
a Fernet key derived from ROLLGATE_CREDENTIALS_KEY (HKDF, its own purpose label), transparently by SealedTextField.

Values written before a field was sealed are read as they are and sealed at the next save (the migration that
seals a field re-saves every row)."""
import base64

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.db import models

PREFIX = "sealed:v1:"


def _fernet() -> Fernet:
    secret = getattr(settings, "ROLLGATE_CREDENTIALS_KEY", "") or ""
    if not secret:
        raise RuntimeError("secrets cannot be stored or read: set ROLLGATE_CREDENTIALS_KEY (or _FILE)")
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"rollgate sealed fields v1").derive(
        secret.encode())
    return Fernet(base64.urlsafe_b64encode(key))


def seal(text: str) -> str:
    if not text or text.startswith(PREFIX):
        return text
    return PREFIX + _fernet().encrypt(text.encode("utf-8")).decode("ascii")


def unseal(stored: str) -> str:
    if not stored or not stored.startswith(PREFIX):
        return stored
    try:
        return _fernet().decrypt(stored[len(PREFIX):].encode("ascii")).decode("utf-8")
    except InvalidToken:
        raise RuntimeError("a sealed value cannot be read with this ROLLGATE_CREDENTIALS_KEY") from None


class SealedTextField(models.TextField):
    """A text column that holds only ciphertext; Python code sees the plain value."""

    def from_db_value(self, value, expression, connection):
        return unseal(value) if isinstance(value, str) else value

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        return seal(value) if isinstance(value, str) else value
