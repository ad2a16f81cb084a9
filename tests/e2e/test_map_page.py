"""The first page in a real headless Chromium: the district, 46 zones and 538 grids drawn; hover names a grid."""
from __future__ import annotations

import json
import re
import urllib.request
from urllib.parse import parse_qsl, urlsplit

import pytest

from tests.conftest import watch
from tests.conftest import authed


def _geo(live_app, layer):
    with urllib.request.urlopen(authed(f"{live_app.url}/api/geo/{layer}.json")) as resp:
        return json.loads(resp.read())


def test_page_draws_every_grid_and_zone(live_app, page):
    grids = _geo(live_app, "grids")["features"]
    zones = _geo(live_app, "zones")["features"]
    live_app.sign_in(page)
    page.goto(live_app.url + "/")
    page.wait_for_function(
        "n => document.querySelectorAll('path.wx-layer-grids').length >= n", arg=len(grids), timeout=30_000)
    assert page.locator("path.wx-layer-grids").count() == len(grids) == 538
    assert page.locator("path.wx-layer-zones").count() == len(zones) == 46
    assert page.locator("path.wx-layer-district").count() >= 1
    # Chinese first: the title and layer control are in Simplified Chinese
    district = _geo(live_app, "district")["features"][0]["properties"]
    assert f"{district['name']}基层社会治理指挥中心" == page.locator("h1").inner_text()
    assert page.get_by_text("片区", exact=True).count() >= 1
    assert page.js_errors == []


def test_hovering_a_grid_names_grid_zone_and_town(live_app, page):
    by_code = {f["properties"]["code"]: f["properties"] for f in _geo(live_app, "grids")["features"]}
    live_app.sign_in(page)
    page.goto(live_app.url + "/")
    page.wait_for_selector("path.wx-layer-grids")
    target = page.locator("path.wx-layer-grids").nth(100)
    target.dispatch_event("mouseover", {"clientX": 400, "clientY": 400})
    tip = page.locator(".wx-tooltip")
    tip.wait_for(timeout=5_000)
    text = tip.inner_text()
    code = next(c for c in by_code if c in text)
    props = by_code[code]
    assert props["name"] in text
    assert props["zone_name"] in text
    assert props["town_name"] in text


def test_english_switch(live_app, page):
    live_app.sign_in(page)
    page.goto(live_app.url + "/")
    page.wait_for_selector("#lang-switch")
    page.click("#lang-switch")
    page.wait_for_url("**lang=en**")
    page.wait_for_selector("h1")
    assert "Command Centre" in page.locator("h1").inner_text()
    page.wait_for_selector("path.wx-layer-grids")
    assert page.get_by_text("Management zones", exact=True).count() >= 1


def test_the_language_switch_keeps_the_view_the_page_went_to(live_app, page):
    """The switch's href is written with the query the page was served with; after a drill in the browser (the URL
    written client-side, as a map click does) and a period choice, switching language keeps both, and back."""
    from dashboard.geodata import load_geodata

    zone = load_geodata().zones.sort_values("code").iloc[3]
    live_app.sign_in(page)
    page.goto(live_app.url + "/")
    page.wait_for_selector("path.wx-layer-grids", timeout=60_000)
    page.evaluate("""z => { history.pushState({}, '', '/?level=zone&code=' + z);
                            window.dispatchEvent(new CustomEvent('_dashprivate_pushstate')); }""", zone["code"])
    page.wait_for_function("z => (document.querySelector('#unit-title') || {}).innerText?.includes(z)",
                           arg=zone["code"], timeout=30_000)
    page.locator("#period-select input[value='7d']").check()
    page.wait_for_function("() => new URLSearchParams(location.search).get('period') === '7d'", timeout=30_000)
    page.click("#lang-switch")
    page.wait_for_url("**lang=en**")
    q = dict(parse_qsl(urlsplit(page.url).query))
    assert q == {"level": "zone", "code": zone["code"], "period": "7d", "lang": "en"}, q
    page.wait_for_function("z => (document.querySelector('#unit-title') || {}).innerText?.includes(z)",
                           arg=zone["code"], timeout=30_000)
    assert "Command Centre" in page.locator("h1").inner_text()
    page.click("#lang-switch")
    page.wait_for_function("() => !new URLSearchParams(location.search).has('lang')", timeout=30_000)
    q = dict(parse_qsl(urlsplit(page.url).query))
    assert q == {"level": "zone", "code": zone["code"], "period": "7d"}, q
    page.wait_for_selector("h1", timeout=30_000)
    assert "指挥中心" in page.locator("h1").inner_text()


def test_english_names_every_unit_down_to_the_grid(live_app, page):
    """In English a grid is named in English too (its village or community in pinyin), and so are its zone and town in
    the breadcrumb: no Chinese name is left in the panel's title and breadcrumb."""
    from dashboard.geodata import load_geodata

    gd = load_geodata()
    grid = gd.grids.sort_values("code").iloc[17]
    zone = gd.zones.set_index("code").loc[grid["zone_code"]]
    town = gd.towns.set_index("code").loc[grid["town_code"]]
    live_app.sign_in(page)
    page.goto(live_app.url + f"/?level=grid&code={grid['code']}&lang=en")
    page.wait_for_function("n => (document.querySelector('#unit-title') || {}).innerText?.includes(n)",
                           arg=grid["name_en"], timeout=60_000)
    crumbs = page.locator("#breadcrumb").inner_text()
    assert zone["name_en"] in crumbs and town["name_en"] in crumbs, crumbs
    text = page.locator("#unit-title").inner_text() + crumbs
    assert not re.search(r"[\u4e00-\u9fff]", text), text


def test_a_town_opened_by_its_link_is_outlined_with_its_layer_off(live_app, page):
    """The towns start switched off: a town opened by its link is outlined all the same (its polygon fetched for the
    view), over the box its zones cover; switched on, the outline stays, from the town's own polygon."""
    from dashboard.geodata import load_geodata

    gd = load_geodata()
    town = gd.towns.sort_values("code").iloc[7]["code"]
    live_app.sign_in(page)
    page.goto(live_app.url + f"/?level=town&code={town}")
    page.wait_for_selector("path.wx-layer-zones", timeout=60_000)
    page.wait_for_function("() => document.querySelectorAll('path.wx-selected-outline.wx-selected-towns').length === 1",
                           timeout=30_000)
    assert not page.query_selector("path.wx-layer-towns")
    boxes = page.evaluate("""t => { const m = wx.map.mapFor('map'), rs = [];
        m.eachLayer(l => { if (l.feature && l.feature.properties.town_code === t && l._path &&
            /wx-layer-zones/.test((l.options || {}).className || '')) { rs.push(l._path.getBoundingClientRect()); } });
        const o = document.querySelector('path.wx-selected-outline.wx-selected-towns').getBoundingClientRect();
        return {n: rs.length, outline: [o.left, o.top, o.right, o.bottom],
                zones: [Math.min(...rs.map(r => r.left)), Math.min(...rs.map(r => r.top)),
                        Math.max(...rs.map(r => r.right)), Math.max(...rs.map(r => r.bottom))]}; }""", town)
    assert boxes["n"] == len(gd.zones[gd.zones["town_code"] == town]), boxes
    assert all(abs(a - b) <= 3 for a, b in zip(boxes["outline"], boxes["zones"])), boxes
    page.locator(".leaflet-control-layers-overlays label", has_text="镇街").locator("input").check()
    page.wait_for_selector("path.wx-layer-towns", timeout=30_000)
    page.wait_for_function("""t => { const m = wx.map.mapFor('map'); let src = null;
        m.eachLayer(l => { if (l.feature && l.feature.properties.code === t && l._path &&
            /wx-layer-towns/.test((l.options || {}).className || '')) { src = l; } });
        const o = document.querySelectorAll('path.wx-selected-outline.wx-selected-towns');
        if (!src || o.length !== 1) { return false; }
        const a = src._path.getBoundingClientRect(), b = o[0].getBoundingClientRect();
        return ['left', 'top', 'right', 'bottom'].every(k => Math.abs(a[k] - b[k]) <= 2); }""", arg=town,
                           timeout=30_000)


def test_no_external_requests_but_tiles(live_app, browser):
    """Offline-safe: with no tile URL the page loads nothing from outside this server."""
    context = browser.new_context()
    pg = context.new_page()
    errors = watch(pg)
    outside: list[str] = []
    pg.on("request", lambda r: outside.append(r.url) if not r.url.startswith(live_app.url) and not r.url.startswith("data:") else None)
    live_app.sign_in(pg)
    pg.goto(live_app.url + "/")
    pg.wait_for_selector("path.wx-layer-grids", timeout=30_000)
    context.close()
    assert outside == [] and errors == []


@pytest.mark.parametrize("server,reason", [("live_app", "drawn-no-incidents"), ("demo_app", "drawn")])
def test_charts_load_after_the_map_has_drawn(request, browser, server, reason):
    """plotly.js (4.8 MB to evaluate) is fetched only once the grids and the incident markers are on the map, and
    the panel's charts then draw. With no open incident at all (the empty store) there is no marker to wait for:
    the panel must not wait for the 6-second fallback either."""
    app = request.getfixturevalue(server)
    context = browser.new_context(viewport={"width": 1600, "height": 1000})
    pg = context.new_page()
    errors = watch(pg)
    console_errors = []
    pg.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
    pg.add_init_script("""
        window.__drawnAt = null;
        new MutationObserver(() => {
            if (window.__drawnAt === null && document.querySelectorAll('path.wx-layer-grids').length === 538) {
                window.__drawnAt = performance.now();
            }
            if (window.__markersAt === undefined && document.querySelector('.marker-cluster, .leaflet-marker-pane .wx-inc')) {
                window.__markersAt = performance.now();
            }
        }).observe(document, {childList: true, subtree: true});
    """)
    app.sign_in(pg)
    pg.goto(app.url + "/")
    pg.wait_for_selector("#chart-ranking .main-svg", timeout=30_000)
    pg.wait_for_selector("#chart-funnel .main-svg", timeout=30_000)
    drawn, markers = pg.evaluate("[window.__drawnAt, window.__markersAt === undefined ? null : window.__markersAt]")
    plotly = pg.evaluate("""() => performance.getEntriesByType('resource')
        .filter(e => e.name.includes('plotly')).map(e => e.startTime)""")
    assert drawn is not None and plotly, (drawn, plotly)
    assert min(plotly) > drawn
    if reason == "drawn":
        assert markers is not None and min(plotly) > markers
    assert pg.evaluate("document.body.dataset.mapReady") == reason
    assert console_errors == [] and errors == []  # e.g. no callback aimed at a chart before it was mounted
    context.close()


def test_full_screen_keeps_the_legend_and_controls(live_app, page):
    live_app.sign_in(page)
    page.goto(live_app.url + "/")
    page.wait_for_selector("path.wx-layer-grids", state="attached", timeout=30_000)
    page.click(".wx-fullscreen-button")
    page.wait_for_function("() => document.fullscreenElement && document.fullscreenElement.id === 'map-panel'")
    inside = page.evaluate("""() => ['#map-legend', '#map-controls', '#map'].map(
        s => document.fullscreenElement.contains(document.querySelector(s)))""")
    assert inside == [True, True, True]
    page.click(".wx-fullscreen-button")
    page.wait_for_function("() => !document.fullscreenElement")
    assert page.js_errors == []
