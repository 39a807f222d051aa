"""Documents against their schema: every type, nullable, min/max, required and unknown fields, the key
template, and what is stored (SPEC §5)."""

from __future__ import annotations

import pytest

from core.folder_problems import ConfigProblem
from stores.definitions import parse_store
from stores.documents import DocumentInvalid, clean_document, render_key, validate_document
from tests.stores.conftest import INVALID, ITEMS, item


def definition(data=ITEMS, stem=None):
    problems: list[ConfigProblem] = []
    parsed = parse_store(stem or data["name"], data, problems, f"stores/{data['name']}.json")
    assert parsed is not None, problems
    return parsed


@pytest.mark.parametrize(("changes", "field", "fragment"), INVALID)
def test_invalid_documents_name_the_field(changes, field, fragment):
    problems = validate_document(definition(), item(**changes))
    assert [p.field for p in problems] == [field], problems
    assert fragment in problems[0].message


def test_missing_fields_are_required_unless_nullable():
    document = item()
    del document["price"]
    del document["note"]  # nullable: may be left out
    problems = validate_document(definition(), document)
    assert [(p.field, p.message) for p in problems] == [("price", "is required (a number)")]


def test_every_problem_is_reported_at_once():
    problems = validate_document(definition(), item(sku=1, price="x", kind="?", extra=True))
    assert {p.field for p in problems} == {"sku", "price", "kind", "extra"}


@pytest.mark.parametrize("document", [None, [], "text", 3])
def test_a_document_must_be_an_object(document):
    problems = validate_document(definition(), document)
    assert [p.field for p in problems] == ["document"]


def test_clean_document_normalises_datetimes_and_fills_nullable_fields():
    document = item(added="2024-05-01T10:00:00+02:00")
    del document["note"]
    cleaned = clean_document(definition(), document)
    assert cleaned["added"] == "2024-05-01T08:00:00Z"
    assert cleaned["note"] is None
    assert clean_document(definition(), item(added="2024-05-01"))["added"] == "2024-05-01T00:00:00Z"


def test_clean_document_raises_with_every_problem():
    with pytest.raises(DocumentInvalid) as caught:
        clean_document(definition(), item(price=-5, kind="x"))
    assert "price:" in str(caught.value) and "kind:" in str(caught.value)


def test_key_templates_mix_literal_text_and_several_fields():
    data = {
        "name": "ledger",
        "entity": {
            "name": "Entry",
            "key": "{account}:{year}-{n}",
            "schema": {
                "account": {"type": "string"},
                "year": {"type": "number"},
                "n": {"type": "enum", "values": ["a", "b"]},
            },
        },
    }
    ledger = definition(data)
    assert render_key(ledger, {"account": "acc1", "year": 2024.0, "n": "b"}) == "acc1:2024-b"
    assert render_key(definition(), item(sku="zz9")) == "item-zz9"


def test_an_empty_or_overlong_key_is_a_problem_of_the_key_field():
    prefs = definition(
        {
            "name": "prefs",
            "entity": {"name": "P", "key": "{k}", "schema": {"k": {"type": "string"}}},
        }
    )
    assert [p.field for p in validate_document(prefs, {"k": ""})] == ["k"]
    assert "at most 255" in validate_document(prefs, {"k": "x" * 300})[0].message
