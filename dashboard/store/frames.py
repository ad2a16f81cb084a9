"""Rows as frames — what :mod:`dashboard.metrics.kpis` (the pure KPI oracle) works on (SQLAlchemy Core ``select()``).

The request paths read the aggregates (:mod:`dashboard.store.aggregates`); these loaders serve the oracle tests,
the demo's calibration, the morning briefing's last 24 hours and a grid's open cases. Every loader takes a
``Connection`` or an ``Engine``, a period ``[start, end)`` (naive = UTC, or tz-aware) and optionally one
unit (``level`` = ``town|zone|grid`` and its ``code``), and returns a pandas DataFrame with the columns
of ``docs/data-model.md`` (times as tz-aware UTC).
"""
from __future__ import annotations

import datetime as dt
from contextlib import contextmanager

import pandas as pd
from sqlalchemy import String, and_, or_, select, type_coerce

from .models import Incident, IncidentEvent, Inspection


class _Bounds:
    """The two bound helpers of dashboard.metrics.kpis, here so the store does not import metrics."""

    @staticmethod
    def to_utc(value):
        if value is None:
            return None
        ts = pd.Timestamp(value)
        if ts.tzinfo is not None:
            ts = ts.tz_convert("UTC").tz_localize(None)
        return ts

    @staticmethod
    def _local_day(value, tz: str = "Asia/Shanghai"):
        ts = pd.Timestamp(value)
        if ts.tzinfo is not None:
            ts = ts.tz_convert(tz).tz_localize(None)
        return ts


kpis = _Bounds

INCIDENT_COLUMNS = (
    "id", "code", "category", "subcategory", "severity", "source", "status", "level", "department", "outcome",
    "longstanding", "grid_code", "zone_code", "town_code", "lon", "lat", "reported_at", "updated_at", "due_at",
    "closed_at",
)
EVENT_COLUMNS = ("incident_id", "seq", "at", "actor", "actor_role", "from_status", "to_status", "department")
INSPECTION_COLUMNS = ("id", "unit_id", "grid_code", "zone_code", "town_code", "inspected_on", "inspector",
                      "problems_found")
_LEVEL_COLUMN = {"town": "town_code", "zone": "zone_code", "grid": "grid_code"}
_TIME_COLUMNS = {"reported_at", "updated_at", "due_at", "closed_at", "at"}


def _select(conn, table, columns):
    """``select()`` of ``columns``; on SQLite the stored UTC text of time columns is read raw and parsed by
    pandas in one vectorised step (much faster than per-value type processing)."""
    raw = conn.dialect.name == "sqlite"
    return select(*(type_coerce(table.c[c], String).label(c) if raw and c in _TIME_COLUMNS else table.c[c]
                    for c in columns))


@contextmanager
def _connection(bind):
    if hasattr(bind, "connect") and not hasattr(bind, "execute"):
        with bind.connect() as conn:
            yield conn
    else:
        yield bind


def _utc(value) -> dt.datetime | None:
    ts = kpis.to_utc(value)
    return None if ts is None else ts.to_pydatetime().replace(tzinfo=dt.timezone.utc)


def _unit_filter(table, level: str | None, code: str | None) -> list:
    if not level or level == "district" or not code:
        return []
    if level not in _LEVEL_COLUMN:
        raise ValueError(f"level must be district, town, zone or grid, not {level!r}")
    return [table.c[_LEVEL_COLUMN[level]] == code]


def _columns(rows, columns) -> pd.DataFrame:
    """Rows → frame column by column (avoids pandas probing every SQLAlchemy Row for namedtuple fields)."""
    cols = list(zip(*rows)) if rows else [()] * len(columns)
    return pd.DataFrame({c: list(v) for c, v in zip(columns, cols)}, columns=list(columns))


def _frame(rows, columns) -> pd.DataFrame:
    df = _columns(rows, columns)
    for c in ("reported_at", "updated_at", "due_at", "closed_at", "at"):
        if c in df.columns:
            df[c] = pd.to_datetime(df[c], utc=True, format="ISO8601")
    return df


def incidents_query(start=None, end=None, level: str | None = None, code: str | None = None,
                    columns=INCIDENT_COLUMNS, conn=None):
    """Incidents that any KPI of the period can depend on: reported before ``end`` and not closed before
    ``start`` (reported in the period, closed in it, or open during it)."""
    t = Incident.__table__
    cond = _unit_filter(t, level, code)
    s, e = _utc(start), _utc(end)
    if e is not None:
        cond.append(t.c.reported_at < e)
    if s is not None:
        cond.append(or_(t.c.closed_at.is_(None), t.c.closed_at >= s, t.c.reported_at >= s))
    q = _select(conn, t, columns) if conn is not None else select(*(t.c[c] for c in columns))
    return q.where(and_(True, *cond)).order_by(t.c.id)


def load_incidents(bind, start=None, end=None, level: str | None = None, code: str | None = None,
                   columns=INCIDENT_COLUMNS) -> pd.DataFrame:
    with _connection(bind) as conn:
        rows = conn.execute(incidents_query(start, end, level, code, columns, conn)).all()
    return _frame(rows, columns)


def load_inspections(bind, start=None, end=None, level: str | None = None, code: str | None = None,
                     columns=INSPECTION_COLUMNS) -> pd.DataFrame:
    """Inspection rows whose local day overlaps ``[start, end)`` (see :func:`kpis.inspections_in`)."""
    t = Inspection.__table__
    cond = _unit_filter(t, level, code)
    if start is not None:
        cond.append(t.c.inspected_on >= kpis._local_day(start).normalize().date())
    if end is not None:
        e = kpis._local_day(end)
        last = e.normalize() if e == e.normalize() else e.normalize() + pd.Timedelta(days=1)
        cond.append(t.c.inspected_on < last.date())
    q = select(*(t.c[c] for c in columns)).where(and_(True, *cond)).order_by(t.c.id)
    with _connection(bind) as conn:
        rows = conn.execute(q).all()
    return _columns(rows, columns)


def load_events(bind, start=None, end=None, level: str | None = None, code: str | None = None,
                columns=EVENT_COLUMNS) -> pd.DataFrame:
    """Lifecycle events of the incidents :func:`incidents_query` selects (for the funnel and stage times)."""
    e = IncidentEvent.__table__
    ids = incidents_query(start, end, level, code, ("id",)).order_by(None)
    with _connection(bind) as conn:
        q = _select(conn, e, columns).where(e.c.incident_id.in_(ids)).order_by(e.c.incident_id, e.c.seq)
        rows = conn.execute(q).all()
    return _frame(rows, columns)


def registered_units(grids: pd.DataFrame, level: str | None = None, code: str | None = None) -> int:
    """Registered units (登记单位数) of a unit from the geodata grids frame."""
    if not level or level == "district" or not code:
        return int(grids["registered_units"].sum())
    col = "code" if level == "grid" else _LEVEL_COLUMN[level]
    return int(grids.loc[grids[col] == code, "registered_units"].sum())
