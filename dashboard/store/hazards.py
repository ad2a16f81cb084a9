"""hazard_sites (危化品 / 加油站 / 三合一 / 建筑工地) from ``geodata/hazards.geojson`` into the store."""
from __future__ import annotations

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from .models import HazardSite

_COLS = ("code", "name", "kind", "risk", "major", "ring_m", "grid_code", "zone_code", "town_code")


def hazard_rows(hazards_gdf) -> list[dict]:
    """Plain dicts for ``hazard_sites`` from the hazards GeoDataFrame (point geometry, WGS84)."""
    rows = []
    for rec, geom in zip(hazards_gdf[list(_COLS)].to_dict("records"), hazards_gdf.geometry):
        row = {k: rec[k] for k in _COLS}
        row["risk"] = int(row["risk"])
        row["major"] = bool(row["major"])
        row["ring_m"] = float(row["ring_m"])
        row["lon"], row["lat"] = float(geom.x), float(geom.y)
        rows.append(row)
    return rows


def load_hazard_sites(session: Session, hazards_gdf) -> int:
    """Replace every hazard site with the given layer, in one transaction. Returns the number stored."""
    rows = hazard_rows(hazards_gdf)
    try:
        session.execute(delete(HazardSite))
        if rows:
            session.execute(insert(HazardSite), rows)
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return len(rows)


def major_sites(session: Session) -> list[HazardSite]:
    """The major hazard sites (重大危险源, any kind), by code — the map's safety rings."""
    return list(session.execute(select(HazardSite).where(HazardSite.major.is_(True))
                                .order_by(HazardSite.code)).scalars())
