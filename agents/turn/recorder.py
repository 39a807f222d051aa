"""The record of one message, written as it happens, so nothing of it is lost when a process or the
database dies: the user message before the model is called, the streamed text every
`AMODAL_CHECKPOINT_SECONDS` (batched, never per delta), each model call and its usage when it ends, each
tool call when it ends, and the transcript the next message reads.

Each step is one `db_call` (one hand-off to the database thread) and a fixed number of statements,
whatever the length of the session.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field

from django.conf import settings

from agents import services
from agents.models import Session
from agents.runtime.loop import Turn
from agents.runtime.records import ModelMessage, text_block
from agents.runtime.transcript import TranscriptPart
from agents.turn.lease import SessionLease
from core.db import db_call


@dataclass
class TurnRecorder:
    """Implements the agent loop's `Recorder` for one message of one session (it holds the lease)."""

    session: Session
    lease: SessionLease
    provider: str
    next_seq: int  # of the next message row
    transcript_length: int  # of the stored transcript body
    context_dropped: int  # earlier exchanges the window left out
    _seq: int = 0  # the row of the model call in progress
    _message_id: int | None = None  # that row, once a checkpoint or the call's end made it
    _public_id: uuid.UUID = field(default_factory=uuid.uuid4)  # that row's public id, chosen here
    _last_saved: float = field(default=0.0)
    # The public id of the last assistant message this message saved (`done` names it: what a rating rates).
    last_public_id: uuid.UUID | None = None

    def begin_call(self) -> None:
        self._seq, self.next_seq = self.next_seq, self.next_seq + 1
        self._message_id = None
        self._public_id = uuid.uuid4()
        self._last_saved = time.monotonic()

    def checkpoint_due(self) -> bool:
        return time.monotonic() - self._last_saved >= settings.AMODAL_CHECKPOINT_SECONDS

    async def checkpoint(self, turn: Turn) -> None:
        self._message_id = await db_call(services.save_partial)(
            session=self.session,
            seq=self._seq,
            text=turn.text,
            tool_calls=turn.tool_calls,
            message_id=self._message_id,
            public_id=self._public_id,
        )
        self.last_public_id = self._public_id
        self._last_saved = time.monotonic()

    async def call_ended(self, turn: Turn, *, finished: bool) -> int | None:
        # A finished call that asked for no tool and was not cut off ends the message (the model stopped,
        # or failed): its write also gives the lease back, one trip to the database fewer.
        last = finished and not turn.tool_uses and not turn.interrupted
        call = services.CallToRecord(
            turn,
            self.provider,
            self.context_dropped,
            self._message_id,
            finished,
            release_token=self.lease.token if last else "",
            public_id=self._public_id,
        )
        parts = [part] if finished and (part := transcript_part(turn)) is not None else []
        self._message_id, cost, self.transcript_length = await db_call(services.record_call)(
            session=self.session, seq=self._seq, call=call, parts=parts, at=self.transcript_length
        )
        self.last_public_id = self._public_id
        if last:
            self.lease.released = True
        return cost

    async def tool_finished(self, turn: Turn, *, last: bool) -> None:
        parts = [part] if last and (part := transcript_part(turn)) is not None else []
        self.transcript_length = await db_call(services.record_tool_calls)(
            session=self.session,
            seq=self._seq,
            tool_calls=turn.tool_calls,
            interrupted=turn.interrupted,
            parts=parts,
            at=self.transcript_length,
        )


def transcript_part(turn: Turn) -> TranscriptPart | None:
    """A model call as later messages' history carries it: tool arguments redacted and results capped,
    as they are saved (this message itself gave the model the whole of both)."""
    content: list = [text_block(turn.text)] if turn.text else []
    content += [call.use_block() for call in turn.tool_calls]
    if not content:
        return None
    messages: list[ModelMessage] = [{"role": "assistant", "content": content}]
    if turn.tool_calls:
        messages.append({"role": "user", "content": [call.result_block(whole=False) for call in turn.tool_calls]})
    return TranscriptPart.of(messages, starts_exchange=False)
