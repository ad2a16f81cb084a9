"""``python -m dashboard.demo history|live`` — see :mod:`dashboard.demo.history` and :mod:`dashboard.demo.live`."""
from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import sys


def _rate(value: str) -> float:
    """``30``, ``30/min`` or ``2/s`` → incidents per minute."""
    v = value.strip().lower()
    num, _, unit = v.partition("/")
    n = float(num)
    unit = unit or "min"
    factor = {"s": 60.0, "sec": 60.0, "min": 1.0, "m": 1.0, "h": 1 / 60.0, "hour": 1 / 60.0}.get(unit)
    if factor is None:
        raise argparse.ArgumentTypeError(f"rate unit must be /s, /min or /h, got {value!r}")
    if n < 0:
        raise argparse.ArgumentTypeError("rate must be >= 0")
    return n * factor


def _count(value: str) -> int:
    """``1000000``, ``1_000_000``, ``100k`` or ``10m`` → an incident count (> 0)."""
    v = value.strip().lower().replace("_", "")
    factor = {"k": 1_000, "m": 1_000_000}.get(v[-1:], 1)
    try:
        n = int(float(v[:-1] if factor > 1 else v) * factor)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a count: {value!r}") from None
    if n <= 0:
        raise argparse.ArgumentTypeError("the count must be > 0")
    return n


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m dashboard.demo", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)

    h = sub.add_parser("history", help="generate calendar 2018 and 2019 + the recent days into the database")
    h.add_argument("--db", help="SQLAlchemy URL, e.g. postgresql://user@host:5432/db "
                                "(default: DATABASE_URL / the instance SQLite file)")
    h.add_argument("--seed", type=int, default=20190424)
    h.add_argument("--incidents", type=_count, default=None,
                   help="total incidents, e.g. 1000000 or 10m: what the calibrated demo does not hold goes to the "
                        "5 years before the recent days, generated and loaded in chunks (COPY on PostgreSQL)")
    h.add_argument("--recent-days", type=int, default=30)
    h.add_argument("--scale", type=float, default=1.0, help="shrink everything (tests); 1 = the seed's figures")
    h.add_argument("--now", help="fix 'now' (ISO, UTC) for a reproducible recent window")
    h.add_argument("--geodata", help="geodata directory (default: GEODATA_DIR / geodata/)")
    h.add_argument("--reset", action="store_true", help="wipe incidents, events and inspections first")
    h.add_argument("--skip-if-present", "--if-missing", dest="skip_if_present", action="store_true",
                   help="generate only when the database holds no demo data yet (exit 0 otherwise)")
    h.add_argument("--quiet", action="store_true", help="no progress bar")

    lv = sub.add_parser("live", help="post incidents through the HTTP API and move open cases along the loop")
    lv.add_argument("--url", default="http://127.0.0.1:8050")
    lv.add_argument("--rate", type=_rate, default=6.0, help="new incidents per minute, e.g. 6/min")
    lv.add_argument("--token", default="demo-token")
    lv.add_argument("--duration", type=float, default=None, help="stop after S seconds")
    lv.add_argument("--speed", type=float, default=60.0, help="time compression of lifecycle waits (×)")
    lv.add_argument("--seed", type=int, default=None)
    lv.add_argument("--geodata", help="geodata directory")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    if args.cmd == "history":
        from .history import BulkSpanError, DemoDataPresent, run_history

        now = None
        if args.now:
            now = dt.datetime.fromisoformat(args.now)
            if now.tzinfo is not None:
                now = now.astimezone(dt.timezone.utc).replace(tzinfo=None)
        try:
            out = run_history(args.db, seed=args.seed, incidents=args.incidents, recent_days=args.recent_days,
                              reset=args.reset, scale=args.scale, now=now, geodata_dir=args.geodata,
                              progress=not args.quiet, if_present="skip" if args.skip_if_present else "refuse")
        except DemoDataPresent as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 3
        except BulkSpanError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        if out.get("skipped"):
            print("demo data already present: nothing to do", file=sys.stderr)
        print(json.dumps(out, ensure_ascii=False))
        return 0

    from .live import main_live

    return main_live(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
