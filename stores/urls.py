"""Routes under /api/: stores (stores.api) and memory (agents.memory_api)."""

from django.urls import path

from agents import memory_api
from stores import api

urlpatterns = [
    path("stores", api.StoreList.as_view(), name="store-list"),
    path("stores/<str:name>", api.StoreDocuments.as_view(), name="store-documents"),
    path("stores/<str:name>/<path:key>", api.StoreDocumentDetail.as_view(), name="store-document"),
    path("memory", memory_api.MemoryList.as_view(), name="memory"),
    path("memory/<str:entry_id>", memory_api.MemoryEntryDetail.as_view(), name="memory-entry"),
]
