"""``python -m dashboard serve``: the production-shaped server behind ``make run``.

Starts gunicorn (several workers; the app is stateless, the cache is shared on disk or in Redis) and, unless
``DEMO_LIVE=0``, the live demo simulator that posts incidents through the real HTTP API. When alert push channels
are configured (``NOTIFY_*``) this process also runs ONE notification dispatcher in a thread (not one per worker);
``python -m dashboard notify run|status|requeue ID`` runs one in the foreground, shows the outbox, requeues.

Also ``aggregates rebuild|check``, ``users …`` (``dashboard/auth/cli.py``) and ``tiles info|pack`` (the local
basemap file, ``TILE_FILE``: see README "Offline basemap").
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


def _place(settings: Settings) -> str:
    """The district served, as the geodata names it (``services.units``: the one source of unit names)."""
    from .geodata import load_geodata
    from .services import units

    try:
        return units.title("zh", load_geodata(settings.geodata_dir))
    except (OSError, ValueError) as e:  # the workers say what is missing; the message needs no name
        print(f"geodata: {e}", file=sys.stderr)
        return ""


def serve(args) -> int:
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = Settings.from_env()
    from .services.tiles import TileFileError, open_files

    try:
        open_files(settings)  # a bad TILE_FILE: say so here, not in every worker's traceback
    except TileFileError as e:
        print(f"cannot start: {e}", file=sys.stderr)
        return 2
    host, port = args.host or settings.host, args.port or settings.port
    # 4 threads per worker for page loads and callbacks, plus one per open live stream (STREAM_SLOTS): a stream
    # waits on a condition and costs no CPU until a change, and never holds up an ordinary request
    cmd = [sys.executable, "-m", "gunicorn", "--workers", str(args.workers),
           "--threads", str(4 + settings.stream_slots), "-c", "python:dashboard.gunicorn_conf",
           "--bind", f"{host}:{port}", "--timeout", "120", "--graceful-timeout", "10",
           "--access-logfile", "-", "app:server"]
    children = [subprocess.Popen(cmd)]
    print(f"{_place(settings)}指挥中心 dashboard: http://{host}:{port}/  (Ctrl-C to stop)", flush=True)

    def stop(*_):
        for child in children:
            if child.poll() is None:
                child.terminate()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    healthy = _wait_healthy(f"http://{host}:{port}/healthz")  # the workers have migrated the store by then
    dispatcher = None
    if healthy:
        from .services import notify

        dispatcher = notify.start_dispatcher(settings)  # one per server; None without channels / NOTIFY_DISPATCH=0
    if settings.demo_live and healthy:
        token = settings.api_tokens[0] if settings.api_tokens else ""
        children.append(subprocess.Popen([sys.executable, "-m", "dashboard.demo", "live", "--url",
                                          f"http://{host}:{port}", "--token", token,
                                          "--rate", os.environ.get("DEMO_RATE", "6/min")]))
    code = children[0].wait()
    stop()
    if dispatcher is not None:
        thread, stop_dispatch = dispatcher
        stop_dispatch.set()
        thread.join(timeout=settings.notify_timeout_s + 5)
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


def notify_cmd(args) -> int:
    """``run``: a dispatcher in the foreground until SIGTERM / Ctrl-C (``--once``: send what is due, then exit).
    ``status``: the channels (masked) and the outbox. ``requeue ID``: put a dead message back (audited)."""
    import json
    import logging
    import threading

    from .services import notify
    from .store import init_db, make_engine, session_factory

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = Settings.from_env()
    try:
        configured = notify.channels(settings)
    except notify.ConfigError as e:
        print(f"notify: {e}", file=sys.stderr)
        return 2
    engine = make_engine(args.db or settings.sqlalchemy_url)
    init_db(engine)
    sessions = session_factory(engine)
    if args.action == "run":
        if not configured:
            print("notify: no channel configured (NOTIFY_DINGTALK, NOTIFY_WECOM, NOTIFY_WEBHOOK)", file=sys.stderr)
            return 2
        dispatcher = notify.Dispatcher(settings, sessions)
        stop = threading.Event()
        if args.once:
            while dispatcher.run_once()["claimed"]:
                pass
            return 0
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        dispatcher.run(stop)
        return 0
    if args.action == "status":
        body = notify.outbox(state=args.state, limit=args.limit, sessions=sessions, settings=settings)
        if args.json:
            print(json.dumps(body, ensure_ascii=False, indent=1))
            return 0
        for c in body["channels"]:
            n = body["counts"].get(c["key"], {})
            print(f"{c['key']:<22} {c['target']}  " + "  ".join(f"{s}={n.get(s, 0)}" for s in notify.STATES))
        for key in body["unconfigured"]:
            print(f"{key:<22} (not configured here)  " + "  ".join(
                f"{s}={body['counts'][key].get(s, 0)}" for s in notify.STATES))
        for it in body["items"]:
            state = "sending" if it["sending"] else it["state"]
            print(f"#{it['id']:<6} {it['message_id']:<26} {it['channel']:<22} {state:<8} attempts={it['attempts']}"
                  f"  next={it['next_attempt_at'] or '-'}  sent={it['sent_at'] or '-'}  {it['last_error'] or ''}")
        return 0
    import getpass

    try:
        who = getpass.getuser()
    except Exception:  # noqa: BLE001 - no name for this uid
        who = "?"
    entry = {"actor": f"cli:{who}"[:64], "role": "cli", "address": None, "action": "notify_requeue", "detail": None}
    try:
        row, changed = notify.requeue(args.id, sessions=sessions, audit=entry)
    except notify.RowNotFound:
        print(f"notify: no outbox row {args.id}", file=sys.stderr)
        return 2
    if not changed:
        print(f"notify: row {args.id} is {row['state']}, not dead: nothing changed", file=sys.stderr)
        return 2
    print(f"requeued #{args.id} ({row['message_id']} → {row['channel']})")
    return 0


def tiles_cmd(args) -> int:
    """``info FILE``: what a basemap file holds. ``pack DIR OUT``: a z/x/y tile tree into a new MBTiles file.
    Exit 0 done, 2 refused (missing or foreign file, no tiles, OUT exists …)."""
    import json

    from .store import tiles

    try:
        if args.tiles_command == "pack":
            r = tiles.pack_directory(args.dir, args.out, name=args.name or "", attribution=args.attribution or "",
                                     scheme=args.scheme, force=args.force)
            print(f"packed {r.tiles:,} {r.format} tiles (zoom {r.min_zoom}-{r.max_zoom}) into {r.out}"
                  + (f"; ignored {r.ignored:,} other files" if r.ignored else ""))
            print("bounds (west,south,east,north): " + ",".join(f"{v:.6f}" for v in r.bounds))
            return 0
        reader = tiles.open_tiles(args.file)
        info = reader.info
        out = {"file": info.path, "kind": info.kind, "format": info.format, "name": info.name,
               "attribution": info.attribution, "min_zoom": info.min_zoom, "max_zoom": info.max_zoom,
               "bounds": list(info.bounds) if info.bounds else None, "tiles": tiles.count_tiles(reader)}
    except tiles.TileFileError as e:
        print(f"refused: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(out, ensure_ascii=False))
    else:
        for key, value in out.items():
            if key == "bounds":
                value = ",".join(f"{v:.6f}" for v in value) + "  (west,south,east,north)" if value else "(not given)"
            print(f"{key:12s} {value if value not in ('', None) else '(not given)'}")
    return 0


def add_tiles_subparser(sub) -> None:
    t = sub.add_parser("tiles", help="the local basemap file (TILE_FILE): `tiles info FILE`, `tiles pack DIR OUT`")
    tsub = t.add_subparsers(dest="tiles_command", required=True)
    i = tsub.add_parser("info", help="format, zooms, bounds and tile count of an MBTiles or PMTiles file")
    i.add_argument("file")
    i.add_argument("--json", action="store_true", help="one JSON object instead of lines")
    pk = tsub.add_parser("pack", help="pack a <z>/<x>/<y>.png|jpg|webp tile tree into a new MBTiles file")
    pk.add_argument("dir", help="the tree's top folder (holding the zoom folders)")
    pk.add_argument("out", help="the MBTiles file to write (refused when it exists, unless --force)")
    pk.add_argument("--name", help="the basemap's name (default: the folder's)")
    pk.add_argument("--attribution", help="attribution shown on the map, e.g. '© 天地图·浙江'")
    pk.add_argument("--scheme", choices=["xyz", "tms"], default="xyz",
                    help="row order of the tree: xyz (row 0 north: downloaders, 天地图, gdal2tiles --xyz; default) "
                         "or tms (row 0 south: gdal2tiles without --xyz)")
    pk.add_argument("--force", action="store_true", help="replace OUT when it exists")
    t.set_defaults(func=tiles_cmd)


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
    n = sub.add_parser("notify", help="alert push: `notify run` (a dispatcher), `status`, `requeue ID`")
    n.add_argument("--db", help="database URL (default: DATABASE_URL / the embedded SQLite)")
    nsub = n.add_subparsers(dest="action", required=True)
    nr = nsub.add_parser("run", help="send queued alert messages until stopped (any number may run at once)")
    nr.add_argument("--once", action="store_true", help="send what is due now, then exit")
    ns = nsub.add_parser("status", help="the channels (masked) and the newest outbox rows")
    ns.add_argument("--state", choices=["pending", "sent", "dead"])
    ns.add_argument("--limit", type=int, default=30)
    ns.add_argument("--json", action="store_true")
    nq = nsub.add_parser("requeue", help="put a dead message back in the queue (recorded in the audit log)")
    nq.add_argument("id", type=int)
    n.set_defaults(func=notify_cmd)
    from .auth.cli import add_subparser as add_users_subparser  # `users add|list|passwd|disable|enable|role`

    add_users_subparser(sub)
    add_tiles_subparser(sub)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
