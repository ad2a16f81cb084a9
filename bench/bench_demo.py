"""Time the default demo history (`python -m dashboard.demo history`) into a fresh SQLite file.

    .venv/bin/python bench/bench_demo.py [--incidents N] [--db URL] [--keep]

Prints the generation / write / total seconds and the row counts, and writes them to bench/results/demo.json.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--incidents", type=int, default=None)
    p.add_argument("--db", default=None, help="default: a new SQLite file in a temp dir")
    p.add_argument("--keep", action="store_true", help="keep the temporary database")
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "demo.json"))
    args = p.parse_args()

    from dashboard.demo.history import run_history
    from dashboard.store import frames as F
    from dashboard.metrics import kpis as K

    tmp = tempfile.mkdtemp(prefix="bench_demo_")
    url = args.db or f"sqlite:///{Path(tmp) / 'demo.sqlite3'}"
    t0 = time.perf_counter()
    out = run_history(url, incidents=args.incidents, reset=True, progress=True)
    wall = time.perf_counter() - t0

    from dashboard.geodata import load_geodata
    from dashboard.settings import Settings
    from dashboard.store import make_engine

    engine = make_engine(url)
    start, end = K.calendar_year(2019)
    t1 = time.perf_counter()
    inc = F.load_incidents(engine, start, end)
    ins = F.load_inspections(engine, start, end)
    load_s = time.perf_counter() - t1
    cards = K.all_kpis(inc, ins, load_geodata(Settings.from_env().geodata_dir).grids, start, end)
    engine.dispose()

    result = {
        "when": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
        "backend": url.split(":", 1)[0],
        "incidents_flag": args.incidents,
        "rows": {k: out[k] for k in ("incidents", "events", "inspections")},
        "seconds": {"generate": out["generate_s"], "write": out["write_s"], "total": out["total_s"],
                    "wall_incl_migrations": round(wall, 2), "load_2019_frames": round(load_s, 2)},
        "district_2019": {k: (round(v, 4) if isinstance(v, float) else v) for k, v in cards.items()},
    }
    print(json.dumps(result, ensure_ascii=False, indent=2))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    if not args.keep and not args.db:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
