"""Django's PostgreSQL backend, plus the scope switch of row-level security when `AMODAL_DB_ROW_SECURITY` is on.

With the setting off every method is Django's own (one settings lookup more per cursor). With it on, before a
cursor is handed out, the connection is put under the active scope (scoping.row_security.switch_scope): no
statement when it already is, one otherwise. A rollback (of the transaction or to a savepoint) may undo a switch
made inside it, so it makes the connection's scope UNKNOWN and the next cursor switches again.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db.backends.postgresql import base
from psycopg import pq

from scoping import row_security
from scoping.context import active_scope_or_none


class DatabaseWrapper(base.DatabaseWrapper):
    switch_paused = False

    def _cursor(self, name: str | None = None) -> Any:
        if not self.switch_paused:
            self.close_if_health_check_failed()
            self.ensure_connection()
            if settings.AMODAL_DB_ROW_SECURITY:
                wanted = active_scope_or_none()
            elif row_security.applied_scope(self.connection) is not None:
                wanted = None  # switched while the setting was on (tests turn it on and off): back to the owner
            else:
                return super()._cursor(name)  # type: ignore[misc]
            with self.wrap_database_errors:
                row_security.switch_scope(self.connection, wanted)
        return super()._cursor(name)  # type: ignore[misc]

    def _rollback(self) -> None:
        try:
            super()._rollback()  # type: ignore[misc]
        finally:
            if self.connection is not None:
                row_security.forget_scope(self.connection)

    def _savepoint_rollback(self, sid: str) -> None:
        # ROLLBACK TO SAVEPOINT runs on a cursor of its own: no switch before it (in an aborted transaction,
        # the switch would fail); the switch after it is made again.
        self.switch_paused = True
        try:
            super()._savepoint_rollback(sid)  # type: ignore[misc]
        finally:
            self.switch_paused = False
            if self.connection is not None:
                row_security.forget_scope(self.connection)

    def _close(self) -> None:
        # A connection given back mid-transaction is rolled back by psycopg's pool, outside _rollback.
        connection = self.connection
        status = connection is not None and not connection.closed and connection.info.transaction_status
        if status and status != pq.TransactionStatus.IDLE:
            row_security.forget_scope(connection)
        super()._close()  # type: ignore[misc]
