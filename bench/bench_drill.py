"""Server-side time of a drill click and of a period change on the full demo year (median / p95).

A drill is what the server does for one click: the URL → view state, the panel (cards, ranking, trend,
categories, levels, departments, profile) and the map highlight, plus the JSON encoding of those outputs
(the lifecycle funnel / stage times are a separate callback, reported separately) — the functions the Dash callbacks call, inside a request context. Measured with warm caches
(the period's aggregates already computed: what every click after the first of a period sees) and, separately,
the cold cost of a period's first computation.

    .venv/bin/python -m bench.bench_drill [--db sqlite:///path/with/demo.sqlite3] [--n 60]
"""
from __future__ import annotations

import argparse
import random
import secrets
import tempfile
import time
from pathlib import Path

from bench.common import summary, write_results


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", help="a database with the demo year (default: generate the full demo in a temp dir)")
    ap.add_argument("--n", type=int, default=60)
    args = ap.parse_args(argv)

    from dash._utils import to_json

    from dashboard import create_app
    from dashboard.callbacks.drill import next_state
    from dashboard.metrics import views
    from dashboard.services import drill
    from dashboard.settings import Settings
    from dashboard.ui import panel

    tmp = Path(tempfile.mkdtemp(prefix="bench-drill-"))
    url = args.db
    if not url:
        from dashboard.demo.history import run_history

        url = f"sqlite:///{tmp / 'demo.sqlite3'}"
        t = time.perf_counter()
        run_history(url, progress=False)
        print(f"demo generated in {time.perf_counter() - t:.1f} s")
    app = create_app(Settings(instance_dir=tmp / "instance", database_url=url, tile_url="", demo_live=False,
                              cache_url=f"file://{tmp / 'cache'}", secret_key=secrets.token_urlsafe(48)))
    server = app.server
    rng = random.Random(5)
    life_ms: list[float] = []

    def server_part(state: dict, trigger=None, value=None) -> float:
        t = time.perf_counter()
        h = views.hierarchy(server.extensions["dashboard"].geodata())
        if trigger:
            state = next_state(trigger, value, state, h) or state
        query = drill.query_for(state, "zh")
        state = drill.state_from_query(query, h)
        out = panel.render(drill.panel_values(state, "zh", "detection_rate", "auto", panel.RANK_KPIS), "zh")
        target = drill.map_target(state)
        to_json([out[k] for k in out] + [target])
        t_panel = time.perf_counter()
        to_json(list(panel.render_lifecycle(drill.lifecycle_values(state), "zh")))  # its own callback: after the cards
        life_ms.append((time.perf_counter() - t_panel) * 1000)
        return (t_panel - t) * 1000

    figures = {"db": url.split("///")[-1] if args.db else "generated full demo", "n": args.n}
    with server.test_request_context("/"):
        h = views.hierarchy(server.extensions["dashboard"].geodata())
        zones = sorted(c for (lv, c) in h.names if lv == "zone")
        grids = sorted(c for (lv, c) in h.names if lv == "grid")
        towns = list(h.kids("district", None))
        cold = {}
        for key in ("2019", "30d", "7d", "today"):
            cold[key] = round(server_part({"level": "district", "code": None, "period": key}), 1)
        figures["cold_first_view_ms"] = cold

        # drills on calendar 2019 (the heaviest period): random towns / zones / grids, first visits and repeats
        first, repeat = [], []
        life_ms.clear()
        units = [("town", c) for c in towns] + [("zone", c) for c in zones] + [("grid", c) for c in grids]
        picks = [units[rng.randrange(len(units))] for _ in range(args.n)]
        for level, code in picks:
            first.append(server_part({"level": level, "code": code, "period": "2019"}))
        figures["lifecycle_2019_first_visit"] = summary(life_ms)
        for level, code in picks:
            repeat.append(server_part({"level": level, "code": code, "period": "2019"}))
        # a map click (grid feature) from the district: the zone of the grid
        clicks = [server_part({"level": "district", "code": None, "period": "2019"}, "geo-grids",
                              {"properties": {"code": grids[rng.randrange(len(grids))]}}) for _ in range(args.n)]
        figures["drill_2019_first_visit"] = summary(first)
        figures["drill_2019_repeat"] = summary(repeat)
        figures["map_click_2019"] = summary(clicks)

        # period changes on a zone (aggregates of each period computed once above / on first use)
        keys = ["2019", "30d", "7d", "today", "year"]
        zone = zones[3]
        server_part({"level": "zone", "code": zone, "period": "year"})
        changes = [server_part({"level": "zone", "code": zone, "period": keys[i % len(keys)]})
                   for i in range(args.n)]
        figures["period_change_zone"] = summary(changes)
    write_results("drill", figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
