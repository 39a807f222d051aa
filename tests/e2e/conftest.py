"""End-to-end fixtures: the real ASGI server (daphne) in a subprocess, on a database of its own.

Tests talk to it only over HTTP, SSE and WebSocket, plus plain SQL reads of its database (sqlite3 or
psycopg) where a saved row must be checked; they never use pytest-django's test database.

- SQLite (the default): a file database under the module's tmp directory, migrated by
  `manage.py migrate` in a subprocess with the server's environment.
- PostgreSQL (when this session's `DATABASE_URL` points to PostgreSQL): a fresh database
  `amodal_e2e_<random>` per test module, created on the `postgres` database and dropped afterwards.
- `AMODAL_LIVE_TARGET=cluster` (`make test-cluster`): every server is nginx in front of two daphne
  workers on PostgreSQL and Redis instead (tests/e2e/cluster.py); skipped without nginx or those.
- `REDIS_URL`, when set for this session, is handed to the servers (the Redis channel layer). Channel
  group names carry the session's UUID, so concurrent runs on one Redis cannot see each other's cancels.

Every wait is bounded; a server that does not come up fails the test with its log.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.e2e.cluster import LiveCluster, live_target, start_cluster
from tests.e2e.live import (
    LiveDatabase,
    LiveServer,
    migrated_database,
    restart_server,
    session_redis_url,
    start_server,
)


@pytest.fixture(scope="module")
def live_database(tmp_path_factory) -> Iterator[LiveDatabase]:
    """A migrated database for this test module's servers: PostgreSQL when the session runs on it."""
    with migrated_database(tmp_path_factory.mktemp("e2e-db")) as database:
        yield database


class ServerFactory:
    """Starts daphne servers for a test module and stops them all at its end (see live_server_factory)."""

    def __init__(self, request: pytest.FixtureRequest, log_dir: Path) -> None:
        self.request = request
        self.log_dir = log_dir
        self.servers: list[LiveServer | LiveCluster] = []

    def __call__(
        self,
        *,
        database: LiveDatabase | None = None,
        redis_url: str | None = None,
        keepalive_seconds: float | None = None,
        extra_env: dict[str, str] | None = None,
    ) -> LiveServer:
        env = dict(extra_env or {})
        if keepalive_seconds is not None:
            env["AMODAL_SSE_KEEPALIVE_SECONDS"] = str(keepalive_seconds)
        database = database or self.request.getfixturevalue("live_database")
        redis_url = session_redis_url() if redis_url is None else redis_url
        if live_target() == "cluster":  # nginx in front of two workers (tests/e2e/cluster.py)
            cluster = start_cluster(database, self.log_dir, redis_url=redis_url, extra_env=env)
            self.servers.append(cluster)
            return cluster  # type: ignore[return-value]  # a LiveCluster answers like a LiveServer
        server = start_server(database, self.log_dir, redis_url=redis_url, extra_env=env)
        self.servers.append(server)
        return server

    def restart(self, server: LiveServer) -> LiveServer:
        """Its successor: same database and settings, a new process on a free port (stopped at the end)."""
        if live_target() == "cluster":
            pytest.skip("restarting one server process does not apply to AMODAL_LIVE_TARGET=cluster")
        successor = restart_server(server)
        self.servers.append(successor)
        return successor

    def stop_all(self) -> None:
        for server in self.servers:
            server.stop()


StartServer = Callable[..., LiveServer]


@pytest.fixture(scope="module")
def live_server_factory(request, tmp_path_factory) -> Iterator[ServerFactory]:
    """Start daphne servers on this module's database (or a given one); all are stopped at the end.

    `start(database=None, redis_url=<this session's REDIS_URL>, keepalive_seconds=None, extra_env=None)`;
    `start.restart(server)` starts a killed or stopped server's successor on the same database.
    Servers started on the same database (and Redis) behave as processes of one deployment.
    """
    factory = ServerFactory(request, tmp_path_factory.mktemp("e2e-logs"))
    yield factory
    factory.stop_all()


@pytest.fixture(scope="module")
def daphne_server(live_server_factory) -> LiveServer:
    """One server for a test module, with the default settings (finance-agent, local provider)."""
    return live_server_factory()
