from django.apps import AppConfig


class ScopeTestConfig(AppConfig):
    name = "tests.scopetest"
    label = "scopetest"

    def ready(self) -> None:
        from scoping.scope_data import ScopeDataKind, model_rows, register_scope_data
        from tests.scopetest.models import Note

        # Like every scoped table, exported and erased with its scope (scoping.scope_data).
        register_scope_data(ScopeDataKind("note", Note, model_rows(Note, ["text"], order_by=["id"])))
