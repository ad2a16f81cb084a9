"""A page loads what it shows first (issue 12): the overview paints its map — every grid and zone path and the
incident clusters — before it downloads what only other pages or later panels need: dash-ag-grid (the duty
desk's list) never, plotly.js (the panel's charts) only once the map is painted; the charts then still appear.
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

REQUESTED = """() => performance.getEntriesByType('resource').map(e => [e.name, e.startTime])"""


def test_the_overview_paints_its_map_before_the_grid_and_chart_libraries(demo_app, browser):
    ctx = browser.new_context(viewport={"width": 1600, "height": 1000})  # fresh: nothing cached
    page = ctx.new_page()
    errors = watch(page)
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    page.add_init_script(PAINTED)
    demo_app.sign_in(page)
    page.goto(demo_app.url + "/")
    page.wait_for_function("() => window.__wxPainted !== null", timeout=60_000)
    painted = page.evaluate("window.__wxPainted")
    # the charts still come, after the map
    page.wait_for_selector("#chart-ranking .main-svg", timeout=60_000)
    page.wait_for_selector("#chart-funnel .main-svg", timeout=60_000)
    page.wait_for_selector("#kpi-cards .wx-card", timeout=60_000)
    entries = page.evaluate(REQUESTED)
    ctx.close()

    before = [url for url, start in entries if start <= painted]
    plotly = [start for url, start in entries if "/plotly/" in url and url.endswith(".js")]
    assert any("/dash_leaflet/" in url for url in before), before  # the map's own code is there before the paint
    assert not [url for url in before if "dash_ag_grid" in url or "/plotly/" in url], before
    assert plotly and min(plotly) > painted, (plotly, painted)
    # the duty desk's grid is never downloaded on the overview, not even after the paint
    assert not [url for url in requested if "dash_ag_grid" in url]
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
