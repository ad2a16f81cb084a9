"""The local basemap served from the app's own origin (issue 12): ``GET /tiles/<base|dark>/<z>/<x>/<y>.<ext>`` from
TILE_FILE (MBTiles, PNG) and TILE_FILE_DARK (PMTiles, JPEG): the image with its type, cache headers and ETag (304),
404 for a tile the file lacks, 4xx (never 500) for malformed addresses, WALL access (signed-in users, the kiosk,
read tokens; anonymous 401, PUBLIC_OVERVIEW opens it), its own rate limit, and pages that name no tile host."""
from __future__ import annotations

import json

import pytest

from tests import tiles_fixture as tf
from tests.conftest import signed_in_client

WALL_TOKEN = "wall-tiles"
TOKENS = ("test-token", "reader-token:read", "ingest-token:ingest")


@pytest.fixture(scope="module")
def tile_map():
    return tf.tiles(zooms=(10, 11))


@pytest.fixture(scope="module")
def dark_map(tile_map):
    return {a: tf.image(*a, fmt="jpg") for a in tile_map}


@pytest.fixture(scope="module")
def app(tmp_path_factory, tile_map, dark_map):
    from dashboard import create_app
    from dashboard.settings import Settings

    base = tmp_path_factory.mktemp("tiles-app")
    light = tf.write_mbtiles(base / "light.mbtiles", tile_map, attribution="© 天地图·浙江")
    dark = tf.write_pmtiles(base / "dark.pmtiles", dark_map, fmt="jpg")
    # the API read limit is tiny: tiles must count under their own rule ("tiles"), not eat the map data's budget
    return create_app(Settings(instance_dir=base / "instance", tile_file=str(light), tile_file_dark=str(dark),
                               demo_live=False, cache_url="null", api_tokens=TOKENS, wall_tokens=(WALL_TOKEN,),
                               rate_limits={"read": "3/minute", "login_name": "100/minute",
                                            "login_address": "100/minute"}))


@pytest.fixture(scope="module")
def leader(app):
    return signed_in_client(app.server, "leader")


def _url(address, name="base", ext="png"):
    z, x, y = address
    return f"/tiles/{name}/{z}/{x}/{y}.{ext}"


def test_a_tile_comes_with_its_type_cache_headers_and_etag(leader, tile_map, dark_map):
    address, data = sorted(tile_map.items())[3]
    r = leader.get(_url(address))
    assert r.status_code == 200 and r.data == data
    assert r.headers["Content-Type"] == "image/png"
    cache = r.headers["Cache-Control"]
    assert cache.startswith("public") and int(cache.split("max-age=")[1]) >= 3600
    etag = r.headers["ETag"]
    again = leader.get(_url(address), headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b"" and again.headers["ETag"] == etag
    other = sorted(tile_map)[4]
    assert leader.get(_url(other), headers={"If-None-Match": etag}).status_code == 200  # another tile, another tag
    head = leader.head(_url(address))
    assert head.status_code == 200 and head.headers["Content-Type"] == "image/png"
    dark = leader.get(_url(address, "dark", "jpg"))
    assert dark.status_code == 200 and dark.data == dark_map[address] and dark.headers["Content-Type"] == "image/jpeg"
    assert leader.get(_url(address, "dark", "jpeg")).data == dark_map[address]


def test_every_tile_of_the_file_is_served_at_its_xyz_address(leader, tile_map):
    for address, data in tile_map.items():
        r = leader.get(_url(address))
        assert (r.status_code, r.data == data) == (200, True), address


def test_a_tile_the_file_lacks_is_a_plain_404(leader):
    r = leader.get("/tiles/base/11/0/0.png")
    assert r.status_code == 404 and r.mimetype == "text/plain" and len(r.data) < 100


@pytest.mark.parametrize("path,status", [
    ("/tiles/base/-1/0/0.png", 400),
    ("/tiles/base/10/-3/5.png", 400),
    ("/tiles/base/10/855/abc.png", 400),
    ("/tiles/base/99999999999999999999999999/0/0.png", 400),
    ("/tiles/base/10/855/423.5.png", 400),
    ("/tiles/base/10/%EF%BC%91/0.png", 400),  # a full-width digit
    ("/tiles/base/10/0/1024.png", 404),  # y beyond 2**10
    ("/tiles/base/31/0/0.png", 404),  # deeper than any zoom served
    ("/tiles/base/4294967295/4294967295/4294967295.png", 404),
    ("/tiles/base/10/855/423.jpg", 404),  # the file's tiles are png
    ("/tiles/base/10/855/423.gif", 404),
    ("/tiles/night/10/855/423.png", 404),
    ("/tiles/base/10/855", 404),
    ("/tiles/base/10/855/423/1.png", 404),
    ("/tiles/", 404),
])
def test_malformed_addresses_are_refused_never_a_500(leader, path, status):
    r = leader.get(path)
    assert r.status_code == status, (path, r.data[:200])
    assert r.get_json()["error"]["code"] in ("invalid_value", "not_found")


def test_anonymous_is_refused_like_other_wall_paths(app, tile_map):
    address = next(iter(tile_map))
    anon = app.server.test_client()
    for path in (_url(address), "/api/geo/zones.json"):
        r = anon.get(path)
        assert r.status_code == 401 and r.get_json()["error"]["code"] == "unauthorized", path
    assert anon.get("/tiles/base/-1/0/0.png").status_code == 401  # who asks comes before what is asked


def test_the_wall_and_read_tokens_may_load_tiles_an_ingest_token_may_not(app, tile_map):
    address, data = next(iter(tile_map.items()))
    wall = app.server.test_client()
    assert wall.get(f"/wall?token={WALL_TOKEN}").status_code == 303
    r = wall.get(_url(address))
    assert r.status_code == 200 and r.data == data
    assert app.server.test_client().get(_url(address), headers={"Authorization": "Bearer reader-token"}).data == data
    r = app.server.test_client().get(_url(address), headers={"Authorization": "Bearer ingest-token"})
    assert r.status_code == 403


def test_tiles_count_under_their_own_rate_limit(app, tile_map):
    client = signed_in_client(app.server, "duty_officer")
    statuses = {client.get(_url(a)).status_code for a in list(tile_map)[:12]}
    assert statuses == {200}  # 12 tiles with a read limit of 3 a minute
    reads = [client.get("/api/geo/zones.json").status_code for _ in range(4)]
    assert reads[:3] == [200, 200, 200] and reads[3] == 429  # the read limit itself still holds


def _walk(node):
    if isinstance(node, dict):
        yield node
        for v in node.values():
            yield from _walk(v)
    elif isinstance(node, list):
        for v in node:
            yield from _walk(v)


@pytest.mark.parametrize("path", ["/", "/incidents", "/wall"])
def test_the_pages_draw_this_apps_tiles_and_name_no_tile_host(app, leader, path):
    client = leader
    if path == "/wall":
        client = app.server.test_client()
        client.get(f"/wall?token={WALL_TOKEN}")
    r = client.get("/_dash-layout", headers={"Referer": f"http://localhost{path}"})
    assert r.status_code == 200
    layers = [n["props"] for n in _walk(r.get_json()) if n.get("type") == "TileLayer"]
    assert [p["url"].split("{z}")[0] for p in layers] == ["/tiles/base/", "/tiles/dark/"]
    base = layers[0]
    assert (base["minZoom"], base["maxNativeZoom"]) == (10, 11) and base["maxZoom"] >= 19
    (s, w), (n, e) = base["bounds"]
    assert (w, s, e, n) == pytest.approx(tf.WUXING)
    assert base["attribution"] == "© 天地图·浙江"
    text = json.dumps(r.get_json())
    assert "openstreetmap" not in text and "cartocdn" not in text
    policy = client.get(path).headers["Content-Security-Policy"]
    assert "img-src 'self' data: blob:;" in policy


def test_public_overview_opens_the_tiles_too(tmp_path, tile_map):
    from dashboard import create_app
    from dashboard.settings import Settings

    light = tf.write_mbtiles(tmp_path / "l.mbtiles", tile_map)
    app = create_app(Settings(instance_dir=tmp_path / "i", tile_file=str(light), demo_live=False, cache_url="null",
                              public_overview=True), with_store=False)
    address, data = next(iter(tile_map.items()))
    assert app.server.test_client().get(_url(address)).data == data
