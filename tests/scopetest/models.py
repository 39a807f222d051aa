"""A minimal scoped model, so the scope boundary is tested on its own, apart from any feature."""

from django.db import models

from scoping.models import ScopedModel


class Note(ScopedModel):
    text = models.CharField(max_length=200)

    class Meta:
        indexes = [models.Index(fields=["scope", "text"])]
