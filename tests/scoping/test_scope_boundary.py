"""The scope boundary on its own: a scoped model fails closed, partitions by scope, and says so."""

import asyncio

import pytest
from asgiref.sync import sync_to_async
from django.db import IntegrityError, transaction
from django.test import override_settings

from scoping.context import (
    GLOBAL_SCOPE,
    InvalidScope,
    NoActiveScope,
    ScopeMismatch,
    active_scope,
    no_scope,
    scope,
    scoped_db,
    validate_scope_id,
)
from tests.scopetest.models import Note

pytestmark = pytest.mark.django_db


def make_notes(*pairs: tuple[str, str]) -> None:
    Note.all_scopes.bulk_create([Note(scope=scope_id, text=text) for scope_id, text in pairs])


def test_query_without_active_scope_raises():
    make_notes(("a", "one"))
    with pytest.raises(NoActiveScope):
        Note.objects.all()
    with pytest.raises(NoActiveScope):
        Note.objects.filter(text="one").exists()


def test_scope_sees_only_its_own_rows():
    make_notes(("a", "a1"), ("a", "a2"), ("b", "b1"), (GLOBAL_SCOPE, "g1"))
    with scope("a"):
        assert sorted(Note.objects.values_list("text", flat=True)) == ["a1", "a2"]
        assert not Note.objects.filter(text="b1").exists()
        with pytest.raises(Note.DoesNotExist):
            Note.objects.get(text="b1")


def test_global_scope_is_a_real_partition():
    make_notes(("a", "a1"), (GLOBAL_SCOPE, "g1"))
    with scope(GLOBAL_SCOPE):
        assert list(Note.objects.values_list("text", flat=True)) == ["g1"]
        assert active_scope() == ""


def test_creating_a_row_takes_the_active_scope():
    with scope("tenant-42"):
        note = Note.objects.create(text="hello")
    assert Note.all_scopes.get(pk=note.pk).scope == "tenant-42"


def test_creating_a_row_without_scope_raises():
    with pytest.raises(NoActiveScope):
        Note.objects.create(text="orphan")
    with pytest.raises(NoActiveScope):
        Note(text="orphan").save()
    with pytest.raises(IntegrityError), transaction.atomic():
        Note.all_scopes.bulk_create([Note(text="orphan")])
    assert Note.all_scopes.count() == 0


# With AMODAL_DB_ROW_SECURITY on, the database narrows it to the scope: tests/scoping/test_row_security.py.
@override_settings(AMODAL_DB_ROW_SECURITY=False)
def test_all_scopes_sees_every_row():
    make_notes(("a", "a1"), ("b", "b1"), (GLOBAL_SCOPE, "g1"))
    assert Note.all_scopes.count() == 3
    with scope("a"):
        assert Note.all_scopes.count() == 3


def test_bulk_update_and_delete_stay_inside_the_scope():
    make_notes(("a", "x"), ("b", "x"))
    with scope("a"):
        assert Note.objects.filter(text="x").update(text="changed") == 1
        deleted, _ = Note.objects.all().delete()
        assert deleted == 1
    assert list(Note.all_scopes.values_list("scope", "text")) == [("b", "x")]


def test_saving_or_deleting_another_scopes_row_is_refused():
    make_notes(("b", "theirs"))
    theirs = Note.all_scopes.get()
    with scope("a"):
        theirs.text = "overwritten"
        with pytest.raises(ScopeMismatch):
            theirs.save()
        with pytest.raises(ScopeMismatch):
            theirs.delete()
    assert Note.all_scopes.get().text == "theirs"


def test_explicit_scope_on_create_must_match_active_scope():
    with scope("a"), pytest.raises(ScopeMismatch):
        Note.objects.create(scope="b", text="sneaky")
    assert Note.all_scopes.count() == 0


def test_no_scope_leaves_an_active_scope():
    with scope("a"), no_scope(), pytest.raises(NoActiveScope):
        Note.objects.count()


def test_scope_is_restored_after_the_block_even_on_error():
    with pytest.raises(RuntimeError), scope("a"):
        raise RuntimeError("boom")
    with pytest.raises(NoActiveScope):
        active_scope()


@pytest.mark.django_db(transaction=True)
def test_scope_entered_in_an_async_generator_reaches_sync_to_async_orm_calls():
    make_notes(("a", "a1"), ("b", "b1"))

    async def stream():
        with scope("a"):
            for _ in range(2):
                yield await sync_to_async(lambda: list(Note.objects.values_list("text", flat=True)))()

    async def consume():
        return [item async for item in stream()]

    assert asyncio.run(consume()) == [["a1"], ["a1"]]


def test_concurrent_tasks_keep_their_own_scope():
    async def remember(scope_id: str) -> str:
        with scope(scope_id):
            await asyncio.sleep(0.01)
            return active_scope()

    async def main():
        return await asyncio.gather(remember("a"), remember("b"), remember(""))

    assert asyncio.run(main()) == ["a", "b", ""]


@pytest.mark.parametrize("value", ["", "a", "x" * 255, "tenant:42/ü", "家庭-1", "with space"])
def test_valid_scope_ids(value):
    assert validate_scope_id(value) == value


@pytest.mark.parametrize("value", ["x" * 256, "a\nb", "tab\there", "nul\x00", "\u200b", 42, None, ["a"]])
def test_invalid_scope_ids(value):
    with pytest.raises(InvalidScope):
        validate_scope_id(value)
    with pytest.raises(InvalidScope), scope(value):
        pass


@pytest.mark.django_db(transaction=True)
def test_scoped_db_runs_its_work_in_its_scope_whatever_the_callers():
    async def work_from(caller_scope):
        run = scoped_db("tenant-a")
        if caller_scope is None:
            return await run(lambda: (active_scope(), Note.objects.count()))
        with scope(caller_scope):
            return await run(lambda: (active_scope(), Note.objects.count()))

    with scope("tenant-a"):
        Note.objects.create(text="a")
    with scope("tenant-b"):
        Note.objects.create(text="b1")
        Note.objects.create(text="b2")
    assert asyncio.run(work_from(None)) == ("tenant-a", 1)
    assert asyncio.run(work_from("tenant-b")) == ("tenant-a", 1)


def test_scoped_db_refuses_an_invalid_scope():
    with pytest.raises(InvalidScope):
        scoped_db("bad scope\x00")
