"""CSV downloads: cells that are safe to open in a spreadsheet, written and sent in chunks (streamed under
WSGI and ASGI by core.streaming)."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from django.http import HttpRequest, StreamingHttpResponse

from core.streaming import streamed_response

ROWS_PER_CHUNK = 500
# A cell starting with one of these is a formula to a spreadsheet (OWASP "CSV injection"): prefixed with '.
FORMULA_STARTS = frozenset("=+-@\t\r")
FILENAME_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
MAX_FILENAME = 150


def safe_cell(value: Any) -> Any:
    if type(value) is str and value[:1] in FORMULA_STARTS:
        return f"'{value}"
    return value


def csv_chunks(header: Sequence[str], rows: Iterable[Sequence[Any]], *, rows_per_chunk: int = 0) -> Iterator[str]:
    """The CSV text of `header` and `rows`, `rows_per_chunk` (default ROWS_PER_CHUNK) rows a chunk, every
    cell made safe."""
    rows_per_chunk = rows_per_chunk or ROWS_PER_CHUNK
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    for count, row in enumerate(rows, start=1):
        writer.writerow([safe_cell(value) for value in row])
        if count % rows_per_chunk == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def csv_response(request: HttpRequest, chunks: Iterator[str], *, filename: str) -> StreamingHttpResponse:
    """A streamed CSV download named `filename` (made safe for the header: letters, digits, . _ -)."""
    response = streamed_response(request, chunks, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{safe_filename(filename)}"'
    return response


def safe_filename(name: str) -> str:
    stem, dot, extension = name.rpartition(".")
    if not dot:
        stem, extension = name, "csv"
    stem = FILENAME_UNSAFE.sub("_", stem).strip("._-")[: MAX_FILENAME - len(extension) - 1] or "export"
    return f"{stem}.{FILENAME_UNSAFE.sub('', extension) or 'csv'}"
