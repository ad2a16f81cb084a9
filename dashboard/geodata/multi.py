"""Geodata of several counties: a city (``--city 湖州市``), a list (``--counties 上城区 拱墅区``) or the whole
province (``--province``), each county generated exactly as its single build, then combined into layers.

1. **Clean partition** (:func:`partition_outlines`, used by every single ``--county`` build too): each county's
   outline of the province file is made valid and snapped to the 1e-6° grid (:func:`inputs.clean_outline`);
   the seed district (the one with real town seats) takes its own outline (``source_district_wgs84.geojson``)
   and is never changed. Overlaps between neighbours go to the county of higher priority (the seed, then the
   lower code): the other county loses them. Holes of the union smaller than :data:`SLIVER_KM2` (slivers
   between neighbours) go to the neighbour, other than the seed, sharing the longest border. Larger holes are
   left (no county claims them). On the current province file nothing changes: its outlines already tile
   (no overlap of positive area, no hole), which a test checks; the rules are there for a file that does not.
2. **Counties** are generated one per process (a pool of ``workers``, both cores by default): the same inputs,
   seeds and generator as ``build --county`` (the seed district with its real seats: 17 / 46 / 538), each
   validated strictly on its own (:func:`build.validate_texts`).
3. **Combined**: the towns, zones and grids files are the counties' feature lines in code order (a county's
   lines are byte-identical to its single build); hazard codes get the county's prefix (``330521-HZ-0001``);
   ``counties.geojson`` (the outlines used), ``cities.geojson`` (the union of the built counties of each city)
   and ``district.geojson`` = the **root**: the province (``330000`` 浙江省) for ``--province`` or a selection
   spanning several cities, the city for ``--city`` or a selection inside one city — always the union of the
   counties built (a partial city's root covers only its built counties), with ``level`` "province" / "city".
4. :func:`validate_multi` checks every level: codes unique and prefixed by the parent's (and the redundant parent
   columns agreeing), every unit equal to the union of its children (within one 1e-6° step along the unit's
   boundary), no overlap between units of a level, each county's grids covering its real outline of the province
   file without gap or excess (within one step along its boundary), each county's counts those of its area at the
   seed district's density, hazards in their grids.
"""
from __future__ import annotations

import json
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import shapely

from .geojson import GRID_SIZE, atomic_write_text, feature_collection_text
from .validate import (EXPECTED_COUNTS, METRIC_CRS, OVERLAP_TOL_M2, REFERENCE_AREA_KM2, Report, _listed,
                       district_area_km2, expected_counts)

SLIVER_KM2 = 1.0            # holes of the union of the counties up to this area are slivers between neighbours
PROVINCE = ("330000", "浙江省")
from .io import MULTI_FILES
STEP_M = 0.12               # one 1e-6° step (≤ 0.111 m in latitude), in metres: the nesting tolerance per metre of
#                             boundary


# ------------------------------------------------------------------------------------------- partition
def _polys(g):
    parts = [p for p in shapely.get_parts(g) if shapely.get_type_id(p) == 3 and p.area > 0]
    if len(parts) == 1:
        return parts[0]
    return shapely.MultiPolygon(parts)


def _km2(geom, lat=29.5) -> float:
    return float(geom.area) * 111.320 * np.cos(np.radians(lat)) * 110.574


def partition(geoms, codes, fixed=()):
    """The outlines ``geoms`` (valid, snapped) made a partition: returns (new geoms, {code: what changed}).

    Priority: the codes in ``fixed`` first (never changed), then by code. A county loses its overlap with any
    county of higher priority; a hole of the union up to SLIVER_KM2 goes to the neighbour (not fixed) sharing
    the longest border."""
    geoms = list(geoms)
    n = len(geoms)
    rank = {k: (codes[k] not in fixed, codes[k]) for k in range(n)}
    order = sorted(range(n), key=lambda k: rank[k])
    tree = shapely.STRtree(np.array(geoms, dtype=object))
    changes: dict[str, list[str]] = {}
    for k in order:
        hits = [int(h) for h in tree.query(geoms[k], predicate="intersects") if h != k and rank[int(h)] < rank[k]]
        over = [h for h in hits if shapely.intersection(geoms[h], geoms[k]).area > 0]
        if over and codes[k] not in fixed:
            lost = shapely.intersection(geoms[k], shapely.union_all([geoms[h] for h in over]))
            geoms[k] = _polys(shapely.difference(geoms[k], shapely.union_all([geoms[h] for h in over]),
                                                 grid_size=GRID_SIZE))
            changes.setdefault(codes[k], []).append(
                f"lost {_km2(lost):.4f} km² of overlap to {', '.join(codes[h] for h in over)}")
    union = shapely.union_all(geoms, grid_size=GRID_SIZE)
    holes = [shapely.Polygon(r) for p in shapely.get_parts(union) for r in p.interiors]
    holes.sort(key=lambda h: (round(h.centroid.x, 6), round(h.centroid.y, 6)))
    for h in holes:
        if _km2(h) > SLIVER_KM2:
            continue
        border = {}
        for j in range(n):
            if codes[j] in fixed or not geoms[j].intersects(h):
                continue
            ln = shapely.intersection(geoms[j].boundary, h.boundary).length
            if ln > 0:
                border[j] = ln
        if not border:
            continue
        j = max(sorted(border, key=lambda j: codes[j]), key=lambda j: border[j])
        geoms[j] = _polys(shapely.union(geoms[j], h, grid_size=GRID_SIZE))
        changes.setdefault(codes[j], []).append(f"filled a sliver of {_km2(h):.4f} km²")
    return geoms, changes


def reference_outlines(src_dir: Path) -> dict:
    """{code: the county's real outline as the province file has it} (unchanged: for :func:`validate_multi`)."""
    from .county import catalogue

    return {c.code: g for c, g in catalogue(src_dir)}


def partition_outlines(src_dir: Path):
    """[(County, outline)] of the whole province file, in its order, made a clean partition (see the module)."""
    from .county import catalogue
    from .inputs import clean_outline, read_outline, seed_code

    cat = catalogue(src_dir)
    seed = seed_code(src_dir)
    geoms = []
    for c, raw in cat:
        if c.code == seed:
            geoms.append(read_outline(src_dir / "source_district_wgs84.geojson")[1])
        else:
            geoms.append(clean_outline([raw]))
    new, _ = partition(geoms, [c.code for c, _ in cat], fixed=(seed,) if seed else ())
    return [(c, g) for (c, _), g in zip(cat, new)]


# ------------------------------------------------------------------------------------------- selection
def select_counties(src_dir: Path, counties=None, city: str | None = None, province: bool = False):
    """The Counties a multi build covers (code order) and its root (level, code, name).

    ``counties``: codes or names as ``build --county`` takes them; ``city``: a city's name (湖州市 or 湖州);
    ``province``: all of them. Unknown or ambiguous names raise :class:`county.CountyError` with the
    candidates."""
    from .county import CountyError, catalogue, find_county

    cat = [c for c, _ in catalogue(src_dir)]
    if province:
        chosen = cat
    elif city:
        q = city.strip()
        chosen = [c for c in cat if q in (c.city, c.city.rstrip("市"))]
        if not chosen:
            cities = sorted({c.city for c in cat})
            raise CountyError(f"no city {q!r} in the province file; candidates: {', '.join(cities)}")
    else:
        chosen = [find_county(q, src_dir)[0] for q in counties or ()]
        if not chosen:
            raise CountyError("no county given")
    chosen = sorted({c.code: c for c in chosen}.values(), key=lambda c: c.code)
    cities = sorted({c.city for c in chosen})
    if province or len(cities) > 1:
        root = ("province", PROVINCE[0], PROVINCE[1])
    else:
        root = ("city", city_code(chosen[0].code), cities[0])
    return chosen, root


def city_code(county_code: str) -> str:
    return county_code[:4] + "00"


# ------------------------------------------------------------------------------------------- build
def _build_one(job):
    """Worker: one county's five texts, validated strictly (the single build's inputs, seeds and generator)."""
    county, outline_wkb, src_dir = job
    from .build import BuildError, generate, validate_texts
    from .county import county_inputs
    from .inputs import seed_code, seed_inputs

    t0 = time.time()
    src_dir = Path(src_dir)
    if county.code == seed_code(src_dir):
        inp = seed_inputs(src_dir)
    else:
        inp = county_inputs(county, shapely.from_wkb(outline_wkb), src_dir)
    try:
        texts = generate(inp)
    except BuildError as exc:   # reported with the county's code; the other counties still build
        return county.code, None, Report(errors=[f"{type(exc).__name__}: {exc}"]), time.time() - t0
    rep = validate_texts(texts)
    return county.code, texts, rep, time.time() - t0


def _lines(text: str) -> list[str]:
    body = text.split("\n")[1:-2]
    return [ln.rstrip(",") for ln in body]


def _fc(lines: list[str]) -> str:
    return '{"type":"FeatureCollection","features":[\n' + ",\n".join(lines) + "\n]}\n"


def combine(chosen, root, results) -> dict:
    """The layered texts of a multi build from the counties' texts ({code: texts})."""
    out = {}
    for level in ("towns", "zones", "grids"):
        out[level] = _fc([ln for c in chosen for ln in _lines(results[c.code][level])])
    hz = []
    for c in chosen:
        for ln in _lines(results[c.code]["hazards"]):
            f = json.loads(ln)
            f["properties"]["code"] = f"{c.code}-{f['properties']['code']}"
            hz.append(json.dumps(f, ensure_ascii=False, separators=(",", ":")))
    out["hazards"] = _fc(hz)
    county_feats, by_city = [], {}
    for c in chosen:
        d = json.loads(_lines(results[c.code]["district"])[0])
        geom = shapely.geometry.shape(d["geometry"])
        props = {"code": c.code, "name": c.name, "name_en": d["properties"].get("name_en"),
                 "city_code": city_code(c.code), "province_code": PROVINCE[0]}
        county_feats.append((props, geom))
        by_city.setdefault((city_code(c.code), c.city), []).append(geom)
    out["counties"] = feature_collection_text(county_feats)
    city_feats = [({"code": code, "name": name, "name_en": None, "province_code": PROVINCE[0]},
                   _polys(shapely.union_all(gs, grid_size=GRID_SIZE))) for (code, name), gs in sorted(by_city.items())]
    out["cities"] = feature_collection_text(city_feats)
    level, code, name = root
    whole = _polys(shapely.union_all([g for _, g in county_feats], grid_size=GRID_SIZE))
    out["district"] = feature_collection_text([({"code": code, "name": name, "name_en": None, "level": level},
                                                whole)])
    return out


def build_many(out_dir, src_dir=None, counties=None, city=None, province=False, workers=None,
               verbose=False) -> Report:
    """Build the selected counties (a process pool of ``workers``, default: every core), combine, validate
    every level, and write the layers only if everything is valid (else nothing is written). A selection of
    one county (a city of one county) is that county's single build."""
    from .build import DEFAULT_DIR, LEVEL_FILES

    t0 = time.time()
    src_dir = Path(src_dir) if src_dir else DEFAULT_DIR
    chosen, root = select_counties(src_dir, counties, city, province)
    if len(chosen) == 1:   # one county: its single set (no cities / counties layers)
        from .build import build

        return build(out_dir, src_dir, verbose=verbose, county=chosen[0].code)
    outlines = {c.code: g for c, g in partition_outlines(src_dir)}
    jobs = [(c, shapely.to_wkb(outlines[c.code]), str(src_dir)) for c in chosen]
    # biggest first, so that the pool's last jobs are short
    jobs.sort(key=lambda j: -outlines[j[0].code].area)
    workers = max(1, min(workers or os.cpu_count() or 1, len(jobs)))
    rep = Report()
    results = {}
    if workers == 1:
        done = map(_build_one, jobs)
    else:
        pool = ProcessPoolExecutor(max_workers=workers)
        done = pool.map(_build_one, jobs)
    try:
        for code, texts, crep, secs in done:
            results[code] = texts
            if verbose:
                print(f"  {code}: {'ok' if crep.ok else 'FAILED ' + crep.errors[0]} in {secs:.1f} s "
                      f"({crep.stats.get('grid_count')} grids)", flush=True)
            rep.errors.extend(f"{code}: {e}" for e in crep.errors)
            rep.warnings.extend(f"{code}: {w}" for w in crep.warnings)
    finally:
        if workers > 1:
            pool.shutdown()
    rep.stats["counties"] = len(chosen)
    rep.stats["root"] = f"{root[0]} {root[1]} {root[2]}"
    rep.stats["workers"] = workers
    rep.stats["generate_seconds"] = round(time.time() - t0, 1)
    if not rep.ok:
        return rep
    texts = combine(chosen, root, results)
    from .geojson import read_text_gdf
    layers = {k: read_text_gdf(v) for k, v in texts.items()}
    vrep = validate_multi(layers, reference_outlines(src_dir))
    rep.errors.extend(vrep.errors)
    rep.warnings.extend(vrep.warnings)
    rep.stats.update(vrep.stats)
    rep.stats["build_seconds"] = round(time.time() - t0, 1)
    if not rep.ok:
        return rep
    files = {**LEVEL_FILES, **MULTI_FILES}
    for level, text in texts.items():
        atomic_write_text(Path(out_dir) / files[level], text)
    return rep


# ------------------------------------------------------------------------------------------- validation
def _metric_geoms(gdf):
    return np.asarray(gdf.to_crs(METRIC_CRS).geometry.values)


def _overlaps_multi(level, mgeoms, codes, rep: Report):
    """No overlap between units of a level: inside one county (identical shared edges) none above
    OVERLAP_TOL_M2; across a county border none wider than one 1e-6° step on average (the counties' own
    units are snapped independently: slivers of 2·area/perimeter ≤ STEP_M along the border are rounding)."""
    tree = shapely.STRtree(mgeoms)
    i, j = tree.query(mgeoms, predicate="intersects")
    keep = i < j
    i, j = i[keep], j[keep]
    worst_in, worst_width = 0.0, 0.0
    msgs = []
    if len(i):
        inter = shapely.intersection(mgeoms[i], mgeoms[j])
        areas = shapely.area(inter)
        width = 2 * areas / np.maximum(shapely.length(inter), 1e-9)
        same = np.array([codes[a][:6] == codes[b][:6] for a, b in zip(i, j)])
        if same.any():
            worst_in = float(areas[same].max())
        cross = ~same & (areas > 0)
        if cross.any():
            worst_width = float(width[cross].max())
        for a, b, ar, w, s in zip(i, j, areas, width, same):
            if (s and ar > OVERLAP_TOL_M2) or (not s and ar > OVERLAP_TOL_M2 and w > STEP_M):
                msgs.append(f"{level}: {codes[a]} and {codes[b]} overlap by {ar:.1f} m² (mean width {w:.3f} m)")
    rep.stats[f"{level}_max_overlap_in_a_county_m2"] = round(worst_in, 4)
    rep.stats[f"{level}_max_overlap_width_across_counties_m"] = round(worst_width, 4)
    _listed(rep.errors, msgs)


def _nest_exact(child_level, parent_level, parent_codes, p_m, child_parent, c_m, rep: Report):
    """Each parent equals the union of its children within STEP_M per metre of the parent's boundary."""
    worst = 0.0
    msgs = []
    for k, pc in enumerate(parent_codes):
        kids = c_m[child_parent == pc]
        if len(kids) == 0:
            msgs.append(f"{parent_level} {pc}: no {child_level}")
            continue
        u = shapely.union_all(kids)
        diff = shapely.symmetric_difference(u, p_m[k]).area
        allowed = STEP_M * p_m[k].boundary.length + 1.0
        worst = max(worst, diff / allowed)
        if diff > allowed:
            msgs.append(f"{parent_level} {pc}: differs from the union of its {child_level} by {diff:.1f} m² "
                        f"(allowed {allowed:.1f} m²)")
    rep.stats[f"{parent_level}_vs_{child_level}_union_worst_share_of_tolerance"] = round(worst, 4)
    _listed(rep.errors, msgs)


def _parents_agree(layers, rep: Report):
    """The redundant parent columns agree with the chain: a grid's town and county are its zone's, a zone's
    county is its town's (a unit listed under one parent but drawn in another is caught by the nesting)."""
    msgs = []
    towns, zones, grids = layers["towns"], layers["zones"], layers["grids"]
    t2c = dict(zip(towns["code"].astype(str), towns["district_code"].astype(str)))
    z2t = dict(zip(zones["code"].astype(str), zones["town_code"].astype(str)))
    for c, t, d in zip(zones["code"].astype(str), zones["town_code"].astype(str), zones["district_code"].astype(str)):
        if t in t2c and t2c[t] != d:
            msgs.append(f"zone {c}: district_code {d} but its town {t} is in {t2c[t]}")
    for c, z, t, d in zip(grids["code"].astype(str), grids["zone_code"].astype(str), grids["town_code"].astype(str),
                          grids["district_code"].astype(str)):
        if z in z2t and (z2t[z] != t or t2c.get(t) != d):
            msgs.append(f"grid {c}: town/district {t}/{d} but its zone {z} is in {z2t[z]}/{t2c.get(z2t[z])}")
    _listed(rep.errors, msgs)


def _covers_reference(layers, reference: dict, rep: Report):
    """Each county's grids cover its real outline (``reference``: {code: outline of the province file, WGS84})
    without gap and without excess: each of ``outline − grids`` and ``grids − outline`` within STEP_M m² per
    metre of the outline's boundary (a band of one 1e-6° step: what snapping the cells can move); every county
    of the set has a reference outline."""
    import geopandas as gpd

    grids = layers["grids"]
    gm = _metric_geoms(grids)
    gcounty = grids["district_code"].astype(str).to_numpy()
    codes = layers["counties"]["code"].astype(str).to_numpy()
    msgs, worst = [], 0.0
    gap_total = excess_total = 0.0
    for code in codes:
        if code not in reference:
            msgs.append(f"county {code}: no real outline to compare with")
            continue
        ref = np.asarray(gpd.GeoSeries([reference[code]], crs="EPSG:4326").to_crs(METRIC_CRS).values)[0]
        ref = shapely.make_valid(ref)
        u = shapely.union_all(gm[gcounty == code])
        gap = shapely.difference(ref, u).area
        excess = shapely.difference(u, ref).area
        gap_total += gap
        excess_total += excess
        allowed = STEP_M * ref.boundary.length
        worst = max(worst, max(gap, excess) / allowed)
        if gap > allowed or excess > allowed:
            msgs.append(f"county {code}: its grids leave {gap:.0f} m² of its real outline uncovered and cover "
                        f"{excess:.0f} m² outside it (allowed {allowed:.0f} m² each)")
    rep.stats["real_outlines_gap_m2"] = round(gap_total, 1)
    rep.stats["real_outlines_excess_m2"] = round(excess_total, 1)
    rep.stats["real_outlines_worst_share_of_tolerance"] = round(worst, 4)
    _listed(rep.errors, msgs)


def validate_multi(layers: dict, reference: dict | None = None) -> Report:
    """Validate a multi-county set: ``layers`` = {district (the root), cities, counties, towns, zones, grids,
    hazards} GeoDataFrames (EPSG:4326); ``reference`` = {county code: its real outline (WGS84)}, e.g. the
    province file's (:func:`reference_outlines`), to check the grids against (else only the set's own levels).

    Tolerances: nesting, each unit = the union of its children within STEP_M (0.12) m² per metre of the unit's
    boundary (+ 1 m²); overlaps inside a county ≤ OVERLAP_TOL_M2, across a county border no wider than one 1e-6°
    step; the real outlines, gap and excess each ≤ STEP_M m² per metre of boundary; counts, exactly those of
    :func:`validate.expected_counts` of the county's area: the seed district's counts (17 / 46 / 538 on
    862.86 km²) in proportion, rounded (±0.5), with the floors of one town, one zone per town and 8–18 grids per
    zone."""
    rep = Report()
    root = layers["district"]
    if len(root) != 1:
        rep.errors.append(f"root: expected 1 feature, got {len(root)}")
        return rep
    root_code = str(root.iloc[0]["code"])
    chain = [("city", "cities", None), ("county", "counties", "city_code"), ("town", "towns", "district_code"),
             ("zone", "zones", "town_code"), ("grid", "grids", "zone_code")]
    codes = {"root": np.array([root_code])}
    metric = {"root": _metric_geoms(root)}
    parent_of = {"city": "root", "county": "city", "town": "county", "zone": "town", "grid": "zone"}
    for level, key, col in chain:
        gdf = layers[key]
        c = gdf["code"].astype(str).to_numpy()
        codes[level] = c
        rep.stats[f"{level}_count"] = len(c)
        dup = sorted({x for x in c if (c == x).sum() > 1}) if len(set(c)) != len(c) else []
        _listed(rep.errors, [f"{level}: duplicate code {x}" for x in dup])
        bad_geom = [f"{level} {x}: invalid geometry" for x, g in zip(c, gdf.geometry.values)
                    if g is None or not g.is_valid or g.is_empty]
        _listed(rep.errors, bad_geom)
        if bad_geom:
            return rep
        metric[level] = _metric_geoms(gdf)
        parent = parent_of[level]
        if col is None:   # cities under the root: same province, or the root city itself
            parents = np.array([root_code] * len(c))
            ok = [x[:2] == root_code[:2] and (root_code.endswith("0000") or x == root_code) for x in c]
        else:
            parents = gdf[col].astype(str).to_numpy()
            known = set(codes[parent])
            unknown = [f"{level} {x}: unknown parent {p}" for x, p in zip(c, parents) if p not in known]
            _listed(rep.errors, unknown)
            if level == "county":
                ok = [x[:4] == p[:4] for x, p in zip(c, parents)]
            else:
                ok = [x.startswith(p + "-") for x, p in zip(c, parents)]
        _listed(rep.errors, [f"{level} {x}: code not prefixed by its {parent}'s {p}"
                             for x, p, good in zip(c, parents, ok) if not good])
        _overlaps_multi(level, metric[level], c, rep)
        _nest_exact(level, parent, codes[parent], metric[parent], parents, metric[level], rep)
    _parents_agree(layers, rep)
    if reference is not None:
        _covers_reference(layers, reference, rep)
    # counts per county: those of its area at the seed district's density (what a single build makes)
    counties = layers["counties"]
    msgs = []
    worst_dev, total_area = 0.0, 0.0
    for code, g in zip(counties["code"].astype(str), counties.geometry.values):
        import geopandas as gpd

        area = district_area_km2(gpd.GeoDataFrame(geometry=[g], crs="EPSG:4326"))
        total_area += area
        exp = expected_counts(area)
        got = {"town": int((layers["towns"]["district_code"].astype(str) == code).sum()),
               "zone": int((layers["zones"]["district_code"].astype(str) == code).sum()),
               "grid": int((layers["grids"]["district_code"].astype(str) == code).sum())}
        worst_dev = max(worst_dev, abs(got["grid"] - EXPECTED_COUNTS["grid"] * area / REFERENCE_AREA_KM2))
        for lv in got:
            if got[lv] != exp[lv]:
                msgs.append(f"county {code}: {got[lv]} {lv}s, expected {exp[lv]} for its area")
    _listed(rep.errors, msgs)
    rep.stats["area_km2"] = round(total_area, 1)
    rep.stats["grids_at_seed_density"] = round(EXPECTED_COUNTS["grid"] * total_area / REFERENCE_AREA_KM2, 1)
    rep.stats["grids_worst_county_deviation_from_proportion"] = round(worst_dev, 3)
    # hazards: codes unique, in the grid they name
    hz = layers.get("hazards")
    if hz is not None and len(hz):
        from .locate import GridLocator

        hc = hz["code"].astype(str)
        if hc.duplicated().any():
            rep.errors.append(f"hazards: {int(hc.duplicated().sum())} duplicate codes")
        got = GridLocator(layers["grids"]).locate_many(hz.geometry.x.to_numpy(), hz.geometry.y.to_numpy())
        bad = [f"hazard {c}: recorded in grid {g} but located in {l}"
               for c, g, l in zip(hc, hz["grid_code"], got) if g != l]
        rep.stats["hazards_count"] = len(hz)
        _listed(rep.errors, bad)
    return rep
