"""A local cluster: nginx in front of several daphne workers sharing PostgreSQL and Redis.

`python -m deploy.cluster` (what `make cluster` runs) migrates the database, starts the workers on unix
sockets in a run directory, renders deploy/nginx.conf.template into it and runs nginx in the foreground
with that directory as its prefix, so nothing in /etc or /var is touched. Ctrl-C (or SIGTERM) stops every
process; so does any of them exiting on its own. The tests (tests/e2e/cluster.py) and the load benchmark
(benchmarks/load.py) start the same `Cluster`.

Settings come from the environment (README "Settings"); DATABASE_URL must point to PostgreSQL and
REDIS_URL to Redis: SQLite and the in-memory channel layer cannot be shared by processes.
"""

from __future__ import annotations

import argparse
import getpass
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx

REPO_ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = Path(__file__).with_name("nginx.conf.template")
# The Makefile's DAPHNE_FLAGS (README "Production"); tests/deploy/test_cluster_config.py keeps them equal.
DAPHNE_FLAGS = (
    "--websocket_timeout 86400 --websocket_connect_timeout 5 --ping-interval 20 --ping-timeout 30 "
    "--application-close-timeout 10"
)
LISTEN_BACKLOG = 1024
STARTUP_TIMEOUT_SECONDS = 60.0
MAX_SOCKET_PATH = 107  # sun_path holds 108 bytes with the terminating NUL
STOP_TIMEOUT_SECONDS = 15.0
PLACEHOLDER = re.compile(r"\{\{[A-Z_]+\}\}")
NGINX_CANDIDATES = ("/usr/sbin/nginx", "/usr/local/sbin/nginx")


class ClusterError(RuntimeError):
    """A process of the cluster did not start, or the settings cannot make a cluster."""


def find_nginx() -> str | None:
    """The nginx binary (Debian installs it in /usr/sbin, often not on a user's PATH), or None."""
    found = shutil.which("nginx")
    if found:
        return found
    return next((path for path in NGINX_CANDIDATES if os.access(path, os.X_OK)), None)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def shared_services_problem(env: dict[str, str]) -> str:
    """Why `env` cannot run a cluster ("" when it can): the workers must share PostgreSQL and Redis."""
    problems = []
    if urlsplit(env.get("DATABASE_URL", "")).scheme not in {"postgres", "postgresql", "pgsql"}:
        problems.append("DATABASE_URL must point to PostgreSQL (postgres://...)")
    if not env.get("REDIS_URL"):
        problems.append("REDIS_URL must point to Redis (redis://...)")
    return "; ".join(problems)


def render_nginx_config(
    *, run_dir: Path, listen: str, sockets: Sequence[Path], access_log: str = "off", nginx_workers: int = 1
) -> str:
    """deploy/nginx.conf.template with its {{NAME}} placeholders filled in."""
    # As root, nginx's workers would run as `nobody` and could not open the workers' sockets in a private
    # run directory; run them as the user who starts the cluster (the directive is ignored otherwise).
    user = getpass.getuser()
    values = {
        "USER_DIRECTIVE": f"user {user};" if os.geteuid() == 0 else "",
        "NGINX_WORKERS": str(nginx_workers),
        "RUN_DIR": str(run_dir),
        "ACCESS_LOG": access_log,
        "LISTEN": listen,
        "UPSTREAM_SERVERS": "\n".join(f"        server unix:{path} max_fails=0;" for path in sockets),
    }
    text = TEMPLATE.read_text()
    for name, value in values.items():
        text = text.replace("{{" + name + "}}", value)
    left = PLACEHOLDER.findall(text)
    if left:
        raise ClusterError(f"{TEMPLATE} has placeholders render_nginx_config does not fill: {left}")
    return text


@dataclass
class Worker:
    index: int
    socket_path: Path
    log_path: Path
    access_log_path: Path
    process: subprocess.Popen[bytes]

    def client(self, timeout: float = 15.0) -> httpx.Client:
        """An HTTP client talking to this worker directly, over its unix socket."""
        transport = httpx.HTTPTransport(uds=str(self.socket_path))
        return httpx.Client(transport=transport, base_url="http://127.0.0.1", timeout=timeout, trust_env=False)


def daphne_command(socket_path: Path, access_log: Path, daphne_flags: str) -> list[str]:
    daphne = Path(sys.executable).with_name("daphne")
    program = [str(daphne)] if daphne.exists() else [sys.executable, "-m", "daphne"]
    return [
        *program,
        "-e",
        f"unix:{socket_path}:backlog={LISTEN_BACKLOG}",
        "--proxy-headers",  # the client's address and scheme from nginx's X-Forwarded-* headers
        "--access-log",
        str(access_log),
        *shlex.split(daphne_flags),
        "amodal_site.asgi:application",
    ]


def stop_process(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(STOP_TIMEOUT_SECONDS)


class Cluster:
    """nginx on `host:port` in front of `workers` daphne processes, all started with `env`.

    Use as a context manager, or call start() and stop(). The run directory (a new temporary one unless
    given) holds the sockets, nginx's config, pid and temp files, and every log.
    """

    def __init__(
        self,
        env: dict[str, str],
        *,
        workers: int = 2,
        host: str = "127.0.0.1",
        port: int = 0,
        run_dir: Path | None = None,
        daphne_flags: str = DAPHNE_FLAGS,
        nginx_workers: int = 1,
        access_log: bool = True,
    ) -> None:
        if workers < 1:
            raise ClusterError("a cluster needs at least one worker")
        problem = shared_services_problem(env)
        if problem:
            raise ClusterError(f"the workers must share a database and a channel layer: {problem}")
        nginx = find_nginx()
        if nginx is None:
            raise ClusterError("nginx is not installed (Debian: apt-get install nginx; `make services` does it)")
        self.nginx = nginx
        self.env = dict(env)
        self.worker_count = workers
        self.host = host
        self.port = port or free_port(host)
        self.owns_run_dir = run_dir is None
        self._run_dir = run_dir
        self.daphne_flags = daphne_flags
        self.nginx_workers = nginx_workers
        self.access_log = access_log
        self.workers: list[Worker] = []
        self.nginx_process: subprocess.Popen[bytes] | None = None

    @property
    def run_dir(self) -> Path:
        """The given run directory, or a new temporary one made on first use (removed by stop())."""
        if self._run_dir is None:
            self._run_dir = Path(tempfile.mkdtemp(prefix="amodal-cluster-"))
        return self._run_dir

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    @property
    def config_path(self) -> Path:
        return self.run_dir / "nginx.conf"

    @property
    def nginx_log_path(self) -> Path:
        return self.run_dir / "nginx-error.log"

    # --- lifecycle -------------------------------------------------------------------------------

    def __enter__(self) -> Cluster:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        try:
            for index in range(self.worker_count):
                self.workers.append(self.start_worker(index))
            for worker in self.workers:
                self.wait_for_worker(worker)
            self.start_nginx()
        except BaseException:
            self.stop()
            raise

    def start_worker(self, index: int) -> Worker:
        socket_path = self.run_dir / f"worker-{index}.sock"
        if len(str(socket_path).encode()) > MAX_SOCKET_PATH:
            raise ClusterError(
                f"{socket_path} is longer than a unix socket's {MAX_SOCKET_PATH} bytes: use a shorter --run-dir"
            )
        socket_path.unlink(missing_ok=True)
        log_path = self.run_dir / f"worker-{index}.log"
        access_log_path = self.run_dir / f"worker-{index}-access.log"
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                daphne_command(socket_path, access_log_path, self.daphne_flags),
                cwd=REPO_ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # Ctrl-C reaches the supervisor, which stops nginx first
            )
        return Worker(index, socket_path, log_path, access_log_path, process)

    def wait_for_worker(self, worker: Worker) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        last = "no answer yet"
        while time.monotonic() < deadline:
            if worker.process.poll() is not None:
                raise ClusterError(
                    f"worker {worker.index} exited with {worker.process.returncode}:\n{tail(worker.log_path)}"
                )
            if worker.socket_path.exists():
                try:
                    with worker.client(timeout=5) as client:
                        response = client.get("/health")
                    if response.status_code == 200:
                        return
                    last = f"{response.status_code} {response.text[:300]}"
                except httpx.HTTPError as exc:
                    last = repr(exc)
            time.sleep(0.2)
        raise ClusterError(
            f"worker {worker.index} was not healthy within {STARTUP_TIMEOUT_SECONDS:g} s ({last})\n"
            f"{tail(worker.log_path)}"
        )

    def start_nginx(self) -> None:
        self.config_path.write_text(
            render_nginx_config(
                run_dir=self.run_dir,
                listen=f"{self.host}:{self.port}",
                sockets=[worker.socket_path for worker in self.workers],
                access_log=str(self.run_dir / "nginx-access.log") if self.access_log else "off",
                nginx_workers=self.nginx_workers,
            )
        )
        command = [self.nginx, "-p", str(self.run_dir), "-c", str(self.config_path), "-e", str(self.nginx_log_path)]
        with (self.run_dir / "nginx.out").open("ab") as out:
            self.nginx_process = subprocess.Popen(
                command,
                cwd=self.run_dir,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        last = "no answer yet"
        while time.monotonic() < deadline:
            if self.nginx_process.poll() is not None:
                raise ClusterError(
                    f"nginx exited with {self.nginx_process.returncode}:\n"
                    f"{tail(self.run_dir / 'nginx.out')}\n{tail(self.nginx_log_path)}"
                )
            try:
                response = httpx.get(f"{self.base_url}/health", timeout=5, trust_env=False)
                if response.status_code == 200:
                    return
                last = f"{response.status_code} {response.text[:300]}"
            except httpx.HTTPError as exc:
                last = repr(exc)
            time.sleep(0.1)
        raise ClusterError(f"nginx did not answer /health within {STARTUP_TIMEOUT_SECONDS:g} s ({last})")

    def stop(self) -> None:
        """nginx first (no new requests reach a stopping worker), then the workers; every process is gone
        when this returns."""
        if self.nginx_process is not None:
            stop_process(self.nginx_process, signal.SIGTERM)  # nginx's fast shutdown
        for worker in self.workers:
            if worker.process.poll() is None:
                worker.process.send_signal(signal.SIGTERM)
        for worker in self.workers:
            stop_process(worker.process)
        if self.owns_run_dir and self._run_dir is not None and not os.environ.get("AMODAL_CLUSTER_KEEP_LOGS"):
            shutil.rmtree(self._run_dir, ignore_errors=True)

    def exited(self) -> list[str]:
        """The processes that have exited on their own, named."""
        names = [f"worker {worker.index}" for worker in self.workers if worker.process.poll() is not None]
        if self.nginx_process is not None and self.nginx_process.poll() is not None:
            names.append("nginx")
        return names

    def logs(self) -> str:
        """Every worker's log and nginx's error log, labelled (for a failing test's message)."""
        parts = [f"--- worker {worker.index} ---\n{tail(worker.log_path, 200)}" for worker in self.workers]
        parts.append(f"--- nginx ---\n{tail(self.nginx_log_path, 200)}")
        return "\n".join(parts)


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# --- `python -m deploy.cluster` -------------------------------------------------------------------------


def ensure_database(url: str) -> None:
    """Create the database of `url` on its server when it does not exist yet (a new machine)."""
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = parts._replace(path="/postgres").geturl()
    try:
        with psycopg.connect(admin, autocommit=True, connect_timeout=10) as connection:
            if connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
                connection.execute(f'CREATE DATABASE "{name}"')
                print(f"cluster: created database {name}", flush=True)
    except psycopg.Error as exc:
        raise ClusterError(f"cannot reach PostgreSQL at {parts.hostname}:{parts.port or 5432}: {exc}") from exc


def manage(args: list[str], env: dict[str, str]) -> None:
    completed = subprocess.run([sys.executable, "manage.py", *args], cwd=REPO_ROOT, env=env, check=False)
    if completed.returncode != 0:
        raise ClusterError(f"manage.py {' '.join(args)} exited {completed.returncode}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.cluster", description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=2, help="daphne workers (default 2)")
    parser.add_argument("--host", default="127.0.0.1", help="the address nginx listens on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="the port nginx listens on (default 8080)")
    parser.add_argument("--daphne-flags", default=DAPHNE_FLAGS, help="daphne's timeouts (the Makefile's DAPHNE_FLAGS)")
    parser.add_argument("--run-dir", type=Path, help="sockets, nginx config and logs (default: a new temp dir)")
    parser.add_argument("--no-migrate", action="store_true", help="skip creating the database and migrating it")
    parser.add_argument("--demo-setup", action="store_true", help="run `manage.py demo_setup` (login, tokens)")
    args = parser.parse_args(argv)

    env = dict(os.environ)
    env.setdefault("DJANGO_SETTINGS_MODULE", "amodal_site.settings")
    env.setdefault("FINANCE_API_URL", f"http://127.0.0.1:{args.port}/demo/finance-api")
    env.setdefault("PYTHONUNBUFFERED", "1")
    if args.run_dir:
        args.run_dir.mkdir(parents=True, exist_ok=True)
    stopping = False

    def request_stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    try:
        cluster = Cluster(
            env,
            workers=args.workers,
            host=args.host,
            port=args.port,
            run_dir=args.run_dir,
            daphne_flags=args.daphne_flags,
        )
        if not args.no_migrate:
            ensure_database(env["DATABASE_URL"])
            manage(["migrate", "--noinput"], env)
        if args.demo_setup:
            manage(["demo_setup", "--base-url", f"http://{args.host}:{args.port}"], env)
        signal.signal(signal.SIGINT, request_stop)
        signal.signal(signal.SIGTERM, request_stop)
        cluster.start()
    except ClusterError as exc:
        print(f"cluster: {exc}", file=sys.stderr)
        return 2
    print(
        f"cluster: nginx on {cluster.base_url} in front of {args.workers} daphne workers "
        f"(pids {', '.join(str(w.process.pid) for w in cluster.workers)}); logs in {cluster.run_dir}. Ctrl-C stops it.",
        flush=True,
    )
    try:
        while not stopping and not cluster.exited():
            time.sleep(0.2)
        gone = cluster.exited()
    finally:
        cluster.stop()
    if gone and not stopping:
        print(f"cluster: {', '.join(gone)} exited on its own; stopped the rest", file=sys.stderr)
        return 1
    print("cluster: stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
