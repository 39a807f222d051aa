from django.apps import AppConfig


class ScopingConfig(AppConfig):
    name = "scoping"
    verbose_name = "Scopes and access"

    def ready(self) -> None:
        import scoping.schema  # noqa: F401  (registers the OpenAPI bearer scheme)
        from scoping.scope_data import register_scope_data, scope_kind

        # First: the scope's own row is erased last, after everything that belongs to it.
        register_scope_data(scope_kind())
