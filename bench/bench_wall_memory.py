"""Memory of the wall (大屏) over a soak: the page's JS heap at start and after N minutes of live data.

    python -m bench.bench_wall_memory [--minutes 30] [--rate 12] [--tour 10] [--sample 60]

A demo store (scaled history) is served in-process with the live simulator posting new incidents and moving open
ones along the loop through the real HTTP API (``--rate`` per minute). One headless Chromium shows
``/wall?token=…`` at 1920×1080 with a short tour interval (``--tour`` s) so the map flies a lot. Every
``--sample`` seconds (the tour held for a moment on the whole district, so every sample sees the same view) the
page's heap is measured through the Chrome DevTools Protocol after a forced collection
(``HeapProfiler.collectGarbage`` then ``Runtime.getHeapUsage``), with the DOM node and event-listener counts
(``Performance.getMetrics``) and the length of Dash's undo history and error log (trimmed by the wall). Prints the
figures and writes bench/results/wall_memory.json: start (after a 60 s warm-up), end, growth, and the slope of a
straight line through the samples.
"""
from __future__ import annotations

import argparse
import logging
import tempfile
import threading
import time
from pathlib import Path
from statistics import median

from bench.common import chromium, seed_demo, served, write_results

TOKEN, WALL_TOKEN = "bench-token", "bench-wall"
WARMUP_S = 60  # the first minute loads data and compiles code: measure from after it
DASH_STATE = """() => {
  const s = (window.dash_stores || [])[0];
  if (!s) { return [null, null]; }
  const st = s.getState();
  return [st.history.past.length, st.error.frontEnd.length + st.error.backEnd.length];
}"""


SAME_VIEW = """b => {
  window.dash_clientside.set_props('wall-tour-tick', {disabled: true});
  const m = window.wx.map.mapFor('map');
  m.stop();
  m.fitBounds(b, {padding: [12, 12], animate: false});
}"""
RESUME = "() => window.dash_clientside.set_props('wall-tour-tick', {disabled: false})"


def measure(cdp, page, bounds) -> dict:
    """One sample in the same view every time (the tour held for a moment on the whole district, markers
    re-clustered), so samples compare like with like whatever zone the tour was showing."""
    page.evaluate(SAME_VIEW, bounds)
    page.wait_for_timeout(1500)
    try:
        return _measure(cdp, page)
    finally:
        page.evaluate(RESUME)


def _measure(cdp, page) -> dict:
    cdp.send("HeapProfiler.collectGarbage")
    cdp.send("HeapProfiler.collectGarbage")
    heap = cdp.send("Runtime.getHeapUsage")
    metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
    history, errors = page.evaluate(DASH_STATE)
    return {
        "t_s": None, "heap_used_mb": round(heap["usedSize"] / 2**20, 3), "heap_total_mb": round(heap["totalSize"] / 2**20, 3),
        "dom_nodes": int(metrics.get("Nodes", 0)), "listeners": int(metrics.get("JSEventListeners", 0)),
        "dash_history": history, "dash_errors": errors,
        "ticker_rows": page.locator("#wall-ticker li").count(),
    }


def district_bounds() -> list:
    from dashboard.geodata import load_geodata
    from dashboard.settings import Settings

    minx, miny, maxx, maxy = load_geodata(Settings().geodata_dir).district.total_bounds
    return [[miny, minx], [maxy, maxx]]


def slope_per_min(samples: list[dict]) -> float | None:
    if len(samples) < 3:
        return None
    xs = [s["t_s"] / 60 for s in samples]
    ys = [s["heap_used_mb"] for s in samples]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return None if den == 0 else sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / den


def run(minutes: float, rate: float, tour: int, sample_s: float, scale: float) -> dict:
    from dashboard.demo.live import run_live

    logging.getLogger("dashboard.demo.live").setLevel(logging.ERROR)
    inst = Path(tempfile.mkdtemp(prefix="bench_wall_mem_"))
    seed_demo(inst, scale)
    stop = threading.Event()
    stats: dict = {}
    with served(inst, api_tokens=(TOKEN,), wall_tokens=(WALL_TOKEN,)) as base, chromium() as browser:
        sim = threading.Thread(target=lambda: stats.update(run_live(base, TOKEN, rate, stop, seed=11)), daemon=True)
        sim.start()
        ctx = browser.new_context(viewport={"width": 1920, "height": 1080}, locale="zh-CN")
        page = ctx.new_page()
        page_errors: list[str] = []
        page.on("pageerror", lambda e: page_errors.append(str(e)))
        cdp = ctx.new_cdp_session(page)
        cdp.send("HeapProfiler.enable")
        cdp.send("Performance.enable")
        page.goto(f"{base}/wall?token={WALL_TOKEN}&tour={tour}")
        page.wait_for_function("() => document.querySelectorAll('path.wx-layer-grids').length === 538",
                               timeout=60_000)
        page.wait_for_timeout(WARMUP_S * 1000)
        bounds = district_bounds()
        t0 = time.monotonic()
        start = {**measure(cdp, page, bounds), "t_s": 0.0}
        samples = [start]
        print(f"start: {start}", flush=True)
        end_at = t0 + minutes * 60
        while time.monotonic() < end_at:
            page.wait_for_timeout(min(sample_s, max(0.0, end_at - time.monotonic())) * 1000)
            s = {**measure(cdp, page, bounds), "t_s": round(time.monotonic() - t0, 1)}
            samples.append(s)
            print(f"{s['t_s']:>7.0f} s  heap {s['heap_used_mb']:.2f} MB  nodes {s['dom_nodes']}  "
                  f"listeners {s['listeners']}  dash history {s['dash_history']}  errors {s['dash_errors']}",
                  flush=True)
        end = samples[-1]
        stop.set()
        sim.join(timeout=30)
        ctx.close()
    growth = end["heap_used_mb"] - start["heap_used_mb"]
    k = min(3, len(samples) // 2) or 1
    first, last = median([s["heap_used_mb"] for s in samples[:k]]), median([s["heap_used_mb"] for s in samples[-k:]])
    return {
        "minutes": minutes, "live_rate_per_min": rate, "tour_s": tour, "warmup_s": WARMUP_S,
        "heap_start_mb": start["heap_used_mb"], "heap_end_mb": end["heap_used_mb"],
        "heap_growth_mb": round(growth, 3), "heap_growth_pct": round(100 * growth / start["heap_used_mb"], 1),
        "heap_max_mb": max(s["heap_used_mb"] for s in samples),
        # what is in view (a dense zone on the tour, an alert) moves single samples by a few MB: medians of the
        # first and last samples compare like with like
        "heap_first_median_mb": first, "heap_last_median_mb": last,
        "heap_median_growth_mb": round(last - first, 3),
        "heap_slope_mb_per_min": None if slope_per_min(samples) is None else round(slope_per_min(samples), 4),
        "dom_nodes": [start["dom_nodes"], end["dom_nodes"]], "listeners": [start["listeners"], end["listeners"]],
        "dash_history": [start["dash_history"], end["dash_history"]],
        "dash_errors": [start["dash_errors"], end["dash_errors"]],
        "page_errors": page_errors[:5], "simulator": stats, "samples": samples,
        "setup": {"scale": scale, "viewport": "1920x1080", "gc": "HeapProfiler.collectGarbage x2 before each sample"},
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=30.0)
    p.add_argument("--rate", type=float, default=12.0, help="live simulator: new incidents per minute")
    p.add_argument("--tour", type=int, default=10, help="tour interval (s)")
    p.add_argument("--sample", type=float, default=60.0, help="seconds between heap samples")
    p.add_argument("--scale", type=float, default=0.05)
    args = p.parse_args()
    sample = min(args.sample, max(5.0, args.minutes * 60 / 8))
    figures = run(args.minutes, args.rate, args.tour, sample, args.scale)
    print(f"JS heap: {figures['heap_start_mb']} MB at start -> {figures['heap_end_mb']} MB after "
          f"{figures['minutes']} min ({figures['heap_growth_mb']:+} MB, {figures['heap_growth_pct']:+} %); "
          f"medians of first/last samples {figures['heap_first_median_mb']} -> {figures['heap_last_median_mb']} MB; "
          f"slope {figures['heap_slope_mb_per_min']} MB/min; DOM nodes {figures['dom_nodes']}, "
          f"listeners {figures['listeners']}")
    write_results("wall_memory", figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
