"""Store documents, partitioned by scope, and their previous versions.

A shared store's documents live in the global partition (`scope = ""`). Every index leads with `scope`
(also the distribution key if the table is ever sharded). On PostgreSQL, migration 0002 adds a GIN index
on `data` (jsonb_path_ops) so field-equality filters (`data @> {...}`) are index scans.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from scoping.models import ScopedModel
from stores.documents import MAX_KEY_LENGTH

GIN_INDEX_NAME = "storedoc_data_gin"


class StoreDocument(ScopedModel):
    store = models.CharField(max_length=64)
    key = models.CharField(max_length=MAX_KEY_LENGTH)
    data = models.JSONField()
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    expires_at = models.DateTimeField(null=True, blank=True, help_text="Empty: never expires.")

    class Meta:
        verbose_name = "store document"
        constraints = [
            models.UniqueConstraint(fields=["scope", "store", "key"], name="storedoc_scope_store_key"),
        ]
        indexes = [
            models.Index(fields=["scope", "store", "updated_at"], name="storedoc_scope_store_updated"),
            models.Index(fields=["scope", "store", "expires_at"], name="storedoc_scope_store_expires"),
            # The purge command's scan across every scope: only rows that can expire.
            models.Index(fields=["expires_at"], name="storedoc_expires", condition=Q(expires_at__isnull=False)),
        ]

    def __str__(self) -> str:
        return f"{self.store}/{self.key}"


class StoreDocumentVersion(ScopedModel):
    """A previous version of a document (its data before write number `version + 1`); a store keeps the
    last `history.versions` of them. It carries its document's scope."""

    document = models.ForeignKey(StoreDocument, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    data = models.JSONField()
    created_at = models.DateTimeField(help_text="When this version was written.")

    class Meta:
        verbose_name = "store document version"
        ordering = ["document", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["document", "version"], name="storedocversion_document_version"),
        ]
        indexes = [
            models.Index(fields=["scope", "document", "version"], name="storedocversion_scope_doc"),
        ]

    def __str__(self) -> str:
        return f"{self.document_id} v{self.version}"
