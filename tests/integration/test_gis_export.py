"""The GIS export (issue 12): ``GET /api/v1/gis/export.gpkg`` and ``…/export.shp.zip`` on a small generated history,
read back with pyogrio as QGIS / ArcGIS would: layers, CRS, field names, feature counts (the committed geodata's
units, the incident list API's total), KPI values (the KPI API's), personal data by audience, the audit log, access
and refusals, the cap on incident points, and the importer reading the exported boundaries back."""
from __future__ import annotations

import datetime as dt
import math
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from urllib.parse import quote

import geopandas as gpd
import pyogrio
import pytest

from dashboard.metrics import registry
from tests.conftest import ROOT, reading_client, signed_in_client
from tests.integration.conftest import small_history_app

PHONE = "13912345678"
RESIDENT = "张三"
TOKENS = ("reader-token:read", "ingest-token:ingest")
UNIT_LAYERS = {"towns": "town", "zones": "zone", "grids": "grid"}
KPI_FIELDS = {registry.field(k): k for k in registry.shown_in("api")}


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    # the suite asks for ~70 exports and KPI sets as one leader within minutes: above a person's 60 a minute
    return small_history_app(tmp_path_factory.mktemp("gis-export"), cache_url="null", api_tokens=TOKENS,
                             rate_limits={"expensive": "1000/minute"})


@pytest.fixture(scope="module")
def geodata_dir(app) -> Path:
    return Path(app.server.extensions["dashboard"].settings.geodata_dir)


@pytest.fixture(scope="module")
def leader(app):
    return signed_in_client(app.server, "leader")


@pytest.fixture(scope="module")
def officer(app):
    return signed_in_client(app.server, "duty_officer")


@pytest.fixture(scope="module")
def admin(app):
    return signed_in_client(app.server, "admin")


@pytest.fixture(scope="module")
def marked(app, geodata_dir):
    """A report of this year with a reporter, a phone number and a resident named in it (marked in ``persons``)."""
    grids = gpd.read_file(geodata_dir / "grids.geojson")
    point = grids.geometry.iloc[20].representative_point()
    body = {"category": "dispute.civil", "lon": point.x, "lat": point.y, "reporter": "赵网格员",
            "reporter_phone": PHONE, "description": f"{RESIDENT}与邻居因漏水纠纷GIS1", "persons": [RESIDENT],
            "client_ref": "gis-export-1"}
    r = reading_client(app.server).post("/api/v1/incidents", json=body, headers={"Authorization": "Bearer test-token"})
    assert r.status_code == 201, r.get_json()
    return r.get_json()


def download(client, path: str, query: str, tmp_path: Path, name: str | None = None) -> tuple[Path, object]:
    r = client.get(f"{path}?{query}")
    assert r.status_code == 200, r.get_data(as_text=True)[:500]
    assert "attachment" in r.headers["Content-Disposition"]
    out = tmp_path / (name or r.headers["Content-Disposition"].split('filename="')[1].rstrip('"'))
    out.write_bytes(r.data)
    return out, r


def gpkg(client, query: str, tmp_path: Path, name: str = "export.gpkg"):
    return download(client, "/api/v1/gis/export.gpkg", query, tmp_path, name)


def shp_zip(client, query: str, tmp_path: Path, name: str = "export.shp.zip"):
    return download(client, "/api/v1/gis/export.shp.zip", query, tmp_path, name)


def api_ids(client, query: str) -> list[int]:
    """The ids the incident list API gives for ``query``, over all its pages (newest first)."""
    ids, cursor = [], None
    while True:
        body = client.get(f"/api/v1/incidents?{query}&limit=1000" + (f"&cursor={quote(cursor)}" if cursor else ""))
        assert body.status_code == 200, body.get_json()
        data = body.get_json()
        ids += [item["id"] for item in data["items"]]
        cursor = data["next_cursor"]
        if not cursor:
            return ids


def layers_of(path) -> dict:
    return {str(name): geom for name, geom in pyogrio.list_layers(str(path))}


def same_value(a, b) -> bool:
    if b is None:
        return a is None or (isinstance(a, float) and math.isnan(a))
    if isinstance(b, float):
        return a is not None and not math.isnan(a) and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    return a == b


def sample_units(geodata_dir) -> list[tuple[str, str]]:
    """A few units of each level, spread over the file (first, middle, last)."""
    out = []
    for layer, level in UNIT_LAYERS.items():
        codes = sorted(gpd.read_file(geodata_dir / f"{layer}.geojson")["code"])
        out += [(level, codes[0]), (level, codes[len(codes) // 2]), (level, codes[-1])]
    return out


def audit_newest(admin, target: str) -> dict:
    items = admin.get(f"/api/v1/audit?action=export&target={target}&limit=1").get_json()["items"]
    assert items, f"no export {target} in the audit log"
    return items[0]


# ---------------------------------------------------------------------------------------- GeoPackage
def test_geopackage_layers_crs_fields_and_counts(app, leader, geodata_dir, tmp_path):
    query = "period=2019&status=open,closed&severity=2,3"
    path, r = gpkg(leader, query, tmp_path)
    layers = layers_of(path)
    assert [n for n, g in layers.items() if g is not None] == ["towns", "zones", "grids", "incidents"]
    assert layers["fields"] is None  # the non-spatial table of what each column means
    for layer, level in UNIT_LAYERS.items():
        info = pyogrio.read_info(path, layer=layer)
        assert info["crs"] == "EPSG:4326"
        assert info["features"] == len(gpd.read_file(geodata_dir / f"{layer}.geojson"))
        fields = list(info["fields"])
        parents = {"town": [], "zone": ["town_code"], "grid": ["zone_code", "town_code"]}[level]
        assert fields[:3] == ["code", "name", "name_en"] and set(parents + ["dist_code"]) <= set(fields)
        assert set(KPI_FIELDS) <= set(fields) and "det_rate" in fields
        assert all(len(f) <= 10 and f == f.lower() for f in fields)
    info = pyogrio.read_info(path, layer="incidents")
    assert info["crs"] == "EPSG:4326" and info["geometry_type"] == "Point"
    assert info["features"] == len(api_ids(leader, "status=open,closed&severity=2,3")) > 0
    assert info["features"] == int(r.headers["X-Row-Count"]) and r.headers["X-Incidents-Truncated"] == "0"
    assert {"id", "category", "subcat", "severity", "status", "source", "town_code", "zone_code", "grid_code",
            "reported", "closed", "overdue"} <= set(info["fields"])
    fields = pyogrio.read_dataframe(path, layer="fields")
    for layer in ("towns", "zones", "grids", "incidents"):  # every column of every layer is explained
        explained = set(fields.loc[fields["layer"] == layer, "field"])
        columns = set(pyogrio.read_info(path, layer=layer)["fields"])
        assert explained == columns, (layer, explained ^ columns)
    det = fields[(fields["layer"] == "grids") & (fields["field"] == "det_rate")].iloc[0]
    assert det["zh"] == registry.label("detection_rate", "zh") and det["en"] == registry.label("detection_rate", "en")
    assert det["measure"] == "detection_rate" and det["unit_en"] == registry.UNITS["rate"][1]


def test_incident_points_match_the_list_api(app, leader, geodata_dir, tmp_path):
    """Each filter exports exactly the incidents the list API returns for it, at their places and times."""
    zone = sorted(gpd.read_file(geodata_dir / "zones.geojson")["code"])[5]
    # the small history's recent days may hold no overdue incident at this hour: one reported ten days ago and
    # still open is overdue whatever the time (its deadline is days, not weeks)
    point = gpd.read_file(geodata_dir / "grids.geojson").geometry.iloc[7].representative_point()
    ten_days_ago = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=10)).isoformat()
    r = reading_client(app.server).post("/api/v1/incidents", headers={"Authorization": "Bearer test-token"}, json={
        "category": "order.public", "lon": point.x, "lat": point.y, "description": "GIS 超期测试",
        "reported_at": ten_days_ago, "client_ref": "gis-export-overdue"})
    assert r.status_code in (200, 201), r.get_json()
    for i, filt in enumerate(("category=safety.fire", f"zone={zone}&status=closed",
                              "from=2019-03-01&to=2019-04-01&source=patrol", "overdue=1")):
        path, _ = gpkg(leader, f"period=2019&{filt}", tmp_path, f"f{i}.gpkg")
        points = pyogrio.read_dataframe(path, layer="incidents")
        expected = api_ids(leader, filt)
        assert expected, f"the small history has no incident for {filt}: pick another filter"
        assert list(points["id"]) == expected, filt  # newest first, like the list
        if filt.startswith("zone="):
            assert set(points["zone_code"]) <= {zone}
    one = leader.get(f"/api/v1/incidents/{expected[0]}").get_json()  # of the last filter: overdue
    row = points[points["id"] == one["id"]].iloc[0]
    assert abs(row.geometry.x - one["lon"]) < 1e-9 and abs(row.geometry.y - one["lat"]) < 1e-9
    assert row["overdue"] == 1 and row["grid_code"] == one["grid_code"] and row["category"] == one["category"]
    reported = dt.datetime.fromisoformat(row["reported"])
    assert reported.utcoffset() == dt.timedelta(hours=8)  # Beijing time
    assert reported == dt.datetime.fromisoformat(one["reported_at"].replace("Z", "+00:00")).replace(microsecond=0)


@pytest.mark.parametrize("period_query,kpi_query", [
    ("period=2019", "period=2019"),
    ("period_from=2019-03-01&period_to=2019-05-31", "from=2019-03-01&to=2019-05-31"),
])
def test_kpi_columns_equal_the_kpi_api(app, leader, geodata_dir, tmp_path, period_query, kpi_query):
    path, r = gpkg(leader, period_query, tmp_path)
    frames = {layer: pyogrio.read_dataframe(path, layer=layer).set_index("code") for layer in UNIT_LAYERS}
    for level, code in sample_units(geodata_dir):
        body = leader.get(f"/api/v1/kpis?level={level}&code={code}&{kpi_query}").get_json()
        row = frames[f"{level}s"].loc[code]
        assert row["name"] == body["name"] and row["name_en"] == body["name_en"]
        assert row["per_from"] == body["period"]["from"] and row["per_to"] == body["period"]["to"]
        for f, key in KPI_FIELDS.items():
            assert same_value(row[f], body["kpis"][key]), (level, code, key, row[f], body["kpis"][key])
    assert r.headers["X-Period"].endswith(f"{body['period']['from']},{body['period']['to']}")


# ----------------------------------------------------------------------------------------- Shapefile
def test_shapefile_zip_reads_back_like_the_geopackage(app, leader, geodata_dir, tmp_path):
    query = "period=2019&category=dispute.civil"
    shp, r = shp_zip(leader, query, tmp_path)
    assert r.mimetype == "application/zip"
    pkg, _ = gpkg(leader, query, tmp_path)
    with zipfile.ZipFile(shp) as z:
        names = set(z.namelist())
        for layer in ("towns", "zones", "grids", "incidents"):
            assert {f"{layer}.{ext}" for ext in ("shp", "shx", "dbf", "prj", "cpg")} <= names
            assert z.read(f"{layer}.cpg").decode().strip().upper() == "UTF-8"
            assert "WGS_1984" in z.read(f"{layer}.prj").decode()
        readme = z.read("README.txt").decode("utf-8-sig")
        table = z.read("fields.csv").decode("utf-8-sig")
    for f, key in KPI_FIELDS.items():  # what det_rate means, for a QGIS user
        assert f in readme and registry.label(key, "zh") in readme and f in table
    assert layers_of(shp) == {n: g for n, g in layers_of(pkg).items() if g is not None}
    assert layers_of(f"/vsizip/{shp}") == layers_of(shp)  # also as a plain zip
    for layer in ("towns", "zones", "grids", "incidents"):
        a, b = pyogrio.read_info(shp, layer=layer), pyogrio.read_info(pkg, layer=layer)
        assert a["crs"] == "EPSG:4326" and a["encoding"] == "UTF-8"
        assert list(a["fields"]) == list(b["fields"]) and a["features"] == b["features"]
    grids_shp = pyogrio.read_dataframe(shp, layer="grids").set_index("code")
    grids_pkg = pyogrio.read_dataframe(pkg, layer="grids").set_index("code")
    assert list(grids_shp.index) == list(grids_pkg.index)
    for code in grids_pkg.index[::50]:
        assert grids_shp.loc[code, "name"] == grids_pkg.loc[code, "name"]  # Chinese text survives (UTF-8)
        for f in KPI_FIELDS:
            a, b = grids_shp.loc[code, f], grids_pkg.loc[code, f]
            assert (math.isnan(a) and math.isnan(b)) if b != b else math.isclose(a, b, rel_tol=1e-9), (code, f)
        a, b = grids_shp.loc[code, "geometry"], grids_pkg.loc[code, "geometry"]
        assert a.normalize().equals_exact(b.normalize(), 1e-9)  # Shapefile rings run clockwise: same polygon
    inc = pyogrio.read_dataframe(shp, layer="incidents")
    assert list(inc["id"]) == api_ids(leader, "category=dispute.civil")


# ------------------------------------------------------------------------------------- personal data
def _all_text(path: Path) -> str:
    raw = path.read_bytes()
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            raw = b"".join(z.read(n) for n in z.namelist())
    return raw.decode("utf-8", errors="ignore")


def test_no_personal_data_for_a_leader_reporter_for_an_officer_never_phones(app, leader, officer, marked, tmp_path):
    query = "period=30d&q=GIS1"
    for who, client in (("leader", leader), ("officer", officer)):
        for fetch in (gpkg, shp_zip):
            path, r = fetch(client, query, tmp_path, f"{who}-{fetch.__name__}.{'gpkg' if fetch is gpkg else 'shp.zip'}")
            info = pyogrio.read_info(path, layer="incidents")
            assert info["features"] == 1
            row = pyogrio.read_dataframe(path, layer="incidents").iloc[0]
            assert not [f for f in info["fields"] if "phone" in f or "tel" in f]
            text = _all_text(path)
            assert PHONE not in text  # phone numbers never
            if who == "leader":
                assert "reporter" not in info["fields"] and "赵网格员" not in text
                assert RESIDENT not in row["descr"] and "某某" in row["descr"]
            else:
                assert row["reporter"] == "赵网格员" and RESIDENT in row["descr"]


def test_read_token_sees_no_personal_data(app, tmp_path):
    c = app.server.test_client()
    r = c.get("/api/v1/gis/export.gpkg?period=2019&q=GIS1", headers={"Authorization": "Bearer reader-token"})
    assert r.status_code == 200
    path = tmp_path / "token.gpkg"
    path.write_bytes(r.data)
    assert "reporter" not in pyogrio.read_info(path, layer="incidents")["fields"]


# ------------------------------------------------------------------------------------------- audit log
def test_each_export_is_in_the_audit_log(app, leader, officer, admin, tmp_path):
    _, r = gpkg(leader, "period=2019&category=safety.fire&severity=3", tmp_path)
    entry = audit_newest(admin, "gis.gpkg")
    d = entry["detail"]
    assert entry["actor"] == "t-leader" and entry["role"] == "leader"
    assert "category=safety.fire" in d["query"] and "severity=3" in d["query"]
    assert d["period"] == {"key": "2019", "from": "2019-01-01", "to": "2019-12-31"}
    assert d["rows"] == int(r.headers["X-Row-Count"]) and d["personal"] is False and d["truncated"] is False
    assert d["layers"]["grids"] == int(r.headers["X-Layer-Counts"].split("grids=")[1].split(",")[0])
    _, r = shp_zip(officer, "period=7d&status=open", tmp_path)
    d = audit_newest(admin, "gis.shp.zip")["detail"]
    assert d["personal"] is True and d["period"]["key"] == "7d" and d["rows"] == int(r.headers["X-Row-Count"])


# ------------------------------------------------------------------------------------ access, refusals
@pytest.mark.parametrize("path", ["/api/v1/gis/export.gpkg", "/api/v1/gis/export.shp.zip"])
def test_access(app, path):
    anon = app.server.test_client()
    r = anon.get(f"{path}?period=2019")
    assert r.status_code == 401 and r.get_json()["error"]["code"] == "unauthorized"
    assert anon.get(path, headers={"Authorization": "Bearer ingest-token"}).status_code == 403
    assert anon.get(path, headers={"Authorization": "Bearer wrong"}).status_code == 401
    wall = signed_in_client(app.server, "wall")  # a wall account sees the wall, not incident files
    assert wall.get(f"{path}?period=2019").status_code == 403


@pytest.mark.parametrize("query,field", [
    ("period=week", "period"),
    ("period=custom", "period_from"),
    ("period_from=2019-13-01", "period_from"),
    ("period_from=2019-02-01&period_to=2019-01-01", "period_to"),
    ("period_to=2019-01-01", "period_from"),
    ("period=7d&period_from=2019-01-01", "period"),
    ("period_from=1800-01-01", "period_from"),
    ("severity=9", "severity"),
    ("status=lost", "status"),
    ("from=yesterday", "from"),
    ("from=2019-02-01&to=2019-01-01", "from"),
    ("bbox=1,2,3", "bbox"),
    ("q=" + "x" * 300, "q"),
])
def test_bad_period_or_filter_is_a_400_and_nothing_is_recorded(app, leader, admin, query, field):
    before = admin.get("/api/v1/audit?action=export&limit=1").get_json()["items"]
    for path in ("/api/v1/gis/export.gpkg", "/api/v1/gis/export.shp.zip"):
        r = leader.get(f"{path}?{query}")
        assert r.status_code == 400, (query, r.status_code)
        assert r.get_json()["error"]["field"] == field, r.get_json()
    assert admin.get("/api/v1/audit?action=export&limit=1").get_json()["items"] == before


def test_incident_points_stop_at_the_export_maximum_and_say_so(app, leader, admin, tmp_path, monkeypatch):
    from dashboard.services import incidents

    monkeypatch.setattr(incidents, "EXPORT_MAX_ROWS", 7)
    expected = api_ids(leader, "status=closed")
    assert len(expected) > 7
    for fetch, target in ((gpkg, "gis.gpkg"), (shp_zip, "gis.shp.zip")):
        path, r = fetch(leader, "period=2019&status=closed", tmp_path, f"cap-{target}")
        assert r.headers["X-Incidents-Truncated"] == "1" and r.headers["X-Row-Count"] == "7"
        assert int(r.headers["X-Incident-Total"]) == len(expected)
        assert list(pyogrio.read_dataframe(path, layer="incidents")["id"]) == expected[:7]  # the newest
        d = audit_newest(admin, target)["detail"]
        assert d["truncated"] is True and d["incidents_total"] == len(expected)
    with zipfile.ZipFile(path) as z:
        assert str(len(expected)) in z.read("README.txt").decode("utf-8-sig")


def test_temporary_files_are_removed(app, leader, tmp_path, monkeypatch):
    work = tmp_path / "tmp"
    work.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(work))
    for path in ("/api/v1/gis/export.gpkg", "/api/v1/gis/export.shp.zip"):
        r = leader.get(f"{path}?period=2019&severity=4")
        assert r.status_code == 200 and len(r.data) == int(r.headers["Content-Length"])
        r.close()
        assert list(work.iterdir()) == []


# --------------------------------------------------------------------------------------- round trip
def _geodata_copy(src: Path, dest: Path) -> Path:
    dest.mkdir()
    for f in src.glob("*.geojson"):
        shutil.copy(f, dest / f.name)
    return dest


def test_importer_reads_the_exported_boundaries_back(app, leader, geodata_dir, tmp_path):
    """``python -m dashboard.geodata import exported.gpkg --level grid`` (and zone, town; and the Shapefile zip)
    rewrites the geodata files byte for byte: the export carries the boundaries and codes the map has."""
    from dashboard.geodata.__main__ import main

    pkg, _ = gpkg(leader, "period=2019&severity=4", tmp_path)
    shp, _ = shp_zip(leader, "period=2019&severity=4", tmp_path)
    originals = {f.name: f.read_bytes() for f in geodata_dir.glob("*.geojson")}
    for i, source in enumerate((pkg, shp)):
        d = _geodata_copy(geodata_dir, tmp_path / f"geodata-{i}")
        for level in ("grid", "zone", "town"):
            if i == 0 and level == "grid":  # the command line itself, as an operator types it
                done = subprocess.run([sys.executable, "-m", "dashboard.geodata", "import", str(source), "--level",
                                       level, "--geodata-dir", str(d)], cwd=ROOT, capture_output=True, text=True)
                assert done.returncode == 0, done.stderr
                n = len(gpd.read_file(geodata_dir / "grids.geojson"))
                assert f"{n} feature(s) for level grid" in done.stdout
            else:
                assert main(["import", str(source), "--level", level, "--geodata-dir", str(d)]) == 0
        assert {f.name: f.read_bytes() for f in d.glob("*.geojson")} == originals, source.name
    d = _geodata_copy(geodata_dir, tmp_path / "geodata-layer")
    assert main(["import", str(pkg), "--level", "zone", "--layer", "zones", "--geodata-dir", str(d)]) == 0
    assert main(["import", str(pkg), "--level", "zone", "--layer", "nope", "--geodata-dir", str(d)]) == 2
    assert {f.name: f.read_bytes() for f in d.glob("*.geojson")} == originals
