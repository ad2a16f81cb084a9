"""Tables of the store — the contract is docs/data-model.md.

Times: ``UTCDateTime`` stores UTC (timestamptz on PostgreSQL, naive UTC text on SQLite) and always hands
back timezone-aware UTC datetimes, whatever the back end.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    TypeDecorator,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

UTC = dt.timezone.utc


class UTCDateTime(TypeDecorator):
    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)  # naive input is taken as UTC
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def utcnow() -> dt.datetime:
    return dt.datetime.now(UTC)


class Base(DeclarativeBase):
    pass


# BigInteger ids that are still SQLite rowid aliases (INTEGER PRIMARY KEY) on SQLite.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Inspection(Base):
    """巡查记录 — one row per unit inspected on a day."""

    __tablename__ = "inspections"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    unit_id: Mapped[str] = mapped_column(String(64))
    grid_code: Mapped[str] = mapped_column(String(32))
    zone_code: Mapped[str] = mapped_column(String(32))
    town_code: Mapped[str] = mapped_column(String(32))
    inspected_on: Mapped[dt.date] = mapped_column(Date)
    inspector: Mapped[str] = mapped_column(String(64))
    problems_found: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (
        CheckConstraint("problems_found >= 0", name="ck_inspections_problems_nonneg"),
        Index("ix_inspections_inspected_on", "inspected_on"),
        Index("ix_inspections_grid_code", "grid_code"),
        Index("ix_inspections_zone_code", "zone_code"),
        Index("ix_inspections_town_code", "town_code"),
        Index("ix_inspections_unit_id", "unit_id"),
    )


class Incident(Base):
    """案事件."""

    __tablename__ = "incidents"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    client_ref: Mapped[str | None] = mapped_column(String(64), unique=True, nullable=True)
    category: Mapped[str] = mapped_column(String(32))
    subcategory: Mapped[str | None] = mapped_column(String(64), nullable=True)
    severity: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(16))
    description: Mapped[str] = mapped_column(Text, default="")
    address: Mapped[str | None] = mapped_column(String(255), nullable=True)
    lon: Mapped[float] = mapped_column(Float)
    lat: Mapped[float] = mapped_column(Float)
    grid_code: Mapped[str] = mapped_column(String(32))
    zone_code: Mapped[str] = mapped_column(String(32))
    town_code: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    level: Mapped[str] = mapped_column(String(16))
    department: Mapped[str | None] = mapped_column(String(32), nullable=True)
    reporter: Mapped[str] = mapped_column(String(64))
    reporter_phone: Mapped[str | None] = mapped_column(String(32), nullable=True)
    # residents named in the description or address (personal data): masked for audiences without personal data
    persons: Mapped[list | None] = mapped_column(JSON, nullable=True)
    inspection_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("inspections.id", ondelete="SET NULL"), nullable=True
    )
    outcome: Mapped[str | None] = mapped_column(String(16), nullable=True)
    longstanding: Mapped[bool] = mapped_column(Boolean, default=False)
    reported_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    due_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    # class of (closed_at - reported_at): 0 under a day, c >= 1 for [2^(c-1), 2^c) days; NULL while open.
    # With ix_incidents_close_lag it finds the cases open at a past moment T in about twice their number.
    close_lag: Mapped[int | None] = mapped_column(SmallInteger, nullable=True)

    events: Mapped[list["IncidentEvent"]] = relationship(
        back_populates="incident", order_by="IncidentEvent.seq", lazy="raise"
    )

    __table_args__ = (
        CheckConstraint("severity BETWEEN 1 AND 4", name="ck_incidents_severity"),
        Index("ix_incidents_reported_at", "reported_at"),
        Index("ix_incidents_status_reported_at", "status", "reported_at"),
        Index("ix_incidents_grid_code", "grid_code"),
        Index("ix_incidents_zone_code", "zone_code"),
        Index("ix_incidents_town_code", "town_code"),
        Index("ix_incidents_category", "category"),
        Index("ix_incidents_seq", "seq", unique=True),
        # the cases closed after a past moment, by close-lag class; on PostgreSQL with what the moment counts read
        # (aggregates._moment_stmt; migration 0012), so those reads touch the index alone
        Index("ix_incidents_close_lag", "close_lag", "closed_at",
              postgresql_include=["reported_at", "due_at", "grid_code", "zone_code", "town_code"]),
        # the open cases (see migration 0003): queries say ``status <> 'closed'`` so the planner can use it
        Index("ix_incidents_open", "zone_code", "grid_code", "town_code", "due_at",
              sqlite_where=text("status <> 'closed'"), postgresql_where=text("status <> 'closed'")),
        # the open cases by place (migration 0011): the cells of a multi-county map's view (queries.incident_cells)
        Index("ix_incidents_open_place", "lon", "lat", "severity",
              sqlite_where=text("status <> 'closed'"), postgresql_where=text("status <> 'closed'")),
    )


class IncidentEvent(Base):
    """One lifecycle step (append-only); the creation event has ``from_status`` NULL."""

    __tablename__ = "incident_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    incident_id: Mapped[int] = mapped_column(BigId, ForeignKey("incidents.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(BigInteger)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(64))
    actor_role: Mapped[str | None] = mapped_column(String(16), nullable=True)
    from_status: Mapped[str | None] = mapped_column(String(16), nullable=True)
    to_status: Mapped[str] = mapped_column(String(16))
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    department: Mapped[str | None] = mapped_column(String(32), nullable=True)

    incident: Mapped[Incident] = relationship(back_populates="events", lazy="raise")

    __table_args__ = (
        Index("ix_incident_events_incident_id_seq", "incident_id", "seq"),
        Index("ix_incident_events_at", "at"),
        Index("ix_incident_events_to_status_at", "to_status", "at"),
    )


class HazardSite(Base):
    """Hazard sites (危化品, 加油站, 三合一, 建筑工地) loaded from geodata/hazards.geojson."""

    __tablename__ = "hazard_sites"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(32))
    risk: Mapped[int] = mapped_column(Integer)
    major: Mapped[bool] = mapped_column(Boolean, default=False)
    ring_m: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    lat: Mapped[float] = mapped_column(Float)
    grid_code: Mapped[str] = mapped_column(String(32))
    zone_code: Mapped[str] = mapped_column(String(32))
    town_code: Mapped[str] = mapped_column(String(32))

    __table_args__ = (Index("ix_hazard_sites_grid_code", "grid_code"), Index("ix_hazard_sites_kind", "kind"))


class ChangeCounter(Base):
    """SQLite only: the one-row change-sequence counter (PostgreSQL uses the SEQUENCE ``change_seq``)."""

    __tablename__ = "change_counter"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger)


# --------------------------------------------------------------------------------- KPI aggregates
# Maintained in the same transaction as every write that changes them (dashboard/store/aggregates.py);
# rebuilt from the rows by ``python -m dashboard aggregates rebuild``. Keys: ``lvl`` district|town|zone|grid,
# ``code`` ('*' for the district), ``grain`` d (local day) | m (local month, ``day`` = its first day) | y (local
# year, ``day`` = 1 January; migration 0010).
_AGG_KEY = ("lvl", "code", "grain", "day")
AGG_COUNT_COLUMNS = (
    # by the local day of the report
    "r_new", "r_onsite", "r_town", "r_district", "r_closed", "r_late",
    # by the local day of the close
    "c_closed", "c_in_zone", "c_dispute", "c_dispute_resolved", "c_dispute_in_zone", "c_longstanding",
    # lifecycle funnel: incidents that reached a state, by report day and by close day
    "rf_reported", "rf_onsite_handled", "rf_routed", "rf_escalated", "rf_assigned", "rf_in_progress",
    "rf_handled", "rf_verified", "rf_closed",
    "cf_reported", "cf_onsite_handled", "cf_routed", "cf_escalated", "cf_assigned", "cf_in_progress",
    "cf_handled", "cf_verified", "cf_closed",
    # inspections by their local day
    "i_rows", "i_problems",
)


def _agg_key_columns():
    from sqlalchemy import Column

    return [Column("lvl", String(8), primary_key=True), Column("code", String(32), primary_key=True),
            Column("grain", String(1), primary_key=True), Column("day", Date, primary_key=True)]


def _agg_tables():
    from sqlalchemy import Column, LargeBinary, Table

    md = Base.metadata
    counts = Table("agg_counts", md, *_agg_key_columns(), Column("parent", String(32), nullable=False),
                   *[Column(c, BigInteger, nullable=False, server_default="0") for c in AGG_COUNT_COLUMNS])
    category = Table("agg_category", md, *_agg_key_columns(), Column("category", String(32), primary_key=True),
                     Column("n", BigInteger, nullable=False, server_default="0"))
    dept = Table("agg_dept", md, *_agg_key_columns(), Column("department", String(32), primary_key=True),
                 Column("assigned", BigInteger, nullable=False, server_default="0"),
                 Column("closed", BigInteger, nullable=False, server_default="0"),
                 Column("late", BigInteger, nullable=False, server_default="0"))
    # one histogram of hours per (kind, unit, day or month, key2): bins, counts and sums packed in ``data``
    # (dashboard/store/aggregates.py pack/unpack); ``nvals`` = the number of values it holds
    hours = Table("agg_hist", md, Column("kind", String(8), primary_key=True), *_agg_key_columns(),
                  Column("key2", String(32), primary_key=True),
                  Column("nvals", BigInteger, nullable=False, server_default="0"),
                  Column("data", LargeBinary, nullable=False))
    units = Table("agg_units", md, Column("grid_code", String(32), primary_key=True),
                  Column("grain", String(1), primary_key=True), Column("day", Date, primary_key=True),
                  Column("inspected", LargeBinary, nullable=False), Column("problems", LargeBinary, nullable=False))
    registry = Table("inspection_units", md, Column("unit_id", String(64), primary_key=True),
                     Column("grid_code", String(32), nullable=False), Column("ordinal", Integer, nullable=False))
    Index("ix_inspection_units_grid", registry.c.grid_code, registry.c.ordinal, unique=True)
    # a period reads whole months and edge days of every unit: by grain and day first
    Index("ix_agg_counts_grain_day", counts.c.grain, counts.c.day)
    Index("ix_agg_category_grain_day", category.c.grain, category.c.day)
    Index("ix_agg_dept_grain_day", dept.c.grain, dept.c.day)
    # a bundle reads the histograms of some levels only (district, towns, zones; grids on demand): level in the index
    Index("ix_agg_hist_kind_grain_lvl_day", hours.c.kind, hours.c.grain, hours.c.lvl, hours.c.day)
    Index("ix_agg_units_grain_day", units.c.grain, units.c.day)
    return counts, category, dept, hours, units, registry


AggCounts, AggCategory, AggDept, AggHours, AggUnits, InspectionUnits = _agg_tables()
