"""``python -m dashboard serve``: the production-shaped server behind ``make run``.

Starts gunicorn (several workers; the app is stateless, the cache is shared on disk or in Redis) and, unless
``DEMO_LIVE=0``, the live demo simulator that posts incidents through the real HTTP API.
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
import urllib.request

from .settings import Settings


def _wait_healthy(url: str, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return True
        except OSError:
            time.sleep(0.3)
    return False


def serve(args) -> int:
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = Settings.from_env()
    host, port = args.host or settings.host, args.port or settings.port
    # 4 threads per worker for page loads and callbacks, plus one per open live stream (STREAM_SLOTS): a stream
    # waits on a condition and costs no CPU until a change, and never holds up an ordinary request
    cmd = [sys.executable, "-m", "gunicorn", "--workers", str(args.workers),
           "--threads", str(4 + settings.stream_slots), "-c", "python:dashboard.gunicorn_conf",
           "--bind", f"{host}:{port}", "--timeout", "120", "--graceful-timeout", "10",
           "--access-logfile", "-", "app:server"]
    children = [subprocess.Popen(cmd)]
    print(f"吴兴区指挥中心 dashboard: http://{host}:{port}/  (Ctrl-C to stop)", flush=True)

    def stop(*_):
        for child in children:
            if child.poll() is None:
                child.terminate()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    healthy = _wait_healthy(f"http://{host}:{port}/healthz")
    if settings.demo_live and healthy:
        token = settings.api_tokens[0] if settings.api_tokens else ""
        children.append(subprocess.Popen([sys.executable, "-m", "dashboard.demo", "live", "--url",
                                          f"http://{host}:{port}", "--token", token,
                                          "--rate", os.environ.get("DEMO_RATE", "6/min")]))
    code = children[0].wait()
    stop()
    for child in children[1:]:
        child.wait(timeout=15)
    return code


def aggregates_cmd(args) -> int:
    """``rebuild``: recompute every aggregate from the incident, event and inspection rows (one transaction).
    ``check``: rebuild into a scratch copy of the counts and compare (exit 1 on a difference)."""
    import time

    from .store import aggregates, init_db, make_engine

    engine = make_engine(args.db or Settings.from_env().sqlalchemy_url)
    init_db(engine)
    t0 = time.perf_counter()
    if args.action == "rebuild":
        stats = aggregates.rebuild(engine)
        print(f"aggregates rebuilt from {stats['incidents']:,} incidents and {stats['inspections']:,} inspections "
              f"({stats['rows']:,} rows) in {time.perf_counter() - t0:.1f} s")
        return 0
    diff = aggregates.check(engine)
    for line in diff:
        print(line)
    print("aggregates match the rows" if not diff else f"{len(diff)} differences")
    return 0 if not diff else 1


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dashboard")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("serve", help="serve the dashboard with gunicorn (+ live demo unless DEMO_LIVE=0)")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.add_argument("--workers", type=int, default=2)
    p.set_defaults(func=serve)
    a = sub.add_parser("aggregates", help="the KPI aggregates: `aggregates rebuild` recomputes them from the rows")
    a.add_argument("action", choices=["rebuild", "check"])
    a.add_argument("--db", help="database URL (default: DATABASE_URL / the embedded SQLite)")
    a.set_defaults(func=aggregates_cmd)
    from .auth.cli import add_subparser as add_users_subparser  # `users add|list|passwd|disable|enable|role`

    add_users_subparser(sub)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
