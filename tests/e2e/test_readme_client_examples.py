"""README "Using it from a SaaS": every Python block that uses the client, and the curl commands of the block
before each, run as written against a live server (only the address replaced): the Python blocks first, each
in its own interpreter, then the curl commands through bash. And every Python block of clients/python/README.md.
A block that raises, a curl command that fails or answers an error, fails the test with its output."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from tests.e2e.live import REPO_ROOT, base_env, run_manage

pytestmark = pytest.mark.live

README_ADDRESS = "http://127.0.0.1:8000"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
GARCIA = "household-garcia"


def fenced_blocks(path) -> list[tuple[str, str]]:
    return [(lang, body) for lang, body in FENCE.findall(path.read_text())]


def readme_pairs() -> list[tuple[str, str]]:
    """(the shell block just before, the Python block) for each Python block that imports the client."""
    blocks = fenced_blocks(REPO_ROOT / "README.md")
    pairs = []
    for index, (lang, body) in enumerate(blocks):
        if lang == "python" and "amodal_client" in body:
            before = blocks[index - 1]
            assert before[0] == "sh", f"the Python block {index} follows a {before[0]!r} block, not the curl one"
            pairs.append((before[1], body))
    return pairs


def curl_commands(block: str) -> list[str]:
    """The block's curl commands, continuation lines joined, comments and `manage.py` commands left out."""
    joined = block.replace("\\\n", " ")
    return [line.strip() for line in joined.splitlines() if line.strip().startswith("curl ")]


def api_key(server, name: str, *flags: str) -> str:
    return run_manage(["create_api_key", name, *flags], base_env(server.database.url)).stdout.strip()


def run_python(code: str, server, env: dict[str, str], cwd) -> str:
    code = code.replace(README_ADDRESS, server.base_url)
    completed = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )
    assert completed.returncode == 0, f"{code}\n--- stdout\n{completed.stdout}\n--- stderr\n{completed.stderr}"
    return completed.stdout


def test_the_readme_has_a_python_block_next_to_each_curl_block():
    pairs = readme_pairs()
    assert len(pairs) >= 4
    for shell, python in pairs:
        assert curl_commands(shell), shell
        assert README_ADDRESS in python


def test_the_readme_python_and_curl_examples_run_as_written(daphne_server, tmp_path):
    token = daphne_server.token(GARCIA, {"household_id": GARCIA})
    env = {
        **base_env(daphne_server.database.url),
        "TOKEN": token,
        "MANAGE_SCOPES_KEY": api_key(daphne_server, "readme scopes", "--manage-scopes"),
        "CREDENTIALS_KEY": api_key(daphne_server, "readme credentials", "--manage-credentials"),
        "APP_TOKEN": "app-secret-from-the-readme",
    }
    pairs = readme_pairs()

    printed = "\n".join(run_python(python, daphne_server, env, tmp_path) for _, python in pairs)
    assert "[request]" in printed and "hello" in printed
    assert "404 session_not_found" in printed
    assert "Acme Hotels" in printed and "created" in printed and "['APP_API_TOKEN']" in printed
    exported = [json.loads(line) for line in (tmp_path / "acme.jsonl").read_text().splitlines()]
    assert exported[0]["kind"] == "scope" and exported[0]["label"] == "Acme Hotels"

    with daphne_server.client() as client:
        sent = client.post(
            "/chat/sync", json={"message": "/say for curl"}, headers={"Authorization": f"Bearer {token}"}
        )
    env.update(SESSION=sent.json()["session_id"], MESSAGE=sent.json()["message_id"])
    for shell, _ in pairs:
        for command in curl_commands(shell):
            command = command.replace(README_ADDRESS, daphne_server.base_url)
            completed = subprocess.run(
                ["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
            )
            assert completed.returncode == 0, f"{command}\n{completed.stderr}"
            check_answer(command, completed.stdout)


def check_answer(command: str, output: str) -> None:
    """A JSON answer that is no error, an event stream that ends with done, or JSON Lines (an export)."""
    assert output.strip(), command
    if "/chat/stream" in command:
        frames = [json.loads(line[len("data: ") :]) for line in output.splitlines() if line.startswith("data: ")]
        assert frames[0]["type"] == "init" and frames[-1]["type"] == "done", output
        return
    if command.split()[-1].endswith("/export") or "/export " in command:
        lines = [json.loads(line) for line in output.splitlines()]
        assert lines[0]["kind"] == "scope", output
        return
    answer = json.loads(output)
    assert not (isinstance(answer, dict) and "error" in answer), f"{command}\n{output}"


def test_the_client_readme_examples_run_as_written(daphne_server, tmp_path):
    env = {
        **base_env(daphne_server.database.url),
        "TOKEN": daphne_server.token(GARCIA, {"household_id": GARCIA}),
        "API_KEY": api_key(daphne_server, "client readme"),
    }
    blocks = [body for lang, body in fenced_blocks(REPO_ROOT / "clients/python/README.md") if lang == "python"]
    assert len(blocks) >= 5

    printed = [run_python(block, daphne_server, env, tmp_path) for block in blocks]

    streamed, asynchronous, backend, confirmation, errors = printed
    assert "[request " in streamed and "(model_stop, " in streamed and "and another thing" in streamed
    assert "hello from asyncio" in asynchronous
    assert backend.splitlines()[0] == "hi"
    assert "POST /transfers" in confirmation and "success" in confirmation
    assert errors.startswith("404 session_not_found ")
