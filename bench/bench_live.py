"""Live latency of the wall (大屏): an incident posted through the HTTP API → visible on an open ``/wall``.

    python -m bench.bench_live [--posts 20] [--gap 1.5] [--scale 0.05]

A demo store (scaled history) is served in-process; one headless Chromium shows ``/wall?token=…`` at 1920×1080.
Each post is timed from just before the POST to the moment the page shows it, as seen by a MutationObserver in the
page (same machine, same clock): in the ticker (its row) and on the map (the clustered marker count goes up by
one). Prints median / p95 and writes bench/results/live.json. The test suite asserts a generous bound; this is the
real figure.
"""
from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
import urllib.request
from pathlib import Path

from bench.common import chromium, seed_demo, served, summary, write_results

TOKEN, WALL_TOKEN = "bench-token", "bench-wall"
WATCH = """() => {
  window.__seen = {}; window.__markers = [];
  const count = () => {
    let n = 0;
    document.querySelectorAll('.marker-cluster').forEach(el => { n += parseInt(el.innerText.trim(), 10) || 0; });
    return n + document.querySelectorAll('.leaflet-marker-pane .wx-inc').length;
  };
  window.__markerCount = count;
  new MutationObserver(() => {
    document.querySelectorAll('#wall-ticker li[data-code]').forEach(li => {
      const c = li.dataset.code;
      if (!(c in window.__seen)) { window.__seen[c] = Date.now(); }
    });
  }).observe(document.getElementById('wall-ticker'), {childList: true, subtree: true});
  const pane = document.querySelector('.leaflet-marker-pane');
  new MutationObserver(() => { window.__markers.push([Date.now(), count()]); })
    .observe(pane, {childList: true, subtree: true, characterData: true});
}"""


def post(base: str, body: dict) -> dict:
    req = urllib.request.Request(base + "/api/v1/incidents", data=json.dumps(body).encode(), method="POST",
                                 headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def points(n: int, seed: int = 7) -> list[tuple[float, float]]:
    from dashboard.geodata import load_geodata
    from dashboard.settings import Settings

    grids = load_geodata(Settings().geodata_dir).grids
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        p = grids.geometry.iloc[rng.randrange(len(grids))].representative_point()
        out.append((round(p.x, 6), round(p.y, 6)))
    return out


def run(posts: int, gap: float, scale: float) -> dict:
    inst = Path(tempfile.mkdtemp(prefix="bench_live_"))
    seed_demo(inst, scale)
    ticker, on_map = [], []
    with served(inst, api_tokens=(TOKEN,), wall_tokens=(WALL_TOKEN,)) as base, chromium() as browser:
        ctx = browser.new_context(viewport={"width": 1920, "height": 1080}, locale="zh-CN")
        page = ctx.new_page()
        page.goto(f"{base}/wall?token={WALL_TOKEN}&tour=3600")  # the tour stays on the district while measuring
        page.wait_for_function("() => document.querySelectorAll('path.wx-layer-grids').length === 538",
                               timeout=60_000)
        page.wait_for_selector(".marker-cluster, .wx-inc", timeout=60_000)
        page.wait_for_timeout(2500)  # first live tick and layer fetch done
        page.evaluate(WATCH)
        for i, (lon, lat) in enumerate(points(posts)):
            before = page.evaluate("() => window.__markerCount()")
            t0 = time.time() * 1000
            inc = post(base, {"category": "city.appearance", "severity": 1, "lon": lon, "lat": lat,
                              "description": f"延迟测试 {i}", "source": "app"})
            page.wait_for_function("c => c in window.__seen", arg=inc["code"], timeout=30_000, polling=50)
            ticker.append(page.evaluate("c => window.__seen[c]", inc["code"]) - t0)
            page.wait_for_function("n => window.__markerCount() >= n", arg=before + 1, timeout=30_000, polling=50)
            hit = page.evaluate("([t, n]) => { const m = window.__markers.find(x => x[0] >= t && x[1] >= n);"
                                " window.__markers = []; return m ? m[0] : Date.now(); }", [t0, before + 1])
            on_map.append(hit - t0)
            time.sleep(gap * random.uniform(0.5, 1.5))
        ctx.close()
    return {"posts": posts, "ticker": summary(ticker), "map": summary(on_map),
            "setup": {"scale": scale, "viewport": "1920x1080", "live_tick_ms": 1000, "server": "werkzeug threaded",
                      "db": "sqlite"}}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--posts", type=int, default=20)
    p.add_argument("--gap", type=float, default=1.5, help="mean seconds between posts")
    p.add_argument("--scale", type=float, default=0.05, help="demo history scale of the served store")
    args = p.parse_args()
    figures = run(args.posts, args.gap, args.scale)
    print(f"post -> ticker: median {figures['ticker']['median_ms']} ms, p95 {figures['ticker']['p95_ms']} ms; "
          f"post -> map: median {figures['map']['median_ms']} ms, p95 {figures['map']['p95_ms']} ms "
          f"({figures['posts']} posts)")
    write_results("live", figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
