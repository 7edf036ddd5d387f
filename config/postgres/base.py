"""Django's PostgreSQL backend with one addition: when the connection breaks during COMMIT, ask the database whether
the transaction committed before reporting a failure (issue 13: "a write that committed is never reported as
failed").

A COMMIT that loses its connection (a database restart, a failover) leaves the client not knowing: the server may
have made the transaction durable a moment before the socket closed. Before each COMMIT of a transaction that wrote
something, the wrapper notes its transaction id (``txid_current_if_assigned()``, one round trip, NULL for a
read-only transaction). If the COMMIT then fails for want of a connection, a new connection asks
``txid_status(id)``: "committed" means the write is stored and the caller carries on as if COMMIT had answered;
anything else raises, with ``CommitOutcomeUnknown`` when the database cannot even be asked.
"""
from __future__ import annotations

import logging

import psycopg
from django.db import InterfaceError, OperationalError
from django.db.backends.postgresql import base

from releases.durable import CommitOutcomeUnknown

log = logging.getLogger("rollgate.db")


class DatabaseWrapper(base.DatabaseWrapper):
    def _commit(self):
        if self.connection is None:
            return None
        xid = None
        try:
            with self.connection.cursor() as cursor:
                cursor.execute("SELECT txid_current_if_assigned()")
                xid = cursor.fetchone()[0]
        except psycopg.Error:
            xid = None  # the COMMIT below fails the same way and reports it
        try:
            return super()._commit()
        except (OperationalError, InterfaceError) as error:
            if xid is None:
                raise
            status = self._transaction_status(xid)
            if status == "committed":
                log.warning("COMMIT lost its connection, but transaction %s was committed: carrying on", xid)
                return None
            if status is None:
                raise CommitOutcomeUnknown(
                    f"the database connection broke during COMMIT and the database cannot be asked whether "
                    f"transaction {xid} was stored: {error}") from error
            raise

    def _transaction_status(self, xid: int) -> str | None:
        """'committed', 'aborted' or 'in progress' from a new connection; None when the database cannot be asked."""
        params = self.get_connection_params()
        params.pop("cursor_factory", None)
        params.pop("context", None)
        params["connect_timeout"] = 3
        try:
            with psycopg.connect(**params, autocommit=True) as conn:
                return conn.execute("SELECT txid_status(%s)", [xid]).fetchone()[0]
        except psycopg.Error as error:
            log.warning("could not ask whether transaction %s committed: %s", xid, error)
            return None
