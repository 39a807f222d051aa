from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.db.models.signals import post_migrate


def install_row_security(using: str, **ignored: Any) -> None:
    """After every `migrate` with AMODAL_DB_ROW_SECURITY on: the role and a policy on every registered table,
    so a table added by a migration is covered by the same run (scoping.row_security)."""
    if settings.AMODAL_DB_ROW_SECURITY:
        from django.db import connections

        from scoping import row_security

        row_security.install(connections[using])


class ScopingConfig(AppConfig):
    name = "scoping"
    verbose_name = "Scopes and access"

    def ready(self) -> None:
        import scoping.schema  # noqa: F401  (registers the OpenAPI bearer scheme)
        from scoping.scope_data import register_scope_data, scope_kind

        # First: the scope's own row is erased last, after everything that belongs to it.
        register_scope_data(scope_kind())
        # Sent once per app after the whole migration: sender=self runs it once, with every table there.
        post_migrate.connect(install_row_security, sender=self, dispatch_uid="scoping.row_security")
