"""Drill-down in a real browser on the full demo year: map click, bar click, breadcrumb, back button, shared link,
period change, and the morning briefing (print / PDF / PNG)."""
from __future__ import annotations

import json
import time
import urllib.request
from urllib.parse import parse_qs, urlsplit

import pytest

from dashboard.ui.cards import fmt
from tests.conftest import watch
from tests.conftest import authed


def _api(server, query: str) -> dict:
    with urllib.request.urlopen(authed(f"{server.url}/api/v1/kpis?{query}")) as resp:
        return json.loads(resp.read())


def _query(url: str) -> dict:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def _ready(page, fragment: str = ""):
    page.wait_for_selector("#card-value-detection_rate", timeout=90_000)
    if fragment:
        page.wait_for_function("f => document.querySelector('#breadcrumb').innerText.includes(f)", arg=fragment,
                               timeout=30_000)


def _ranking_names(page) -> list[str]:
    page.wait_for_selector("#chart-ranking .ytick text")
    return page.locator("#chart-ranking .ytick text").all_text_contents()


def _ranking_shows(page, names) -> list[str]:
    """The ranking's names once it shows ``names`` (the panel's charts follow its text: ``callbacks.drill``)."""
    page.wait_for_function("""want => { const got = [...document.querySelectorAll('#chart-ranking .ytick text')]
        .map(t => t.textContent); return got.length === want.length && want.every(n => got.includes(n)); }""",
                           arg=sorted(names), timeout=30_000)
    return _ranking_names(page)


def _card(page, kpi: str) -> str:
    return page.locator(f"#card-value-{kpi}").inner_text()


@pytest.fixture
def opened(demo_server, page):
    demo_server.sign_in(page)
    page.goto(demo_server.url + "/?period=2019")
    _ready(page)
    page.wait_for_selector("path.wx-layer-zones", timeout=30_000)
    return page


def test_district_cards_2019_show_the_seed_figures(demo_server, opened):
    page = opened
    api = _api(demo_server, "level=district&from=2019-01-01&to=2019-12-31")["kpis"]
    assert abs(api["detection_rate"] - 0.3986) <= 0.003
    assert abs(api["problems_found"] - 71_948) <= 719
    assert api["onsite_handling_rate"] >= 0.42 and api["resolution_rate"] >= 0.95
    assert abs(api["inspection_coverage"] - 0.65) <= 0.01
    for kpi in ("detection_rate", "problems_found", "onsite_handling_rate", "resolution_rate", "inspection_coverage",
                "open_incidents", "median_hours_to_close", "dispute_success_rate"):
        assert _card(page, kpi) == fmt(kpi, api[kpi]), kpi
    shown = float(_card(page, "detection_rate").rstrip("%"))
    assert abs(shown - 39.86) <= 0.3
    assert "—" not in _card(page, "detection_rate") and "nan" not in page.locator("#kpi-cards").inner_text().lower()
    assert page.js_errors == []


def test_click_zone_bar_breadcrumb_and_back(demo_server, opened):
    page = opened
    district_names = _ranking_names(page)
    page.locator("path.wx-layer-zones").nth(7).dispatch_event("click")
    page.wait_for_url("**level=zone**")
    q = _query(page.url)
    assert q["period"] == "2019" and q["code"]
    zone = _api(demo_server, f"level=zone&code={q['code']}&period=2019&children=1")
    _ready(page, zone["name"])
    crumbs = page.locator("#breadcrumb").inner_text()
    district = _api(demo_server, "level=district&period=2019")
    assert zone["name"] in crumbs and zone["parent"]["name"] in crumbs and district["name"] in crumbs
    page.wait_for_function("v => document.querySelector('#card-value-problems_found').innerText === v",
                           arg=fmt("problems_found", zone["kpis"]["problems_found"]))
    assert _card(page, "detection_rate") == fmt("detection_rate", zone["kpis"]["detection_rate"])
    names = _ranking_shows(page, [u["name"] for u in zone["children"]["units"]])
    assert sorted(names) == sorted(u["name"] for u in zone["children"]["units"])  # the zone's grids
    assert names != district_names

    # a bar drills into that grid
    page.locator("#chart-ranking .bars .point path").last.click(force=True)
    page.wait_for_url("**level=grid**")
    gq = _query(page.url)
    grid = _api(demo_server, f"level=grid&code={gq['code']}&period=2019")
    assert grid["parent"]["code"] == q["code"]
    _ready(page, grid["name"])
    page.wait_for_selector("#grid-open-incidents")

    # browser back restores the zone view
    page.go_back()
    page.wait_for_url("**level=zone**")
    assert _query(page.url)["code"] == q["code"]
    page.wait_for_function("n => !document.querySelector('#breadcrumb').innerText.includes(n)", arg=grid["name"])
    assert zone["name"] in page.locator("#breadcrumb").inner_text()

    # the breadcrumb goes back up to the district
    page.locator("a.wx-crumb-district").click()
    page.wait_for_function("() => !location.search.includes('level=')")
    page.wait_for_function("n => !document.querySelector('#breadcrumb').innerText.includes(n)", arg=zone["name"])
    assert _ranking_shows(page, district_names) and sorted(_ranking_names(page)) == sorted(district_names)
    assert page.js_errors == []


def test_copied_url_opens_the_same_view(demo_server, browser):
    zone_code = "330502-ZL-03"
    url = f"{demo_server.url}/?level=zone&code={zone_code}&period=2019"
    zone = _api(demo_server, f"level=zone&code={zone_code}&period=2019")
    ctx = browser.new_context(viewport={"width": 1600, "height": 1000})
    page = ctx.new_page()
    errors = watch(page)
    demo_server.sign_in(page)
    page.goto(url)
    _ready(page, zone["name"])
    page.wait_for_function("v => document.querySelector('#card-value-detection_rate').innerText === v",
                           arg=fmt("detection_rate", zone["kpis"]["detection_rate"]))
    assert page.locator("input[value='2019']").is_checked()
    assert zone["parent"]["name"] in page.locator("#breadcrumb").inner_text()
    assert errors == []
    ctx.close()


def test_period_change_goes_into_the_url(demo_server, opened):
    page = opened
    page.locator("input[value='7d']").check()
    page.wait_for_url("**period=7d**")
    api = _api(demo_server, "level=district&period=7d")
    page.wait_for_function("v => document.querySelector('#card-value-new_incidents').innerText === v",
                           arg=fmt("new_incidents", api["kpis"]["new_incidents"]))
    page.go_back()
    page.wait_for_function("() => location.search.includes('period=2019')")
    page.wait_for_function("() => document.querySelector(\"input[value='2019']\").checked")


PICKER_START = "#period-range-box .dash-datepicker-start-date"
PICKER_END = "#period-range-box .dash-datepicker-end-date"


def _type_date(page, selector: str, day: str):
    box = page.locator(selector)
    box.fill(day)
    box.press("Enter")


def test_custom_period_through_the_picker_moves_the_panel_and_the_url(demo_app, page):
    """自定义: the date range picker appears only once the custom period is chosen; the days typed into it go into
    the URL (``?period=custom&from=…&to=…``) and the cards follow; back restores the previous days in the picker;
    a shared custom link shows the picker at once."""
    demo_app.sign_in(page)
    page.goto(demo_app.url + "/?period=2019")
    _ready(page)
    assert page.locator("#period-range-box input").count() == 0  # no picker for a named period
    page.locator("input[value='custom']").check()
    page.wait_for_url("**period=custom**")
    page.wait_for_selector(PICKER_START)
    chosen = _query(page.url)
    assert page.locator(PICKER_START).input_value() == chosen["from"]
    _type_date(page, PICKER_START, "2019-03-01")
    page.wait_for_function("() => location.search.includes('from=2019-03-01')")
    _type_date(page, PICKER_END, "2019-03-31")
    page.wait_for_function("() => location.search.includes('to=2019-03-31')")
    q = _query(page.url)
    assert (q["period"], q["from"], q["to"]) == ("custom", "2019-03-01", "2019-03-31")
    api = _api(demo_app, "level=district&from=2019-03-01&to=2019-03-31")["kpis"]
    page.wait_for_function("v => document.querySelector('#card-value-problems_found').innerText === v",
                           arg=fmt("problems_found", api["problems_found"]))
    page.go_back()  # the end day typed before: the picker shows the previous one again
    page.wait_for_function("() => !location.search.includes('to=2019-03-31')")
    page.wait_for_function("([s, v]) => document.querySelector(s).value === v",
                           arg=[PICKER_END, _query(page.url)["to"]])
    assert page.locator(PICKER_START).input_value() == "2019-03-01"
    page.locator("input[value='2019']").check()  # a named period again: the picker goes
    page.wait_for_url("**period=2019**")
    page.wait_for_selector(PICKER_START, state="detached")
    page.goto(demo_app.url + "/?period=custom&from=2019-05-01&to=2019-05-07")  # a shared link: picker at once
    page.wait_for_selector(PICKER_START)
    assert page.locator(PICKER_START).input_value() == "2019-05-01"
    assert page.locator(PICKER_END).input_value() == "2019-05-07"
    assert page.locator("input[value='custom']").is_checked()
    assert page.js_errors == []


def _until(page, cond, what: str, seconds: float = 45):
    """Wait for a condition of the test's own (events arrive only during Playwright calls, hence the short waits)."""
    end = time.monotonic() + seconds
    while not cond():
        if time.monotonic() > end:
            pytest.fail(f"waited {seconds} s for {what}")
        page.wait_for_timeout(50)


def test_a_day_typed_while_the_server_answers_late_is_kept(demo_app, page):
    """Custom period on a busy server: the user types the first day, then the last day before the server has answered
    the URL the first one wrote. That late answer must not put the picker's old last day back (the URL would follow
    it, and the user's last day would be lost without a word). The late answer is held in the browser (the route
    waits) until the last day is typed, then released."""
    demo_app.sign_in(page)
    page.goto(demo_app.url + "/?period=custom&from=2019-01-01&to=2019-12-31")
    _ready(page)
    page.wait_for_selector(PICKER_START)
    held, sent, done = [], [], []

    def answers_of_the_url(req) -> bool:  # the callback that takes the URL into the view and the picker
        return "_dash-update-component" in req.url and "period-range-box" in (req.post_data or "")

    def hold_first(route):
        if answers_of_the_url(route.request) and not held:
            held.append(route)
        else:
            route.continue_()

    page.on("request", lambda r: sent.append(r) if answers_of_the_url(r) else None)
    page.on("requestfinished", lambda r: done.append(r) if answers_of_the_url(r) else None)
    page.route("**/_dash-update-component*", hold_first)
    _type_date(page, PICKER_START, "2019-03-01")
    page.wait_for_function("() => location.search.includes('from=2019-03-01')")
    _until(page, lambda: held, "the URL's answer held")
    _type_date(page, PICKER_END, "2019-03-31")  # the renderer holds this change until the answer is in
    page.wait_for_function("([s, v]) => document.querySelector(s).value === v", arg=[PICKER_END, "2019-03-31"])
    held[0].continue_()  # the late answer to from=2019-03-01&to=2019-12-31 lands now
    page.wait_for_function("() => location.search.includes('to=2019-03-31')")
    _until(page, lambda: len(done) >= len(sent), "every answer of the URL in")
    page.wait_for_timeout(1_000)  # an undo would send the picker's change and a new URL now: give it the time
    _until(page, lambda: len(done) >= len(sent), "every answer of the URL in")
    q = _query(page.url)
    assert (q["period"], q["from"], q["to"]) == ("custom", "2019-03-01", "2019-03-31")
    assert page.locator(PICKER_END).input_value() == "2019-03-31"
    assert page.locator(PICKER_START).input_value() == "2019-03-01"
    api = _api(demo_app, "level=district&from=2019-03-01&to=2019-03-31")["kpis"]
    page.wait_for_function("v => document.querySelector('#card-value-problems_found').innerText === v",
                           arg=fmt("problems_found", api["problems_found"]))
    assert page.js_errors == []


def test_morning_briefing_print_pdf_png(demo_server, page):
    demo_server.sign_in(page)
    page.goto(demo_server.url + "/briefing")
    page.wait_for_selector("#briefing-table")
    assert page.locator("#briefing-table tbody tr").count() == 46 + 1
    page.emulate_media(media="print")
    assert not page.locator(".wx-header").is_visible()
    page.emulate_media(media="screen")
    with urllib.request.urlopen(authed(demo_server.url + "/api/v1/briefing.pdf")) as resp:
        body = resp.read()
        assert resp.headers["Content-Type"] == "application/pdf" and body.startswith(b"%PDF")
    with page.expect_download() as dl:
        page.click("#briefing-png")
    assert dl.value.suggested_filename == "briefing.png"
    page.wait_for_function("() => document.querySelector('#briefing-png-status').innerText.includes('PNG')")


def _screen_point(page, lat: float, lon: float) -> tuple[float, float]:
    return tuple(page.evaluate("""([lat, lon]) => { const m = wx.map.mapFor('map');
        const p = m.latLngToContainerPoint([lat, lon]); const r = m.getContainer().getBoundingClientRect();
        return [r.x + p.x, r.y + p.y]; }""", [lat, lon]))


def _grid_on_top(page, grids: list) -> tuple:
    """(feature, x, y): the first of ``grids`` whose own point shows a grid polygon on top (not a marker, another
    layer or a control), at that point on screen."""
    from shapely.geometry import shape

    for g in grids:
        p = shape(g["geometry"]).representative_point()
        x, y = _screen_point(page, p.y, p.x)
        top = page.evaluate("([x, y]) => { const e = document.elementFromPoint(x, y); "
                            "return e ? (e.getAttribute('class') || '') : ''; }", [x, y])
        if "wx-layer-grids" in top:
            return g, x, y
    pytest.fail("no grid polygon on top")


def _wait_view(page, level: str, code: str):
    page.wait_for_function("""([l, c]) => { const q = new URLSearchParams(location.search);
        return q.get('level') === l && q.get('code') === c; }""", arg=[level, code], timeout=30_000)


def _watch_moves(page) -> float:
    """Mark the map while it moves (Leaflet's movestart … moveend: a fly, a pan, a zoom) for :func:`_settled`; the
    zoom now."""
    return page.evaluate("""() => { const m = wx.map.mapFor('map');
        if (!m._wxWatched) { m._wxWatched = true; m.on('movestart', () => { m._wxMoving = true; });
                             m.on('moveend', () => { m._wxMoving = false; }); }
        return m.getZoom(); }""")


def _settled(page, above_zoom: float):
    """The fly to the unit is over: the map has zoomed in past ``above_zoom`` (the view before the drill) and is not
    moving (no move under way since :func:`_watch_moves`, no animation), and its view has not changed for two reads
    400 ms apart. A drill flies only after two server callbacks (url → view-state → viewport): on a busy machine the
    map can stand still for seconds after the URL changed, and a click during the fly lands on whatever passes
    under the pointer."""
    page.wait_for_function("""z => { const m = wx.map.mapFor('map');
        if (!m || m._wxMoving || m._animatingZoom || (m._panAnim && m._panAnim._inProgress) || !(m.getZoom() > z)) {
            window.__wxView = null; return false; }
        const c = m.getCenter(), now = [c.lat, c.lng, m.getZoom()], prev = window.__wxView;
        window.__wxView = now;
        return !!prev && Math.abs(prev[0] - now[0]) < 1e-7 && Math.abs(prev[1] - now[1]) < 1e-7 && prev[2] === now[2];
    }""", arg=above_zoom, polling=400, timeout=30_000)


def test_real_clicks_drill_zone_then_grid_and_hover_names_the_grid(demo_server, opened):
    """Real mouse clicks (hit-tested, not dispatched): a grid click on the district view opens its zone; in the
    zone, the grids stay on top, so hovering names a grid and a click opens it."""
    page = opened
    with urllib.request.urlopen(authed(f"{demo_server.url}/api/geo/grids.json")) as resp:
        grids = json.loads(resp.read())["features"]
    features = {g["properties"]["code"]: g for g in grids}
    by_code = {c: g["properties"] for c, g in features.items()}

    def clickable(codes):
        """The first grid of ``codes`` whose own point shows a grid polygon on top: (code, x, y)."""
        g, x, y = _grid_on_top(page, [features[c] for c in codes])
        return g["properties"]["code"], x, y

    code, x, y = clickable(list(features)[100:])
    district_zoom = _watch_moves(page)
    page.mouse.click(x, y)
    zone = by_code[code]["zone_code"]
    _wait_view(page, "zone", zone)
    _settled(page, district_zoom)
    # before the fix, the highlighted zones were redrawn over the grids here: no grid was on top any more
    code, x, y = clickable([c for c, p in by_code.items() if p["zone_code"] == zone])
    page.mouse.move(x, y)
    page.mouse.move(x + 1, y + 1)
    page.locator(".wx-tooltip", has_text=code).wait_for(timeout=5_000)  # hovering names this grid
    shown = page.evaluate("() => [...document.querySelectorAll('.wx-tooltip')]"
                          ".filter(e => parseFloat(getComputedStyle(e).opacity) > 0.5).length")
    assert shown == 1  # no tooltip of the first click is left showing (a closed one fades out at opacity 0)
    page.mouse.click(x, y)
    _wait_view(page, "grid", code)
    _ready(page, by_code[code]["name"])
    # the clicked polygon keeps the focus; no focus ring is drawn round its bounds for a mouse click (a black box)
    focused = page.evaluate("() => { const a = document.activeElement; return [a.tagName.toLowerCase(),"
                            " a.matches(':focus-visible'), getComputedStyle(a).outlineStyle]; }")
    assert focused[0] != "path" or (not focused[1] and focused[2] == "none"), focused
    assert page.js_errors == []


@pytest.mark.parametrize("width,height", [(1600, 1000), (3840, 2160)])
def test_shared_grid_link_opens_fitted_to_the_grid(demo_server, browser, width, height):
    code = "330502-ZL-03-05"
    ctx = browser.new_context(viewport={"width": width, "height": height})
    page = ctx.new_page()
    errors = watch(page)  # a grid view once threw "reading 'equals'" from dash-leaflet's viewport tracking
    demo_server.sign_in(page)
    page.goto(f"{demo_server.url}/?level=grid&code={code}&period=2019")
    page.wait_for_selector("path.wx-layer-grids", state="attached", timeout=30_000)
    page.wait_for_selector("#chart-ranking .main-svg", timeout=60_000)
    page.wait_for_timeout(1000)  # an observation window: the error came from a later viewport update, if at all
    with urllib.request.urlopen(authed(f"{demo_server.url}/api/geo/grids.json")) as resp:
        grid = next(f for f in json.loads(resp.read())["features"] if f["properties"]["code"] == code)
    minx, miny, maxx, maxy = __import__("shapely.geometry", fromlist=["shape"]).shape(grid["geometry"]).bounds
    inside, share = page.evaluate("""([s, w, n, e]) => { const m = wx.map.mapFor('map'); const b = m.getBounds();
        const unit = L.latLngBounds([s, w], [n, e]);
        const a = m.latLngToContainerPoint(unit.getSouthWest()), c = m.latLngToContainerPoint(unit.getNorthEast());
        const size = m.getSize();
        return [b.contains(unit), Math.max(Math.abs(c.x - a.x) / size.x, Math.abs(c.y - a.y) / size.y)]; }""",
                                  [miny, minx, maxy, maxx])
    assert inside and share > 0.4, (inside, share)  # the whole grid is in view and fills a good part of it
    assert errors == []
    ctx.close()


def test_a_drill_click_shows_the_unit_before_the_charts(demo_app, page):
    """The panel's text (title, cards) follows the view without waiting for the charts: with the charts' answer
    held in the browser, a real click on a grid of the district view still shows its zone's title and cards;
    released, the charts follow (the ranking lists the zone's grids)."""
    demo_app.sign_in(page)
    page.goto(demo_app.url + "/?period=2019")
    _ready(page)
    page.wait_for_selector("path.wx-layer-grids", timeout=30_000)
    _ranking_names(page)  # the charts of the district are drawn
    with urllib.request.urlopen(authed(f"{demo_app.url}/api/geo/grids.json")) as resp:
        grids = json.loads(resp.read())["features"]
    held = []

    def hold(route):
        if "charts-data.data" in (route.request.post_data or ""):
            held.append(route)
        else:
            route.continue_()

    page.route("**/_dash-update-component*", hold)
    g, x, y = _grid_on_top(page, grids[200:])
    zone = g["properties"]["zone_code"]
    page.mouse.click(x, y)
    page.wait_for_function("z => document.querySelector('#unit-title').innerText.includes(z)", arg=zone,
                           timeout=30_000)
    api = _api(demo_app, f"level=zone&code={zone}&period=2019")["kpis"]
    page.wait_for_function("v => document.querySelector('#card-value-new_incidents').innerText === v",
                           arg=fmt("new_incidents", api["new_incidents"]), timeout=30_000)
    _until(page, lambda: held, "the charts' answer held")
    assert _query(page.url).get("code") == zone
    zone_grids = {f["properties"]["name"] for f in grids if f["properties"]["zone_code"] == zone}
    assert not set(_ranking_names(page)) & zone_grids  # the ranking still shows the district's units
    for r in held:
        r.continue_()
    page.unroute("**/_dash-update-component*")
    page.wait_for_function("names => [...document.querySelectorAll('#chart-ranking .ytick text')]"
                           ".some(t => names.includes(t.textContent))", arg=sorted(zone_grids), timeout=30_000)
    assert page.js_errors == []


def test_a_drill_asks_the_server_for_the_view_once_and_leaves_the_rest_alone(demo_app, page):
    """A real click on a grid of the district view: the URL change asks at once for the view (its state and the zone's
    highlight, one answer) and the panel's text (the title, another) — the text does not wait for the view state —,
    the other unit layers are not restyled, and nothing that depends only on the period runs again: the map is not
    recoloured, the period select does not write the URL."""
    demo_app.sign_in(page)
    page.goto(demo_app.url + "/?period=2019")
    _ready(page)
    page.wait_for_selector("path.wx-layer-grids", timeout=30_000)
    _ranking_names(page)
    with urllib.request.urlopen(authed(f"{demo_app.url}/api/geo/grids.json")) as resp:
        grids = json.loads(resp.read())["features"]
    g, x, y = _grid_on_top(page, grids[150:])
    zone = g["properties"]["zone_code"]
    zone_grids = {f["properties"]["name"] for f in grids if f["properties"]["zone_code"] == zone}
    answers = []  # (the request's changed inputs, the ids and props answered)

    def on_response(resp):
        if "_dash-update-component" not in resp.url or resp.status != 200:
            return
        body = json.loads(resp.request.post_data or "{}")
        answered = {f"{k}.{prop}" for k, props in (resp.json().get("response") or {}).items() for prop in props}
        answers.append((set(body.get("changedPropIds") or []), answered))

    # every unit polygon drawn now, marked: the highlight restyles the zone's path in place, it redraws no layer
    marked = page.evaluate("""() => { const ps = [...document.querySelectorAll('path.wx-unit')];
        ps.forEach(p => { p.dataset.before = '1'; }); return ps.length; }""")
    page.on("response", on_response)
    page.mouse.click(x, y)
    _ranking_shows(page, zone_grids)  # the charts follow the text: the drill's last answer
    page.wait_for_timeout(1000)  # an observation window for anything still to come
    page.remove_listener("response", on_response)
    view = [a for changed, a in answers if "view-state.data" in a]
    assert len(view) == 1, answers
    assert "map-selected.data" in view[0]  # the highlight comes with the view, drawn in the browser
    assert not view[0] & {"period-select.value"} and not any(k.endswith(".hideout") for k in view[0]), view[0]
    page.wait_for_function("z => wx.map.selectedOf('zones') === z && document.querySelectorAll("
                           "\"path.wx-layer-zones[stroke='#ffd400']\").length === 1", arg=zone, timeout=30_000)
    kept = page.evaluate("() => document.querySelectorAll('path.wx-unit[data-before]').length")
    assert kept == marked, (kept, marked)  # not one unit polygon redrawn (a layer's redraw makes new paths)
    text = [(changed, a) for changed, a in answers if "unit-title.children" in a]
    assert len(text) == 1 and text[0][0] == {"ov-url.search"}, text  # asked for by the URL change itself
    assert {"kpi-cards.children", "text-shown.data"} <= text[0][1]
    assert zone in page.locator("#unit-title").inner_text()
    everything = set().union(*(a for _, a in answers))
    assert "map-legend.children" not in everything  # not recoloured
    assert not any("period-select.value" in changed for changed, _ in answers)
    assert page.js_errors == []


def test_a_first_click_is_not_undone_by_the_page_s_first_text_coming_late(demo_app, page):
    """The page's first text (the view it was opened with) held back in the browser; a real click on a grid meanwhile
    drills to its zone; the first text released after the zone's: the panel keeps the zone (the renderer keeps only
    the newest answer of the text's one callback)."""
    held = []

    def hold(route):
        body = json.loads(route.request.post_data or "{}")
        if not held and "text-request.data" in (body.get("changedPropIds") or []):
            held.append(route)
        else:
            route.continue_()

    page.route("**/_dash-update-component*", hold)
    demo_app.sign_in(page)
    page.goto(demo_app.url + "/?period=2019")
    page.wait_for_selector("path.wx-layer-grids", timeout=60_000)
    _until(page, lambda: held, "the first text held")
    with urllib.request.urlopen(authed(f"{demo_app.url}/api/geo/grids.json")) as resp:
        grids = json.loads(resp.read())["features"]
    g, x, y = _grid_on_top(page, grids[120:])
    zone = g["properties"]["zone_code"]
    page.mouse.click(x, y)
    page.wait_for_function("z => document.querySelector('#unit-title').innerText.includes(z)", arg=zone,
                           timeout=30_000)
    held[0].continue_()
    page.unroute("**/_dash-update-component*")
    _ranking_shows(page, {f["properties"]["name"] for f in grids if f["properties"]["zone_code"] == zone})
    page.wait_for_timeout(1000)  # an observation window: the late answer would have landed by now
    assert zone in page.locator("#unit-title").inner_text()
    assert _query(page.url).get("code") == zone
    assert page.js_errors == []


def test_the_browser_drills_a_map_click_by_the_server_s_rule(demo_server, opened):
    """A map click is turned into the URL in the browser (``wx.map.drillQuery``): for clicks on towns, zones and grids
    from the district, a town, a zone and a grid view (grids of the same zone and of another), with another period and
    the English switch kept, it writes what the server's rule (``callbacks.drill.next_state``) gives."""
    import random

    from dashboard.callbacks.drill import next_state
    from dashboard.geodata import load_geodata
    from dashboard.metrics import views
    from dashboard.services.drill import query_for, state_from_query

    page = opened
    h = views.hierarchy(load_geodata())
    rng = random.Random(7)
    with urllib.request.urlopen(authed(f"{demo_server.url}/api/geo/grids.json")) as resp:
        grids = {f["properties"]["code"]: f["properties"] for f in json.loads(resp.read())["features"]}
    page.wait_for_function("n => document.querySelectorAll('path.wx-layer-grids').length === n", arg=len(grids),
                           timeout=30_000)  # the whole district's grids (gridZone reads a grid's zone from them)
    towns = sorted(c for lv, c in h.names if lv == "town")
    zones = sorted(c for lv, c in h.names if lv == "zone")
    checked = 0
    for lang in ("zh", "en"):
        for period in ({"period": "2019", "from": None, "to": None},
                       {"period": "custom", "from": "2019-03-01", "to": "2019-03-31"}):
            zone = rng.choice(zones)
            grid = rng.choice(h.kids("zone", zone))
            for level, code in (("district", None), ("town", rng.choice(towns)), ("zone", zone), ("grid", grid)):
                state = {"level": level, "code": code, **period}
                search = query_for(state, lang)
                assert state_from_query(search, h) == state
                inside = rng.choice([g for g in h.kids("zone", zone) if g != grid])
                other = rng.choice([g for g in grids if grids[g]["zone_code"] != zone])
                clicks = [("grids", grids[inside]), ("grids", grids[other]), ("grids", grids[grid]),
                          ("zones", {"code": zone}), ("zones", {"code": rng.choice(zones)}),
                          ("towns", {"code": rng.choice(towns)}), ("towns", {"code": code if level == "town" else towns[0]})]
                for layer, props in clicks:
                    new = next_state(f"geo-{layer}", {"properties": props}, state, h)
                    want = None if new is None or query_for(new, lang) == search else query_for(new, lang)
                    got = page.evaluate("([l, p, s]) => wx.map.drillQuery(l, p, s)", [layer, props, search])
                    assert got == want, (state, layer, props, lang)
                    checked += 1
    assert checked == 112
    assert page.evaluate("() => wx.map.drillQuery('hazards', {code: 'x'}, '')") is None
    assert page.evaluate("() => wx.map.drillQuery('zones', {}, '')") is None


def test_the_panel_draws_a_view_s_charts_only_while_it_shows_that_view(demo_server, opened):
    """``wx.panel.draw``: figures of a view the panel no longer shows are not drawn, and a newer answer of the same
    group stops the drawing of an older one (the charts of a view come in one answer and are drawn one per task)."""
    page = opened
    _ranking_names(page)
    page.evaluate("""() => { window.__titles = new Set(); const seen = () => document.querySelectorAll(
        '#chart-ranking .gtitle, #chart-trend .gtitle').forEach(t => window.__titles.add(t.textContent));
        window.__obs = new MutationObserver(seen); window.__obs.observe(document.querySelector('#drill-panel'),
        {subtree: true, childList: true, characterData: true}); }""")
    figs = """t => ({'chart-ranking': {data: [], layout: {title: {text: t + '-1'}}},
                     'chart-trend': {data: [], layout: {title: {text: t + '-2'}}}})"""
    shown = {"level": "zone", "code": "330502-ZL-03", "period": "2019", "from": None, "to": None}
    other = {**shown, "code": "330502-ZL-04"}
    page.evaluate("""([figs, shown, other]) => { const f = eval(figs); wx.panel.show(shown);
        wx.panel.draw('charts', {state: other, figures: f('GONE')}); }""", [figs, shown, other])
    page.evaluate("""([figs, shown]) => { const f = eval(figs);
        wx.panel.draw('charts', {state: shown, figures: f('OLD')});
        wx.panel.draw('charts', {state: shown, figures: f('NEW')}); }""", [figs, shown])
    page.wait_for_function("() => window.__titles.has('NEW-1') && window.__titles.has('NEW-2')", timeout=30_000)
    page.wait_for_timeout(500)  # an observation window: nothing else is drawn after
    titles = page.evaluate("() => [...window.__titles]")
    assert not any(t.startswith("GONE") for t in titles), titles  # not the view shown
    assert "OLD-2" not in titles, titles  # the newer answer stopped the older one's drawing
    assert page.js_errors == []


def test_a_click_before_the_map_has_drawn_shows_its_unit_at_once(demo_app, page):
    """The map's first draw held back (``wx.map.whenDrawn`` made to wait until the test says so): a real click on a
    grid still shows its zone's title and cards — the text of a click waits for nothing — and once the map is drawn,
    the first load's text is not asked for (the panel shows a view already)."""
    page.add_init_script("""(() => { let wx;
        Object.defineProperty(window, 'wx', {configurable: true, get: () => wx, set: v => {
            if (v && v.map && !v.map.__held) {
                v.map.__held = true;
                v.map.whenDrawn = () => new Promise(ok => { window.__drawMap = () => ok('drawn'); });
            }
            wx = v; }}); })()""")
    asked = []
    page.on("request", lambda r: asked.append(json.loads(r.post_data or "{}").get("changedPropIds") or [])
            if "_dash-update-component" in r.url else None)
    demo_app.sign_in(page)
    page.goto(demo_app.url + "/?period=2019")
    page.wait_for_selector("path.wx-layer-grids", timeout=60_000)
    page.wait_for_function("() => typeof window.__drawMap === 'function'", timeout=30_000)
    with urllib.request.urlopen(authed(f"{demo_app.url}/api/geo/grids.json")) as resp:
        grids = json.loads(resp.read())["features"]
    g, x, y = _grid_on_top(page, grids[160:])
    zone = g["properties"]["zone_code"]
    page.mouse.click(x, y)
    page.wait_for_function("z => document.querySelector('#unit-title').innerText.includes(z)", arg=zone,
                           timeout=30_000)
    assert page.evaluate("() => document.body.dataset.mapReady") is None  # the map still "drawing"
    assert page.locator("#card-value-new_incidents").inner_text().strip()
    page.evaluate("() => window.__drawMap()")
    page.wait_for_function("() => document.body.dataset.mapReady === 'drawn'", timeout=30_000)
    page.wait_for_function("names => [...document.querySelectorAll('#chart-ranking .ytick text')]"
                           ".some(t => names.includes(t.textContent))",
                           arg=sorted({f["properties"]["name"] for f in grids if f["properties"]["zone_code"] == zone}),
                           timeout=30_000)  # the charts, mounted now, show the zone
    page.wait_for_timeout(500)  # an observation window for a late first-load text
    assert not any("text-request.data" in changed for changed in asked), asked
    assert zone in page.locator("#unit-title").inner_text()
    assert page.js_errors == []
