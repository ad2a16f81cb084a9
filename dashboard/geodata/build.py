"""Deterministic generation of the demo geodata of one county-level unit (the root unit).

Real input: the root unit's outline. Everything below it is SYNTHETIC, generated from town
seats with rough population weights (:mod:`dashboard.geodata.inputs`: by default the seed
district's ``geodata/source_district_wgs84.geojson`` and 17 hand-placed seats in
``geodata/source_towns.csv``; with ``--county`` any county of the province file, with
synthetic seats and counts scaled by area, :mod:`dashboard.geodata.county`):

1. a population surface = sum of gaussian kernels at the seats (+ a rural floor);
2. ~9,000 base cells = Voronoi of density-weighted random points (fixed seed, one Lloyd
   step), clipped to the district and snapped to the 1e-6° grid;
3. towns = power diagram of the seats (weights from population weight and kind) evaluated
   on the base cells, made contiguous (stray pieces go to the neighbour sharing the longest
   border);
4. zones (46 by default) = density-weighted k-means of the cells inside each town; grids (538) =
   density-weighted k-means inside each zone, both made contiguous the same way;
5. every level is a union of base cells with snap rounding at 1e-6°, so shared edges are
   identical between neighbours and across levels (no slivers after rounding).

Same seed -> same bytes. Run: ``python -m dashboard.geodata build [--county 德清]``.
"""
from __future__ import annotations

import time
from collections import defaultdict, deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import shapely

from . import names as N
from .geojson import GRID_SIZE, atomic_write_text, feature_collection_text, read_text_gdf
from .inputs import BuildInputs, Frame
from .validate import Report, validate_layers

# power-diagram weight per unit of population_weight (km² per thousand residents) by kind, unless the
# inputs set one per town; kernel width (km) by kind, unless set per town
POWER_K = {"street": 0.012, "town": 0.05, "township": 0.05}
SIGMA_KIND_KM = 2.0
RURAL_FLOOR_SHARE = 0.08       # share of population spread evenly over the district
KIND_UNIT_FACTOR = {"street": 1.0, "town": 0.75, "township": 0.7}

TOWN_COLS = ["code", "abbr", "name", "name_en", "kind", "district_code", "seat_lon", "seat_lat",
             "population_weight"]
ZONE_COLS = ["code", "name", "name_en", "town_code", "district_code", "station_name", "station_lon",
             "station_lat", "chief", "deputy", "station_master", "dept_staff", "n_grids"]
GRID_COLS = ["code", "name", "name_en", "zone_code", "town_code", "district_code", "registered_units",
             "population", "worker_name", "worker_full_time", "worker_stars"]
HAZARD_COLS = ["code", "name", "kind", "risk", "major", "ring_m", "grid_code", "zone_code",
               "town_code"]
HAZARD_KINDS = ["hazchem", "gas_station", "sanheyi", "construction"]

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "geodata"


class BuildError(RuntimeError):
    pass


# ----------------------------------------------------------------------------- helpers
def apportion(weights, total, lo=0, hi=None):
    """Largest-remainder apportionment of ``total`` with bounds ``lo <= n_i <= hi``.

    Bounds are fixed greedily (below ``lo``, then above ``hi``, …); when that leaves no weight free with the sum
    still off (very unequal weights under both bounds: an archipelago's zones), :func:`_apportion_clipped`
    gives the result instead (a result the greedy way gets right is unchanged)."""
    w = np.asarray(weights, dtype=float)
    n = len(w)
    hi_arr = np.full(n, np.inf if hi is None else hi)
    fixed = np.full(n, -1.0)
    for _ in range(n + 1):
        free = fixed < 0
        if not free.any() or w[free].sum() <= 0:
            if not free.any() and fixed.sum() == total:
                q = fixed
                break
            return _apportion_clipped(w, total, lo, hi_arr)
        rem_total = total - fixed[~free].sum()
        q = np.where(free, w / w[free].sum() * rem_total, fixed)
        changed = False
        for i in np.nonzero(free)[0]:
            if q[i] < lo:
                fixed[i] = lo
                changed = True
            elif q[i] > hi_arr[i]:
                fixed[i] = hi_arr[i]
                changed = True
        if not changed:
            break
    base = np.floor(q).astype(int)
    short = int(total - base.sum())
    frac = q - base
    order = sorted(range(n), key=lambda i: (-frac[i], i))
    k = 0
    while short > 0:
        i = order[k % n]
        if base[i] < hi_arr[i]:
            base[i] += 1
            short -= 1
        k += 1
    return base


def _apportion_clipped(w, total, lo, hi_arr):
    """``total`` as n_i = clip(λ·w_i, lo, hi) with λ such that they sum to ``total``, rounded by largest
    remainder within the bounds."""
    n = len(w)
    w = np.ones(n) if w.sum() <= 0 else np.maximum(w, 1e-9 * w.max())   # a zero weight can still grow
    lo_arr = np.full(n, float(lo))
    if not lo_arr.sum() <= total <= hi_arr.sum():
        raise BuildError(f"cannot apportion {total} into {n} parts of {lo}..{hi_arr.max()}")
    a, b = 0.0, 1.0
    while np.clip(b * w, lo_arr, hi_arr).sum() < total:
        b *= 2
    for _ in range(200):
        m = (a + b) / 2
        a, b = (m, b) if np.clip(m * w, lo_arr, hi_arr).sum() < total else (a, m)
    q = np.clip(b * w, lo_arr, hi_arr)
    base = np.clip(np.floor(q), lo_arr, hi_arr).astype(int)
    frac = q - base
    for i in sorted(range(n), key=lambda i: (-frac[i], i)):
        if base.sum() >= total:
            break
        if base[i] < hi_arr[i]:
            base[i] += 1
    for i in sorted(range(n), key=lambda i: (frac[i], i)):
        if base.sum() <= total:
            break
        if base[i] > lo:
            base[i] -= 1
    return base


def person_name(rng) -> str:
    s = N.SURNAMES[rng.integers(len(N.SURNAMES))]
    k = 1 if rng.random() < 0.3 else 2
    return s + "".join(N.GIVEN[rng.integers(len(N.GIVEN))] for _ in range(k))


class PlaceNamer:
    """Unique two-character village/community names; none that is part of a name in ``avoid`` (the seed
    district's places, for another county)."""

    def __init__(self, rng, avoid=()):
        combos = [a + b for a in N.PLACE_A for b in N.PLACE_B if a != b]
        idx = rng.permutation(len(combos))
        taken = "|".join(avoid)
        self._names = [combos[i] for i in idx if not (taken and combos[i] in taken)]
        self._k = 0

    def next(self) -> str:
        name = self._names[self._k % len(self._names)]
        self._k += 1
        return name


# ------------------------------------------------------------------- population surface
@dataclass
class Towns:
    df: pd.DataFrame          # the columns of source_towns.csv
    frame: Frame
    x: np.ndarray             # seat km
    y: np.ndarray
    sigma: np.ndarray
    weight: np.ndarray        # population weight (thousands)


def load_towns(inp: BuildInputs) -> Towns:
    df = inp.towns
    x, y = inp.frame.to_km(df.seat_lon.to_numpy(float), df.seat_lat.to_numpy(float))
    sigma = np.array([inp.sigma_km.get(c, SIGMA_KIND_KM) for c in df.code])
    return Towns(df=df, frame=inp.frame, x=x, y=y, sigma=sigma, weight=df.population_weight.to_numpy(float))


def density(t: Towns, x, y, area_km2: float):
    """Residents (thousands) per km² at km coordinates x, y."""
    x = np.asarray(x)[..., None]
    y = np.asarray(y)[..., None]
    d2 = (x - t.x) ** 2 + (y - t.y) ** 2
    k = np.exp(-d2 / (2 * t.sigma ** 2)) / (2 * np.pi * t.sigma ** 2)
    total = t.weight.sum()
    return (1 - RURAL_FLOOR_SHARE) * (k * t.weight).sum(-1) + RURAL_FLOOR_SHARE * total / area_km2


# ------------------------------------------------------------------------ base cells
def _sample_points(rng, district_km, t: Towns, n, area_km2):
    minx, miny, maxx, maxy = district_km.bounds
    shapely.prepare(district_km)
    gx = np.linspace(minx, maxx, 200)
    gy = np.linspace(miny, maxy, 200)
    GX, GY = np.meshgrid(gx, gy)
    rho_max = density(t, GX.ravel(), GY.ravel(), area_km2).max()
    pts = []
    got = 0
    while got < n:
        m = 40000
        px = rng.uniform(minx, maxx, m)
        py = rng.uniform(miny, maxy, m)
        q = np.clip((density(t, px, py, area_km2) / rho_max) ** 0.55, 0.06, 1.0)
        keep = (rng.random(m) < q) & shapely.contains_xy(district_km, px, py)
        pts.append(np.column_stack([px[keep], py[keep]]))
        got += int(keep.sum())
    return np.concatenate(pts)[:n]


def _voronoi_cells_km(pts, district_km):
    env = shapely.box(*district_km.buffer(50).bounds)
    vor = shapely.voronoi_polygons(shapely.multipoints(pts), extend_to=env, ordered=True)
    return np.asarray(shapely.get_parts(vor))


def build_base_cells(rng, district_deg, t: Towns, n_points: int):
    district_km = shapely.transform(district_deg, t.frame.deg_to_km)
    area_km2 = district_km.area
    pts = _sample_points(rng, district_km, t, n_points, area_km2)
    # one Lloyd step (regularises the random points, keeps the density gradient)
    cells = _voronoi_cells_km(pts, district_km)
    clipped = shapely.intersection(cells, district_km)
    cen = shapely.point_on_surface(clipped)
    cen_c = shapely.centroid(clipped)
    inside = shapely.contains(district_km, cen_c)
    cen = np.where(inside, cen_c, cen)
    pts = shapely.get_coordinates(cen)
    cells_km = _voronoi_cells_km(pts, district_km)
    cells = shapely.transform(cells_km, t.frame.km_to_deg)
    shapely.prepare(district_deg)
    inside = shapely.contains(district_deg, cells)
    out = np.where(inside, cells, shapely.intersection(cells, district_deg))
    parts = shapely.get_parts(out)
    parts = parts[shapely.get_type_id(parts) == 3]
    parts = shapely.set_precision(parts, GRID_SIZE)
    parts = shapely.get_parts(parts)
    parts = parts[(shapely.get_type_id(parts) == 3) & (shapely.area(parts) > 0)]
    # deterministic order: by rounded centroid
    c = shapely.get_coordinates(shapely.centroid(parts))
    order = np.lexsort((np.round(c[:, 1], 7), np.round(c[:, 0], 7)))
    return parts[order]


def cell_adjacency(cells, frame: Frame):
    """Shared-edge adjacency from identical (rounded) segments: list of dict j->length km."""
    rings, ring_cell = shapely.get_rings(cells, return_index=True)
    coords, ring_idx = shapely.get_coordinates(rings, return_index=True)
    ic = np.rint(coords / GRID_SIZE).astype(np.int64)
    same = ring_idx[:-1] == ring_idx[1:]
    a = ic[:-1][same]
    b = ic[1:][same]
    seg_cell = ring_cell[ring_idx[:-1][same]]
    swap = (a[:, 0] > b[:, 0]) | ((a[:, 0] == b[:, 0]) & (a[:, 1] > b[:, 1]))
    lo = np.where(swap[:, None], b, a)
    hi = np.where(swap[:, None], a, b)
    keys = np.column_stack([lo, hi])
    _, inv, cnt = np.unique(keys, axis=0, return_inverse=True, return_counts=True)
    inv = inv.ravel()
    kx, ky = frame.kx, frame.ky
    seg_len = np.hypot((hi[:, 0] - lo[:, 0]) * GRID_SIZE * kx, (hi[:, 1] - lo[:, 1]) * GRID_SIZE * ky)
    shared = cnt[inv] == 2
    order = np.argsort(inv[shared], kind="stable")
    sc = seg_cell[shared][order]
    sl = seg_len[shared][order]
    nbrs: list[dict[int, float]] = [dict() for _ in range(len(cells))]
    for k in range(0, len(sc), 2):
        i, j = int(sc[k]), int(sc[k + 1])
        if i == j:
            continue
        nbrs[i][j] = nbrs[i].get(j, 0.0) + sl[k]
        nbrs[j][i] = nbrs[j].get(i, 0.0) + sl[k]
    return nbrs


def make_contiguous(labels, nbrs, area, parent=None, anchors=None, max_iter=60):
    """Reassign disconnected pieces of each label to the neighbouring label (same parent)
    sharing the longest border.  The piece containing the anchor cell (else the largest
    piece by area) keeps the label."""
    labels = labels.copy()
    n = len(labels)
    anchors = anchors or {}
    for _ in range(max_iter):
        comp = np.full(n, -1)
        comps = []
        for s in range(n):
            if comp[s] >= 0:
                continue
            cid = len(comps)
            members = [s]
            comp[s] = cid
            dq = deque([s])
            while dq:
                i = dq.popleft()
                for j in nbrs[i]:
                    if comp[j] < 0 and labels[j] == labels[i] and (parent is None or parent[j] == parent[i]):
                        comp[j] = cid
                        members.append(j)
                        dq.append(j)
            comps.append(members)
        by_label = defaultdict(list)
        for cid, m in enumerate(comps):
            by_label[labels[m[0]]].append(cid)
        changed = False
        for lab in sorted(by_label):
            cids = by_label[lab]
            if len(cids) == 1:
                continue
            if lab in anchors:
                keep = comp[anchors[lab]]
                if keep not in cids:
                    keep = max(cids, key=lambda c: (area[comps[c]].sum(), -c))
            else:
                keep = max(cids, key=lambda c: (area[comps[c]].sum(), -c))
            for cid in sorted(cids):
                if cid == keep:
                    continue
                members = comps[cid]
                mset = set(members)
                border = defaultdict(float)
                for i in members:
                    for j, ln in nbrs[i].items():
                        if j not in mset and labels[j] != lab and (parent is None or parent[j] == parent[i]):
                            border[labels[j]] += ln
                if border:
                    new = max(sorted(border), key=lambda L: border[L])
                    labels[members] = new
                    changed = True
        if not changed:
            return labels
    return labels


def weighted_kmeans(rng, xy, w, k, iters=30):
    n = len(xy)
    if k >= n:
        return np.arange(n) % k
    # k-means++ init (deterministic via rng)
    centers = [xy[rng.choice(n, p=w / w.sum())]]
    for _ in range(1, k):
        d2 = np.min(((xy[:, None, :] - np.array(centers)[None]) ** 2).sum(-1), axis=1)
        p = w * d2
        centers.append(xy[rng.choice(n, p=p / p.sum())])
    c = np.array(centers)
    lab = np.zeros(n, dtype=int)
    for _ in range(iters):
        d2 = ((xy[:, None, :] - c[None]) ** 2).sum(-1)
        lab = d2.argmin(1)
        for j in range(k):
            m = lab == j
            if m.any():
                c[j] = (xy[m] * w[m, None]).sum(0) / w[m].sum()
            else:  # re-seed an empty centre at the worst-served point
                far = (d2.min(1) * w).argmax()
                c[j] = xy[far]
    return lab


def partition(rng, cell_idx, xy, w, area, nbrs, parent_arr, k, label_offset):
    """Split the cells ``cell_idx`` (all the cells of one parent: ``parent_arr`` is the same on them and on no
    other cell) into exactly k contiguous groups. Returns labels for those cells (global labels
    label_offset..label_offset+k-1).

    Works on the parent's cells only (local indices, the same order): no cell outside the parent can join or
    border a group of it, so the result is the one of the whole-district walk, in time of the parent's size
    (the whole-district walk made a big county's build quadratic)."""
    cell_idx = np.asarray(cell_idx)
    same = parent_arr == parent_arr[cell_idx[0]]
    if int(same.sum()) != len(cell_idx) or not same[cell_idx].all():
        raise BuildError("partition: cell_idx must be exactly the cells of one parent")
    loc = {int(g): i for i, g in enumerate(cell_idx)}
    sub_nbrs = [{loc[j]: ln for j, ln in nbrs[int(g)].items() if j in loc} for g in cell_idx]
    sub_area = area[cell_idx]
    sub_xy = xy[cell_idx]
    sub_w = w[cell_idx]
    lab = weighted_kmeans(rng, sub_xy, sub_w, k)
    full = lab + label_offset
    for _ in range(3 * k):
        full = make_contiguous(full, sub_nbrs, sub_area)
        present = sorted(set(full.tolist()))
        if len(present) == k:
            break
        # a group vanished: split the largest group in two
        missing = [label_offset + j for j in range(k) if label_offset + j not in present]
        sizes = {L: (full == L).sum() for L in present}
        big = max(present, key=lambda L: (sizes[L], -L))
        m = np.nonzero(full == big)[0]
        if len(m) < 2:
            break
        sl = weighted_kmeans(rng, sub_xy[m], sub_w[m], 2)
        full[m[sl == 1]] = missing[0]
    return full


# ------------------------------------------------------------------------------ build
def _union(geoms):
    g = shapely.union_all(geoms, grid_size=GRID_SIZE)
    if shapely.get_type_id(g) == 6 and len(g.geoms) == 1:
        g = g.geoms[0]
    return g


def _sort_key_we(geom):
    c = geom.centroid
    return (round(c.x, 6), -round(c.y, 6))


def _sort_key_ns(geom):
    c = geom.centroid
    return (-round(c.y, 6), round(c.x, 6))


class TooFewCells(BuildError):
    pass


DENSER = (1.5, 2.0, 3.0)   # base points × these, in turn, when a zone has fewer cells than grids


def generate(inp: BuildInputs, verbose=False):
    """Return dict level -> FeatureCollection text (not yet written).

    A zone with fewer base cells than its grids (an island alone in its zone) is first joined to the nearest zone
    of its town in the same attempt (:func:`_merge_small_zones`, only when some zone is that small); if a zone is
    still too small, the build tries again with denser base cells (×1.5, ×2, ×3), then with every small zone
    joined: deterministic, and a build in which every zone holds its grids at once is unchanged."""
    import dataclasses

    try:
        return _generate(inp, verbose)
    except TooFewCells as exc:
        err = exc
    for f in DENSER:
        if verbose:
            print(f"  {err}: again with {f}× the base cells")
        try:
            return _generate(dataclasses.replace(inp, n_base_points=round(inp.n_base_points * f)), verbose)
        except TooFewCells as exc:
            err = exc
    if verbose:
        print(f"  {err}: again, small zones joined to their nearest neighbour")
    return _generate(inp, verbose, island_fix=True)


def _merge_small_zones(zone_lab, zone_town, xy, min_cells=24):
    """The last resort of :func:`generate`: a zone of fewer than ``min_cells`` cells (a small island alone in
    its zone) joins the nearest zone of its town, and the town's biggest zone is cut in two halves across its
    longer side in its place (the same number of zones; the joined zone is in several pieces, as islands are)."""
    zone_lab = zone_lab.copy()
    for _ in range(4 * len(zone_town)):
        cells = np.bincount(zone_lab, minlength=len(zone_town))
        small = [z for z in range(len(zone_town)) if cells[z] < min_cells
                 and (zone_town == zone_town[z]).sum() > 1]
        if not small:
            break
        z = small[0]
        mates = [y for y in np.nonzero(zone_town == zone_town[z])[0] if y != z]
        here = xy[zone_lab == z].mean(0)
        near = min(mates, key=lambda y: (((xy[zone_lab == y] - here) ** 2).sum(1).min(), y))
        zone_lab[zone_lab == z] = near
        big = max(mates, key=lambda y: ((zone_lab == y).sum(), -y))
        m = np.nonzero(zone_lab == big)[0]
        axis = int(np.ptp(xy[m], axis=0).argmax())          # halves across its longer side
        order = m[np.argsort(xy[m, axis], kind="stable")]
        zone_lab[order[len(order) // 2:]] = z
    return zone_lab


def _grids_per_zone(zone_lab, mass, n_z, n_grids):
    zmass = np.bincount(zone_lab, weights=mass, minlength=n_z)
    zcells = np.bincount(zone_lab, minlength=n_z)
    return apportion(zmass ** 0.5 * zcells ** 0.5, n_grids, lo=8, hi=18)


def _generate(inp: BuildInputs, verbose=False, island_fix=False):
    t0 = time.time()
    rng = np.random.default_rng(inp.seed)
    district = inp.outline
    t = load_towns(inp)
    tdf = t.df
    n_towns = len(tdf)
    root = inp.code

    cells = build_base_cells(rng, district, t, inp.n_base_points)
    nc = len(cells)
    cen = shapely.get_coordinates(shapely.centroid(cells))
    cx, cy = inp.frame.to_km(cen[:, 0], cen[:, 1])
    xy = np.column_stack([cx, cy])
    area = shapely.area(cells) * inp.frame.kx * inp.frame.ky
    area_km2 = float(area.sum())
    rho = density(t, cx, cy, area_km2)
    mass = rho * area                                   # thousands of residents (relative)
    nbrs = cell_adjacency(cells, inp.frame)
    if verbose:
        print(f"  base cells: {nc}  ({time.time() - t0:.1f}s)")

    # towns: power diagram on the cells
    W = np.array([inp.power_k_town.get(c, POWER_K[k]) * w for c, k, w in zip(tdf.code, tdf.kind, t.weight)])
    pd2 = (cx[:, None] - t.x) ** 2 + (cy[:, None] - t.y) ** 2 - W
    town_lab = pd2.argmin(1)
    seat_pts = shapely.points(tdf.seat_lon.to_numpy(float), tdf.seat_lat.to_numpy(float))
    tree = shapely.STRtree(cells)
    anchors = {}
    for ti, p in enumerate(seat_pts):
        hit = tree.query(p, predicate="intersects")
        if len(hit) == 0:
            raise BuildError(f"town seat {tdf.code[ti]} is outside the district")
        anchors[ti] = int(hit.min())
        town_lab[anchors[ti]] = ti
    town_lab = make_contiguous(town_lab, nbrs, area, anchors=anchors)
    if verbose:
        print(f"  towns ({time.time() - t0:.1f}s)")

    # zones
    zones_per_town = apportion(t.weight, inp.n_zones, lo=1)
    zone_lab = np.full(nc, -1)
    zone_town = []
    off = 0
    kw = 0.5 * mass / mass.sum() + 0.5 * area / area.sum()
    for ti in range(n_towns):
        idx = np.nonzero(town_lab == ti)[0]
        k = int(zones_per_town[ti])
        zone_lab[idx] = partition(rng, idx, xy, kw, area, nbrs, town_lab, k, off)
        zone_town += [ti] * k
        off += k
    zone_town = np.array(zone_town)
    n_z = off
    grids_per_zone = _grids_per_zone(zone_lab, mass, n_z, inp.n_grids)
    if island_fix or (np.bincount(zone_lab, minlength=n_z) < grids_per_zone).any():
        # a zone too small for its grids (an island alone in its zone): joined to the nearest zone of its town
        zone_lab = _merge_small_zones(zone_lab, zone_town, xy)
        grids_per_zone = _grids_per_zone(zone_lab, mass, n_z, inp.n_grids)
        if verbose:
            print(f"  small zones joined to their nearest neighbour ({time.time() - t0:.1f}s)")
    grid_lab = np.full(nc, -1)
    grid_zone = []
    off = 0
    gw = 0.7 * mass / mass.sum() + 0.3 * area / area.sum()
    for zi in range(n_z):
        idx = np.nonzero(zone_lab == zi)[0]
        k = int(grids_per_zone[zi])
        if len(idx) < k:
            raise TooFewCells(f"zone {zi} has {len(idx)} cells for {k} grids")
        grid_lab[idx] = partition(rng, idx, xy, gw, area, nbrs, zone_lab, k, off)
        grid_zone += [zi] * k
        off += k
    grid_zone = np.array(grid_zone)
    n_g = off
    if verbose:
        cpg = np.bincount(grid_lab, minlength=n_g)
        print(f"  zones/grids ({time.time() - t0:.1f}s); cells per grid min {cpg.min()} "
              f"median {np.median(cpg)} max {cpg.max()}")

    # geometry: every level a union of base cells (snap rounded)
    order = np.argsort(grid_lab, kind="stable")
    bounds = np.searchsorted(grid_lab[order], np.arange(n_g + 1))
    grid_geoms = np.array([_union(cells[order[bounds[g]:bounds[g + 1]]]) for g in range(n_g)], dtype=object)
    zone_geoms = np.array([_union(grid_geoms[grid_zone == z]) for z in range(n_z)], dtype=object)
    town_geoms = np.array([_union(zone_geoms[zone_town == ti]) for ti in range(n_towns)], dtype=object)
    if verbose:
        print(f"  unions ({time.time() - t0:.1f}s)")

    # ---------------------------------------------------------------- attributes
    abbr = tdf.code.tolist()
    town_code = [f"{root}-{a}" for a in abbr]
    # zone order within town: west -> east
    zone_code = [None] * n_z
    zone_rank = {}
    for ti in range(n_towns):
        zs = [z for z in range(n_z) if zone_town[z] == ti]
        zs.sort(key=lambda z: _sort_key_we(zone_geoms[z]))
        for r, z in enumerate(zs):
            zone_code[z] = f"{town_code[ti]}-{r + 1:02d}"
            zone_rank[z] = r
    grid_code = [None] * n_g
    for z in range(n_z):
        gs = [g for g in range(n_g) if grid_zone[g] == z]
        gs.sort(key=lambda g: _sort_key_ns(grid_geoms[g]))
        for r, g in enumerate(gs):
            grid_code[g] = f"{zone_code[z]}-{r + 1:02d}"

    # population per grid: town total = population_weight * 1000, split by cell mass
    gmass = np.bincount(grid_lab, weights=mass, minlength=n_g)
    grid_town = zone_town[grid_zone]
    grid_pop = np.zeros(n_g, dtype=int)
    for ti in range(n_towns):
        gs = np.nonzero(grid_town == ti)[0]
        grid_pop[gs] = apportion(gmass[gs], int(round(t.weight[ti] * 1000)), lo=0)
    fac = np.array([inp.unit_factor.get(abbr[ti], KIND_UNIT_FACTOR[tdf.kind[ti]]) for ti in grid_town])
    grid_units = apportion(np.maximum(grid_pop * fac, 1.0), inp.total_units, lo=1)

    rng_attr = np.random.default_rng(inp.seed + 1)
    score = np.log(grid_pop + 1) + rng_attr.normal(0, 0.6, n_g)
    full_time = np.zeros(n_g, dtype=bool)
    full_time[np.argsort(-score, kind="stable")[:inp.n_full_time]] = True
    stars = np.where(full_time, rng_attr.choice([2, 3, 4, 5], n_g, p=[.1, .3, .4, .2]),
                     rng_attr.choice([1, 2, 3, 4, 5], n_g, p=[.1, .3, .35, .2, .05]))
    workers = [person_name(rng_attr) for _ in range(n_g)]
    garea = np.bincount(grid_lab, weights=area, minlength=n_g)

    # zone names: the inputs' stems per town, else numbered after the town (德清2-3片区)
    zone_name = [None] * n_z
    zone_name_en = [None] * n_z
    for ti in range(n_towns):
        zs = sorted([z for z in range(n_z) if zone_town[z] == ti], key=lambda z: zone_rank[z])
        if abbr[ti] not in inp.zone_stems:
            for z in zs:
                zone_name[z] = f"{inp.short_name}{ti + 1}-{zone_rank[z] + 1}片区"
                zone_name_en[z] = f"Zone {ti + 1}-{zone_rank[z] + 1}"
            continue
        seat_zone = next((z for z in zs if zone_geoms[z].intersects(seat_pts[ti])), zs[0])
        stems = list(inp.zone_stems.get(abbr[ti], []))
        if not stems:
            stems = [(tdf.name_zh[ti].rstrip("街道镇乡"), tdf.name_en[ti])]
        ordered = [seat_zone] + [z for z in zs if z != seat_zone]
        for k, z in enumerate(ordered):
            if k < len(stems):
                zh, en = stems[k]
            else:
                base_zh, base_en = stems[0]
                dzh, den = N.DIRECTION_SUFFIX[(k - len(stems)) % 4]
                zh, en = base_zh + dzh, f"{base_en} {den}"
            zone_name[z] = f"{zh}片区"
            zone_name_en[z] = f"{en} Zone"
    # grid names: communities (urban) / villages (rural), 1-4 grids each
    namer = PlaceNamer(np.random.default_rng(inp.seed + 2), inp.avoid_names)
    grid_name = [None] * n_g
    grid_name_en = [None] * n_g
    for z in range(n_z):
        gs = sorted([g for g in range(n_g) if grid_zone[g] == z], key=lambda g: grid_code[g])
        k = 0
        while k < len(gs):
            size = int(rng_attr.integers(1, 5))
            group = gs[k:k + size]
            place = namer.next()
            dens = grid_pop[group].sum() / max(garea[group].sum(), 1e-9)
            urban = tdf.kind[zone_town[z]] == "street" or dens > 3000
            en = N.place_en(place)
            for r, g in enumerate(group):
                if urban:
                    grid_name[g] = f"{place}社区第{r + 1}网格"
                    grid_name_en[g] = f"{en} Community Grid {r + 1}"
                elif len(group) == 1:
                    grid_name[g] = f"{place}村网格"
                    grid_name_en[g] = f"{en} Village Grid"
                else:
                    grid_name[g] = f"{place}村第{r + 1}网格"
                    grid_name_en[g] = f"{en} Village Grid {r + 1}"
            k += size

    # zone stations and staff
    zone_props = []
    n_grids_zone = np.bincount(grid_zone, minlength=n_z)
    for z in range(n_z):
        idx = np.nonzero(zone_lab == z)[0]
        best = idx[np.argmax(mass[idx])]
        sp = shapely.point_on_surface(cells[best])
        slon, slat = round(sp.x, 6), round(sp.y, 6)
        if not zone_geoms[z].contains(shapely.Point(slon, slat)):
            sp = shapely.point_on_surface(zone_geoms[z])
            slon, slat = round(sp.x, 6), round(sp.y, 6)
        dept = int(24 + 2.6 * n_grids_zone[z] + rng_attr.integers(-6, 7))
        zone_props.append({
            "code": zone_code[z], "name": zone_name[z], "name_en": zone_name_en[z],
            "town_code": town_code[zone_town[z]], "district_code": root,
            "station_name": f"{zone_name[z]}社会治理工作站", "station_lon": slon, "station_lat": slat,
            "chief": person_name(rng_attr), "deputy": person_name(rng_attr),
            "station_master": person_name(rng_attr), "dept_staff": dept,
            "n_grids": int(n_grids_zone[z]),
        })
    grid_props = []
    for g in range(n_g):
        z = grid_zone[g]
        grid_props.append({
            "code": grid_code[g], "name": grid_name[g], "name_en": grid_name_en[g], "zone_code": zone_code[z],
            "town_code": town_code[zone_town[z]], "district_code": root,
            "registered_units": int(grid_units[g]), "population": int(grid_pop[g]),
            "worker_name": workers[g], "worker_full_time": bool(full_time[g]),
            "worker_stars": int(stars[g]),
        })
    town_props = []
    for ti in range(n_towns):
        town_props.append({
            "code": town_code[ti], "abbr": abbr[ti], "name": tdf.name_zh[ti], "name_en": tdf.name_en[ti],
            "kind": tdf.kind[ti], "district_code": root,
            "seat_lon": float(tdf.seat_lon[ti]), "seat_lat": float(tdf.seat_lat[ti]),
            "population_weight": int(t.weight[ti]) if float(t.weight[ti]).is_integer() else float(t.weight[ti]),
        })

    def fc(props, geoms):
        pairs = sorted(zip(props, geoms), key=lambda pg: pg[0]["code"])
        return feature_collection_text(pairs)

    texts = {
        "district": feature_collection_text([({"code": root, "name": inp.name, "name_en": inp.name_en},
                                              district)]),
        "towns": fc(town_props, town_geoms),
        "zones": fc(zone_props, zone_geoms),
        "grids": fc(grid_props, grid_geoms),
    }
    # hazards (need the located, rounded grids)
    grids_gdf = read_text_gdf(texts["grids"])
    texts["hazards"] = _hazards(grids_gdf, tdf, town_code, inp)
    if verbose:
        print(f"  attributes + hazards ({time.time() - t0:.1f}s)")
    return texts


def _random_point_in(rng, geom, locator, code):
    minx, miny, maxx, maxy = geom.bounds
    for _ in range(1000):
        x = round(float(rng.uniform(minx, maxx)), 6)
        y = round(float(rng.uniform(miny, maxy)), 6)
        if shapely.contains_xy(geom, x, y) and locator.locate(x, y) == code:
            return x, y
    raise BuildError(f"could not place a point in {code}")


def _hazards(grids, tdf, town_code, inp: BuildInputs):
    from .locate import GridLocator

    rng = np.random.default_rng(inp.seed + 3)
    loc = GridLocator(grids)
    namer = PlaceNamer(np.random.default_rng(inp.seed + 4), inp.avoid_names)
    kind_of_town = dict(zip(town_code, tdf.kind))
    abbr_of_town = dict(zip(town_code, tdf.code))
    short = {c: n.rstrip("街道").rstrip("镇").rstrip("乡") for c, n in zip(town_code, tdf.name_zh)}
    gkind = np.array([kind_of_town[c] for c in grids.town_code])
    gabbr = np.array([abbr_of_town[c] for c in grids.town_code])
    pop = grids.population.to_numpy(float) + 1
    area = grids.to_crs("EPSG:32651").area.to_numpy() / 1e6
    street = gkind == "street"
    sanheyi = np.where(street, 0.25, 0.08)
    for a, f in reversed(list(inp.sanheyi_factor.items())):
        sanheyi = np.where(gabbr == a, f, sanheyi)
    weights = {
        "hazchem": np.sqrt(area) * np.where(street, 0.3, 1.5),
        "gas_station": np.sqrt(area) * np.sqrt(pop),
        "sanheyi": pop * sanheyi,
        "construction": pop * np.where(street, 1.0, np.where(np.isin(gabbr, list(inp.busy_towns)), 0.6, 0.25)),
    }
    risk_p = {"hazchem": ([2, 3, 4], [.35, .45, .2]), "gas_station": ([1, 2, 3, 4], [.1, .45, .35, .1]),
              "sanheyi": ([1, 2, 3, 4], [.15, .4, .35, .1]), "construction": ([1, 2, 3, 4], [.3, .45, .2, .05])}
    geoms = grids.geometry.values
    codes = grids.code.to_numpy()
    recs = []
    if inp.story:  # the seed's story (2019-04-24): a major hazchem warehouse in the largest grid of its town
        story_abbr, story_name = inp.story
        dc = np.nonzero(gabbr == story_abbr)[0]
        g = int(dc[np.argmax(area[dc])])
        x, y = _random_point_in(rng, geoms[g], loc, codes[g])
        recs.append(("hazchem", story_name, 4, g, x, y))
    for kind in HAZARD_KINDS:
        n = inp.hazard_counts[kind] - (1 if kind == "hazchem" and inp.story else 0)
        p = weights[kind] / weights[kind].sum()
        chosen = rng.choice(len(grids), size=n, p=p)
        vals, probs = risk_p[kind]
        for g in chosen:
            g = int(g)
            x, y = _random_point_in(rng, geoms[g], loc, codes[g])
            risk = int(rng.choice(vals, p=probs))
            place = short[grids.town_code.iloc[g]] + namer.next()
            if kind == "hazchem":
                name = place + N.HAZCHEM_SUFFIX[rng.integers(len(N.HAZCHEM_SUFFIX))]
            elif kind == "gas_station":
                name = N.GAS_PREFIX[rng.integers(len(N.GAS_PREFIX))] + place + "加油站"
            elif kind == "sanheyi":
                name = place + N.SANHEYI_SUFFIX[rng.integers(len(N.SANHEYI_SUFFIX))] + "（三合一）"
            else:
                name = place + N.CONSTRUCTION_SUFFIX[rng.integers(len(N.CONSTRUCTION_SUFFIX))]
            recs.append((kind, name, risk, g, x, y))
    story = recs[:1] if inp.story else []
    rest = sorted(recs[len(story):], key=lambda r: (HAZARD_KINDS.index(r[0]), codes[r[3]], r[4], r[5]))
    feats = []
    for k, (kind, name, risk, g, x, y) in enumerate(story + rest):
        major = risk == 4
        feats.append(({
            "code": f"HZ-{k + 1:04d}", "name": name, "kind": kind, "risk": risk, "major": major,
            "ring_m": 500 if major and kind in ("hazchem", "gas_station") else 200,
            "grid_code": codes[g], "zone_code": grids.zone_code.iloc[g], "town_code": grids.town_code.iloc[g],
        }, shapely.Point(x, y)))
    return feature_collection_text(feats)


LEVEL_FILES = {"district": "district.geojson", "towns": "towns.geojson", "zones": "zones.geojson",
               "grids": "grids.geojson", "hazards": "hazards.geojson"}


def validate_texts(texts) -> Report:
    g = {k: read_text_gdf(v) for k, v in texts.items()}
    rep = validate_layers(g["district"], g["towns"], g["zones"], g["grids"], strict=True)
    _check_hazards(g["grids"], g["hazards"], rep)
    return rep


def _check_hazards(grids, hazards, rep: Report):
    from .locate import GridLocator
    if len(hazards) == 0:
        rep.warnings.append("hazards: no features")
        return
    loc = GridLocator(grids)
    got = loc.locate_many(hazards.geometry.x.to_numpy(), hazards.geometry.y.to_numpy())
    bad = [f"hazard {c}: recorded in grid {g} but located in {l}"
           for c, g, l in zip(hazards.code, hazards.grid_code, got) if g != l]
    rep.stats["hazards_count"] = len(hazards)
    rep.stats["hazards_misplaced"] = len(bad)
    rep.errors.extend(bad[:10])


def build_inputs(src_dir: Path, county: str | None = None) -> BuildInputs:
    """The seed district's inputs (no ``county``, or the seed district's own code or name), else the synthetic
    inputs of the county of the province file that ``county`` names (:class:`county.CountyError` if none)."""
    from .county import county_inputs, find_county
    from .inputs import seed_code, seed_inputs
    from .multi import partition_outlines

    if county is None:
        return seed_inputs(src_dir)
    found, _ = find_county(county, src_dir)
    if found.code == seed_code(src_dir):
        return seed_inputs(src_dir)
    outline = dict((c.code, g) for c, g in partition_outlines(src_dir))[found.code]
    return county_inputs(found, outline, src_dir)


def build(out_dir: Path | str | None = None, src_dir: Path | str | None = None, verbose=False,
          county: str | None = None) -> Report:
    """Generate, validate (after rounding) and, only if valid, write the five files."""
    out_dir = Path(out_dir) if out_dir else DEFAULT_DIR
    src_dir = Path(src_dir) if src_dir else DEFAULT_DIR
    t0 = time.time()
    inp = build_inputs(src_dir, county)
    if verbose:
        print(f"  {inp.code} {inp.name}: {len(inp.towns)} towns, {inp.n_zones} zones, {inp.n_grids} grids")
    texts = generate(inp, verbose=verbose)
    rep = validate_texts(texts)
    rep.stats["build_seconds"] = round(time.time() - t0, 1)
    if not rep.ok:
        return rep
    for level, text in texts.items():
        atomic_write_text(out_dir / LEVEL_FILES[level], text)
    from .io import MULTI_FILES
    for name in MULTI_FILES.values():  # a multi-county set's layers would no longer match: one county's set now
        (out_dir / name).unlink(missing_ok=True)
    return rep
