"""Routes under /api/: credentials (connections.api)."""

from django.urls import path

from connections import api

urlpatterns = [
    path("credentials", api.CredentialList.as_view(), name="credential-list"),
    path("credentials/<str:key>", api.CredentialDetail.as_view(), name="credential"),
]
