"""The map's live layers in a real headless Chromium (issue 4): clustered incident markers that match the API,
an escaped popup, hazard sites, safety rings, hotspots with a legend, recolouring without geometry requests."""
from __future__ import annotations

import json
import time
import urllib.request

from shapely.geometry import shape

from tests.conftest import watch


def _get(app, path, headers=None):
    req = urllib.request.Request(app.url + path, headers={"Authorization": "Bearer test-token", **(headers or {})})
    with urllib.request.urlopen(req) as resp:
        return json.loads(resp.read())


def _post(app, path, body, token="test-token"):
    req = urllib.request.Request(app.url + path, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req) as resp:
        return json.loads(resp.read())


def _open_count(app):
    n, cursor = 0, None
    while True:
        page = _get(app, "/api/v1/incidents?status=open&limit=1000" + (f"&cursor={cursor}" if cursor else ""))
        n += len(page["items"])
        cursor = page.get("next_cursor")
        if not cursor:
            return n


def _load(page, app):
    app.sign_in(page)
    page.goto(app.url + "/")
    page.wait_for_selector("path.wx-layer-grids", timeout=30_000)
    page.wait_for_selector(".marker-cluster, .wx-inc", timeout=30_000)
    page.wait_for_function("() => window.wx && window.wx.map.mapFor('map')")


def _toggle_overlay(page, name):
    page.locator(".leaflet-control-layers-overlays label", has_text=name).locator("input").check()


def test_markers_and_clusters_match_the_api(demo_app, page):
    features = _get(demo_app, "/api/map/incidents.json")["features"]
    assert len(features) == _open_count(demo_app) > 0
    _load(page, demo_app)
    shown = """() => {
        let n = 0;
        document.querySelectorAll('.marker-cluster').forEach(el => { n += parseInt(el.innerText.trim(), 10); });
        return n + document.querySelectorAll('.leaflet-marker-pane .wx-inc').length;
    }"""
    try:  # the clusters are drawn in steps: wait until they hold every open incident (or time out and say so)
        page.wait_for_function(f"n => ({shown})() === n", arg=len(features), timeout=15_000)
    except Exception:  # noqa: BLE001 - report what is shown instead of a bare timeout
        pass
    assert page.evaluate(shown) == len(features)
    assert page.js_errors == []
    # overdue cases are marked, and marked more strongly the longer they are past due
    overdue = sorted((f for f in features if f["properties"]["od"] > 0), key=lambda f: -f["properties"]["od"])
    assert overdue, "the demo has overdue open cases"
    for f in (overdue[0], overdue[-1]):
        od, (lon, lat) = f["properties"]["od"], f["geometry"]["coordinates"]
        age = 3 if od > 72 else 2 if od > 24 else 1
        page.evaluate("([lat, lon]) => window.wx.map.mapFor('map').setView([lat, lon], 19, {animate: false})",
                      [lat, lon])
        marker = page.locator(f".leaflet-marker-icon[title$='#{f['properties']['id']}']")
        marker.wait_for(timeout=10_000)
        classes = marker.get_attribute("class")
        assert "wx-overdue" in classes and f"wx-age-{age}" in classes, (od, classes)


def test_popup_shows_the_incident_with_escaped_description(demo_app, page):
    grids = _get(demo_app, "/api/geo/grids.json")["features"]
    point = shape(grids[5]["geometry"]).representative_point()
    text = "<script>window.__pwned=1</script> 仓库堆放危化品 <b>bold</b>"
    created = _post(demo_app, "/api/v1/incidents", {
        "category": "safety.hazchem", "description": text, "lon": point.x, "lat": point.y,
        "severity": 3, "reporter": "测试网格员", "client_ref": f"e2e-popup-{time.time()}"})
    _load(page, demo_app)
    # the new incident arrives through the live refresh (or the first load), then we zoom onto it
    page.evaluate("([lat, lon]) => window.wx.map.mapFor('map').setView([lat, lon], 19, {animate: false})",
                  [point.y, point.x])
    marker = page.locator(f".leaflet-marker-icon[title$='#{created['id']}']")
    marker.wait_for(timeout=15_000)
    marker.click()
    popup = page.locator(f".wx-incident-popup[data-code='{created['code']}']")
    popup.wait_for(timeout=10_000)
    body = popup.inner_text()
    assert "<script>window.__pwned=1</script>" in body  # shown as text
    assert "<b>bold</b>" in body
    assert created["code"] in body and "危险化学品" in body
    assert popup.locator("script").count() == 0 and popup.locator("b", has_text="bold").count() == 0
    assert page.evaluate("() => window.__pwned === undefined")
    assert "已上报" in body  # the lifecycle so far
    props = grids[5]["properties"]
    assert props["name"] in body and props["zone_name"] in body and props["town_name"] in body  # the place


def test_hazard_layer_toggles_on_with_every_site(demo_app, page):
    sites = _get(demo_app, "/api/geo/hazards.json")["features"]
    _load(page, demo_app)
    assert page.locator(".wx-hazard").count() == 0
    _toggle_overlay(page, "风险点位")
    page.wait_for_function("n => document.querySelectorAll('.wx-hazard').length === n", arg=len(sites),
                           timeout=15_000)
    kinds = {f["properties"]["kind"] for f in sites}
    for kind in kinds:
        assert page.locator(f".wx-hazard-{kind}").count() == sum(f["properties"]["kind"] == kind for f in sites)


def test_safety_rings_count_open_incidents_inside(demo_app, page):
    rings = _get(demo_app, "/api/map/rings.json")["features"]
    assert rings and all(f["properties"]["ring_m"] >= 200 for f in rings)
    open_points = [f["geometry"]["coordinates"] for f in _get(demo_app, "/api/map/incidents.json")["features"]]
    import shapely

    ring0 = max(rings, key=lambda f: f["properties"]["open_incidents"])
    poly = shape(ring0["geometry"])
    inside = sum(poly.contains(shapely.Point(x, y)) for x, y in open_points)
    assert abs(inside - ring0["properties"]["open_incidents"]) <= 1  # 48-gon vs true circle at the rim
    _load(page, demo_app)
    _toggle_overlay(page, "安全半径")
    page.wait_for_function("n => document.querySelectorAll('path.wx-ring').length === n", arg=len(rings),
                           timeout=15_000)


def test_recolour_changes_fills_without_geometry_request(demo_app, page):
    _load(page, demo_app)
    zones = len(_get(demo_app, "/api/geo/zones.json")["features"])
    page.wait_for_function("n => [...document.querySelectorAll('path.wx-layer-zones')].filter(p => p.getAttribute('fill'))"
                           ".length === n", arg=zones, timeout=15_000)  # every zone drawn with its first fill
    before = page.evaluate("() => Array.from(document.querySelectorAll('path.wx-layer-zones')).map(p => p.getAttribute('fill'))")
    geometry_requests = []
    page.on("request", lambda r: geometry_requests.append(r.url) if "/api/geo/" in r.url else None)
    page.locator("#map-measure").select_option(label="现场处置率")  # a native <select> (ui/select.py)
    page.wait_for_function("""before => {
        const now = Array.from(document.querySelectorAll('path.wx-layer-zones')).map(p => p.getAttribute('fill'));
        return now.some((f, i) => f !== before[i]);
    }""", arg=before, timeout=15_000)
    page.wait_for_selector("#choropleth-legend:has-text('现场处置率')")
    assert geometry_requests == []
    fills = set(page.evaluate("() => Array.from(document.querySelectorAll('path.wx-layer-zones')).map(p => p.getAttribute('fill'))"))
    assert len(fills) >= 3  # a real scale, not one colour


def _value(page, selector):
    return page.eval_on_selector(selector, "e => e.value")


def _fills(page):
    return page.evaluate("() => Array.from(document.querySelectorAll('path.wx-layer-zones')).map(p => p.getAttribute('fill'))")


def _fills_change(page, before):
    page.wait_for_function("""before => Array.from(document.querySelectorAll('path.wx-layer-zones'))
        .map(p => p.getAttribute('fill')).some((f, i) => f !== before[i])""", arg=before, timeout=15_000)


def test_choice_lists_work_by_keyboard_and_mouse_in_both_languages(demo_app, browser):
    """The overview's choice lists on screen at first paint — the map's measure and hotspot period, the ranking's
    measure — are the browser's own <select> (ui/select.py: no lazy chunk before the map paints): each is named by
    its label, lists the page language's options, and a choice by keyboard (focus, arrow down) or by the mouse's
    pick of an option (Playwright's select_option: the popup of a native <select> is not in the page) reaches its
    callbacks: the zones recolour with the measure's legend, the hotspots are asked for the period, the ranking's
    title names its measure."""
    for lang, labels in (("zh", ["在办案事件", "超期案事件", "现场处置率", "近7天", "下级排名"]),
                         ("en", ["Open incidents", "Overdue incidents", "On-site handling rate", "Last 7 days",
                                 "Ranking of"])):
        first, by_key, by_mouse, week, ranking = labels
        ctx = browser.new_context(viewport={"width": 1600, "height": 1000})
        page = ctx.new_page()
        errors = watch(page)
        demo_app.sign_in(page)
        page.goto(demo_app.url + ("/?lang=en" if lang == "en" else "/"))
        page.wait_for_selector("path.wx-layer-grids", timeout=30_000)
        page.wait_for_function("() => window.wx && window.wx.map.mapFor('map')")
        zones = len(_get(demo_app, "/api/geo/zones.json")["features"])
        page.wait_for_function("n => [...document.querySelectorAll('path.wx-layer-zones')].filter(p => p.getAttribute('fill'))"
                               ".length === n", arg=zones, timeout=15_000)  # every zone drawn with its first fill
        select = page.locator("select#map-measure")
        assert select.evaluate("e => e.labels.length") == 1  # its <label for> names it
        options = select.locator("option").all_text_contents()
        assert options[1:3] == [first, by_key] and by_mouse in options, options
        assert select.locator("option:checked").text_content() == first

        # keyboard: focus and arrow down chooses the next measure
        before = _fills(page)
        select.focus()
        page.keyboard.press("ArrowDown")
        assert _value(page, "#map-measure") == "overdue_incidents"
        _fills_change(page, before)
        page.wait_for_selector(f"#choropleth-legend:has-text('{by_key}')", timeout=15_000)

        # the mouse's pick of an option
        before = _fills(page)
        select.select_option(label=by_mouse)
        _fills_change(page, before)
        page.wait_for_selector(f"#choropleth-legend:has-text('{by_mouse}')", timeout=15_000)

        # the hotspot period: the layer on, then the period chosen by keyboard and by the mouse
        _toggle_overlay(page, {"zh": "热点", "en": "Hotspots"}[lang])
        page.wait_for_selector("path.wx-hex", timeout=15_000)
        period = page.locator("select#hotspot-period")
        asked = """p => performance.getEntriesByType('resource')
            .some(e => e.name.includes('/api/map/hotspots.json?period=' + p))"""
        period.focus()
        page.keyboard.press("ArrowDown")
        assert _value(page, "#hotspot-period") == "year"
        page.wait_for_function(asked, arg="year", timeout=30_000)
        period.select_option(label=week)
        assert _value(page, "#hotspot-period") == "7d"
        page.wait_for_function(asked, arg="7d", timeout=30_000)

        # the ranking's measure (the panel's charts mount once the map has drawn)
        title = "#chart-ranking .gtitle"
        page.wait_for_selector(title, timeout=60_000)
        kpi = page.locator("select#ranking-kpi")
        assert kpi.evaluate("e => e.labels.length") == 1
        assert ranking in page.locator(title).text_content()
        kpi.select_option(label=by_mouse)
        page.wait_for_function("([sel, want]) => (document.querySelector(sel) || {}).textContent?.includes(want)",
                               arg=[title, by_mouse], timeout=30_000)
        kpi.focus()
        page.keyboard.press("ArrowUp")
        chosen = kpi.locator("option:checked").text_content()
        assert chosen != by_mouse
        page.wait_for_function("([sel, want]) => (document.querySelector(sel) || {}).textContent?.includes(want)",
                               arg=[title, chosen], timeout=30_000)
        assert errors == []
        ctx.close()


def test_hotspot_layer_draws_with_legend(demo_app, page):
    fc = _get(demo_app, "/api/map/hotspots.json?period=30d")
    assert fc["features"] and "Gi*" in fc["meta"]["method"]
    _load(page, demo_app)
    assert page.locator("#hotspot-legend").count() == 0
    _toggle_overlay(page, "热点")
    page.wait_for_function("n => document.querySelectorAll('path.wx-hex').length === n", arg=len(fc["features"]),
                           timeout=15_000)
    page.wait_for_selector("#hotspot-legend")
    hot = sum(f["properties"]["hot"] for f in fc["features"])
    assert page.locator("path.wx-hex-hot").count() == hot


def test_configured_tiles_are_requested_and_failing_tiles_do_not_block(demo_app, browser):
    """TILE_URL decides where tiles come from; when they fail, polygons and markers still draw."""
    from dashboard import create_app
    from dashboard.settings import Settings
    from tests.conftest import SUITE_LIMITS, LiveServer

    settings = Settings(instance_dir=demo_app.app.server.extensions["dashboard"].settings.instance_dir,
                        tile_url="http://127.0.0.1:9/tiles/{z}/{x}/{y}.png", demo_live=False, rate_limits=SUITE_LIMITS)
    server = LiveServer(create_app(settings))
    try:
        ctx = browser.new_context()
        pg = ctx.new_page()
        errors = watch(pg)
        tiles = []
        pg.on("request", lambda r: tiles.append(r.url) if "/tiles/" in r.url else None)
        server.sign_in(pg)
        pg.goto(server.url + "/")
        pg.wait_for_selector("path.wx-layer-grids", timeout=30_000)
        pg.wait_for_selector(".marker-cluster", timeout=30_000)
        assert tiles and all(u.startswith("http://127.0.0.1:9/tiles/") for u in tiles)
        assert pg.locator("path.wx-layer-grids").count() == 538
        assert errors == []
        ctx.close()
    finally:
        server.stop()


def test_clicking_a_cluster_zooms_in_without_a_popup(demo_app, page):
    requests = []
    page.on("request", lambda r: requests.append(r.url) if "/api/v1/incidents/" in r.url else None)
    _load(page, demo_app)
    zoom = page.evaluate("window.wx.map.mapFor('map').getZoom()")
    cluster = page.locator(".marker-cluster").first
    box = cluster.bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)  # a real click, hit-tested
    page.wait_for_function("z => window.wx.map.mapFor('map').getZoom() > z", arg=zoom, timeout=10_000)
    page.wait_for_timeout(800)
    assert page.locator(".leaflet-popup").count() == 0
    assert [u for u in requests if "undefined" in u or "null" in u] == []
    assert page.js_errors == []


def test_colouring_towns_shows_the_towns_layer_coloured(demo_app, page):
    """The towns start hidden; choosing 镇街 for the colour measure shows them, coloured like the API says."""
    _load(page, demo_app)
    assert page.locator("path.wx-layer-towns").count() == 0
    page.locator("#map-measure-layer input[value='towns']").check()
    page.wait_for_function("() => document.querySelectorAll('path.wx-layer-towns').length === 17", timeout=15_000)
    payload = _get(demo_app, "/api/map/measures.json?layer=towns&measure=open_incidents")
    assert len(payload["colors"]) >= 2
    page.wait_for_function("""cs => { const f = new Set(Array.from(document.querySelectorAll('path.wx-layer-towns'))
        .map(p => p.getAttribute('fill'))); return f.size >= 2 && [...f].every(c => cs.includes(c)); }""",
                           arg=payload["colors"], timeout=15_000)
    assert page.locator(".leaflet-control-layers-overlays input:checked + span", has_text="镇街").count() == 1


def test_colours_that_arrive_while_the_towns_load_are_not_lost(demo_app, page):
    """dash-leaflet drops a hideout that reaches a layer while its url is being fetched: the colours computed for
    the towns (a server callback) and the towns' geometry (fetched once the hidden layer is switched on) race on a
    busy server. Made deterministic here: the colours are held until the towns' fetch has begun, and the towns
    until the colours are in the page; the towns must still end up coloured like the API says."""
    held = {"towns": [], "colours": []}

    def hold_towns(route):
        held["towns"].append(route)

    def hold_colours(route):
        if "geo-towns.hideout" in (route.request.post_data or ""):
            held["colours"].append(route)
        else:
            route.continue_()

    _load(page, demo_app)
    page.route("**/api/geo/towns.json*", hold_towns)
    page.route("**/_dash-update-component*", hold_colours)
    page.locator("#map-measure-layer input[value='towns']").check()
    for what in ("colours", "towns"):  # both requests made, both held
        for _ in range(300):
            if held[what]:
                break
            page.wait_for_timeout(50)  # route handlers run during Playwright calls
        assert held[what], f"no {what} request"
    held["colours"][0].continue_()
    page.wait_for_function("() => { const h = window.wx.map.hideoutOf('towns'); "
                           "return !!(h && h.colors && h.colors.length); }", timeout=15_000)
    held["towns"][0].continue_()
    page.wait_for_function("() => document.querySelectorAll('path.wx-layer-towns').length === 17", timeout=15_000)
    payload = _get(demo_app, "/api/map/measures.json?layer=towns&measure=open_incidents")
    page.wait_for_function("""cs => { const f = new Set(Array.from(document.querySelectorAll('path.wx-layer-towns'))
        .map(p => p.getAttribute('fill'))); return f.size >= 2 && [...f].every(c => cs.includes(c)); }""",
                           arg=payload["colors"], timeout=15_000)
