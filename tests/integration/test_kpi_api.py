"""GET /api/v1/kpis on a small generated history: the numbers equal the KPI functions on the stored frames, the
parent and the year before are given, bad input is a 4xx naming the field, empty periods give null (never NaN)."""
from __future__ import annotations

import datetime as dt
import math

import pandas as pd
import pytest

from dashboard.domain.hours import half_width

from tests.integration.conftest import small_history_app
from tests.conftest import reading_client


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    return small_history_app(tmp_path_factory.mktemp("kpi-api"), cache_url="null")


@pytest.fixture(scope="module")
def client(app):
    return reading_client(app.server)


def _no_nan(obj):
    if isinstance(obj, float):
        assert math.isfinite(obj)
    elif isinstance(obj, dict):
        for v in obj.values():
            _no_nan(v)
    elif isinstance(obj, list):
        for v in obj:
            _no_nan(v)


def test_district_equals_kpi_functions(app, client):
    from dashboard.context import Services  # noqa: F401
    from dashboard.metrics import kpis, periods
    from dashboard.store import frames

    svc = app.server.extensions["dashboard"]
    p = periods.resolve("custom", "2019-01-01", "2019-12-31")
    inc = frames.load_incidents(svc.engine, p.start, p.end)
    ins = frames.load_inspections(svc.engine, p.start, p.end)
    grids = pd.DataFrame(svc.geodata().grids.drop(columns="geometry"))
    expected = kpis.all_kpis(inc, ins, grids, p.start, p.end)
    body = client.get("/api/v1/kpis?level=district&from=2019-01-01&to=2019-12-31").get_json()
    for key in ("median_hours_to_close", "dispute_median_hours"):  # medians read from the hour histograms
        med, exp_med = body["kpis"].pop(key), expected.pop(key)
        assert abs(med - exp_med) <= half_width(exp_med) + 1e-9, key
    assert body["kpis"] == expected  # counts and rates exactly
    assert body["parent"] is None and body["previous_year"]["from"] == "2018-01-01"
    at = dt.datetime.fromisoformat(body["period"]["at"])  # the API's form: ISO 8601 UTC with Z
    assert body["period"]["at"].endswith("Z") and at.utcoffset() == dt.timedelta(0)
    _no_nan(body)


def test_zone_has_parent_and_children(app, client):
    gd = app.server.extensions["dashboard"].geodata()
    zone = gd.zones.iloc[3]
    body = client.get(f"/api/v1/kpis?level=zone&code={zone.code}&period=2019&children=1").get_json()
    assert body["name"] == zone["name"] and body["parent"]["code"] == zone.town_code
    codes = {u["code"] for u in body["children"]["units"]}
    assert codes == set(gd.grids.loc[gd.grids.zone_code == zone.code, "code"])
    assert sum(u["kpis"]["new_incidents"] for u in body["children"]["units"]) == body["kpis"]["new_incidents"]


def test_empty_period_gives_null_rates(client):
    body = client.get("/api/v1/kpis?level=district&from=2005-03-01&to=2005-03-02").get_json()
    k = body["kpis"]
    assert k["new_incidents"] == 0 and k["detection_rate"] is None and k["onsite_handling_rate"] is None
    assert k["median_hours_to_close"] is None
    _no_nan(body)


@pytest.mark.parametrize("query,status,field", [
    ("level=county", 400, "level"),
    ("level=zone", 400, "code"),
    ("level=zone&code=nope", 404, "code"),
    ("level=grid&code=330502-ZL-03", 404, "code"),
    ("from=2019-13-01", 400, "from"),
    ("from=2019-02-01&to=2019-01-01", 400, "to"),
    ("period=decade", 400, "period"),
    ("period=7d&from=2019-01-01", 400, "period"),
    ("to=2019-01-01", 400, "from"),
    ("from=now", 400, "from"),  # pandas read 'now' and 'today' as days
    ("from=2019-01-01T08:00", 400, "from"),
    ("from=2100-01-01", 400, "from"),
    ("children=maybe", 400, "children"),
])
def test_bad_input_is_a_4xx_naming_the_field(client, query, status, field):
    r = client.get(f"/api/v1/kpis?{query}")
    assert r.status_code == status
    assert r.get_json()["error"]["field"] == field


def test_briefing_pdf(client):
    r = client.get("/api/v1/briefing.pdf?lang=en")
    assert r.status_code == 200 and r.data.startswith(b"%PDF") and r.mimetype == "application/pdf"
