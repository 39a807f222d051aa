"""Studio keeps no data of its own: this model has no table and exists only to carry Studio's permission."""

from django.db import models

VIEW_STUDIO = "studio.view_studio"
VIEWERS_GROUP = "Studio viewers"


class Studio(models.Model):  # noqa: DJ008 (no table, no rows to name)
    """`studio.view_studio` lets a staff user read Studio: sessions, usage and memory of every scope.

    Changing anything (memory entries, credentials, prices...) needs that model's own permission.
    Migration 0002 creates the "Studio viewers" group holding it.
    """

    class Meta:
        managed = False
        default_permissions = ()
        permissions = [("view_studio", "Can view Studio: sessions, usage and memory of every scope")]
