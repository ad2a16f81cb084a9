"""Map speed: first draw of 584 polygons (538 grids + 46 zones) + N clustered incidents, recolour by measure,
and how far clustering goes (open incidents: 5,000 by default, `--big 100000` for the scale run).

    python -m bench.bench_map [--incidents 5000] [--big 100000] [--runs 7]

Prints figures and writes bench/results/map.json. Times are wall-clock in a real headless Chromium on this
machine, from navigation start to the last polygon and cluster drawn (and for recolour, from the click on a
measure to the first changed fill).
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from bench.common import chromium, seed_demo, seed_open_incidents, served, sign_in, summary, write_results

DRAWN = """n => document.querySelectorAll('path.wx-layer-grids').length === 538 &&
    document.querySelectorAll('path.wx-layer-zones').length === 46 &&
    (document.querySelectorAll('.marker-cluster').length + document.querySelectorAll('.wx-inc').length) > 0"""


def first_draw(browser, url: str, runs: int) -> tuple[list[float], int]:
    samples, transferred = [], 0
    for _ in range(runs):
        ctx = browser.new_context(viewport={"width": 1600, "height": 1000})
        page = ctx.new_page()
        sizes = []
        sign_in(page, url)
        page.on("response", lambda r: sizes.append(int(r.headers.get("content-length") or 0)))
        t0 = time.perf_counter()
        page.goto(url + "/")
        page.wait_for_function(DRAWN, arg=None, timeout=120_000, polling=16)
        samples.append((time.perf_counter() - t0) * 1000)
        transferred = sum(sizes)
        ctx.close()
    return samples, transferred


def recolour(browser, url: str, runs: int) -> list[float]:
    ctx = browser.new_context(viewport={"width": 1600, "height": 1000})
    page = ctx.new_page()
    sign_in(page, url)
    page.goto(url + "/")
    page.wait_for_function(DRAWN, timeout=120_000)
    page.wait_for_timeout(500)
    samples = []
    measures = ["现场处置率", "在办案事件"]  # alternate: every click really changes the colours
    # warm the server-side caches once so we time the recolour, not the first aggregation of a period
    for label in measures:
        page.locator("#map-measure").click()
        page.get_by_role("option", name=label, exact=True).click()
        page.wait_for_timeout(800)
    for k in range(runs):
        label = measures[k % len(measures)]
        before = page.evaluate("() => Array.from(document.querySelectorAll('path.wx-layer-zones')).map(p => p.getAttribute('fill')).join()")
        page.locator("#map-measure").click()
        t0 = time.perf_counter()
        page.get_by_role("option", name=label, exact=True).click()
        page.wait_for_function("b => Array.from(document.querySelectorAll('path.wx-layer-zones')).map(p => p.getAttribute('fill')).join() !== b",
                               arg=before, timeout=30_000, polling=8)
        samples.append((time.perf_counter() - t0) * 1000)
    ctx.close()
    return samples


def pan(browser, url: str, runs: int) -> list[float]:
    ctx = browser.new_context(viewport={"width": 1600, "height": 1000})
    page = ctx.new_page()
    sign_in(page, url)
    page.goto(url + "/")
    page.wait_for_function(DRAWN, timeout=180_000)
    page.wait_for_function("() => window.wx && window.wx.map.mapFor('map')")
    samples = []
    for k in range(runs):
        ms = page.evaluate("""dx => new Promise(res => {
            const m = window.wx.map.mapFor('map'); const t0 = performance.now();
            m.once('moveend', () => requestAnimationFrame(() => res(performance.now() - t0)));
            m.panBy([dx, dx / 2], {animate: false});
        })""", 200 if k % 2 else -200)
        samples.append(ms)
    ctx.close()
    return samples


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--incidents", type=int, default=5000)
    ap.add_argument("--big", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args(argv)
    figures = {}
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp, chromium() as browser:
        inst = Path(tmp) / "base"
        seed_demo(inst)
        seed_open_incidents(inst, args.incidents)
        with served(inst) as url:
            draw, size = first_draw(browser, url, args.runs)
            figures["first_draw_584_polygons_plus_incidents"] = {"added_open_incidents": args.incidents,
                                                                 "bytes_transferred": size, **summary(draw)}
            figures["recolour_by_measure"] = summary(recolour(browser, url, args.runs))
        if args.big:
            big = Path(tmp) / "big"
            t0 = time.perf_counter()
            seed_open_incidents(big, args.big, seed=2)
            seeded = time.perf_counter() - t0
            with served(big) as url:
                draw, size = first_draw(browser, url, max(3, args.runs // 2))
                figures["scale_first_draw"] = {"open_incidents": args.big, "bytes_transferred": size,
                                               "seed_s": round(seeded, 1), **summary(draw)}
                figures["scale_pan_200px"] = summary(pan(browser, url, 10))
    write_results("map", figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
