"""``Server-Timing``: each answer says how long the server took (``dashboard.timing``), the compression included."""
from __future__ import annotations

import re
import time

from flask import Flask, request

from dashboard.timing import ServerTiming


def _dur(resp) -> float:
    m = re.fullmatch(r"app;dur=(\d+\.\d)", resp.headers.get("Server-Timing", ""))
    assert m, resp.headers
    return float(m.group(1))


def test_each_answer_carries_the_server_s_time():
    app = Flask(__name__)

    @app.get("/slow")
    def slow():
        time.sleep(0.06)
        return {"ok": True}

    @app.get("/quick")
    def quick():
        return {"ok": True}

    @app.after_request
    def compress_like(resp):  # work done after the view (as Flask-Compress's) counts too
        if request.path == "/slow":
            time.sleep(0.04)
        return resp

    app.wsgi_app = ServerTiming(app.wsgi_app)
    c = app.test_client()
    slow = _dur(c.get("/slow"))
    assert slow >= 100.0
    assert 0.0 <= _dur(c.get("/quick")) < slow
    assert _dur(c.get("/missing")) >= 0.0  # an error answer too (404)


def test_the_app_times_its_answers(tmp_path):
    from dashboard import create_app
    from dashboard.settings import Settings

    app = create_app(Settings(instance_dir=tmp_path, tile_url="", demo_live=False, cache_url="null"),
                     with_store=False)
    resp = app.server.test_client().get("/healthz")
    assert resp.status_code == 200 and _dur(resp) >= 0.0
