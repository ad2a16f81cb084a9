"""The wall display (大屏 /wall) in a real headless Chromium: what it shows at 4K and 1080p, live reports and
alerts without a reload, the zone tour, no personal data, and recovery from a server restart."""
from __future__ import annotations

import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import ROOT

TOKEN = "wall-test"
GRIDS = 538
PHONE = "13912345678"
REPORTER = "吕秘密"


def _post(base: str, body: dict) -> dict:
    req = urllib.request.Request(base + "/api/v1/incidents", data=json.dumps(body).encode(), method="POST",
                                 headers={"Authorization": "Bearer test-token", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def _get(base: str, path: str) -> dict:
    req = urllib.request.Request(base + path, headers={"Authorization": "Bearer test-token"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def _incident(base: str, i: int, **extra) -> dict:
    """A point inside a grid (the grid's representative point), with untrusted text and personal data."""
    grids = _get(base, "/api/geo/grids.json")["features"]
    from shapely.geometry import shape

    pt = shape(grids[(37 * i) % len(grids)]["geometry"]).representative_point()
    body = {"category": "city.appearance", "severity": 1, "lon": round(pt.x, 6), "lat": round(pt.y, 6),
            "description": f"墙上测试{i} <b>粗体</b><img src=x onerror=\"window.__pwned=1\">",
            "reporter": REPORTER, "reporter_phone": PHONE}
    body.update(extra)
    return _post(base, body)


def _open_wall(page, base: str, query: str = "") -> None:
    page.goto(f"{base}/wall?token={TOKEN}{query}")
    page.wait_for_function("n => document.querySelectorAll('path.wx-layer-grids').length >= n", arg=GRIDS,
                           timeout=30_000)
    page.wait_for_function("() => window.wx && window.wx.map.mapFor('map')", timeout=10_000)


def _console_errors(page) -> list[str]:
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    return errors


def _markers_shown(page) -> int:
    return page.evaluate("""() => {
        let n = 0;
        document.querySelectorAll('.marker-cluster').forEach(el => { n += parseInt(el.innerText.trim(), 10); });
        return n + document.querySelectorAll('.leaflet-marker-pane .wx-inc').length;
    }""")


@pytest.mark.parametrize("width,height", [(3840, 2160), (1920, 1080)])
def test_wall_shows_map_ticker_kpis_and_a_running_clock(demo_app, browser, width, height):
    context = browser.new_context(viewport={"width": width, "height": height}, locale="zh-CN")
    page = context.new_page()
    errors = _console_errors(page)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        _open_wall(page, demo_app.url)
        assert page.locator("path.wx-layer-grids").count() == GRIDS
        assert page.locator("path.wx-layer-zones").count() == 46
        ticker = page.locator("#wall-ticker li[data-code]")
        assert 1 <= ticker.count() <= 20
        assert page.locator("#wall-kpis .wx-wall-kpi").count() == 10
        assert page.locator("#wall-kpis [data-kpi='today.new_incidents'] .wx-wall-kpi-value").inner_text().strip()
        assert "今日" in page.locator("#wall-kpis").inner_text() and "本月" in page.locator("#wall-kpis").inner_text()
        assert "现场处置率" in page.locator("#wall-kpis").inner_text()
        assert page.locator("#wall-ranking .wx-wall-rank-row").count() == 10
        assert page.locator("#wall-zone-card [data-zone]").count() == 1
        clock = page.locator("#wall-clock")
        first = clock.inner_text()
        assert len(first) == 8 and first.count(":") == 2  # HH:MM:SS
        page.wait_for_function("t => document.querySelector('#wall-clock').innerText !== t", arg=first,
                               timeout=5_000)
        # the whole wall fits the screen: no scrolling, no part cut off below
        box = page.evaluate("() => { const r = document.querySelector('.wx-wall').getBoundingClientRect();"
                            " return [r.width, r.height, document.documentElement.scrollHeight]; }")
        assert box[0] == width and box[1] == height and box[2] <= height
        # type scales with the screen (readable from 5 m on either)
        size = page.evaluate("() => parseFloat(getComputedStyle(document.querySelector('.wx-wall-kpi-value')).fontSize)")
        assert size >= 0.018 * width
        assert not page.locator("#wall-conn-sign.wx-wall-conn-on").count()
        assert errors == []
    finally:
        context.close()


def test_posted_incident_and_alert_reach_the_wall_without_personal_data(demo_app, page):
    errors = _console_errors(page)
    _open_wall(page, demo_app.url)
    page.wait_for_selector(".marker-cluster, .wx-inc", timeout=20_000)
    before = _markers_shown(page)
    low = _incident(demo_app.url, 1)
    item = page.locator(f"#wall-ticker li[data-code='{low['code']}']")
    item.wait_for(timeout=10_000)
    text = item.inner_text()
    assert "<b>粗体</b>" in text and "墙上测试1" in text  # untrusted text is shown as text, never as HTML
    assert item.locator("b", has_text="粗体").count() == 0 and item.locator("img").count() == 0
    page.wait_for_function("n => { let m = 0; document.querySelectorAll('.marker-cluster').forEach("
                           "el => { m += parseInt(el.innerText.trim(), 10); });"
                           " return m + document.querySelectorAll('.leaflet-marker-pane .wx-inc').length === n; }",
                           arg=before + 1, timeout=10_000)

    high = _incident(demo_app.url, 2, severity=4, category="safety.fire")
    page.locator(f"#wall-ticker li[data-code='{high['code']}']").wait_for(timeout=10_000)
    # only the new report slides in; the rows already shown stay still
    assert "wx-tick-new" in page.get_attribute(f"#wall-ticker li[data-code='{high['code']}']", "class")
    assert "wx-tick-new" not in page.get_attribute(f"#wall-ticker li[data-code='{low['code']}']", "class")
    card = page.locator(f"#wall-alert.wx-wall-alert-on [data-code='{high['code']}']")
    card.wait_for(timeout=30_000)  # the tour pauses to show the alert
    assert "特别重大" in card.inner_text()
    assert page.locator("#wall-alert-count").inner_text().startswith("当前告警")
    # stop the tour's flight to the alert first: an animation still running would carry the view on past setView
    page.evaluate("([lat, lon]) => { const m = window.wx.map.mapFor('map'); m.stop();"
                  " m.setView([lat, lon], 19, {animate: false}); }", [high["lat"], high["lon"]])
    page.locator(f".leaflet-marker-icon.wx-pulse[title$='#{high['id']}']").wait_for(timeout=30_000)

    html = page.content()
    assert PHONE not in html and REPORTER not in html  # the wall never shows personal data
    assert page.evaluate("() => window.__pwned === undefined")
    assert page.js_errors == [] and errors == []


def test_tour_flies_from_zone_to_zone_by_itself(demo_app, page):
    _open_wall(page, demo_app.url, "&tour=2&order=code&pause=4")
    # Dash's store would keep every interval tick (undo history) and every failed request (error log) for as
    # long as the page is open: the wall's heartbeat cuts both back (checked at the end, > 1 heartbeat later)
    page.evaluate("""() => { const st = window.dash_stores[0].getState();
        for (let i = 0; i < 500; i++) { st.history.past.push({id: 'x', props: {}});
                                        st.error.backEnd.push({error: {message: 'x'}}); } }""")
    zone = page.locator("#wall-zone-card [data-zone]")
    # the tour starts on the district and then visits the zones; on a busy machine it may already be past the
    # first steps when the page is ready, and it may step again between two reads of the test, so the page records
    # every card it shows (in order) and the test checks the record
    page.evaluate("""() => { window.__tour = [];
        const note = () => { const z = document.querySelector('#wall-zone-card [data-zone]');
            const v = z && z.dataset.zone; if (v && v !== window.__tour[window.__tour.length - 1]) window.__tour.push(v); };
        note(); new MutationObserver(note).observe(document.querySelector('#wall-zone-card'),
                                                   {subtree: true, childList: true, attributes: true}); }""")
    zones = sorted(f["properties"]["code"] for f in _get(demo_app.url, "/api/geo/zones.json")["features"])
    page.wait_for_function("() => window.__tour.filter(z => z !== 'district').length >= 1", timeout=20_000)
    center = page.evaluate("() => window.wx.map.mapFor('map').getCenter()")
    page.wait_for_function("() => window.__tour.filter(z => z !== 'district').length >= 3", timeout=30_000)
    seen = [z for z in page.evaluate("() => window.__tour") if z != "district"]
    assert set(seen) <= set(zones), seen
    for a, b in zip(seen, seen[1:]):  # order=code: each card is the next zone by code
        assert b == zones[(zones.index(a) + 1) % len(zones)], seen
    page.wait_for_function("c => { const now = window.wx.map.mapFor('map').getCenter();"
                           " return Math.abs(now.lat - c.lat) > 1e-6 || Math.abs(now.lng - c.lng) > 1e-6; }",
                           arg=center, timeout=10_000)  # the map flew to the zones it showed
    page.wait_for_function("() => document.querySelectorAll(\"path.wx-layer-zones[stroke='#ffd400']\").length === 1",
                           timeout=10_000)  # the visited zone is outlined, and only it
    # ... on top of the grids too (the selection pane): one outline, the shape of the one zone stroked (±2 px)
    page.wait_for_function("""() => { const outs = document.querySelectorAll(
            '.leaflet-wx-selection-pane path.wx-selected-zones');
        const lit = document.querySelectorAll("path.wx-layer-zones[stroke='#ffd400']");
        if (outs.length !== 1 || lit.length !== 1) return false;
        const a = lit[0].getBoundingClientRect(), b = outs[0].getBoundingClientRect();
        return ['left', 'top', 'right', 'bottom'].every(k => Math.abs(a[k] - b[k]) <= 2); }""", timeout=10_000)
    # an alert pauses the tour (its card, the map on the incident) and the tour then resumes by itself
    shown = zone.get_attribute("data-zone")
    alert = _incident(demo_app.url, 4, severity=3, category="safety.production")
    page.locator(f"#wall-alert.wx-wall-alert-on [data-code='{alert['code']}']").wait_for(timeout=10_000)
    page.wait_for_timeout(2_500)  # longer than a tour step (2 s), shorter than the pause (4 s)
    assert page.locator("#wall-alert.wx-wall-alert-on").count() == 1  # still paused on the alert
    page.wait_for_selector("#wall-alert.wx-wall-alert-on", state="detached", timeout=8_000)
    page.wait_for_function("z => document.querySelector('#wall-zone-card [data-zone]').dataset.zone !== z",
                           arg=shown, timeout=8_000)
    history, errors = page.evaluate("() => { const st = window.dash_stores[0].getState();"
                                    " return [st.history.past.length, st.error.backEnd.length]; }")
    assert history <= 40 and errors <= 20, (history, errors)
    assert page.js_errors == []


def test_unknown_kiosk_token_shows_no_wall(demo_app):
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(demo_app.url + "/wall?token=not-a-token", timeout=10)
    assert exc.value.code == 403


# ------------------------------------------------------------------------------------ restart survival
SERVE = """
import sys
from pathlib import Path
from werkzeug.serving import make_server
from dashboard import create_app
from dashboard.settings import Settings
inst, port = Path(sys.argv[1]), int(sys.argv[2])
s = Settings(instance_dir=inst, tile_url="", demo_live=False, api_tokens=("test-token",), wall_tokens=("wall-test",))
make_server("127.0.0.1", port, create_app(s).server, threaded=True).serve_forever()
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(instance: Path, port: int) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", SERVE, str(instance), str(port)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                return proc
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError("the app did not start")
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("the app did not answer /healthz")


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture
def restart_instance(small_demo_instance, tmp_path) -> Path:
    """A copy of the small demo store (SQLite backup API: consistent while another server has it open)."""
    inst = tmp_path / "instance"
    inst.mkdir()
    src = sqlite3.connect(small_demo_instance / "wuxing.sqlite3")
    dst = sqlite3.connect(inst / "wuxing.sqlite3")
    src.backup(dst)
    src.close()
    dst.close()
    yield inst
    shutil.rmtree(inst, ignore_errors=True)


def test_wall_survives_a_server_restart(restart_instance, page):
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    proc = _start(restart_instance, port)
    try:
        _open_wall(page, base)
        sign = page.locator("#wall-conn-sign")
        assert not sign.is_visible()
        _stop(proc)
        page.wait_for_selector("#wall-conn-sign.wx-wall-conn-on", state="visible", timeout=10_000)
        assert "正在重连" in sign.inner_text()
        page.wait_for_timeout(1_500)  # a few failed ticks: the last content stays, no blank or error page
        assert page.locator("path.wx-layer-grids").count() == GRIDS
        assert page.locator("#wall-ticker li[data-code]").count() >= 1
        assert page.locator("#wall-kpis .wx-wall-kpi").count() == 10
        assert page.locator(".dash-fe-error__title, .dash-debug-menu").count() == 0
        clock = page.locator("#wall-clock").inner_text()
        page.wait_for_function("t => document.querySelector('#wall-clock').innerText !== t", arg=clock,
                               timeout=5_000)  # the clock keeps running offline

        proc = _start(restart_instance, port)  # same port, same store
        page.wait_for_selector("#wall-conn-sign.wx-wall-conn-on", state="detached", timeout=10_000)
        assert not sign.is_visible()
        fresh = _incident(base, 3)
        page.locator(f"#wall-ticker li[data-code='{fresh['code']}']").wait_for(timeout=10_000)
        assert page.js_errors == []
    finally:
        _stop(proc)


def _kiosk_copy(folder: Path, servers: str) -> Path:
    """kiosk.html as installed on a screen's computer: its wx-kiosk-servers meta tag lists ``servers``."""
    html = (ROOT / "assets" / "kiosk.html").read_text(encoding="utf-8")
    tag = '<meta name="wx-kiosk-servers" content="">'
    assert tag in html
    out = folder / "kiosk.html"
    out.write_text(html.replace(tag, f'<meta name="wx-kiosk-servers" content="{servers}">'), encoding="utf-8")
    return out


def test_kiosk_starter_waits_for_the_server_then_opens_the_wall(restart_instance, page, tmp_path):
    """A wall screen that powers up before the server: the local kiosk page says it is connecting (no browser
    error page), then opens /wall with the token and tour settings once the server answers."""
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    kiosk = _kiosk_copy(tmp_path, f"http://10.9.9.9:8050 {base}")
    page.goto(kiosk.as_uri() + f"?server={base}/&token={TOKEN}&tour=7")
    page.wait_for_function("() => document.querySelector('#kiosk-detail').innerText.includes('第 2 次')",
                           timeout=15_000)  # retried: the server is not there yet
    assert "正在连接" in page.locator("#kiosk-text").inner_text()
    proc = _start(restart_instance, port)
    try:
        # the token is exchanged for a session and leaves the address (and so the history and any Referer)
        page.wait_for_url(f"{base}/wall?tour=7", timeout=15_000)
        page.wait_for_function("n => document.querySelectorAll('path.wx-layer-grids').length >= n", arg=GRIDS,
                               timeout=30_000)
        assert page.locator("#wall-clock").count() == 1
    finally:
        _stop(proc)


def test_kiosk_starter_sends_the_token_to_no_other_server(page, tmp_path):
    """A kiosk link that names a server not listed in the page (nor the one that served it) is refused: the token
    is not sent anywhere, not even to probe /healthz."""
    asked = []
    page.on("request", lambda r: asked.append(r.url) if r.url.startswith("http") else None)
    for kiosk in (ROOT / "assets" / "kiosk.html", _kiosk_copy(tmp_path, "http://10.9.9.9:8050")):
        page.goto(kiosk.as_uri() + f"?server=http://127.0.0.1:9/steal&token={TOKEN}")
        page.wait_for_function("() => document.querySelector('#kiosk-text').innerText.includes('不在允许列表')",
                               timeout=5_000)
        page.wait_for_timeout(500)
    assert asked == []


def test_kiosk_starter_without_a_server_says_how_to_configure_it(page):
    page.goto((ROOT / "assets" / "kiosk.html").as_uri())
    assert "未配置服务器地址" in page.locator("#kiosk-text").inner_text()
