"""The TypeScript types (clients/typescript/*.d.ts) are what `manage.py export_typescript` generates from
the published schemas, and the widget's event handling type-checks against them (`tsc --checkJs`, from
clients/typescript/package-lock.json: `make install` runs `npm ci` there). Only the tsc checks need
Node; they skip when it is absent."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

REPO = Path(__file__).resolve().parents[2]
TS_DIR = REPO / "clients" / "typescript"
WIDGET = Path("agents") / "static" / "amodal" / "chat-widget.js"
TSC = TS_DIR / "node_modules" / "typescript" / "bin" / "tsc"
TSC_TIMEOUT_SECONDS = 120


def test_the_committed_declarations_are_up_to_date():
    call_command("export_typescript", "--check")  # raises CommandError when stale


def test_check_fails_on_a_stale_or_unknown_declaration_and_export_fixes_it(tmp_path):
    call_command("export_typescript", "--dir", str(tmp_path))
    (tmp_path / "events.d.ts").write_text("export {};\n")
    (tmp_path / "old.d.ts").write_text("export {};\n")

    with pytest.raises(CommandError, match=r"events\.d\.ts \(stale\), old\.d\.ts \(unknown\)"):
        call_command("export_typescript", "--check", "--dir", str(tmp_path))

    call_command("export_typescript", "--dir", str(tmp_path))
    assert sorted(path.name for path in tmp_path.iterdir()) == ["api.d.ts", "events.d.ts", "index.d.ts"]


def test_the_declarations_name_every_event_and_narrow_tool_results():
    text = (TS_DIR / "events.d.ts").read_text()
    for name in ("InitEvent", "TextDeltaEvent", "ToolCallStartEvent", "ConfirmationRequiredEvent", "UsageEvent"):
        assert f"export interface {name} {{" in text
    assert "export type ChatEvent = InitEvent | TextDeltaEvent |" in text
    assert '{ status: "success"; result: string; error?: never }' in text
    assert "message_id: string | null;" in text
    api = (TS_DIR / "api.d.ts").read_text()
    assert "export interface SessionDetail {" in api and "export interface ChatRequest {" in api


def tsc(project: Path) -> subprocess.CompletedProcess[str]:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the widget's type check needs it")
    assert TSC.is_file(), f"{TSC} is missing: run `make install` (npm ci in clients/typescript)"
    return subprocess.run(
        [node, str(TSC), "-p", str(project / "tsconfig.json")],
        capture_output=True,
        text=True,
        timeout=TSC_TIMEOUT_SECONDS,
        check=False,
    )


def test_the_widget_type_checks_against_the_event_types():
    result = tsc(TS_DIR)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_widget_that_reads_a_field_the_contract_lacks_fails_the_check(tmp_path):
    """The same check on a copy of the widget that misreads an event: it must fail, naming the field."""
    (tmp_path / WIDGET).parent.mkdir(parents=True)
    widget = (REPO / WIDGET).read_text()
    assert 'turn.appendText(evt.content || "")' in widget
    (tmp_path / WIDGET).write_text(widget.replace("evt.content ||", "evt.text ||"))
    copy = tmp_path / "clients" / "typescript"
    copy.mkdir(parents=True)
    for name in ("tsconfig.json", "index.d.ts", "events.d.ts", "api.d.ts"):
        shutil.copy(TS_DIR / name, copy / name)

    result = tsc(copy)

    assert result.returncode != 0
    assert "Property 'text' does not exist on type 'TextDeltaEvent'" in result.stdout, result.stdout
