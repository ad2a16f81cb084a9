"""Importing official boundaries: round trips and rejection of bad files."""
import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely
from shapely.affinity import translate

from dashboard.geodata.__main__ import main
from dashboard.geodata.importer import export_level

ROOT = Path(__file__).resolve().parents[2]
GEODATA = ROOT / "geodata"
METRIC = "EPSG:32651"


def _copy(tmp_path) -> Path:
    d = tmp_path / "geodata"
    d.mkdir()
    for f in GEODATA.glob("*.geojson"):
        shutil.copy(f, d / f.name)
    return d


def _hashes(d: Path):
    return {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in sorted(d.iterdir())}


def _read(d, level):
    return gpd.read_file(d / ("district.geojson" if level == "district" else f"{level}s.geojson"))


def _same_geometry(a, b):
    a = a.sort_values("code").reset_index(drop=True)
    b = b.sort_values("code").reset_index(drop=True)
    assert list(a["code"]) == list(b["code"])
    am = np.asarray(a.to_crs(METRIC).geometry.values)
    bm = np.asarray(b.to_crs(METRIC).geometry.values)
    h = shapely.hausdorff_distance(am, bm)
    assert h.max() < 1.0, f"max Hausdorff {h.max():.3f} m"


@pytest.mark.parametrize("level", ["zone", "grid"])
@pytest.mark.parametrize("fmt", ["shp", "gpkg"])
@pytest.mark.parametrize("crs", ["gcj02", None])
def test_round_trip(tmp_path, level, fmt, crs):
    d = _copy(tmp_path)
    out = tmp_path / f"export.{fmt}"
    export_level(level, out, fmt, crs, d)
    exported = gpd.read_file(out)
    if crs == "gcj02":  # the export really is shifted by a few hundred metres
        shift = shapely.hausdorff_distance(exported.to_crs(METRIC).geometry.iloc[0],
                                           _read(d, level).sort_values("code").to_crs(METRIC).geometry.iloc[0])
        assert shift > 100
    before = _read(d, level)
    args = ["import", str(out), "--level", level, "--geodata-dir", str(d)]
    if crs:
        args += ["--crs", crs]
    assert main(args) == 0
    after = _read(d, level)
    _same_geometry(before, after)
    if level == "grid":
        assert list(after.sort_values("code")["zone_code"]) == list(before.sort_values("code")["zone_code"])
        assert after["registered_units"].sum() == before["registered_units"].sum()


def test_aliases_and_derived_parent(tmp_path):
    d = _copy(tmp_path)
    g = _read(d, "grid")[["code", "name", "zone_code", "geometry"]]
    alt = g.rename(columns={"code": "CODE", "name": "NAME"}).drop(columns=["zone_code"])
    src = tmp_path / "official.geojson"
    alt.to_file(src, driver="GeoJSON")
    assert main(["import", str(src), "--level", "grid", "--geodata-dir", str(d)]) == 0
    after = _read(d, "grid").set_index("code")
    assert (after.loc[g["code"], "zone_code"].to_numpy() == g["zone_code"].to_numpy()).all()


def test_dry_run_writes_nothing(tmp_path):
    d = _copy(tmp_path)
    z = _read(d, "zone")
    z.loc[0, "name"] = "新名字片区"
    src = tmp_path / "z.gpkg"
    z.to_file(src, driver="GPKG")
    h0 = _hashes(d)
    assert main(["import", str(src), "--level", "zone", "--geodata-dir", str(d), "--dry-run"]) == 0
    assert _hashes(d) == h0
    assert main(["import", str(src), "--level", "zone", "--geodata-dir", str(d)]) == 0
    assert "新名字片区" in (d / "zones.geojson").read_text(encoding="utf-8")


def _bad_duplicate(d):
    g = _read(d, "grid")
    g.loc[1, "code"] = g.loc[0, "code"]
    return "grid", g, f"duplicate code {g.loc[0, 'code']} in 2 features"


def _bad_overlap(d):
    z = _read(d, "zone")
    dist = _read(d, "district").geometry.iloc[0]
    z.loc[3, "geometry"] = z.loc[3, "geometry"].buffer(0.004).intersection(dist)
    return "zone", z, "overlap"


def _bad_selfintersection(d):
    g = _read(d, "grid")
    x0, y0, x1, y1 = g.geometry.iloc[4].bounds
    g.loc[4, "geometry"] = shapely.Polygon([(x0, y0), (x1, y1), (x1, y0), (x0, y1)])
    return "grid", g, "invalid geometry"


def _bad_missing_code(d):
    g = _read(d, "grid").rename(columns={"code": "ident"})
    return "grid", g, "missing code column"


def _bad_outside(d):
    g = _read(d, "grid")
    g.loc[7, "geometry"] = translate(g.geometry.iloc[7], xoff=0.8)
    return "grid", g, "outside the district"


def _bad_unknown_town(d):
    z = _read(d, "zone")
    z.loc[2, "town_code"] = "330502-XX"
    return "zone", z, "unknown town_code 330502-XX"


@pytest.mark.parametrize("make", [_bad_duplicate, _bad_overlap, _bad_selfintersection, _bad_missing_code,
                                  _bad_outside, _bad_unknown_town])
@pytest.mark.parametrize("fmt", ["geojson", "gpkg"])
def test_bad_file_rejected_and_nothing_changes(tmp_path, capsys, make, fmt):
    d = _copy(tmp_path)
    level, gdf, expected = make(d)
    src = tmp_path / f"bad.{fmt}"
    gdf.to_file(src, driver="GeoJSON" if fmt == "geojson" else "GPKG")
    h0 = _hashes(d)
    rc = main(["import", str(src), "--level", level, "--geodata-dir", str(d)])
    err = capsys.readouterr().err
    assert rc == 2
    assert expected in err, err
    assert _hashes(d) == h0


def test_unreadable_file_rejected_by_cli_process(tmp_path):
    d = _copy(tmp_path)
    src = tmp_path / "grids.geojson"
    src.write_text("this is not geodata", encoding="utf-8")
    h0 = _hashes(d)
    p = subprocess.run([sys.executable, "-m", "dashboard.geodata", "import", str(src), "--level", "grid",
                        "--geodata-dir", str(d)], cwd=ROOT, capture_output=True, text=True)
    assert p.returncode == 2
    assert "not a readable geodata file" in p.stderr
    assert _hashes(d) == h0
    missing = subprocess.run([sys.executable, "-m", "dashboard.geodata", "import", str(tmp_path / "nope.shp"),
                              "--level", "zone", "--geodata-dir", str(d)], cwd=ROOT, capture_output=True,
                             text=True)
    assert missing.returncode == 2 and "no such file" in missing.stderr
    assert _hashes(d) == h0


# ------------------------------------------------------------------------- files of several layers
def test_several_layers_need_the_level_name_or_layer(tmp_path):
    """A GeoPackage of several layers is read at the layer named after the level, else at --layer; without either
    it is refused with its layer names, and nothing is written."""
    d = _copy(tmp_path)
    before = _hashes(d)
    grids, zones = _read(d, "grid"), _read(d, "zone")
    odd = tmp_path / "odd.gpkg"
    grids.to_file(odd, layer="wangge", driver="GPKG")
    zones.to_file(odd, layer="pianqu", driver="GPKG")
    assert main(["import", str(odd), "--level", "grid", "--geodata-dir", str(d)]) == 2
    assert main(["import", str(odd), "--level", "grid", "--layer", "nope", "--geodata-dir", str(d)]) == 2
    assert main(["import", str(odd), "--level", "grid", "--layer", "wangge", "pianqu", "--geodata-dir", str(d)]) == 2
    assert _hashes(d) == before
    assert main(["import", str(odd), "--level", "grid", "--layer", "wangge", "--geodata-dir", str(d)]) == 0
    assert _hashes(d) == before  # the same boundaries and codes: the same files
    named = tmp_path / "named.gpkg"
    zones.to_file(named, layer="zones", driver="GPKG")
    grids.to_file(named, layer="grids", driver="GPKG")
    assert main(["import", str(named), "--level", "zone", "--geodata-dir", str(d)]) == 0
    assert _hashes(d) == before


def test_a_zip_of_shapefiles_imports_in_place(tmp_path):
    import zipfile

    d = _copy(tmp_path)
    grids, zones = _read(d, "grid"), _read(d, "zone")
    shp = tmp_path / "shp"
    shp.mkdir()
    export_level("grid", shp / "grids.shp", "shp", None, d)
    export_level("zone", shp / "zones.shp", "shp", None, d)
    for name in ("boundaries.zip", "boundaries.shp.zip"):
        with zipfile.ZipFile(tmp_path / name, "w") as z:
            for f in shp.iterdir():
                z.write(f, f.name)
        assert main(["import", str(tmp_path / name), "--level", "grid", "--geodata-dir", str(d)]) == 0
        assert main(["import", str(tmp_path / name), "--level", "zone", "--geodata-dir", str(d)]) == 0
        _same_geometry(grids, _read(d, "grid"))
        _same_geometry(zones, _read(d, "zone"))
        assert list(_read(d, "grid").sort_values("code")["zone_code"]) == list(grids.sort_values("code")["zone_code"])
