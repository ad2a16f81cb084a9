"""Serve the dashboard of another checkout (``--code``, e.g. the lead's ``main``) on an instance, for a bench's
before/after run: ``python -m bench.serve_app --code ../main --instance DIR --settings JSON`` prints the URL on its
first line and serves until stdin closes. Its settings are those of :func:`bench.common.served`."""
from __future__ import annotations

import argparse
import json
import sys
import threading
from pathlib import Path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--code", required=True, help="the checkout whose dashboard package is served")
    ap.add_argument("--instance", required=True)
    ap.add_argument("--settings", default="{}", help="Settings keyword arguments as JSON")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(Path(args.code).resolve()))  # before anything imports dashboard
    import logging

    from werkzeug.serving import make_server

    from dashboard import create_app
    from dashboard.settings import Settings

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    kw = {k: tuple(v) if isinstance(v, list) else v for k, v in json.loads(args.settings).items()}
    kw.setdefault("demo_users", True)
    app = create_app(Settings(instance_dir=Path(args.instance), tile_url="", demo_live=False, **kw))
    server = make_server("127.0.0.1", 0, app.server, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"http://127.0.0.1:{server.server_port}", flush=True)
    sys.stdin.read()  # the parent closes it to stop us
    server.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
