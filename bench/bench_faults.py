"""Fault drills at full size (issue 11), against real gunicorn workers, a private Redis and a private PostgreSQL
started for the run on free loopback ports (the machine's own services are not touched):

- ``kill9``: 2 clients post reports at 200/s in all (batches of 10; ``--batch 1`` for single POSTs, which this
  2-core machine, clients included, serves at 90-140/s); the whole server is SIGKILLed after ``--n`` (5,000) were
  answered 201; after a restart every one is there with its event, and ``aggregates check`` compares the KPI
  aggregates with the rows — on SQLite and on PostgreSQL;
- ``redis``: 3 viewers and 1 ingest client; Redis is killed for ``--down`` seconds, then started again: answers,
  5xx and p95 per phase;
- ``pg_restart``: 2 clients post batches of 25; PostgreSQL is stopped for 3 s and started again: 503s (each with
  Retry-After), seconds to recover, acknowledged items missing afterwards.

    python -m bench.bench_faults [--n 5000] [--down 10]

The drills are the ones ``tests/integration/test_faults.py`` runs at a small size. Results: bench/results/faults.json
with the machine's core count and load average before and after.
"""
from __future__ import annotations

import argparse
import os
import platform
import tempfile
from pathlib import Path

from bench.common import write_results


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def main(argv=None) -> int:
    from tests.integration.test_faults import PrivatePostgres, kill9_drill, pg_restart_drill, redis_drill

    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=5000, help="acknowledged reports before the SIGKILL")
    ap.add_argument("--down", type=float, default=10, help="seconds Redis stays down")
    ap.add_argument("--clients", type=int, default=2, help="posting clients in the kill -9 drill (200/s in all)")
    ap.add_argument("--workers", type=int, default=2, help="gunicorn workers in the kill -9 drill")
    ap.add_argument("--batch", type=int, default=10, help="reports per request in the kill -9 drill (1: single POSTs)")
    ap.add_argument("--only", choices=["kill9", "redis", "pg_restart"], help="run one drill")
    args = ap.parse_args(argv)
    figures = {"machine": {"cores": os.cpu_count(), "python": platform.python_version(), "load_before": _load()}}
    with tempfile.TemporaryDirectory(prefix="bench-faults-") as tmp:
        base = Path(tmp)
        if args.only in (None, "kill9"):
            out = {}
            (base / "sqlite").mkdir()
            out["sqlite"] = kill9_drill(base / "sqlite", f"sqlite:///{base / 'sqlite' / 'wuxing.sqlite3'}",
                                        n_ack=args.n, clients=args.clients, workers=args.workers,
                                        batch=args.batch)
            pg = PrivatePostgres(base).init().start()
            try:
                (base / "pg").mkdir()
                out["postgresql"] = kill9_drill(base / "pg", pg.url, n_ack=args.n, clients=args.clients,
                                                workers=args.workers, batch=args.batch)
            finally:
                pg.remove()
            figures["kill9"] = out
        if args.only in (None, "redis"):
            (base / "redis").mkdir()
            redis = redis_drill(base / "redis", up_s=10, down_s=args.down, back_s=5)
            redis.pop("log")
            figures["redis"] = redis
        if args.only in (None, "pg_restart"):
            (base / "pgr").mkdir()
            pgr = pg_restart_drill(base / "pgr", before_s=5, down_s=3, after_s=10)
            pgr.pop("log")
            figures["pg_restart"] = pgr
    figures["machine"]["load_after"] = _load()
    write_results("faults", figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
