from django.apps import AppConfig


class ScopingConfig(AppConfig):
    name = "scoping"
    verbose_name = "Scopes and access"

    def ready(self) -> None:
        import scoping.schema  # noqa: F401  (registers the OpenAPI bearer scheme)
