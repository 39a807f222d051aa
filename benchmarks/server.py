"""Start and stop a real daphne process for the benchmarks, on 127.0.0.1 and a free port.

`BenchServer` migrates a database first (a temporary SQLite file unless a `DATABASE_URL` is given), then
runs `daphne -b 127.0.0.1 -p PORT amodal_site.asgi:application` with `DJANGO_SETTINGS_MODULE =
benchmarks.settings` (the project plus `/bench/bare-sse`), waits for `/health`, and stops it with SIGTERM
(SIGKILL after a grace period). It runs as in production: DEBUG off (so no SQL is recorded per query),
with generated secrets, token (JWT) auth, and the agent folder given (else the bundled example). The
server's output goes to a log file the benchmark scans for errors.
`fresh_postgres` creates a throw-away PostgreSQL database and drops it afterwards.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
from cryptography.fernet import Fernet

from benchmarks import procstat

PROJECT_ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
STARTUP_TIMEOUT_SECONDS = 60.0
STOP_GRACE_SECONDS = 15.0
# Messages of the benchmark call no connection, so this URL is never contacted (port 9 is "discard").
DEFAULT_FINANCE_API_URL = "http://127.0.0.1:9/finance-api"
# Lines of the server log that count as problems, by kind.
LOG_PROBLEMS = {
    "traceback": re.compile(r"^Traceback \(most recent call last\)"),
    "database is locked": re.compile(r"database is locked", re.IGNORECASE),
    "too many clients": re.compile(r"too many clients|remaining connection slots", re.IGNORECASE),
    "ERROR log line": re.compile(r"\bERROR\b"),
    "WARNING log line": re.compile(r"\bWARNING\b"),
}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def daphne_command(port: int, listen_backlog: int = 0) -> list[str]:
    """daphne on HOST:port; with a listen backlog (Twisted's default is 50) through an endpoint string."""
    script = Path(sys.executable).parent / "daphne"
    base = [str(script)] if script.exists() else [sys.executable, "-m", "daphne"]
    if listen_backlog:
        return [
            *base,
            "-e",
            f"tcp:port={port}:interface={HOST}:backlog={listen_backlog}",
            "amodal_site.asgi:application",
        ]
    return [*base, "-b", HOST, "-p", str(port), "amodal_site.asgi:application"]


@contextmanager
def fresh_postgres(admin_url: str) -> Iterator[str]:
    """A new, empty database on the server of `admin_url`; yields its URL and drops it at the end."""
    import psycopg

    name = f"amodal_bench_{os.getpid()}_{secrets.token_hex(3)}"
    parts = urlsplit(admin_url)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(parts._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class BenchServer:
    """One daphne process over a migrated database. Use as a context manager."""

    def __init__(
        self,
        *,
        database_url: str | None = None,
        agent_dir: Path | None = None,
        extra_env: dict[str, str] | None = None,
        listen_backlog: int = 0,
    ) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="amodal-bench-"))
        self.sqlite_path: Path | None = None
        if not database_url:
            self.sqlite_path = self.workdir / "bench.sqlite3"
            database_url = f"sqlite:///{self.sqlite_path}"
        self.database_url = database_url
        self.port = free_port()
        self.listen_backlog = listen_backlog
        self.base_url = f"http://{HOST}:{self.port}"
        self.jwt_secret = secrets.token_urlsafe(32)
        self.log_path = self.workdir / "daphne.log"
        self.process: subprocess.Popen | None = None
        self.migrate_seconds = 0.0
        self.startup_seconds = 0.0
        self._log_offset = 0
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "benchmarks.settings",
            "DEBUG": "0",
            "SECRET_KEY": secrets.token_urlsafe(40),
            "AMODAL_CREDENTIALS_KEY": Fernet.generate_key().decode(),
            "DATABASE_URL": database_url,
            "AMODAL_JWT_SECRET": self.jwt_secret,
            "AMODAL_AUTH": "token",
            "FINANCE_API_URL": os.environ.get("FINANCE_API_URL") or DEFAULT_FINANCE_API_URL,
            "PYTHONUNBUFFERED": "1",
            **(extra_env or {}),
        }
        if agent_dir is not None:
            self.env["AMODAL_AGENT_DIR"] = str(agent_dir)

    @property
    def database_kind(self) -> str:
        return "sqlite" if self.database_url.startswith("sqlite") else urlsplit(self.database_url).scheme

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    # --- lifecycle -------------------------------------------------------------------------------

    def __enter__(self) -> BenchServer:
        try:
            self.migrate()
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def migrate(self) -> None:
        started = time.perf_counter()
        result = subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput"],
            cwd=PROJECT_ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        self.migrate_seconds = time.perf_counter() - started
        if result.returncode != 0:
            raise RuntimeError(f"migrate failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")

    def start(self) -> None:
        started = time.perf_counter()
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                daphne_command(self.port, self.listen_backlog),
                cwd=PROJECT_ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        self.wait_for_health()
        self.startup_seconds = time.perf_counter() - started
        self._log_offset = self.log_path.stat().st_size

    def wait_for_health(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        last_problem = "no answer yet"
        assert self.process is not None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"daphne exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                response = httpx.get(f"{self.base_url}/health", timeout=5)
                if response.status_code == 200:
                    return
                last_problem = f"{response.status_code} {response.text[:300]}"
            except httpx.HTTPError as exc:
                last_problem = repr(exc)
            time.sleep(0.2)
        raise RuntimeError(
            f"/health did not answer 200 in {STARTUP_TIMEOUT_SECONDS:g} s ({last_problem}).\n{self.log_tail()}"
        )

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        if os.environ.get("BENCH_KEEP_LOG"):
            sys.stderr.write(f"daphne log kept in {self.log_path}\n")
        else:
            shutil.rmtree(self.workdir, ignore_errors=True)

    # --- observation -------------------------------------------------------------------------------

    def proc_status(self) -> dict[str, int]:
        """VmRSS, VmHWM (in KiB) and Threads of the daphne process; {} once it is gone."""
        return procstat.proc_status(self.pid)

    def open_sqlite_handles(self) -> int | None:
        """How many file descriptors of daphne point at the SQLite file (one per open connection)."""
        if self.sqlite_path is None:
            return None
        target = str(self.sqlite_path)
        count = 0
        try:
            for fd in os.scandir(f"/proc/{self.pid}/fd"):
                try:
                    if os.readlink(fd.path) == target:
                        count += 1
                except OSError:
                    continue
        except OSError:
            return None
        return count

    def new_log_problems(self) -> tuple[dict[str, int], list[str]]:
        """Problem counts (by kind) and a few distinct sample lines logged since the last call."""
        with self.log_path.open("rb") as log:
            log.seek(self._log_offset)
            chunk = log.read().decode("utf-8", "replace")
            self._log_offset = log.tell()
        counts = dict.fromkeys(LOG_PROBLEMS, 0)
        samples: list[str] = []
        lines = chunk.splitlines()
        for index, line in enumerate(lines):
            for kind, pattern in LOG_PROBLEMS.items():
                if pattern.search(line):
                    counts[kind] += 1
            # The last line of a traceback says what was raised.
            is_exception_line = re.match(r"^[\w.]+(Error|Exception|Locked|Timeout)\b.*", line)
            ends_traceback = is_exception_line and (index + 1 == len(lines) or not lines[index + 1].startswith(" "))
            if (ends_traceback or " ERROR " in line) and len(samples) < 8:
                sample = re.sub(r"[0-9a-f]{8}-[0-9a-f-]{27}", "<uuid>", line.strip())[:240]
                if sample not in samples:
                    samples.append(sample)
        return {kind: n for kind, n in counts.items() if n}, samples

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"
