"""Read queries the front doors need beyond the incident repository's list / get / changes: map points, live
counts per unit, the duty desk's "which of these changed rows still match", the wall's newest arrivals, Open311's
numbered pages and an incident's alert. Each takes a ``Session`` and returns rows or plain values.
"""
from __future__ import annotations

from typing import Sequence

from sqlalchemy import Integer, case, cast, func, select
from sqlalchemy.orm import Session

from .alerts import Alert
from .incidents import IncidentFilter
from .models import Incident

MAP_COLUMNS = (Incident.id, Incident.category, Incident.severity, Incident.status, Incident.level, Incident.lon,
               Incident.lat, Incident.due_at)
# what a public screen may show of an incident: never the reporter or a phone number
TICKER_COLUMNS = (Incident.id, Incident.code, Incident.category, Incident.severity, Incident.status,
                  Incident.zone_code, Incident.town_code, Incident.reported_at, Incident.description,
                  Incident.persons)  # persons: to mask the names the description marks
UNIT_LEVELS = ("town", "zone", "grid")


def map_points(session: Session, flt: IncidentFilter, limit: int | None = None) -> list:
    """The filtered incidents as light rows (``id, category, severity, status, level, lon, lat, due_at``), by id;
    with ``limit``, the newest ``limit`` of them (still by id)."""
    stmt = select(*MAP_COLUMNS).where(*flt.conditions())
    if limit is None:
        return session.execute(stmt.order_by(Incident.id)).all()
    return sorted(session.execute(stmt.order_by(Incident.id.desc()).limit(limit)).all(), key=lambda r: r.id)


def incident_cells(session: Session, flt: IncidentFilter, origin: tuple[float, float], cell: float) -> list:
    """The incidents of ``flt`` (give it a ``bbox``) counted per square cell of side ``cell`` degrees on the lattice
    that starts at ``origin`` (lon, lat; the box's south-west corner snapped to the lattice, so every point of the
    box is east and north of it): rows ``(ix, iy, n, n1, n2, n3, n4, lon, lat)`` — the cell's column and row from
    the origin, its count, the count of each severity and the mean position of its incidents (the count-weighted
    centre). One ``GROUP BY``; the open rows of the box come through the partial index of the open cases by place
    (``ix_incidents_open_place``, migration 0011)."""
    x0, y0 = origin
    if session.get_bind().dialect.name == "postgresql":  # a cast rounds there; floor() is exact for the lattice
        ix, iy = (cast(func.floor((Incident.lon - x0) / cell), Integer),
                  cast(func.floor((Incident.lat - y0) / cell), Integer))
    else:  # SQLite's CAST truncates, which is floor for the non-negative offsets of a box east and north of origin
        ix, iy = cast((Incident.lon - x0) / cell, Integer), cast((Incident.lat - y0) / cell, Integer)
    # the cell of each row in a subquery, grouped outside: the same expression written twice would carry its own
    # bound parameters each time, which PostgreSQL does not take for the same expression
    rows = select(ix.label("ix"), iy.label("iy"), Incident.severity, Incident.lon, Incident.lat).where(
        *flt.conditions()).subquery()
    by_severity = [func.sum(case((rows.c.severity == s, 1), else_=0)).label(f"n{s}") for s in (1, 2, 3, 4)]
    stmt = (select(rows.c.ix, rows.c.iy, func.count().label("n"), *by_severity, func.avg(rows.c.lon).label("lon"),
                   func.avg(rows.c.lat).label("lat"))
            .group_by(rows.c.ix, rows.c.iy).order_by(rows.c.ix, rows.c.iy))
    return session.execute(stmt).all()


def changed_points(session: Session, after: int, upto: int, limit: int) -> list:
    """Map rows (as :func:`map_points`) of the incidents whose change sequence is in ``(after, upto]`` — their
    current state — in sequence order, at most ``limit``: a live stream's delta."""
    stmt = (select(*MAP_COLUMNS).where(Incident.seq > after, Incident.seq <= upto)
            .order_by(Incident.seq).limit(limit))
    return session.execute(stmt).all()


def open_due_by_unit(session: Session, level: str) -> list[tuple[str, object]]:
    """``(unit code, due_at)`` of every open incident, for ``level`` town / zone / grid.

    Reads the open rows through the (status, reported_at) index and leaves the counting to the caller: a GROUP BY
    lets SQLite pick the unit-code index and scan every closed case too (0.6 s on the demo year, not a few ms)."""
    if level not in UNIT_LEVELS:
        raise ValueError(f"level must be one of {', '.join(UNIT_LEVELS)}")
    col = getattr(Incident, f"{level}_code")
    return [(code, due) for code, due in session.execute(select(col, Incident.due_at)
                                                         .where(Incident.status != "closed")).all()]


def matching_ids(session: Session, flt: IncidentFilter, ids: Sequence[int]) -> set[int]:
    """Which of ``ids`` match ``flt`` now."""
    if not ids:
        return set()
    return set(session.execute(select(Incident.id).where(*flt.conditions(), Incident.id.in_(list(ids)))).scalars())


def newest_arrivals(session: Session, limit: int) -> list:
    """The ``limit`` incidents that reached the store last (creation order, newest first) with the public
    columns only (:data:`TICKER_COLUMNS`)."""
    return session.execute(select(*TICKER_COLUMNS).order_by(Incident.id.desc()).limit(limit)).all()


def incidents_page(session: Session, flt: IncidentFilter, *, page: int, page_size: int) -> list[Incident]:
    """Page ``page`` (from 1) of the filtered incidents, newest first (reported_at desc, id desc)."""
    stmt = (select(Incident).where(*flt.conditions())
            .order_by(Incident.reported_at.desc(), Incident.id.desc())
            .offset((page - 1) * page_size).limit(page_size))
    return list(session.execute(stmt).scalars())


def alert_of_incident(session: Session, incident_id: int) -> Alert | None:
    """The incident's alert (at most one), active or acknowledged."""
    return session.execute(select(Alert).where(Alert.incident_id == incident_id)).scalar_one_or_none()
