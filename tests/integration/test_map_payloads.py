"""Bounded map payloads (issue 11): the marker layer holds at most the newest MAX_MAP_POINTS incidents and says when
it was cut; its cache keys are built from the known filter parameters only, so junk parameters or another order
share one entry instead of filling the cache."""
from __future__ import annotations

import pytest

from tests.conftest import reading_client
from tests.integration.conftest import small_history_app


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    base = tmp_path_factory.mktemp("map-payloads")
    return small_history_app(base, cache_url=f"file://{base / 'cache'}")


def _cache_files(app) -> int:
    from pathlib import Path

    folder = Path(app.server.extensions["dashboard"].settings.cache_config["CACHE_DIR"])
    return sum(1 for f in folder.iterdir() if f.is_file())


def test_unknown_parameters_share_one_cache_entry(app):
    client = reading_client(app.server)
    first = client.get("/api/map/incidents.json?status=open&severity=3,4")
    assert first.status_code == 200
    files = _cache_files(app)
    for junk in ("&zzz=1", "&zzz=2", "&utm=a&x=y", "&v=9"):
        r = client.get("/api/map/incidents.json?severity=3,4&status=open" + junk)
        assert r.status_code == 200 and r.headers["ETag"] == first.headers["ETag"]
    assert _cache_files(app) == files
    default = client.get("/api/map/incidents.json")  # the default layer is the open incidents: the same entry
    explicit = client.get("/api/map/incidents.json?status=open")
    assert default.headers["ETag"] == explicit.headers["ETag"]


def test_the_marker_layer_is_capped_at_the_newest(app):
    from dashboard.services import maps
    from dashboard.services.filters import incident_filter
    from dashboard.store.models import utcnow

    with app.server.app_context():
        flt = incident_filter({"status": "closed"})
        whole = maps.incident_points(flt, utcnow())
        cut = maps.incident_points(flt, utcnow(), limit=25)
    ids = [f["properties"]["id"] for f in whole["features"]]
    assert whole["truncated"] is False and len(ids) > 25
    assert cut["truncated"] is True and [f["properties"]["id"] for f in cut["features"]] == sorted(ids)[-25:]
