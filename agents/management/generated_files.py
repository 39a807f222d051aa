"""Files a command generates and the repository commits (JSON Schemas, TypeScript declarations): write
them, or with `check` verify them, one way for every such command."""

from __future__ import annotations

from argparse import ArgumentParser
from pathlib import Path

from django.conf import settings
from django.core.management.base import CommandError


def add_arguments(parser: ArgumentParser, *, default_dir: str, what: str) -> None:
    """`--check` and `--dir` (relative to the project, e.g. "docs/schemas"), the same on every such command."""
    parser.add_argument("--check", action="store_true", help="Fail if the files are stale; write nothing.")
    parser.add_argument(
        "--dir",
        default=str(Path(settings.BASE_DIR) / default_dir),
        help=f"Where the {what} live (default {default_dir}).",
    )


def sync_files(directory: Path, expected: dict[str, str], present: set[str], *, check: bool, command: str) -> str:
    """Make `directory` hold exactly `expected` (relative path -> text) among the `present` files this
    command owns: stale ones rewritten, unknown ones removed. With `check`, change nothing and raise a
    CommandError naming each stale or unknown file. Returns a one-line summary."""
    changed = [name for name, text in expected.items() if not _has_text(directory / name, text)]
    extra = sorted(present - set(expected))
    if check:
        if changed or extra:
            problems = [*(f"{name} (stale)" for name in changed), *(f"{name} (unknown)" for name in extra)]
            raise CommandError(f"{directory}: {', '.join(problems)}. Run `python manage.py {command}`.")
        return f"{directory}: {len(expected)} files up to date."
    for name in changed:
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(expected[name], encoding="utf-8")
    for name in extra:
        (directory / name).unlink()
    return f"{directory}: {len(changed)} written, {len(extra)} removed, {len(expected)} in all."


def _has_text(path: Path, text: str) -> bool:
    return path.is_file() and path.read_text(encoding="utf-8") == text
