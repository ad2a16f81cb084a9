"""A freshly started multi-worker server (gunicorn, 3 workers) draws the wall at once: opened the moment /healthz
answers, the wall's map is drawn with no failed request and no page error (a wall once stayed blank for 60 s after
a restart, while workers that had not rendered a page answered its scripts with 500). How fast is the bench's
business (bench/bench_map.py); this test waits on the drawing, not on a clock, so a busy machine does not fail it."""
from __future__ import annotations

import time

from tests.conftest import watch
from tests.integration.test_production_path import Gunicorn

WALL_TOKEN = "first-paint-wall"


def test_the_wall_draws_at_once_after_a_fresh_multi_worker_start(small_demo_instance, browser, tmp_path):
    env = {"DATABASE_URL": f"sqlite:///{small_demo_instance / 'wuxing.sqlite3'}", "INSTANCE_DIR": str(tmp_path),
           "CACHE_URL": f"file://{tmp_path / 'cache'}", "WALL_TOKENS": WALL_TOKEN}
    server = Gunicorn(env, workers=3, log_path=str(tmp_path / "gunicorn.log"))
    ctx = browser.new_context(viewport={"width": 1920, "height": 1080})
    page = ctx.new_page()
    errors = watch(page)
    failed = []
    page.on("response", lambda r: failed.append((r.status, r.url)) if r.status >= 500 else None)
    try:
        server.start()  # returns as soon as /healthz answers
        t0 = time.monotonic()
        page.goto(f"{server.url}/wall?token={WALL_TOKEN}")
        page.wait_for_selector("path.wx-layer-grids", timeout=45_000)  # the old fault: blank for 60 s
        drawn = time.monotonic() - t0
        print(f"wall drawn {drawn:.2f} s after /healthz answered")
        page.wait_for_selector("#wall-kpis .wx-wall-kpi", timeout=30_000)
    finally:
        ctx.close()
        server.stop()
    assert not failed and not errors, (drawn, failed[:5], errors[:3], server.log()[-1500:])
