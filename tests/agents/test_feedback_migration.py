"""agents 0011: existing ratings take their session's deploy (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from agents.models import Feedback

BEFORE = [("agents", "0010_session_budget_reserve")]


def migrate(targets=None):
    executor = MigrationExecutor(connection)
    targets = targets or executor.loader.graph.leaf_nodes()
    executor.migrate(targets)
    executor.loader.build_graph()
    return executor.loader.project_state(targets).apps


@pytest.fixture
def before_0011(transactional_db):
    try:
        yield migrate(BEFORE)
    finally:
        migrate()


def test_existing_ratings_take_their_sessions_deploy(before_0011):
    OldSession = before_0011.get_model("agents", "Session")
    OldFeedback = before_0011.get_model("agents", "Feedback")
    sessions = [
        OldSession.objects.create(scope=scope_id, deploy_id=deploy, model="m", provider="local")
        for scope_id, deploy in [("tenant-a", "deploy-one"), ("tenant-b", "deploy-two")]
    ]
    for index, session in enumerate(sessions):
        OldFeedback.objects.create(scope=session.scope, session=session, user_sub=f"u{index}", rating=1)

    migrate()

    assert sorted(Feedback.all_scopes.values_list("scope", "deploy_id")) == [
        ("tenant-a", "deploy-one"),
        ("tenant-b", "deploy-two"),
    ]
