"""Forged Dash requests get a 4xx refusal, never a 500 (non-negotiable 3, issue 11): every callback that
``/_dash-dependencies`` lists is replayed with forged values, anonymously and signed in as a duty officer; broken
envelopes, unknown callbacks and forged component-suites paths are refused too. The page's own requests keep
working (the browser suite goes through the same boundary)."""
from __future__ import annotations

import json

import pytest

from tests.integration.conftest import small_history_app

ORIGIN = {"Origin": "http://localhost", "Referer": "http://localhost/"}
FORGED = [None, "1 OR 1=1", {"a": {"b": {"c": {"d": 1}}}}, 2 ** 70, "x" * 5000, [1, [2, [3]]], -1, 3.5, True, "",
          {}, "../../etc/passwd", "<script>alert(1)</script>"]


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    from dashboard.auth.users import add_user

    a = small_history_app(tmp_path_factory.mktemp("guard"), cache_url="null")
    with a.server.extensions["dashboard"].sessions() as s:
        add_user(s, "duty", "duty-password", "duty_officer", display_name="值班员")
    return a


def _outputs(key: str):
    """The ``outputs`` field the renderer sends for a callback's output key (``id.prop`` or ``..a.p...b.q..``)."""
    parts = key[2:-2].split("...") if key.startswith("..") else [key]
    outs = []
    for o in parts:
        cid, prop = o.rsplit(".", 1)
        try:
            cid = json.loads(cid)
        except ValueError:
            pass
        outs.append({"id": cid, "property": prop.split("@")[0]})
    return outs if key.startswith("..") else outs[0]


def _replay(client, deps):
    statuses = {}
    for cb in deps:
        for value in FORGED:
            body = {"output": cb["output"], "outputs": _outputs(cb["output"]),
                    "inputs": [{"id": i["id"], "property": i["property"], "value": value} for i in cb["inputs"]],
                    "state": [{"id": s["id"], "property": s["property"], "value": value} for s in cb["state"]],
                    "changedPropIds": [f"{i['id']}.{i['property']}" for i in cb["inputs"][:1]]}
            r = client.post("/_dash-update-component", json=body, headers=ORIGIN)
            statuses.setdefault(r.status_code, []).append(cb["output"][:80])
            if r.status_code == 400:
                assert r.get_json()["error"]["code"] in ("callback_input_refused", "bad_callback_request")
    return statuses


@pytest.mark.parametrize("who", ["anonymous", "duty"])
def test_every_callback_refuses_forged_values_without_a_500(app, who):
    client = app.server.test_client()
    if who == "duty":
        r = client.post("/login", data={"username": "duty", "password": "duty-password", "next": "/"},
                        headers=ORIGIN)
        assert r.status_code == 303
    deps = client.get("/_dash-dependencies").get_json()
    assert len(deps) > 20
    statuses = _replay(client, deps)
    assert not [s for s in statuses if s >= 500], {s: v[:5] for s, v in statuses.items() if s >= 500}
    assert 400 in statuses  # the forged values were refused, not silently answered by every callback
    assert 200 in statuses  # and values a callback can take (None, '') still get answers


@pytest.mark.parametrize("body", [
    None, [], "text", {"output": "no-such.children", "outputs": {"id": "no-such", "property": "children"},
                       "inputs": []},
    {"output": "x"}, {"output": {"a": 1}, "inputs": []},
])
def test_broken_envelopes_are_400(app, body):
    client = app.server.test_client()
    r = client.post("/_dash-update-component", data=json.dumps(body), content_type="application/json",
                    headers=ORIGIN)
    assert r.status_code == 400
    assert r.get_json()["error"]["code"] == "bad_callback_request"


def test_known_callback_with_broken_inputs_is_400(app):
    client = app.server.test_client()
    deps = client.get("/_dash-dependencies").get_json()
    cb = next(d for d in deps if d["inputs"])
    for inputs in ({"id": "x"}, [{"id": "x"}], [[{"property": "y"}]], [1, 2], [{"id": "x", "property": "p"}] * 500):
        r = client.post("/_dash-update-component", json={"output": cb["output"], "outputs": _outputs(cb["output"]),
                                                         "inputs": inputs}, headers=ORIGIN)
        assert r.status_code == 400, inputs


@pytest.mark.parametrize("path", [
    "/_dash-component-suites/dash/..%2F..%2Fsettings.py",
    "/_dash-component-suites/os/path.py",
    "/_dash-component-suites/dash/deps/no-such-file.js",
    "/_dash-component-suites/no_such_package/x.js",
])
def test_forged_component_paths_are_404(app, path):
    r = app.server.test_client().get(path)
    assert r.status_code == 404


@pytest.mark.parametrize("path", ["/", "/login", "/wall", "/incidents", "/api/v1/incidents?limit=1", "/healthz",
                                  "/api/geo/zones.json", "/_dash-layout", "/no/such/page", "/assets/duty.js"])
def test_every_answer_carries_the_security_headers(app, path):
    from dashboard.security import HEADERS

    r = app.server.test_client().get(path)
    assert r.status_code < 500
    for name, value in HEADERS.items():
        assert r.headers.get(name) == value, (path, name)
    csp = dict(part.strip().split(" ", 1) for part in r.headers["Content-Security-Policy"].split(";"))
    assert csp["frame-ancestors"] == "'none'" and csp["object-src"] == "'none'" and csp["connect-src"] == "'self'"
    script = csp["script-src"].split()
    assert script[0] == "'self'" and all(s.startswith("'sha256-") for s in script[1:]) and len(script) > 3
    assert "'unsafe-inline'" not in script and "'unsafe-eval'" not in script


def test_a_worker_knows_the_callbacks_access_classes_from_its_start(tmp_path):
    """dashboard.warm (a gunicorn worker's start) computes the callbacks' access classes — every page's layout
    rendered once — so that a just-started server's first page does not wait for them; a page's own callback is then
    answered by what was computed there, and the classes are what the first request would have computed."""
    from dashboard.callbacks.guard import LEVELS_KEY
    from dashboard.pages import callback_levels, load_pages
    from dashboard.warm import warm

    a = small_history_app(tmp_path, cache_url="null")
    levels = a.server.extensions[LEVELS_KEY]
    assert not levels.known
    took = warm(a)
    assert "callback_levels" in took and levels.known
    deps = a.server.test_client().get("/_dash-dependencies").get_json()
    expected = callback_levels(a, load_pages(), a.server.extensions["dashboard"].settings)
    assert {cb["output"]: levels.level_of(cb["output"]) for cb in deps} == {cb["output"]: expected[cb["output"]]
                                                                           for cb in deps}
    assert warm(a)["callback_levels"] < took["callback_levels"]  # known: not computed again


def test_a_worker_reads_the_landing_views_bundles_at_its_start(tmp_path, monkeypatch):
    """dashboard.warm also reads the landing view's KPI bundles (its period's and the same days a year before) into
    the cache, as a viewer's read would: the first page's cards after a start then read no bundle from the store."""
    from dashboard.services import drill
    from dashboard.store import aggregates as agg
    from dashboard.warm import warm

    a = small_history_app(tmp_path)
    reads = []
    real = agg.bundle_rows
    monkeypatch.setattr(agg, "bundle_rows", lambda *args, **kw: reads.append(args[1]) or real(*args, **kw))
    took = warm(a)
    assert "landing_bundles" in took and len(reads) >= 2
    warmed = len(reads)
    with a.server.app_context():
        cards = drill.card_values(drill.state_from_query(""), "zh")
    assert len(reads) == warmed, "the landing view's cards read a bundle the warm-up should have read"
    assert cards["values"]["new_incidents"] > 0 and cards["previous"] is not None
