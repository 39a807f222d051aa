"""The live-server tests through a load balancer: nginx in front of two daphne workers (deploy/cluster.py)
on this session's PostgreSQL database and Redis.

A `LiveCluster` answers like a `LiveServer` (base_url, ws_url, token, headers, client, database, log,
stop), with nginx's address, so a black-box test runs unchanged against either. `AMODAL_LIVE_TARGET=cluster`
makes every server the live_server_factory starts a cluster (`make test-cluster`);
tests/e2e/test_cluster_live.py runs a set of them through nginx in every PostgreSQL run.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from deploy.cluster import Cluster, ClusterError, find_nginx, free_port
from tests.e2e.live import Endpoint, LiveDatabase, base_env, session_redis_url, session_uses_postgres

LIVE_TARGETS = ("daphne", "cluster")
WORKERS = 2
PORT_ATTEMPTS = 3


def live_target() -> str:
    """What the live-server tests talk to: "daphne" (one process, the default) or "cluster"."""
    target = os.environ.get("AMODAL_LIVE_TARGET", "") or "daphne"
    if target not in LIVE_TARGETS:
        raise pytest.UsageError(f"AMODAL_LIVE_TARGET must be one of {', '.join(LIVE_TARGETS)}, not {target!r}")
    return target


def cluster_skip_reason() -> str:
    """Why this session cannot run a cluster ("" when it can)."""
    if find_nginx() is None:
        return "nginx is not installed (Debian package nginx; `make services` installs it)"
    missing = []
    if not session_uses_postgres():
        missing.append("DATABASE_URL pointing to PostgreSQL")
    if not session_redis_url():
        missing.append("REDIS_URL")
    if missing:
        return f"the cluster's workers share {' and '.join(missing)}, which this session does not set"
    return ""


@dataclass
class LiveCluster(Endpoint):
    cluster: Cluster
    database: LiveDatabase
    env: dict[str, str] = field(repr=False)

    @property
    def port(self) -> int:
        return self.cluster.port

    @property
    def base_url(self) -> str:
        return self.cluster.base_url

    @property
    def ws_url(self) -> str:
        return self.cluster.ws_url

    @property
    def process(self) -> subprocess.Popen[bytes]:
        """nginx, the process clients talk to."""
        assert self.cluster.nginx_process is not None
        return self.cluster.nginx_process

    def log(self) -> str:
        return self.cluster.logs()

    def access_logs(self) -> list[str]:
        """Each worker's daphne access log (one line per request it answered)."""
        return [read(worker.access_log_path) for worker in self.cluster.workers]

    def stop(self) -> None:
        self.cluster.stop()

    def kill(self) -> None:
        raise NotImplementedError("killing one process of a cluster is a fault drill, not a LiveServer kill")


def read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def start_cluster(
    database: LiveDatabase,
    run_dir: Path,
    *,
    redis_url: str = "",
    extra_env: dict[str, str] | None = None,
    workers: int = WORKERS,
) -> LiveCluster:
    """nginx and `workers` daphne processes on `database` and Redis, healthy through nginx."""
    reason = cluster_skip_reason()
    if reason:
        pytest.skip(reason)
    for attempt in range(PORT_ATTEMPTS):
        port = free_port()
        env = base_env(database.url, port=port, redis_url=redis_url or session_redis_url(), extra=extra_env)
        attempt_dir = run_dir / f"cluster-{port}"
        attempt_dir.mkdir(parents=True)
        cluster = Cluster(env, workers=workers, port=port, run_dir=attempt_dir)
        try:
            cluster.start()
        except ClusterError as exc:
            if attempt + 1 < PORT_ATTEMPTS and "Address already in use" in str(exc):
                continue  # another process took the port between picking and binding it
            pytest.fail(f"the cluster did not start: {exc}\n{cluster.logs()}")
        return LiveCluster(cluster=cluster, database=database, env=env)
    raise AssertionError("unreachable")
