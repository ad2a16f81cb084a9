"""Every KPI of dashboard.metrics.kpis against hand-computed fixtures, incl. empty periods and zero denominators."""
from __future__ import annotations

import math

import pandas as pd
import pytest

from dashboard.metrics import kpis as K

T = pd.Timestamp
START, END = T("2019-03-01"), T("2019-04-01")  # naive = UTC


def _inc(rows):
    cols = ["id", "category", "level", "status", "reported_at", "closed_at", "due_at", "outcome", "longstanding",
            "department", "town_code", "zone_code", "grid_code"]
    df = pd.DataFrame(rows, columns=cols)
    for c in ("reported_at", "closed_at", "due_at"):
        df[c] = pd.to_datetime(df[c])
    return df


# id, category, level, status, reported, closed, due, outcome, longstanding, department, town, zone, grid
INC = _inc([
    # 1: onsite, closed in March after 2 h, in time
    (1, "safety.fire", "onsite", "closed", "2019-03-02 08:00", "2019-03-02 10:00", "2019-03-04 08:00", None, False,
     None, "A", "A-1", "A-1-1"),
    # 2: town, closed in March after 10 h, late (due 8 h)
    (2, "city.sanitation", "town", "closed", "2019-03-05 08:00", "2019-03-05 18:00", "2019-03-05 16:00", None, False,
     None, "A", "A-1", "A-1-2"),
    # 3: district, still open, due passed before END -> overdue and open
    (3, "safety.hazchem", "district", "assigned", "2019-03-10 08:00", None, "2019-03-11 08:00", None, False,
     "emergency", "A", "A-2", "A-2-1"),
    # 4: dispute onsite resolved, closed in March after 4 h
    (4, "dispute.civil", "onsite", "closed", "2019-03-20 08:00", "2019-03-20 12:00", "2019-03-23 08:00", "resolved",
     False, None, "B", "B-1", "B-1-1"),
    # 5: dispute district unresolved, closed in March after 30 h
    (5, "dispute.labour", "district", "closed", "2019-03-25 08:00", "2019-03-26 14:00", "2019-03-28 08:00",
     "unresolved", False, "justice", "B", "B-1", "B-1-1"),
    # 6: reported in Feb, closed in March after 720 h (30 days) late, long-standing
    (6, "construction.illegal", "town", "closed", "2019-02-10 00:00", "2019-03-12 00:00", "2019-02-17 00:00", None,
     True, None, "B", "B-1", "B-1-2"),
    # 7: reported in March, closed in April (not resolved by END), dispute resolved (closed outside period)
    (7, "dispute.civil", "town", "closed", "2019-03-31 20:00", "2019-04-02 20:00", "2019-04-03 20:00", "resolved",
     False, None, "B", "B-2", "B-2-1"),
    # 8: reported in April (outside), open
    (8, "order.public", "onsite", "reported", "2019-04-05 08:00", None, "2019-04-06 08:00", None, False, None,
     "A", "A-1", "A-1-1"),
])

INSP = pd.DataFrame(
    [
        # unit, day, problems, town, zone, grid
        ("A-1-1-U1", "2019-03-01", 0, "A", "A-1", "A-1-1"),
        ("A-1-1-U1", "2019-03-15", 2, "A", "A-1", "A-1-1"),
        ("A-1-1-U2", "2019-03-15", 0, "A", "A-1", "A-1-1"),
        ("A-1-2-U1", "2019-03-31", 3, "A", "A-1", "A-1-2"),
        ("B-1-1-U1", "2019-03-02", 1, "B", "B-1", "B-1-1"),
        ("B-1-1-U1", "2019-04-01", 5, "B", "B-1", "B-1-1"),  # outside
        ("B-1-1-U9", "2019-02-28", 4, "B", "B-1", "B-1-1"),  # outside
    ],
    columns=["unit_id", "inspected_on", "problems_found", "town_code", "zone_code", "grid_code"],
)
INSP["inspected_on"] = pd.to_datetime(INSP["inspected_on"]).dt.date

GRIDS = pd.DataFrame(
    [("A-1-1", "A-1", "A", 4), ("A-1-2", "A-1", "A", 2), ("A-2-1", "A-2", "A", 2), ("B-1-1", "B-1", "B", 2),
     ("B-1-2", "B-1", "B", 0), ("B-2-1", "B-2", "B", 0)],
    columns=["code", "zone_code", "town_code", "registered_units"],
)

EMPTY_INC = INC.iloc[0:0]
EMPTY_INSP = INSP.iloc[0:0]


def test_counts():
    assert K.new_incidents(INC, START, END) == 6  # 1,2,3,4,5,7
    assert K.open_incidents(INC, END) == 2  # 3 open; 7 still open at END (closed 04-02)
    assert K.open_incidents(INC, T("2019-03-03")) == 1  # only 6 (reported Feb, closed 03-12)
    assert K.open_incidents(INC, T("2019-05-01")) == 2  # 3 and 8
    # overdue among reported in March: 2 (closed late), 3 (open past due at END); 5 closed before due
    assert K.overdue_incidents(INC, START, END) == 2
    # at a moment before 3's due: only 2
    assert K.overdue_incidents(INC, START, END, at=T("2019-03-10 12:00")) == 1


def test_rates():
    assert K.onsite_handling_rate(INC, START, END) == pytest.approx(2 / 6)  # 1, 4
    assert K.resolution_rate(INC, START, END) == pytest.approx(4 / 6)  # 1,2,4,5 closed by END
    # closed in March: 1,2,4,5,6 ; not district: 1,2,4,6
    assert K.in_zone_resolution_rate(INC, START, END) == pytest.approx(4 / 5)
    assert K.median_hours_to_close(INC, START, END) == pytest.approx(10.0)  # 2,10,4,30,720
    assert K.disputes_closed(INC, START, END) == 2
    assert K.disputes_resolved(INC, START, END) == 1
    assert K.dispute_success_rate(INC, START, END) == pytest.approx(0.5)
    assert K.dispute_in_zone_rate(INC, START, END) == pytest.approx(0.5)
    assert K.longstanding_solved(INC, START, END) == 1
    # resolved disputes closed in March: only 4 (4 h); 5 closed unresolved, 7 closed in April
    assert K.dispute_median_hours(INC, START, END) == pytest.approx(4.0)
    assert K.dispute_median_hours(INC, START, T("2019-05-01")) == pytest.approx((4.0 + 48.0) / 2)  # + 7 (48 h)


def test_inspection_kpis():
    assert K.units_inspected(INSP, START, END) == 4  # A-1-1-U1, A-1-1-U2, A-1-2-U1, B-1-1-U1
    assert K.units_with_problems(INSP, START, END) == 3
    assert K.detection_rate(INSP, START, END) == pytest.approx(3 / 4)
    assert K.problems_found(INSP, START, END) == 6
    assert K.inspection_coverage(INSP, GRIDS, START, END) == pytest.approx(4 / 10)
    assert K.inspection_coverage(INSP, 8, START, END) == pytest.approx(0.5)


def test_local_calendar_bounds():
    start, end = K.period("2019-03-01", "2019-03-31")  # Asia/Shanghai days
    assert K.to_utc(start) == T("2019-02-28 16:00") and K.to_utc(end) == T("2019-03-31 16:00")
    # incident 7 (reported 03-31 20:00 UTC = 04-01 04:00 local) falls out of local March
    assert K.new_incidents(INC, start, end) == 5
    assert K.units_inspected(INSP, start, end) == 4  # inspection days are local dates
    s19, e19 = K.calendar_year(2019)
    assert s19.tz is not None and (e19 - s19).days == 365


@pytest.mark.parametrize("fn", [K.onsite_handling_rate, K.resolution_rate, K.in_zone_resolution_rate,
                                K.median_hours_to_close, K.dispute_success_rate, K.dispute_in_zone_rate,
                                K.dispute_median_hours])
def test_zero_denominators_are_none(fn):
    assert fn(EMPTY_INC, START, END) is None
    # a period with nothing in it
    assert fn(INC, T("2030-01-01"), T("2030-02-01")) is None


def test_empty_inspections_and_units():
    assert K.units_inspected(EMPTY_INSP, START, END) == 0
    assert K.problems_found(EMPTY_INSP, START, END) == 0
    assert K.detection_rate(EMPTY_INSP, START, END) is None
    assert K.inspection_coverage(INSP, 0, START, END) is None
    assert K.inspection_coverage(INSP, GRIDS.iloc[0:0], START, END) is None
    assert K.detection_rate(INSP, T("2030-01-01"), T("2030-02-01")) is None
    assert K.new_incidents(EMPTY_INC, START, END) == 0
    assert K.open_incidents(EMPTY_INC, END) == 0


def _no_nan(d: dict):
    for k, v in d.items():
        assert v is None or (isinstance(v, (int, float)) and math.isfinite(v)), (k, v)


def test_all_kpis_matches_single_functions_and_has_no_nan():
    d = K.all_kpis(INC, INSP, GRIDS, START, END)
    assert set(d) == set(K.KPIS)
    _no_nan(d)
    assert d["new_incidents"] == 6 and d["open_incidents"] == 2 and d["overdue_incidents"] == 2
    assert d["onsite_handling_rate"] == pytest.approx(2 / 6)
    assert d["detection_rate"] == pytest.approx(0.75)
    assert d["registered_units"] == 10 and d["inspection_coverage"] == pytest.approx(0.4)
    assert d["median_hours_to_close"] == pytest.approx(10.0)
    e = K.all_kpis(EMPTY_INC, EMPTY_INSP, 0, START, END)
    _no_nan(e)
    assert e["resolution_rate"] is None and e["inspection_coverage"] is None and e["new_incidents"] == 0


def test_kpis_by_zone_equals_all_kpis_on_each_zone():
    zones = ["A-1", "A-2", "B-1", "B-2", "C-9"]  # C-9 has no data at all
    table = K.kpis_by(INC, INSP, GRIDS, "zone", START, END, codes=zones)
    assert list(table.index) == zones and list(table.columns) == list(K.KPIS)
    for z in zones:
        expect = K.all_kpis(INC[INC.zone_code == z], INSP[INSP.zone_code == z], GRIDS[GRIDS.zone_code == z],
                            START, END)
        got = table.loc[z].to_dict()
        for k, v in expect.items():
            if v is None:
                assert got[k] is None, (z, k)
            else:
                assert got[k] == pytest.approx(v), (z, k)
    assert table.loc["C-9", "onsite_handling_rate"] is None
    assert table.loc["A-1", "inspection_coverage"] == pytest.approx(3 / 6)


def test_kpis_by_grid_and_town():
    g = K.kpis_by(INC, INSP, GRIDS, "grid", START, END)
    assert g.loc["A-1-1", "registered_units"] == 4 and g.loc["A-1-1", "units_inspected"] == 2
    t = K.kpis_by(INC, INSP, GRIDS, "town", START, END)
    assert t.loc["A", "new_incidents"] == 3 and t.loc["B", "new_incidents"] == 3
    assert t.loc["B", "dispute_success_rate"] == pytest.approx(0.5)
    empty = K.kpis_by(EMPTY_INC, EMPTY_INSP, GRIDS, "town", START, END)
    assert empty.loc["A", "resolution_rate"] is None and empty.loc["A", "registered_units"] == 8


def test_level_share_department_category_trend():
    ls = K.level_share(INC, START, END).set_index("level")
    assert ls.loc["onsite", "count"] == 2 and ls.loc["town", "count"] == 2 and ls.loc["district", "count"] == 2
    assert ls["share"].sum() == pytest.approx(1.0)
    assert K.level_share(EMPTY_INC, START, END)["share"].tolist() == [None, None, None]
    dw = K.department_workload(INC, START, END).set_index("department")
    assert dw.loc["emergency", "assigned"] == 1 and dw.loc["emergency", "open"] == 1
    assert dw.loc["emergency", "median_hours_to_close"] is None
    assert dw.loc["justice", "closed"] == 1 and dw.loc["justice", "median_hours_to_close"] == pytest.approx(30)
    assert K.department_workload(EMPTY_INC, START, END).empty
    cb = K.category_breakdown(INC, START, END).set_index("category")
    assert cb.loc["dispute.civil", "count"] == 2 and cb["count"].sum() == 6
    tr = K.trend(INC, START, END, "M")
    assert tr["new"].sum() == 6 and tr["closed"].sum() == 5


EVENTS = pd.DataFrame(
    [
        # incident 1: reported 0h -> onsite_handled 1h -> verified 3h -> closed 4h
        (1, 1, "2019-03-02 08:00", None, "reported"),
        (1, 2, "2019-03-02 09:00", "reported", "onsite_handled"),
        (1, 3, "2019-03-02 11:00", "onsite_handled", "verified"),
        (1, 4, "2019-03-02 12:00", "verified", "closed"),
        # incident 2: reported 0 -> routed 3h -> in_progress 5h -> handled 15h -> verified 17h -> closed 18h
        (2, 5, "2019-03-05 08:00", None, "reported"),
        (2, 6, "2019-03-05 11:00", "reported", "routed"),
        (2, 7, "2019-03-05 13:00", "routed", "in_progress"),
        (2, 8, "2019-03-05 23:00", "in_progress", "handled"),
        (2, 9, "2019-03-06 01:00", "handled", "verified"),
        (2, 10, "2019-03-06 02:00", "verified", "closed"),
        # incident 3: reported -> routed after 5h, still routed
        (3, 11, "2019-03-10 08:00", None, "reported"),
        (3, 12, "2019-03-10 13:00", "reported", "routed"),
    ],
    columns=["incident_id", "seq", "at", "from_status", "to_status"],
)
EVENTS["at"] = pd.to_datetime(EVENTS["at"])


def test_stage_times_and_funnel():
    st = K.stage_times(EVENTS).set_index("state")
    assert st.loc["reported", "stays"] == 3
    assert st.loc["reported", "median_hours"] == pytest.approx(3.0)  # 1, 3, 5
    assert st.loc["verified", "median_hours"] == pytest.approx(1.0)
    assert st.loc["in_progress", "median_hours"] == pytest.approx(10.0)
    assert "routed" in st.index and st.loc["routed", "stays"] == 1  # the open stay of #3 is not counted
    st_open = K.stage_times(EVENTS, at=T("2019-03-10 23:00"), include_open=True).set_index("state")
    assert st_open.loc["routed", "stays"] == 2
    assert st_open.loc["routed", "median_hours"] == pytest.approx((2 + 10) / 2)
    assert "closed" not in st.index
    fn = K.funnel(EVENTS).set_index("state")["incidents"]
    assert fn["reported"] == 3 and fn["routed"] == 2 and fn["closed"] == 2 and fn["escalated"] == 0
    assert K.stage_times(EVENTS.iloc[0:0]).empty
    assert K.funnel(EVENTS.iloc[0:0])["incidents"].sum() == 0


def test_tz_aware_frames_are_accepted():
    inc = INC.copy()
    for c in ("reported_at", "closed_at", "due_at"):
        inc[c] = inc[c].dt.tz_localize("UTC")
    assert K.all_kpis(inc, INSP, GRIDS, START, END) == K.all_kpis(INC, INSP, GRIDS, START, END)
    assert K.new_incidents(inc, START.tz_localize("UTC"), END.tz_localize("UTC")) == 6


def test_year_on_year_is_the_relative_change_for_every_kind():
    """同比 = (now − before) / before for counts, hours and rates alike (the seed: detection rate 39.86 %,
    "同比增长16.12%", so 2018's was 34.33 %); a rate's change in percentage points is given beside it."""
    assert K.year_on_year(0.40, 0.30) == pytest.approx(1 / 3)
    assert K.year_on_year(120, 100) == pytest.approx(0.2)
    assert K.year_on_year(6.0, 20.0) == pytest.approx(-0.7)
    assert round(K.year_on_year(23_355 / 58_594, 14_142 / 41_200) * 100, 2) == 16.12
    assert K.year_on_year(5, 0) is None and K.year_on_year(None, 3) is None and K.year_on_year(3, None) is None
    assert K.year_on_year(float("nan"), 3) is None
    assert K.points_change(0.40, 0.30) == pytest.approx(10.0) and K.points_change(0.4, None) is None
    ch = K.changes({"detection_rate": 0.40, "new_incidents": 12, "median_hours_to_close": 5.0, "bogus": 1},
                   {"detection_rate": 0.30, "new_incidents": 0, "median_hours_to_close": 10.0})
    assert set(ch) == {"detection_rate", "new_incidents", "median_hours_to_close"}
    assert ch["detection_rate"]["change"] == pytest.approx(1 / 3) and ch["detection_rate"]["points"] == pytest.approx(10)
    assert ch["new_incidents"] == {"change": None, "points": None}
    assert ch["median_hours_to_close"] == {"change": pytest.approx(-0.5), "points": None}
