"""Issue 12 (year on year): the demo holds calendar 2018, so 2019's 同比 shows the seed's figures — the problem
detection rate up 16.12 % (relative: "同比增长16.12%", 2018's rate 34.33 %) and the time to resolve a dispute down
more than 67 % — through the app's own KPI path (``GET /api/v1/kpis``, read from the aggregates) and through the
pure KPI functions on the stored rows (the oracle). Shares the session's full demo database."""
from __future__ import annotations

import pytest

from dashboard.metrics import kpis as K
from dashboard.metrics import periods, registry, views
from dashboard.store import frames as F
from tests.conftest import build_full_demo, full_demo_dir, reading_client

pytestmark = pytest.mark.slow

SEED_DETECTION_GROWTH = 16.12  # % (seed: 问题检出率达39.86%、同比增长16.12%)
SEED_DISPUTE_TIME_DROP = 67.0  # % (seed: 化解时间同比下降67%以上)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    from dashboard import create_app
    from dashboard.settings import Settings

    url = build_full_demo(tmp_path_factory)
    base = full_demo_dir(tmp_path_factory)
    settings = Settings(instance_dir=base / "instance", database_url=url, tile_url="",
                        demo_live=False, cache_url=f"file://{base / 'cache'}", api_tokens=("test-token",))
    app = create_app(settings)
    return app, reading_client(app.server)


@pytest.fixture(scope="module")
def rows(demo):
    """The oracle's inputs: the stored rows of 2018 and 2019 (incidents any KPI of the two years depends on)."""
    app, _ = demo
    engine = app.server.extensions["dashboard"].engine
    s18, _ = K.calendar_year(2018)
    _, e19 = K.calendar_year(2019)
    return F.load_incidents(engine, s18, e19), F.load_inspections(engine, s18, e19)


def _year(rows, geo, year: int) -> dict:
    inc, ins = rows
    start, end = K.calendar_year(year)
    return K.all_kpis(inc, ins, geo.grids, start, end)


def _pct(change: float) -> float:
    return change * 100


def test_api_2019_against_2018_shows_the_seed_figures(demo):
    _, client = demo
    body = client.get("/api/v1/kpis?level=district&period=2019").get_json()
    prev = body["previous_year"]
    assert (prev["from"], prev["to"]) == ("2018-01-01", "2018-12-31")
    ch = prev["change"]
    assert round(_pct(ch["detection_rate"]["change"]), 2) == SEED_DETECTION_GROWTH
    # the relative change of the two rates the API reports, and their difference in points beside it
    now, before = body["kpis"]["detection_rate"], prev["kpis"]["detection_rate"]
    assert ch["detection_rate"]["change"] == pytest.approx(now / before - 1)
    assert ch["detection_rate"]["points"] == pytest.approx((now - before) * 100)
    assert abs(now - 0.3986) <= 0.0001 and abs(before - 0.3986 / 1.1612) <= 0.0001
    assert -_pct(ch["dispute_median_hours"]["change"]) > SEED_DISPUTE_TIME_DROP
    assert body["kpis"]["dispute_median_hours"] < prev["kpis"]["dispute_median_hours"] * (1 - 0.67)
    # every card has a change to show for 2019
    for kpi in registry.shown_in("cards"):
        assert ch[kpi]["change"] is not None, kpi


def test_oracle_on_the_rows_gives_the_same_year_on_year(demo, rows, geo):
    _, client = demo
    y19, y18 = _year(rows, geo, 2019), _year(rows, geo, 2018)
    growth = K.year_on_year(y19["detection_rate"], y18["detection_rate"])
    assert round(_pct(growth), 2) == SEED_DETECTION_GROWTH
    assert y19["units_with_problems"] == 23_355 and y19["units_inspected"] == 58_594
    drop = -_pct(K.year_on_year(y19["dispute_median_hours"], y18["dispute_median_hours"]))
    assert drop > SEED_DISPUTE_TIME_DROP
    # the aggregates the API reads agree with the rows, for both years (medians to the histogram's 0.05 h)
    body = client.get("/api/v1/kpis?level=district&period=2019").get_json()
    for got, expect in ((body["kpis"], y19), (body["previous_year"]["kpis"], y18)):
        for k, v in expect.items():
            if registry.unit(k) == "hours":
                assert got[k] == pytest.approx(v, abs=0.05), k
            else:
                assert got[k] == v, k
    assert _pct(body["previous_year"]["change"]["dispute_median_hours"]["change"]) == pytest.approx(-drop, abs=0.5)


def test_2018_is_a_smaller_slower_system_consistent_in_every_unit(demo, rows, geo):
    """Plausible: fewer units inspected and reports, less handled on the spot, slower; and the aggregates equal
    the oracle for every town and zone of 2018 (the rows and the aggregates hold the same year)."""
    app, _ = demo
    y19, y18 = _year(rows, geo, 2019), _year(rows, geo, 2018)
    assert 0.3 * y19["new_incidents"] < y18["new_incidents"] < 0.8 * y19["new_incidents"]
    assert y18["units_inspected"] < y19["units_inspected"] and y18["problems_found"] < y19["problems_found"]
    assert y18["onsite_handling_rate"] < y19["onsite_handling_rate"] - 0.05
    assert y18["median_hours_to_close"] > 1.5 * y19["median_hours_to_close"]
    assert y18["dispute_success_rate"] < y19["dispute_success_rate"] and y18["disputes_resolved"] > 0
    assert 0.85 < y18["resolution_rate"] < y19["resolution_rate"]
    assert 0 < y18["longstanding_solved"] < y19["longstanding_solved"]
    inc, ins = rows
    start, end = K.calendar_year(2018)
    svc = app.server.extensions["dashboard"]
    bundle = views.kpi_bundle(svc.engine, geo, None, periods.calendar(2018))
    for level in ("town", "zone"):
        exp = K.kpis_by(inc, ins, geo.grids, level, start, end, codes=sorted(geo.grids[f"{level}_code"].unique()))
        for code, e in exp.iterrows():
            got = bundle["kpis"][level][code]
            for k, v in e.items():
                if registry.unit(k) == "hours":
                    assert (got[k] is None) == (v is None) and (v is None or abs(got[k] - v) <= 0.05), (code, k)
                else:
                    assert got[k] == v, (code, k)


def test_periods_inside_2019_compare_with_2018_and_the_briefing_shows_the_year(demo):
    app, client = demo
    body = client.get("/api/v1/kpis?level=district&from=2019-03-01&to=2019-03-31").get_json()
    assert body["previous_year"]["from"] == "2018-03-01"
    assert all(body["previous_year"]["change"][k]["change"] is not None for k in registry.shown_in("cards"))
    # a zone's 2019 compares too
    zone = sorted(app.server.extensions["dashboard"].geodata().zones["code"])[3]
    z = client.get(f"/api/v1/kpis?level=zone&code={zone}&period=2019").get_json()["previous_year"]["change"]
    assert z["detection_rate"]["change"] is not None and z["new_incidents"]["change"] is not None
    # the briefing's year-on-year table: the last whole year (2019) against 2018, the API's figures
    svc = app.server.extensions["dashboard"]
    year = views.year_on_year(svc.engine, svc.geodata(), None)
    assert (year["year"], year["previous"]) == (2019, 2018)
    by = {r["kpi"]: r for r in year["rows"]}
    assert set(by) == set(registry.shown_in("briefing_year"))
    api = client.get("/api/v1/kpis?level=district&period=2019").get_json()["previous_year"]["change"]
    for k, r in by.items():
        assert r["change"] == pytest.approx(api[k]["change"]), k
    assert round(_pct(by["detection_rate"]["change"]), 2) == SEED_DETECTION_GROWTH
    assert -_pct(by["dispute_median_hours"]["change"]) > SEED_DISPUTE_TIME_DROP


def test_a_grids_last_year_reads_that_grids_own_medians(demo, rows, geo):
    """A grid's comparison with last year (its cards, ``previous_year`` of the API) carries the grid's own medians —
    time to close and to resolve a dispute, read for that one grid — equal to the oracle's on the stored rows."""
    _, client = demo
    inc, ins = rows
    start, end = K.calendar_year(2018)
    exp = K.kpis_by(inc, ins, geo.grids, "grid", start, end, codes=sorted(geo.grids["code"]))
    with_close = [c for c, e in exp.iterrows() if e["median_hours_to_close"] is not None]
    with_dispute = [c for c in with_close if exp.loc[c, "dispute_median_hours"] is not None]
    assert with_close and with_dispute
    for code in (with_close[0], with_close[len(with_close) // 2], with_dispute[-1]):
        got = client.get(f"/api/v1/kpis?level=grid&code={code}&period=2019").get_json()["previous_year"]["kpis"]
        for k in views.GRID_MEDIAN_KPIS:
            v = exp.loc[code, k]
            assert (got[k] is None) == (v is None) and (v is None or abs(got[k] - v) <= 0.05), (code, k, got[k], v)
