"""A city's wall (大屏) in a real browser (the seed's towns regrouped as one city of three counties,
``tests/regrouped.py``, on the small demo history): it ranks the counties, tours them (the card names the county,
the map flies to it and outlines it) with the county polygons coloured by open cases, says 县（市、区） where it
names them (County with ``lang=en``), and fetches no zone or grid beyond the view. A province's wall does the same
with its cities (市排名, 市巡览)."""
from __future__ import annotations

import re

import pytest

from tests.conftest import SUITE_LIMITS, LiveServer
from tests.regrouped import CITIES, COUNTIES, PROVINCE, county_of_towns, regrouped, write_regrouped

TOKEN = "wall-test"
DARK_RAMP = ("#17324d", "#3d2f5a", "#6b2f57", "#9c2f45", "#cf3a32", "#ff5a36")  # services.wall.DARK_RAMP


def _serve(small_demo_instance, tmp_path_factory, with_cities: bool):
    from dashboard import create_app
    from dashboard.geodata import load_geodata
    from dashboard.settings import Settings

    base = tmp_path_factory.mktemp("province-wall" if with_cities else "city-wall")
    gdir = write_regrouped(load_geodata(), base / "geodata", with_cities=with_cities)
    settings = Settings(instance_dir=small_demo_instance, geodata_dir=gdir, tile_url="", demo_live=False,
                        cache_url=f"file://{base / 'cache'}", api_tokens=("test-token",), wall_tokens=(TOKEN,),
                        rate_limits=SUITE_LIMITS)
    return LiveServer(create_app(settings))


@pytest.fixture(scope="module")
def city_server(small_demo_instance, tmp_path_factory):
    server = _serve(small_demo_instance, tmp_path_factory, with_cities=False)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def province_server(small_demo_instance, tmp_path_factory):
    server = _serve(small_demo_instance, tmp_path_factory, with_cities=True)
    yield server
    server.stop()


def _open(page, base: str, query: str, layer: str = "counties", n: int = len(COUNTIES)) -> None:
    page.goto(f"{base}/wall?token={TOKEN}{query}")
    page.wait_for_function("([layer, n]) => document.querySelectorAll('path.wx-layer-' + layer).length === n",
                           arg=[layer, n], timeout=30_000)
    page.wait_for_function("() => window.wx && window.wx.map.mapFor('map')", timeout=10_000)


def _off_centre(city) -> list[str]:
    """The counties whose centre (of their bounds) is not the city's: a wall showing one in the middle of its map
    has flown there."""
    w0, s0, e0, n0 = city.district.total_bounds
    out = []
    for r in city.counties.itertuples():
        w, s, e, n = r.geometry.bounds
        if abs((s + n) - (s0 + n0)) / 2 > 0.05 * (n - s) or abs((w + e) - (w0 + e0)) / 2 > 0.05 * (e - w):
            out.append(r.code)
    return out


def test_city_wall_ranks_and_tours_its_counties(city_server, page):
    from dashboard.geodata import load_geodata

    geo_requests: list[str] = []
    page.on("request", lambda r: geo_requests.append(r.url.split("/api/geo/")[1]) if "/api/geo/" in r.url else None)
    # ranked by new cases this month: a count, so every county has a value and is ranked
    _open(page, city_server.url, "&tour=3&order=code&rank=new_incidents")

    # the ranking: the three counties, under a heading that names them
    page.wait_for_function("n => document.querySelectorAll('#wall-ranking .wx-wall-rank-row').length === n",
                           arg=len(COUNTIES), timeout=20_000)
    ranking = page.locator("#wall-ranking")
    assert "县（市、区）排名" in ranking.inner_text() and "片区排名" not in ranking.inner_text()
    ranked = page.eval_on_selector_all("#wall-ranking .wx-wall-rank-row", "els => els.map(e => e.dataset.zone)")
    assert sorted(ranked) == sorted(COUNTIES)
    assert all(name in ranking.inner_text() for name, _ in COUNTIES.values())

    # the map: every county polygon filled with a colour of the wall's ramp (open cases now), no zone nor grid of
    # the whole city fetched (only those of a view, when the tour zooms in)
    page.wait_for_function("""ramp => { const els = [...document.querySelectorAll('path.wx-layer-counties')];
        return els.length && els.every(e => ramp.includes(e.getAttribute('fill'))
                                            && +e.getAttribute('fill-opacity') > 0.3); }""",
                           arg=list(DARK_RAMP), timeout=20_000)
    values = page.evaluate("() => (wx.map.hideoutOf('counties') || {}).values || null")
    assert values is not None and sorted(values) == sorted(COUNTIES)

    # the tour: the page records every card it shows (it may step between two reads of the test)
    page.evaluate("""() => { window.__tour = [];
        const note = () => { const z = document.querySelector('#wall-zone-card [data-zone]');
            const v = z && z.dataset.zone; if (v && v !== window.__tour[window.__tour.length - 1]) window.__tour.push(v); };
        note(); new MutationObserver(note).observe(document.querySelector('#wall-zone-card'),
                                                   {subtree: true, childList: true, attributes: true}); }""")
    page.wait_for_function("() => window.__tour.filter(z => z !== 'district').length >= 2", timeout=30_000)
    seen = [z for z in page.evaluate("() => window.__tour") if z != "district"]
    codes = sorted(COUNTIES)
    assert set(seen) <= set(codes), seen
    for a, b in zip(seen, seen[1:]):  # order=code: each card is the next county by code
        assert b == codes[(codes.index(a) + 1) % len(codes)], seen

    # a county's card: its name, its city, its towns counted, the county heading; the map flown to it and the
    # county outlined (and only it)
    geo = load_geodata()
    towns_of = {}
    for town, county in county_of_towns(geo.towns).items():
        towns_of[county] = towns_of.get(county, 0) + 1
    off = _off_centre(regrouped(geo, with_cities=False))
    assert off
    got = page.wait_for_function("""off => { const m = wx.map.mapFor('map');
        const z = document.querySelector('#wall-zone-card [data-zone]');
        const code = z && z.dataset.zone; if (!off.includes(code)) return null;
        let b = null;
        m.eachLayer(l => { if (!b && l.feature && l.feature.properties.code === code && l.getBounds
                                 && /wx-layer-counties/.test(l.options.className || '')) b = l.getBounds(); });
        if (!b) return null;
        const c = m.getCenter(), bc = b.getCenter();
        const near = Math.abs(c.lat - bc.lat) < 0.05 * (b.getNorth() - b.getSouth())
                     && Math.abs(c.lng - bc.lng) < 0.05 * (b.getEast() - b.getWest());
        const outlined = [...document.querySelectorAll("path.wx-layer-counties[stroke='#ffd400']")];
        if (!near || outlined.length !== 1) return null;
        const part = sel => (z.querySelector(sel) || {innerText: ''}).innerText;  // the card as it is now
        return {code: code, text: z.innerText, name: part('.wx-wall-zone-name'), sub: part('.wx-wall-zone-sub'),
                facts: part('.wx-wall-facts')}; }""", arg=off, timeout=30_000).json_value()
    shown = got["code"]
    assert shown in off and COUNTIES[shown][0] in got["name"]
    assert "甲市" in got["sub"]  # its parent: the city (tests.regrouped: one city, 甲市)
    assert "县（市、区）巡览" in got["text"] and "片区巡览" not in got["text"]
    assert re.search(rf"镇街\s*{towns_of[shown]}(?!\d)", got["facts"]) and re.search(r"片区\s*\d", got["facts"]), got
    assert not [u for u in geo_requests if u.split("?")[0] in ("zones.json", "grids.json", "towns.json")
                and "bbox=" not in u], geo_requests

    # the English switch names them counties
    _open(page, city_server.url, "&lang=en&rank=new_incidents")
    page.wait_for_function("() => (document.querySelector('#wall-ranking') || {}).innerText?.includes('County ranking')",
                           timeout=20_000)
    page.wait_for_function("() => (document.querySelector('#wall-zone-card') || {}).innerText?.includes('County tour')",
                           timeout=20_000)


def test_province_wall_ranks_and_tours_its_cities(province_server, page):
    _open(page, province_server.url, "&tour=2&order=code&rank=new_incidents", "cities", len(CITIES))
    page.wait_for_function("n => document.querySelectorAll('#wall-ranking .wx-wall-rank-row').length === n",
                           arg=len(CITIES), timeout=20_000)
    ranking = page.locator("#wall-ranking").inner_text()
    assert "市排名" in ranking and "片区排名" not in ranking and "县（市、区）排名" not in ranking
    ranked = page.eval_on_selector_all("#wall-ranking .wx-wall-rank-row", "els => els.map(e => e.dataset.zone)")
    assert sorted(ranked) == sorted(CITIES)
    page.wait_for_function("""ramp => { const els = [...document.querySelectorAll('path.wx-layer-cities')];
        return els.length && els.every(e => ramp.includes(e.getAttribute('fill'))
                                            && +e.getAttribute('fill-opacity') > 0.3); }""",
                           arg=list(DARK_RAMP), timeout=20_000)
    # the tour reaches a city: its card names it, its province, its counties counted, under 市巡览
    got = page.wait_for_function("""cities => { const z = document.querySelector('#wall-zone-card [data-zone]');
        if (!z || !cities.includes(z.dataset.zone)) return null;
        const part = sel => (z.querySelector(sel) || {innerText: ''}).innerText;
        return {code: z.dataset.zone, text: z.innerText, name: part('.wx-wall-zone-name'),
                sub: part('.wx-wall-zone-sub'), facts: part('.wx-wall-facts')}; }""",
                                 arg=sorted(CITIES), timeout=30_000).json_value()
    n_counties = sum(1 for _, city in COUNTIES.values() if city == got["code"])
    assert CITIES[got["code"]] in got["name"] and PROVINCE[1] in got["sub"] and "市巡览" in got["text"]
    assert re.search(rf"县（市、区）\s*{n_counties}(?!\d)", got["facts"]), got



def test_an_alert_on_a_city_wall_outlines_its_zone_then_the_tour_of_counties_resumes(city_server, page):
    """An alert holds the county tour: the map flies to the incident and outlines its zone (the zones are drawn
    there, the view's only); when the tour resumes the zone's outline goes and a county is outlined again."""
    import json
    import urllib.request

    from dashboard.geodata import load_geodata

    _open(page, city_server.url, "&tour=2&order=code&pause=4")
    grid = load_geodata().grids.sort_values("code").iloc[0]
    pt = grid.geometry.representative_point()
    body = {"category": "safety.fire", "severity": 4, "lon": round(pt.x, 6), "lat": round(pt.y, 6),
            "description": "城市大屏告警测试"}
    req = urllib.request.Request(city_server.url + "/api/v1/incidents", data=json.dumps(body).encode(), method="POST",
                                 headers={**city_server.auth_header(), "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        posted = json.loads(resp.read())
    page.locator(f"#wall-alert.wx-wall-alert-on [data-code='{posted['code']}']").wait_for(timeout=30_000)
    page.wait_for_function("z => (wx.map.hideoutOf('zones') || {}).selected === z", arg=grid["zone_code"],
                           timeout=10_000)
    page.wait_for_function("z => document.querySelectorAll(\"path.wx-layer-zones[stroke='#ffd400']\").length === 1",
                           arg=grid["zone_code"], timeout=30_000)  # the incident's zone, drawn at the alert's zoom
    page.wait_for_selector("#wall-alert.wx-wall-alert-on", state="detached", timeout=15_000)
    page.wait_for_function("() => (wx.map.hideoutOf('zones') || {}).selected === null", timeout=10_000)
    page.wait_for_function("codes => codes.includes((wx.map.hideoutOf('counties') || {}).selected)",
                           arg=sorted(COUNTIES), timeout=15_000)
