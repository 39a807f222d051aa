"""deploy/cluster.py without starting anything: the rendered nginx config, its settings' refusals, and
the daphne flags it shares with the Makefile. (The cluster itself runs in tests/e2e/test_cluster_live.py.)"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from deploy import cluster as deploy_cluster
from deploy.cluster import Cluster, ClusterError, find_nginx, render_nginx_config

REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED = {"DATABASE_URL": "postgres://postgres@127.0.0.1:5432/x", "REDIS_URL": "redis://127.0.0.1:6379/0"}


def rendered(tmp_path: Path, sockets: int = 3) -> str:
    return render_nginx_config(
        run_dir=tmp_path, listen="127.0.0.1:18081", sockets=[tmp_path / f"w{i}.sock" for i in range(sockets)]
    )


def test_the_makefile_passes_the_same_daphne_flags_as_the_cluster_defaults_to():
    makefile = (REPO_ROOT / "Makefile").read_text()
    [flags] = re.findall(r"^DAPHNE_FLAGS := (.+)$", makefile, flags=re.MULTILINE)
    assert flags.split() == deploy_cluster.DAPHNE_FLAGS.split()


def test_the_config_names_every_worker_and_keeps_streams_unbuffered(tmp_path):
    text = rendered(tmp_path)

    assert not re.search(r"\{\{[A-Z_]+\}\}", text)
    assert [line.strip() for line in text.splitlines() if line.strip().startswith("server unix:")] == [
        f"server unix:{tmp_path / f'w{i}.sock'} max_fails=0;" for i in range(3)
    ]
    for directive in (
        "proxy_buffering off;",
        "proxy_read_timeout 3600s;",
        "proxy_set_header Upgrade $http_upgrade;",
        "proxy_set_header Connection $connection_upgrade;",
        "proxy_set_header X-Forwarded-For $remote_addr;",  # overwritten, never appended
        "listen 127.0.0.1:18081 backlog=1024;",
        f"pid {tmp_path}/nginx.pid;",
    ):
        assert directive in text, directive
    # Nothing outside the run directory: every absolute path in the config is under it.
    directives = "\n".join(line.split("#")[0] for line in text.splitlines())
    paths = re.findall(r"(?<![\w$:/])(/[\w./-]+)", directives)
    assert paths and all(path.startswith(str(tmp_path)) for path in paths), paths


@pytest.mark.skipif(find_nginx() is None, reason="nginx is not installed (Debian package nginx)")
def test_nginx_accepts_the_rendered_config(tmp_path):
    config = tmp_path / "nginx.conf"
    config.write_text(rendered(tmp_path))
    nginx = find_nginx()
    assert nginx is not None
    result = subprocess.run(
        [nginx, "-t", "-p", str(tmp_path), "-c", str(config), "-e", str(tmp_path / "error.log")],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "syntax is ok" in result.stderr


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({**SHARED, "DATABASE_URL": "sqlite:///db.sqlite3"}, "DATABASE_URL must point to PostgreSQL"),
        ({**SHARED, "DATABASE_URL": ""}, "DATABASE_URL must point to PostgreSQL"),
        ({**SHARED, "REDIS_URL": ""}, "REDIS_URL must point to Redis"),
    ],
    ids=["sqlite", "no-database", "no-redis"],
)
def test_a_cluster_refuses_settings_its_workers_cannot_share(env, named):
    with pytest.raises(ClusterError, match=named):
        Cluster(env)


def test_a_cluster_needs_a_worker():
    with pytest.raises(ClusterError, match="at least one worker"):
        Cluster(SHARED, workers=0)


def test_a_cluster_without_nginx_says_how_to_install_it(monkeypatch):
    monkeypatch.setattr(deploy_cluster, "find_nginx", lambda: None)
    with pytest.raises(ClusterError, match="nginx is not installed .*apt-get install nginx"):
        Cluster(SHARED)


def test_the_command_refuses_sqlite_with_a_clear_message(monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", "sqlite:///x.sqlite3")
    monkeypatch.setenv("REDIS_URL", "")

    assert deploy_cluster.main(["--no-migrate", "--port", "18082"]) == 2
    assert "DATABASE_URL must point to PostgreSQL" in capsys.readouterr().err


def test_a_run_directory_too_long_for_a_unix_socket_is_refused(tmp_path):
    run_dir = tmp_path / ("d" * 120)
    run_dir.mkdir()
    cluster = Cluster(SHARED, run_dir=run_dir)
    with pytest.raises(ClusterError, match="longer than a unix socket's 107 bytes"):
        cluster.start()
    assert cluster.workers == []
