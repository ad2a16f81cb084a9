"""The app on another county's geodata: every title, name, code and check follows that county.

The geodata of 杭州市上城区 (``python -m dashboard.geodata build --county 330102``) and a small demo history on it
(the demo's figures in proportion to its registered units); the expected names are read from the built
``district.geojson``, the refused point from the seed district's committed outline."""
from __future__ import annotations

import dataclasses
import json
import re
import shutil
import zipfile
from io import BytesIO

import geopandas as gpd
import pytest

from tests.conftest import OTHER_COUNTY, ROOT, build_county, reading_client, signed_in_client
from tests.integration.conftest import TOKEN, small_history_app

SEED_WORDS = ("吴兴", "Wuxing", "wuxing", "330502")
HAN = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture(scope="module")
def county_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("county-geodata")
    build_county(out)
    return out


@pytest.fixture(scope="module")
def district(county_dir) -> dict:
    return json.loads((county_dir / "district.geojson").read_text(encoding="utf-8"))["features"][0]["properties"]


@pytest.fixture(scope="module")
def app(county_dir, tmp_path_factory):
    return small_history_app(tmp_path_factory.mktemp("county-app"), geodata_dir=county_dir, cache_url="null",
                             api_tokens=("reader-token:read",))


@pytest.fixture(scope="module")
def leader(app):
    return signed_in_client(app.server, "leader")


def _layout(client, path: str) -> str:
    """The page's Dash layout (what the browser renders first) as text."""
    r = client.get("/_dash-layout", headers={"Referer": f"http://localhost{path}"})
    assert r.status_code == 200, r.status_code
    return json.dumps(r.get_json(), ensure_ascii=False)


def _title(html: str) -> str:
    return re.search(r"<title>(.*?)</title>", html, re.S).group(1)


def test_the_demo_history_is_on_the_countys_units(app, county_dir):
    from sqlalchemy import text

    engine = app.server.extensions["dashboard"].engine
    with engine.connect() as c:
        towns = {r[0] for r in c.execute(text("SELECT DISTINCT town_code FROM incidents"))}
        text_of_all = " ".join(r[0] or "" for r in c.execute(text("SELECT address FROM incidents LIMIT 2000")))
    assert towns and all(t.startswith(OTHER_COUNTY + "-") for t in towns)
    assert not any(w in text_of_all for w in SEED_WORDS)


def test_titles_and_names_follow_the_geodata(leader, district):
    name, code = district["name"], district["code"]
    assert _title(leader.get("/").get_data(as_text=True)) == f"{name}基层社会治理指挥中心"
    overview = _layout(leader, "/")
    assert f"{name}基层社会治理指挥中心" in overview and not any(w in overview for w in SEED_WORDS)
    wall = _layout(leader, "/wall")
    assert f"{name}基层社会治理指挥中心" in wall and not any(w in wall for w in SEED_WORDS)
    assert f"全{name[-1]}概况" in wall  # the tour's card for the whole unit says 全区 / 全县 / 全市 as its name does
    assert f"{name}指挥中心 / Home" in _layout(leader, "/no-such-page")
    # English: the geodata has no English name (the province file has none), so a pinyin-free fallback by code
    assert district["name_en"] is None
    en_title = _title(leader.get("/?lang=en").get_data(as_text=True))
    assert code in en_title and "Command Centre" in en_title and not HAN.search(en_title)
    en = _layout(leader, "/?lang=en")
    assert en_title in en and not any(w in en for w in SEED_WORDS)


def test_the_maps_home_view_is_the_countys(leader, county_dir):
    minx, miny, maxx, maxy = gpd.read_file(county_dir / "district.geojson").total_bounds
    layout = json.loads(_layout(leader, "/"))

    def maps(node):
        if isinstance(node, dict):
            if "center" in node and "minZoom" in node:  # the map's props
                yield node
            for v in node.values():
                yield from maps(v)
        elif isinstance(node, list):
            for v in node:
                yield from maps(v)

    (props,) = list(maps(layout))
    lat, lon = props["center"]
    assert miny <= lat <= maxy and minx <= lon <= maxx
    assert props["zoom"] >= 11  # a county of ~120 km² shows closer than the seed district's 863 km²


def test_open311_and_openapi_name_the_county(app, district):
    c = app.server.test_client()
    contact = c.get("/open311/v2/discovery.json").get_json()["contact"]
    assert district["name"] in contact and not any(w in contact for w in SEED_WORDS)
    doc = c.get("/api/v1/openapi.json").get_json()
    assert district["name"] in doc["info"]["title"] and doc["info"]["x-district"]["code"] == district["code"]
    text = json.dumps(doc, ensure_ascii=False)
    assert not any(w in text for w in SEED_WORDS)


def test_a_point_of_the_seed_district_is_outside_and_one_of_the_county_inside(app, county_dir, district):
    seed = gpd.read_file(ROOT / "geodata" / "district.geojson").geometry.iloc[0].representative_point()
    grid = gpd.read_file(county_dir / "grids.geojson").iloc[0]
    mine = grid.geometry.representative_point()
    c = app.server.test_client()
    headers = {"Authorization": f"Bearer {TOKEN}"}
    body = {"category": "safety.fire", "description": "县外测试点", "lon": round(seed.x, 6), "lat": round(seed.y, 6)}
    r = c.post("/api/v1/incidents", json=body, headers=headers)
    assert r.status_code == 422, r.data[:300]
    err = r.get_json()["error"]
    assert err["code"] == "outside_district" and district["name"] in err["message"]
    assert not any(w in err["message"] for w in SEED_WORDS)
    r = c.post("/api/v1/incidents", json={**body, "description": "县内测试点", "lon": round(mine.x, 6),
                                          "lat": round(mine.y, 6)}, headers=headers)
    assert r.status_code == 201, r.data[:300]
    assert r.get_json()["grid_code"] == grid["code"] and grid["code"].startswith(district["code"] + "-")


def test_the_gis_export_names_the_county(leader, district):
    r = leader.get("/api/v1/gis/export.shp.zip?period=30d")
    assert r.status_code == 200, r.data[:300]
    assert re.search(rf'filename="?{district["code"]}-gis-', r.headers["Content-Disposition"])
    readme = zipfile.ZipFile(BytesIO(r.data)).read("README.txt").decode("utf-8-sig")
    assert district["name"] in readme.splitlines()[0] and not any(w in readme for w in SEED_WORDS)


def test_an_english_name_in_the_geodata_is_the_english_title(app, county_dir, tmp_path):
    """Give the district an English name (as an official import may): the English pages use it."""
    from dashboard import create_app

    named = tmp_path / "geodata"
    shutil.copytree(county_dir, named)
    path = named / "district.geojson"
    data = json.loads(path.read_text(encoding="utf-8"))
    data["features"][0]["properties"]["name_en"] = "Testcounty"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    settings = app.server.extensions["dashboard"].settings
    other = create_app(dataclasses.replace(settings, geodata_dir=named, instance_dir=tmp_path / "i"))
    client = reading_client(other.server)
    title = _title(client.get("/login?lang=en").get_data(as_text=True))
    assert title.startswith("Testcounty District ")  # 区 → District: the kind from the Chinese name's last character
    assert _title(client.get("/login").get_data(as_text=True)).startswith(data["features"][0]["properties"]["name"])
