"""Routes under /api/ (included by amodal_site/urls.py): memory's HTTP API (memory.api)."""

from django.urls import path

from memory import api

urlpatterns = [
    path("memory", api.MemoryList.as_view(), name="memory"),
    path("memory/<str:entry_id>", api.MemoryEntryDetail.as_view(), name="memory-entry"),
]
