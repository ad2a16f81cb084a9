"""Issue 5 "Checked by": with the demo year, the district figures of calendar 2019 through /api/v1/kpis (the
numbers the cards show) and through the cards' own formatting. Shares the session's full demo database."""
from __future__ import annotations

import pytest

from dashboard.ui.cards import fmt
from tests.conftest import build_full_demo, full_demo_dir
from tests.conftest import reading_client


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    from dashboard import create_app
    from dashboard.settings import Settings

    url = build_full_demo(tmp_path_factory)
    base = full_demo_dir(tmp_path_factory)
    settings = Settings(instance_dir=base / "instance", database_url=url, tile_url="",
                        demo_live=False, cache_url=f"file://{base / 'cache'}", api_tokens=("test-token",))
    return reading_client(create_app(settings).server)


def test_district_2019_figures(client):
    r = client.get("/api/v1/kpis?level=district&from=2019-01-01&to=2019-12-31")
    assert r.status_code == 200
    k = r.get_json()["kpis"]
    assert abs(k["detection_rate"] - 0.3986) <= 0.003
    assert abs(k["problems_found"] - 71_948) <= 0.01 * 71_948
    assert k["onsite_handling_rate"] >= 0.42
    assert k["resolution_rate"] >= 0.95
    assert abs(k["inspection_coverage"] - 0.65) <= 0.01
    assert fmt("detection_rate", k["detection_rate"]) == "39.86%"
    assert fmt("problems_found", k["problems_found"]) == "71,948"
    # period=2019 is the same period
    assert client.get("/api/v1/kpis?level=district&period=2019").get_json()["kpis"] == k


def test_children_sum_to_the_district(client):
    body = client.get("/api/v1/kpis?level=district&period=2019&children=1").get_json()
    towns = body["children"]["units"]
    assert len(towns) == 17
    for key in ("new_incidents", "problems_found", "units_inspected", "registered_units"):
        assert sum(u["kpis"][key] for u in towns) == body["kpis"][key]
