"""The audit trail's hash chain: each row carries SHA-256 over its content and the previous row's hash.

Rewriting a row changes its hash (the row no longer matches its content); deleting or inserting a row breaks the
link of the row after it. Rows are chained in id order: releases.services.audit_record takes a database-wide lock
(PostgreSQL advisory lock) before it reads the last hash and inserts, so ids and the chain agree.
Truncating the whole table leaves a valid empty chain: that is what the database role without TRUNCATE (README,
"Security") and the head hash shown on the audit page are for.
"""
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC

from django.db import connection

# Any constant: the key of the advisory lock that serialises audit inserts.
ADVISORY_LOCK_KEY = 0x524F4C4C47415445 & 0x7FFFFFFFFFFFFFFF  # "ROLLGATE"

FIELDS = ("actor_id", "actor_name", "action", "object_type", "object_id", "release_id", "service_id",
          "environment_id", "from_state", "to_state", "reason")


def row_hash(event, prev_hash: str) -> str:
    content = {name: getattr(event, name) for name in FIELDS}
    content["created_at"] = event.created_at.astimezone(UTC).isoformat()
    content["details"] = event.details
    content["prev_hash"] = prev_hash
    payload = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(payload.encode("utf-8", "surrogatepass")).hexdigest()


def lock_chain() -> None:
    """Serialise audit inserts until the transaction ends (SQLite serialises writers by itself)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [ADVISORY_LOCK_KEY])


@dataclass(frozen=True)
class ChainState:
    ok: bool
    rows: int
    head: str  # the last row's hash: note it somewhere else to detect a truncated-and-rebuilt table
    first_broken_id: int | None = None
    problem: str = ""


def verify(queryset) -> ChainState:
    """Walk the chain in id order; stop at the first broken link."""
    previous, count = "", 0
    for event in queryset.order_by("id").iterator(chunk_size=2000):
        count += 1
        if event.prev_hash != previous:
            return ChainState(False, count, previous, event.pk,
                              f"row #{event.pk} does not follow the row before it: a row was deleted or inserted")
        if event.row_hash != row_hash(event, event.prev_hash):
            return ChainState(False, count, previous, event.pk,
                              f"row #{event.pk} no longer matches its hash: its content was changed")
        previous = event.row_hash
    return ChainState(True, count, previous)


def row_integrity(event, prior_hash: str | None) -> str:
    """One row as the API flags it: "ok", "altered" (content changed) or "broken_link" (a row before it is gone or
    was inserted). `prior_hash` is the hash of the row with the next lower id ("" for the first)."""
    if event.row_hash != row_hash(event, event.prev_hash):
        return "altered"
    if event.prev_hash != (prior_hash or ""):
        return "broken_link"
    return "ok"
