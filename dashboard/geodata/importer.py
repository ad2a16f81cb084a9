"""Import official boundaries (GeoJSON / Shapefile / GeoPackage / zipped Shapefiles) to replace a level.

    python -m dashboard.geodata import PATH [PATH ...] --level town|zone|grid [...] [--layer NAME [...]]
           [--crs EPSG:4326|EPSG:xxxx|gcj02] [--geodata-dir DIR] [--dry-run]

A file with several layers (a GeoPackage, a zip of Shapefiles such as the dashboard's own GIS export) is read at
the layer ``--layer`` names, else at the layer named after the level (``towns`` / ``zones`` / ``grids``), else
refused with the list of its layers. A ``.zip`` is read in place (GDAL's ``/vsizip/``).

Nothing is written unless the whole set of levels (with the imported ones replacing the
current ones) validates; files are then replaced atomically (temp file + os.replace).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import shapely

from .build import GRID_COLS, HAZARD_COLS, TOWN_COLS, ZONE_COLS
from .geojson import GRID_SIZE, atomic_write_text, gdf_to_text
from .io import DEFAULT_GEODATA_DIR, FILES, clear_cache, read_layers
from .validate import Report, validate_layers

LEVELS = ("town", "zone", "grid")
LEVEL_KEY = {"town": "towns", "zone": "zones", "grid": "grids"}
SCHEMA = {"town": TOWN_COLS, "zone": ZONE_COLS, "grid": GRID_COLS}
PARENT = {"zone": ("town_code", "town"), "grid": ("zone_code", "zone")}

# accepted alternative column names (matched case-insensitively); includes the <=10-char
# names used by the Shapefile export
ALIASES = {
    "code": ["code", "adcode", "gridcode", "grid_code_", "bm", "编码", "代码"],
    "name": ["name", "name_zh", "mc", "名称"],
    "name_en": ["name_en"],
    "town_code": ["town_code", "towncode", "town"],
    "zone_code": ["zone_code", "zonecode", "zone"],
    "district_code": ["district_code", "dist_code"],
    "registered_units": ["registered_units", "reg_units"],
    "worker_name": ["worker_name", "worker"],
    "worker_full_time": ["worker_full_time", "worker_ft"],
    "worker_stars": ["worker_stars", "stars"],
    "station_name": ["station_name", "stn_name"],
    "station_lon": ["station_lon", "stn_lon"],
    "station_lat": ["station_lat", "stn_lat"],
    "station_master": ["station_master", "stn_master"],
    "population_weight": ["population_weight", "pop_weight"],
}
SHP_NAMES = {"registered_units": "reg_units", "worker_full_time": "worker_ft", "worker_name": "worker",
             "worker_stars": "stars", "station_name": "stn_name", "station_lon": "stn_lon",
             "station_lat": "stn_lat", "station_master": "stn_master", "district_code": "dist_code",
             "population_weight": "pop_weight"}


class GeodataImportError(Exception):
    """The input cannot be imported (unreadable, missing columns, invalid set)."""

    def __init__(self, message: str, report: Report | None = None):
        super().__init__(message)
        self.report = report


# ----------------------------------------------------------------------------- reading
def _source(p: Path) -> str:
    """What GDAL opens for ``p``: a zip in place (``/vsizip/``; ``.shp.zip`` / ``.shz`` GDAL reads itself)."""
    name = p.name.lower()
    if name.endswith(".zip") and not name.endswith(".shp.zip"):
        return "/vsizip/" + str(p.resolve())
    return str(p)


def pick_layer(path: str | os.PathLike, level: str | None = None, layer: str | None = None) -> str | None:
    """The layer of ``path`` to import for ``level``: ``layer`` when given (it must exist), the only layer of a
    single-layer file (None), else the layer named after the level (``grids`` for ``grid``)."""
    import pyogrio

    p = Path(path)
    try:
        names = [str(n) for n, _geom in pyogrio.list_layers(_source(p))]
    except Exception as exc:  # pyogrio raises DataSourceError etc.
        raise GeodataImportError(f"{p}: not a readable geodata file ({type(exc).__name__}: {exc})") from exc
    if layer is not None:
        if layer not in names:
            raise GeodataImportError(f"{p}: no layer {layer!r} (layers: {', '.join(names) or 'none'})")
        return layer
    if len(names) <= 1:
        return None
    wanted = LEVEL_KEY.get(level or "")
    if wanted in names:
        return wanted
    raise GeodataImportError(f"{p}: {len(names)} layers ({', '.join(names)}); name one with --layer")


def read_input(path: str | os.PathLike, crs: str | None = None, layer: str | None = None,
               level: str | None = None):
    """Read a vector file (any format pyogrio reads; a zip in place) and return it in EPSG:4326 (WGS84). A file of
    several layers is read at ``layer`` or, without it, at the layer named after ``level`` (:func:`pick_layer`)."""
    import geopandas as gpd
    from .crs import gcj02_to_wgs84, transform_geometry

    p = Path(path)
    if not p.exists():
        raise GeodataImportError(f"{p}: no such file")
    chosen = pick_layer(p, level, layer)
    try:
        gdf = gpd.read_file(_source(p), **({"layer": chosen} if chosen is not None else {}))
    except Exception as exc:  # pyogrio raises DataSourceError etc.
        raise GeodataImportError(f"{p}: not a readable geodata file ({type(exc).__name__}: {exc})") from exc
    if "geometry" not in gdf or not isinstance(gdf, gpd.GeoDataFrame) or gdf.geometry.isna().all():
        raise GeodataImportError(f"{p}: no geometries found")
    if len(gdf) == 0:
        raise GeodataImportError(f"{p}: no features")
    if crs and crs.lower() in ("gcj02", "gcj-02", "gcj"):
        if gdf.crs is not None and gdf.crs.to_epsg() != 4326:
            gdf = gdf.to_crs("EPSG:4326")
        gdf = gdf.set_crs("EPSG:4326", allow_override=True)
        gdf[gdf.geometry.name] = transform_geometry(np.asarray(gdf.geometry.values), gcj02_to_wgs84)
    else:
        if crs:
            gdf = gdf.set_crs(crs, allow_override=True)
        elif gdf.crs is None:
            gdf = gdf.set_crs("EPSG:4326")
        if gdf.crs.to_epsg() != 4326:
            gdf = gdf.to_crs("EPSG:4326")
    return gdf


def normalise_columns(gdf, level: str, source: str = ""):
    lower = {}
    for c in gdf.columns:
        if c == gdf.geometry.name:
            continue
        lower.setdefault(str(c).lower(), c)
    rename = {}
    for canon, alts in ALIASES.items():
        if canon in gdf.columns:
            continue
        for a in alts:
            if a.lower() in lower and lower[a.lower()] not in rename:
                rename[lower[a.lower()]] = canon
                break
    gdf = gdf.rename(columns=rename)
    if "code" not in gdf.columns:
        raise GeodataImportError(
            f"{source}: missing code column for level {level} (looked for "
            f"{', '.join(ALIASES['code'])}, case-insensitive; found {', '.join(map(str, lower.values())) or 'none'})")
    gdf = gdf.copy()
    gdf["code"] = gdf["code"].map(lambda v: None if v is None or (isinstance(v, float) and np.isnan(v))
                                  else str(v).strip())
    if "name" not in gdf.columns:
        gdf["name"] = gdf["code"]
    return gdf


def _polygonal_errors(level, gdf) -> list[str]:
    errs = []
    for code, g in zip(gdf["code"], gdf.geometry.values):
        if g is None or g.is_empty:
            errs.append(f"{level} {code}: empty geometry")
        elif g.geom_type not in ("Polygon", "MultiPolygon"):
            errs.append(f"{level} {code}: geometry type {g.geom_type} is not a polygon")
        elif not g.is_valid:
            errs.append(f"{level} {code}: invalid geometry ({shapely.is_valid_reason(g)})")
    return errs


def _derive_parent(child, parents, col):
    """Fill ``col`` (parent code) by containment of each child's representative point."""
    from .locate import GridLocator
    loc = GridLocator(parents.assign(code=parents["code"].astype(str)))
    rp = shapely.point_on_surface(np.asarray(child.geometry.values))
    got = loc.locate_many(shapely.get_x(rp), shapely.get_y(rp))
    return got


def _fill_from_old(new, old, cols):
    old_by_code = old.set_index(old["code"].astype(str)) if len(old) else old
    for c in cols:
        if c in new.columns:
            continue
        if c in old.columns:
            new[c] = [old_by_code[c].get(k) if k in old_by_code.index else None for k in new["code"]]
        else:
            new[c] = None
    return new


def prepare_level(level: str, gdf, current: dict):
    """Turn an imported frame into the schema of ``level`` given the current layers
    (dict key -> GeoDataFrame, already updated with any higher imported level)."""
    import geopandas as gpd

    key = LEVEL_KEY[level]
    old = current[key]
    gdf = gdf.copy()
    gdf["district_code"] = str(current["district"]["code"].iloc[0])  # the root unit of the current geodata
    if level in PARENT:
        col, plevel = PARENT[level]
        parents = current[LEVEL_KEY[plevel]]
        missing = gdf[col].isna() if col in gdf.columns else pd.Series(True, index=gdf.index)
        if missing.any():
            derived = _derive_parent(gdf[missing], parents, col)
            if col not in gdf.columns:
                gdf[col] = None
            gdf.loc[missing, col] = list(derived)
        gdf[col] = gdf[col].map(lambda v: None if v is None else str(v))
    if level == "grid":
        z2t = dict(zip(current["zones"]["code"].astype(str), current["zones"]["town_code"].astype(str)))
        gdf["town_code"] = [z2t.get(z) for z in gdf["zone_code"]]
    if level == "town" and "abbr" not in gdf.columns:
        gdf["abbr"] = [str(c).rsplit("-", 1)[-1] for c in gdf["code"]]
    gdf = _fill_from_old(gdf, old, SCHEMA[level])
    geoms = shapely.set_precision(np.asarray(gdf.geometry.values), GRID_SIZE)
    out = gpd.GeoDataFrame(gdf[SCHEMA[level]].copy(), geometry=geoms, crs="EPSG:4326")
    if level == "zone":
        rp = shapely.point_on_surface(geoms)
        lon_missing = out["station_lon"].isna()
        out.loc[lon_missing, "station_lon"] = np.round(shapely.get_x(rp[lon_missing.to_numpy()]), 6)
        out.loc[lon_missing, "station_lat"] = np.round(shapely.get_y(rp[lon_missing.to_numpy()]), 6)
    return out.sort_values("code", kind="mergesort").reset_index(drop=True)


def _relocate_hazards(hazards, grids):
    from .locate import GridLocator
    if len(hazards) == 0:
        return hazards
    loc = GridLocator(grids)
    codes = loc.locate_many(hazards.geometry.x.to_numpy(), hazards.geometry.y.to_numpy())
    h = hazards.copy()
    h["grid_code"] = codes
    h["zone_code"] = [loc.zone_of(c) if c else None for c in codes]
    h["town_code"] = [loc.town_of(c) if c else None for c in codes]
    return h


def import_layers(items: list[tuple], geodata_dir=None, crs: str | None = None,
                  dry_run: bool = False, log=print) -> Report:
    """Import ``[(level, path), ...]`` or ``[(level, path, layer), ...]`` (``layer`` None: see
    :func:`pick_layer`); returns the report. Raises GeodataImportError (and writes nothing) if a file is unreadable
    or the resulting set is invalid."""
    gd_dir = Path(geodata_dir) if geodata_dir else DEFAULT_GEODATA_DIR
    items = [tuple(it) + (None,) * (3 - len(it)) for it in items]
    for it in items:
        if it[0] not in LEVELS:
            raise GeodataImportError(f"unknown level {it[0]!r} (expected one of {', '.join(LEVELS)})")
    current = read_layers(gd_dir)
    items = sorted(items, key=lambda it: LEVELS.index(it[0]))
    seen = set()
    pre_errors: list[str] = []
    for level, path, layer in items:
        if level in seen:
            raise GeodataImportError(f"level {level} given twice")
        seen.add(level)
        raw = read_input(path, crs, layer=layer, level=level)
        raw = normalise_columns(raw, level, str(path))
        log(f"read {path}{f' (layer {layer})' if layer else ''}: {len(raw)} feature(s) for level {level}")
        errs = _polygonal_errors(level, raw)
        if errs:
            pre_errors.extend(errs)
            continue
        current[LEVEL_KEY[level]] = prepare_level(level, raw, current)
    if pre_errors:
        rep = Report(errors=pre_errors)
        raise GeodataImportError("; ".join(pre_errors[:5]), rep)
    # derived attributes
    if "zone" in seen or "grid" in seen:
        per_zone = current["grids"]["zone_code"].astype(str).value_counts()
        current["zones"]["n_grids"] = [int(per_zone.get(z, 0)) for z in current["zones"]["code"]]
    if seen & {"town", "zone"} and "grid" not in seen:
        z2t = dict(zip(current["zones"]["code"].astype(str), current["zones"]["town_code"].astype(str)))
        current["grids"]["town_code"] = [z2t.get(z, t) for z, t in
                                         zip(current["grids"]["zone_code"], current["grids"]["town_code"])]
    rep = validate_layers(current["district"], current["towns"], current["zones"], current["grids"],
                          strict=False, nest_tol=0.01)
    if "grid" in seen or "zone" in seen or "town" in seen:
        current["hazards"] = _relocate_hazards(current["hazards"], current["grids"])
        n_out = int(current["hazards"]["grid_code"].isna().sum())
        if n_out:
            rep.warnings.append(f"hazards: {n_out} site(s) fall outside every grid")
    log(rep.format())
    if not rep.ok:
        raise GeodataImportError(f"import rejected, nothing written: {rep.errors[0]}"
                                 + (f" (+{len(rep.errors) - 1} more)" if len(rep.errors) > 1 else ""), rep)
    if dry_run:
        log("dry run: nothing written")
        return rep
    texts = {}
    changed = {LEVEL_KEY[lv] for lv in seen} | {"hazards"}
    if seen & {"zone", "grid"}:
        changed |= {"zones", "grids"}
    if seen & {"town", "zone"}:
        changed |= {"grids"}
    cols = {"towns": TOWN_COLS, "zones": ZONE_COLS, "grids": GRID_COLS, "hazards": HAZARD_COLS}
    for key in sorted(changed):
        texts[key] = gdf_to_text(current[key], cols[key])
    for key, text in texts.items():
        atomic_write_text(gd_dir / FILES[key], text)
        log(f"wrote {gd_dir / FILES[key]}")
    clear_cache()
    return rep


# ----------------------------------------------------------------------------- export
def export_level(level: str, out: str | os.PathLike, fmt: str = "geojson", crs: str | None = None,
                 geodata_dir=None):
    """Write one level as GeoJSON / Shapefile / GeoPackage, optionally in GCJ-02."""
    from .crs import transform_geometry, wgs84_to_gcj02
    from .io import read_layer

    gd_dir = Path(geodata_dir) if geodata_dir else DEFAULT_GEODATA_DIR
    key = LEVEL_KEY.get(level, level)
    gdf = read_layer(gd_dir / FILES[key])
    if crs and crs.lower() in ("gcj02", "gcj-02", "gcj"):
        gdf[gdf.geometry.name] = transform_geometry(np.asarray(gdf.geometry.values), wgs84_to_gcj02)
    elif crs:
        gdf = gdf.to_crs(crs)
    fmt = fmt.lower()
    if fmt == "shp":
        for c in gdf.columns:
            if gdf[c].dtype == bool:
                gdf[c] = gdf[c].astype(int)
        gdf = gdf.rename(columns=SHP_NAMES)
        gdf.to_file(out, driver="ESRI Shapefile", encoding="UTF-8")
    elif fmt == "gpkg":
        gdf.to_file(out, driver="GPKG", layer=key)
    elif fmt == "geojson":
        gdf.to_file(out, driver="GeoJSON")
    else:
        raise ValueError(f"unknown format {fmt!r} (shp, gpkg, geojson)")
    return Path(out)
