"""告警 Alerts: a new incident that is high-severity (重大/特别重大, severity ≥ 3) or lies inside the safety ring of a
major hazardous-chemical site (危化品重大危险源) raises one alert, written in the same transaction as the incident.

An alert stays active until someone acknowledges it (``acknowledged_at``/``acknowledged_by``). Alerts take their
``seq`` from the store's change sequence (the incident's creation seq; a fresh value when acknowledged), so a
reader can follow them incrementally with ``after=<seq>`` exactly like ``/api/v1/changes``.

Each alert is also queued for the configured group robots (DingTalk, WeCom, a webhook) in the same transaction:
``store.outbox`` (the sender is ``services.notify``).

The rings come from the store's hazard registry (``hazard_sites``: ``kind='hazchem' AND major``); the app loads
that registry from ``geodata/hazards.geojson`` at start when it is empty (:func:`ensure_hazard_registry`).
"""
from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, String, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from . import sequence
from .models import Base, BigId, HazardSite, Incident, UTCDateTime, utcnow

HIGH_SEVERITY = 3  # 重大 and above (the kinds' names: domain.vocab.ALERT_KINDS)
EARTH_M_PER_DEG_LAT = 110_574.0  # the same local metric as the map's ring flag (services.maps.inside_rings)


class Alert(Base):
    """One alert per incident (the more specific reason wins: ``hazchem_ring`` over ``high_severity``)."""

    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    incident_id: Mapped[int] = mapped_column(BigId, ForeignKey("incidents.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    hazard_code: Mapped[str | None] = mapped_column(String(32), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    acknowledged_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    acknowledged_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    seq: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (
        CheckConstraint("kind IN ('high_severity', 'hazchem_ring')", name="ck_alerts_kind"),
        Index("ix_alerts_incident_id", "incident_id", unique=True),
        Index("ix_alerts_seq", "seq", unique=True),
        Index("ix_alerts_acknowledged_at", "acknowledged_at"),
    )

    @property
    def active(self) -> bool:
        return self.acknowledged_at is None


class AlertNotFound(LookupError):
    pass


@dataclass(frozen=True)
class Ring:
    code: str
    name: str
    kind: str
    lon: float
    lat: float
    ring_m: float


def distance_m(lon: float, lat: float, lon0: float, lat0: float) -> float:
    """Local equirectangular distance in metres (exact to < 0.1 % at ring scale)."""
    dx = (lon - lon0) * EARTH_M_PER_DEG_LAT * math.cos(math.radians(lat0)) * 1.00335
    dy = (lat - lat0) * EARTH_M_PER_DEG_LAT
    return math.hypot(dx, dy)


def hazchem_rings(session: Session) -> list[Ring]:
    rows = session.execute(
        select(HazardSite).where(HazardSite.kind == "hazchem", HazardSite.major.is_(True)).order_by(HazardSite.code)
    ).scalars()
    return [Ring(r.code, r.name, r.kind, r.lon, r.lat, r.ring_m) for r in rows]


def ring_containing(lon: float, lat: float, rings) -> Ring | None:
    """The ring (nearest centre first) that contains the point, or None."""
    best, best_d = None, math.inf
    for r in rings:
        d = distance_m(lon, lat, r.lon, r.lat)
        if d <= r.ring_m and d < best_d:
            best, best_d = r, d
    return best


def alert_kind(severity: int, ring: Ring | None) -> str | None:
    if ring is not None:
        return "hazchem_ring"
    if severity >= HIGH_SEVERITY:
        return "high_severity"
    return None


def raise_for_new_incident(session: Session, inc: Incident, rings: list[Ring] | None = None) -> Alert | None:
    """Called by ``store.incidents.create_incident`` inside its transaction (after the incident is flushed):
    adds the alert row when a rule applies, and its notification outbox rows (``store.outbox.enqueue``: one per
    configured channel, same transaction). Does not commit. ``rings``: :func:`hazchem_rings` when the caller has
    already read them in this transaction (a batch reads them once for all its incidents)."""
    ring = ring_containing(inc.lon, inc.lat, hazchem_rings(session) if rings is None else rings)
    kind = alert_kind(inc.severity, ring)
    if kind is None:
        return None
    alert = Alert(incident_id=inc.id, kind=kind, hazard_code=ring.code if ring else None,
                  created_at=inc.updated_at or utcnow(), seq=inc.seq)
    session.add(alert)
    from . import outbox  # (outbox imports this module's Alert)

    outbox.enqueue(session, alert, severity=inc.severity, incident_code=inc.code)
    return alert


# ---------------------------------------------------------------------------------------------- read
def current_seq(session: Session) -> int:
    """The highest alert seq committed (0 when none) — cheap (unique index)."""
    return int(session.execute(select(func.coalesce(func.max(Alert.seq), 0))).scalar_one())


def active_count(session: Session) -> int:
    return int(session.execute(select(func.count()).select_from(Alert).where(Alert.acknowledged_at.is_(None)))
               .scalar_one())


def list_alerts(session: Session, *, active_only: bool = True, after: int | None = None,
                limit: int = 100) -> list[tuple[Alert, Incident]]:
    """``(alert, incident)`` pairs. Without ``after``: newest first. With ``after``: the alerts created or
    acknowledged after that seq, in seq order (a feed; pass the last seq back)."""
    stmt = select(Alert, Incident).join(Incident, Incident.id == Alert.incident_id)
    if active_only:
        stmt = stmt.where(Alert.acknowledged_at.is_(None))
    if after is not None:
        stmt = stmt.where(Alert.seq > after).order_by(Alert.seq)
    else:
        stmt = stmt.order_by(Alert.created_at.desc(), Alert.id.desc())
    return [(a, i) for a, i in session.execute(stmt.limit(limit)).all()]


# --------------------------------------------------------------------------------------------- write
def acknowledge(session: Session, alert_id: int, by: str, *, now: dt.datetime | None = None,
                audit: dict | None = None) -> tuple[Alert, bool]:
    """Acknowledge one alert. Returns ``(alert, changed)``; acknowledging twice is a no-op (``changed`` False,
    the first acknowledgement is kept). Raises :class:`AlertNotFound`. Commits, with the ``audit`` entry (the
    audit log's who and from where) when it changed something."""
    try:
        seq = sequence.allocate_one(session)  # first statement of the write (see sequence.py)
        alert = session.execute(select(Alert).where(Alert.id == alert_id).with_for_update()).scalar_one_or_none()
        if alert is None:
            raise AlertNotFound(alert_id)
        if alert.acknowledged_at is not None:
            session.rollback()
            return alert, False
        alert.acknowledged_at = now or utcnow()
        alert.acknowledged_by = by
        alert.seq = seq
        if audit is not None:
            from . import audit as audit_log

            audit_log.add(session, at=alert.acknowledged_at, target=str(alert.id), **audit)
        session.commit()
        return alert, True
    except BaseException:
        session.rollback()
        raise


def ensure_hazard_registry(session: Session, hazards_gdf) -> int:
    """Load ``hazard_sites`` from the geodata hazards layer when the registry is empty (at app start).

    Returns the number loaded (0 when it was already there). Safe when several workers start at once.
    """
    from .hazards import load_hazard_sites

    if session.execute(select(func.count()).select_from(HazardSite)).scalar_one():
        session.rollback()
        return 0
    session.rollback()
    try:
        return load_hazard_sites(session, hazards_gdf)
    except IntegrityError:  # another worker loaded it first
        session.rollback()
        return 0
