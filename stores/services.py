"""Writes to stores: upsert one document, a batch (all or nothing), delete, purge expired ones.

Every write happens in the active scope, except for a shared store, whose documents live in the global
partition: the write enters `scope("")` explicitly, and only a caller allowed to write shared stores
(`shared_write`: a staff session, an API key with shared-write, an operator command) gets that far.

An upsert bumps the version atomically. On PostgreSQL the existing row is locked (`SELECT ... FOR
UPDATE`), so concurrent writers queue up and none is lost. The version is also compared when it is
written (`UPDATE ... WHERE version = <read version>`), so a database without row locks retries instead of
losing an update. Two writers creating the same key race on the unique (scope, store, key) constraint:
the loser gets an IntegrityError, rolls back to its savepoint and retries as an update.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from scoping.context import GLOBAL_SCOPE, active_scope, scope
from stores.definitions import StoreDefinition
from stores.documents import DocumentInvalid, DocumentProblem, clean_document, render_key
from stores.errors import DocumentNotFound, KeyMismatch, SharedStoreReadOnly, WriteConflict
from stores.models import StoreDocument, StoreDocumentVersion

MAX_BATCH = 100
MAX_WRITE_ATTEMPTS = 8
PURGE_BATCH = 1000


@dataclass(frozen=True)
class WriteResult:
    document: StoreDocument
    created: bool
    changed: bool = True  # False: skip_unchanged found the same data, nothing was written


@contextmanager
def store_partition(definition: StoreDefinition) -> Iterator[str]:
    """Enter the partition a store's documents live in: the global one for a shared store, else the
    active scope (which must be entered: no scope is an error, never "every scope")."""
    if definition.shared:
        with scope(GLOBAL_SCOPE):
            yield GLOBAL_SCOPE
    else:
        yield active_scope()


def check_writable(definition: StoreDefinition, *, shared_write: bool) -> None:
    if definition.shared and not shared_write:
        raise SharedStoreReadOnly(definition.name)


def expiry(definition: StoreDefinition, now: datetime) -> datetime | None:
    return now + timedelta(seconds=definition.ttl_seconds) if definition.ttl_seconds else None


def put_document(
    *,
    definition: StoreDefinition,
    document: Any,
    key: str | None = None,
    shared_write: bool = False,
    skip_unchanged: bool = False,
) -> WriteResult:
    """Insert or replace the document with the key its template renders; bump its version.

    `key`, when given (PUT /api/stores/<name>/<key>), must equal the rendered key. Raises DocumentInvalid
    (every problem, by field), KeyMismatch, SharedStoreReadOnly.
    """
    check_writable(definition, shared_write=shared_write)
    data = clean_document(definition, document)
    rendered = render_key(definition, data)
    if key is not None and key != rendered:
        raise KeyMismatch(key, rendered, definition.key_template)
    with store_partition(definition):
        return _upsert(definition, rendered, data, skip_unchanged=skip_unchanged)


def put_documents(
    *,
    definition: StoreDefinition,
    documents: Any,
    shared_write: bool = False,
    skip_unchanged: bool = False,
    max_batch: int = MAX_BATCH,
) -> list[WriteResult]:
    """Upsert up to `max_batch` documents in one transaction. Every document is validated first: one
    invalid document (or two with the same key) and nothing is written."""
    check_writable(definition, shared_write=shared_write)
    if not isinstance(documents, list) or not documents:
        raise DocumentInvalid([DocumentProblem("documents", "must be a non-empty array of documents")])
    if len(documents) > max_batch:
        message = f"has {len(documents)} documents; a batch holds at most {max_batch}"
        raise DocumentInvalid([DocumentProblem("documents", message)])
    problems: list[DocumentProblem] = []
    cleaned: list[tuple[str, dict[str, Any]]] = []
    first_index_of_key: dict[str, int] = {}
    for index, document in enumerate(documents):
        prefix = f"documents[{index}]"
        try:
            data = clean_document(definition, document)
        except DocumentInvalid as exc:
            problems.extend(exc.prefixed(prefix).problems)
            continue
        key = render_key(definition, data)
        if key in first_index_of_key:
            other = first_index_of_key[key]
            problems.append(DocumentProblem(prefix, f"has the same key {key!r} as documents[{other}]"))
            continue
        first_index_of_key[key] = index
        cleaned.append((key, data))
    if problems:
        raise DocumentInvalid(problems)
    with store_partition(definition), transaction.atomic():
        return [_upsert(definition, key, data, skip_unchanged=skip_unchanged) for key, data in cleaned]


def delete_document(*, definition: StoreDefinition, key: str, shared_write: bool = False) -> None:
    """Delete a document and its versions; another scope's document is as missing as none."""
    check_writable(definition, shared_write=shared_write)
    with store_partition(definition):
        deleted, _ = StoreDocument.objects.filter(store=definition.name, key=key).delete()
    if not deleted:
        raise DocumentNotFound(definition.name, key)


def purge_expired_documents(*, batch_size: int = PURGE_BATCH, now: datetime | None = None) -> int:
    """Delete documents whose TTL has passed, in every scope, `batch_size` at a time; returns how many.

    Operator code: it reads across scopes through the deliberate `all_scopes` manager.
    """
    cutoff = now or timezone.now()
    purged = 0
    while True:
        ids = list(
            StoreDocument.all_scopes.filter(expires_at__lte=cutoff)
            .order_by("expires_at")
            .values_list("pk", flat=True)[:batch_size]
        )
        if not ids:
            return purged
        with transaction.atomic():
            StoreDocumentVersion.all_scopes.filter(document_id__in=ids).delete()
            purged += (
                StoreDocument.all_scopes.filter(pk__in=ids, expires_at__lte=cutoff)
                .delete()[1]
                .get(StoreDocument._meta.label, 0)
            )


# --- The upsert ---------------------------------------------------------------------------------------


def _upsert(definition: StoreDefinition, key: str, data: dict[str, Any], *, skip_unchanged: bool) -> WriteResult:
    for _attempt in range(MAX_WRITE_ATTEMPTS):
        try:
            with transaction.atomic():
                result = _upsert_once(definition, key, data, skip_unchanged=skip_unchanged)
        except IntegrityError:
            continue  # another writer created the key first: it exists now, so retry as an update
        if result is not None:
            return result
    raise WriteConflict(definition.name, key)


def _upsert_once(
    definition: StoreDefinition, key: str, data: dict[str, Any], *, skip_unchanged: bool
) -> WriteResult | None:
    """One attempt inside a transaction; None when a concurrent writer changed the row first."""
    now = timezone.now()
    expires_at = expiry(definition, now)
    rows = StoreDocument.objects.filter(store=definition.name, key=key)
    if connection.features.has_select_for_update:
        rows = rows.select_for_update()
    existing = rows.first()
    if existing is None:
        document = StoreDocument.objects.create(
            store=definition.name,
            key=key,
            data=data,
            version=1,
            created_at=now,
            updated_at=now,
            expires_at=expires_at,
        )
        return WriteResult(document, created=True)
    if skip_unchanged and existing.data == data and expires_at is None and existing.expires_at is None:
        return WriteResult(existing, created=False, changed=False)
    previous_version, previous_data, previous_time = existing.version, existing.data, existing.updated_at
    # Compare-and-set on the version: with the row lock it always matches; without one it detects a race.
    written = StoreDocument.objects.filter(pk=existing.pk, version=previous_version).update(
        data=data, version=previous_version + 1, updated_at=now, expires_at=expires_at
    )
    if not written:
        return None
    _keep_history(definition, existing, previous_version, previous_data, previous_time)
    existing.data, existing.version, existing.updated_at, existing.expires_at = (
        data,
        previous_version + 1,
        now,
        expires_at,
    )
    return WriteResult(existing, created=False)


def _keep_history(
    definition: StoreDefinition, document: StoreDocument, version: int, data: Any, written_at: datetime
) -> None:
    """Record the replaced version and keep only the last `history.versions` of them."""
    keep = definition.history_versions
    versions = StoreDocumentVersion.objects.filter(document=document)
    if keep <= 0:
        versions.delete()
        return
    StoreDocumentVersion.objects.create(document=document, version=version, data=data, created_at=written_at)
    versions.filter(version__lte=version - keep).delete()
