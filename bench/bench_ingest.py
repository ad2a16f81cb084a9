"""Batch ingest: incidents/s through ``POST /api/v1/incidents/batch`` at 1,000 incidents per request, and the
latency of the single ``POST /api/v1/incidents`` — against a real gunicorn (``app:server``, the production entry).

    python -m bench.bench_ingest [--db postgresql://postgres@127.0.0.1:5432/<scratch db>] [--batches 12]
                                 [--clients 2] [--singles 200] [--workers 2] [--no-breakdown]

``--db`` must be an empty scratch database (the script refuses one that holds incidents; create and drop it
yourself); default: a new SQLite file in a temp dir. gunicorn runs ``--workers`` sync workers with the app's
full start-up (migrations, hazard registry, so the ring rule of the alerts is live). The batches are made up
front (random categories, severities mostly 1–2, points inside random grids, ~60-character Chinese
descriptions, unique ``client_ref``s) and JSON-encoded before the clock starts; each is timed from the request
to the full answer. Figures:

- ``batch.sequential``: one client, one batch after the other — per-request seconds and incidents/s;
- ``batch.concurrent``: ``--clients`` clients at once (writes serialise on the change-sequence lock only for the
  write transaction itself) — incidents/s over the wall time;
- ``single``: ``--singles`` single POSTs one after the other — median / p95 ms;
- ``breakdown`` (in-process, Flask test client on the same database): where a batch's server time goes —
  validation, placement, the bulk inserts, the alert rule, the KPI aggregates hook, the rest.

The store is checked afterwards (one incident and one creation event per accepted item). Machine facts (nproc, load
average from ``uptime`` before and after, Python, the database server) go into bench/results/ingest.json with the
figures: on this shared 2-core machine the load average says how much else was running.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

from bench.common import ROOT, summary, write_results

TOKEN = "bench-token"
PER_BATCH = 1000
SEVERITIES = [1] * 45 + [2] * 40 + [3] * 12 + [4] * 3  # mostly routine; 15 % raise an alert
TEXTS = ["居民反映小区楼道内长期堆放杂物，影响通行并存在消防隐患，请网格员上门核实处理。",
         "沿街商铺占道经营，早晚高峰时段影响行人通行，多次劝导未改，请城管协同处置。",
         "村道旁有人倾倒建筑垃圾，堆放面积约二十平方米，影响环境卫生，请尽快清运。",
         "12345热线转来：邻里之间因装修噪音发生纠纷，双方情绪激动，请社区调解员介入。"]


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, timeout=5).stdout.strip()
    except OSError:
        return ""


def machine(url: str) -> dict:
    info = {"nproc": os.cpu_count(), "uptime": uptime(), "loadavg": [round(x, 2) for x in os.getloadavg()],
            "python": platform.python_version(), "platform": platform.platform()}
    from sqlalchemy import text

    from dashboard.store import make_engine

    eng = make_engine(url)
    with eng.connect() as c:
        info["db"] = (c.execute(text("SELECT version()")).scalar_one() if eng.dialect.name == "postgresql"
                      else "SQLite " + c.execute(text("SELECT sqlite_version()")).scalar_one())
    eng.dispose()
    return info


def refuse_used_database(url: str) -> None:
    from sqlalchemy import inspect, text

    from dashboard.store import make_engine

    eng = make_engine(url)
    try:
        with eng.connect() as c:
            if inspect(c).has_table("incidents") and c.execute(text("SELECT COUNT(*) FROM incidents")).scalar_one():
                raise SystemExit(f"{eng.url.render_as_string()} holds incidents: give an empty scratch database")
    finally:
        eng.dispose()


def grid_points(n: int, rng: random.Random) -> list[tuple[float, float]]:
    """``n`` random points, each inside a random grid (rejection-sampled in the grid's bounds)."""
    from dashboard.geodata import load_geodata
    from dashboard.settings import Settings

    gd = load_geodata(Settings().geodata_dir)
    grids, loc = gd.grids, gd.locator
    bounds = grids.geometry.bounds.to_numpy()
    reps = grids.geometry.representative_point()
    out = []
    while len(out) < n:
        i = rng.randrange(len(grids))
        minx, miny, maxx, maxy = bounds[i]
        for _ in range(20):
            lon, lat = round(rng.uniform(minx, maxx), 6), round(rng.uniform(miny, maxy), 6)
            if loc.locate(lon, lat) == grids["code"].iloc[i]:
                break
        else:
            lon, lat = round(reps.iloc[i].x, 6), round(reps.iloc[i].y, 6)
        out.append((lon, lat))
    return out


def make_items(n: int, tag: str, rng: random.Random) -> list[dict]:
    from dashboard.store.catalogue import CATEGORIES

    cats = list(CATEGORIES)
    return [{"category": rng.choice(cats), "severity": rng.choice(SEVERITIES),
             "source": rng.choice(["hotline", "app", "patrol"]), "lon": lon, "lat": lat,
             "description": rng.choice(TEXTS), "address": f"吴兴区测试路{rng.randrange(1, 999)}号",
             "reporter": "接口压测", "client_ref": f"bench-{tag}-{k:05d}"}
            for k, (lon, lat) in enumerate(grid_points(n, rng))]


def post(base: str, path: str, data: bytes) -> tuple[int, dict]:
    req = urllib.request.Request(base + path, data=data, method="POST",
                                 headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=300) as resp:
        return resp.status, json.loads(resp.read())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def gunicorn(url: str, workers: int, instance: Path):
    port = free_port()
    env = {**os.environ, "DATABASE_URL": url, "INSTANCE_DIR": str(instance), "API_TOKENS": TOKEN,
           "SECRET_KEY": os.environ.get("SECRET_KEY") or secrets.token_urlsafe(48),
           "DEMO_LIVE": "0", "DEMO_USERS": "0", "TILE_URL": "none", "CACHE_URL": "null"}
    log_path = instance / "gunicorn.log"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "--workers", str(workers), "--bind",
                                 f"127.0.0.1:{port}", "--timeout", "300", "app:server"], cwd=ROOT, env=env,
                                stdout=log, stderr=log, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited: {log_path.read_text(errors='replace')[-3000:]}")
            try:
                with urllib.request.urlopen(base + "/healthz", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("gunicorn did not become healthy") from None
                time.sleep(0.3)
        yield base
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 15)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)


def run_batches(base: str, bodies: list[bytes], clients: int) -> tuple[list[float], float, int]:
    """Post ``bodies`` with ``clients`` threads; (per-request seconds, wall seconds, incidents created)."""
    lock = threading.Lock()
    todo = list(bodies)
    times: list[float] = []
    created = [0]
    errors: list = []

    def client():
        while True:
            with lock:
                if not todo:
                    return
                body = todo.pop(0)
            t = time.perf_counter()
            try:
                status, answer = post(base, "/api/v1/incidents/batch", body)
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(repr(e))
                return
            dt_ = time.perf_counter() - t
            with lock:
                times.append(dt_)
                created[0] += answer["created"]
                if status != 200 or answer["refused"]:
                    errors.append((status, answer["refused"]))

    t0 = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    wall = time.perf_counter() - t0
    if errors:
        raise RuntimeError(f"batch errors: {errors[:3]}")
    return times, wall, created[0]


def breakdown(url: str, bodies: list[bytes], instance: Path) -> dict:
    """Server time of a batch by part, in-process (Flask test client, no HTTP), on the same database."""
    import flask

    import dashboard.api.incidents as api
    from dashboard.api import register_incident_api
    from dashboard.cache import init_cache
    from dashboard.context import Services
    from dashboard.settings import Settings
    from dashboard.store import aggregates, alerts, make_engine, session_factory
    from dashboard.store import incidents as repo

    engine = make_engine(url)
    settings = Settings(instance_dir=instance, database_url=url, cache_url="null", api_tokens=(TOKEN,))
    app = flask.Flask("bench_ingest")
    app.extensions["dashboard"] = Services(settings=settings, cache=init_cache(app, settings.cache_config),
                                        engine=engine, sessions=session_factory(engine))
    register_incident_api(app)
    parts = {"validate": (api, "validate_new_incident"), "place": (api, "locate_points"),
             "insert_rows": (repo, "_bulk_rows"), "alert_rule": (alerts, "raise_for_new_incident"),
             "aggregates_hook": (aggregates, "apply_new"), "store_total": (repo, "create_incidents_batch")}
    spent = dict.fromkeys(parts, 0.0)
    originals = {k: getattr(mod, name) for k, (mod, name) in parts.items()}

    def wrap(key, fn):
        def timed(*a, **kw):
            t = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                spent[key] += time.perf_counter() - t
        return timed

    for key, (mod, name) in parts.items():
        setattr(mod, name, wrap(key, originals[key]))
    client = app.test_client()
    totals = []
    try:
        for body in bodies:
            t = time.perf_counter()
            r = client.post("/api/v1/incidents/batch", data=body,
                            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
            totals.append(time.perf_counter() - t)
            assert r.status_code == 200 and r.json["refused"] == 0, r.status_code
    finally:
        for key, (mod, name) in parts.items():
            setattr(mod, name, originals[key])
        engine.dispose()
    n = len(bodies)
    ms = {k: round(v / n * 1000, 1) for k, v in spent.items()}
    ms["request_total"] = round(sum(totals) / n * 1000, 1)
    ms["store_other"] = round(ms["store_total"] - ms["insert_rows"] - ms["alert_rule"] - ms["aggregates_hook"], 1)
    ms["request_other"] = round(ms["request_total"] - ms["store_total"] - ms["validate"] - ms["place"], 1)
    return {"batches": n, "ms_per_batch_mean": ms,
            "incidents_per_s": round(PER_BATCH * n / sum(totals)),
            "incidents_per_s_without_aggregates_hook": round(
                PER_BATCH * n / (sum(totals) - spent["aggregates_hook"]))}


def check_store(url: str, expected: int) -> dict:
    from sqlalchemy import text

    from dashboard.store import make_engine

    eng = make_engine(url)
    with eng.connect() as c:
        got = {t: c.execute(text(f"SELECT COUNT(*) FROM {t}")).scalar_one()
               for t in ("incidents", "incident_events", "alerts")}
    eng.dispose()
    if not got["incidents"] == got["incident_events"] == expected:
        raise RuntimeError(f"store holds {got}, expected {expected} incidents with one event each")
    return got


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--db", default=None, help="an empty scratch database URL (default: SQLite in a temp dir)")
    p.add_argument("--batches", type=int, default=12, help="timed batches of 1,000 (sequential, then concurrent)")
    p.add_argument("--clients", type=int, default=2, help="concurrent clients for the second run")
    p.add_argument("--singles", type=int, default=200, help="single POSTs for the latency figure")
    p.add_argument("--workers", type=int, default=2, help="gunicorn sync workers")
    p.add_argument("--breakdown-batches", type=int, default=4)
    p.add_argument("--no-breakdown", action="store_true")
    args = p.parse_args()

    instance = Path(tempfile.mkdtemp(prefix="bench_ingest_"))
    url = args.db or f"sqlite:///{instance / 'ingest.sqlite3'}"
    if args.db:
        refuse_used_database(url)
    rng = random.Random(20261201)
    print("making the batches …", flush=True)
    warm = [json.dumps({"incidents": make_items(PER_BATCH, f"w{k}", rng)}).encode() for k in range(2)]
    seq_bodies = [json.dumps({"incidents": make_items(PER_BATCH, f"s{k}", rng)}).encode()
                  for k in range(args.batches)]
    con_bodies = [json.dumps({"incidents": make_items(PER_BATCH, f"c{k}", rng)}).encode()
                  for k in range(args.batches)]
    br_bodies = [json.dumps({"incidents": make_items(PER_BATCH, f"b{k}", rng)}).encode()
                 for k in range(0 if args.no_breakdown else args.breakdown_batches)]
    singles = [json.dumps(it).encode() for it in make_items(args.singles, "single", rng)]
    before = machine(url)
    figures: dict = {}
    with gunicorn(url, args.workers, instance) as base:
        print(f"gunicorn on {base} ({args.workers} workers), {url.split('@')[-1]}", flush=True)
        run_batches(base, warm, min(2, args.workers))  # every worker loads geodata and warms its pool
        times, wall, created = run_batches(base, seq_bodies, 1)
        figures["batch"] = {"per_request": PER_BATCH, "sequential": {
            "batches": len(times), "incidents": created, "ms_per_request": summary([t * 1000 for t in times]),
            "incidents_per_s": round(created / sum(times))}}
        times, wall, created = run_batches(base, con_bodies, args.clients)
        figures["batch"]["concurrent"] = {"clients": args.clients, "batches": len(times), "incidents": created,
                                          "wall_s": round(wall, 2), "incidents_per_s": round(created / wall)}
        lat = []
        for body in singles:
            t = time.perf_counter()
            status, _ = post(base, "/api/v1/incidents", body)
            lat.append((time.perf_counter() - t) * 1000)
            if status != 201:
                raise RuntimeError(f"single POST answered {status}")
        figures["single"] = summary(lat)
    expected = PER_BATCH * (len(warm) + 2 * args.batches) + args.singles
    if br_bodies:
        figures["breakdown"] = breakdown(url, br_bodies, instance)
        expected += PER_BATCH * len(br_bodies)
    figures["store_after"] = check_store(url, expected)
    figures["setup"] = {"server": f"gunicorn {args.workers} sync workers (app:server)",
                        "client": "urllib, same machine", "db": url.split("@")[-1] if args.db else "sqlite (temp)",
                        "payload_bytes_per_batch": round(sum(map(len, seq_bodies)) / len(seq_bodies)),
                        "machine_before": before, "machine_after": machine(url)}
    seq, con = figures["batch"]["sequential"], figures["batch"]["concurrent"]
    print(f"batch of {PER_BATCH}: {seq['incidents_per_s']} incidents/s sequential "
          f"(median {seq['ms_per_request']['median_ms']} ms per request), {con['incidents_per_s']} incidents/s "
          f"with {con['clients']} clients; single POST median {figures['single']['median_ms']} ms, "
          f"p95 {figures['single']['p95_ms']} ms")
    write_results("ingest", figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
