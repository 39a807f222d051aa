"""Clearing a development database for new demo data (`generate_demo_data --clear`)."""

from __future__ import annotations

from collections.abc import Callable

from django.db import connection, models, transaction

from agents.models import (
    USAGE_ROLLUP_MODELS,
    Feedback,
    Message,
    Session,
    SessionTag,
    SessionTranscript,
    UsageRecord,
)
from scoping.models import Scope
from studio.model_access import optional_model


def existing_sessions() -> int:
    return Session.all_scopes.count()


def clear_runtime_data(log: Callable[[str], None] = print) -> None:
    """Delete every session, message, rating, transcript, usage row (and the usage rollup), session tag, scope, memory
    entry and store document (demo or not: this is for development databases). API keys, credentials, prices
    and users stay. The rollup goes first and explicitly: TRUNCATE fires none of the triggers that keep it,
    and on SQLite the usage rows' delete triggers then find nothing left to subtract from."""
    optional = [
        optional_model("stores", "StoreDocument"),
        optional_model("stores", "StoreDocumentVersion"),
        optional_model("memory", "MemoryEntry"),
    ]
    tables = [model for model in optional if model is not None] + [
        *USAGE_ROLLUP_MODELS,
        Feedback,
        UsageRecord,
        Message,
        SessionTag,
        SessionTranscript,
        Session,
        Scope,
    ]
    with transaction.atomic():
        if connection.vendor == "postgresql":
            names = ", ".join(connection.ops.quote_name(m._meta.db_table) for m in tables)
            with connection.cursor() as cursor:
                # Deferred foreign-key checks of rows written earlier in this transaction must run
                # first: PostgreSQL refuses to truncate a table with pending trigger events.
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
                cursor.execute(f"TRUNCATE {names}")
        else:
            for model in tables:
                _raw_delete(model)
    log(f"  cleared: {', '.join(str(m._meta.verbose_name_plural) for m in tables)}")


def _raw_delete(model: type[models.Model]) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {connection.ops.quote_name(model._meta.db_table)}")  # noqa: S608
