"""Reading memory, always in the active scope: the entries, their budget usage, and ranked search.

Search is PostgreSQL full-text search (ranked with ts_rank) there, and a term-count ranking elsewhere.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.db.models import Count, Sum
from django.db.models.functions import Length

from core.validation import check_text
from memory.config import MemoryConfig
from memory.errors import memory_invalid
from memory.models import MemoryEntry

SEARCH_LIMIT = 10
SEARCH_CONFIG = "english"
WORD_RE = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True)
class MemoryUsage:
    entries: int
    chars: int
    max_entries: int
    max_total_chars: int

    def describe(self) -> str:
        return f"{self.entries} of {self.max_entries} entries, {self.chars} of {self.max_total_chars} characters used"

    def as_dict(self) -> dict[str, int]:
        return {
            "count": self.entries,
            "total_chars": self.chars,
            "max_entries": self.max_entries,
            "max_total_chars": self.max_total_chars,
        }


def entry_as_dict(entry: MemoryEntry) -> dict[str, Any]:
    """An entry as the API and the tool show it: named by its public id, never its primary key."""
    return {"id": str(entry.public_id), "content": entry.content, "created_at": entry.created_at.isoformat()}


def memory_usage(*, config: MemoryConfig) -> MemoryUsage:
    totals = MemoryEntry.objects.aggregate(entries=Count("id"), chars=Sum(Length("content")))
    return MemoryUsage(totals["entries"], totals["chars"] or 0, config.max_entries, config.max_total_chars)


def list_entries() -> list[MemoryEntry]:
    """The active scope's entries, oldest first."""
    return list(MemoryEntry.objects.order_by("created_at", "id"))


def search_entries(*, query: Any, limit: int = SEARCH_LIMIT) -> list[tuple[MemoryEntry, float]]:
    """The active scope's entries matching any word of `query`, best match first."""
    if not isinstance(query, str) or not query.strip():
        raise memory_invalid("query: must be a non-empty string.")
    check_text(query, "query")
    terms = list(dict.fromkeys(word.lower() for word in WORD_RE.findall(query)))
    if not terms:
        return []
    if connection.vendor == "postgresql":
        return _search_postgres(terms, limit)
    return _search_by_term_count(terms, limit)


def _search_postgres(terms: list[str], limit: int) -> list[tuple[MemoryEntry, float]]:
    from django.contrib.postgres.search import SearchQuery, SearchRank, SearchVector

    query = SearchQuery(terms[0], config=SEARCH_CONFIG)
    for term in terms[1:]:
        query |= SearchQuery(term, config=SEARCH_CONFIG)  # any word matches; the rank orders them
    vector = SearchVector("content", config=SEARCH_CONFIG)
    rows = (
        MemoryEntry.objects.annotate(document=vector, rank=SearchRank(vector, query))
        .filter(document=query)
        .order_by("-rank", "-created_at", "-id")[:limit]
    )
    return [(entry, float(entry.rank)) for entry in rows]


def _search_by_term_count(terms: list[str], limit: int) -> list[tuple[MemoryEntry, float]]:
    """SQLite (and any other database): score = 10 per distinct query word found + its occurrences.

    A word matches a content word that starts with it (so "coffee" finds "coffees"); memory is small
    (maxEntries), so this runs over the scope's entries in Python.
    """
    scored = []
    for entry in MemoryEntry.objects.order_by("-created_at", "-id"):
        words = [word.lower() for word in WORD_RE.findall(entry.content)]
        matched = 0
        occurrences = 0
        for term in terms:
            hits = sum(1 for word in words if word == term or (len(term) >= 3 and word.startswith(term)))
            if hits:
                matched += 1
                occurrences += hits
        if matched:
            scored.append((entry, float(matched * 10 + occurrences)))
    scored.sort(key=lambda pair: -pair[1])  # stable: newest first among equal scores
    return scored[:limit]
