"""A real daphne server in a subprocess, its database, and tokens for it (used by tests/e2e/conftest.py)."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import jwt
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT_SECONDS = 45.0
STOP_TIMEOUT_SECONDS = 10.0
COMMAND_TIMEOUT_SECONDS = 180.0
PORT_ATTEMPTS = 3
# Variables of this test session that must not leak into a server (each server gets its own values).
SERVER_ENV_CLEARED = (
    "DJANGO_SETTINGS_MODULE",
    "DATABASE_URL",
    "REDIS_URL",
    "AMODAL_AGENT_DIR",
    "AMODAL_AUTH",
    "AMODAL_ALLOWED_ORIGINS",
    "AMODAL_JWT_ALGORITHM",
    "AMODAL_JWT_PUBLIC_KEY_FILE",
    "AMODAL_SSE_KEEPALIVE_SECONDS",
    "FINANCE_API_URL",
)


# --- configuration of this test session -------------------------------------------------------------


def session_database_url() -> str:
    return os.environ.get("DATABASE_URL", "")


def session_uses_postgres() -> bool:
    return urlsplit(session_database_url()).scheme in {"postgres", "postgresql", "pgsql"}


def session_redis_url() -> str:
    return os.environ.get("REDIS_URL", "")


def jwt_secret() -> str:
    """The secret the test process signs with (tests/settings.py's), handed to every server."""
    from django.conf import settings

    return settings.AMODAL_JWT_SECRET or "e2e-jwt-secret-0123456789abcdef0123456789"


def sign_token(
    scope: str | None,
    context: dict[str, str] | None = None,
    *,
    sub: str = "e2e-user",
    ttl_seconds: int = 3600,
    secret: str | None = None,
) -> str:
    """A JWT minted with PyJWT directly (independent of the product's minting). `scope=None` leaves
    the scope_id claim out."""
    now = int(time.time())
    claims: dict[str, Any] = {"sub": sub, "iat": now, "exp": now + ttl_seconds, "jti": secrets.token_hex(8)}
    if scope is not None:
        claims["scope_id"] = scope
        claims["scopeContext"] = dict(context or {})
    return jwt.encode(claims, secret or jwt_secret(), algorithm="HS256")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def base_env(
    database_url: str, *, port: int | None = None, redis_url: str = "", extra: dict[str, str] | None = None
) -> dict[str, str]:
    """The environment of a server or management command: development settings, this test's secret."""
    env = {key: value for key, value in os.environ.items() if key not in SERVER_ENV_CLEARED}
    python_path = [str(REPO_ROOT), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    env.update(
        DJANGO_SETTINGS_MODULE="amodal_site.settings",
        DEBUG="1",
        AMODAL_DEMO_API="1",
        AMODAL_JWT_SECRET=jwt_secret(),
        DATABASE_URL=database_url,
        FINANCE_API_URL=f"http://127.0.0.1:{port or 8000}/demo/finance-api",
        PYTHONPATH=os.pathsep.join(python_path),
        PYTHONUNBUFFERED="1",
    )
    if redis_url:
        env["REDIS_URL"] = redis_url
    if database_url.startswith("sqlite"):
        # A suite run with row-level security on (PostgreSQL) still starts SQLite servers, where it is refused.
        env.pop("AMODAL_DB_ROW_SECURITY", None)
    env.update(extra or {})
    return env


def run_manage(args: list[str], env: dict[str, str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
    """`python manage.py ARGS` in a subprocess (bounded); with `check`, fails the test with its output
    when it exits non-zero."""
    completed = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_SECONDS,
        check=False,
    )
    if check and completed.returncode != 0:
        pytest.fail(
            f"manage.py {' '.join(args)} exited {completed.returncode}\n"
            f"stdout:\n{completed.stdout}\nstderr:\n{completed.stderr}"
        )
    return completed


# --- the server's database ----------------------------------------------------------------------------


@dataclass
class LiveDatabase:
    """The database a live server uses, with plain SQL reads for checking saved rows (and writes for setting
    up what a test needs)."""

    url: str
    vendor: str  # "sqlite" or "postgresql"
    name: str

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        """Run a read with `%s` placeholders on either database."""
        if self.vendor == "sqlite":
            import sqlite3

            connection = sqlite3.connect(self.name, timeout=20)
            try:
                return connection.execute(sql.replace("%s", "?"), params).fetchall()
            finally:
                connection.close()
        import psycopg

        with psycopg.connect(self.url, connect_timeout=10) as connection:
            return connection.execute(sql, params).fetchall()

    def execute(self, sql: str, params: tuple = ()) -> None:
        """Run a write with `%s` placeholders on either database, committed."""
        if self.vendor == "sqlite":
            import sqlite3

            connection = sqlite3.connect(self.name, timeout=20)
            try:
                connection.execute(sql.replace("%s", "?"), params)
                connection.commit()
            finally:
                connection.close()
            return
        import psycopg

        with psycopg.connect(self.url, connect_timeout=10) as connection:
            connection.execute(sql, params)

    def uuid_param(self, value: str) -> str:
        """A UUID as the column stores it (SQLite: 32 hex digits; PostgreSQL: a uuid)."""
        import uuid

        parsed = uuid.UUID(str(value))
        return parsed.hex if self.vendor == "sqlite" else str(parsed)


def postgres_admin_url(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/postgres"))


def postgres_admin(statement: str, attempts: int = 5) -> None:
    """One statement on the `postgres` database, retried a few times when the server is briefly full
    (other suites share it: `too many clients already`)."""
    import psycopg

    for attempt in range(attempts):
        try:
            with psycopg.connect(
                postgres_admin_url(session_database_url()), autocommit=True, connect_timeout=10
            ) as connection:
                connection.execute(statement)
            return
        except psycopg.OperationalError:
            if attempt + 1 == attempts:
                raise
            time.sleep(1.0 + attempt)


def create_postgres_database() -> LiveDatabase:
    name = f"amodal_e2e_{secrets.token_hex(6)}"
    postgres_admin(f'CREATE DATABASE "{name}"')
    url = urlunsplit(urlsplit(session_database_url())._replace(path=f"/{name}"))
    return LiveDatabase(url=url, vendor="postgresql", name=name)


def drop_postgres_database(database: LiveDatabase) -> None:
    postgres_admin(f'DROP DATABASE IF EXISTS "{database.name}" WITH (FORCE)')


def create_sqlite_database(directory: Path) -> LiveDatabase:
    path = directory / f"e2e-{secrets.token_hex(4)}.sqlite3"
    return LiveDatabase(url=f"sqlite:///{path}", vendor="sqlite", name=str(path))


def migrate(database: LiveDatabase) -> None:
    run_manage(["migrate", "--noinput"], base_env(database.url))


# --- the server -----------------------------------------------------------------------------------------


class Endpoint:
    """What a test talks to (a daphne server, or nginx in front of several): tokens, headers, a client."""

    @property
    def base_url(self) -> str:
        raise NotImplementedError

    def token(self, scope: str | None, context: dict[str, str] | None = None, **kwargs: Any) -> str:
        return sign_token(scope, context, **kwargs)

    def headers(self, scope: str | None, context: dict[str, str] | None = None, **kwargs: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(scope, context, **kwargs)}"}

    def client(self, **kwargs: Any) -> httpx.Client:
        kwargs.setdefault("timeout", httpx.Timeout(15.0, connect=5.0))
        return httpx.Client(base_url=self.base_url, trust_env=False, **kwargs)


@dataclass
class LiveServer(Endpoint):
    port: int
    process: subprocess.Popen
    log_path: Path
    database: LiveDatabase
    env: dict[str, str] = field(repr=False)
    # How it was started, so that `restart_server` can start its successor the same way.
    redis_url: str = ""
    extra_env: dict[str, str] = field(default_factory=dict, repr=False)
    daphne_args: tuple[str, ...] = ()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def kill(self) -> None:
        """`kill -9`: the process dies at once, with no chance to save or release anything."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(STOP_TIMEOUT_SECONDS)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(STOP_TIMEOUT_SECONDS)


@contextmanager
def migrated_database(sqlite_dir: Path) -> Iterator[LiveDatabase]:
    """A fresh migrated database for live servers: PostgreSQL when the session runs on it (dropped at
    the end), else a SQLite file in `sqlite_dir`."""
    database = create_postgres_database() if session_uses_postgres() else create_sqlite_database(sqlite_dir)
    try:
        migrate(database)
        yield database
    finally:
        if database.vendor == "postgresql":
            drop_postgres_database(database)


def daphne_command(port: int, daphne_args: tuple[str, ...] = ()) -> list[str]:
    daphne = Path(sys.executable).with_name("daphne")
    program = [str(daphne)] if daphne.exists() else [sys.executable, "-m", "daphne"]
    return [*program, "-b", "127.0.0.1", "-p", str(port), *daphne_args, "amodal_site.asgi:application"]


def wait_until_healthy(server: LiveServer) -> bool:
    """True once GET /health answers 200; False if the process died (e.g. its port was taken)."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    last = "no answer"
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            return False
        try:
            response = httpx.get(f"{server.base_url}/health", timeout=3.0, trust_env=False)
            if response.status_code == 200:
                return True
            last = f"{response.status_code} {response.text}"
        except httpx.HTTPError as exc:
            last = repr(exc)
        time.sleep(0.2)
    server.stop()
    pytest.fail(
        f"daphne did not become healthy within {STARTUP_TIMEOUT_SECONDS:g} s (last: {last})\n"
        f"--- server log ---\n{server.log()}"
    )


def start_server(
    database: LiveDatabase,
    log_dir: Path,
    *,
    redis_url: str = "",
    extra_env: dict[str, str] | None = None,
    daphne_args: tuple[str, ...] = (),
) -> LiveServer:
    """A daphne server on `database`, healthy; `daphne_args` are extra command-line flags (timeouts...)."""
    for attempt in range(PORT_ATTEMPTS):
        port = free_port()
        env = base_env(database.url, port=port, redis_url=redis_url, extra=extra_env)
        log_path = log_dir / f"daphne-{port}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                daphne_command(port, daphne_args),
                cwd=REPO_ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        server = LiveServer(
            port=port,
            process=process,
            log_path=log_path,
            database=database,
            env=env,
            redis_url=redis_url,
            extra_env=dict(extra_env or {}),
            daphne_args=daphne_args,
        )
        if wait_until_healthy(server):
            return server
        if attempt + 1 < PORT_ATTEMPTS and "Address already in use" in server.log():
            continue  # another worker took the port between picking and binding it
        pytest.fail(
            f"daphne exited with {server.process.returncode} before it was healthy\n--- server log ---\n{server.log()}"
        )
    raise AssertionError("unreachable")


def restart_server(server: LiveServer) -> LiveServer:
    """A new server started like `server` (same database, Redis, environment and flags; its own free
    port, as a replacement process behind a load balancer), after `server` has stopped or been killed."""
    if server.process.poll() is None:
        server.stop()
    return start_server(
        server.database,
        server.log_path.parent,
        redis_url=server.redis_url,
        extra_env=server.extra_env,
        daphne_args=server.daphne_args,
    )
