"""Shared bench helpers: a throwaway instance with N open incidents, a served app, a headless Chromium."""
from __future__ import annotations

import datetime as dt
import json
import statistics
import threading
from contextlib import contextmanager
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-quic", "--no-first-run"]


def write_results(name: str, figures: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    figures = {"measured_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), **figures}
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(figures, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(figures, ensure_ascii=False, indent=2))
    print(f"written to {path.relative_to(ROOT)}")
    return path


def summary(samples: list[float]) -> dict:
    s = sorted(samples)
    return {"n": len(s), "median_ms": round(statistics.median(s), 1),
            "p95_ms": round(s[min(len(s) - 1, int(round(0.95 * (len(s) - 1))))], 1),
            "min_ms": round(s[0], 1), "max_ms": round(s[-1], 1)}


def seed_demo(instance: Path, scale: float = 0.05) -> None:
    """The demo history (scaled) under ``instance``: inspections and closed cases for the rate measures."""
    import subprocess
    import sys

    instance.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "dashboard.demo", "history", "--db",
                    f"sqlite:///{instance / 'wuxing.sqlite3'}", "--scale", str(scale), "--quiet"],
                   check=True, cwd=ROOT, capture_output=True)


def seed_open_incidents(instance: Path, n: int, seed: int = 1) -> None:
    """Add ``n`` open incidents (spread over the grids by population) to the store under ``instance``."""
    from dashboard.geodata import load_geodata
    from dashboard.settings import Settings
    from dashboard.store import init_db, make_engine, session_factory
    from dashboard.store.catalogue import CATEGORIES
    from dashboard.store.incidents import bulk_insert_incidents

    settings = Settings(instance_dir=instance)
    engine = make_engine(settings.sqlalchemy_url)
    init_db(engine)
    gd = load_geodata(settings.geodata_dir)
    grids = gd.grids
    rng = np.random.default_rng(seed)
    weights = grids["population"].to_numpy(float)
    pick = rng.choice(len(grids), size=n, p=weights / weights.sum())
    minx, miny, maxx, maxy = grids.geometry.bounds.to_numpy().T
    now = dt.datetime.now(dt.timezone.utc)
    cats = list(CATEGORIES)
    states = ["reported", "routed", "in_progress", "escalated", "assigned", "handled", "onsite_handled"]
    rows = []
    locator = gd.locator
    for i in pick:
        geom = grids.geometry.iloc[i]
        for _ in range(50):
            lon, lat = rng.uniform(minx[i], maxx[i]), rng.uniform(miny[i], maxy[i])
            if locator.locate(lon, lat) == grids["code"].iloc[i]:
                break
        else:
            p = geom.representative_point()
            lon, lat = p.x, p.y
        rows.append({"category": cats[rng.integers(len(cats))], "severity": int(rng.choice([1, 1, 2, 2, 3, 4])),
                     "status": states[rng.integers(len(states))], "lon": float(lon), "lat": float(lat),
                     "grid_code": grids["code"].iloc[i], "zone_code": grids["zone_code"].iloc[i],
                     "town_code": grids["town_code"].iloc[i], "description": "基准测试案事件",
                     "reported_at": now - dt.timedelta(hours=float(rng.uniform(0, 24 * 20)))})
    Session = session_factory(engine)
    with Session() as s:
        for k in range(0, len(rows), 20_000):
            bulk_insert_incidents(s, rows[k:k + 20_000])
    engine.dispose()


@contextmanager
def served(instance: Path, **settings_kw):
    import logging

    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.ERROR)

    from dashboard import create_app
    from dashboard.settings import Settings

    settings_kw.setdefault("demo_users", True)  # the app is private by default: benches sign in as the demo leader
    app = create_app(Settings(instance_dir=instance, tile_url="", demo_live=False, **settings_kw))
    from dashboard.warm import settle_heap, warm

    warm(app)  # as a gunicorn worker does when it starts (dashboard.warm: the geodata's memos, the callbacks' access)
    settle_heap()  # and then its heap frozen
    server = make_server("127.0.0.1", 0, app.server, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()


def sign_in(page, base: str, username: str = "leader", password: str = "leader-demo") -> None:
    """Sign ``page``'s browser context in (the demo users of ``served``)."""
    r = page.request.post(base + "/login", form={"username": username, "password": password, "next": "/"},
                          headers={"Origin": base}, max_redirects=0)
    if r.status != 303 or "error" in (r.headers.get("location") or ""):
        raise RuntimeError(f"sign-in as {username} failed: {r.status} {r.headers.get('location')}")


@contextmanager
def chromium():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def served_from(code: Path, instance: Path, **settings_kw):
    """Like :func:`served`, but the dashboard of another checkout ``code`` (its own process, ``bench.serve_app``):
    a before/after run serves both versions on the same instance."""
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "bench.serve_app", "--code", str(code), "--instance", str(instance),
                             "--settings", json.dumps(settings_kw)], cwd=ROOT, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        url = proc.stdout.readline().strip()
        if not url.startswith("http://"):
            raise RuntimeError(f"{code}: the app did not start")
        yield url
    finally:
        proc.stdin.close()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
