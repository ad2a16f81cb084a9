"""Real servers for the integration modules that run the production path (``test_production_path.py``,
``test_multi_host.py``): gunicorn as a subprocess, a fresh PostgreSQL database, a Redis db of the module's own, and
nginx in front (Debian's, run as a master of its own under a temporary prefix).

Each module owns what it starts: ports come from the OS, the database is created and dropped by the module, the Redis
db is flushed at its start and end (modules run in different pytest-xdist processes at once, so no two modules may
share a db number). A missing server fails in CI and skips elsewhere (:func:`tests.conftest.unavailable`).
"""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

from tests.conftest import ROOT, unavailable

PG_ADMIN = os.environ.get("TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/test")
NGINX = os.environ.get("NGINX_PATH", "/usr/sbin/nginx")
NGINX_SAMPLE = ROOT / "deploy" / "nginx" / "wuxing.conf"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def pg_database(prefix: str):
    """URL of a fresh, empty PostgreSQL database named ``<prefix><random>``, dropped afterwards
    (``TEST_PG_DB_PREFIX`` replaces ``prefix``: a shared server may reserve a prefix per user)."""
    import psycopg

    name = f"{os.environ.get('TEST_PG_DB_PREFIX') or prefix}{uuid.uuid4().hex[:10]}"
    try:
        admin = psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3)
    except Exception as exc:  # noqa: BLE001
        unavailable(f"PostgreSQL at {PG_ADMIN}: {exc}")
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.close()


@contextlib.contextmanager
def redis_db(url: str):
    """A client of the Redis db at ``url``, flushed before and after."""
    import redis

    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=2)
        client.ping()
    except Exception as exc:  # noqa: BLE001
        unavailable(f"Redis at {url}: {exc}")
    client.flushdb()
    try:
        yield client
    finally:
        client.flushdb()


def demo_history(db_url: str, scale: float = 0.02) -> None:
    """A small deterministic demo history in the store at ``db_url`` (migrated on the way)."""
    subprocess.run([sys.executable, "-m", "dashboard.demo", "history", "--db", db_url, "--scale", str(scale),
                    "--quiet"], cwd=ROOT, check=True, capture_output=True)


class Gunicorn:
    """``gunicorn app:server`` on a free loopback port (or ``port``), its output in ``log_path``."""

    def __init__(self, env: dict, workers: int = 3, port: int | None = None, log_path=None, args=(),
                 token: str = "prod-token", secret: str = "production-path-test-" + "k" * 32):
        self.args = list(args)
        self.port = port or free_port()
        self.log_path = log_path
        self.url = f"http://127.0.0.1:{self.port}"
        # the production store refuses to start without a strong SECRET_KEY
        self.env = {**os.environ, "DEMO_LIVE": "0", "TILE_URL": "none", "API_TOKENS": token,
                    "SECRET_KEY": secret, **env}
        self.workers = workers
        self.proc = None

    def start(self):
        if self.log_path is None:
            self.log_path = tempfile.mktemp(prefix="gunicorn-", suffix=".log")
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--workers", str(self.workers), "--bind", f"127.0.0.1:{self.port}",
             "--timeout", "120", *self.args, "app:server"], cwd=ROOT, env=self.env,
            stdout=log, stderr=log, start_new_session=True)
        log.close()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited: {self.log()}")
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=2):
                    return self
            except OSError:
                time.sleep(0.3)
        raise RuntimeError("gunicorn did not become healthy")

    def worker_pids(self) -> set[int]:
        """The pids of this server's workers (what ``X-Served-By`` says)."""
        out = set()
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    stat = (entry / "stat").read_text()
                except OSError:
                    continue
                if int(stat.rsplit(")", 1)[1].split()[1]) == self.proc.pid:
                    out.add(int(entry.name))
        return out

    def log(self) -> str:
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as fh:
                return fh.read()[-4000:]
        except OSError:
            return ""

    def kill_hard(self):
        """SIGKILL the master and every worker at once: no graceful shutdown, no flush."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)


# ------------------------------------------------------------------------------------------------- nginx
def render_site(sample: str, listen: str, upstreams: list[str]) -> str:
    """The committed sample (``deploy/nginx/wuxing.conf``) with its ``listen`` and its upstream's ``server`` lines
    replaced — nothing else changes, so the test runs the configuration a deployment copies. Each replacement must
    find its line: a sample reshaped so that it no longer does fails here instead of silently diverging."""
    lines = sample.splitlines()
    listen_at = [i for i, line in enumerate(lines) if re.match(r"\s*listen\s+\S+.*;", line)]
    server_at = [i for i, line in enumerate(lines) if re.match(r"\s*server\s+[\w.\-]+:\d+[^;]*;", line)]
    assert len(listen_at) == 1, f"the sample should have one listen line, has {len(listen_at)}"
    assert len(server_at) >= 2, "the sample's upstream should list several app hosts"
    indent, tail = re.match(r"(\s*)server\s+\S+?(\s[^;]*)?;", lines[server_at[0]]).groups()  # keep its options
    tail = (tail or "") + ";"
    rendered = []
    for i, line in enumerate(lines):
        if i == listen_at[0]:
            rendered.append(re.sub(r"listen\s+[^;]+;", f"listen {listen};", line))
        elif i == server_at[0]:
            rendered.extend(f"{indent}server {u}{tail}" for u in upstreams)
        elif i in server_at:
            continue
        else:
            rendered.append(line)
    return "\n".join(rendered) + "\n"


class Nginx:
    """Debian's nginx as a master of its own: ``-p <temporary prefix> -c <config>`` rendering the committed sample
    site into a minimal main configuration (foreground, pid, logs and temp files under the prefix), on a free
    loopback port. The system service is never started or touched."""

    def __init__(self, upstreams: list[str], port: int | None = None):
        if not Path(NGINX).exists():
            unavailable(f"no nginx at {NGINX} (make test installs Debian's nginx: .ci/ensure-nginx)")
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.prefix = Path(tempfile.mkdtemp(prefix="wx-nginx-"))
        self.site = render_site(NGINX_SAMPLE.read_text(encoding="utf-8"), f"127.0.0.1:{self.port}", upstreams)
        self.proc = None

    def main_config(self) -> str:
        p = self.prefix
        temps = "\n".join(f"    {kind}_temp_path {p / kind};" for kind in
                          ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        # as root the workers would run as "nobody" (a group Debian does not have): keep them as the test's user
        user = "user root;\n" if os.geteuid() == 0 else ""
        return (f"{user}daemon off;\nworker_processes 1;\npid {p / 'nginx.pid'};\nerror_log {p / 'error.log'} info;\n"
                "events { worker_connections 512; }\n"
                "http {\n    include /etc/nginx/mime.types;\n    default_type application/octet-stream;\n"
                f"    access_log {p / 'access.log'};\n{temps}\n    include {p / 'wuxing.conf'};\n}}\n")

    def start(self):
        (self.prefix / "wuxing.conf").write_text(self.site, encoding="utf-8")
        (self.prefix / "nginx.conf").write_text(self.main_config(), encoding="utf-8")
        cmd = [NGINX, "-p", str(self.prefix), "-c", str(self.prefix / "nginx.conf"), "-e",
               str(self.prefix / "error.log")]
        check = subprocess.run(cmd + ["-t"], capture_output=True, text=True)
        assert check.returncode == 0, check.stderr
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nginx exited: {self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"nginx did not listen: {self.log()}")

    def log(self) -> str:
        try:
            return (self.prefix / "error.log").read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)  # fast shutdown: open live streams would hold a graceful one
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        shutil.rmtree(self.prefix, ignore_errors=True)
