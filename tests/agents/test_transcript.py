"""The serialised transcript and its context window (agents.runtime.transcript), on their own."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from agents.runtime.transcript import Appended, Transcript, TranscriptPart
from agents.runtime.wire import encode_json


def user(text: str) -> dict:
    return {"role": "user", "content": text}


def assistant(text: str) -> dict:
    return {"role": "assistant", "content": [{"type": "text", "text": text}]}


def exchange(text: str, *, tool: bool = False) -> list[TranscriptPart]:
    parts = [TranscriptPart.of([user(text)], starts_exchange=True)]
    if tool:
        use = {"type": "tool_use", "id": f"t-{text}", "name": "t", "input": {"q": text}}
        result = {"type": "tool_result", "tool_use_id": f"t-{text}", "content": "ok", "is_error": False}
        parts.append(
            TranscriptPart.of(
                [{"role": "assistant", "content": [use]}, {"role": "user", "content": [result]}], starts_exchange=False
            )
        )
    parts.append(TranscriptPart.of([assistant("answer to " + text)], starts_exchange=False))
    return parts


def messages_of(window_json: str) -> list[dict]:
    return json.loads("[" + window_json + "]")


def test_the_body_is_the_messages_json_without_brackets():
    transcript = Transcript().appended([*exchange("one"), *exchange("two ü \u2028")])
    expected = [user("one"), assistant("answer to one"), user("two ü \u2028"), assistant("answer to two ü \u2028")]
    assert transcript.window(10**9).json == ",".join(encode_json(m) for m in expected)
    assert messages_of(transcript.window(10**9).json) == expected


def test_appending_in_pieces_equals_appending_at_once():
    parts = [*exchange("a"), *exchange("b", tool=True), *exchange("c")]
    whole = Transcript().appended(parts)
    stored = Transcript()
    for part in parts:  # as the database does it: the row's text plus Appended.of(..., at=len(text))
        added = Appended.of([part], at=len(stored.body))
        stored = Transcript(stored.body + added.body, stored.index + added.index, stored.tokens + added.tokens)
    assert stored == whole


def test_an_empty_transcript_has_an_empty_window():
    window = Transcript().window(100)
    assert (window.json, window.tokens, window.dropped_exchanges) == ("", 0, 0)


def test_a_small_budget_drops_whole_old_exchanges_and_says_how_many():
    transcript = Transcript().appended([*exchange("one", tool=True), *exchange("two", tool=True), *exchange("three")])
    last_two = Transcript().appended([*exchange("two", tool=True), *exchange("three")])
    window = transcript.window(last_two.tokens)
    assert window.dropped_exchanges == 1
    assert window.json == last_two.body[1:]
    assert messages_of(window.json)[0] == user("two")


def test_when_not_even_the_last_exchange_fits_nothing_is_sent():
    transcript = Transcript().appended(exchange("x" * 400))
    window = transcript.window(5)
    assert (window.json, window.dropped_exchanges) == ("", 1)


exchanges = st.lists(
    st.tuples(st.text(min_size=1, max_size=60), st.booleans()),
    min_size=0,
    max_size=12,
)


@settings(max_examples=200, deadline=None)
@given(exchanges=exchanges, budget=st.integers(min_value=0, max_value=400))
def test_the_window_is_the_longest_suffix_of_whole_exchanges_that_fits(exchanges, budget):
    per_exchange = [exchange(text, tool=tool) for text, tool in exchanges]
    transcript = Transcript().appended([part for parts in per_exchange for part in parts])
    window = transcript.window(budget)

    kept = len(per_exchange) - window.dropped_exchanges
    suffix = Transcript().appended([part for parts in per_exchange[len(per_exchange) - kept :] for part in parts])
    assert window.json == suffix.body[1:]
    assert window.tokens == suffix.tokens
    assert suffix.tokens <= budget
    if kept < len(per_exchange):  # one more exchange would not have fitted
        one_more = [part for parts in per_exchange[len(per_exchange) - kept - 1 :] for part in parts]
        assert sum(part.tokens for part in one_more) > budget
    messages = messages_of(window.json)
    assert not messages or messages[0]["role"] == "user"
    uses = {
        b["id"] for m in messages if isinstance(m["content"], list) for b in m["content"] if b["type"] == "tool_use"
    }
    results = {
        b["tool_use_id"]
        for m in messages
        if isinstance(m["content"], list)
        for b in m["content"]
        if b["type"] == "tool_result"
    }
    assert uses == results  # never a tool_use without its tool_result
