"""A Server-Sent Events decoder: lines in, the `data` of each dispatched event out.

The rules are the HTML standard's ("Interpreting an event stream"): a line starting with `:` is a comment
(the server's `: keep-alive`), `data:` lines accumulate (joined with "\\n", one leading space dropped), an empty
line dispatches, an event with no `data` is not dispatched, `event`, `id` and `retry` fields and unknown
fields are ignored (this API tells its events apart by the JSON `type`). httpx splits lines on `\\n`, `\\r\\n`
and `\\r` alike. Written here rather than taken from httpx-sse: these few lines are all the stream needs, and
the client then checks the status and the error body itself before any event is read.
"""

from __future__ import annotations


class SSEDecoder:
    def __init__(self) -> None:
        self._data: list[str] = []

    def feed(self, line: str) -> str | None:
        """Take one line (without its line break); the data of the event it completes, if any."""
        if not line:
            if not self._data:
                return None
            data, self._data = "\n".join(self._data), []
            return data
        if line.startswith(":"):
            return None
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        return None

    @property
    def pending(self) -> bool:
        """True when data lines have been read that no empty line has dispatched yet."""
        return bool(self._data)
