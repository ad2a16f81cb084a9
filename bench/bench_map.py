"""Map speed: first paint of the overview against the default plotly map page, the wall's and the duty desk's first
paint, recolour by measure, and how far clustering goes (open incidents: 5,000 by default, `--big 100000` for the
scale run).

    python -m bench.bench_map [--incidents 5000] [--big 100000] [--runs 7]

Prints figures and writes bench/results/map.json (with the machine and its load average). Times are wall-clock in
a real headless Chromium on this machine, each first paint in a fresh browser context (nothing cached), measured in
the page the way a user waits: from navigation start to the end of the frame in which the map is painted — for the
overview every grid and zone path and the incident clusters (``DRAWN``); for the plotly page (``plotly_map_page``,
a ``choropleth_map`` of the same data, built in the same run) MapLibre idle with every trace drawn. The two pages
alternate run by run, so they share the machine's load. For each page: the requests started and the bytes
transferred before the paint, and which component bundles were among them. Recolour: from choosing a measure
to the first changed fill.
"""
from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import tempfile
import subprocess
import time
from contextlib import nullcontext
from pathlib import Path

from bench import plotly_map_page
from bench.common import (ROOT, chromium, seed_demo, seed_open_incidents, served, served_from, sign_in, summary,
                          write_results)

DRAWN = """n => document.querySelectorAll('path.wx-layer-grids').length === 538 &&
    document.querySelectorAll('path.wx-layer-zones').length === 46 &&
    (document.querySelectorAll('.marker-cluster').length + document.querySelectorAll('.wx-inc').length) > 0"""
# the duty desk's map shows zones, not grids, beside its list
DUTY_DRAWN = """() => document.querySelectorAll('path.wx-layer-zones').length === 46 &&
    (document.querySelectorAll('.marker-cluster').length + document.querySelectorAll('.wx-inc').length) > 0 &&
    document.querySelector('.ag-row') !== null"""
TOKEN, WALL_TOKEN = "bench-token", "bench-wall"


def painted_script(condition: str) -> str:
    """Init script: ``window.__wxPainted`` = ms from navigation start to the end of the first frame in which
    ``condition`` (a JS function of no argument) holds, checked once a frame."""
    return """(() => {
  window.__wxPainted = null;
  const drawn = %s;
  (function poll() {
    if (drawn()) {
      requestAnimationFrame(() => { const c = new MessageChannel();
        c.port1.onmessage = () => { window.__wxPainted = performance.now(); }; c.port2.postMessage(0); });
      return;
    }
    requestAnimationFrame(poll);
  })();
})();""" % condition


RESOURCES = """t => {
  const nav = performance.getEntriesByType('navigation')[0];
  const all = [nav, ...performance.getEntriesByType('resource')];
  return all.filter(e => e.startTime <= t).map(e => ({url: e.name, start: e.startTime, end: e.responseEnd,
    transfer: e.transferSize, decoded: e.decodedBodySize}));
}"""
_FINGERPRINT = re.compile(r"\.v[0-9_]+m[0-9]+")


def bundle_name(url: str) -> str | None:
    """``dash_ag_grid/dash_ag_grid.min.js`` for a component suite URL (fingerprint dropped), else None."""
    path = url.split("?")[0]
    if "/_dash-component-suites/" not in path:
        return None
    return _FINGERPRINT.sub("", path.split("/_dash-component-suites/", 1)[1])


def paint_once(browser, url: str, path: str, condition: str, viewport=(1600, 1000), user: str | None = None,
               password: str | None = None) -> dict:
    ctx = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
    try:
        page = ctx.new_page()
        page.add_init_script(painted_script(condition) if condition else plotly_map_page.painted_script())
        if user:
            sign_in(page, url, user, password)
        cdp = ctx.new_cdp_session(page)
        cdp.send("Performance.enable")
        page.goto(url + path)
        page.wait_for_function("() => window.__wxPainted !== null", timeout=180_000, polling=50)
        metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
        ms = page.evaluate("window.__wxPainted")
        res = page.evaluate(RESOURCES, ms)
    finally:
        ctx.close()
    bundles = {}
    for r in res:
        name = bundle_name(r["url"])
        if name:
            bundles[name] = r["decoded"]
    # CPU time of the page's main thread and of its renderer process up to a moment after the paint (the figures'
    # read): what the page costs the machine, much less moved by the machine's load than the wall clock
    return {"ms": ms, "requests": len(res), "transferred": sum(r["transfer"] for r in res),
            "decoded": sum(r["decoded"] for r in res), "bundles": bundles,
            "main_thread_cpu_ms": metrics.get("ThreadTime", 0) * 1000, "renderer_cpu_ms": metrics.get("ProcessTime", 0) * 1000}


def page_figures(samples: list[dict]) -> dict:
    """Medians over the runs; the bundles requested before the paint (in every run) with their decoded size."""
    common = set.intersection(*(set(s["bundles"]) for s in samples))
    last = samples[-1]["bundles"]
    return {**summary([s["ms"] for s in samples]),
            "main_thread_cpu_ms_median": round(statistics.median(s["main_thread_cpu_ms"] for s in samples), 1),
            "renderer_cpu_ms_median": round(statistics.median(s["renderer_cpu_ms"] for s in samples), 1),
            "requests_before_paint": statistics.median(s["requests"] for s in samples),
            "bytes_transferred_before_paint": statistics.median(s["transferred"] for s in samples),
            "bytes_decoded_before_paint": statistics.median(s["decoded"] for s in samples),
            "bundles_before_paint": {name: last[name] for name in sorted(common)},
            "ag_grid_before_paint": any(n.startswith("dash_ag_grid/") for n in common),
            "plotly_js_before_paint": any("plotly" in n for n in common)}


def overview_vs_plotly(browser, url: str, plotly_url: str, runs: int, before_url: str | None = None) -> dict:
    """The overview and the plotly page, alternating (one warm-up each, not counted); with ``before_url`` (the
    code before, same instance) its overview too, in the same round."""
    ours, theirs, before = [], [], []
    overview_at = lambda u: paint_once(browser, u, "/", DRAWN, user="leader", password="leader-demo")  # noqa: E731
    urls = [url] + ([before_url] if before_url else [])
    for u in urls:
        overview_at(u)
    paint_once(browser, plotly_url, "/", None)
    for k in range(runs):
        for u in (urls if k % 2 == 0 else urls[::-1]):  # which version goes first alternates too
            (ours if u == url else before).append(overview_at(u))
        theirs.append(paint_once(browser, plotly_url, "/", None))
    overview, plotly = page_figures(ours), page_figures(theirs)
    out = {"overview": overview, "plotly_choropleth_map_page": plotly,
           "ratio_of_medians": round(overview["median_ms"] / plotly["median_ms"], 3),
           "ratio_per_pair_median": round(statistics.median(a["ms"] / b["ms"] for a, b in zip(ours, theirs)), 3)}
    if before:
        b = page_figures(before)
        out["before"] = {"overview": b, "ratio_of_medians": round(b["median_ms"] / plotly["median_ms"], 3),
                         "ratio_per_pair_median": round(statistics.median(
                             x["ms"] / y["ms"] for x, y in zip(before, theirs)), 3)}
    return out


def other_pages(browser, url: str, runs: int, before_url: str | None = None) -> dict:
    pages = {"wall": (f"/wall?token={WALL_TOKEN}", DRAWN, (1920, 1080), None, None),
             "duty_desk": ("/incidents", DUTY_DRAWN, (1600, 1000), "duty", "duty-demo")}
    urls = [url] + ([before_url] if before_url else [])
    out, before = {}, {}
    for name, (path, cond, viewport, user, password) in pages.items():
        samples = {u: [] for u in urls}
        for k in range(runs + 1):  # the first round is a warm-up
            for u in (urls if k % 2 == 0 else urls[::-1]):
                samples[u].append(paint_once(browser, u, path, cond, viewport=viewport, user=user, password=password))
        out[name] = page_figures(samples[url][1:])
        if before_url:
            before[name] = page_figures(samples[before_url][1:])
    if before:
        out["before"] = before
    return out


def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    return {"cpu": cpu, "cores": os.cpu_count(), "system": platform.platform()}


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
        page.locator("#map-measure").select_option(label=label)  # a native <select> (dashboard/ui/select.py)
        page.wait_for_timeout(800)
    for k in range(runs):
        label = measures[k % len(measures)]
        before = page.evaluate("() => Array.from(document.querySelectorAll('path.wx-layer-zones')).map(p => p.getAttribute('fill')).join()")
        t0 = time.perf_counter()
        page.locator("#map-measure").select_option(label=label)
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


def _commit(checkout: Path) -> str | None:
    r = subprocess.run(["git", "-C", str(checkout), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return r.stdout.strip() or None


def _previous() -> dict:
    import json

    from bench.common import RESULTS

    try:
        previous = json.loads((RESULTS / "map.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return previous.get("not_measured_in_this_run") or previous


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--incidents", type=int, default=5000)
    ap.add_argument("--big", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--paint-only", action="store_true", help="only the first paint figures (no recolour, no scale run)")
    ap.add_argument("--before", type=Path, metavar="CHECKOUT",
                    help="also serve the code of this checkout (e.g. the lead's main) on the same data and measure "
                         "its first paints in the same rounds (before/after on a loaded machine)")
    args = ap.parse_args(argv)
    figures = {"machine": machine(), "load_average_at_start": [round(x, 2) for x in os.getloadavg()]}
    if args.before:
        figures["before_code"] = {"checkout": str(args.before), "commit": _commit(args.before)}
    # every first paint signs a fresh context in: more sign-ins a minute than a real centre's limits allow
    tokens = {"api_tokens": (TOKEN,), "wall_tokens": (WALL_TOKEN,),
              "rate_limits": {"login_name": "600/minute", "login_address": "600/minute"}}
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp, chromium() as browser:
        figures["machine"]["chromium"] = browser.version
        inst = Path(tmp) / "base"
        seed_demo(inst)
        seed_open_incidents(inst, args.incidents)
        # before/after: both versions in processes of their own, alike (this one drives the browser)
        with (served_from(ROOT, inst, **tokens) if args.before else served(inst, **tokens)) as url, \
                (served_from(args.before, inst, **tokens) if args.before else nullcontext()) as before_url:
            with plotly_map_page.served(plotly_map_page.fetch_data(url, TOKEN)) as plotly_url:
                figures["first_paint"] = {"open_incidents_added": args.incidents, "runs": args.runs,
                                          **overview_vs_plotly(browser, url, plotly_url, args.runs, before_url)}
            figures["first_paint_other_pages"] = other_pages(browser, url, max(5, args.runs // 2), before_url)
            figures["load_average_after_first_paints"] = [round(x, 2) for x in os.getloadavg()]
            if not args.paint_only:
                draw, size = first_draw(browser, url, args.runs)
                figures["first_draw_584_polygons_plus_incidents"] = {"added_open_incidents": args.incidents,
                                                                     "bytes_transferred": size, **summary(draw)}
                figures["recolour_by_measure"] = summary(recolour(browser, url, args.runs))
        if args.big and not args.paint_only:
            big = Path(tmp) / "big"
            t0 = time.perf_counter()
            seed_open_incidents(big, args.big, seed=2)
            seeded = time.perf_counter() - t0
            with served(big) as url:
                draw, size = first_draw(browser, url, max(3, args.runs // 2))
                figures["scale_first_draw"] = {"open_incidents": args.big, "bytes_transferred": size,
                                               "seed_s": round(seeded, 1), **summary(draw)}
                figures["scale_pan_200px"] = summary(pan(browser, url, 10))
    figures["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    if args.paint_only:  # the other sections stay as they were measured, with their date
        previous = _previous()
        kept = {k: v for k, v in previous.items() if k not in figures and k not in ("measured_at", "load_average_at_start")}
        if kept:
            figures["not_measured_in_this_run"] = {"measured_at": previous.get("measured_at"), **kept}
    write_results("map", figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
