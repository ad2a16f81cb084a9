"""Scale curve (issue 9): how the server's read path grows with the store — 100k and 1M incidents on PostgreSQL and
SQLite, 10M on PostgreSQL.

    python -m bench.bench_scale                       # every size; generates what is missing (--reuse keeps it)
    python -m bench.bench_scale --sizes 100k,1m --backends sqlite --reuse --samples 20
    python -m bench.bench_scale --sizes 1m --backends postgresql --reuse --existing --samples 40 \
        --before /work/main --repeat 3             # this code and another checkout's, side by side


For each (size, back end) it (a) generates the store with ``python -m dashboard.demo history --incidents N``
(timed: generation + COPY load + aggregates rebuild) or, with ``--reuse``, keeps the one already there — kept
stores are named ``wx_scale_<N>`` (``--prefix`` for another name) (PostgreSQL databases beside ``--pg``, SQLite files under ``--sqlite-dir``);
(b) times (wall clock, and the measuring process's CPU time as ``<name>_cpu``: on a loaded machine the wall clock
mostly measures the wait for a core), with a cold cache (``cache=None`` / the null cache), over ``--samples`` random
periods (standard keys and custom from/to) and random units: ``views.kpi_bundle(engine, gd, None, period)``, ``views.lifecycle(engine, gd,
None, period, level, code)`` and the choropleth payload of ``/api/map/measures.json``
(``measure_payload``, found through ``dashboard/api/mapdata.py``) — median and p95; (c) reads the worker's RSS after those calls (current and peak,
``resource.getrusage``; each store is measured in a fresh process); (d) prints the curve and writes
``bench/results/scale.json`` with the machine (CPUs, load average before and after).

``--before CHECKOUT`` measures, for each store, the code of another checkout too, in a second measuring process
running at the same time (both niced, the same ``--seed``: the same periods and units), so a before/after on a loaded
machine compares two runs under the same load (the other checkout's ``dashboard`` package is imported instead of this
one's; the store must be at a migration that checkout knows, or ahead of it with the newer migration files copied in).
``--out NAME`` writes ``bench/results/NAME.json`` instead of ``scale.json``; ``--generation JSON`` (with ``--reuse
--existing``) keeps the figures of a kept store's generation, timed apart, beside its run.
``--repeat N`` measures each pick N times in a row and adds ``min_of_N``: per pick and call the minimum (wall clock
and CPU) — under load the steadier figure — beside the first pass.

The functions are imported when the measuring process starts and timed as they are then.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import secrets
import subprocess
import sys
import time
from pathlib import Path

from bench.common import ROOT, summary, write_results

SIZES = {"100k": 100_000, "1m": 1_000_000, "10m": 10_000_000}
PLAN = (("100k", "postgresql"), ("100k", "sqlite"), ("1m", "postgresql"), ("1m", "sqlite"), ("10m", "postgresql"))
CALIBRATED_SHARE = 0.5  # below 400k incidents the calibrated year is scaled down to about half of the store
STANDARD = ("today", "7d", "30d", "year", "2019")


def store_url(label: str, backend: str, pg: str, sqlite_dir: Path, prefix: str = "wx_scale") -> str:
    name = f"{prefix}_{label}"
    if backend == "sqlite":
        return f"sqlite:///{sqlite_dir / (name + '.sqlite3')}"
    return f"{pg.rstrip('/')}/{name}"


def ensure_pg_database(url: str) -> None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    u = make_url(url.replace("postgresql://", "postgresql+psycopg://", 1))
    admin = create_engine(u.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as c:
            if c.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": u.database}).first() is None:
                c.execute(text(f'CREATE DATABASE "{u.database}"'))
    finally:
        admin.dispose()


def stored_incidents(url: str) -> int | None:
    """Incidents in the store (None when it does not exist or has no schema yet)."""
    from sqlalchemy import func, select
    from sqlalchemy.exc import SQLAlchemyError

    from dashboard.store import make_engine
    from dashboard.store.models import Incident

    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        return None
    engine = make_engine(url)
    try:
        with engine.connect() as c:
            return int(c.execute(select(func.count()).select_from(Incident)).scalar_one())
    except SQLAlchemyError:
        return None
    finally:
        engine.dispose()


def generate(url: str, n: int) -> dict:
    """``python -m dashboard.demo history`` into ``url`` (wiping it first), in its own process; its JSON line."""
    scale = 1.0 if n >= 400_000 else n * CALIBRATED_SHARE / 200_000
    cmd = [sys.executable, "-m", "dashboard.demo", "history", "--db", url, "--incidents", str(n), "--reset",
           "--scale", f"{scale:.4f}", "--quiet"]
    t = time.perf_counter()
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if out.returncode != 0:
        raise RuntimeError(f"generation failed ({out.returncode}): {out.stderr[-2000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["wall_s"] = round(wall, 1)
    return result


def random_period(rng: random.Random, periods, now, first_day: str):
    import pandas as pd

    if rng.random() < 0.5:
        return periods.resolve(rng.choice(STANDARD), now=now)
    lo = pd.Timestamp(first_day)
    hi = pd.Timestamp(now).tz_convert("Asia/Shanghai").tz_localize(None).normalize()
    a = lo + pd.Timedelta(days=rng.randrange(max((hi - lo).days, 1)))
    b = min(hi, a + pd.Timedelta(days=rng.choice([0, 6, 30, 90, 365, 3 * 365])))
    return periods.resolve("custom", a.strftime("%Y-%m-%d"), b.strftime("%Y-%m-%d"), now=now)


def map_payload():
    """The choropleth payload function behind ``/api/map/measures.json`` and its measures, wherever
    ``dashboard/api/mapdata.py`` takes them from today (itself, or the map service it imports)."""
    from dashboard.api import mapdata

    for mod in (mapdata, getattr(mapdata, "maps", None)):
        if mod is not None and hasattr(mod, "measure_payload"):
            return mod.measure_payload, tuple(mod.MEASURES)
    raise RuntimeError("no measure_payload behind dashboard/api/mapdata.py")


def measure(url: str, samples: int, seed: int, repeat: int = 1, warm: int = 0) -> dict:
    """Time the three read paths on ``url`` with a cold cache; runs in its own process (see main). With ``repeat``
    > 1 each pick is measured that many times in a row: the first pass gives the usual figures, the minimum per pick
    and call ``min_of_<repeat>``. ``warm`` > 0: that many other picks (another seed) are run first and not measured —
    a process that has served before (the hierarchy and unit index built, the statements of the usual period shapes
    compiled, as in a running worker); no figure is cached (the cache is off) and the measured picks are new."""
    import pandas as pd

    from dashboard import create_app
    from dashboard.metrics import periods, views
    from dashboard.settings import Settings

    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-scale-{os.getpid()}"
    app = create_app(Settings(instance_dir=tmp, database_url=url, cache_url="null", tile_url="", demo_live=False,
                              secret_key=secrets.token_urlsafe(48)))
    svc = app.server.extensions["dashboard"]
    engine, gd = svc.engine, svc.geodata()
    h = views.hierarchy(gd)
    codes = {lv: sorted(c for (lv2, c) in h.names if lv2 == lv) for lv in ("town", "zone", "grid")}
    now = pd.Timestamp.now(tz="UTC")
    rng = random.Random(seed)

    def unit():  # a level first (the district as often as a grid), then one of its units
        lv = rng.choice(("district", "town", "zone", "grid"))
        return (lv, None) if lv == "district" else (lv, rng.choice(codes[lv]))

    payload, measures = map_payload()
    picks = [(random_period(rng, periods, now, "2019-01-01"), unit(), rng.choice(("towns", "zones", "grids")),
              rng.choice(measures)) for _ in range(samples)]
    if warm:
        wrng = random.Random(seed + 1000)
        with app.server.test_request_context("/"):
            for _ in range(warm):
                per, lv = random_period(wrng, periods, now, "2019-01-01"), wrng.choice(("district", "town", "zone"))
                code = None if lv == "district" else wrng.choice(codes[lv])
                views.kpi_bundle(engine, gd, None, per)
                views.lifecycle(engine, gd, None, per, lv, code)
                payload(wrng.choice(("towns", "zones", "grids")), wrng.choice(measures), per)
    names = ("kpi_bundle", "lifecycle", "map_measure")
    times = {k: [] for k in names}
    cpu = {k: [] for k in names}  # this process's CPU time (SQLite: all the work; PostgreSQL: the client's part)
    best = {k: [] for k in (*names, *(f"{k}_cpu" for k in names))}  # the minimum of ``repeat`` passes per pick
    detail = []
    with app.server.test_request_context("/"):
        for per, (level, code), layer, measure_key in picks:
            calls = ((lambda: views.kpi_bundle(engine, gd, None, per)),
                     (lambda: views.lifecycle(engine, gd, None, per, level, code)),
                     (lambda: payload(layer, measure_key, per)))
            passes = []
            for _ in range(max(repeat, 1)):
                wall, proc = [], []
                for call in calls:
                    t0, c0 = time.perf_counter(), time.process_time()
                    call()
                    wall.append((time.perf_counter() - t0) * 1000)
                    proc.append((time.process_time() - c0) * 1000)
                passes.append((wall, proc))
            (wall, proc) = passes[0]
            for i, k in enumerate(names):
                times[k].append(wall[i])
                cpu[k].append(proc[i])
                best[k].append(min(p[0][i] for p in passes))
                best[f"{k}_cpu"].append(min(p[1][i] for p in passes))
            detail.append({"period": [per.key, per.first_day, per.last_day], "unit": [level, code],
                           "layer": layer, "measure": measure_key, "ms": [round(x, 1) for x in wall],
                           # the process's peak RSS so far: which pick raised it
                           "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                           **({f"min_of_{repeat}_ms": [round(best[k][-1], 1) for k in names]} if repeat > 1 else {})})
    with open("/proc/self/status") as fh:
        rss_kb = next((int(line.split()[1]) for line in fh if line.startswith("VmRSS:")), 0)
    engine.dispose()
    return {"incidents": stored_incidents(url), **{k: summary(v) for k, v in times.items()},
            **{f"{k}_cpu": summary(v) for k, v in cpu.items()},
            "rss_mb": round(rss_kb / 1024, 1),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            **({f"min_of_{repeat}": {k: summary(v) for k, v in best.items()}} if repeat > 1 else {}),
            "samples": detail}


def measure_cmd(url: str, args, code: Path | None = None) -> list[str]:
    """The measuring process (niced when another runs beside it): this checkout's code, or ``code``'s."""
    cmd = [sys.executable, "-m", "bench.bench_scale", "--measure", url, "--samples", str(args.samples), "--seed",
           str(args.seed), "--repeat", str(args.repeat), "--warm", str(args.warm)]
    if code is not None:
        cmd += ["--code", str(code)]
    return (["nice", "-n", "10"] if args.before else []) + cmd


def run_measures(url: str, args) -> tuple[dict, dict | None]:
    """This code's figures on ``url`` and, with ``--before``, the other checkout's, measured at the same time."""
    procs = [subprocess.Popen(measure_cmd(url, args), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)]
    if args.before:
        procs.append(subprocess.Popen(measure_cmd(url, args, args.before), cwd=ROOT, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))
    out = []
    for p in procs:
        stdout, stderr = p.communicate()
        if p.returncode != 0:
            raise RuntimeError(f"measuring {url} failed: {stderr[-2000:]}")
        out.append(json.loads(stdout.strip().splitlines()[-1]))
    return out[0], (out[1] if len(out) > 1 else None)


def machine() -> dict:
    mem = next((int(line.split()[1]) // 1024 for line in open("/proc/meminfo") if line.startswith("MemTotal:")), None)
    return {"nproc": os.cpu_count(), "memory_mb": mem, "python": platform.python_version(),
            "platform": platform.platform()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default=",".join(SIZES), help="comma list of 100k,1m,10m")
    ap.add_argument("--backends", default="postgresql,sqlite")
    ap.add_argument("--reuse", action="store_true", help="keep a <prefix>_<N> store already holding ~N incidents")
    ap.add_argument("--existing", action="store_true",
                    help="with --reuse: measure only the stores already there, generate none")
    ap.add_argument("--samples", type=int, default=20)
    ap.add_argument("--seed", type=int, default=9)
    ap.add_argument("--pg", default=os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432"))
    ap.add_argument("--sqlite-dir", type=Path, default=ROOT / "instance" / "scale")
    ap.add_argument("--prefix", default="wx_scale", help="kept stores are named <prefix>_<size> (default wx_scale)")
    ap.add_argument("--note", action="append", default=[],
                    help="a note kept in the results (e.g. what else ran on the machine); repeatable")
    ap.add_argument("--before", type=Path, metavar="CHECKOUT",
                    help="also measure the code of another checkout (e.g. /work/main), side by side on each store")
    ap.add_argument("--warm", type=int, default=0,
                    help="run this many other picks first, unmeasured (a process that has served before)")
    ap.add_argument("--repeat", type=int, default=1,
                    help="measure each pick N times in a row; adds min_of_N (the minimum per pick and call)")
    ap.add_argument("--out", default="scale", help="result file bench/results/<out>.json (default scale)")
    ap.add_argument("--generation", type=Path, metavar="JSON",
                    help="with --reuse --existing: the generation's figures of the kept store (a JSON file), kept in "
                         "the results beside the run")
    ap.add_argument("--measure", help=argparse.SUPPRESS)  # internal: measure this URL, print JSON
    ap.add_argument("--code", type=Path, help=argparse.SUPPRESS)  # internal: import dashboard from this checkout
    args = ap.parse_args(argv)
    if args.measure:
        if args.code is not None:  # the other checkout's package (nothing of dashboard is imported yet)
            sys.path.insert(0, str(args.code.resolve()))
        print(json.dumps(measure(args.measure, args.samples, args.seed, args.repeat, args.warm), ensure_ascii=False))
        return 0

    sizes = [s.strip().lower() for s in args.sizes.split(",") if s.strip()]
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    bad = [s for s in sizes if s not in SIZES] + [b for b in backends if b not in ("postgresql", "sqlite")]
    if bad:
        ap.error(f"unknown size or back end: {', '.join(bad)}")
    args.sqlite_dir.mkdir(parents=True, exist_ok=True)
    figures = {"machine": machine(), "load_before": [round(x, 2) for x in os.getloadavg()], "samples": args.samples,
               "repeat": args.repeat, "warm": args.warm, "runs": []}
    if args.before:
        figures["before"] = {"code": f"{args.before} at {git_head(args.before)}", "runs": []}
        figures["code"] = git_head(ROOT)
    if args.note:
        figures["notes"] = args.note
    for label, backend in PLAN:
        if label not in sizes or backend not in backends:
            continue
        n = SIZES[label]
        url = store_url(label, backend, args.pg, args.sqlite_dir, args.prefix)
        if backend == "postgresql":
            ensure_pg_database(url)
        run = {"size": label, "backend": backend, "store": url.rsplit("/", 1)[-1]}
        have = stored_incidents(url)
        if args.reuse and have is not None and abs(have - n) <= 0.05 * n:
            run["generated"] = json.loads(args.generation.read_text()) if args.generation else None
        elif args.existing:
            print(f"no {run['store']} ({backend}) with ~{n:,} incidents: skipped", flush=True)
            continue
        else:
            print(f"generating {n:,} incidents into {run['store']} ({backend}) …", flush=True)
            run["generated"] = generate(url, n)
            print(f"  {run['generated']['wall_s']} s", flush=True)
        run["load_before"] = [round(x, 2) for x in os.getloadavg()]
        mine, theirs = run_measures(url, args)
        run.update(mine)
        run["load_after"] = [round(x, 2) for x in os.getloadavg()]
        figures["runs"].append(run)
        if theirs is not None:
            figures["before"]["runs"].append({**{k: run[k] for k in ("size", "backend", "store", "load_before",
                                                                        "load_after")}, **theirs})
        print(f"  {label} {backend}: kpi p50 {run['kpi_bundle']['median_ms']} ms (CPU "
              f"{run['kpi_bundle_cpu']['median_ms']}), lifecycle p50 {run['lifecycle']['median_ms']} ms, map p50 "
              f"{run['map_measure']['median_ms']} ms, RSS {run['rss_mb']} MB, load {run['load_before'][0]}", flush=True)
    figures["load_after"] = [round(x, 2) for x in os.getloadavg()]

    head = f"{'size':>5} {'backend':<10} {'incidents':>11} {'generate s':>10} | " \
           f"{'kpi p50/p95 ms':>16} {'lifecycle p50/p95':>18} {'map p50/p95':>16} | {'RSS MB':>7}"
    print("\n" + head + "\n" + "-" * len(head))
    for r in figures["runs"]:
        gen = r["generated"].get("wall_s", r["generated"].get("total_s")) if r["generated"] else "reused"
        cell = lambda k: f"{r[k]['median_ms']:.0f}/{r[k]['p95_ms']:.0f}"  # noqa: E731
        print(f"{r['size']:>5} {r['backend']:<10} {r['incidents'] or 0:>11,} {gen!s:>10} | {cell('kpi_bundle'):>16} "
              f"{cell('lifecycle'):>18} {cell('map_measure'):>16} | {r['rss_mb']:>7}")
    for b in (figures.get("before") or {}).get("runs", []):
        cell = lambda k: f"{b[k]['median_ms']:.0f}/{b[k]['p95_ms']:.0f}"  # noqa: E731
        print(f"{b['size']:>5} {b['backend']:<10} {'(before)':>11} {'':>10} | {cell('kpi_bundle'):>16} "
              f"{cell('lifecycle'):>18} {cell('map_measure'):>16} | {b['rss_mb']:>7}")
    if args.repeat > 1:
        key = f"min_of_{args.repeat}"
        print(f"\n{key}: p50/p95 ms (wall; CPU)")
        for label, rs in (("after", figures["runs"]), ("before", (figures.get("before") or {}).get("runs", []))):
            for r in rs:
                m = r[key]
                print(f"  {label:<6} {r['size']} {r['backend']}: " + ", ".join(
                    f"{k} {m[k]['median_ms']:.0f}/{m[k]['p95_ms']:.0f} ({m[k + '_cpu']['median_ms']:.0f}/"
                    f"{m[k + '_cpu']['p95_ms']:.0f})" for k in ("kpi_bundle", "lifecycle", "map_measure")))
    write_results(args.out, figures)
    return 0


def git_head(path: Path) -> str:
    out = subprocess.run(["git", "-C", str(path), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return out.stdout.strip() or "?"


if __name__ == "__main__":
    raise SystemExit(main())
