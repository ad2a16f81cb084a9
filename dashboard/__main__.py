"""``python -m dashboard serve``: the production-shaped server behind ``make run``.

Starts gunicorn (several workers; the app is stateless, the cache is shared on disk or in Redis) and, unless
``DEMO_LIVE=0``, the live demo simulator that posts incidents through the real HTTP API.

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
    cmd = [sys.executable, "-m", "gunicorn", "--workers", str(args.workers), "--threads", "4",
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
    from .auth.cli import add_subparser as add_users_subparser  # `users add|list|passwd|disable|enable|role`

    add_users_subparser(sub)
    add_tiles_subparser(sub)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
