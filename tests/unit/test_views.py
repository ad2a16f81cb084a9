"""metrics.views cuts equal the KPI functions on the same rows; cards format "—" for zero denominators; the
view state round-trips through the URL; map / bar clicks drill where they should."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from dashboard.metrics import kpis, periods, views
from dashboard.callbacks.drill import next_state
from dashboard.services import drill
from dashboard.ui import cards


@pytest.fixture(scope="module")
def gd():
    from dashboard.geodata import load_geodata
    from dashboard.settings import Settings

    return load_geodata(Settings().geodata_dir)


@pytest.fixture(scope="module")
def h(gd):
    return views.hierarchy(gd)


def _incidents(h, n=400, seed=1):
    rng = np.random.default_rng(seed)
    grids = h.grids.sample(n=40, random_state=seed)
    g = grids.iloc[rng.integers(0, len(grids), n)]
    rep = pd.Timestamp("2019-03-01", tz="UTC") + pd.to_timedelta(rng.integers(0, 60 * 24 * 3600, n), unit="s")
    hours = rng.exponential(40, n)
    closed = rep + pd.to_timedelta(hours, unit="h")
    is_closed = rng.random(n) < 0.8
    cats = np.array(["safety.fire", "dispute.civil", "city.appearance", "safety.hazchem"])[rng.integers(0, 4, n)]
    levels = np.array(["onsite", "town", "district"])[rng.integers(0, 3, n)]
    depts = np.where(levels == "district", np.array(["police", "emergency", "housing"])[rng.integers(0, 3, n)], None)
    return pd.DataFrame({
        "id": np.arange(n), "category": cats, "level": levels, "department": depts,
        "status": np.where(is_closed, "closed", "in_progress"),
        "outcome": np.where(is_closed & (cats == "dispute.civil"), "resolved", None),
        "longstanding": False, "grid_code": g["code"].to_numpy(), "zone_code": g["zone_code"].to_numpy(),
        "town_code": g["town_code"].to_numpy(), "reported_at": rep,
        "closed_at": pd.Series(closed).where(is_closed, pd.NaT).to_numpy(),
        "due_at": rep + pd.Timedelta(hours=48),
    })


def _inspections(h, n=300, seed=2):
    rng = np.random.default_rng(seed)
    g = h.grids.iloc[rng.integers(0, len(h.grids), n)]
    return pd.DataFrame({"unit_id": [f"{c}-U{int(u):04d}" for c, u in zip(g["code"], rng.integers(0, 5, n))],
                         "grid_code": g["code"].to_numpy(), "zone_code": g["zone_code"].to_numpy(),
                         "town_code": g["town_code"].to_numpy(),
                         "inspected_on": pd.to_datetime("2019-03-01") + pd.to_timedelta(rng.integers(0, 60, n), "D"),
                         "problems_found": rng.integers(0, 3, n)})


def _store(tmp_path, inc, ins):
    """A SQLite store holding the rows, its aggregates kept by the store's bulk writes."""
    from dashboard.store import init_db, make_engine, session_factory
    from dashboard.store import incidents as repo

    engine = make_engine(f"sqlite:///{tmp_path}/views.sqlite3")
    init_db(engine)
    with session_factory(engine)() as s:
        if len(inc):
            rows = inc.assign(id=inc["id"] + 1, lon=120.1, lat=30.85).to_dict("records")
            for r in rows:
                for c in ("reported_at", "closed_at", "due_at"):
                    r[c] = None if pd.isna(r[c]) else pd.Timestamp(r[c]).to_pydatetime()
                r["department"] = r["department"] if isinstance(r["department"], str) else None
                r["outcome"] = r["outcome"] if isinstance(r["outcome"], str) else None
            repo.bulk_insert_incidents(s, rows)
        if len(ins):
            repo.bulk_insert_inspections(s, ins.assign(inspector="x", inspected_on=ins["inspected_on"].dt.date)
                                         .to_dict("records"))
    return engine


@pytest.fixture(scope="module")
def fixture(h, gd, tmp_path_factory):
    p = periods.resolve("custom", "2019-03-01", "2019-04-15")
    inc, ins = _incidents(h), _inspections(h)
    engine = _store(tmp_path_factory.mktemp("views"), inc, ins)
    yield p, inc, ins, views.kpi_bundle(engine, gd, None, p, now=pd.Timestamp("2024-01-01", tz="UTC")), engine
    engine.dispose()


def _unit_rows(df, level, code):
    return df if level == "district" else df[df[f"{level}_code"] == code]


def test_unit_cuts_equal_kpi_functions(h, fixture):
    p, inc, ins, b, engine = fixture
    zone = inc["zone_code"].value_counts().index[0]
    town = h.parent[("zone", zone)]
    for level, code in (("district", None), ("town", town), ("zone", zone)):
        sub_i, sub_s = _unit_rows(inc, level, code), _unit_rows(ins, level, code)
        reg = h.grids if level == "district" else h.grids[h.grids[f"{level}_code"] == code]
        assert views.unit_kpis(b, level, code) == pytest.approx(kpis.all_kpis(sub_i, sub_s, reg, p.start, p.end))
        exp = kpis.category_breakdown(sub_i, p.start, p.end).sort_values(["count", "category"]).reset_index(drop=True)
        got = views.category_counts(engine, p, level, code).sort_values(["count", "category"]).reset_index(drop=True)
        assert got["category"].tolist() == exp["category"].tolist() and got["count"].tolist() == exp["count"].tolist()
        pd.testing.assert_frame_equal(views.level_counts(b, h, level, code), kpis.level_share(sub_i, p.start, p.end),
                                      check_dtype=False)
        for freq in ("D", "W", "M"):
            exp_t = kpis.trend(sub_i, p.start, p.end, freq)
            got_t = views.trend_series(engine, p, level, code, freq)
            assert got_t["new"].sum() == exp_t["new"].sum() and got_t["closed"].sum() == exp_t["closed"].sum()
            assert [x.date() for x in got_t["period"]] == [x.date() for x in exp_t["period"]]
        dept = kpis.department_workload(sub_i, p.start, p.end, pd.Timestamp(b["at"]))
        got_d = views.department_table(b, level, code, p, engine)
        assert [r["department"] for r in got_d] == dept["department"].tolist()
        assert [r["assigned"] for r in got_d] == dept["assigned"].tolist()


def test_a_grids_row_found_by_position_is_its_row_by_code(h):
    """``Hierarchy.grid_row`` (a grid's profile: found by position) gives what indexing the grids by code gives, for
    every grid, and refuses an unknown code."""
    by_code = h.grids.set_index("code")
    for code in h.grids["code"]:
        want, got = by_code.loc[code].to_dict(), h.grid_row(code)
        assert got.keys() == want.keys() and all(got[k] == want[k] or (got[k] != got[k] and want[k] != want[k])
                                                 for k in want), code
    with pytest.raises(KeyError):
        h.grid_row("no-such-grid")
    # and the grids under a unit, by position, are those its column names, in the same order
    for level in ("town", "zone", "grid"):
        for code in h.codes(level)[::7]:
            assert h.unit_grids(level, code).equals(h.grids[h.grids[views.UNIT_COLUMN[level]] == code]), code
    assert h.unit_grids("district", None).equals(h.grids) and h.unit_grids("zone", "no-such-zone").empty


def test_children_and_average(h, fixture):
    p, inc, ins, b, _engine = fixture
    child, rows = views.children_rows(b, h, "district", None)
    assert child == "town" and len(rows) == 17
    assert sum(r["new_incidents"] for _, r in rows) == b["kpis"]["district"]["330502"]["new_incidents"]
    assert views.level_average(b, "town", "detection_rate") == b["kpis"]["district"]["330502"]["detection_rate"]
    grid = inc["grid_code"].iloc[0]
    child, rows = views.children_rows(b, h, "grid", grid)  # a grid: its sibling grids
    assert grid in [c for c, _ in rows]
    rank, n = views.rank_in_district(b, "grid", grid, "new_incidents")
    assert rank is not None and 1 <= rank <= n


def test_empty_period_never_nan(h, gd, tmp_path):
    p = periods.resolve("custom", "2030-01-01", "2030-01-31")
    engine = _store(tmp_path, _incidents(h).iloc[0:0], _inspections(h).iloc[0:0])
    b = views.kpi_bundle(engine, gd, None, p, now=pd.Timestamp("2030-06-01", tz="UTC"))
    k = views.unit_kpis(b, "district", None)
    for key, v in k.items():
        assert v is None or (isinstance(v, (int, float)) and math.isfinite(v)), key
    assert k["detection_rate"] is None and k["onsite_handling_rate"] is None
    texts = [cards.fmt(x, k[x]) for x in views.CARD_KPIS]
    assert "—" in texts and not any("nan" in s.lower() for s in texts)
    assert views.category_counts(engine, p, "district", None).empty
    assert views.trend_series(engine, p, "district", None).empty
    assert views.department_table(b, "district", None, p, engine) == []
    engine.dispose()


@pytest.mark.parametrize("kpi,value,text", [
    ("detection_rate", 0.398590, "39.86%"), ("problems_found", 71948, "71,948"), ("detection_rate", None, "—"),
    ("median_hours_to_close", 18.34, "18.3 小时"), ("median_hours_to_close", float("nan"), "—"),
])
def test_fmt(kpi, value, text):
    assert cards.fmt(kpi, value) == text


def test_change():
    # 同比 is the relative change for every measure, rates too (0.30 → 0.40 is +33.33 %, i.e. +10 points)
    assert cards.change("detection_rate", 0.40, 0.30) == ("+33.33%", "wx-good")
    assert cards.points_text("detection_rate", 0.40, 0.30) == "+10.00个百分点"
    assert cards.points_text("new_incidents", 4, 3) is None
    assert cards.change("overdue_incidents", 120, 100) == ("+20.00%", "wx-bad")
    assert cards.change("dispute_median_hours", 6.0, 20.0) == ("-70.00%", "wx-good")  # lower is better
    assert cards.change("new_incidents", 100, 100) == ("+0.00%", "wx-flat")
    assert cards.change("new_incidents", 5, 0)[0] == "—"
    assert cards.change("detection_rate", 0.4, None)[0] == "—"
    assert "34.33%" in cards.change_title("detection_rate", 0.3986, 0.3433) and "个百分点" in cards.change_title(
        "detection_rate", 0.3986, 0.3433)
    assert views.comparable({"units_inspected": 0, "inspection_coverage": 0.0})["inspection_coverage"] is None


def test_state_url_round_trip(h):
    s = drill.state_from_params({"level": "zone", "code": "330502-ZL-03", "period": "2019"}, h)
    assert s == {"level": "zone", "code": "330502-ZL-03", "period": "2019", "from": None, "to": None}
    q = drill.query_for(s, "en")
    assert q == "?level=zone&code=330502-ZL-03&period=2019&lang=en"
    assert drill.state_from_query(q, h) == s
    assert drill.state_from_params({"level": "zone", "code": "bogus", "period": "nope"}, h)["level"] == "district"
    c = drill.state_from_params({"period": "custom", "from": "2019-04-01", "to": "2019-04-30"}, h)
    assert (c["from"], c["to"]) == ("2019-04-01", "2019-04-30")
    assert drill.state_from_params({"period": "custom", "from": "2019-05-01", "to": "2019-04-30"}, h)["period"] == "30d"
    assert drill.query_for({"level": "district", "code": None, "period": "30d"}, "zh") == ""


def test_clicks_drill(h):
    base = {"level": "district", "code": None, "period": "2019", "from": None, "to": None}
    grid = "330502-ZL-03-01" if h.exists("grid", "330502-ZL-03-01") else h.kids("zone", "330502-ZL-03")[0]
    zone = h.parent[("grid", grid)]
    s1 = next_state("geo-grids", {"properties": {"code": grid}}, base, h)
    assert (s1["level"], s1["code"]) == ("zone", zone)  # a grid click outside the current zone: its zone
    s2 = next_state("geo-grids", {"properties": {"code": grid}}, s1, h)
    assert (s2["level"], s2["code"]) == ("grid", grid)  # inside the current zone: the grid itself
    s3 = next_state("geo-zones", {"type": "Feature", "properties": {"code": zone}}, base, h)
    assert (s3["level"], s3["code"]) == ("zone", zone)
    s4 = next_state("chart-ranking", {"points": [{"customdata": ["330502-ZL", "town"]}]}, base, h)
    assert (s4["level"], s4["code"]) == ("town", "330502-ZL")
    assert next_state("chart-ranking", {"points": [{"customdata": ["x", "town"]}]}, base, h) is None
    s5 = next_state("period-select", "7d", s3, h)
    assert s5["period"] == "7d" and s5["code"] == zone
    s6 = next_state("period-select", "custom", s3, h, "2019-04-01", "2019-04-10")
    assert (s6["from"], s6["to"]) == ("2019-04-01", "2019-04-10")


def test_pack_many_packs_each_slice_like_pack():
    """The rebuild's vectorised packing of histograms gives exactly :func:`pack` of every slice."""
    from dashboard.store.aggregates import pack, pack_many, unpack

    rng = np.random.default_rng(5)
    k = rng.integers(1, 9, 300)
    ends = np.cumsum(k)
    starts = ends - k
    bins, n, hsum = rng.integers(0, 30_000, ends[-1]), rng.integers(-3, 50, ends[-1]), rng.random(ends[-1]) * 1e3
    got = pack_many(starts, ends, bins, n, hsum)
    assert got == [pack(bins[a:b], n[a:b], hsum[a:b]) for a, b in zip(starts, ends)]
    b0, n0, h0 = unpack(got[7])
    assert list(b0) == list(bins[starts[7]:ends[7]]) and list(n0) == list(n[starts[7]:ends[7]])
    assert pack_many(np.array([], int), np.array([], int), bins, n, hsum) == []


def test_reference_year_is_the_last_whole_year_and_the_briefing_table(h, gd, tmp_path):
    """The briefing's year table compares the latest year before the current one with data in all 12 months."""
    from dashboard.ui import briefing

    inc = _incidents(h, n=500, seed=4)
    day = pd.Timestamp("2022-01-01 02:00", tz="UTC") + pd.to_timedelta(np.arange(500) % 380, unit="D")
    shift = day - inc["reported_at"]
    inc = inc.assign(reported_at=day, closed_at=inc["closed_at"] + shift.to_numpy(), due_at=inc["due_at"] + shift)
    engine = _store(tmp_path, inc, _inspections(h).iloc[0:0])  # 2022 whole, 2023 from January to mid-January
    try:
        assert views.reference_year(engine, now=pd.Timestamp("2024-05-01", tz="UTC")) == 2022
        assert views.reference_year(engine, now=pd.Timestamp("2022-12-20", tz="UTC")) is None  # 2022 is current
        year = views.year_on_year(engine, gd, None, now=pd.Timestamp("2024-05-01", tz="UTC"))
        assert (year["year"], year["previous"]) == (2022, 2021)
        rows = {r["kpi"]: r for r in year["rows"]}
        assert rows["new_incidents"]["value"] == int((inc["reported_at"] < pd.Timestamp("2022-12-31 16:00", tz="UTC")).sum())
        assert rows["new_incidents"]["before"] is None and rows["new_incidents"]["change"] is None  # 2021: no data
        text = briefing.year_rows(year, "zh")
        assert text[0]["change"] == "—" and text[0]["before"] == "—"
    finally:
        engine.dispose()
    none = briefing.year_section(None, "zh")
    assert "暂无完整年度数据" in str(none)
    made = briefing.year_rows({"year": 2019, "previous": 2018, "rows": [
        {"kpi": "detection_rate", "value": 0.3986, "before": 0.3433, **kpis.changes(
            {"detection_rate": 0.3986}, {"detection_rate": 0.3433})["detection_rate"]}]}, "zh")
    assert made[0]["change"] == "+16.11% (+5.53个百分点)" and made[0]["class"] == "wx-good"


def test_hist_sum_in_groups_of_keys_equals_one_sum():
    """Histograms summed a group of whole keys at a time (a long period's grids: bounded memory) give what one sum
    of them all gives, and what a sum made here bin by bin gives — keys in order of first appearance, with rows
    subtracted (signs) and keys whose bins all cancel."""
    from collections import defaultdict

    from dashboard.store.aggregates import hist_sum, pack

    rng = np.random.default_rng(11)
    keys, datas, signs = [], [], []
    for _ in range(400):
        key = ("grid", f"g{int(rng.integers(0, 60)):02d}", None)
        k = int(rng.integers(1, 40))
        bins = np.sort(rng.choice(20_000 if rng.random() < 0.5 else 300, size=k, replace=False))
        keys.append(key)
        datas.append(pack(bins, rng.integers(1, 20, k), rng.random(k) * 100))
        signs.append(-1 if rng.random() < 0.1 else 1)
    keys.append(("grid", "cancelled", None))  # a key whose only histogram is added and subtracted
    datas.append(pack(np.array([5]), np.array([3]), np.array([1.5])))
    signs.append(1)
    keys.append(("grid", "cancelled", None))
    datas.append(datas[-1])
    signs.append(-1)
    whole = hist_sum(keys, datas, signs, chunk_bytes=1 << 40)
    assert sum(map(len, datas)) > 20 * 1500  # several groups below
    for limit in (1500, 7_000, 50_000):
        part = hist_sum(keys, datas, signs, chunk_bytes=limit)
        assert part.keys == whole.keys == list(dict.fromkeys(keys))
        for a in ("key", "bins", "n"):
            assert np.array_equal(getattr(part, a), getattr(whole, a)), (limit, a)
        assert np.allclose(part.hsum, whole.hsum, rtol=1e-12, atol=1e-9)
    want = defaultdict(lambda: [0, 0.0])  # (key, bin) -> [n, sum], from the unpacked rows one by one
    from dashboard.store.aggregates import unpack

    for key, data, sign in zip(keys, datas, signs):
        for b, n, h in zip(*unpack(data)):
            want[(key, int(b))][0] += sign * int(n)
            want[(key, int(b))][1] += sign * float(h)
    got = {(whole.keys[k], int(b)): (int(n), float(h)) for k, b, n, h in zip(whole.key, whole.bins, whole.n, whole.hsum)}
    assert set(got) == {kb for kb, (n, _) in want.items() if n > 0}
    assert all(got[kb][0] == want[kb][0] and abs(got[kb][1] - want[kb][1]) < 1e-6 for kb in got)
