"""Incidents counted per cell of the view (issue 10: a multi-county map's incident layer at low zoom), on SQLite and
PostgreSQL: ``store.queries.incident_cells`` against counts made here from the rows themselves, for random boxes
and zooms; ``GET /api/map/incident_cells.json``: its cells sum to the open incidents of the box, equal views share
one answer, bad parameters are refused (400 naming the parameter, never a 500)."""
from __future__ import annotations

import gzip
import json
import math
import random
from collections import defaultdict

import pytest
from sqlalchemy import select, update

from dashboard.services import maps
from dashboard.store import incidents as repo
from dashboard.store import lifecycle, queries
from dashboard.store.incidents import IncidentFilter
from dashboard.store.models import Incident

N_ROWS = 400
CELLS = "/api/map/incident_cells.json"


@pytest.fixture
def scattered(sessions, geo):
    """N_ROWS incidents at random places over the district's box (severities 1–4), about a third closed; returns the
    district's box."""
    rng = random.Random(20261202)
    x1, y1, x2, y2 = (float(v) for v in geo.district.total_bounds)
    grid = geo.grids.iloc[0]
    items = [repo.NewIncident(category="dispute.civil", lon=round(rng.uniform(x1, x2), 6),
                              lat=round(rng.uniform(y1, y2), 6), grid_code=grid.code, zone_code=grid.zone_code,
                              town_code=grid.town_code, severity=rng.randint(1, 4), description="cell test")
             for _ in range(N_ROWS)]
    with sessions() as s:
        done = repo.create_incidents_batch(s, items)
    ids = [d.id for d in done]
    closed = rng.sample(ids, N_ROWS // 3)
    with sessions() as s:  # closed directly: what counts here is the status, not how it got there
        s.execute(update(Incident).where(Incident.id.in_(closed)).values(status="closed"))
        s.commit()
    return x1, y1, x2, y2


def test_the_open_incidents_are_indexed_by_place(db):
    """Migration 0011: a view's open rows are a range of one partial index (not every open row of the store)."""
    from sqlalchemy import inspect

    idx = {i["name"]: i for i in inspect(db).get_indexes("incidents")}
    assert idx["ix_incidents_open_place"]["column_names"] == ["lon", "lat", "severity"]


def _rows(sessions):
    with sessions() as s:
        return s.execute(select(Incident.lon, Incident.lat, Incident.severity, Incident.status)).all()


def _random_box(rng, box):
    x1, y1, x2, y2 = box
    w, h = (x2 - x1) * rng.uniform(0.1, 1.2), (y2 - y1) * rng.uniform(0.1, 1.2)
    cx, cy = rng.uniform(x1, x2), rng.uniform(y1, y2)
    return cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2


def test_cells_count_the_open_rows_of_the_box(sessions, scattered):
    rows = _rows(sessions)
    rng = random.Random(7)
    for _ in range(12):
        zoom = rng.choice([7, 8, 9, 10, 11, 12, 13]) + rng.choice([0, 0.25, 0.5, 0.75])
        cell = maps.cell_size(zoom)
        box = maps.cell_box(_random_box(rng, scattered), cell)
        x0, y0 = box[0], box[1]
        flt = IncidentFilter(statuses=list(lifecycle.OPEN_STATES), bbox=box)
        with sessions() as s:
            got = queries.incident_cells(s, flt, (x0, y0), cell)
        # the same count made here from the rows: open, inside the box (edges included), by column and row
        inside = [r for r in rows if r.status != "closed" and box[0] <= r.lon <= box[2] and box[1] <= r.lat <= box[3]]
        want = defaultdict(list)
        for r in inside:
            want[(math.floor((r.lon - x0) / cell), math.floor((r.lat - y0) / cell))].append(r)
        assert sum(g.n for g in got) == len(inside), (zoom, box)
        assert {(g.ix, g.iy): g.n for g in got} == {k: len(v) for k, v in want.items()}, (zoom, box)
        for g in got:
            members = want[(g.ix, g.iy)]
            assert [g.n1, g.n2, g.n3, g.n4] == [sum(1 for r in members if r.severity == s) for s in (1, 2, 3, 4)]
            assert g.lon == pytest.approx(sum(r.lon for r in members) / len(members), abs=1e-9)
            assert g.lat == pytest.approx(sum(r.lat for r in members) / len(members), abs=1e-9)
            # and the cell is where its rows are: every member within the cell's bounds (a row on an edge counts once)
            w, so = x0 + g.ix * cell, y0 + g.iy * cell
            assert all(w - 1e-9 <= r.lon <= w + cell + 1e-9 and so - 1e-9 <= r.lat <= so + cell + 1e-9
                       for r in members)


@pytest.fixture
def cells_client(app):
    from dashboard.api import mapdata

    app.register_blueprint(mapdata.bp)
    from tests.conftest import reading_client

    return reading_client(app)


def test_the_endpoint_sums_to_the_open_incidents_of_the_snapped_box(cells_client, sessions, scattered):
    rows = _rows(sessions)
    rng = random.Random(11)
    for _ in range(6):
        zoom = rng.choice([8, 9, 10, 11, 12])
        raw = _random_box(rng, scattered)
        r = cells_client.get(f"{CELLS}?bbox={','.join(f'{v:.5f}' for v in raw)}&zoom={zoom}")
        assert r.status_code == 200 and r.mimetype == "application/json", r.get_data(as_text=True)
        body = r.get_json()
        x1, y1, x2, y2 = body["bbox"]
        assert x1 <= raw[0] and y1 <= raw[1] and x2 >= raw[2] and y2 >= raw[3]  # snapped outward
        expected = sum(1 for q in rows if q.status != "closed" and x1 <= q.lon <= x2 and y1 <= q.lat <= y2)
        counts = [f["properties"]["n"] for f in body["features"]]
        assert sum(counts) == body["total"] == expected
        for f in body["features"]:
            p = f["properties"]
            w, s, e, n = p["b"]
            lon, lat = f["geometry"]["coordinates"]
            assert w - 1e-6 <= lon <= e + 1e-6 and s - 1e-6 <= lat <= n + 1e-6  # the centre lies in its cell
            assert sum(p["s"]) == p["n"] and p["hi"] == p["s"][2] + p["s"][3] and p["s"][p["ms"] - 1] > 0
    # a filter narrows the count as it narrows the markers
    r = cells_client.get(f"{CELLS}?bbox={','.join(str(v) for v in scattered)}&zoom=9&severity=4").get_json()
    assert r["total"] == sum(1 for q in rows if q.status != "closed" and q.severity == 4
                             and scattered[0] <= q.lon <= scattered[2] and scattered[1] <= q.lat <= scattered[3])


def test_points_come_with_the_cells_when_the_box_holds_few_enough(app, cells_client, sessions, scattered):
    """``points=1`` (a map zoomed in): the box's markers in the same answer, the same as ``incidents.json`` gives
    for that box (ids, severities, states, places), when the box holds at most MAP_VIEW_MARKERS; more: the cells
    alone."""
    from dataclasses import replace

    rows = _rows(sessions)
    rng = random.Random(12)
    key = lambda f: (f["properties"]["id"], f["properties"]["s"], f["properties"]["t"],  # noqa: E731
                     tuple(f["geometry"]["coordinates"]))
    seen = 0
    for _ in range(4):
        raw = _random_box(rng, scattered)
        q = f"bbox={','.join(f'{v:.5f}' for v in raw)}&zoom=12"
        body = cells_client.get(f"{CELLS}?{q}&points=1").get_json()
        pts = body["points"]["features"]
        assert len(pts) == body["total"] and not body["points"].get("truncated")
        x1, y1, x2, y2 = body["bbox"]
        markers = cells_client.get(f"/api/map/incidents.json?bbox={x1},{y1},{x2},{y2}").get_json()["features"]
        assert sorted(map(key, pts)) == sorted(map(key, markers))
        assert "points" not in cells_client.get(f"{CELLS}?{q}").get_json()  # not asked for: the cells alone
        seen += len(pts)
    assert seen > 0
    # more in the box than the map shows as markers: the cells alone
    svc = app.extensions["dashboard"]
    app.extensions["dashboard"] = replace(svc, settings=replace(svc.settings, map_view_markers=3))
    body = cells_client.get(f"{CELLS}?bbox={','.join(str(v) for v in scattered)}&zoom=9&points=1").get_json()
    assert body["total"] == sum(1 for q in rows if q.status != "closed") > 3 and "points" not in body


def test_equal_views_share_one_answer_compressed(cells_client, scattered):
    x1, y1, x2, y2 = scattered
    cell = maps.cell_size(10)
    a = cells_client.get(f"{CELLS}?bbox={x1},{y1},{x2},{y2}&zoom=10", headers={"Accept-Encoding": "gzip"})
    inner = (x1 + cell / 10, y1 + cell / 10, x2 - cell / 10, y2 - cell / 10)  # the same cells once snapped
    if maps.cell_box(inner, cell) != maps.cell_box((x1, y1, x2, y2), cell):
        inner = (x1, y1, x2, y2)
    b = cells_client.get(f"{CELLS}?zoom=10.5&bbox={','.join(str(v) for v in inner)}&junk=1",
                         headers={"Accept-Encoding": "gzip"})
    assert a.status_code == b.status_code == 200
    assert a.headers["Content-Encoding"] == "gzip" and a.mimetype == "application/json"
    assert a.headers["ETag"] == b.headers["ETag"]
    assert json.loads(gzip.decompress(a.get_data()))["zoom"] == 10
    from backports import zstd

    z = cells_client.get(f"{CELLS}?bbox={x1},{y1},{x2},{y2}&zoom=10",
                         headers={"Accept-Encoding": "gzip, deflate, br, zstd"})  # as Chromium asks
    assert z.headers["Content-Encoding"] == "zstd" and z.headers["ETag"] == a.headers["ETag"]
    assert json.loads(zstd.decompress(z.get_data())) == json.loads(gzip.decompress(a.get_data()))


@pytest.mark.parametrize("query, field", [
    ("zoom=10", "bbox"),
    ("bbox=120,30,120.5,30.5", "zoom"),
    ("bbox=120,30,120.5,30.5&zoom=abc", "zoom"),
    ("bbox=120,30,120.5,30.5&zoom=-1", "zoom"),
    ("bbox=120,30,120.5,30.5&zoom=21", "zoom"),
    ("bbox=120,30,120.5,30.5&zoom=nan", "zoom"),
    ("bbox=120,30,120.5,30.5&zoom=1e400", "zoom"),
    ("bbox=120,30,120.5&zoom=10", "bbox"),
    ("bbox=a,b,c,d&zoom=10", "bbox"),
    ("bbox=200,30,120.5,30.5&zoom=10", "bbox"),
    ("bbox=120,95,120.5,30.5&zoom=10", "bbox"),
    ("bbox=100,20,130,45&zoom=15", "bbox"),  # a province's box at street zoom: more cells than one answer holds
    ("bbox=120,30,120.5,30.5&zoom=10&severity=9", "severity"),
    ("bbox=120,30,120.5,30.5&zoom=10&status=lost", "status"),
    ("bbox=120,30,120.5,30.5&zoom=12&points=yes", "points"),
])
def test_bad_parameters_are_refused_with_the_field_named(cells_client, query, field):
    r = cells_client.get(f"{CELLS}?{query}")
    assert r.status_code == 400, (query, r.status_code, r.get_data(as_text=True))
    err = r.get_json()["error"]
    assert err["field"] == field and err["message"], (query, err)


def test_cells_are_private_like_the_markers(app):
    from dashboard.api import mapdata

    app.register_blueprint(mapdata.bp)
    r = app.test_client().get(f"{CELLS}?bbox=120,30,120.5,30.5&zoom=10")
    assert r.status_code == 401 and r.get_json()["error"]["code"] == "unauthorized"


def test_only_a_multi_county_map_shows_its_incidents_by_view():
    """One county's map keeps its one clustered layer of every open incident (no view config, the same preloads);
    a city's or province's never preloads the whole incident layer and asks for cells the server counts."""
    from dashboard.ui import layers

    single, province = ("district", "town", "zone", "grid"), ("district", "city", "county", "town", "zone", "grid")
    urls = ("/api/geo/zones.json", "/api/map/incidents.json", "/api/map/incidents.json?status=open&town=X")
    assert layers.incident_view(single, maps.cell_size(0)) is None
    assert layers.request_urls_for(urls, single) == urls and layers.start_urls_for(urls, single) == urls
    view = layers.incident_view(province, maps.cell_size(0))
    assert view["cells"] == CELLS and view["markersZoom"] > 11
    assert view["cell0"] / 2 ** 11 == pytest.approx(maps.cell_size(11.75), rel=1e-12)  # the browser's cells: the server's
    assert layers.request_urls_for(urls, province) == ("/api/geo/zones.json",)
    assert not any("incidents.json" in u for u in layers.start_urls_for(urls, province))
