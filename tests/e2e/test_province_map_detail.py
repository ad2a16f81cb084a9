"""The level of detail of a city's or province's map in a real browser (issue 10; the seed's towns regrouped as a
province of three counties in two cities, ``tests/regrouped.py``): ``wx.map.detail`` fetches each layer's geometry
for the view itself and hands it to the layer as data. A jump of the zoom brings the detail of the new view (and only
its grids: the paths are counted), the outlines come coarse or full by the zoom, a late answer for a view the map
has left is dropped, a page opened on a county shows its detail and highlight without any interaction, and a layer
switched off in the layer control is never fetched."""
from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest

from tests.conftest import SUITE_LIMITS, LiveServer
from tests.regrouped import COUNTIES


@pytest.fixture(scope="module")
def province_server(small_demo_instance, tmp_path_factory):
    from dashboard import create_app
    from dashboard.geodata import load_geodata
    from dashboard.settings import Settings
    from tests.regrouped import write_regrouped

    base = tmp_path_factory.mktemp("province-detail")
    gdir = write_regrouped(load_geodata(), base / "geodata", with_cities=True)
    settings = Settings(instance_dir=small_demo_instance, geodata_dir=gdir, tile_url="", demo_live=False,
                        cache_url=f"file://{base / 'cache'}", api_tokens=("test-token",), rate_limits=SUITE_LIMITS)
    server = LiveServer(create_app(settings))
    yield server
    server.stop()


def geo_log(page) -> list:
    """The page's requests of ``/api/geo/…`` as they are made (path and query)."""
    seen: list = []

    def note(r):
        if "/api/geo/" in r.url:
            u = urlsplit(r.url)
            seen.append(u.path + ("?" + u.query if u.query else ""))

    page.on("request", note)
    return seen


# the codes of a layer's features drawn on the map, and the number of its paths
DRAWN = """name => { const m = wx.map.mapFor('map'), out = [];
    m.eachLayer(l => { if (l.feature && new RegExp('wx-layer-' + name + '( |$)').test((l.options || {}).className || ''))
        { out.push(l.feature.properties.code); } });
    return {codes: out, paths: document.querySelectorAll('path.wx-layer-' + name).length}; }"""
# wx.map.detail holds what it wants for the layer and the layer has drawn it
SETTLED = """([name, pattern]) => { const s = wx.map.viewState(name);
    return !!s && s.have !== null && s.have === s.want && new RegExp(pattern).test(s.have)
        && (s.have === '' ? !document.querySelector('path.wx-layer-' + name)
                          : !!document.querySelector('path.wx-layer-' + name)); }"""
SET_VIEW = "([lat, lon, z]) => wx.map.mapFor('map').setView([lat, lon], z, {animate: false})"


def settled(page, name: str, pattern: str, timeout: int = 30_000) -> str:
    """Wait for layer ``name`` to hold what the view wants (its key matching ``pattern``) and return the key."""
    page.wait_for_function(SETTLED, arg=[name, pattern], timeout=timeout)
    return page.evaluate("name => wx.map.viewState(name).have", name)


def served(page, key: str) -> list:
    """The codes the server gives for ``key`` (a url of wx.map.detail)."""
    return page.evaluate("u => (window.__realFetch || fetch)(u).then(r => r.json())"
                         ".then(fc => fc.features.map(f => f.properties.code))", key)


def open_root(server, page) -> None:
    server.sign_in(page)
    page.goto(server.url + "/")
    page.wait_for_function("n => document.querySelectorAll('path.wx-layer-counties').length === n",
                           arg=len(COUNTIES), timeout=45_000)
    page.wait_for_function("() => !!wx.map.mapFor('map') && !!wx.map.viewState('counties')", timeout=30_000)


def centre(page) -> list:
    return page.evaluate("() => { const c = wx.map.mapFor('map').getCenter(); return [c.lat, c.lng]; }")


def test_a_jump_of_the_zoom_brings_the_detail_of_the_new_view_and_only_its_grids(province_server, page):
    log = geo_log(page)
    open_root(province_server, page)
    lat, lon = centre(page)
    # out to zoom 9: the zones are emptied (no request: an empty layer is an empty collection), the outlines lod 2
    page.evaluate(SET_VIEW, [lat, lon, 9])
    settled(page, "zones", "^$")
    for name in ("counties", "cities", "district"):
        assert settled(page, name, r"\?lod=2$") == f"/api/geo/{name}.json?lod=2"
    assert page.evaluate(DRAWN, "counties")["paths"] == len(COUNTIES)
    # the jump 9 → 11: past the zones' zoom (10.5) at once; their units of the new view come, the grids not yet
    page.evaluate(SET_VIEW, [lat, lon, 11])
    zones_key = settled(page, "zones", r"^/api/geo/zones\.json\?bbox=")
    assert sorted(page.evaluate(DRAWN, "zones")["codes"]) == sorted(served(page, zones_key))
    # from zoom 10 the outlines of the view: its counties whole, the root's boundary cut to the box
    counties_key = settled(page, "counties", r"^/api/geo/counties\.json\?bbox=")
    assert sorted(page.evaluate(DRAWN, "counties")["codes"]) == sorted(served(page, counties_key))
    settled(page, "district", r"^/api/geo/district\.json\?bbox=")
    assert page.evaluate(DRAWN, "grids")["paths"] == 0
    # the jump 11 → 13.5 somewhere else: the grids of that view only, each drawn once
    page.evaluate(SET_VIEW, [lat - 0.03, lon + 0.04, 13.5])
    grids_key = settled(page, "grids", r"^/api/geo/grids\.json\?bbox=")
    want = served(page, grids_key)
    drawn = page.evaluate(DRAWN, "grids")
    assert sorted(drawn["codes"]) == sorted(want) and drawn["paths"] == len(want)
    assert 0 < len(want) < 538  # of the view, not the whole layer
    w, s, e, n = (float(v) for v in grids_key.split("bbox=")[1].split(","))
    view = page.evaluate("() => { const b = wx.map.mapFor('map').getBounds(); "
                         "return [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()]; }")
    assert w <= view[0] and s <= view[1] and e >= view[2] and n >= view[3] and e - w < 0.5  # the view's box, snapped
    # several moves in one task: the layers end with what the last view wants
    page.evaluate("""([lat, lon]) => { const m = wx.map.mapFor('map');
        m.setView([lat + 0.05, lon - 0.05], 12.5, {animate: false}); m.setView([lat, lon], 9, {animate: false});
        m.setView([lat + 0.02, lon + 0.02], 12.25, {animate: false}); }""", [lat, lon])
    grids_key2 = settled(page, "grids", r"^/api/geo/grids\.json\?bbox=")
    want2 = served(page, grids_key2)
    drawn2 = page.evaluate(DRAWN, "grids")
    assert sorted(drawn2["codes"]) == sorted(want2) and drawn2["paths"] == len(want2)
    # out to zoom 7: the detail emptied, the outlines at lod 1; back to 9: lod 2 again, from what was kept (no request)
    fetched = page.evaluate("() => wx.map.viewState('counties').fetches")
    page.evaluate(SET_VIEW, [lat, lon, 7])
    for name in ("zones", "grids"):
        settled(page, name, "^$")
    for name in ("counties", "cities", "district"):
        assert settled(page, name, r"\?lod=1$") == f"/api/geo/{name}.json?lod=1"
    assert page.evaluate(DRAWN, "counties")["paths"] == len(COUNTIES)
    page.evaluate(SET_VIEW, [lat, lon, 9])
    settled(page, "counties", r"\?lod=2$")
    assert page.evaluate("() => wx.map.viewState('counties').fetches") == fetched + 1  # lod 1 only: lod 2 was kept
    geo = [u for u in log if not u.startswith("/api/geo/hazards")]
    assert not any("bbox=0,0,0,0" in u for u in geo), geo  # nothing is asked for an empty layer
    assert not any(re.match(r"^/api/geo/(district|cities|counties|towns|zones|grids)\.json$", u)
                   for u in geo), geo  # never a whole layer
    assert not any(u.startswith("/api/geo/towns") for u in geo), geo  # the towns' overlay is off
    for u in {u for u in geo if "lod=" in u}:
        assert geo.count(u) == 1, (u, geo)


# mark each drawn polygon of a layer (its path element) with its unit's code; the codes of the marked paths left
MARK = """name => { const m = wx.map.mapFor('map'); m.eachLayer(l => {
    if (l.feature && l._path && new RegExp('wx-layer-' + name + '( |$)').test((l.options || {}).className || ''))
        { l._path.setAttribute('data-wx-mark', l.feature.properties.code); } }); }"""
MARKED = """name => Array.from(document.querySelectorAll('path.wx-layer-' + name + '[data-wx-mark]'))
    .map(p => p.getAttribute('data-wx-mark'))"""
# per unit of a layer: its polygons' vertex counts as drawn (rings flattened), to compare with the served geometry
RINGS = """name => { const m = wx.map.mapFor('map'), out = {};
    m.eachLayer(l => { if (l.feature && l.getLatLngs && new RegExp('wx-layer-' + name + '( |$)').test(
        (l.options || {}).className || '')) { out[l.feature.properties.code] = l.getLatLngs().flat(3).length; } });
    return out; }"""
SERVED_RINGS = """u => (window.__realFetch || fetch)(u).then(r => r.json()).then(fc => { const out = {};
    fc.features.forEach(f => { const g = f.geometry, c = g.coordinates;
        // a polygon's rings lose their closing vertex (equal to the first) in Leaflet; a line keeps every vertex
        const polys = g.type === 'Polygon' ? [c] : g.type === 'MultiPolygon' ? c : null;
        out[f.properties.code] = polys ? polys.reduce((n, p) => n + p.reduce((k, r) => k + r.length - 1, 0), 0)
            : (g.type === 'LineString' ? [c] : c).reduce((n, r) => n + r.length, 0); });
    return out; })"""


def test_a_move_keeps_the_polygons_both_views_share(province_server, page):
    """A pan at grid zoom: the grids in both boxes keep their drawn polygons (the same path elements), those of the
    old box only are removed and those of the new box only are drawn — each unit of the new box once, with its
    served geometry; a zoom out empties the layer; a recolour (new style functions) draws the layer anew."""
    open_root(province_server, page)
    lat, lon = centre(page)
    page.evaluate(SET_VIEW, [lat, lon, 12.5])
    first_key = settled(page, "grids", r"^/api/geo/grids\.json\?bbox=")
    first = set(page.evaluate(DRAWN, "grids")["codes"])
    page.evaluate(MARK, "grids")
    assert sorted(page.evaluate(MARKED, "grids")) == sorted(first)
    page.evaluate("() => wx.map.mapFor('map').panBy([320, 180], {animate: false})")
    second_key = settled(page, "grids", r"^/api/geo/grids\.json\?bbox=(?!" + re.escape(first_key.split("bbox=")[1])
                         + "$)")
    want = served(page, second_key)
    drawn = page.evaluate(DRAWN, "grids")
    assert sorted(drawn["codes"]) == sorted(want) and drawn["paths"] == len(want)  # each once, none of the old box
    shared = first & set(want)
    assert 0 < len(shared) < len(want) and len(shared) < len(first), (len(first), len(want), len(shared))
    assert sorted(page.evaluate(MARKED, "grids")) == sorted(shared)  # kept as drawn; the others new
    assert page.evaluate(RINGS, "grids") == page.evaluate(SERVED_RINGS, second_key)
    # the zones and the outlines moved too: each unit drawn once, with the geometry served for the new box
    for name in ("zones", "counties"):
        key = page.evaluate("name => wx.map.viewState(name).have", name)
        assert page.evaluate(RINGS, name) == page.evaluate(SERVED_RINGS, key), name
        assert page.evaluate(DRAWN, name)["paths"] == len(served(page, key)), name
    # the root's boundary is cut to each box: a move to another box keeps its code, not its geometry, which is drawn
    # as served for the new box
    page.evaluate(SET_VIEW, [lat, lon - 0.25, 11.5])
    west = settled(page, "district", r"^/api/geo/district\.json\?bbox=")
    page.evaluate(SET_VIEW, [lat, lon + 0.25, 11.5])
    east = settled(page, "district", r"^/api/geo/district\.json\?bbox=(?!" + re.escape(west.split("bbox=")[1]) + "$)")
    drawn_root = page.evaluate(RINGS, "district")
    assert drawn_root == page.evaluate(SERVED_RINGS, east) != page.evaluate(SERVED_RINGS, west)
    # out to zoom 11: no grid left
    page.evaluate(SET_VIEW, [lat, lon, 11])
    settled(page, "grids", "^$")
    assert page.evaluate(DRAWN, "grids")["paths"] == 0
    # a recolour gives the coloured layer (the counties) new style functions: each polygon drawn anew, once
    counties_key = settled(page, "counties", r"^/api/geo/counties\.json\?bbox=")
    page.evaluate(MARK, "counties")
    assert page.evaluate(MARKED, "counties")
    before = page.evaluate("() => JSON.stringify((wx.map.hideoutOf('counties') || {}).values || {})")
    page.locator("#map-measure").select_option(value="overdue_incidents")
    page.wait_for_function("b => JSON.stringify((wx.map.hideoutOf('counties') || {}).values || {}) !== b",
                           arg=before, timeout=30_000)
    page.wait_for_function("n => !document.querySelector('path.wx-layer-counties[data-wx-mark]')"
                           " && document.querySelectorAll('path.wx-layer-counties').length === n",
                           arg=len(served(page, counties_key)), timeout=30_000)


def test_a_zoom_asks_for_the_new_view_before_the_layers_reproject(province_server, page):
    """A move that changes the zoom has Leaflet reproject every drawn polygon on zoomend (and again on viewreset): the
    new view's geometry and incident layer are asked for before that, from listeners each map gets as it is made,
    not after it (on moveend, or a task later)."""
    open_root(province_server, page)
    page.wait_for_function("() => window.wx && wx.live && wx.live.view() && wx.live.view().mode"
                           " && !wx.live.view().busy", timeout=30_000)
    page.evaluate("""() => { const m = wx.map.mapFor('map'), real = window.fetch; window.__order = [];
        window.fetch = function (u) { window.__order.push(String(u).split('?')[0]); return real.apply(this, arguments); };
        // registered now: after every drawn layer's own zoomend listener (the reprojection)
        m.on('zoomend', () => window.__order.push('reprojected')); }""")
    lat, lon = centre(page)
    page.evaluate(SET_VIEW, [lat + 0.02, lon + 0.02, 12.5])
    order = page.evaluate("() => window.__order")
    assert "reprojected" in order, order
    before = order[:order.index("reprojected")]
    assert "/api/map/incident_cells.json" in before and "/api/geo/grids.json" in before, order
    settled(page, "grids", r"^/api/geo/grids\.json\?bbox=")
    page.wait_for_function("() => !wx.live.view().busy && /[?&]zoom=12(&|$)/.test(wx.live.view().url)", timeout=30_000)


def test_an_answer_for_a_view_the_map_has_left_is_dropped(province_server, page):
    """Two views' grids asked for in turn, their answers held back in the page and released in the other order: the
    layer keeps the second view's grids when the first one's answer lands after them."""
    open_root(province_server, page)
    page.evaluate("""() => { const real = window.__realFetch = window.fetch; window.__held = [];
        window.fetch = function (url, opts) {
            if (!/\\/api\\/geo\\/grids\\.json\\?bbox=/.test(String(url))) { return real.apply(this, arguments); }
            return new Promise(ok => window.__held.push({url: String(url), go: () => ok(real(url, opts))}));
        }; }""")
    lat, lon = centre(page)
    page.evaluate(SET_VIEW, [lat + 0.06, lon - 0.08, 13])
    page.wait_for_function("() => window.__held.length === 1", timeout=30_000)
    page.evaluate(SET_VIEW, [lat - 0.06, lon + 0.08, 13])
    page.wait_for_function("() => window.__held.length === 2", timeout=30_000)
    first_key, second_key = page.evaluate("() => window.__held.map(h => h.url)")
    assert first_key != second_key and page.evaluate("() => wx.map.viewState('grids').want") == second_key
    page.evaluate("() => window.__held[1].go()")  # the second view's answer comes first and is drawn
    settled(page, "grids", re.escape(second_key))
    second = sorted(page.evaluate(DRAWN, "grids")["codes"])
    page.evaluate("() => window.__held[0].go()")  # then the first view's, late
    page.wait_for_function("() => wx.map.viewState('grids').answers === 2", timeout=30_000)
    state = page.evaluate("() => wx.map.viewState('grids')")
    assert state["have"] == state["want"] == second_key
    drawn = page.evaluate(DRAWN, "grids")
    assert sorted(drawn["codes"]) == second and drawn["paths"] == len(second) > 0
    assert second == sorted(served(page, second_key)) != sorted(served(page, first_key))
    # back to the first view: its grids were kept, so nothing is asked again
    page.evaluate(SET_VIEW, [lat + 0.06, lon - 0.08, 13])
    settled(page, "grids", re.escape(first_key))
    assert page.evaluate("() => [wx.map.viewState('grids').fetches, window.__held.length]") == [2, 2]


# the selected unit of ``layer`` outlined in the selection pane: one outline, over the box of its polygon (±2 px)
OUTLINED = """([layer, code]) => { const m = wx.map.mapFor('map'); let src = null;
    m.eachLayer(l => { if (!src && l.feature && l.feature.properties.code === code
        && new RegExp('wx-layer-' + layer).test((l.options || {}).className || '')) src = l; });
    const outs = document.querySelectorAll('.leaflet-wx-selection-pane path.wx-selected-' + layer);
    if (!src || outs.length !== 1) return false;
    const a = src.getElement().getBoundingClientRect(), b = outs[0].getBoundingClientRect();
    return a.width > 0 && ['left', 'top', 'right', 'bottom'].every(k => Math.abs(a[k] - b[k]) <= 2)
      && outs[0].getAttribute('stroke') === '#ffd400'; }"""


# the box of a layer's selection outline on the page (null: none)
OUTLINE_BOX = """name => { const o = document.querySelectorAll('path.wx-selected-outline.wx-selected-' + name);
    if (o.length !== 1) { return null; } const r = o[0].getBoundingClientRect();
    return {left: r.left, top: r.top, right: r.right, bottom: r.bottom}; }"""


def test_a_town_whose_layer_is_off_is_outlined_all_the_same(province_server, page):
    """The towns of a multi-county map start switched off: a town opened by its link (or a ranking bar) was
    selected with nothing on the map to show it. Its polygon is fetched and outlined — the box its zones cover —
    and, the towns switched on, outlined from the town's own polygon; switched off again, it stays outlined."""
    from dashboard.geodata import load_geodata

    gd = load_geodata(province_server.app.server.extensions["dashboard"].settings.geodata_dir)
    town = gd.towns.sort_values("code").iloc[len(gd.towns) // 2]["code"]
    log = geo_log(page)
    province_server.sign_in(page)
    page.goto(province_server.url + f"/?level=town&code={town}")
    zones_key = settled(page, "zones", r"^/api/geo/zones\.json\?bbox=", timeout=45_000)
    page.wait_for_function("n => !!(%s)(n)" % OUTLINE_BOX, arg="towns", timeout=30_000)
    assert not page.query_selector("path.wx-layer-towns")  # the layer is off: the outline is the fetched polygon
    assert any(u.startswith("/api/geo/towns.json?bbox=") for u in log), log
    # the outline's box is the box of the town's zones (they tile it), as drawn
    zones = page.evaluate("""t => { const m = wx.map.mapFor('map'), rs = [];
        m.eachLayer(l => { if (l.feature && l.feature.properties.town_code === t && l._path &&
            /wx-layer-zones/.test((l.options || {}).className || '')) { rs.push(l._path.getBoundingClientRect()); } });
        return rs.length ? {n: rs.length, left: Math.min(...rs.map(r => r.left)), top: Math.min(...rs.map(r => r.top)),
            right: Math.max(...rs.map(r => r.right)), bottom: Math.max(...rs.map(r => r.bottom))} : null; }""", town)
    assert zones and zones["n"] == len(gd.zones[gd.zones["town_code"] == town]), (zones, zones_key)
    outline = page.evaluate(OUTLINE_BOX, "towns")
    assert all(abs(outline[k] - zones[k]) <= 3 for k in ("left", "top", "right", "bottom")), (outline, zones)
    towns_box = page.locator(".leaflet-control-layers-overlays label", has_text="镇街").locator("input")
    towns_box.check()
    page.wait_for_function(OUTLINED, arg=["towns", town], timeout=30_000)
    towns_box.uncheck()
    page.wait_for_function("""b => !document.querySelector('path.wx-layer-towns') && (o => !!o && ['left', 'top',
        'right', 'bottom'].every(k => Math.abs(o[k] - b[k]) <= 2))((%s)('towns'))""" % OUTLINE_BOX, arg=outline,
                           timeout=30_000)
    # the view left for the root: no outline
    page.locator("#breadcrumb a").first.click()
    page.wait_for_function("() => !document.querySelector('path.wx-selected-outline')", timeout=30_000)


def test_a_county_opened_by_its_link_shows_its_detail_and_highlight_at_once(province_server, page):
    """``/?level=county&code=…``: the map fitted to the county draws the detail its zoom asks for (the zones of the
    view, the grids too when zoomed in far enough) and strokes the county, with no interaction at all."""
    code = "990201"
    log = geo_log(page)
    province_server.sign_in(page)
    page.goto(province_server.url + f"/?level=county&code={code}")
    page.wait_for_function("() => !!wx.map.mapFor('map') && !!wx.map.viewState('zones')", timeout=45_000)
    zoom = page.evaluate("() => wx.map.mapFor('map').getZoom()")
    assert zoom >= 10.5  # a county fitted on this screen: zones at least
    zones_key = settled(page, "zones", r"^/api/geo/zones\.json\?bbox=", timeout=45_000)
    assert sorted(page.evaluate(DRAWN, "zones")["codes"]) == sorted(served(page, zones_key))
    if zoom >= 12:
        grids_key = settled(page, "grids", r"^/api/geo/grids\.json\?bbox=", timeout=45_000)
        assert page.evaluate(DRAWN, "grids")["paths"] == len(served(page, grids_key))
    else:
        settled(page, "grids", "^$")
    settled(page, "counties", r"^/api/geo/counties\.json\?bbox=")  # the outlines of the view, not the province's
    assert not any(re.match(r"^/api/geo/(district|cities|counties)\.json$", u) for u in log), log
    # the highlight: the county layer selects it, and its path is stroked so
    page.wait_for_function("c => wx.map.selectedOf('counties') === c", arg=code, timeout=30_000)
    page.wait_for_function("""c => { const m = wx.map.mapFor('map'); let lit = false;
        m.eachLayer(l => { if (l.feature && l.feature.properties.code === c && /wx-layer-counties/.test(
            (l.options || {}).className || '')) { lit = l.options.color === '#ffd400'
                && l.getElement().getAttribute('stroke') === '#ffd400'; } });
        return lit; }""", arg=code, timeout=30_000)
    # and coloured by the measure from the start (the hideout of the layout)
    assert page.evaluate("() => Object.keys((wx.map.hideoutOf('counties') || {}).values || {}).length") > 0
    assert not any(u.startswith("/api/geo/towns") for u in log), log  # their overlay is off
    # the county's yellow outline is also drawn above the zones and grids, whose panes (and strokes along its
    # boundary) are above the counties': its copy in the selection pane, the county's shape, no pointer events
    page.wait_for_function(OUTLINED, arg=["counties", code], timeout=30_000)
    stack = page.evaluate("""() => { const z = el => +getComputedStyle(el).zIndex;
        const sel = document.querySelector('.leaflet-wx-selection-pane');
        return {sel: z(sel), events: getComputedStyle(sel).pointerEvents,
                polygons: [...document.querySelectorAll('.leaflet-pane[class*="leaflet-wx-"]')].filter(p => p !== sel)
                  .filter(p => p.querySelector('path.wx-unit')).map(z),
                markers: z(document.querySelector('.leaflet-marker-pane'))}; }""")
    assert stack["polygons"] and max(stack["polygons"]) < stack["sel"] < stack["markers"], stack
    assert stack["events"] == "none", stack
    # switched off in the layer control, the counties' polygons go and the selected county stays outlined (its
    # polygon fetched for the view: wx.map outlineUndrawn), the same shape; back on, outlined from its polygon again
    box = page.evaluate(OUTLINE_BOX, "counties")
    counties_box = page.locator(".leaflet-control-layers-overlays label", has_text="区县").locator("input")
    counties_box.uncheck()
    page.wait_for_function("""b => !document.querySelector('path.wx-layer-counties') && (o => !!o && ['left', 'top',
        'right', 'bottom'].every(k => Math.abs(o[k] - b[k]) <= 2))((%s)('counties'))""" % OUTLINE_BOX, arg=box,
                           timeout=30_000)
    counties_box.check()
    page.wait_for_function(OUTLINED, arg=["counties", code], timeout=30_000)
    # the view left for the province's root: no unit selected, no outline
    page.locator("#breadcrumb a").first.click()
    page.wait_for_function("() => wx.map.selectedOf('counties') === null", timeout=30_000)
    page.wait_for_function("() => !document.querySelector('path.wx-selected-outline')", timeout=30_000)


def test_a_layer_switched_off_in_the_layer_control_is_never_fetched(province_server, page):
    log = geo_log(page)
    open_root(province_server, page)
    lat, lon = centre(page)
    page.locator(".leaflet-control-layers-overlays label", has_text="网格").locator("input").uncheck()
    page.evaluate(SET_VIEW, [lat, lon, 13])
    zones_key = settled(page, "zones", r"^/api/geo/zones\.json\?bbox=")
    assert not any(u.startswith("/api/geo/grids") for u in log), log
    assert (page.evaluate("() => wx.map.viewState('grids')") or {}).get("fetches", 0) == 0
    page.evaluate(SET_VIEW, [lat + 0.03, lon, 12.5])  # moving on while it is off asks for nothing either
    page.wait_for_function("k => wx.map.viewState('zones').want !== k", arg=zones_key, timeout=30_000)
    settled(page, "zones", r"^/api/geo/zones\.json\?bbox=")
    assert not any(u.startswith("/api/geo/grids") for u in log), log
    # switched on: the grids of the view come, once
    page.locator(".leaflet-control-layers-overlays label", has_text="网格").locator("input").check()
    grids_key = settled(page, "grids", r"^/api/geo/grids\.json\?bbox=")
    assert [u for u in log if u.startswith("/api/geo/grids")] == [grids_key]
    assert page.evaluate(DRAWN, "grids")["paths"] == len(served(page, grids_key))
    # the towns start off: never asked for, at any zoom
    assert not any(u.startswith("/api/geo/towns") for u in log), log
