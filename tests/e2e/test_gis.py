"""The GIS export buttons in a real headless Chromium (small demo store): on the duty desk they carry the desk's
filter, on the overview the drill panel's period and unit; both download a file that reads back with pyogrio and
holds what the APIs say for the same query."""
from __future__ import annotations

import json
import urllib.parse
import urllib.request
from pathlib import Path

import geopandas as gpd
import pyogrio

from dashboard.metrics import registry
from tests.conftest import authed

FIELD_NEW = registry.field("new_incidents")


def _params(href: str) -> dict:
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(href).query, keep_blank_values=True))


def _get(server, path: str) -> dict:
    with urllib.request.urlopen(authed(server.url + path)) as resp:
        return json.loads(resp.read())


def _api_ids(server, query: str) -> list[int]:
    ids, cursor = [], None
    while True:
        body = _get(server, f"/api/v1/incidents?{query}&limit=1000"
                    + (f"&cursor={urllib.parse.quote(cursor)}" if cursor else ""))
        ids += [item["id"] for item in body["items"]]
        cursor = body["next_cursor"]
        if not cursor:
            return ids


def _filter_query(href: str) -> str:
    """The incident filter part of an export link (the period parameters are the KPIs')."""
    return urllib.parse.urlencode([(k, v) for k, v in _params(href).items() if not k.startswith("period")])


def _download(page, selector: str, tmp_path: Path) -> Path:
    with page.expect_download() as dl:
        page.click(selector)
    out = tmp_path / dl.value.suggested_filename
    dl.value.save_as(out)
    return out


def test_duty_desk_gis_links_follow_the_filter_and_download(demo_app, page, tmp_path):
    demo_app.sign_in(page, "duty_officer")
    page.goto(demo_app.url + "/incidents?status=all&severity=2,3")
    page.wait_for_function("window.wx && wx.duty && wx.duty.gridApi() && wx.duty.rowCount() !== null",
                           timeout=30_000)
    csv_href = page.get_attribute("#duty-export-csv", "href")
    for sel in ("#duty-export-gpkg", "#duty-export-shp"):
        href = page.get_attribute(sel, "href")
        assert _params(href) == _params(csv_href) and _params(href)["severity"] == "2,3"
    town = demo_app.app.server.extensions["dashboard"].geodata().towns["code"].sort_values().iloc[3]
    page.evaluate("t => window.dash_clientside.set_props('duty-town', {value: [t]})", town)
    page.wait_for_function("t => ['#duty-export-gpkg', '#duty-export-shp'].every(s => new URL("
                           "document.querySelector(s).href).searchParams.get('town') === t)", arg=town,
                           timeout=10_000)
    href = page.get_attribute("#duty-export-shp", "href")
    assert _params(href) == _params(page.get_attribute("#duty-export-csv", "href"))
    path = _download(page, "#duty-export-shp", tmp_path)
    assert path.name.endswith(".shp.zip")
    points = pyogrio.read_dataframe(path, layer="incidents")
    assert list(points["id"]) == _api_ids(demo_app, _filter_query(href))
    assert len(points) > 0 and set(points["town_code"]) == {town}
    assert pyogrio.read_info(path, layer="grids")["crs"] == "EPSG:4326"


def test_overview_gis_links_carry_the_period_and_unit_and_download(demo_app, page, tmp_path):
    gd = demo_app.app.server.extensions["dashboard"].geodata()
    zone = gd.zones["code"].sort_values().iloc[7]
    demo_app.sign_in(page, "leader")
    page.goto(f"{demo_app.url}/?period=2019&level=zone&code={zone}")
    page.wait_for_selector("#ov-gis-gpkg", state="visible", timeout=30_000)
    # the panel settles (map drawn, charts mounted, cards filled) before anything is clicked
    page.wait_for_selector("body[data-map-ready]", state="attached", timeout=60_000)
    page.wait_for_selector("#card-value-detection_rate", timeout=60_000)
    p = _params(page.get_attribute("#ov-gis-gpkg", "href"))
    assert p == {"period": "2019", "zone": zone, "from": "2019-01-01", "to": "2020-01-01"}
    assert _params(page.get_attribute("#ov-gis-shp", "href")) == p
    page.locator("input[value='7d']").check()
    page.wait_for_function("z => { const p = new URL(document.querySelector('#ov-gis-gpkg').href).searchParams;"
                           " return p.get('period') === '7d' && p.get('zone') === z; }", arg=zone, timeout=15_000)
    page.wait_for_function("() => (document.querySelector('#period-label') || {}).innerText"
                           " && !document.querySelector('#kpi-cards [data-dash-is-loading]')", timeout=30_000)
    href = page.get_attribute("#ov-gis-gpkg", "href")
    kpis = _get(demo_app, f"/api/v1/kpis?level=zone&code={zone}&period=7d")
    assert _params(href)["from"] == kpis["period"]["from"]
    path = _download(page, "#ov-gis-gpkg", tmp_path)
    assert path.name.endswith(".gpkg")
    layers = {str(n) for n, _ in pyogrio.list_layers(path)}
    assert {"towns", "zones", "grids", "incidents"} <= layers
    assert pyogrio.read_info(path, layer="grids")["features"] == len(gpd.read_file(
        Path(demo_app.app.server.extensions["dashboard"].settings.geodata_dir) / "grids.geojson"))
    points = pyogrio.read_dataframe(path, layer="incidents")
    assert list(points["id"]) == _api_ids(demo_app, _filter_query(href))
    zones = pyogrio.read_dataframe(path, layer="zones").set_index("code")
    assert zones.loc[zone, FIELD_NEW] == kpis["kpis"]["new_incidents"]
    assert zones.loc[zone, "per_from"] == kpis["period"]["from"] and zones.loc[zone, "per_to"] == kpis["period"]["to"]
