"""agents 0006 adds `Message.public_id` to a filled table: every existing message gets its own random UUID
(one UPDATE on PostgreSQL, batches elsewhere), then the column is unique and required. Runs on SQLite and
PostgreSQL (where filling and then altering a table with foreign keys in one migration must work)."""

from __future__ import annotations

from agents.models import Message
from tests.memory.test_migrations import migrate

BEFORE = [("agents", "0005_session_leased_index")]


def test_existing_messages_get_their_own_random_public_ids(transactional_db):
    try:
        old_apps = migrate(BEFORE)
        Session = old_apps.get_model("agents", "Session")
        OldMessage = old_apps.get_model("agents", "Message")
        UsageRecord = old_apps.get_model("agents", "UsageRecord")
        keys = []
        for scope in ("tenant-a", "tenant-b"):
            session = Session.objects.create(scope=scope, deploy_id="d1")
            for seq in range(3):
                message = OldMessage.objects.create(scope=scope, session=session, seq=seq, role="user", text=f"m{seq}")
                UsageRecord.objects.create(
                    scope=scope, session=session, message=message, deploy_id="d1", provider="local", model="local"
                )
                keys.append(message.pk)
        migrate()
        ids = dict(Message.all_scopes.values_list("pk", "public_id"))
        assert sorted(ids) == sorted(keys)
        assert len(set(ids.values())) == len(keys) and all(value.version == 4 for value in ids.values())
        field = Message._meta.get_field("public_id")
        assert field.unique and not field.null
    finally:
        migrate()
