"""Demo memory entries and store documents for the more active scopes, when this build has those models.

Moments fall within each scope's activity; busier scopes (earlier in `scopes`) get more. Store documents
are `preferences` (some with previous versions, some expiring) plus the shared `categories` store in the
global scope, from the example seed file.
"""

from __future__ import annotations

import json
import math
import random
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.db import transaction

from scoping.context import GLOBAL_SCOPE
from studio.demo.content import MEMORY_FACTS, PREFERENCE_VALUES
from studio.demo.loading import RowWriter, next_id, reset_sequences
from studio.demo.sessions import Activity
from studio.model_access import every_scope, optional_model

KEPT_VERSIONS = 5  # the preferences store's history.versions


def add_memory_entries(rng: random.Random, scopes: list[str], activity: Activity) -> int | None:
    """How many entries were added; None without a MemoryEntry model."""
    model = optional_model("memory", "MemoryEntry")
    if model is None:
        return None
    rows = []
    for rank, scope in enumerate(scopes):
        count = max(0, int(rng.uniform(2, 12) / math.sqrt(1 + rank / 50)))
        first, last = activity[scope]
        for fact in rng.sample(MEMORY_FACTS, min(count, len(MEMORY_FACTS))):
            moment = first + (last - first) * rng.random()
            rows.append((scope, fact, moment))
    with transaction.atomic():
        RowWriter(model, ["scope", "content", "created_at"]).write(rows)
    reset_sequences([model])
    return len(rows)


def add_store_documents(
    rng: random.Random, scopes: list[str], activity: Activity, *, seeded_at: datetime
) -> tuple[int, int] | None:
    """How many documents and previous versions were added; None without the store models. Documents
    that already exist are left alone."""
    document_model = optional_model("stores", "StoreDocument")
    version_model = optional_model("stores", "StoreDocumentVersion")
    if document_model is None or version_model is None:
        return None
    document_id = next_id(document_model)
    documents = []
    versions = []
    existing = set(
        every_scope(document_model).filter(store__in=["preferences", "categories"]).values_list("scope", "store", "key")
    )
    for rank, scope in enumerate(scopes):
        first, last = activity[scope]
        keys = rng.sample(list(PREFERENCE_VALUES), rng.randint(1, len(PREFERENCE_VALUES)) if rank < 200 else 1)
        for key in keys:
            if (scope, "preferences", key) in existing:
                continue
            version_count = rng.choice([1, 1, 1, 2, 3, 6])
            created = first + (last - first) * rng.random() * 0.5
            values = [rng.choice(PREFERENCE_VALUES[key]) for _ in range(version_count)]
            moments = sorted(created + (last - created) * rng.random() for _ in range(version_count - 1))
            updated = moments[-1] if moments else created
            expires = updated + timedelta(days=rng.choice([7, 30])) if rng.random() < 0.1 else None
            documents.append(
                (
                    document_id,
                    scope,
                    "preferences",
                    key,
                    json.dumps({"key": key, "value": values[-1]}),
                    version_count,
                    created,
                    updated,
                    expires,
                )
            )
            for version in list(range(1, version_count))[-KEPT_VERSIONS:]:
                written = created if version == 1 else moments[version - 2]
                versions.append(
                    (scope, document_id, version, json.dumps({"key": key, "value": values[version - 1]}), written)
                )
            document_id += 1
    seed = Path(settings.BASE_DIR) / "examples" / "seed" / "finance-categories.json"
    if seed.exists():
        for category in json.loads(seed.read_text()):
            if (GLOBAL_SCOPE, "categories", category["slug"]) in existing:
                continue
            documents.append(
                (
                    document_id,
                    GLOBAL_SCOPE,
                    "categories",
                    category["slug"],
                    json.dumps(category),
                    1,
                    seeded_at,
                    seeded_at,
                    None,
                )
            )
            document_id += 1
    with transaction.atomic():
        RowWriter(
            document_model, ["id", "scope", "store", "key", "data", "version", "created_at", "updated_at", "expires_at"]
        ).write(documents)
        RowWriter(version_model, ["scope", "document_id", "version", "data", "created_at"]).write(versions)
    reset_sequences([document_model, version_model])
    return len(documents), len(versions)
