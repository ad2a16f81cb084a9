"""Validation of the nested geodata layers (district > towns > zones > grids).

All areas are computed in a metric CRS (UTM 51N, EPSG:32651 — Huzhou lies at ~120.1 E).
Used by the build (strict: any problem fails), by the importer (official files: counts,
grids-per-zone range and coverage become warnings) and by the tests.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely

METRIC_CRS = "EPSG:32651"
EXPECTED_COUNTS = {"district": 1, "town": 17, "zone": 46, "grid": 538}  # the seed district's counts …
REFERENCE_AREA_KM2 = 862.86   # … on its area (UTM 51N): the density every other county is built at
GRIDS_PER_ZONE = (8, 18)
OVERLAP_TOL_M2 = 1.0          # pairwise overlap above this is an error
COVERAGE_TOL = 0.001          # union of a level vs district: 0.1 % of the district area
OUTSIDE_TOL = 0.01            # a unit may stick out of the district by <= 1 % of its own area
MAX_LISTED = 10               # cap repeated messages of one kind

__all__ = ["Report", "validate_layers", "METRIC_CRS", "EXPECTED_COUNTS", "expected_counts", "district_area_km2"]


def expected_counts(area_km2: float) -> dict:
    """Feature counts of a root unit of ``area_km2`` at the seed district's density (its own counts for its
    area): at least one town, one zone per town, and 8–18 grids per zone."""
    f = area_km2 / REFERENCE_AREA_KM2
    towns = max(1, round(EXPECTED_COUNTS["town"] * f))
    zones = max(towns, round(EXPECTED_COUNTS["zone"] * f))
    lo, hi = GRIDS_PER_ZONE
    grids = min(max(round(EXPECTED_COUNTS["grid"] * f), lo * zones), hi * zones)
    return {"district": 1, "town": towns, "zone": zones, "grid": grids}


def district_area_km2(district) -> float:
    """The root unit's area in km² (metric CRS), from its GeoDataFrame."""
    return float(shapely.union_all(_metric(district)).area) / 1e6


@dataclass
class Report:
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors

    def format(self) -> str:
        lines = ["geodata validation: " + ("OK" if self.ok else f"FAILED ({len(self.errors)} error(s))")]
        for k, v in self.stats.items():
            if isinstance(v, float):
                v = f"{v:.6g}"
            lines.append(f"  {k}: {v}")
        lines += [f"  WARNING: {w}" for w in self.warnings]
        lines += [f"  ERROR: {e}" for e in self.errors]
        return "\n".join(lines)

    def __str__(self) -> str:  # pragma: no cover - convenience
        return self.format()


def _metric(gdf):
    g = gdf if gdf.crs is not None else gdf.set_crs("EPSG:4326")
    return np.asarray(g.to_crs(METRIC_CRS).geometry.values)


def _listed(target: list[str], msgs: list[str]):
    target.extend(msgs[:MAX_LISTED])
    if len(msgs) > MAX_LISTED:
        target.append(f"... and {len(msgs) - MAX_LISTED} more like the above")


def _check_codes(level, gdf, rep: Report):
    if "code" not in gdf.columns:
        rep.errors.append(f"{level}: missing 'code' column")
        return None
    codes = gdf["code"]
    missing = codes.isna() | (codes.astype(str).str.strip() == "")
    if missing.any():
        rep.errors.append(f"{level}: {int(missing.sum())} feature(s) with missing/empty code")
    counts = codes[~missing].astype(str).value_counts()
    dup = counts[counts > 1]
    _listed(rep.errors, [f"{level}: duplicate code {c} in {n} features" for c, n in sorted(dup.items())])
    return codes.astype(str).to_numpy()


def _check_geoms(level, gdf, codes, rep: Report):
    geoms = np.asarray(gdf.geometry.values)
    bad = []
    for i, g in enumerate(geoms):
        label = codes[i] if codes is not None else f"#{i}"
        if g is None or shapely.is_empty(g):
            bad.append(f"{level} {label}: empty geometry")
        elif shapely.get_type_id(g) not in (3, 6):
            bad.append(f"{level} {label}: geometry type {g.geom_type} is not a Polygon/MultiPolygon")
        elif not shapely.is_valid(g):
            bad.append(f"{level} {label}: invalid geometry ({shapely.is_valid_reason(g)})")
    _listed(rep.errors, bad)
    n_multi = int(sum(1 for g in geoms if g is not None and shapely.get_type_id(g) == 6))
    rep.stats[f"{level}_multipolygons"] = n_multi
    return not bad


def _overlaps(level, mgeoms, codes, rep: Report):
    tree = shapely.STRtree(mgeoms)
    i, j = tree.query(mgeoms, predicate="intersects")
    keep = i < j
    i, j = i[keep], j[keep]
    max_ov = 0.0
    n_bad = 0
    msgs = []
    if len(i):
        areas = shapely.area(shapely.intersection(mgeoms[i], mgeoms[j]))
        max_ov = float(areas.max())
        for a, b, ar in zip(i, j, areas):
            if ar > OVERLAP_TOL_M2:
                n_bad += 1
                msgs.append(f"{level}: {codes[a]} and {codes[b]} overlap by {ar:.1f} m²")
    _listed(rep.errors, msgs)
    rep.stats[f"{level}_max_overlap_m2"] = round(max_ov, 4)
    rep.stats[f"{level}_overlapping_pairs"] = n_bad


def _coverage(level, mgeoms, dgeom, strict, rep: Report):
    union = shapely.union_all(mgeoms)
    d_area = dgeom.area
    inside = shapely.intersection(union, dgeom).area
    cov = inside / d_area
    excess = (union.area - inside) / d_area
    rep.stats[f"{level}_coverage_pct"] = round(100.0 * cov, 4)
    rep.stats[f"{level}_outside_district_pct"] = round(100.0 * excess, 4)
    if abs(1.0 - cov) > COVERAGE_TOL or excess > COVERAGE_TOL:
        msg = (f"{level}: union covers {100 * cov:.3f} % of the district "
               f"(+{100 * excess:.3f} % outside); tolerance {100 * COVERAGE_TOL:.1f} %")
        (rep.errors if strict else rep.warnings).append(msg)


def _outside(level, mgeoms, codes, dgeom, rep: Report):
    frac = 1.0 - shapely.area(shapely.intersection(mgeoms, dgeom)) / np.maximum(shapely.area(mgeoms), 1e-9)
    msgs = [f"{level} {codes[k]}: {100 * frac[k]:.1f} % of its area is outside the district"
            for k in np.nonzero(frac > OUTSIDE_TOL)[0]]
    _listed(rep.errors, msgs)


def _nesting(child_level, parent_level, child, c_m, c_codes, parent_col, parent, p_m, p_codes,
             tol, rep: Report):
    if parent_col not in child.columns:
        rep.errors.append(f"{child_level}: missing '{parent_col}' column")
        return
    index = {c: k for k, c in enumerate(p_codes)}
    msgs_unknown, msgs_out = [], []
    pairs_c, pairs_p = [], []
    for k, pc in enumerate(child[parent_col].astype(str).to_numpy()):
        if pc not in index:
            msgs_unknown.append(f"{child_level} {c_codes[k]}: unknown {parent_col} {pc}")
        else:
            pairs_c.append(k)
            pairs_p.append(index[pc])
    if pairs_c:
        pc_ = np.asarray(pairs_c)
        pp_ = np.asarray(pairs_p)
        inter = shapely.area(shapely.intersection(c_m[pc_], p_m[pp_]))
        frac = inter / np.maximum(shapely.area(c_m[pc_]), 1e-9)
        rep.stats[f"{child_level}_in_{parent_level}_min_pct"] = round(100.0 * float(frac.min()), 4)
        for k, f in zip(pc_, frac):
            if f < 1.0 - tol:
                msgs_out.append(f"{child_level} {c_codes[k]}: only {100 * f:.2f} % inside its "
                                f"{parent_level} {child[parent_col].iloc[k]}")
    _listed(rep.errors, msgs_unknown)
    _listed(rep.errors, msgs_out)


def validate_layers(district, towns, zones, grids, *, strict: bool = True,
                    nest_tol: float = 0.001) -> Report:
    """Validate the four layers (GeoDataFrames in EPSG:4326).

    strict=True (build): everything is an error. strict=False (import of official files):
    feature counts other than :func:`expected_counts` of the district's area (17/46/538 for the seed district), grids per zone outside 8–18 and district coverage
    are warnings; overlaps, invalid geometries, duplicate/missing codes, units outside the
    district and broken nesting remain errors.
    """
    rep = Report()
    layers = {"town": towns, "zone": zones, "grid": grids}
    if len(district) != 1:
        rep.errors.append(f"district: expected 1 feature, got {len(district)}")
    dgeom = shapely.union_all(_metric(district))
    expected = expected_counts(dgeom.area / 1e6)
    codes = {}
    ok_geom = {}
    metric = {}
    for level, gdf in layers.items():
        n = len(gdf)
        rep.stats[f"{level}_count"] = n
        if n != expected[level]:
            msg = f"{level}: {n} features (expected {expected[level]} for the district's area)"
            (rep.errors if strict else rep.warnings).append(msg)
        if n == 0:
            rep.errors.append(f"{level}: no features")
            return rep
        codes[level] = _check_codes(level, gdf, rep)
        ok_geom[level] = _check_geoms(level, gdf, codes[level], rep)
    if not all(ok_geom.values()) or any(c is None for c in codes.values()):
        return rep  # geometry-based checks are meaningless on broken input
    for level, gdf in layers.items():
        metric[level] = _metric(gdf)
        _overlaps(level, metric[level], codes[level], rep)
        _outside(level, metric[level], codes[level], dgeom, rep)
        _coverage(level, metric[level], dgeom, strict, rep)
    _nesting("zone", "town", zones, metric["zone"], codes["zone"], "town_code",
             towns, metric["town"], codes["town"], nest_tol, rep)
    _nesting("grid", "zone", grids, metric["grid"], codes["grid"], "zone_code",
             zones, metric["zone"], codes["zone"], nest_tol, rep)
    # grids per zone
    if "zone_code" in grids.columns:
        per_zone = grids["zone_code"].astype(str).value_counts()
        counts = np.array([int(per_zone.get(z, 0)) for z in codes["zone"]])
        rep.stats["grids_per_zone_min"] = int(counts.min())
        rep.stats["grids_per_zone_max"] = int(counts.max())
        rep.stats["grids_per_zone_mean"] = round(float(counts.mean()), 3)
        lo, hi = GRIDS_PER_ZONE
        msgs = [f"zone {z}: {c} grids (expected {lo}–{hi})"
                for z, c in zip(codes["zone"], counts) if not lo <= c <= hi]
        _listed(rep.errors if strict else rep.warnings, msgs)
        if "town_code" in grids.columns and "town_code" in zones.columns:
            z2t = dict(zip(zones["code"].astype(str), zones["town_code"].astype(str)))
            bad = [f"grid {g}: town_code {t} but its zone {z} is in {z2t.get(z)}"
                   for g, z, t in zip(codes["grid"], grids["zone_code"].astype(str),
                                      grids["town_code"].astype(str))
                   if z in z2t and z2t[z] != t]
            _listed(rep.errors, bad)
    return rep
