"""Fixtures for the store / incident API / Open311 suites: each runs on SQLite and on PostgreSQL.

- ``backend`` engine per back end, once per session: SQLite file in a temp dir; PostgreSQL in a fresh schema
  of the local ``test`` database (dropped at the end). PostgreSQL unreachable: fail when ``CI=true``,
  otherwise skip with the reason.
- ``db``: the engine with empty tables (rows deleted before each test).
- ``app`` / ``client``: a bare Flask app with ``Services`` and :func:`register_incident_api` — no Dash.
- ``geo``: the real geodata (``geodata/``; built into a temp dir by the geodata builder when the committed
  files are not there yet).
"""
from __future__ import annotations

import os
import uuid
from pathlib import Path

import flask
import pytest
from sqlalchemy import create_engine, text

from dashboard.store import init_db, make_engine, session_factory
from tests.conftest import reading_client, unavailable

ROOT = Path(__file__).resolve().parents[2]
PG_BASE_URL = os.environ.get("TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
TOKEN = "test-token"  # every scope
READ_TOKEN = "reader-token"  # scope read: no personal data
INGEST_TOKEN = "ingest-token"  # scope ingest: may post, may not read


@pytest.fixture(scope="session")
def geodata_dir(tmp_path_factory) -> Path:
    committed = ROOT / "geodata"
    if (committed / "grids.geojson").exists() and (committed / "district.geojson").exists():
        return committed
    from dashboard.geodata.build import build

    out = tmp_path_factory.mktemp("geodata")
    report = build(out)
    assert report.ok, report
    return out


@pytest.fixture(scope="session")
def geo(geodata_dir):
    from dashboard.geodata import load_geodata

    return load_geodata(geodata_dir)


def _pg_available() -> str | None:
    try:
        eng = create_engine(PG_BASE_URL, connect_args={"connect_timeout": 3})
        with eng.connect() as c:
            c.execute(text("SELECT 1"))
        eng.dispose()
        return None
    except Exception as e:  # noqa: BLE001 - any failure means "not reachable"
        return f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def backend(request, tmp_path_factory):
    """(name, url, engine) with the schema migrated to head."""
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("sqlite") / "store.sqlite3"
        url = f"sqlite:///{path}"
        engine = make_engine(url)
        init_db(engine)
        yield "sqlite", url, engine
        engine.dispose()
        return
    problem = _pg_available()
    if problem:
        unavailable(f"PostgreSQL at {PG_BASE_URL} is not reachable ({problem})")
    schema = f"t_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_BASE_URL)
    with admin.begin() as c:
        c.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = f"{PG_BASE_URL}?options=-csearch_path%3D{schema}"
    engine = make_engine(url)
    try:
        init_db(engine)
        yield "postgresql", url, engine
    finally:
        engine.dispose()
        with admin.begin() as c:
            c.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def wipe(engine) -> None:
    with engine.begin() as c:
        for table in ("incident_events", "incidents", "inspections", "hazard_sites", "agg_counts", "agg_category",
                      "agg_dept", "agg_hist", "agg_units", "inspection_units"):
            c.execute(text(f"DELETE FROM {table}"))


@pytest.fixture
def db(backend):
    name, url, engine = backend
    wipe(engine)
    return engine


@pytest.fixture
def sessions(db):
    return session_factory(db)


@pytest.fixture
def app(backend, db, geodata_dir, tmp_path):
    from dashboard.api import register_incident_api
    from dashboard.cache import init_cache
    from dashboard.context import Services
    from dashboard.settings import Settings

    _, url, engine = backend
    settings = Settings(instance_dir=tmp_path, database_url=url, cache_url="null", geodata_dir=geodata_dir,
                        api_tokens=(TOKEN, "second-token", f"{READ_TOKEN}:read", f"{INGEST_TOKEN}:ingest"))
    server = flask.Flask(__name__)
    cache = init_cache(server, settings.cache_config)
    server.extensions["dashboard"] = Services(settings=settings, cache=cache, engine=engine,
                                           sessions=session_factory(engine))
    register_incident_api(server)
    return server


@pytest.fixture
def client(app):
    return reading_client(app)


@pytest.fixture
def auth():
    return {"Authorization": f"Bearer {TOKEN}"}


def grid_points(geo, n: int | None = None):
    """[(lon, lat, grid, zone, town)] — one interior point per grid, spread over towns (deterministic)."""
    grids = geo.grids.sort_values("code").reset_index(drop=True)
    pts = grids.geometry.representative_point()
    out = [(round(p.x, 6), round(p.y, 6), row.code, row.zone_code, row.town_code)
           for p, row in zip(pts, grids.itertuples())]
    if n is None:
        return out
    # round-robin over towns so the sample covers several towns and zones
    by_town: dict[str, list] = {}
    for t in out:
        by_town.setdefault(t[4], []).append(t)
    picked, i = [], 0
    while len(picked) < n:
        for town in sorted(by_town):
            lst = by_town[town]
            if i < len(lst) and len(picked) < n:
                picked.append(lst[i])
        i += 1
    return picked


@pytest.fixture(scope="session")
def points(geo):
    return grid_points(geo, 40)


@pytest.fixture(scope="session")
def outside_point(geo):
    minx, miny, maxx, maxy = geo.district.total_bounds
    return (round(maxx + 0.2, 6), round((miny + maxy) / 2, 6))


def small_history_app(base: Path, **settings):
    """The full app on a small generated history (scale 0.02, 5 recent days) in ``base``; ``settings`` are
    passed to :class:`Settings` (cache, tokens, ``geodata_dir`` — the history is generated on it too …)."""
    from dashboard import create_app
    from dashboard.demo.history import run_history
    from dashboard.settings import Settings

    url = f"sqlite:///{base / 'small.sqlite3'}"
    run_history(url, progress=False, scale=0.02, recent_days=5, geodata_dir=settings.get("geodata_dir"))
    settings["api_tokens"] = tuple(settings.get("api_tokens", ())) + (TOKEN,)  # reading_client sends it
    return create_app(Settings(instance_dir=base / "instance", database_url=url, tile_url="", demo_live=False,
                               **settings))
