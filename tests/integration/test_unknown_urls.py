"""Unknown URLs on the full app: under the API prefixes a 404 JSON error (Dash would otherwise answer any path
with its page, status 200), a wrong method on a real endpoint a 405 JSON error whose ``Allow`` names the URL's
methods (also ``OPTIONS``), an unknown page our 404 view with status 404."""
from __future__ import annotations

import pytest

from tests.conftest import reading_client, signed_in_client


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    from dashboard import create_app
    from dashboard.settings import Settings

    inst = tmp_path_factory.mktemp("unknown-urls")
    app = create_app(Settings(instance_dir=inst, tile_url="", demo_live=False, cache_url="null",
                              api_tokens=("test-token",)))
    return reading_client(app.server)


@pytest.mark.parametrize("method,path", [
    ("get", "/api/v1/nope"), ("get", "/api/v1/incidents/abc"), ("get", "/api/v1/alerts/abc"),
    ("get", "/api/map/nope.json"), ("get", "/api/nope"), ("post", "/api/v1/nope"), ("delete", "/api/v1/nope/1"),
])
def test_unknown_api_url_is_404_json(client, method, path):
    r = getattr(client, method)(path, json={})
    assert r.status_code == 404 and r.is_json
    assert r.get_json()["error"]["code"] == "not_found"


def test_unknown_open311_url_is_404_in_open311_form(client):
    r = client.get("/open311/v2/nope.json")
    assert r.status_code == 404 and r.get_json()[0]["code"] == 404


@pytest.mark.parametrize("method,path,allow", [
    ("delete", "/api/v1/incidents/1", "GET, HEAD, OPTIONS"), ("post", "/api/geo/grids.json", "GET, HEAD, OPTIONS"),
    ("put", "/api/map/incidents.json", "GET, HEAD, OPTIONS"), ("trace", "/api/v1/catalogue", "GET, HEAD, OPTIONS"),
    ("patch", "/api/v1/incidents", "GET, HEAD, POST, OPTIONS"),
    # only POST has these URLs: Dash's page takes GET of any path, but a data path is no page
    ("get", "/api/v1/incidents/batch", "POST, OPTIONS"), ("get", "/api/v1/incidents/7/transitions", "POST, OPTIONS"),
    ("delete", "/api/v1/alerts/3/ack", "POST, OPTIONS"),
])
def test_wrong_method_on_a_real_endpoint_is_405_json_naming_the_methods(client, method, path, allow):
    r = client.open(path, method=method.upper(), json={})
    assert r.status_code == 405 and r.get_json()["error"]["code"] == "method_not_allowed"
    assert r.headers["Allow"] == allow  # RFC 9110: a 405 says which methods the resource has


def test_open311_405_names_the_methods_in_its_own_error_form(client):
    r = client.delete("/open311/v2/requests.json")
    assert r.status_code == 405 and r.get_json()[0]["code"] == 405
    assert r.headers["Allow"] == "GET, HEAD, POST, OPTIONS"
    assert client.put("/open311/v2/services/101.json").headers["Allow"] == "GET, HEAD, OPTIONS"


@pytest.mark.parametrize("path,allow", [("/api/v1/incidents", "GET, HEAD, POST, OPTIONS"),
                                        ("/api/v1/incidents/batch", "POST, OPTIONS"),
                                        ("/api/v1/incidents/5", "GET, HEAD, OPTIONS"),
                                        ("/open311/v2/requests.json", "GET, HEAD, POST, OPTIONS")])
def test_options_lists_the_methods_of_the_url_not_the_page(client, path, allow):
    r = client.options(path)
    assert r.status_code == 200 and r.headers["Allow"] == allow
    assert client.options("/api/v1/nope").status_code == 404


def test_unknown_page_is_404_known_pages_are_not(client):
    anon = client.application.test_client()
    assert anon.get("/no-such-page").status_code == 404
    assert anon.get("/").status_code == 302 and anon.get("/login").status_code == 200  # private by default
    client = signed_in_client(client.application, "leader")
    assert client.get("/").status_code == 200 and client.get("/briefing").status_code == 200
    assert client.get("/login").status_code == 200
    assert client.get("/_dash-layout").status_code == 200
    # the page's own files are served as before (they too match rules with a path part)
    assert client.get("/assets/dashboard.css").status_code == 200
    index = client.get("/").get_data(as_text=True)
    import re

    scripts = re.findall(r'src="(/_dash-component-suites/[^"]+)"', index)
    assert scripts and all(client.get(src).status_code == 200 for src in scripts)
