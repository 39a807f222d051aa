"""Routes under /api/: stores (stores.api)."""

from django.urls import path

from stores import api

urlpatterns = [
    path("stores", api.StoreList.as_view(), name="store-list"),
    path("stores/<str:name>", api.StoreDocuments.as_view(), name="store-documents"),
    path("stores/<str:name>/<path:key>", api.StoreDocumentDetail.as_view(), name="store-document"),
]
