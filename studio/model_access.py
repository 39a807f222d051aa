"""How Studio reaches the models and rows it reads and fills but does not own.

- `optional_model`: a model that another part of the project may not have yet (memory, stores), so a page
  or the demo data can skip it instead of failing on import.
- `every_scope`: every row of a model across scopes. Operator code only: it is the explicit
  `Model.all_scopes` escape from the scope boundary (the plain manager for a model that is not scoped).
"""

from __future__ import annotations

from django.apps import apps
from django.db.models import Model, QuerySet


def optional_model(app_label: str, model_name: str) -> type[Model] | None:
    try:
        return apps.get_model(app_label, model_name)
    except LookupError:
        return None


def every_scope(model: type[Model]) -> QuerySet:
    manager = getattr(model, "all_scopes", None)
    return (manager if manager is not None else model._default_manager).all()
