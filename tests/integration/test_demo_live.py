"""The live simulator against the real app served in a thread: it posts incidents through the API, moves them
only along allowed steps, survives a server restart (retries with backoff) and stops on its stop event."""
from __future__ import annotations

import threading
import time

import pandas as pd
import pytest
from sqlalchemy import text

from dashboard.demo.live import run_live
from dashboard.store import lifecycle

TOKEN = "test-token"


class Server:
    def __init__(self, app, port=0):
        from werkzeug.serving import make_server

        self.srv = make_server("127.0.0.1", port, app.server, threaded=True)
        self.port = self.srv.server_port
        self.thread = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.srv.shutdown()
        self.srv.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def dash_app(tmp_path, geodata_dir):
    from dashboard import create_app
    from dashboard.settings import Settings

    settings = Settings(instance_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'live.sqlite3'}",
                        geodata_dir=geodata_dir, cache_url="null", tile_url="", demo_live=False,
                        api_tokens=(TOKEN,))
    return create_app(settings), settings


def test_live_posts_moves_survives_restart_and_stops(dash_app):
    app, settings = dash_app
    server = Server(app)
    url = f"http://127.0.0.1:{server.port}"
    stop = threading.Event()
    result = {}
    t = threading.Thread(target=lambda: result.update(run_live(
        url, TOKEN, 240.0, stop, speed=200_000, seed=3, geodata_dir=settings.geodata_dir, min_wait_s=0.05,
        max_wait_s=0.5)), daemon=True)
    t.start()
    time.sleep(4)
    server.stop()  # the server goes away for a while ...
    time.sleep(2.5)
    server = Server(app, port=server.port)  # ... and comes back on the same port
    time.sleep(4)
    stop.set()
    t.join(timeout=15)
    server.stop()
    assert not t.is_alive(), "run_live must return once the stop event is set"
    assert result["posted"] >= 5 and result["transitions"] >= 10
    assert result["retries"] >= 1

    from dashboard.store import make_engine

    engine = make_engine(settings.sqlalchemy_url)
    with engine.connect() as c:
        ev = pd.read_sql(text("SELECT incident_id, from_status, to_status, actor_role FROM incident_events "
                              "ORDER BY incident_id, seq"), c)
        n_inc = c.execute(text("SELECT count(*) FROM incidents")).scalar_one()
        late = c.execute(text("SELECT max(id) FROM incidents")).scalar_one()
    engine.dispose()
    assert n_inc == result["posted"]
    steps = {(a, b) for a, b in zip(ev["from_status"], ev["to_status"]) if isinstance(a, str)}
    assert steps <= set(lifecycle.ALLOWED_STEPS)
    assert (ev.loc[ev["to_status"] == "verified", "actor_role"] == "grid_worker").all()
    assert (ev["to_status"] == "closed").any()
    assert late is not None
