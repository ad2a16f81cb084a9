"""Each page's HTML carries the component bundles that page draws and preloads what its first paint fetches
(dashboard/pages/head.py): dash-ag-grid only on the duty desk, dash_table and dash_extensions nowhere; the map pages' shown layers,
the duty desk's filtered incident layer; Dash's layout and dependencies everywhere."""
from __future__ import annotations

import re
from html import unescape

import pytest

from tests.conftest import signed_in_client


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    from dashboard import create_app
    from dashboard.settings import Settings

    return create_app(Settings(instance_dir=tmp_path_factory.mktemp("head"), tile_url="", demo_live=False,
                               cache_url="null", wall_tokens=("wall-head",)))


def head(client, path: str) -> tuple[list[str], list[str], str]:
    """(script srcs, preloaded hrefs, the deferred-libraries meta) of the HTML ``client`` gets for ``path``."""
    r = client.get(path)
    assert r.status_code == 200, (path, r.status_code)
    html = r.get_data(as_text=True)
    scripts = re.findall(r'<script[^>]*\bsrc="([^"]+)"', html)
    preloads = [unescape(u) for u in re.findall(r'<link rel="preload" href="([^"]+)"', html)]
    meta = re.search(r'<meta name="wx-deferred-libraries" content="([^"]*)"', html)
    return scripts, preloads, meta.group(1) if meta else None


def layer_url(tree, id_):
    """The ``url`` prop of the component ``id_`` in a serialised layout."""
    if isinstance(tree, dict):
        props = tree.get("props") or {}
        if props.get("id") == id_:
            return props.get("url")
        children = [v for v in (tree.values() if "props" not in tree else props.values())]
        tree = children
    if isinstance(tree, list):
        for child in tree:
            found = layer_url(child, id_)
            if found:
                return found
    return None


def suites(scripts, name):
    return [s for s in scripts if f"/_dash-component-suites/{name}/" in s]


def assert_no_polyfill(scripts):
    """Dash's @babel/polyfill is left out; the regenerator runtime its lazy components call is there, before the
    renderer, and served."""
    assert suites(scripts, "dash/deps") and not [s for s in scripts if "/deps/polyfill@" in s], scripts
    regenerator = [i for i, s in enumerate(scripts) if "/assets/vendor/regenerator-runtime-" in s]
    renderer = [i for i, s in enumerate(scripts) if "/dash-renderer/" in s]
    assert regenerator and renderer and regenerator[0] < renderer[0], scripts


def test_the_overview_leaves_the_grid_and_table_out_and_preloads_its_map(app):
    scripts, preloads, deferred = head(signed_in_client(app.server, "leader"), "/")
    assert suites(scripts, "dash_leaflet") and suites(scripts, "dash/dcc")
    assert not suites(scripts, "dash_ag_grid") and not suites(scripts, "dash/dash_table")
    assert not suites(scripts, "dash_extensions")  # Namespace only names functions dash-leaflet resolves
    assert not [s for s in scripts if "plotly" in s]
    assert_no_polyfill(scripts)
    assert set(deferred.split()) == {"dash_ag_grid", "dash_table", "dash_extensions"}
    for url in ("/_dash-layout", "/_dash-dependencies", "/api/geo/grids.json", "/api/geo/zones.json",
                "/api/geo/district.json", "/api/map/incidents.json",
                "/_dash-component-suites/dash_leaflet/async-GeoJSON.js"):
        assert url in preloads, url
    assert "/api/geo/towns.json" not in preloads  # hidden at start: fetched when switched on


def test_the_duty_desk_has_its_grid_and_preloads_its_filtered_layer(app):
    client = signed_in_client(app.server, "duty_officer")
    scripts, preloads, deferred = head(client, "/incidents?status=all&severity=3,4")
    assert suites(scripts, "dash_ag_grid") and not suites(scripts, "dash/dash_table")
    assert not suites(scripts, "dash_extensions")
    assert_no_polyfill(scripts)
    assert set(deferred.split()) == {"dash_table", "dash_extensions"}
    assert "/_dash-component-suites/dash_ag_grid/async-community.js" in preloads
    layer = [u for u in preloads if u.startswith("/api/map/incidents.json")]
    assert len(layer) == 1 and "severity=3" in layer[0].replace("%2C", ","), layer  # the list's filter, not all
    assert "/api/geo/grids.json" not in preloads  # the desk's map starts without grids
    # the preloaded URL is the one the layer asks for: the layout gives the layer the same url
    layout = client.get("/_dash-layout", headers={"Referer": "http://localhost/incidents?status=all&severity=3,4"})
    assert layer_url(layout.get_json(), "geo-incidents") == layer[0]
    # and the grid's bundle is served (Dash registers every library's bundles, whichever page is asked first)
    bundle = suites(scripts, "dash_ag_grid")[0]
    assert client.get(bundle).status_code == 200


def test_the_wall_and_pages_without_a_map(app):
    wall = app.server.test_client()
    assert wall.get("/wall?token=wall-head").status_code == 303  # the kiosk exchange
    scripts, preloads, _ = head(wall, "/wall")
    assert suites(scripts, "dash_leaflet") and not suites(scripts, "dash_ag_grid")
    for url in ("/api/geo/towns.json", "/api/map/rings.json", "/api/geo/grids.json", "/api/map/incidents.json"):
        assert url in preloads, url
    assert_no_polyfill(scripts)
    scripts, preloads, _ = head(app.server.test_client(), "/login")
    assert not suites(scripts, "dash_ag_grid")
    assert_no_polyfill(scripts)
    assert preloads == ["/_dash-layout", "/_dash-dependencies"]  # no map data for a page without a map


def test_a_page_may_name_only_optional_libraries():
    from types import ModuleType

    from dashboard.pages.head import head_of

    page = ModuleType("dashboard.pages.fake")
    page.LIBRARIES = ("dash_leaflet",)  # on every page already: not one to leave out
    with pytest.raises(ValueError, match="dash_leaflet"):
        head_of(page)


ASSET_RE = r'<(?:script[^>]*\bsrc|link rel="stylesheet" href)="(/assets/[^"?]+)\?m=\d+'


def test_page_only_assets_are_linked_by_their_pages_alone(app):
    """html-to-image (the briefing's PNG), duty.js (the duty desk), wall.js / wall.css (the wall) are in the HTML of
    the pages that use them only, still served; each page names the pages a client-side route must load afresh."""
    from dashboard.pages import head as page_head

    leader, wall = signed_in_client(app.server, "leader"), app.server.test_client()
    assert wall.get("/wall?token=wall-head").status_code == 303  # the kiosk exchange
    client_of = {"/": leader, "/briefing": leader, "/incidents": signed_in_client(app.server, "duty_officer"),
                 "/wall": wall, "/login": app.server.test_client()}
    own = {"/": set(), "/login": set(), "/briefing": {"vendor/html-to-image-1.11.13.min.js"},
           "/incidents": {"duty.js"}, "/wall": {"wall.js", "wall.css"}}
    for path, client in client_of.items():
        r = client.get(path)
        assert r.status_code == 200, path
        html = r.get_data(as_text=True)
        linked = {u.removeprefix("/assets/") for u in re.findall(ASSET_RE, html)}
        assert linked & set(page_head.PAGE_ASSETS) == own[path], (path, linked)
        assert "dashboard_app.js" in linked and "duty.css" in linked, (path, linked)  # the common ones stay
        reload = re.search(r'<meta name="wx-reload-pages" content="([^"]*)"', html).group(1).split()
        assert set(reload) == {p for p, mine in own.items() if mine - own[path]}, (path, reload)
    for name in page_head.PAGE_ASSETS:
        assert app.server.test_client().get("/assets/" + name).status_code == 200, name


def test_a_graph_loads_the_vendored_partial_plotly_bundle_where_dash_points_it(app):
    """dash-renderer points dcc.Graph at Dash's unversioned plotly.min.js (the full bundle, 4.8 MB): that URL serves
    the vendored partial bundle instead, compressed and revalidated by its ETag; no page's HTML links the bundle; the
    suites' other files are still Dash's, and a forged path is still refused."""
    from pathlib import Path

    from dashboard.pages import head as page_head

    vendored = (Path(app.config.assets_folder) / page_head.PLOTLY_BUNDLE).read_bytes()
    full = Path(__import__("plotly").__file__).parent / "package_data" / "plotly.min.js"
    client = app.server.test_client()
    r = client.get(page_head.PLOTLY_SUITE_PATH)
    assert r.status_code == 200 and r.mimetype == "application/javascript"
    assert r.data == vendored and len(vendored) < full.stat().st_size / 2
    assert client.get(page_head.PLOTLY_SUITE_PATH, headers={"If-None-Match": r.headers["ETag"]}).status_code == 304
    zipped = client.get(page_head.PLOTLY_SUITE_PATH, headers={"Accept-Encoding": "gzip"})
    assert zipped.headers.get("Content-Encoding") == "gzip" and len(zipped.data) < len(vendored) / 2
    leader = signed_in_client(app.server, "leader")
    for path in ("/", "/briefing", "/login"):
        assert page_head.PLOTLY_BUNDLE.rsplit("/", 1)[-1] not in leader.get(path).get_data(as_text=True), path
    scripts, _, _ = head(leader, "/")
    dcc = next(s for s in scripts if "/dcc/dash_core_components." in s)
    assert client.get(dcc).status_code == 200
    assert client.get("/_dash-component-suites/plotly/package_data/nope.min.js").status_code == 404


def test_a_multi_county_overview_preloads_its_outlines_at_the_level_of_detail_of_its_start_zoom(tmp_path):
    """A province's overview (the seed's towns regrouped, tests/regrouped.py) preloads its cities, counties and root
    outline as ``wx.map.detail`` asks for them at the map's start zoom — none when that zoom is past the coarse
    levels (the browser asks for its view's box, which depends on the screen; the province's 90 counties start coarse:
    ``test_layers``) — and never the towns, zones or grids; a page fitted to a county by the browser preloads no
    outline (its zoom is the screen's)."""
    from dashboard import create_app
    from dashboard.geodata import load_geodata
    from dashboard.services import units
    from dashboard.settings import Settings
    from dashboard.ui.layers import lod_for_zoom, lod_url
    from dashboard.ui.map import start_zoom
    from tests.regrouped import write_regrouped

    gdir = write_regrouped(load_geodata(), tmp_path / "geodata", with_cities=True)
    app = create_app(Settings(instance_dir=tmp_path / "instance", geodata_dir=gdir, tile_url="", demo_live=False,
                              cache_url="null"))
    client = signed_in_client(app.server, "leader")
    with app.server.app_context():
        zoom = start_zoom(units.root_bounds(), units.hierarchy().levels)
    lod = lod_for_zoom(zoom)
    _, preloads, _ = head(client, "/")
    geo = [u for u in preloads if u.startswith("/api/geo/")]
    want = [] if lod is None else [lod_url(f"/api/geo/{k}.json", lod) for k in ("cities", "counties", "district")]
    assert geo == want, (zoom, geo)
    _, preloads, _ = head(client, "/?level=county&code=990201")
    assert not [u for u in preloads if u.startswith("/api/geo/")], preloads
    _, preloads, _ = head(signed_in_client(app.server, "duty_officer"), "/incidents")
    assert [u for u in preloads if u.startswith("/api/geo/")][:2] == ([] if lod is None else [
        lod_url("/api/geo/cities.json", lod), lod_url("/api/geo/counties.json", lod)])
