"""Digests of bearer secrets kept in the database (API tokens): a dump of the table yields no usable key."""
import hashlib


def token_digest(key: str) -> str:
    """SHA-256 of the key, its first 40 hex digits: the width of DRF's Token.key column."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:40]
