"""Load drill (issue 11): dashboard viewers in a command centre's proportions (60 % duty desks, 20 % walls, 20 %
overviews) plus ingest, for ``--seconds`` (180), against real gunicorn workers; figures: viewers held, p95 per
endpoint, errors.

How: one real headless Chromium page of each kind (duty desk signed in as the demo duty officer, the wall through
its kiosk token, the overview as the demo leader) is recorded for ``--record`` seconds while one report a second
arrives: every request the page makes to the server, with its time, method, body and content type. Then
``--viewers`` virtual viewers (threads, each with its own signed-in session) replay their kind's recording in a
loop at the recorded pace, while the ingest client goes on posting one report a second. A viewer is *held* when at
least 99 % of its requests succeed (2xx / 304) and its p95 is at most 2 s.

    python -m bench.bench_load [--lane embedded|production] [--viewers 10] [--seconds 180] [--record 30]

``embedded``: 2 gunicorn workers on SQLite with the file cache (``make run``); ``production``: 4 workers × 4
threads on a scratch PostgreSQL database with Redis (db 13), as the README's production command. Every virtual
viewer comes from 127.0.0.1 and shares one of two accounts, which the per-user and per-address rate limits would
count as one person: the drill raises those limits (it measures the service, not the limiter). Results:
bench/results/load-<lane>.json with the machine's core count and load average before and after.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import requests

from bench.common import ROOT, chromium, write_results

KINDS = {"duty": 0.6, "wall": 0.2, "overview": 0.2}
TOKEN, WALL_TOKEN = "load-token", "load-wall"
LIMITS = {"RATE_LIMIT_CALLBACKS": "10000000/minute", "RATE_LIMIT_READ": "10000000/minute",
          "RATE_LIMIT_EXPENSIVE": "10000000/minute", "RATE_LIMIT_LOGIN_NAME": "10000/minute",
          "RATE_LIMIT_LOGIN_ADDRESS": "10000/minute", "RATE_LIMIT_INGEST": "10000000/minute"}
READY = {"duty": ".ag-row", "wall": "path.wx-layer-grids", "overview": "path.wx-layer-grids"}


def _p95(xs):
    xs = sorted(xs)
    return round(xs[min(len(xs) - 1, int(round(0.95 * (len(xs) - 1))))] * 1000, 1) if xs else None


def sign_in(sess: requests.Session, base: str, kind: str) -> None:
    if kind == "wall":
        r = sess.get(f"{base}/wall?token={WALL_TOKEN}&tour=3600", timeout=30)
    else:
        user, pw = ("duty", "duty-demo") if kind == "duty" else ("leader", "leader-demo")
        r = sess.post(base + "/login", data={"username": user, "password": pw, "next": "/"},
                      headers={"Origin": base}, timeout=30)
    r.raise_for_status()


class Ingest(threading.Thread):
    """One report a second through the API (the grid app's back end)."""

    def __init__(self, base: str):
        super().__init__(daemon=True)
        from dashboard.geodata import load_geodata

        grids = load_geodata(ROOT / "geodata").grids
        self.points = [(p.x, p.y) for p in grids.geometry.representative_point()]
        self.base, self.stop, self.latencies, self.errors = base, threading.Event(), [], 0

    def run(self):
        i = 0
        while not self.stop.is_set():
            lon, lat = self.points[(i * 37) % len(self.points)]
            t0 = time.monotonic()
            try:
                r = requests.post(self.base + "/api/v1/incidents", timeout=30,
                                  headers={"Authorization": f"Bearer {TOKEN}"},
                                  json={"category": "city.appearance", "lon": lon, "lat": lat,
                                        "description": f"负载演练 {i}", "client_ref": f"load-{uuid.uuid4().hex}"})
                ok = r.status_code == 201
            except requests.RequestException:
                ok = False
            self.latencies.append(time.monotonic() - t0)
            self.errors += not ok
            i += 1
            self.stop.wait(max(0.0, 1 - (time.monotonic() - t0)))


def record(base: str, seconds: float) -> dict:
    """The requests each kind of page makes in ``seconds`` (after it has drawn), as (t, method, path, body, type)."""
    out = {}
    with chromium() as browser:
        for kind in KINDS:
            ctx = browser.new_context(viewport={"width": 1920, "height": 1080}, locale="zh-CN")
            page = ctx.new_page()
            if kind != "wall":
                user, pw = ("duty", "duty-demo") if kind == "duty" else ("leader", "leader-demo")
                page.request.post(base + "/login", form={"username": user, "password": pw, "next": "/"},
                                  headers={"Origin": base}, max_redirects=0)
            seen = []
            page.on("request", lambda r, seen=seen: seen.append((time.monotonic(), r.method, r.url, r.post_data,
                                                                 r.headers.get("content-type"))))
            path = {"duty": "/incidents", "wall": f"/wall?token={WALL_TOKEN}&tour=3600", "overview": "/"}[kind]
            t0 = time.monotonic()
            page.goto(base + path)
            page.wait_for_selector(READY[kind], timeout=120_000)
            ready = time.monotonic()
            page.wait_for_timeout(seconds * 1000)
            mine = [(t, m, u[len(base):], b, ct) for t, m, u, b, ct in seen if u.startswith(base)
                    and "/login" not in u and "token=" not in u]
            # the page's load (once per viewer) and its steady life (looped), each timed from its own start
            out[kind] = ([(t - t0, *rest) for t, *rest in mine if t < ready],
                         [(t - ready, *rest) for t, *rest in mine if t >= ready], seconds)
            ctx.close()
    return out


PAGE = {"duty": "/incidents", "wall": "/wall", "overview": "/"}


def viewer(base: str, kind: str, recording: tuple, until: float, out: list) -> None:
    """Sign in, load the page once as recorded, then live its recorded steady life in a loop until ``until``."""
    sess = requests.Session()
    sign_in(sess, base, kind)
    load, steady, span = recording
    start = time.monotonic()
    _replay(sess, base, kind, load, start, until, out)
    start = time.monotonic()
    while time.monotonic() < until and steady:
        _replay(sess, base, kind, steady, start, until, out)
        start += span


def _replay(sess, base: str, kind: str, script: list, start: float, until: float, out: list) -> None:
    for t, method, path, body, ctype in script:
        due = start + t
        if due > until:
            return
        if due > time.monotonic():
            time.sleep(due - time.monotonic())
        key = path.split("?")[0]
        if key == "/_dash-update-component" and body:
            try:
                key = "callback " + json.loads(body).get("output", "")[:70]
            except ValueError:
                pass
        t0 = time.monotonic()
        try:
            r = sess.request(method, base + path, data=body.encode() if body else None, timeout=60,
                             headers={"Content-Type": ctype or "application/json", "Origin": base,
                                      "Referer": base + PAGE[kind]})
            status = r.status_code
        except requests.RequestException:
            status = 0
        out.append((kind, key, status, time.monotonic() - t0))


def serve(lane: str, folder: Path):
    from tests.integration.test_production_path import Gunicorn

    env = {"API_TOKENS": TOKEN, "WALL_TOKENS": WALL_TOKEN, "DEMO_USERS": "1", "INSTANCE_DIR": str(folder / "inst"),
           **LIMITS}
    cleanup = []
    if lane == "production":
        import psycopg
        import redis

        name = f"wx_load_{uuid.uuid4().hex[:8]}"
        admin = psycopg.connect("postgresql://postgres@127.0.0.1:5432/test", autocommit=True)
        admin.execute(f'CREATE DATABASE "{name}"')
        url = f"postgresql://postgres@127.0.0.1:5432/{name}"
        redis.Redis.from_url("redis://127.0.0.1:6379/13").flushdb()
        env.update(DATABASE_URL=url, REDIS_URL="redis://127.0.0.1:6379/13")

        def drop():
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
            admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
            admin.close()
        cleanup.append(drop)
        workers, args = 4, ["--threads", "4"]
    else:
        url = f"sqlite:///{folder / 'inst' / 'wuxing.sqlite3'}"
        (folder / "inst").mkdir(parents=True, exist_ok=True)
        env.update(DATABASE_URL=url, CACHE_URL=f"file://{folder / 'cache'}")
        workers, args = 2, []
    subprocess.run([sys.executable, "-m", "dashboard.demo", "history", "--db", url, "--scale", "0.05", "--quiet"],
                   cwd=ROOT, check=True, capture_output=True)
    server = Gunicorn(env, workers=workers, args=args, log_path=str(folder / "gunicorn.log")).start()
    return server, cleanup


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lane", choices=["embedded", "production"], default="embedded")
    ap.add_argument("--viewers", type=int, default=10)
    ap.add_argument("--seconds", type=float, default=180)
    ap.add_argument("--record", type=float, default=30)
    args = ap.parse_args(argv)
    machine = {"cores": os.cpu_count(), "python": platform.python_version(),
               "load_before": [round(x, 2) for x in os.getloadavg()]}
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        server, cleanup = serve(args.lane, Path(tmp))
        ingest = Ingest(server.url)
        try:
            ingest.start()
            scripts = record(server.url, args.record)
            mix = {k: max(1, round(args.viewers * share)) for k, share in KINDS.items()}
            until = time.monotonic() + args.seconds
            viewers = [(kind, []) for kind, n in mix.items() for _ in range(n)]  # (kind, its answers)
            threads = [threading.Thread(target=viewer, args=(server.url, kind, scripts[kind], until, mine),
                                        daemon=True) for kind, mine in viewers]
            t0 = time.monotonic()
            for t in threads:
                t.start()
            for t in threads:
                t.join(args.seconds + 120)
            wall = time.monotonic() - t0
        finally:
            ingest.stop.set()
            server.stop()
            for f in cleanup:
                f()
    answers = [a for _, mine in viewers for a in mine]
    by_key: dict = {}
    for kind, key, status, dt in answers:
        by_key.setdefault(key, []).append((status, dt))
    endpoints = sorted(({"endpoint": k, "n": len(v), "p95_ms": _p95([d for _, d in v]),
                         "total_s": round(sum(d for _, d in v), 1),
                         "errors": sum(1 for s, _ in v if s not in (200, 204, 304))}
                        for k, v in by_key.items()), key=lambda e: -e["total_s"])
    ok = [a for a in answers if a[2] in (200, 204, 304)]
    by_kind = {kind: [a for a in answers if a[0] == kind] for kind in KINDS}
    figures = {
        "lane": args.lane, "viewers": mix, "seconds": args.seconds, "recorded_s": args.record,
        "requests": len(answers), "requests_per_s": round(len(answers) / wall, 1),
        "success_share": round(len(ok) / len(answers), 4) if answers else None,
        "errors_by_status": {str(s): sum(1 for a in answers if a[2] == s)
                             for s in sorted({a[2] for a in answers}) if s not in (200, 204, 304)},
        "p95_ms_by_kind": {k: _p95([a[3] for a in v]) for k, v in by_kind.items()},
        "median_ms_by_kind": {k: round(statistics.median([a[3] for a in v]) * 1000, 1) if v else None
                              for k, v in by_kind.items()},
        "recorded_requests": {k: {"page_load": len(v[0]), "per_recorded_span": len(v[1])}
                              for k, v in scripts.items()},
        "ingest": {"posts": len(ingest.latencies), "errors": ingest.errors, "p95_ms": _p95(ingest.latencies)},
        "endpoints_by_total_time": endpoints[:15],
        "machine": {**machine, "load_after": [round(x, 2) for x in os.getloadavg()]},
    }
    def held(mine) -> bool:
        good = sum(1 for a in mine if a[2] in (200, 204, 304))
        return bool(mine) and good >= 0.99 * len(mine) and _p95([a[3] for a in mine]) <= 2000

    figures["held"] = {"rule": "a viewer is held when ≥ 99 % of its requests answered 2xx/304 and its p95 ≤ 2 s",
                       "viewers_held": sum(1 for _, mine in viewers if held(mine)), "of": len(viewers),
                       "by_kind": {k: f"{sum(1 for kk, m in viewers if kk == k and held(m))}/{mix[k]}" for k in KINDS}}
    write_results(f"load-{args.lane}", figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
