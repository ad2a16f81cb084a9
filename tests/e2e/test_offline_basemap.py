"""The offline basemap in a real headless Chromium (issue 12): the app started with TILE_FILE (and a TILE_URL that
must be ignored) draws the overview's basemap from its own /tiles/ route, under its Content-Security-Policy, and the
browser asks no other origin for anything."""
from __future__ import annotations

import pytest

from tests import tiles_fixture as tf
from tests.conftest import SUITE_LIMITS, LiveServer, watch

OSM = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"


@pytest.fixture(scope="module")
def offline_app(tmp_path_factory):
    from dashboard import create_app
    from dashboard.settings import Settings

    base = tmp_path_factory.mktemp("offline-basemap")
    tile_file = tf.write_mbtiles(base / "wuxing.mbtiles", tf.tiles(), attribution="© 离线测试底图")
    # TILE_URL and TILE_URL_DARK keep their internet defaults on purpose: TILE_FILE must win
    server = LiveServer(create_app(Settings(instance_dir=base / "instance", tile_file=str(tile_file), tile_url=OSM,
                                            demo_live=False, rate_limits=SUITE_LIMITS)))
    yield server
    server.stop()


TILE_IMAGES = """() => Array.from(document.querySelectorAll('.leaflet-tile-pane img.leaflet-tile')).map(i => ({
    src: i.src, width: i.naturalWidth, loaded: i.complete && i.classList.contains('leaflet-tile-loaded')}))"""


def test_overview_draws_tiles_from_its_own_origin_and_asks_no_other(offline_app, browser):
    ctx = browser.new_context(viewport={"width": 1600, "height": 1000}, locale="zh-CN", bypass_csp=False)
    page = ctx.new_page()
    errors = watch(page)
    requests: list[str] = []
    tile_status: dict[str, int] = {}
    page.on("request", lambda r: requests.append(r.url))
    page.on("response", lambda r: tile_status.__setitem__(r.url, r.status) if "/tiles/" in r.url else None)
    offline_app.sign_in(page)
    page.goto(offline_app.url + "/")
    # selectors only: the policy forbids the eval that wait_for_function needs
    page.wait_for_selector("path.wx-layer-grids", timeout=30_000)
    page.wait_for_selector(".leaflet-tile-pane img.leaflet-tile-loaded", timeout=30_000)
    page.wait_for_selector(".leaflet-tile-pane img.leaflet-tile:not(.leaflet-tile-loaded)", state="detached",
                           timeout=30_000)  # every tile of the view has loaded (a failed one never would)
    images = page.evaluate(TILE_IMAGES)
    own = offline_app.url + "/tiles/base/"
    assert len(images) >= 4, images
    assert all(i["src"].startswith(own) and i["loaded"] and i["width"] == 256 for i in images), images
    assert "© 离线测试底图" in page.locator(".leaflet-control-attribution").inner_text()

    # beyond the file's deepest zoom (12) the map scales zoom 12's tiles up instead of asking for zoom 13
    page.evaluate("() => { window.wx.map.mapFor('map').setView([30.87, 120.09], 13, {animate: false}); }")
    page.wait_for_selector(".leaflet-tile-pane img.leaflet-tile-loaded[src*='/tiles/base/12/']", timeout=15_000)
    assert not [u for u in tile_status if "/tiles/base/13/" in u]

    others = [u for u in requests if not u.startswith(offline_app.url + "/") and not u.startswith(("data:", "blob:"))]
    assert others == [], others[:5]
    assert tile_status and set(tile_status.values()) <= {200, 304}, tile_status
    ctx.close()
    assert errors == [], errors[:3]
