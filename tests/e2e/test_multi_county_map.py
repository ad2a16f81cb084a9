"""A province's overview in a real browser (the seed's towns regrouped into three counties of two cities,
``tests/regrouped.py``, on the small demo history): it paints its cities and counties coloured by the measure and
no grid; zooming in brings the zones and grids of the view only (the server sends the units of the view's box);
a click on a county drills into it (URL, breadcrumb, panel, its towns ranked) and the browser's back button returns;
recolouring at county level changes the counties' fills."""
from __future__ import annotations

import re

import pytest

from tests.conftest import SUITE_LIMITS, LiveServer
from dashboard.geodata import load_geodata
from tests.regrouped import COUNTIES, PROVINCE, county_of_towns, write_regrouped


@pytest.fixture(scope="module")
def province_server(small_demo_instance, tmp_path_factory):
    from dashboard import create_app
    from dashboard.geodata import load_geodata
    from dashboard.settings import Settings

    base = tmp_path_factory.mktemp("province")
    gdir = write_regrouped(load_geodata(), base / "geodata", with_cities=True)
    settings = Settings(instance_dir=small_demo_instance, geodata_dir=gdir, tile_url="", demo_live=False,
                        cache_url=f"file://{base / 'cache'}", api_tokens=("test-token",), rate_limits=SUITE_LIMITS)
    server = LiveServer(create_app(settings))
    yield server
    server.stop()


def _count(page, layer: str) -> int:
    return page.locator(f"path.wx-layer-{layer}").count()


def _fills(page, layer: str) -> list:
    return page.eval_on_selector_all(f"path.wx-layer-{layer}", "els => els.map(e => e.getAttribute('fill-opacity') + e.getAttribute('fill'))")


def test_province_paints_counties_then_the_view_s_grids_and_drills_by_click(province_server, page):
    geo_requests = []
    page.on("request", lambda r: geo_requests.append(r.url.split("/api/geo/")[1]) if "/api/geo/" in r.url else None)
    province_server.sign_in(page)
    page.goto(province_server.url + "/")
    page.wait_for_function("() => document.querySelectorAll('path.wx-layer-counties').length === %d" % len(COUNTIES),
                           timeout=30_000)
    page.wait_for_function("() => document.querySelectorAll('path.wx-layer-cities').length === 2", timeout=30_000)
    assert _count(page, "grids") == 0 and _count(page, "zones") == 0  # no grid or zone at province zoom
    assert not any(u.startswith("grids.json") and "bbox=0,0,0,0" not in u for u in geo_requests), geo_requests
    assert PROVINCE[1] in page.title()
    assert "3 个区县" in page.locator("header").inner_text()
    # the counties are coloured by the measure at start (seeded in the layout: no callback)
    coloured = page.eval_on_selector_all("path.wx-layer-counties",
                                         "els => els.filter(e => +e.getAttribute('fill-opacity') > 0.3).length")
    assert coloured >= 1

    # zoom in on the map's centre: zones and then grids of the view come, never the whole layer
    page.evaluate("() => wx.map.mapFor('map').setZoom(13)")
    page.wait_for_function("() => document.querySelectorAll('path.wx-layer-grids').length > 0", timeout=30_000)
    page.wait_for_function("() => document.querySelectorAll('path.wx-layer-zones').length > 0", timeout=30_000)
    grid_urls = [u for u in geo_requests if u.startswith("grids.json")]
    assert grid_urls and all(re.search(r"bbox=[-0-9.,]+$", u) for u in grid_urls), grid_urls
    n_view = _count(page, "grids")
    assert 0 < n_view < 538  # of the view only
    inside = page.evaluate("""() => { const m = wx.map.mapFor('map'), b = m.getBounds().pad(0.5); let out = 0;
        m.eachLayer(l => { if (l.feature && l.options && /wx-layer-grids/.test(l.options.className || '')
                               && !b.intersects(l.getBounds())) { out++; } });
        return out; }""")
    assert inside == 0  # every grid drawn lies in or next to the view (the server's box is snapped outward)

    # back out, then a real click on a county drills into it
    page.goto(province_server.url + "/")
    page.wait_for_function("() => document.querySelectorAll('path.wx-layer-counties').length === %d" % len(COUNTIES),
                           timeout=30_000)
    code = "990201"  # 乙一县: the only county of 乙市, at the south of the map
    # the incident clusters would take the click (a cluster zooms in): switch the layer off in the layer control
    page.locator(".leaflet-control-layers-overlays label", has_text="案事件").locator("input").uncheck()
    page.wait_for_function("() => !document.querySelector('.marker-cluster, .wx-inc')", timeout=30_000)
    point = page.evaluate("""code => { const m = wx.map.mapFor('map'); let p = null;
        m.eachLayer(l => { if (!p && l.feature && l.feature.properties.code === code && l.getBounds) {
            const c = l.getCenter ? l.getCenter() : l.getBounds().getCenter();
            const xy = m.latLngToContainerPoint(c); const r = m.getContainer().getBoundingClientRect();
            p = [r.left + xy.x, r.top + xy.y]; } });
        return p; }""", code)
    assert point is not None
    page.mouse.click(*point)
    page.wait_for_url(re.compile(rf"level=county&code={code}"), timeout=30_000)
    page.wait_for_function("code => (document.querySelector('#breadcrumb') || {}).innerText?.includes('乙一县')",
                           arg=code, timeout=30_000)
    crumbs = page.locator("#breadcrumb").inner_text()
    assert PROVINCE[1] in crumbs and "乙市" in crumbs and "乙一县" in crumbs
    page.wait_for_function("() => (document.querySelector('#unit-title') || {}).innerText?.includes('990201')",
                           timeout=30_000)
    profile = page.locator("#unit-profile").inner_text()  # the county's profile: its towns, zones and grids
    n_towns = sum(1 for t, c in county_of_towns(load_geodata().towns).items() if c == code)
    assert re.search(rf"镇街数\s*{n_towns}\b", profile) and "片区数" in profile and "区县数" not in profile, profile
    page.go_back()
    page.wait_for_function("() => !location.search.includes('level=')", timeout=30_000)
    page.wait_for_function("() => !(document.querySelector('#breadcrumb') || {innerText: ''}).innerText"
                           ".includes('乙一县')", timeout=30_000)
    page.wait_for_function("() => (document.querySelector('#unit-profile') || {innerText: ''}).innerText"
                           ".includes('区县数')", timeout=30_000)
    profile = page.locator("#unit-profile").inner_text()  # the province's: its cities, counties and towns
    assert re.search(r"地市数\s*2\b", profile) and re.search(rf"区县数\s*{len(COUNTIES)}\b", profile), profile

    # recolour at county level: another measure gives the counties other values
    before = page.evaluate("() => JSON.stringify((wx.map.hideoutOf('counties') || {}).values || {})")
    page.locator("#map-measure").select_option(value="overdue_incidents")  # a native <select> (ui/select.py)
    page.wait_for_function("b => JSON.stringify((wx.map.hideoutOf('counties') || {}).values || {}) !== b"
                           " && (wx.map.hideoutOf('counties') || {}).measureLabel", arg=before, timeout=30_000)
    label = page.evaluate("() => wx.map.hideoutOf('counties').measureLabel")
    assert "超期" in label
