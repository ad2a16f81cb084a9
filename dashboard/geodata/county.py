"""The county catalogue (every county-level unit of the province file) and the synthetic inputs of a county.

``geodata/source_counties_wgs84.geojson`` (copied from the project's reference data) holds the real outline of
each of Zhejiang's 90 county-level units with its province, city and Chinese name, but no code and no English
name. The codes below are the national administrative division codes (GB/T 2260, as of the 2021 reorganisation
that the file reflects: 临平区, 钱塘区, 龙港市), in the file's own order; a test checks that every unit of the
file has one. No English name is known: the English name of a built county is left empty and the app shows a
pinyin-free fallback (``County 330521``).

Only the seed district has real town seats (``source_towns.csv``). For any other county,
:func:`synthetic_towns` places the seats deterministically (seeded by the county's code): weighted k-means of
points spread evenly over the real outline, so each seat gets a similar share of the area — over the parts of a
multipart outline that can hold a town (:func:`seat_parts`: the largest part and every part of at least half a
town's mean area); a smaller island gets no seat and goes to the nearest town (a multipart town); the seat nearest the
outline's interior point is the core (街道, "street"), with the nearest others up to 30 % of the seats; the rest
are towns (镇). Names are the county's short name and a number (德清第1街道, 德清第2镇 …): nothing claims to be a
real place. Counts follow :func:`dashboard.geodata.validate.expected_counts` (the seed district's density).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import shapely

from .inputs import SEED, SEED_COUNTS, BuildInputs, Frame, seed_place_names

COUNTIES_FILE = "source_counties_wgs84.geojson"

# national administrative division codes, per city, in the order of the file's records
CODES: dict[str, tuple[tuple[str, str], ...]] = {
    "杭州市": (("上城区", "330102"), ("拱墅区", "330105"), ("西湖区", "330106"), ("滨江区", "330108"),
            ("萧山区", "330109"), ("余杭区", "330110"), ("富阳区", "330111"), ("临安区", "330112"),
            ("临平区", "330113"), ("钱塘区", "330114"), ("桐庐县", "330122"), ("淳安县", "330127"),
            ("建德市", "330182")),
    "宁波市": (("海曙区", "330203"), ("江北区", "330205"), ("北仑区", "330206"), ("镇海区", "330211"),
            ("鄞州区", "330212"), ("奉化区", "330213"), ("象山县", "330225"), ("宁海县", "330226"),
            ("余姚市", "330281"), ("慈溪市", "330282")),
    "温州市": (("鹿城区", "330302"), ("龙湾区", "330303"), ("瓯海区", "330304"), ("洞头区", "330305"),
            ("永嘉县", "330324"), ("平阳县", "330326"), ("苍南县", "330327"), ("文成县", "330328"),
            ("泰顺县", "330329"), ("瑞安市", "330381"), ("乐清市", "330382"), ("龙港市", "330383")),
    "嘉兴市": (("南湖区", "330402"), ("秀洲区", "330411"), ("嘉善县", "330421"), ("海盐县", "330424"),
            ("海宁市", "330481"), ("平湖市", "330482"), ("桐乡市", "330483")),
    "湖州市": (("吴兴区", "330502"), ("南浔区", "330503"), ("德清县", "330521"), ("长兴县", "330522"),
            ("安吉县", "330523")),
    "绍兴市": (("越城区", "330602"), ("柯桥区", "330603"), ("上虞区", "330604"), ("新昌县", "330624"),
            ("诸暨市", "330681"), ("嵊州市", "330683")),
    "金华市": (("婺城区", "330702"), ("金东区", "330703"), ("武义县", "330723"), ("浦江县", "330726"),
            ("磐安县", "330727"), ("兰溪市", "330781"), ("义乌市", "330782"), ("东阳市", "330783"),
            ("永康市", "330784")),
    "衢州市": (("柯城区", "330802"), ("衢江区", "330803"), ("常山县", "330822"), ("开化县", "330824"),
            ("龙游县", "330825"), ("江山市", "330881")),
    "舟山市": (("定海区", "330902"), ("普陀区", "330903"), ("岱山县", "330921"), ("嵊泗县", "330922")),
    "台州市": (("椒江区", "331002"), ("黄岩区", "331003"), ("路桥区", "331004"), ("三门县", "331022"),
            ("天台县", "331023"), ("仙居县", "331024"), ("温岭市", "331081"), ("临海市", "331082"),
            ("玉环市", "331083")),
    "丽水市": (("莲都区", "331102"), ("青田县", "331121"), ("缙云县", "331122"), ("遂昌县", "331123"),
            ("松阳县", "331124"), ("云和县", "331125"), ("庆元县", "331126"), ("景宁畲族自治县", "331127"),
            ("龙泉市", "331181")),
}
KIND_EN = {"区": "District", "县": "County", "市": "City"}


class CountyError(ValueError):
    pass


@dataclass(frozen=True)
class County:
    code: str
    name: str       # 德清县
    city: str       # 湖州市
    province: str   # 浙江省

    @property
    def short(self) -> str:
        """德清县 → 德清, 景宁畲族自治县 → 景宁 (what people type)."""
        for suffix in ("畲族自治县", "自治县", "区", "县", "市"):
            if self.name.endswith(suffix) and len(self.name) > len(suffix) + 1:
                return self.name[: -len(suffix)]
        return self.name


def code_of(city: str, name: str) -> str | None:
    return dict(CODES.get(city, ())).get(name)


def catalogue(src_dir: Path):
    """[(County, raw geometry)] of the province file, in its order."""
    import geopandas as gpd

    gdf = gpd.read_file(src_dir / COUNTIES_FILE)
    out = []
    for r in gdf.itertuples():
        code = code_of(r.city, r.district)
        if code is None:
            raise CountyError(f"{r.city}{r.district}: no administrative code in dashboard.geodata.county.CODES")
        out.append((County(code=code, name=r.district, city=r.city, province=r.province), r.geometry))
    return out


def find_county(query: str, src_dir: Path):
    """(County, outline) by code (330521), Chinese name (德清县, 湖州市德清县) or short name (德清)."""
    q = str(query).strip()
    cat = catalogue(src_dir)
    hits = [(c, g) for c, g in cat if q in (c.code, c.name, c.short, c.city + c.name)]
    if len(hits) == 1:
        return hits[0]
    if hits:
        listed = ", ".join(f"{c.code} {c.city}{c.name}" for c, _ in hits)
        raise CountyError(f"county {q!r} is ambiguous: {listed}; give the code")
    near = [c for c, _ in cat if q and (q in c.city + c.name or c.short in q)]
    listed = ", ".join(f"{c.code} {c.city}{c.name}" for c in near) or "none; `python -m dashboard.geodata " \
                                                                         "counties` lists them all"
    raise CountyError(f"no county-level unit {q!r} in {COUNTIES_FILE}; candidates: {listed}")


SEAT_PART_SHARE = 0.5   # a part of the outline holds town seats if its area is at least this share of a town's


def seat_parts(km, n_towns: int):
    """The parts of the outline ``km`` (km coordinates) that may hold a town seat: the largest part, and every
    part of at least :data:`SEAT_PART_SHARE` of the mean town area (area / ``n_towns``). A smaller island has no
    seat of its own: the power diagram of :func:`dashboard.geodata.build.generate` gives it to the nearest town
    (a seat on an island of a few km² made a town too small for its zones' grids: 瑞安市, 岱山县). A one-part
    outline, or one whose parts all qualify, is returned as it is (the same seats as before the rule)."""
    parts = shapely.get_parts(km)
    if len(parts) == 1:
        return km
    areas = shapely.area(parts)
    ok = (areas >= SEAT_PART_SHARE * km.area / max(n_towns, 1)) | (areas == areas.max())
    if ok.all():
        return km
    return shapely.multipolygons(parts[ok])


def synthetic_towns(county: County, outline, frame: Frame, n_towns: int) -> pd.DataFrame:
    """``n_towns`` town seats spread over ``outline`` (deterministic for the county), source_towns.csv columns."""
    from .build import weighted_kmeans

    rng = np.random.default_rng([SEED, int(county.code)])
    km = shapely.transform(outline, frame.deg_to_km)
    room = seat_parts(km, n_towns)   # the parts a seat may lie in (``km`` itself for a one-part county)
    shapely.prepare(room)
    minx, miny, maxx, maxy = km.bounds
    pts = []
    while sum(len(p) for p in pts) < 4000:
        x = rng.uniform(minx, maxx, 8000)
        y = rng.uniform(miny, maxy, 8000)
        keep = shapely.contains_xy(room, x, y)
        pts.append(np.column_stack([x[keep], y[keep]]))
    xy = np.concatenate(pts)[:4000]
    lab = weighted_kmeans(rng, xy, np.ones(len(xy)), n_towns)
    seats = []
    for j in range(n_towns):
        m = xy[lab == j]
        c = m.mean(0)
        if not shapely.contains_xy(room, c[0], c[1]):  # a concave piece, or the sea: the member nearest the centre
            c = m[((m - c) ** 2).sum(1).argmin()]
        seats.append(c)
    seats = np.array(seats)
    core = shapely.get_coordinates(shapely.point_on_surface(km))[0]
    order = np.argsort(((seats - core) ** 2).sum(1), kind="stable")
    n_street = max(1, round(0.3 * n_towns)) if n_towns > 1 else 1
    rows = []
    for rank, j in enumerate(order):
        street = rank < n_street
        lonlat = frame.km_to_deg(seats[j][None, :])[0]
        rows.append({
            "code": f"T{rank + 1:02d}",
            "name_zh": f"{county.short}第{rank + 1}{'街道' if street else '镇'}",
            "name_en": f"{'Sub-district' if street else 'Town'} {rank + 1}",
            "kind": "street" if street else "town",
            "seat_lon": round(float(lonlat[0]), 4), "seat_lat": round(float(lonlat[1]), 4),
            "population_weight": int(55 if street else 25 + rng.integers(0, 21)),
        })
    return pd.DataFrame(rows)


def county_inputs(county: County, outline, src_dir: Path) -> BuildInputs:
    """The inputs of a synthetic build of ``county`` (real outline, synthetic everything below; no generated
    village or site name is part of a seed district's place name in ``src_dir``). ``outline``: the county's
    outline of the clean partition (:func:`dashboard.geodata.multi.partition_outlines`: valid, snapped to the
    1e-6° grid, no overlap with a neighbour), the same in a single and in a multi-county build."""
    import geopandas as gpd

    from .validate import REFERENCE_AREA_KM2, district_area_km2, expected_counts

    area = district_area_km2(gpd.GeoDataFrame(geometry=[outline], crs="EPSG:4326"))
    n = expected_counts(area)
    c = shapely.centroid(outline)
    frame = Frame(round(c.x, 2), round(c.y, 2))
    towns = synthetic_towns(county, outline, frame, n["town"])
    f = area / REFERENCE_AREA_KM2
    g = n["grid"] / SEED_COUNTS["n_grids"]
    sigma = {a: (1.5 if k == "street" else 3.0) for a, k in zip(towns.code, towns.kind)}
    return BuildInputs(
        code=county.code, name=county.name, name_en=None, outline=outline, towns=towns, frame=frame,
        n_zones=n["zone"], n_grids=n["grid"], n_full_time=max(1, round(SEED_COUNTS["n_full_time"] * g)),
        total_units=max(n["grid"], round(SEED_COUNTS["total_units"] * f)),
        n_base_points=round(SEED_COUNTS["n_base_points"] * g),
        hazard_counts={k: max(1, round(v * f)) for k, v in SEED_COUNTS["hazard_counts"].items()},
        sigma_km=sigma, short_name=county.short, avoid_names=seed_place_names(src_dir),
        seed=SEED + int(county.code))
