from dashboard.callbacks.map import with_version


def test_with_version_keeps_filters():
    assert with_version("/api/map/incidents.json?category=safety.fire&severity=3&v=4", 9) == \
        "/api/map/incidents.json?category=safety.fire&severity=3&v=9"
    assert with_version("/api/map/rings.json", 2) == "/api/map/rings.json?v=2"
    assert with_version(None, 2) is None
