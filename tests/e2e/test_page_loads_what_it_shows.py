"""A page loads what it shows first (issue 12): the overview paints its map — every grid and zone path and the
incident clusters — before it downloads what only other pages or later panels need: dash-ag-grid (the duty
desk's list) and dcc's date picker (a custom period's) never, plotly.js (the panel's charts) only once the map is
painted; the charts then still appear.
A client-side route into a page that draws a library this document left out loads that page afresh."""
from __future__ import annotations

from tests.conftest import watch

# Stamps window.__wxPainted (ms since navigation start) at the end of the first frame in which every grid and zone
# path and at least one incident cluster or marker is in the map (looked at once a frame).
PAINTED = """(() => {
  window.__wxPainted = null;
  const drawn = () => document.querySelectorAll('path.wx-layer-grids').length === 538 &&
    document.querySelectorAll('path.wx-layer-zones').length === 46 &&
    document.querySelector('.marker-cluster, .leaflet-marker-pane .wx-inc') !== null;
  (function poll() {
    if (drawn()) {
      requestAnimationFrame(() => { const c = new MessageChannel();
        c.port1.onmessage = () => { window.__wxPainted = performance.now(); }; c.port2.postMessage(0); });
      return;
    }
    requestAnimationFrame(poll);
  })();
})();"""

# Stamps window.__wxReadyAt (ms since navigation start) when the page sets <body data-map-ready> (wx.map.whenDrawn
# resolved: the charts may mount from then on).
READY_AT = """(() => {
  window.__wxReadyAt = null;
  new MutationObserver((_, obs) => {
    if (document.body && document.body.dataset.mapReady) { window.__wxReadyAt = performance.now(); obs.disconnect(); }
  }).observe(document, {attributes: true, subtree: true, attributeFilter: ["data-map-ready"]});
})();"""

# [graph id, [[the trace type the figure asks for, the type plotly drew it as], …]] of each chart drawn so far
DRAWN_TYPES = """() => Array.from(document.querySelectorAll('.js-plotly-plot')).map(gd =>
  [gd.parentElement.id || gd.id, (gd.data || []).map((t, i) => [t.type || 'scatter', (gd._fullData[i] || {}).type])])"""

REQUESTED = """() => performance.getEntriesByType('resource').map(e => [e.name, e.startTime])"""


def test_the_overview_paints_its_map_before_the_grid_and_chart_libraries(demo_app, browser):
    ctx = browser.new_context(viewport={"width": 1600, "height": 1000})  # fresh: nothing cached
    page = ctx.new_page()
    errors = watch(page)
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    page.add_init_script(PAINTED)
    page.add_init_script(READY_AT)
    demo_app.sign_in(page)
    page.goto(demo_app.url + "/")
    page.wait_for_function("() => window.__wxPainted !== null", timeout=60_000)
    painted = page.evaluate("window.__wxPainted")
    # the charts still come, after the map
    page.wait_for_selector("#chart-ranking .main-svg", timeout=60_000)
    page.wait_for_selector("#chart-funnel .main-svg", timeout=60_000)
    page.wait_for_selector("#kpi-cards .wx-card", timeout=60_000)
    # the figures are drawn one per task (wx.panel.draw): every chart's traces, not only the two waited for above
    page.wait_for_function(f"() => {{ const d = ({DRAWN_TYPES})(); return d.length > 0 && d.every(x => x[1].length); }}",
                           timeout=60_000)
    entries = page.evaluate(REQUESTED)
    drawn = page.evaluate(DRAWN_TYPES)
    schema = page.evaluate("Object.keys(window.Plotly.PlotSchema.get().traces)")
    ready = page.evaluate("document.body.dataset.mapReady")  # why the charts went ahead (wx.map.whenDrawn)
    waited = page.evaluate("window.__wxReadyAt")
    ctx.close()

    before = [url for url, start in entries if start <= painted]
    plotly = [start for url, start in entries if "/plotly/" in url and url.endswith(".js")]
    assert any("/dash_leaflet/" in url for url in before), before  # the map's own code is there before the paint
    assert not [url for url in before if "dash_ag_grid" in url], before
    assert plotly, entries
    if ready == "timeout":  # a machine too busy to draw the map in 6 s lets the charts go ahead by design: not before
        assert waited is not None and min(plotly) > waited, (plotly, waited)
    else:
        assert ready in ("drawn", "drawn-no-incidents"), ready
        assert not [url for url in before if "/plotly/" in url], before
        assert min(plotly) > painted, (plotly, painted)
    # plotly.js is the vendored partial bundle (pages.head.install_plotly), loaded once, and it draws every chart's
    # traces as the type the figure asks for (a type a bundle lacks is drawn as a scatter, silently)
    assert len(plotly) == 1 and "scattergeo" not in schema and "choroplethmap" not in schema, (plotly, schema)
    assert drawn and all(types for _, types in drawn), drawn
    assert all(asked == used for _, types in drawn for asked, used in types), drawn
    assert len({asked for _, types in drawn for asked, _ in types}) >= 3, drawn  # bars, lines, a pie, the funnel
    # the duty desk's grid is never downloaded on the overview, not even after the paint
    assert not [url for url in requested if "dash_ag_grid" in url]
    # nor dcc's date picker: it is mounted only for a custom period (test_drill: choosing one loads it)
    assert not [url for url in requested if "/async-datepicker" in url], requested
    assert errors == []


def test_a_client_side_route_into_the_duty_desk_loads_it_afresh_with_its_grid(demo_app, browser):
    """The overview's HTML leaves dash-ag-grid out; should a client-side route (the router, as dcc.Link does) bring
    the duty desk into that document, its grid's stand-in loads the page afresh, and the desk's own HTML has it."""
    ctx = browser.new_context(viewport={"width": 1600, "height": 1000})
    page = ctx.new_page()
    errors = watch(page)
    demo_app.sign_in(page, "duty_officer")
    page.goto(demo_app.url + "/")
    page.wait_for_selector("path.wx-layer-zones", timeout=60_000)
    assert page.evaluate("typeof window.dash_ag_grid.AgGrid") == "function"  # the stand-in, not the library
    assert page.evaluate("typeof window.dash_ag_grid.getApi") == "undefined"
    with page.expect_event("load", timeout=60_000):
        page.evaluate("""() => { window.history.pushState({}, '', '/incidents');
                                 window.dispatchEvent(new CustomEvent('_dashprivate_pushstate')); }""")
    page.wait_for_selector(".ag-row", timeout=60_000)
    assert page.evaluate("performance.getEntriesByType('navigation')[0].type") == "reload"
    assert page.evaluate("typeof window.dash_ag_grid.getApi") == "function"  # the real library now
    assert page.url.endswith("/incidents")
    ctx.close()
    assert errors == []


def test_a_client_side_route_into_the_briefing_loads_it_afresh_with_its_own_assets(demo_app, browser):
    """The overview's HTML leaves out the assets only other pages use (html-to-image, duty.js, wall.js); a
    client-side route to the briefing loads that page afresh, and its HTML has html-to-image (the PNG export)."""
    ctx = browser.new_context(viewport={"width": 1600, "height": 1000})
    page = ctx.new_page()
    errors = watch(page)
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    demo_app.sign_in(page)
    page.goto(demo_app.url + "/")
    page.wait_for_selector("path.wx-layer-zones", timeout=60_000)
    assert page.evaluate("typeof window.htmlToImage") == "undefined"
    assert page.evaluate("[typeof (window.wx || {}).wall, typeof (window.wx || {}).duty]") == ["undefined"] * 2
    assert not [u for u in requested if "/assets/" in u and any(
        name in u for name in ("html-to-image", "/duty.js", "/wall.js", "/wall.css"))], requested
    with page.expect_event("load", timeout=60_000):
        page.evaluate("""() => { window.history.pushState({}, '', '/briefing');
                                 window.dispatchEvent(new CustomEvent('_dashprivate_pushstate')); }""")
    page.wait_for_selector("#briefing-table", timeout=60_000)
    assert page.evaluate("performance.getEntriesByType('navigation')[0].type") == "reload"
    assert page.evaluate("typeof window.htmlToImage.toPng") == "function"
    assert page.url.endswith("/briefing")
    ctx.close()
    assert errors == []


RESOURCES = """() => performance.getEntriesByType('resource').map(e => [e.name, e.startTime, e.initiatorType])"""
# Stamps window.__wxMapInDom (ms since navigation start) at the end of the task that put the last of the map's grid
# and zone paths and its first incident cluster or marker into the page (a mutation observer's callback runs then,
# before any later task could start a request).
MAP_IN_DOM = """(() => {
  window.__wxMapInDom = null;
  const drawn = () => document.querySelectorAll('path.wx-layer-grids').length === 538 &&
    document.querySelectorAll('path.wx-layer-zones').length === 46 &&
    document.querySelector('.marker-cluster, .leaflet-marker-pane .wx-inc') !== null;
  const seen = new MutationObserver(() => {
    if (drawn()) { window.__wxMapInDom = performance.now(); seen.disconnect(); }
  });
  seen.observe(document, {childList: true, subtree: true});
})();"""
PRELOADED = """() => [...document.querySelectorAll('link[rel=preload]')].map(l => [l.href, l.getAttribute('as')])"""


def test_the_overview_draws_before_any_callback_and_fetches_each_preload_once(demo_app, browser):
    """What the HTML preloads is what the page then uses (no second download: the preload's mode and credentials
    match the renderer's and dash-leaflet's fetches); the map is drawn with no callback request before it (the
    panel's first callbacks wait for it); Dash's polyfill is not loaded, and lazy components (the panel's graphs)
    still load without it; the choice lists on screen (measure, hotspot period, ranking measure) are native <select>s
    (ui/select.py): dcc's dropdown chunk is not loaded at all."""
    ctx = browser.new_context(viewport={"width": 1600, "height": 1000})
    page = ctx.new_page()
    errors = watch(page)
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    page.add_init_script(MAP_IN_DOM)
    demo_app.sign_in(page)
    page.goto(demo_app.url + "/")
    page.wait_for_function("() => window.__wxMapInDom !== null", timeout=60_000)
    drawn = page.evaluate("window.__wxMapInDom")
    page.wait_for_selector("#kpi-cards .wx-card", timeout=60_000)  # the panel's first callbacks have answered
    page.wait_for_timeout(1_000)  # counting requests: a late second fetch of a preloaded URL would show here
    entries = page.evaluate(RESOURCES)
    preloaded = page.evaluate(PRELOADED)
    ready = page.evaluate("document.body.dataset.mapReady")  # why the panel went ahead (wx.map.whenDrawn)
    # a lazy component (dcc.Graph: its async chunk, then plotly.js) mounts and draws: regenerator-runtime is there
    page.wait_for_selector("#chart-ranking .main-svg", timeout=60_000)
    ctx.close()

    fetched = [href for href, kind in preloaded if kind == "fetch"]
    for url in ("/_dash-layout", "/_dash-dependencies", "/api/geo/grids.json", "/api/geo/zones.json",
                "/api/map/incidents.json"):
        assert demo_app.url + url in fetched, (url, preloaded)
    for href, _ in preloaded:
        used = [(kind, start) for name, start, kind in entries if name == href]
        assert len(used) == 1 and used[0][0] == "link", (href, used)  # loaded once, by the preload
        assert requested.count(href) == 1, href
    callbacks = [start for name, start, _ in entries if "/_dash-update-component" in name]
    assert callbacks, entries
    if ready != "timeout":  # a machine too busy to draw the map in 6 s lets the panel go ahead by design
        assert ready == "drawn" and min(callbacks) >= drawn, (ready, callbacks, drawn)  # the panel's, after the map
    assert not [u for u in requested if "/deps/polyfill@" in u]
    assert not [u for u in requested if "async-dropdown" in u]
    assert errors == []


def test_a_signed_out_visitor_gets_the_sign_in_page_and_no_data(demo_app, browser):
    """The overview is private: a signed-out visitor's browser is sent to sign in before any HTML of the overview
    (so no preload of its map data), and requests no map or incident data at all."""
    ctx = browser.new_context(viewport={"width": 1600, "height": 1000})
    page = ctx.new_page()
    errors = watch(page)
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    page.goto(demo_app.url + "/")
    page.wait_for_selector("input[name=password]", timeout=60_000)
    assert "/login" in page.url
    page.wait_for_timeout(1_000)  # counting requests
    preloaded = page.evaluate(PRELOADED)
    ctx.close()
    assert not [u for u in requested if "/api/" in u], requested
    assert not [href for href, _ in preloaded if "/api/" in href], preloaded
    assert errors == []
