"""The drill's first answer on the server, before / after (issue 10; not a ``bench_*`` script, so ``python -m bench``
leaves it out): ``drill.panel_text_values`` + ``ui.panel.render_text`` — what the panel's text callback runs on a
click (breadcrumb, title, KPI cards with the parent's and last year's, profile) — timed in one process on a fresh
instance (file cache cold), for the same seeded chains town → zone → grid (and the grid once more) on a multi-county
store, with the ``dashboard`` package imported from ``--code`` (another checkout: the code before a change).

Runs of several codes alternate on the same store (the database's pages warm for all of them); each run is merged
into OUT under its label, with the machine, the load averages and the commit of the code measured:

    python -m bench.panel_text_ab --geodata /tmp/zhejiang --db prov_zhejiang_10m --code /work/wt/before \\
        --label before --out province-s24-panel-text
    python -m bench.panel_text_ab --geodata /tmp/zhejiang --db prov_zhejiang_10m --label after \\
        --out province-s24-panel-text
"""
from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STEPS = ("town", "zone", "grid", "grid_again")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--geodata", required=True, type=Path)
    ap.add_argument("--db", required=True, help="a PostgreSQL database of the bench's server (bench_province's stores)")
    ap.add_argument("--code", type=Path, default=ROOT, help="the checkout whose dashboard is measured")
    ap.add_argument("--label", required=True)
    ap.add_argument("--chains", type=int, default=10)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out", required=True, help="results file name under bench/results (merged by label)")
    args = ap.parse_args()

    sys.path.insert(0, str(args.code.resolve()))  # its dashboard before this checkout's
    from dashboard import create_app
    from dashboard.services import drill
    from dashboard.settings import Settings
    from dashboard.ui import panel
    from dashboard.warm import settle_heap, warm

    sys.path.insert(1, str(ROOT))
    from bench.bench_map import machine
    from bench.bench_province import SECRET, _sa_url
    from bench.common import RESULTS, summary, write_results

    import dashboard

    assert Path(dashboard.__file__).resolve().is_relative_to(args.code.resolve()), dashboard.__file__
    load_start = os.getloadavg()
    app = create_app(Settings(instance_dir=Path(tempfile.mkdtemp(prefix="paneltext-")), tile_url="", demo_live=False,
                              demo_users=True, geodata_dir=args.geodata, database_url=_sa_url(args.db),
                              secret_key=SECRET))
    warm(app)
    settle_heap()
    grids = app.server.extensions["dashboard"].geodata().grids
    rng = random.Random(args.seed)
    times: dict[str, list[float]] = {k: [] for k in ("root_cold", "root_again", *STEPS)}
    with app.server.test_request_context():
        def text(level, code):
            t = time.perf_counter()
            panel.render_text(drill.panel_text_values({"level": level, "code": code, "period": "30d"}, "zh",
                                                      panel.RANK_KPIS), "zh")
            return (time.perf_counter() - t) * 1000

        times["root_cold"].append(text("district", None))  # the period's bundle and last year's, built
        times["root_again"].append(text("district", None))
        for _ in range(args.chains):
            g = grids.iloc[rng.randrange(len(grids))]
            for step, (level, code) in zip(STEPS, (("town", g["town_code"]), ("zone", g["zone_code"]),
                                                   ("grid", g["code"]), ("grid", g["code"]))):
                times[step].append(text(level, code))
    commit = subprocess.run(["git", "-C", str(args.code), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    run = {"code": str(args.code), "commit": commit, "chains": args.chains, "seed": args.seed,
           "loadavg_at_start": [round(x, 2) for x in load_start],
           "loadavg_at_end": [round(x, 2) for x in os.getloadavg()],
           **{k: summary(v) for k, v in times.items()}}
    path = RESULTS / f"{args.out}.json"
    old = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    runs = old.get("runs", {})
    runs.setdefault(args.label, []).append(run)
    write_results(args.out, {"machine": machine(), "geodata": str(args.geodata), "database": args.db,
                             "what": "drill.panel_text_values + ui.panel.render_text, in-process, ms per click",
                             "runs": runs})


if __name__ == "__main__":
    main()
