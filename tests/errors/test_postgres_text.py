"""PostgreSQL only: the database itself refuses NUL in text and jsonb and cannot take a lone surrogate, so
without the shared check (core.validation) these inputs were 500s. The API tests of
test_bad_input.py run here too and must answer 400."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from memory.models import MemoryEntry
from scoping.context import scope
from stores.models import StoreDocument

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="NUL and surrogate handling of PostgreSQL; run with DATABASE_URL=postgres://...",
    ),
]


@pytest.mark.parametrize("text", ["milk\x00", "milk\ud800"], ids=["nul", "surrogate"])
@pytest.mark.django_db
def test_postgresql_refuses_the_text_the_validator_refuses(text):
    now = timezone.now()
    with scope("tenant-a"):
        with pytest.raises((DatabaseError, ValueError)), transaction.atomic():
            MemoryEntry.objects.create(content=text)
        with pytest.raises((DatabaseError, ValueError)), transaction.atomic():
            StoreDocument.objects.create(
                store="items", key="k", data={"note": text}, version=1, created_at=now, updated_at=now
            )
        assert MemoryEntry.objects.count() == StoreDocument.objects.count() == 0
