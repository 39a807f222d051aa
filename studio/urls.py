from django.urls import path

from studio import views

app_name = "studio"
urlpatterns = [
    path("", views.sessions, name="index"),
    path("sessions/", views.sessions, name="sessions"),
    path("sessions/export.csv", views.sessions_csv, name="sessions_csv"),
    path("sessions/<uuid:session_id>/", views.replay, name="replay"),
    path("usage/", views.usage, name="usage"),
    path("usage/<slug:panel>.csv", views.usage_csv, name="usage_csv"),
    path("scopes/", views.scopes, name="scopes"),
    path("scopes/scope/", views.scope_detail, name="scope"),
    path("scopes/scope/memory/", views.scope_memory, name="scope_memory"),
    path("scopes/scope/memory/<uuid:entry_id>/edit/", views.memory_entry_edit, name="memory_entry_edit"),
    path("scopes/scope/memory/<uuid:entry_id>/delete/", views.memory_entry_delete, name="memory_entry_delete"),
    path("scopes/scope/stores/", views.scope_stores, name="scope_stores"),
    path("scopes/documents/<str:pk>/", views.document, name="document"),
]
