"""Faults under load, against the real servers (issue 11): a private Redis stopped while viewers and ingest run,
a private PostgreSQL restarted during batch ingest, and the whole server killed (SIGKILL) during steady ingest.
Each server here is started for the test on a free loopback port, so the machine's own services are not touched.

What must hold: the app keeps serving when Redis is gone (0 answers ≥ 500; the cache and the limits are bypassed and
logged); while PostgreSQL is down writes get 503 with ``Retry-After``, the app recovers by itself within seconds of
the database's return, and every incident acknowledged with 2xx is in the store afterwards; after a SIGKILL every
acknowledged incident is there and the aggregates match the rows.
"""
from __future__ import annotations

import concurrent.futures as cf
import os
import shutil
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest

from tests.conftest import unavailable
from tests.integration.test_production_path import Gunicorn, _request, pg_database  # noqa: F401
from tests.servers import free_port as _free_port

PG_BIN = next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin"))), None)


class PrivateRedis:
    def __init__(self, folder: Path):
        self.port = _free_port()
        self.folder = folder
        self.proc = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self):
        if shutil.which("redis-server") is None:
            unavailable("redis-server is not installed")
        self.proc = subprocess.Popen(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no", "--dir", str(self.folder)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_port(self.port)
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


class PrivatePostgres:
    """A throw-away cluster (initdb) owned by the ``postgres`` user, on a free port."""

    def __init__(self, folder: Path):
        import tempfile

        self.port = _free_port()
        # its own folder under /tmp (pytest's are private to root, and the server runs as postgres)
        self.root = Path(tempfile.mkdtemp(prefix="wx-pg-"))
        self.data = self.root / "pgdata"
        self.log = self.root / "pg.log"

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _as_postgres(self, *args, check=True):
        cmd = [str(PG_BIN / args[0]), *args[1:]]
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, check=check, capture_output=True, text=True, timeout=120)

    def init(self):
        if PG_BIN is None:
            unavailable("PostgreSQL server binaries are not installed (/usr/lib/postgresql/*/bin)")
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres")
        self._as_postgres("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")
        return self

    def start(self):
        self._as_postgres("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-o",
                          f"-p {self.port} -k /tmp -c listen_addresses=127.0.0.1 -c fsync=on", "start")
        return self

    def stop(self, mode: str = "fast"):
        self._as_postgres("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop", check=False)

    def remove(self):
        self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


def _wait_port(port: int, timeout: float = 20):
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


NO_LIMITS = {"RATE_LIMIT_READ": "1000000/minute", "RATE_LIMIT_EXPENSIVE": "1000000/minute",
             "RATE_LIMIT_INGEST": "1000000/minute"}  # the drills measure faults, not the limits


def _points(n: int) -> list[tuple[float, float]]:
    from dashboard.geodata import load_geodata
    from tests.conftest import ROOT

    grids = load_geodata(ROOT / "geodata").grids
    pts = grids.geometry.representative_point()
    return [(round(p.x, 6), round(p.y, 6)) for p in pts.iloc[:: max(1, len(pts) // n)][:n]]


def _incident(i: int, lon: float, lat: float, tag: str) -> dict:
    return {"category": "city.appearance", "description": f"故障演练 {tag} {i}", "lon": lon, "lat": lat,
            "reporter": "演练", "client_ref": f"{tag}-{i}"}


def _p95(xs: list[float]) -> float | None:
    xs = sorted(xs)
    return round(xs[min(len(xs) - 1, int(round(0.95 * (len(xs) - 1))))] * 1000, 1) if xs else None


def redis_drill(folder: Path, up_s: float = 3, down_s: float = 4, back_s: float = 2, viewers: int = 3) -> dict:
    """Viewers and one ingest client against 2 workers whose cache (and limits) live in a private Redis; Redis is
    killed after ``up_s`` and started again ``down_s`` later. Figures per phase: answers, 5xx, p95."""
    redis_server = PrivateRedis(folder).start()
    server = Gunicorn({"REDIS_URL": redis_server.url, "INSTANCE_DIR": str(folder / "inst"), **NO_LIMITS},
                      workers=2, log_path=str(folder / "gunicorn.log")).start()
    points = _points(20)
    answers: list[tuple[float, str, int, float]] = []  # (t, what, status, seconds)
    stop = threading.Event()
    tag = f"redis-{uuid.uuid4().hex[:6]}"
    posted: list[int] = []
    paths = ("/api/map/incidents.json", "/api/v1/kpis?period=7d", "/api/geo/zones.json",
             "/api/v1/incidents?limit=5", "/api/map/measures.json?measure=open_incidents")

    def viewer(k):
        i = 0
        while not stop.is_set():
            path = paths[(i + k) % len(paths)]
            t0 = time.monotonic()
            status = _request(server.url + path)[0]
            answers.append((t0, path, status, time.monotonic() - t0))
            i += 1

    def ingest():
        i = 0
        while not stop.is_set():
            t0 = time.monotonic()
            status, body, _ = _request(server.url + "/api/v1/incidents", _incident(i, *points[i % len(points)], tag))
            answers.append((t0, "POST", status, time.monotonic() - t0))
            if status == 201:
                posted.append(body["id"])
            i += 1
            time.sleep(0.02)

    threads = [threading.Thread(target=viewer, args=(k,)) for k in range(viewers)] + [threading.Thread(target=ingest)]
    try:
        def since(t0: float) -> int:
            return sum(1 for a in list(answers) if a[0] >= t0)

        def hold(min_s: float, until, max_s: float = 90) -> None:
            """At least ``min_s``, then until ``until()`` holds (a loaded machine answers fewer requests a second),
            at most ``max_s``."""
            t0 = time.monotonic()
            while time.monotonic() - t0 < min_s or (not until() and time.monotonic() - t0 < max_s):
                time.sleep(0.1)

        for t in threads:
            t.start()
        started = time.monotonic()
        hold(up_s, lambda: since(started) >= 10)
        redis_server.stop()  # Redis goes away under load
        down_at = time.monotonic()
        hold(down_s, lambda: since(down_at) >= 30 and len(posted) >= 25)
        redis_server.start()  # … and comes back
        back_at = time.monotonic()
        hold(back_s, lambda: since(back_at) >= 10)
        stop.set()
        for t in threads:
            t.join(30)
        missing = [iid for iid in posted if _request(f"{server.url}/api/v1/incidents/{iid}")[0] != 200]
        log = server.log()
    finally:
        stop.set()
        server.stop()
        redis_server.stop()

    def phase(lo, hi):
        rows = [a for a in answers if lo <= a[0] < hi]
        return {"answers": len(rows), "5xx": sum(1 for a in rows if a[2] >= 500),
                "statuses": sorted({a[2] for a in rows}), "p95_ms": _p95([a[3] for a in rows])}

    return {"up": phase(0, down_at), "redis_down": phase(down_at, back_at), "back": phase(back_at, float("inf")),
            "posted": len(posted), "posted_missing": len(missing), "bypass_logged": "cache unavailable" in log,
            "limits_bypass_logged": "rate limits not enforced" in log, "log": log[-2000:]}


def test_redis_stopped_while_viewers_and_ingest_run(tmp_path):
    out = redis_drill(tmp_path)
    for name in ("up", "redis_down", "back"):
        assert out[name]["5xx"] == 0, (name, out[name], out["log"])
        assert set(out[name]["statuses"]) <= {200, 201, 304}, (name, out[name])
    assert out["redis_down"]["answers"] > 20  # it kept answering while Redis was down
    assert out["posted"] > 20 and out["posted_missing"] == 0  # every acknowledged report is stored
    assert out["bypass_logged"] and out["limits_bypass_logged"]  # … and the log says why it is slower


def _stored_refs(url: str, tag: str) -> set[str]:
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), connect_timeout=5) as c:
        return {r[0] for r in c.execute("SELECT client_ref FROM incidents WHERE client_ref LIKE %s", (tag + "-%",))}


# how soon after PostgreSQL is back the app must answer again, by itself: a few seconds on a quiet machine; a CI run
# beside a province build (load 25) took longer than 5 s to reconnect both workers
RECOVERY_S = 15


def pg_restart_drill(folder: Path, before_s: float = 2, down_s: float = 3, after_s: float = 7,
                     clients: int = 2, batch: int = 25) -> dict:
    """Batch ingest (``clients`` × ``batch`` incidents per request) into 2 workers on a private PostgreSQL, which
    is stopped after ``before_s`` and started ``down_s`` later."""
    pg = PrivatePostgres(folder).init().start()
    server = Gunicorn({"DATABASE_URL": pg.url, "CACHE_URL": "null", "INSTANCE_DIR": str(folder / "inst"),
                       **NO_LIMITS}, workers=2, log_path=str(folder / "gunicorn.log")).start()
    points = _points(40)
    tag = f"pgr-{uuid.uuid4().hex[:6]}"
    acknowledged: set[str] = set()
    # (sent, answered, status, Retry-After): a request sent while the database was down may be answered (503) well
    # after it is back on a loaded machine, so a refusal is judged by when its request was sent
    answers: list[tuple[float, float, int, str | None]] = []
    stop = threading.Event()

    def ingest(worker: int):
        n = 0
        while not stop.is_set():
            items = [_incident(worker * 1_000_000 + n + k, *points[(n + k) % len(points)], tag) for k in range(batch)]
            n += batch
            sent = time.monotonic()
            status, body, headers = _request(server.url + "/api/v1/incidents/batch", {"incidents": items})
            answers.append((sent, time.monotonic(), status, headers.get("Retry-After") if headers else None))
            if 200 <= status < 300:
                acknowledged.update(r["client_ref"] for r in body["results"] if r["status"] in ("created", "existing"))
            time.sleep(0.05)

    threads = [threading.Thread(target=ingest, args=(w,)) for w in range(clients)]
    try:
        for t in threads:
            t.start()
        time.sleep(before_s)
        pg.stop("fast")  # the database restarts under ingest
        down_at = time.monotonic()
        time.sleep(down_s)
        pg.start()
        up_at = time.monotonic()
        time.sleep(after_s)
        stop.set()
        for t in threads:
            t.join(60)
        stored = _stored_refs(pg.url, tag)
        log = server.log()
    finally:
        stop.set()
        server.stop()
        pg.remove()
    outage = [(sent, done, ra) for sent, done, s, ra in answers if s == 503]
    back = [done for sent, done, s, _ in answers if 200 <= s < 300 and sent > up_at]
    return {"requests": len(answers), "statuses": sorted({s for _, _, s, _ in answers}),
            "refused_503": len(outage), "refused_with_retry_after": sum(1 for _, _, ra in outage if ra),
            # refused although sent more than RECOVERY_S after the database was back, or answered before it went down
            "refusals_outside_outage": sum(1 for sent, done, _ in outage
                                           if sent > up_at + RECOVERY_S or done < down_at - 1),
            "recovered_s": round(back[0] - up_at, 2) if back else None,
            "acknowledged": len(acknowledged), "acknowledged_missing": len(acknowledged - stored),
            "stored": len(stored), "log": log[-2000:]}


def test_postgres_restart_during_batch_ingest(tmp_path):
    out = pg_restart_drill(tmp_path)
    assert set(out["statuses"]) <= {200, 503}, out  # never a 500: refused while down, answered otherwise
    assert out["refused_503"] > 0 and out["refused_with_retry_after"] == out["refused_503"]
    assert out["refusals_outside_outage"] == 0, out
    assert out["recovered_s"] is not None and out["recovered_s"] <= RECOVERY_S  # recovered by itself
    assert out["acknowledged"] > 0 and out["acknowledged_missing"] == 0  # every acknowledged item is stored


def kill9_drill(folder: Path, db_url: str, n_ack: int = 800, rate: float = 200, clients: int = 4,
                workers: int = 2, batch: int = 1) -> dict:
    """``clients`` clients posting reports at ``rate`` a second in all (single POSTs, or ``batch`` at a time to the
    batch endpoint); the whole server is SIGKILLed once ``n_ack`` were acknowledged (201, or ``created`` in a 200
    batch answer); after a restart every one of them must be there with its creation event, and the KPI
    aggregates must match the rows (``aggregates check``). A loaded machine may not reach ``n_ack`` within the
    minute the drill allows: the kill then comes at the minute, mid-stream all the same (``reached_target`` says)."""
    import sys

    from tests.conftest import ROOT

    env = {"INSTANCE_DIR": str(folder / "inst"), "CACHE_URL": "null", "DATABASE_URL": db_url, **NO_LIMITS}
    server = Gunicorn(env, workers=workers, log_path=str(folder / "gunicorn.log")).start()
    points = _points(40)
    tag = f"k9-{uuid.uuid4().hex[:6]}"
    acknowledged: list[int] = []
    stop = threading.Event()

    def client(c: int):
        i, start = 0, time.monotonic()
        while not stop.is_set():
            due = start + i / (rate / clients)
            if due > time.monotonic():
                time.sleep(due - time.monotonic())
            items = [_incident(c * 1_000_000 + i + k, *points[(i + k) % len(points)], tag) for k in range(batch)]
            try:
                if batch == 1:
                    status, body, _ = _request(server.url + "/api/v1/incidents", items[0])
                    if status == 201:
                        acknowledged.append(body["id"])
                else:
                    status, body, _ = _request(server.url + "/api/v1/incidents/batch", {"incidents": items})
                    if status == 200:
                        acknowledged.extend(r["id"] for r in body["results"] if r["status"] == "created")
            except OSError:
                return  # the server is gone
            i += batch

    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    try:
        t0 = time.monotonic()
        for t in threads:
            t.start()
        deadline = time.monotonic() + max(60, 3 * n_ack / rate)
        while len(acknowledged) < n_ack and time.monotonic() < deadline:
            time.sleep(0.02)
        server.kill_hard()
        killed_at = time.monotonic()
        stop.set()
        for t in threads:
            t.join(30)
        achieved = len(acknowledged) / (killed_at - t0)
        r0 = time.monotonic()
        server.start()
        restart_s = time.monotonic() - r0
        from concurrent.futures import ThreadPoolExecutor

        def lost(iid: int) -> bool:
            status, body, _ = _request(f"{server.url}/api/v1/incidents/{iid}")
            return status != 200 or len(body["events"]) != 1

        with ThreadPoolExecutor(8) as pool:  # every acknowledged report, read back through the restarted server
            missing = [iid for iid, gone in zip(acknowledged, pool.map(lost, acknowledged)) if gone]
    finally:
        stop.set()
        server.stop()
    check = subprocess.run([sys.executable, "-m", "dashboard", "aggregates", "check", "--db", db_url], cwd=ROOT,
                           capture_output=True, text=True, timeout=600)
    return {"acknowledged": len(acknowledged), "target_rate_per_s": rate, "clients": clients, "workers": workers,
            "batch": batch,
            "rate_per_s": round(achieved, 1), "missing": len(missing), "reached_target": len(acknowledged) >= n_ack,
            "restart_to_healthy_s": round(restart_s, 2), "aggregates_match": check.returncode == 0,
            "aggregates_check": (check.stdout + check.stderr)[-500:]}


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_kill_9_during_steady_ingest_loses_no_acknowledged_incident(backend, pg_database, tmp_path):
    """200 reports a second from four clients, SIGKILL mid-stream: every report answered 201 is there after the
    restart, with its event, and the aggregates match the rows."""
    db_url = pg_database if backend == "postgresql" else f"sqlite:///{tmp_path / 'inst' / 'wuxing.sqlite3'}"
    out = kill9_drill(tmp_path, db_url)
    # 800 acknowledged, or what a loaded machine acknowledged in the drill's minute: enough to mean something
    assert out["acknowledged"] >= 200 and out["missing"] == 0, out
    assert out["aggregates_match"], out["aggregates_check"]
