"""Live by push (issue 12) in a real Chromium: a duty desk, a wall and an overview send no request while nothing
changes; a post reaches all three through the stream (no layer refetch, no polling); a page whose stream was cut
by a server restart reconnects by itself and shows what happened meanwhile exactly once."""
from __future__ import annotations

import json
import time
import urllib.request

import pytest

from tests.conftest import LiveServer, serve_instance, watch

IDLE_MS = 4000
POLLING = ("/api/map/incidents.json", "/api/map/rings.json", "/_dash-update-component", "/healthz",
           "/api/v1/alerts")


def _post(base: str, i: int, **kw) -> dict:
    body = {"category": "order.public", "description": f"推送测试{i}", "lon": 120.0943 + 0.001 * (i % 7),
            "lat": 30.8676 + 0.001 * (i % 5), "severity": 2, **kw}
    req = urllib.request.Request(base + "/api/v1/incidents", data=json.dumps(body).encode(), method="POST",
                                 headers={"Authorization": "Bearer test-token", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=15) as r:
        return json.loads(r.read())


def _recorder(page) -> list:
    seen: list = []
    page.on("request", lambda r: seen.append((time.monotonic(), r.method, r.url)))
    return seen


def _since(seen: list, t0: float, parts=POLLING) -> list:
    return [(m, u) for t, m, u in seen if t >= t0 and any(p in u for p in parts)]


def _has(page, incident_id: int, timeout: float = 20_000) -> None:
    page.wait_for_function("id => window.wx && window.wx.live && window.wx.live.ids().indexOf(id) >= 0",
                           arg=incident_id, timeout=timeout)


def _stream_open(page) -> None:
    page.wait_for_function("() => window.wx && window.wx.live && window.wx.live.state().connected "
                           "&& window.wx.live.size() !== null", timeout=60_000)


@pytest.fixture
def server(small_demo_instance):
    srv = serve_instance(small_demo_instance)
    yield srv
    srv.stop()


def test_pages_idle_without_requests_and_a_post_arrives_by_push(server, browser):
    pages = {}
    for name, role, path in (("duty", "duty_officer", "/incidents"), ("overview", "leader", "/"),
                             ("wall", None, "/wall?token=wall-test")):
        ctx = browser.new_context(viewport={"width": 1600, "height": 1000}, locale="zh-CN")
        pg = ctx.new_page()
        pg.js_errors = watch(pg)
        if role:
            server.sign_in(pg, role)
        pg.seen = _recorder(pg)
        pg.goto(server.url + path)
        _stream_open(pg)
        pages[name] = pg
    try:
        pages["duty"].wait_for_selector("#duty-grid .ag-row", timeout=30_000)
        pages["wall"].wait_for_selector("#wall-ticker li", timeout=30_000)
        # settle: first-paint callbacks done; then nothing may be asked while nothing changes
        for pg in pages.values():
            pg.wait_for_load_state("networkidle")
        t0 = time.monotonic()
        pages["duty"].wait_for_timeout(IDLE_MS)
        for name, pg in pages.items():
            assert _since(pg.seen, t0) == [], (name, _since(pg.seen, t0))

        cards = pages["overview"].inner_text("#kpi-cards")
        header = pages["wall"].inner_text("#wall-kpis")
        t1 = time.monotonic()
        inc = _post(server.url, 1)
        for name, pg in pages.items():
            _has(pg, inc["id"])
        pages["duty"].wait_for_selector(f"#duty-grid .ag-row[row-id='{inc['id']}']", timeout=20_000)
        pages["wall"].wait_for_selector(f"#wall-ticker li[data-code='{inc['code']}']", timeout=20_000)
        # the figures follow in the same event: the overview's KPI cards, the wall's header
        pages["overview"].wait_for_function("t => document.querySelector('#kpi-cards').innerText !== t", arg=cards,
                                            timeout=20_000)
        pages["wall"].wait_for_function("t => document.querySelector('#wall-kpis').innerText !== t", arg=header,
                                        timeout=20_000)
        pages["duty"].wait_for_timeout(1500)  # time for any request a page would still send after the change
        for name, pg in pages.items():
            refetched = _since(pg.seen, t1, ("/api/map/incidents.json", "/api/map/rings.json", "/healthz"))
            assert refetched == [], (name, refetched)  # the change came in the stream, not by a refetch
            # nothing ran on the server for this page because of the change: its parts came in the event
            assert _since(pg.seen, t1, ("/_dash-update-component",)) == [], (name, _since(pg.seen, t1))
        # markers age in the browser, with no request: a day and an hour after its due time the new report is
        # more than 24 h overdue and its marker says so
        duty = pages["duty"]
        due = duty.evaluate("id => wx.live.props(id).du", inc["id"])
        assert due is not None and duty.evaluate("id => wx.live.props(id).od", inc["id"]) == 0
        t2 = time.monotonic()
        assert duty.evaluate("t => wx.live.age(t)", due + 25 * 3600) >= 1
        assert 24 < duty.evaluate("id => wx.live.props(id).od", inc["id"]) < 26
        duty.evaluate("t => wx.map.mapFor('map').setView([t.lat, t.lon], 19, {animate: false})", inc)
        duty.wait_for_selector(f".leaflet-marker-icon.wx-age-2[title$='#{inc['id']}']", timeout=45_000)
        assert _since(duty.seen, t2, ("/api/map/incidents.json",)) == []
        for name, pg in pages.items():
            assert pg.js_errors == [], (name, pg.js_errors)
    finally:
        for pg in pages.values():
            pg.context.close()


def test_a_cut_stream_catches_up_exactly_once_after_a_restart(small_demo_instance, browser):
    first = serve_instance(small_demo_instance)
    port = first.port
    other = serve_instance(small_demo_instance)  # a second server on the same store: posts while the first is down
    ctx = browser.new_context(viewport={"width": 1600, "height": 1000}, locale="zh-CN")
    pg = ctx.new_page()
    errors = watch(pg)
    again = None
    try:
        first.sign_in(pg, "duty_officer")
        pg.goto(first.url + "/incidents")
        _stream_open(pg)
        pg.wait_for_selector("#duty-grid .ag-row", timeout=30_000)
        before = pg.evaluate("() => window.wx.live.size()")
        first.stop()  # the page's stream is cut; the browser retries
        pg.wait_for_function("() => !window.wx.live.state().connected", timeout=20_000)
        missed = [_post(other.url, 10 + i) for i in range(3)]
        pg.wait_for_timeout(1000)  # still down: nothing can have arrived
        assert pg.evaluate("() => window.wx.live.size()") == before
        from dashboard import create_app
        from dashboard.settings import Settings
        from tests.conftest import SUITE_LIMITS

        again = LiveServer(create_app(Settings(instance_dir=small_demo_instance, tile_url="", demo_live=False,
                                               api_tokens=("test-token",), wall_tokens=("wall-test",),
                                               rate_limits=SUITE_LIMITS)), port=port)
        for inc in missed:
            _has(pg, inc["id"], timeout=30_000)
        ids = pg.evaluate("() => window.wx.live.ids()")
        assert all(ids.count(inc["id"]) == 1 for inc in missed)
        assert len(ids) == before + len(missed)
        for inc in missed:  # the duty list too, each once
            row = pg.locator(f"#duty-grid .ag-center-cols-container .ag-row[row-id='{inc['id']}']")
            row.wait_for(timeout=20_000)
            assert row.count() == 1
        assert errors == [] or all("Failed to load resource" in e for e in errors), errors
    finally:
        ctx.close()
        other.stop()
        if again is not None:
            again.stop()


def test_ring_counts_move_by_push_without_refetching_the_rings(server, browser):
    """A report inside a hazardous site's safety ring: the duty desk's ring turns from empty to holding an open
    incident, and its popup says how many, with no request for the rings' geometry."""
    import re

    with urllib.request.urlopen(urllib.request.Request(server.url + "/api/map/rings.json", headers={
            "Authorization": "Bearer test-token"}), timeout=15) as r:
        rings = json.loads(r.read())["features"]
    empty = [f for f in rings if f["properties"]["open_incidents"] == 0]
    assert empty, "the demo has a ring with no open incident"
    ring = empty[0]
    pts = ring["geometry"]["coordinates"][0]
    lon, lat = sum(p[0] for p in pts) / len(pts), sum(p[1] for p in pts) / len(pts)  # its centre
    cls = "wx-ring-site-" + re.sub(r"[^A-Za-z0-9_-]", "", ring["properties"]["code"])
    ctx = browser.new_context(viewport={"width": 1600, "height": 1000}, locale="zh-CN")
    pg = ctx.new_page()
    errors = watch(pg)
    try:
        server.sign_in(pg, "duty_officer")
        pg.goto(server.url + "/incidents")
        _stream_open(pg)
        path = pg.locator(f"path.{cls}")
        path.wait_for(state="attached", timeout=30_000)
        assert float(path.get_attribute("fill-opacity")) < 0.1
        seen = _recorder(pg)
        t0 = time.monotonic()
        inc = _post(server.url, 30, lon=lon, lat=lat)
        pg.wait_for_function("c => parseFloat(document.querySelector('path.' + c).getAttribute('fill-opacity')) > 0.1",
                             arg=cls, timeout=20_000)
        assert _since(seen, t0, ("/api/map/rings.json",)) == []
        pg.evaluate("([lat, lon]) => wx.map.mapFor('map').setView([lat, lon], 16, {animate: false})", [lat, lon])
        box = pg.locator(f"path.{cls}").bounding_box()  # inside the ring, away from the marker at its centre
        pg.locator(f"path.{cls}").click(force=True, position={"x": box["width"] * 0.5, "y": box["height"] * 0.85})
        pg.locator(".wx-ring-popup .wx-ring-count").wait_for(timeout=10_000)
        assert pg.locator(".wx-ring-popup .wx-ring-count").inner_text() == "1"
        assert inc["id"] and errors == []
    finally:
        ctx.close()


def test_a_page_whose_session_ends_elsewhere_goes_to_sign_in(server, browser):
    """Signed out from another tab (the same cookie), the duty desk's stream is ended by the server at its next
    check and the page goes to the sign-in page, with the way back to the desk; no live data reaches it after."""
    server.app.server.extensions["dashboard"].hub.heartbeat_s = 0.5  # the check runs at each heartbeat
    ctx = browser.new_context(viewport={"width": 1600, "height": 1000}, locale="zh-CN")
    pg = ctx.new_page()
    pg.js_errors = watch(pg)
    try:
        server.sign_in(pg, "duty_officer")
        pg.goto(server.url + "/incidents")
        _stream_open(pg)
        other = ctx.new_page()  # another tab of the same browser: same session cookie
        r = other.request.post(server.url + "/logout", headers={"Origin": server.url}, max_redirects=0)
        assert r.status == 303
        pg.wait_for_url("**/login?next=%2Fincidents*", timeout=30_000)
        assert pg.locator("input[name=username]").count() == 1
        assert pg.js_errors == []
    finally:
        ctx.close()
