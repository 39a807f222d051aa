"""docs/websocket.md's Python client, run as written against a live daphne: the document stays honest."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.e2e.live import REPO_ROOT

pytestmark = pytest.mark.live

DOC = REPO_ROOT / "docs" / "websocket.md"


def python_client() -> str:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert len(blocks) == 1
    return blocks[0]


def test_the_documented_python_client_gets_an_answer(daphne_server):
    code = python_client()
    assert code.count("ws://127.0.0.1:8000/ws/chat") == 1 and code.count('"<token>"') == 1
    code = code.replace("ws://127.0.0.1:8000", daphne_server.ws_url).replace(
        '"<token>"', repr(daphne_server.token("household-garcia"))
    )
    code = code.replace("How much did we spend on groceries in May?", "/say twelve groceries")
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False, cwd=REPO_ROOT
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout == "twelve groceries\n"


def test_the_documented_python_client_stops_at_a_refusal(daphne_server):
    code = python_client().replace("ws://127.0.0.1:8000", daphne_server.ws_url)
    code = code.replace('"<token>"', repr(daphne_server.token("household-garcia")))
    sent = '"type": "message", "message": text'
    assert code.count(sent) == 1
    code = code.replace(sent, sent + ', "session_id": "nope"')
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False, cwd=REPO_ROOT
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.splitlines()[0].startswith("error: session_not_found ")
    assert completed.stdout.splitlines()[1] == ""
