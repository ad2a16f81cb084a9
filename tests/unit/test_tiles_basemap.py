"""Which basemap the map draws (issue 12): with TILE_FILE only this app's /tiles/ URLs (zooms, bounds and
attribution from the file), the CSP names no tile host, a bad file stops the start; the `tiles info|pack` CLI."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from dashboard.security import content_security_policy
from dashboard.services import tiles as svc
from dashboard.settings import Settings
from dashboard.store import tiles as st
from dashboard.ui.map import basemaps as basemap_layers
from tests import tiles_fixture as tf
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    base = tmp_path_factory.mktemp("bm")
    tile_map = tf.tiles(zooms=(9, 10))
    light = tf.write_mbtiles(base / "light.mbtiles", tile_map,
                             attribution='<a href="https://example.org">&copy; 天地图·浙江</a><img src=x onerror=alert(1)>')
    dark = tf.write_pmtiles(base / "dark.pmtiles", {a: tf.image(*a, fmt="jpg") for a in tile_map}, fmt="jpg")
    plain = tf.write_mbtiles(base / "plain.mbtiles", tile_map, attribution=None)
    return {"light": light, "dark": dark, "plain": plain}


def _file_settings(files, **kw):
    return Settings(tile_file=str(files["light"]), tile_file_dark=str(files["dark"]),
                    tile_url="https://tile.openstreetmap.org/{z}/{x}/{y}.png", **kw)


def test_with_a_file_only_this_apps_tile_urls_are_offered(files):
    settings = _file_settings(files)
    readers = svc.open_files(settings)
    layers = svc.basemaps(settings, readers)
    assert [b.key for b in layers] == ["base", "dark"]
    base, dark = layers
    assert base.url.startswith("/tiles/base/{z}/{x}/{y}.png?v=") and dark.url.startswith("/tiles/dark/{z}/{x}/{y}.jpg")
    assert (base.min_zoom, base.max_native_zoom) == (9, 10) and base.max_zoom >= 19
    (s, w), (n, e) = base.bounds
    assert (w, s, e, n) == pytest.approx(tf.WUXING)
    assert settings.external_tile_urls == ()
    assert "openstreetmap" not in content_security_policy([], settings.external_tile_urls)
    assert "img-src 'self' data: blob:;" in content_security_policy([], settings.external_tile_urls)


def test_the_files_attribution_is_shown_as_text_and_falls_back_to_the_setting(files):
    settings = _file_settings(files, tile_attribution="© 湖州市测绘院")
    base, dark = svc.basemaps(settings, svc.open_files(settings))
    assert base.attribution == "© 天地图·浙江"  # entities decoded, markup (and its handlers) dropped
    assert "<" not in base.attribution and "onerror" not in base.attribution
    assert dark.attribution == "© 湖州市测绘院"  # the PMTiles fixture has none
    plain = Settings(tile_file=str(files["plain"]), tile_attribution="&copy; fallback")
    assert svc.basemaps(plain, svc.open_files(plain))[0].attribution == "&copy; fallback"


def test_the_layer_control_draws_what_it_is_given(files):
    settings = _file_settings(files)
    layers = basemap_layers(svc.basemaps(settings, svc.open_files(settings)), "zh", dark=True)
    tile_layers = {bl.id: bl.children for bl in layers if bl.id != "base-none"}
    assert {k: bl.checked for k, bl in ((b.id, b) for b in layers)} == {
        "base-default": False, "base-dark": True, "base-none": False}
    t = tile_layers["base-default"]
    assert (t.minZoom, t.maxNativeZoom) == (9, 10)
    assert t.bounds[0] == pytest.approx([tf.WUXING[1], tf.WUXING[0]])
    # a dark page with no dark basemap shows the standard one rather than none
    only_base = basemap_layers(svc.basemaps(Settings(tile_file=str(files["light"])),
                                            svc.open_files(Settings(tile_file=str(files["light"])))), "zh", True)
    assert [(b.id, b.checked) for b in only_base] == [("base-default", True), ("base-none", False)]


def test_without_a_file_the_tile_hosts_stay_as_configured():
    settings = Settings()
    layers = svc.basemaps(settings, {})
    assert [b.url for b in layers] == [settings.tile_url, settings.tile_url_dark]
    assert len(settings.external_tile_urls) == 2
    assert svc.basemaps(Settings(tile_url="none"), {}) == ()


@pytest.mark.parametrize("env,message", [
    ({"TILE_FILE": "/nowhere/basemap.mbtiles"}, "TILE_FILE: basemap file /nowhere/basemap.mbtiles does not exist"),
    ({"TILE_FILE_DARK": "/x.mbtiles"}, "TILE_FILE_DARK is set without TILE_FILE"),
])
def test_a_bad_file_stops_the_start(tmp_path, env, message):
    from dashboard import create_app

    settings = Settings.from_env({**env, "INSTANCE_DIR": str(tmp_path)})
    with pytest.raises(st.TileFileError, match=message):
        create_app(settings, with_store=False)


def test_a_foreign_file_stops_the_start_naming_its_setting(tmp_path, files):
    from dashboard import create_app

    with pytest.raises(st.TileFileError, match="TILE_FILE: .*district.geojson is neither MBTiles"):
        create_app(Settings(instance_dir=tmp_path, tile_file=str(ROOT / "geodata" / "district.geojson")),
                   with_store=False)
    with pytest.raises(st.TileFileError, match="TILE_FILE_DARK: .*README.md is neither MBTiles"):
        create_app(Settings(instance_dir=tmp_path, tile_file=str(files["light"]),
                            tile_file_dark=str(ROOT / "README.md")), with_store=False)


def test_settings_read_the_files_from_the_environment():
    s = Settings.from_env({"TILE_FILE": " /srv/tiles/huzhou.mbtiles ", "TILE_FILE_DARK": "/srv/tiles/dark.pmtiles"})
    assert (s.tile_file, s.tile_file_dark) == ("/srv/tiles/huzhou.mbtiles", "/srv/tiles/dark.pmtiles")
    assert s.tiles_enabled and s.external_tile_urls == ()


@pytest.mark.parametrize("raw", ["-1", "1e3", "٣", "9" * 11, "", " 9", "0x1"])
def test_malformed_coordinates_are_400(files, monkeypatch, raw):
    monkeypatch.setattr(svc, "_readers", lambda: svc.open_files(Settings(tile_file=str(files["light"]))))
    for pos in range(3):
        args = ["9", "427", "211"]
        args[pos] = raw
        with pytest.raises(svc.TileRequestError) as err:
            svc.tile("base", *args, "png")
        assert err.value.status == 400 and err.value.field == "zxy"[pos]


# ------------------------------------------------------------------------------------------ CLI
def _main(argv, capsys):
    from dashboard.__main__ import main

    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_pack_then_info_round_trip(tmp_path, capsys):
    tile_map = tf.tiles(zooms=(10, 11))
    tree = tf.write_tree(tmp_path / "tianditu", tile_map, scheme="tms")
    out = tmp_path / "wuxing.mbtiles"
    code, text, _ = _main(["tiles", "pack", str(tree), str(out), "--name", "吴兴 天地图", "--attribution", "© 天地图",
                           "--scheme", "tms"], capsys)
    assert code == 0 and f"packed {len(tile_map)} png tiles (zoom 10-11)" in text
    code, text, _ = _main(["tiles", "info", str(out), "--json"], capsys)
    info = json.loads(text)
    assert code == 0
    assert {k: info[k] for k in ("kind", "format", "name", "attribution", "min_zoom", "max_zoom", "tiles")} == {
        "kind": "mbtiles", "format": "png", "name": "吴兴 天地图", "attribution": "© 天地图", "min_zoom": 10,
        "max_zoom": 11, "tiles": len(tile_map)}
    w, s, e, n = info["bounds"]
    assert w <= tf.WUXING[0] < tf.WUXING[2] <= e and s <= tf.WUXING[1] < tf.WUXING[3] <= n
    reader = st.open_tiles(out)
    assert all(reader.get(*a) == d for a, d in tile_map.items())  # packed from TMS rows, served at XYZ rows
    code, _, err = _main(["tiles", "pack", str(tree), str(out)], capsys)
    assert code == 2 and "exists" in err
    code, _, err = _main(["tiles", "info", str(tree / "missing.mbtiles")], capsys)
    assert code == 2 and "does not exist" in err


def test_cli_is_wired_under_python_m_dashboard(tmp_path):
    path = tf.write_pmtiles(tmp_path / "w.pmtiles", tf.tiles(zooms=(9,)), attribution="© PM")
    r = subprocess.run([sys.executable, "-m", "dashboard", "tiles", "info", str(path)], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    lines = dict(line.split(None, 1) for line in r.stdout.splitlines())
    assert lines["kind"] == "pmtiles" and lines["format"] == "png" and lines["tiles"] == str(len(tf.tiles((9,))))
    assert lines["attribution"] == "© PM"
