"""What one geodata build is made from: the county (code, names, outline), its town seats and the counts.

Two makers of :class:`BuildInputs`:

- :func:`seed_inputs` — the default build: the outline of ``geodata/source_district_wgs84.geojson`` (its
  ``adcode`` and ``name``) and the 17 hand-placed real town seats of ``geodata/source_towns.csv`` with the
  hand-tuned widths, weights and the hazard story that go with them (the seed district; the committed geodata);
- :func:`dashboard.geodata.county.county_inputs` — any county-level unit of the province file: synthetic seats,
  counts scaled by area at the seed district's density.

:func:`dashboard.geodata.build.generate` turns either into the five layers.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .geojson import GRID_SIZE

SEED = 20200618


@dataclass(frozen=True)
class Frame:
    """A local equirectangular frame (km) around (lon0, lat0): good to well under 1 % over a county."""
    lon0: float
    lat0: float

    @property
    def kx(self) -> float:  # km per degree of longitude
        return 111.320 * math.cos(math.radians(self.lat0))

    @property
    def ky(self) -> float:  # km per degree of latitude
        return 110.574

    def to_km(self, lon, lat):
        return (np.asarray(lon) - self.lon0) * self.kx, (np.asarray(lat) - self.lat0) * self.ky

    def km_to_deg(self, c):
        return np.column_stack([c[:, 0] / self.kx + self.lon0, c[:, 1] / self.ky + self.lat0])

    def deg_to_km(self, c):
        return np.column_stack([(c[:, 0] - self.lon0) * self.kx, (c[:, 1] - self.lat0) * self.ky])


@dataclass(frozen=True, eq=False)
class BuildInputs:
    code: str                 # administrative code of the root unit (prefix of every unit code)
    name: str                 # its Chinese name (吴兴区 …)
    name_en: str | None       # its English name, when one is known
    outline: object           # shapely (Multi)Polygon, WGS84, valid, snapped to GRID_SIZE
    towns: pd.DataFrame       # columns of source_towns.csv: code (abbr), name_zh, name_en, kind, seat_lon, seat_lat,
    #                           population_weight
    frame: Frame
    n_zones: int
    n_grids: int
    n_full_time: int
    total_units: int
    n_base_points: int
    hazard_counts: dict
    sigma_km: dict = field(default_factory=dict)        # abbr -> population kernel width (default by kind)
    power_k_town: dict = field(default_factory=dict)    # abbr -> power-diagram weight per unit of population
    unit_factor: dict = field(default_factory=dict)     # abbr -> registered units per resident (relative)
    zone_stems: dict = field(default_factory=dict)      # abbr -> [(zh, en)] zone name stems (else numbered names)
    sanheyi_factor: dict = field(default_factory=dict)  # abbr -> weight of 三合一 workshops per resident
    busy_towns: tuple = ()                              # abbrs with more construction than rural towns
    story: tuple | None = None                          # (abbr, name) of the hazard site of the seed's story
    short_name: str = ""                                # the root's short name, for numbered zone names
    avoid_names: tuple = ()                             # no generated name may be part of one of these
    seed: int = SEED


def clean_outline(geoms):
    """The union of ``geoms`` made valid, polygons only, snapped to the 1e-6° grid."""
    import shapely

    d = shapely.make_valid(shapely.union_all(geoms))
    polys = [p for p in shapely.get_parts(d) if shapely.get_type_id(p) == 3]
    d = shapely.union_all(polys)
    outline = shapely.set_precision(d, GRID_SIZE)
    if shapely.get_type_id(outline) == 6 and len(outline.geoms) == 1:
        outline = outline.geoms[0]
    return outline


# ------------------------------------------------------------------ the seed district (the default build)
# kernel width (km) of each town's population, and power-diagram weight per unit of population_weight
# (km² per thousand residents): urban streets small, rural towns big. Hand-tuned to source_towns.csv.
SEED_SIGMA_KM = {"YH": 1.3, "CY": 1.3, "AS": 1.2, "FY": 1.2, "LQ": 1.4, "HD": 1.6, "KS": 1.8,
                 "RHS": 1.8, "BH": 2.2, "YJB": 2.5, "HZ": 2.2, "ZL": 4.0, "BLD": 2.8, "DL": 3.5,
                 "DX": 4.5, "MX": 4.0, "DC": 3.0}
SEED_POWER_K_TOWN = {"ZL": 0.04, "BLD": 0.03, "DX": 0.15, "MX": 0.3, "DL": 0.1, "DC": 0.08}
SEED_UNIT_FACTOR = {"ZL": 1.7, "BLD": 1.1}   # registered units per resident, relative (workshops)
SEED_SANHEYI = {"ZL": 12.0, "BLD": 1.2}      # garment workshops (三合一) per resident
SEED_BUSY = ("ZL", "BLD")
SEED_STORY = ("DC", "道场乡某仓库（2019-04-24 网格员发现大量危化品，应急管理、环保、综合执法当日上午联合查封）")
SEED_NAME_EN = "Wuxing"
SEED_COUNTS = {"n_zones": 46, "n_grids": 538, "n_full_time": 330,
               "total_units": 90_150,        # 58,594 inspected / 90,150 = 65.0 % coverage (2019)
               "n_base_points": 9000,
               "hazard_counts": {"hazchem": 60, "gas_station": 45, "sanheyi": 350, "construction": 80}}


def read_outline(path: Path):
    import geopandas as gpd

    src = gpd.read_file(path)
    return src, clean_outline(src.geometry.values)


def seed_inputs(src_dir: Path) -> BuildInputs:
    """The default build: the real outline and the hand-placed real town seats in ``src_dir``."""
    from . import names as N

    src, outline = read_outline(src_dir / "source_district_wgs84.geojson")
    props = src.iloc[0]
    towns = pd.read_csv(src_dir / "source_towns.csv", dtype={"code": str})
    return BuildInputs(code=str(props["adcode"]), name=str(props["name"]), name_en=SEED_NAME_EN, outline=outline,
                       towns=towns, frame=Frame(120.1, 30.8), **SEED_COUNTS,
                       sigma_km=SEED_SIGMA_KM, power_k_town=SEED_POWER_K_TOWN, unit_factor=SEED_UNIT_FACTOR,
                       zone_stems=N.ZONE_STEMS, sanheyi_factor=SEED_SANHEYI, busy_towns=SEED_BUSY,
                       story=SEED_STORY, short_name=str(props["name"]).rstrip("区县市"))


def seed_place_names(src_dir: Path) -> tuple:
    """The seed district's own names (district, towns, zone stems): a synthetic county uses none of them."""
    from . import names as N

    words = []
    if (src_dir / "source_towns.csv").exists():
        towns = pd.read_csv(src_dir / "source_towns.csv", dtype={"code": str})
        words += [str(n).rstrip("街道镇乡") for n in towns.name_zh] + [str(n) for n in towns.name_en]
    path = src_dir / "source_district_wgs84.geojson"
    if path.exists():
        import json

        words += [str(f["properties"].get("name", "")) for f in json.loads(path.read_text(encoding="utf-8"))["features"]]
    words += [zh for stems in N.ZONE_STEMS.values() for zh, _ in stems]
    return tuple(sorted({w for w in words if w}))


def seed_code(src_dir: Path) -> str | None:
    """The administrative code of the seed district (the county whose real town seats are in ``src_dir``)."""
    import json

    path = src_dir / "source_district_wgs84.geojson"
    if not (path.exists() and (src_dir / "source_towns.csv").exists()):
        return None
    feats = json.loads(path.read_text(encoding="utf-8"))["features"]
    return str(feats[0]["properties"].get("adcode")) if feats else None
