"""The layers of DESIGN.md ("Layout"), as pyproject.toml's import-linter contract states them: an app
imports only lower layers, TYPE_CHECKING imports included. Run with the suite, so CI keeps them too."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_the_apps_depend_one_way():
    # In its own process: import-linter's settings and graph must not share this one's imported modules.
    result = subprocess.run(
        [Path(sys.executable).parent / "lint-imports", "--no-cache"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
