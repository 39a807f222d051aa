"""A session's conversation as the model sees it, kept already serialised, so a message's cost does not
grow with the session.

The transcript is text in the exact bytes the Messages API request carries: each *part* is one or more
messages, JSON-encoded the way the `anthropic` SDK encodes a request body, stored as `,` + its JSON. The
history of a request is then the stored text without its first comma: no parsing, no ORM rows, no SDK
transform over hundreds of messages. Parts are appended, never rewritten.

An *exchange* is a user message and everything the model and the tools answered to it; a part that starts
one is marked in the index. The context window (`agent.maxContextTokens`) drops whole exchanges from the
start, so a `tool_use` never loses its `tool_result` (they are always in the same part) and the history
always starts with a user message.

The index is a short text, one `offset:tokens:starts;` entry per part (offset of the part's comma in the
body, estimated tokens, 1 when the part starts an exchange). It is read only when the whole history does
not fit the window.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from agents.runtime.records import ModelMessage
from agents.runtime.wire import encode_json, estimate_tokens


@dataclass(frozen=True)
class TranscriptPart:
    json: str  # one or more messages, comma-joined, without brackets
    tokens: int
    starts_exchange: bool

    @classmethod
    def of(cls, messages: Iterable[ModelMessage], *, starts_exchange: bool) -> TranscriptPart:
        text = ",".join(encode_json(message) for message in messages)
        return cls(text, estimate_tokens(text), starts_exchange)


@dataclass(frozen=True)
class Appended:
    """Parts encoded for appending to a stored body `at` characters long."""

    body: str
    index: str
    tokens: int

    @classmethod
    def of(cls, parts: Iterable[TranscriptPart], *, at: int) -> Appended:
        body, index, tokens = [], [], 0
        for part in parts:
            index.append(f"{at}:{part.tokens}:{int(part.starts_exchange)};")
            stored = "," + part.json
            body.append(stored)
            at += len(stored)
            tokens += part.tokens
        return cls("".join(body), "".join(index), tokens)


@dataclass(frozen=True)
class Transcript:
    """What a session's transcript row holds (`body` and `index` as stored, `tokens` their sum)."""

    body: str = ""
    index: str = ""
    tokens: int = 0

    def appended(self, parts: Iterable[TranscriptPart]) -> Transcript:
        added = Appended.of(parts, at=len(self.body))
        return Transcript(self.body + added.body, self.index + added.index, self.tokens + added.tokens)

    def window(self, budget: int) -> HistoryWindow:
        """The newest whole exchanges whose estimated tokens fit `budget`."""
        if self.tokens <= budget:
            return HistoryWindow(self.body[1:], self.tokens, 0)
        cut, kept_tokens, running = len(self.body), 0, 0
        entries = [entry.split(":") for entry in self.index.split(";") if entry]
        for offset, tokens, starts in reversed(entries):
            running += int(tokens)
            if starts == "1":
                if running > budget:
                    break
                cut, kept_tokens = int(offset), running
        starts_before_cut = sum(1 for offset, _, starts in entries if starts == "1" and int(offset) < cut)
        return HistoryWindow(self.body[cut + 1 :], kept_tokens, starts_before_cut)


@dataclass(frozen=True)
class HistoryWindow:
    """The history a request carries: `json` is comma-joined messages (no brackets), possibly empty."""

    json: str
    tokens: int
    dropped_exchanges: int
