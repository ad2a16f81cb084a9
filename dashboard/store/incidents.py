"""Incident repository: create (idempotent), transition (one transaction), get, list (keyset), changes, bulk.

Every write function here is a unit of work: it commits (or rolls back) the session it is given.
Write transactions start with :func:`dashboard.store.sequence.allocate` (see that module for why).
"""
from __future__ import annotations

import datetime as dt
import json
from contextlib import contextmanager
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Iterable, Sequence

import pandas as pd
from sqlalchemy import Engine, and_, func, or_, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..domain import grammar
from ..domain.timefmt import CHINA_TZ  # Beijing time, no DST: incident codes carry its date
from . import aggregates, alerts, catalogue, lifecycle, sequence
from sqlalchemy import JSON, Date

from .models import UTC, Incident, IncidentEvent, Inspection, UTCDateTime, utcnow


class IncidentNotFound(LookupError):
    pass


class CursorError(ValueError):
    pass


def incident_code(reported_at: dt.datetime, seq: int) -> str:
    """Public code ``WX`` + yyyymmdd (Beijing date of the report) + ``-`` + the change sequence (≥ 6 digits).

    The sequence is unique, so the code is unique without a per-day counter.
    """
    if reported_at.tzinfo is None:
        reported_at = reported_at.replace(tzinfo=UTC)
    return f"WX{reported_at.astimezone(CHINA_TZ):%Y%m%d}-{seq:06d}"


def is_overdue(inc: Incident, now: dt.datetime | None = None) -> bool:
    """Open and past its due time."""
    now = now or utcnow()
    return inc.status != "closed" and inc.due_at < now


# --------------------------------------------------------------------------------------------- create
@dataclass
class NewIncident:
    category: str
    lon: float
    lat: float
    grid_code: str
    zone_code: str
    town_code: str
    description: str = ""
    subcategory: str | None = None
    severity: int | None = None  # None -> the category's default
    source: str = "app"
    address: str | None = None
    reporter: str = "api"
    reporter_phone: str | None = None
    persons: list[str] | None = None  # residents named in the text (personal data)
    client_ref: str | None = None
    inspection_id: int | None = None
    longstanding: bool = False
    reported_at: dt.datetime | None = None  # None -> now


def get_by_client_ref(session: Session, client_ref: str) -> Incident | None:
    return session.execute(select(Incident).where(Incident.client_ref == client_ref)).scalar_one_or_none()


def _read_detached_by_client_ref(session: Session, client_ref: str) -> Incident | None:
    """Read by client_ref and end the read transaction; the returned object keeps its loaded values."""
    existing = get_by_client_ref(session, client_ref)
    if existing is not None:
        session.expunge(existing)
    session.rollback()
    return existing


def create_incident(session: Session, new: NewIncident, *, now: dt.datetime | None = None) -> tuple[Incident, bool]:
    """Store a new incident with its creation event. Returns ``(incident, created)``.

    Idempotent on ``client_ref``: a repeated (or concurrent) post with the same reference returns the
    stored incident with ``created=False`` — the unique constraint decides the race, the loser re-reads.
    """
    if new.client_ref:
        # ends the read snapshot before the write transaction starts (see sequence.py)
        existing = _read_detached_by_client_ref(session, new.client_ref)
        if existing is not None:
            return existing, False
    now = now or utcnow()
    reported_at = new.reported_at or now
    cat = catalogue.get(new.category)
    try:
        seq = sequence.allocate_one(session)
        inc = Incident(
            code=incident_code(reported_at, seq),
            client_ref=new.client_ref,
            category=new.category,
            subcategory=new.subcategory,
            severity=new.severity if new.severity is not None else cat.default_severity,
            source=new.source,
            description=new.description,
            address=new.address,
            lon=float(new.lon),
            lat=float(new.lat),
            grid_code=new.grid_code,
            zone_code=new.zone_code,
            town_code=new.town_code,
            status=lifecycle.INITIAL_STATE,
            level=lifecycle.INITIAL_LEVEL,
            department=None,
            reporter=new.reporter,
            reporter_phone=new.reporter_phone,
            persons=list(new.persons) if new.persons else None,
            inspection_id=new.inspection_id,
            longstanding=bool(new.longstanding),
            reported_at=reported_at,
            updated_at=now,
            due_at=reported_at + dt.timedelta(hours=cat.deadline_hours),
            closed_at=None,
            seq=seq,
        )
        session.add(inc)
        session.flush()
        session.add(IncidentEvent(incident_id=inc.id, seq=seq, at=reported_at, actor=new.reporter,
                                  actor_role=None, from_status=None, to_status=inc.status,
                                  note=None, department=None))
        alerts.raise_for_new_incident(session, inc)  # 告警 (severity ≥ 3 / hazchem ring): same transaction
        aggregates.apply_change(session, None, [inc.id])  # the KPI aggregates: same transaction
        session.commit()
        return inc, True
    except IntegrityError:
        session.rollback()
        if new.client_ref:
            existing = _read_detached_by_client_ref(session, new.client_ref)
            if existing is not None:
                return existing, False
        raise


@dataclass
class BatchItem:
    """One result of :func:`create_incidents_batch`, in the order of the items given: the stored incident's
    ``id``, ``code``, ``client_ref`` and ``seq``; ``created`` (this call stored it); ``same_as`` (the index of
    the earlier item of the same batch with the same ``client_ref`` — both answer with that incident);
    ``conflict`` (only when the store refused the item: why; ``id`` is None then)."""

    id: int | None
    code: str | None
    client_ref: str | None
    seq: int | None
    created: bool
    same_as: int | None = None
    conflict: str | None = None


def existing_inspection_ids(session: Session, ids: Iterable[int]) -> set[int]:
    """Which of ``ids`` are stored inspections — one query; ends the read transaction."""
    wanted = sorted(set(ids))
    if not wanted:
        return set()
    found = set(session.execute(select(Inspection.id).where(Inspection.id.in_(wanted))).scalars())
    session.rollback()
    return found


def _incident_row(new: NewIncident, seq: int, now: dt.datetime) -> dict[str, Any]:
    """The ``incidents`` row :func:`create_incident` writes for ``new`` (same defaults), with sequence ``seq``."""
    reported_at = new.reported_at or now
    cat = catalogue.get(new.category)
    return dict(
        code=incident_code(reported_at, seq), client_ref=new.client_ref, category=new.category,
        subcategory=new.subcategory, severity=new.severity if new.severity is not None else cat.default_severity,
        source=new.source, description=new.description, address=new.address, lon=float(new.lon),
        lat=float(new.lat), grid_code=new.grid_code, zone_code=new.zone_code, town_code=new.town_code,
        status=lifecycle.INITIAL_STATE, level=lifecycle.INITIAL_LEVEL, department=None, reporter=new.reporter,
        reporter_phone=new.reporter_phone, persons=list(new.persons) if new.persons else None,
        inspection_id=new.inspection_id, longstanding=bool(new.longstanding), reported_at=reported_at, updated_at=now, due_at=reported_at + dt.timedelta(hours=cat.deadline_hours),
        closed_at=None, seq=seq)


def create_incidents_batch(session: Session, items: Sequence[NewIncident], *,
                           now: dt.datetime | None = None) -> list[BatchItem]:
    """Store many new incidents — each with its creation event and its alert, as :func:`create_incident` — in
    ONE write transaction: one block of the change sequence, bulk inserts, the KPI aggregates, one commit. One
    :class:`BatchItem` per item, in order.

    Idempotent on ``client_ref`` like :func:`create_incident`: references already stored are read with one
    ``SELECT … WHERE client_ref IN (…)`` before the write and answered with the stored incident; a reference
    repeated inside the batch is stored once and its repeats point at the first (``same_as``). A writer that
    stores one of the references between that read and the commit trips the unique constraint: the batch is
    tried once more after re-reading the references, and should that fail too, each item is stored on its own
    (:func:`create_incident`), so a row the constraints refuse (``conflict`` set) takes no other item down.
    """
    items = list(items)
    if not items:
        return []
    now = now or utcnow()
    for _attempt in range(2):
        try:
            return _write_batch(session, items, now)
        except IntegrityError:
            session.rollback()
    return _batch_item_by_item(session, items, now)


def _write_batch(session: Session, items: list[NewIncident], now: dt.datetime) -> list[BatchItem]:
    refs = sorted({n.client_ref for n in items if n.client_ref})
    stored: dict[str, tuple] = {}
    if refs:
        stored = {r.client_ref: r for r in session.execute(
            select(Incident.client_ref, Incident.id, Incident.code, Incident.seq)
            .where(Incident.client_ref.in_(refs))).all()}
        session.rollback()  # ends the read snapshot before the write transaction starts (see sequence.py)
    results: list[BatchItem] = []
    first_of: dict[str, int] = {}
    todo: list[int] = []
    for i, new in enumerate(items):
        ref = new.client_ref
        if ref and ref in first_of:
            results.append(BatchItem(None, None, ref, None, False, same_as=first_of[ref]))  # the first's, below
            continue
        if ref:
            first_of[ref] = i
        if ref and ref in stored:
            s = stored[ref]
            results.append(BatchItem(s.id, s.code, ref, s.seq, False))
        else:
            results.append(BatchItem(None, None, ref, None, True))
            todo.append(i)
    if todo:
        try:
            first = sequence.allocate(session, len(todo))
            rows = [_incident_row(items[i], first + k, now) for k, i in enumerate(todo)]
            for row, iid in zip(rows, _reserve_incident_ids(session, len(rows))):
                row["id"] = iid
            # Plain rows, COPY / the driver's executemany: ORM objects cost ~0.3 ms each to build here, and an
            # ORM flush sends one huge INSERT … RETURNING that psycopg parses anew every time (5x slower).
            _bulk_rows(session, Incident.__table__, _INCIDENT_COLS, rows)
            _bulk_rows(session, IncidentEvent.__table__, [c for c in _EVENT_COLS if c != "id"], [
                {"incident_id": r["id"], "seq": r["seq"], "at": r["reported_at"], "actor": r["reporter"],
                 "actor_role": None, "from_status": None, "to_status": r["status"], "note": None,
                 "department": None} for r in rows])
            rings = alerts.hazchem_rings(session)
            for r in rows:  # the single POST's rule (it reads the incident's attributes), same transaction
                alerts.raise_for_new_incident(session, SimpleNamespace(**r), rings)
            session.flush()
            aggregates.apply_new(session, rows, {r["id"]: [(r["seq"], r["reported_at"], r["status"])] for r in rows})
            session.commit()
        except BaseException:
            session.rollback()
            raise
        for i, r in zip(todo, rows):
            results[i] = BatchItem(r["id"], r["code"], r["client_ref"], r["seq"], True)
    for r in results:
        if r.same_as is not None:
            first = results[r.same_as]
            r.id, r.code, r.seq = first.id, first.code, first.seq
    return results


def _reserve_incident_ids(session: Session, n: int) -> list[int]:
    """``n`` new incident ids, inside a write transaction that holds the sequence lock (:func:`sequence.allocate`)."""
    if session.get_bind().dialect.name == "postgresql":
        return sorted(int(v) for v in session.execute(text(
            "SELECT nextval(pg_get_serial_sequence('incidents', 'id')) FROM generate_series(1, :n)"), {"n": n}
        ).scalars())
    return _next_ids(session, Incident, n)  # SQLite: max(id) + 1 … is safe under its single writer lock


def _bulk_rows(session: Session, table, cols: list[str], rows: list[dict]) -> None:
    """Insert ``rows`` in the session's transaction: ``COPY … FROM STDIN`` on PostgreSQL (3x faster than the
    pipelined executemany for 1,000 rows), :func:`_executemany` elsewhere. A constraint violation is raised as
    SQLAlchemy's ``IntegrityError`` either way."""
    conn = session.connection()
    json_cols = [c.name for c in table.columns if isinstance(c.type, JSON) and c.name in cols]
    if json_cols:  # JSON values as the JSON type would store them (the raw driver paths bind no lists)
        rows = [{**r, **{c: None if r.get(c) is None else json.dumps(r[c], ensure_ascii=False) for c in json_cols}}
                for r in rows]
    if conn.dialect.name != "postgresql":
        _executemany(session, table, cols, rows)
        return
    dbapi_conn = conn.connection.driver_connection
    try:
        with dbapi_conn.cursor() as cur, cur.copy(f"COPY {table.name} ({', '.join(cols)}) FROM STDIN") as copy:
            for r in rows:
                copy.write_row([_pg_time(r.get(c)) for c in cols])
    except conn.dialect.dbapi.IntegrityError as e:
        raise IntegrityError(f"COPY {table.name}", None, e) from e


def _batch_item_by_item(session: Session, items: list[NewIncident], now: dt.datetime) -> list[BatchItem]:
    """The fallback of :func:`create_incidents_batch`: one :func:`create_incident` transaction per item."""
    results: list[BatchItem] = []
    first_of: dict[str, int] = {}
    for i, new in enumerate(items):
        try:
            inc, created = create_incident(session, new, now=now)
        except IntegrityError as e:  # create_incident rolled back
            results.append(BatchItem(None, None, new.client_ref, None, False,
                                     conflict=str(e.orig).strip().splitlines()[0][:200]))
            continue
        same_as = first_of.get(new.client_ref) if new.client_ref else None
        if new.client_ref and same_as is None:
            first_of[new.client_ref] = i
        results.append(BatchItem(inc.id, inc.code, inc.client_ref, inc.seq, created, same_as=same_as))
    return results


# ----------------------------------------------------------------------------------------- transition
def transition(
    session: Session,
    incident_id: int,
    to: str,
    *,
    actor: str,
    actor_role: str,
    note: str | None = None,
    department: str | None = None,
    outcome: str | None = None,
    at: dt.datetime | None = None,
    audit: dict | None = None,
) -> tuple[Incident, IncidentEvent]:
    """Move one incident one step along the lifecycle, atomically.

    Status, level, department, updated_at/closed_at, seq and the event row are written in one transaction,
    with the incident row locked (``SELECT … FOR UPDATE`` on PostgreSQL; SQLite holds its writer lock).
    Raises :class:`IncidentNotFound` or :class:`lifecycle.TransitionError` (nothing is written then).
    """
    at = at or utcnow()
    try:
        seq = sequence.allocate_one(session)
        inc = session.execute(
            select(Incident).where(Incident.id == incident_id).with_for_update()
        ).scalar_one_or_none()
        if inc is None:
            raise IncidentNotFound(incident_id)
        before = aggregates.capture(session, [inc.id])
        step = lifecycle.apply(inc.status, inc.level, to, actor_role=actor_role, department=department,
                               current_department=inc.department)
        inc.status = step.to_status
        inc.level = step.level
        inc.department = step.department
        inc.updated_at = at
        inc.seq = seq
        if step.to_status == "closed":
            inc.closed_at = at
            if outcome is not None:
                inc.outcome = outcome
        ev = IncidentEvent(incident_id=inc.id, seq=seq, at=at, actor=actor, actor_role=actor_role,
                           from_status=step.from_status, to_status=step.to_status, note=note,
                           department=department)
        session.add(ev)
        aggregates.apply_change(session, before, [inc.id])  # the KPI aggregates: same transaction
        if audit is not None:  # the audit log's entry (store.audit): same transaction
            from . import audit as audit_log

            audit_log.add(session, at=at, target=inc.code, **audit)
        session.commit()
        return inc, ev
    except BaseException:
        session.rollback()
        raise


# ------------------------------------------------------------------------------------------------ read
def get_incident(session: Session, incident_id: int) -> Incident | None:
    return session.get(Incident, incident_id)


def get_by_code(session: Session, code: str) -> Incident | None:
    return session.execute(select(Incident).where(Incident.code == code)).scalar_one_or_none()


def events_of(session: Session, incident_id: int) -> list[IncidentEvent]:
    return list(session.execute(
        select(IncidentEvent).where(IncidentEvent.incident_id == incident_id).order_by(IncidentEvent.seq,
                                                                                      IncidentEvent.id)
    ).scalars())


@dataclass
class IncidentFilter:
    """Every field is optional; sequences mean "any of"."""

    statuses: Sequence[str] = ()
    categories: Sequence[str] = ()
    severities: Sequence[int] = ()
    sources: Sequence[str] = ()
    levels: Sequence[str] = ()
    departments: Sequence[str] = ()
    towns: Sequence[str] = ()
    zones: Sequence[str] = ()
    grids: Sequence[str] = ()
    reported_from: dt.datetime | None = None  # inclusive
    reported_to: dt.datetime | None = None  # exclusive
    bbox: tuple[float, float, float, float] | None = None  # minlon, minlat, maxlon, maxlat
    q: str | None = None  # substring of code, address or description (case-insensitive)
    overdue: bool | None = None
    now: dt.datetime | None = None
    ids: Sequence[int] = ()
    codes: Sequence[str] = ()
    # the towns of the counties / cities asked for (``services.filters``: a county or city is read as its towns);
    # None: no such limit; empty: nothing matches (an unknown county)
    town_scope: Sequence[str] | None = None

    def conditions(self) -> list:
        c: list = []
        statuses = list(self.statuses)
        if statuses and set(statuses) == set(lifecycle.OPEN_STATES):
            c.append(Incident.status != "closed")  # matches the partial index ix_incidents_open exactly
            statuses = []
        for values, col in ((statuses, Incident.status), (self.categories, Incident.category),
                            (self.severities, Incident.severity), (self.sources, Incident.source),
                            (self.levels, Incident.level), (self.departments, Incident.department),
                            (self.towns, Incident.town_code), (self.zones, Incident.zone_code),
                            (self.grids, Incident.grid_code), (self.ids, Incident.id),
                            (self.codes, Incident.code)):
            if values:
                c.append(col.in_(list(values)))
        if self.town_scope is not None:
            c.append(Incident.town_code.in_(list(self.town_scope)))
        if self.reported_from is not None:
            c.append(Incident.reported_at >= self.reported_from)
        if self.reported_to is not None:
            c.append(Incident.reported_at < self.reported_to)
        if self.bbox is not None:
            minlon, minlat, maxlon, maxlat = self.bbox
            c.append(Incident.lon.between(minlon, maxlon))
            c.append(Incident.lat.between(minlat, maxlat))
        if self.q:
            pattern = "%" + self.q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            c.append(or_(Incident.code.ilike(pattern, escape="\\"),
                         Incident.address.ilike(pattern, escape="\\"),
                         Incident.description.ilike(pattern, escape="\\")))
        if self.overdue is not None:
            now = self.now or utcnow()
            cond = and_(Incident.status != "closed", Incident.due_at < now)
            c.append(cond if self.overdue else ~cond)
        return c


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = dt.timedelta(microseconds=1)


def encode_cursor(reported_at: dt.datetime, incident_id: int) -> str:
    """The position after ``(reported_at, incident_id)`` in the newest-first order: ``<µs since 1970>.<id>`` (the
    form ``domain.grammar.CURSOR``, exact to the microsecond)."""
    t = reported_at if reported_at.tzinfo else reported_at.replace(tzinfo=UTC)
    return f"{(t - _EPOCH) // _MICRO}.{incident_id}"


def decode_cursor(cursor: str) -> tuple[dt.datetime, int]:
    """``(reported_at, id)`` of a cursor; any text of the cursor's form is a position (ids past the largest are
    the largest). Raises :class:`CursorError` for any other text."""
    if not grammar.matches(grammar.CURSOR, cursor):
        raise CursorError("invalid cursor")
    micros, _, ident = cursor.partition(".")
    return _EPOCH + int(micros) * _MICRO, min(int(ident), 2**63 - 1)


def list_incidents(
    session: Session, flt: IncidentFilter | None = None, *, limit: int = 100, cursor: str | None = None
) -> tuple[list[Incident], str | None]:
    """Newest first (reported_at desc, id desc), keyset-paginated. Returns ``(rows, next_cursor)``."""
    flt = flt or IncidentFilter()
    stmt = select(Incident).where(*flt.conditions())
    if cursor:
        t, i = decode_cursor(cursor)
        stmt = stmt.where(or_(Incident.reported_at < t, and_(Incident.reported_at == t, Incident.id < i)))
    stmt = stmt.order_by(Incident.reported_at.desc(), Incident.id.desc()).limit(limit + 1)
    rows = list(session.execute(stmt).scalars())
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor(rows[-1].reported_at, rows[-1].id)
    return rows, next_cursor


def count_incidents(session: Session, flt: IncidentFilter | None = None) -> int:
    flt = flt or IncidentFilter()
    return int(session.execute(select(func.count()).select_from(Incident).where(*flt.conditions())).scalar_one())


def changes_after(session: Session, after: int, *, limit: int = 1000) -> tuple[list[Incident], int]:
    """Incidents created or changed after sequence ``after`` (their current state), in seq order.

    Returns ``(rows, last_seq)``; ``last_seq`` is the seq of the last row, or ``after`` when there is none —
    pass it as the next ``after``.
    """
    rows = list(session.execute(
        select(Incident).where(Incident.seq > after).order_by(Incident.seq).limit(limit)
    ).scalars())
    return rows, (rows[-1].seq if rows else after)


# ------------------------------------------------------------------------------------------------ bulk
_INCIDENT_COLS = [c.name for c in Incident.__table__.columns]
_EVENT_COLS = [c.name for c in IncidentEvent.__table__.columns]
_INSPECTION_COLS = [c.name for c in Inspection.__table__.columns]
_BATCH = 20_000


def _bump_sequence_to(session: Session, value: int) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": sequence.ADVISORY_LOCK_KEY})
        session.execute(text(
            "SELECT setval('change_seq', GREATEST(:v, (SELECT CASE WHEN is_called THEN last_value ELSE 0 END"
            " FROM change_seq)), true)"), {"v": value})
    else:
        session.execute(text("UPDATE change_counter SET value = MAX(value, :v) WHERE id = 1"), {"v": value})


def _next_ids(session: Session, model, n: int) -> list[int]:
    start = int(session.execute(select(func.coalesce(func.max(model.id), 0))).scalar_one()) + 1
    return list(range(start, start + n))


def _fix_pg_id_sequence(session: Session, table: str) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT COALESCE(MAX(id), 1) FROM {table}))"))


def _sqlite_time(v):
    if isinstance(v, dt.datetime):
        if v.tzinfo is not None:
            v = v.astimezone(UTC).replace(tzinfo=None)
        # the same text form SQLAlchemy's SQLite DateTime writes (always with microseconds)
        return v.isoformat(" ", "microseconds")
    if isinstance(v, dt.date):
        return v.isoformat()
    return v


def _pg_time(v):
    if isinstance(v, dt.datetime) and v.tzinfo is None:
        return v.replace(tzinfo=UTC)  # naive = UTC, as UTCDateTime does
    return v


def _executemany(session: Session, table, cols: list[str], rows: list[dict]) -> None:
    """Core executemany straight on the driver (no per-value SQLAlchemy type processing): fast bulk load.

    Date/time values get the same conversion as :class:`UTCDateTime` / ``Date`` would give them.
    """
    conn = session.connection()
    time_cols = {c.name for c in table.columns if isinstance(c.type, (UTCDateTime, Date))}
    conv = _sqlite_time if conn.dialect.name == "sqlite" else _pg_time
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    sql = f"INSERT INTO {table.name} ({', '.join(cols)}) VALUES ({', '.join([mark] * len(cols))})"
    time_idx = [i for i, c in enumerate(cols) if c in time_cols]
    for i in range(0, len(rows), _BATCH):
        params = [list(map(r.get, cols)) for r in rows[i:i + _BATCH]]
        for p in params:
            for j in time_idx:
                p[j] = conv(p[j])
        conn.exec_driver_sql(sql, [tuple(p) for p in params])


_BULK_TABLES = {t.name: t for t in (Inspection.__table__, Incident.__table__, IncidentEvent.__table__)}
_COPY_ROWS = 100_000  # rows per COPY write / executemany: bounds the text held in memory


@contextmanager
def bulk_load(engine: Engine):
    """A session for a big load into ``inspections``, ``incidents`` and ``incident_events`` (the demo history)
    with :func:`bulk_copy`: ONE transaction, committed at the end of the block and rolled back on an error
    (the store is then as it was, indexes included).

    - PostgreSQL: the indexes and constraints of the three tables (primary keys, unique constraints, foreign
      keys, including those of other tables that point at them) are dropped at the start and recreated at the
      end — building an index once is much faster than maintaining it row by row, and the recreated
      constraints check the loaded rows — then ANALYZE.
    - SQLite: the non-unique indexes of the three tables are dropped and rebuilt the same way, then ANALYZE.

    At the end the change sequence is raised to the highest ``seq`` written and PostgreSQL's id sequences to
    ``max(id)``. Use with no other writers: take the first ``seq`` with :func:`sequence.allocate` (on
    PostgreSQL that holds the sequence lock to the commit) and number the rows yourself.
    """
    from . import session_factory

    session = session_factory(engine)()
    session.info["bulk_load"] = {"max_seq": 0}
    try:
        conn = session.connection()
        pg = conn.dialect.name == "postgresql"
        restore = _pg_drop_secondary(conn) if pg else _sqlite_drop_secondary(conn)
        if pg:
            session.info["bulk_load"]["types"] = bulk_copy_types(session)
        if pg and _pg_bulk_tables_empty(conn):
            # emptied in this transaction (a no-op: empty, so nothing can point at them either), the tables
            # take COPY … FREEZE: rows written frozen, so the first reads (the aggregates' rebuild, the first
            # queries) do not rewrite every page to set hint bits and VACUUM has nothing to freeze later
            conn.exec_driver_sql(f"TRUNCATE {', '.join(_BULK_TABLES)} CASCADE")
            session.info["bulk_load"]["freeze"] = True
        yield session
        conn = session.connection()
        if pg:
            conn.exec_driver_sql("SET LOCAL maintenance_work_mem = '1GB'")
        for sql in restore:
            conn.exec_driver_sql(sql)
        if session.info["bulk_load"]["max_seq"]:
            _bump_sequence_to(session, session.info["bulk_load"]["max_seq"])
        for name in _BULK_TABLES:
            _fix_pg_id_sequence(session, name)
        conn.exec_driver_sql(f"ANALYZE {', '.join(_BULK_TABLES)}" if pg else "ANALYZE")
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def _pg_drop_secondary(conn, tables=None) -> list[str]:
    """Drop the indexes and constraints of the bulk tables (or of ``tables``, names) — primary keys, unique
    constraints, foreign keys (also those of other tables pointing at them, e.g. alerts), other indexes — in the
    current transaction; return the statements that recreate them, in order (keys first, foreign keys last)."""
    oids = ", ".join(f"'{name}'::regclass" for name in (tables if tables is not None else _BULK_TABLES))
    cons = conn.exec_driver_sql(
        f"SELECT conrelid::regclass::text, conname, contype, pg_get_constraintdef(oid) FROM pg_constraint "
        f"WHERE (conrelid IN ({oids}) AND contype IN ('p', 'u', 'f')) OR (confrelid IN ({oids}) AND contype = 'f') "
        f"ORDER BY conrelid::regclass::text, conname").all()
    idx = conn.exec_driver_sql(
        f"SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid) FROM pg_index i "
        f"WHERE indrelid IN ({oids}) AND NOT EXISTS (SELECT 1 FROM pg_constraint c "
        f"WHERE c.conindid = i.indexrelid AND c.contype IN ('p', 'u', 'x')) ORDER BY 1").all()
    order = {"f": 0, "u": 1, "p": 2}  # drop what depends on a key before the key
    cons = sorted(cons, key=lambda c: order[c[2]])
    for table, name, _kind, _definition in cons:
        conn.exec_driver_sql(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    for name, _definition in idx:
        conn.exec_driver_sql(f"DROP INDEX {name}")
    return ([f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}' for table, name, _k, definition in
             reversed(cons) if _k != "f"]
            + [definition for _name, definition in idx]
            + [f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}' for table, name, _k, definition in cons
               if _k == "f"])


def _pg_bulk_tables_empty(conn) -> bool:
    return not any(conn.exec_driver_sql(f"SELECT 1 FROM {name} LIMIT 1").first() for name in _BULK_TABLES)


def _sqlite_drop_secondary(conn) -> list[str]:
    from sqlalchemy.schema import CreateIndex

    dropped = [ix for t in _BULK_TABLES.values() for ix in t.indexes if not ix.unique]
    for ix in dropped:
        conn.exec_driver_sql(f"DROP INDEX IF EXISTS {ix.name}")
    return [str(CreateIndex(ix).compile(dialect=conn.dialect)) for ix in dropped]


def bulk_id_bases(session: Session) -> dict[str, int]:
    """The next free id of each bulk table (``max(id) + 1``), for a loader that numbers its rows itself."""
    return {name: int(session.execute(select(func.coalesce(func.max(t.c.id), 0))).scalar_one()) + 1
            for name, t in _BULK_TABLES.items()}


def bulk_has_demo_rows(engine: Engine) -> bool:
    """Any inspection, or any incident the demo generator wrote (``client_ref`` ``demo:…``)."""
    with engine.connect() as conn:
        if conn.execute(select(Inspection.id).limit(1)).first() is not None:
            return True
        return conn.execute(select(Incident.id).where(Incident.client_ref.like("demo:%")).limit(1)).first() \
            is not None


def bulk_wipe(engine: Engine) -> None:
    """Delete every incident, event and inspection (and so, by their foreign keys, the incidents' alerts).
    PostgreSQL: ``TRUNCATE`` (instant on millions of rows)."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("TRUNCATE incident_events, incidents, inspections CASCADE")
        else:
            for name in ("incident_events", "incidents", "inspections"):
                conn.exec_driver_sql(f"DELETE FROM {name}")


def bulk_copy(session: Session, table: str, columns: dict[str, Any]) -> int:
    """Append rows given column by column to ``inspections``, ``incidents`` or ``incident_events``: numpy
    arrays, pandas Series or lists of one length; NULL as ``None`` / NaN / NaT; times as ``datetime64`` (naive
    = UTC) or datetimes, dates as ``datetime64[D]`` or dates. PostgreSQL: ``COPY … FROM STDIN`` (text format);
    SQLite: ``executemany``. Nothing is filled in (give every NOT NULL column; ``incident_events.id`` may be
    left to the table) and no aggregate is touched: for :func:`bulk_load`. Returns the number of rows."""
    if session.connection().dialect.name == "postgresql":
        info = session.info.get("bulk_load")
        types = info.get("types") if info is not None else None
        return bulk_copy_write(session, bulk_copy_payload(table, columns, (types or bulk_copy_types(session))[table]))
    names, values, kinds = _bulk_columns(table, columns)
    n = len(values[0]) if values else 0
    _note_seq(session, names, values)
    sql = f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"
    for a in range(0, n, _COPY_ROWS):
        cols = [_sqlite_values(v[a:a + _COPY_ROWS], k) for v, k in zip(values, kinds)]
        session.connection().exec_driver_sql(sql, list(zip(*cols)))
    return n


@dataclass
class CopyPayload:
    """Rows of one bulk table as PostgreSQL ``COPY`` text (``blocks`` of bytes), made by
    :func:`bulk_copy_payload` — anywhere, e.g. in a worker process — and written by :func:`bulk_copy_write`."""

    table: str
    columns: list[str]
    blocks: list[bytes]
    rows: int
    max_seq: int
    binary: bool = False


def bulk_copy_payload(table: str, columns: dict[str, Any], types: dict[str, str] | None = None) -> CopyPayload:
    """The ``COPY`` data of rows given as in :func:`bulk_copy` (no database needed): PostgreSQL's binary format
    when the table's column ``types`` are given (:func:`bulk_copy_types`; cheaper to write and for the server
    to read), else text."""
    import numpy as np

    names, values, kinds = _bulk_columns(table, columns)
    n = len(values[0]) if values else 0
    max_seq = int(np.max(values[names.index("seq")])) if n and "seq" in names else 0
    blocks = _pg_binary_blocks(names, values, kinds, types) if types is not None else None
    if blocks is not None:
        return CopyPayload(table, names, blocks, n, max_seq, binary=True)
    blocks = []
    for a in range(0, n, _COPY_ROWS):
        cols = [_pg_text(v[a:a + _COPY_ROWS], k) for v, k in zip(values, kinds)]
        blocks.append(("\n".join(map("\t".join, zip(*cols))) + "\n").encode())
    return CopyPayload(table, names, blocks, n, max_seq)


def bulk_copy_write(session: Session, payload: CopyPayload) -> int:
    """``COPY`` a :func:`bulk_copy_payload` into its table (PostgreSQL). Returns the number of rows."""
    if not payload.rows:
        return 0
    info = session.info.get("bulk_load")
    if info is not None:
        info["max_seq"] = max(info["max_seq"], payload.max_seq)
    options = [o for o, on in (("FORMAT binary", payload.binary), ("FREEZE", info is not None and info.get("freeze")))
               if on]
    sql = f"COPY {payload.table} ({', '.join(payload.columns)}) FROM STDIN" + (f" ({', '.join(options)})"
                                                                               if options else "")
    with session.connection().connection.driver_connection.cursor() as cur, cur.copy(sql) as copy:
        for block in payload.blocks:
            copy.write(block)
    return payload.rows


# PostgreSQL binary COPY: per type, (numpy big-endian dtype, width); text types carry UTF-8 bytes
_PG_BINARY = {"bigint": (">i8", 8), "integer": (">i4", 4), "smallint": (">i2", 2), "double precision": (">f8", 8),
              "real": (">f4", 4), "boolean": ("u1", 1), "timestamp with time zone": (">i8", 8),
              "timestamp without time zone": (">i8", 8), "date": (">i4", 4), "text": None, "bytea": "bytes"}
_PG_EPOCH_US = 946_684_800_000_000  # 2000-01-01 in Unix microseconds: the binary format's time origin
_PG_EPOCH_DAYS = 10_957
_NULL_FIELD = b"\xff\xff\xff\xff"
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)


def bulk_copy_types(session: Session) -> dict[str, dict[str, str]]:
    """Column types of the bulk tables as PostgreSQL names them (``bigint``, ``text``, …), for
    :func:`bulk_copy_payload`'s binary format."""
    out: dict[str, dict[str, str]] = {}
    for name in _BULK_TABLES:
        rows = session.connection().exec_driver_sql(
            f"SELECT attname, format_type(atttypid, NULL) FROM pg_attribute WHERE attrelid = '{name}'::regclass "
            f"AND attnum > 0 AND NOT attisdropped").all()
        out[name] = {a: ("text" if t in ("character varying", "character") else t) for a, t in rows}
    return out


def _pg_binary_blocks(names: list[str], values: list, kinds: list[str], types: dict[str, str]) -> list[bytes] | None:
    """The rows in PostgreSQL's binary COPY format (header in the first block, trailer in the last), or None
    when a column has a type this does not encode."""
    import numpy as np

    if any(types.get(c) not in _PG_BINARY for c in names):
        return None
    n = len(values[0]) if values else 0
    blocks = []
    for a in range(0, n, _COPY_ROWS):
        fields = [_pg_binary_field(v[a:a + _COPY_ROWS], k, types[c]) for c, v, k in zip(names, values, kinds)]
        m = len(fields[0])
        count = np.full(m, len(names), ">i2").view(np.uint8).reshape(m, 2)
        # runs of fixed-width columns become one bytes object per row; each other field is its own object
        pieces, run = [], [count]
        for f in fields + [None]:
            if isinstance(f, np.ndarray):
                run.append(f)
                continue
            if run:
                joined = np.ascontiguousarray(np.hstack(run))
                pieces.append(joined.view(f"V{joined.shape[1]}").ravel().tolist())
                run = []
            if f is not None:
                pieces.append(f)
        body = b"".join([p for row in zip(*pieces) for p in row])
        blocks.append((_COPY_HEADER if a == 0 else b"") + body)
    if not blocks:
        blocks.append(_COPY_HEADER)
    blocks[-1] += b"\xff\xff"
    return blocks


def _pg_binary_field(a, kind: str, pgtype: str):
    """One column in binary COPY form: a (rows × 4+width) uint8 array for a NOT-NULL fixed-width column, else a
    list of per-row field bytes (length + payload, or -1 for NULL)."""
    import numpy as np
    import pandas as pd

    spec = _PG_BINARY[pgtype]
    if spec == "bytes":  # bytea: the bytes as they are
        return [_NULL_FIELD if v is None else len(v).to_bytes(4, "big") + bytes(v) for v in a.tolist()]
    if spec is None:  # text: each distinct value encoded once
        null = pd.isna(a)
        codes, uniq = pd.factorize(np.asarray(a, dtype=object), use_na_sentinel=True)
        enc = [str(u).encode() for u in uniq]
        if kind == "bool":
            enc = [("t" if u else "f").encode() for u in uniq]
        table = np.array([len(b).to_bytes(4, "big") + b for b in enc] + [_NULL_FIELD], dtype=object)
        return table[np.where(null, len(enc), codes)].tolist()
    dtype, width = spec
    if pgtype.startswith("timestamp"):
        t = _as_datetime64(a, "us")
        null = np.isnat(t)
        raw = np.where(null, 0, t.astype(np.int64) - _PG_EPOCH_US)
    elif pgtype == "date":
        t = _as_datetime64(a, "D")
        null = np.isnat(t)
        raw = np.where(null, 0, t.astype(np.int64) - _PG_EPOCH_DAYS)
    elif a.dtype.kind in "iub":
        null = np.zeros(len(a), bool)
        raw = a
    else:
        null = pd.isna(a)
        raw = np.where(null, 0, a)
        if a.dtype.kind == "O":
            raw = raw.astype(float if dtype in (">f8", ">f4") else np.int64)
    if dtype.endswith(("i8", "i4", "i2")) and np.asarray(raw).dtype.kind == "f":
        raw = np.asarray(raw).astype(np.int64)
    body = np.asarray(raw).astype(dtype).view(np.uint8).reshape(len(a), width)
    head = np.full(len(a), width, ">i4").view(np.uint8).reshape(len(a), 4)
    fixed = np.hstack([head, body])
    if not null.any():
        return fixed
    rows = fixed.view(f"V{4 + width}").ravel().tolist()
    return [_NULL_FIELD if m else r for r, m in zip(rows, null.tolist())]


def _bulk_columns(table: str, columns: dict[str, Any]) -> tuple[list[str], list, list[str]]:
    import numpy as np

    t = _BULK_TABLES[table]
    unknown = set(columns) - set(t.c.keys())
    if unknown:
        raise ValueError(f"{table} has no column(s) {sorted(unknown)}")
    names = list(columns)
    values = [np.asarray(columns[c].to_numpy() if hasattr(columns[c], "to_numpy") else columns[c])
              for c in names]
    if values and any(len(v) != len(values[0]) for v in values):
        raise ValueError("columns of different lengths")
    return names, values, [_copy_kind(t.c[c].type) for c in names]


def _note_seq(session: Session, names: list[str], values: list) -> None:
    info = session.info.get("bulk_load")
    if info is not None and "seq" in names and len(values[0]):
        info["max_seq"] = max(info["max_seq"], int(max(values[names.index("seq")])))


def _copy_kind(sa_type) -> str:
    from sqlalchemy import Boolean, Float, Integer

    if isinstance(sa_type, UTCDateTime):
        return "time"
    if isinstance(sa_type, Date):
        return "date"
    for cls, kind in ((Boolean, "bool"), (Float, "float"), (Integer, "int")):  # BigInteger, SmallInteger too
        if isinstance(sa_type, cls):
            return kind
    return "text"


def _as_datetime64(a, unit: str):
    """``a`` as naive-UTC ``datetime64[unit]`` (from datetime64, datetimes, dates or ISO strings)."""
    import pandas as pd

    if a.dtype.kind != "M":
        a = pd.to_datetime(pd.Series(a, dtype=object), utc=True).dt.tz_convert(None).to_numpy()
    return a.astype(f"datetime64[{unit}]")


def _is_null(v) -> bool:
    return v is None or v != v  # None, NaN, NaT


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _pg_text(a, kind: str) -> list[str]:
    """One column as COPY text-format fields (``\\N`` for NULL)."""
    import numpy as np
    import pandas as pd

    if kind in ("time", "date"):
        unit = "D" if kind == "date" else ("s" if a.dtype == np.dtype("datetime64[s]") else "us")
        t = _as_datetime64(a, unit)
        out = np.datetime_as_string(t, unit=unit, timezone="naive" if kind == "date" else "UTC").tolist()
        return ["\\N" if x == "NaT" else x for x in out] if np.isnat(t).any() else out
    if kind == "bool" and a.dtype.kind == "b":
        return np.where(a, "t", "f").tolist()
    if a.dtype.kind in "iu":
        return list(map(str, a.tolist()))
    if a.dtype.kind == "f":
        nan = np.isnan(a)
        out = list(map(str, np.where(nan, 0, a).astype(np.int64).tolist())) if kind == "int" else \
            list(map(repr, a.tolist()))
        return [("\\N" if m else x) for x, m in zip(out, nan.tolist())] if nan.any() else out
    null = pd.isna(a)
    if kind == "bool":
        return ["\\N" if m else ("t" if v else "f") for v, m in zip(a.tolist(), null.tolist())]
    if pd.api.types.infer_dtype(a, skipna=True) not in ("string", "empty"):
        a = np.array([None if m else str(v) for v, m in zip(a.tolist(), null.tolist())], dtype=object)
    if kind == "text":
        body = "\x00".join(a[~null].tolist())
        if any(ch in body for ch in "\\\t\n\r"):
            a = np.array([v if m else v.translate(_COPY_ESCAPES) for v, m in zip(a.tolist(), null.tolist())],
                         dtype=object)
    return np.where(null, "\\N", a).tolist() if null.any() else a.tolist()


def _sqlite_values(a, kind: str) -> list:
    """One column as Python values for SQLite (times in the text form SQLAlchemy writes, with microseconds)."""
    import numpy as np

    if kind in ("time", "date"):
        t = _as_datetime64(a, "D" if kind == "date" else "us")
        s = np.datetime_as_string(t, unit="D" if kind == "date" else "us")
        out = (np.strings.replace(s, "T", " ", 1) if kind == "time" else s).tolist()
        nat = np.isnat(t)
        return [None if m else x for x, m in zip(out, nat.tolist())] if nat.any() else out
    if a.dtype.kind in "iub":
        return a.astype(np.int64).tolist()
    if a.dtype.kind == "f":
        out = (np.where(np.isnan(a), 0, a).astype(np.int64) if kind == "int" else a).tolist()
        return [None if m else x for x, m in zip(out, np.isnan(a).tolist())] if np.isnan(a).any() else out
    return [None if _is_null(v) else (bool(v) if kind == "bool" else v) for v in a.tolist()]


def bulk_insert_incidents(session: Session, rows: Iterable[dict[str, Any]], *, commit: bool = True,
                          aggregate: bool = True) -> list[int]:
    """Insert many incidents with Core ``executemany`` (for the demo generator). Returns their ids.

    Each row is a dict of ``incidents`` columns. Filled in when absent: ``id`` (after the current max; use on a
    store nobody else writes to at that moment), ``seq`` (allocated in one block), ``code``, ``status``
    (reported), ``level`` (onsite), ``severity`` (category default), ``source`` (patrol), ``description``
    (""), ``reporter`` ("demo"), ``longstanding`` (False), ``updated_at`` (reported_at), ``due_at``
    (reported_at + category deadline). Creation events are *not* written: use :func:`bulk_insert_events`.
    """
    rows = [dict(r) for r in rows]
    if not rows:
        return []
    missing_seq = [r for r in rows if r.get("seq") is None]
    if missing_seq:
        first = sequence.allocate(session, len(missing_seq))
        for k, r in enumerate(missing_seq):
            r["seq"] = first + k
    missing_id = [r for r in rows if r.get("id") is None]
    if missing_id:
        for r, i in zip(missing_id, _next_ids(session, Incident, len(missing_id))):
            r["id"] = i
    for r in rows:
        cat = catalogue.get(r["category"])
        r.setdefault("status", lifecycle.INITIAL_STATE)
        r.setdefault("level", lifecycle.INITIAL_LEVEL)
        if r.get("severity") is None:
            r["severity"] = cat.default_severity
        r.setdefault("source", "patrol")
        r.setdefault("description", "")
        r.setdefault("reporter", "demo")
        r.setdefault("longstanding", False)
        if r.get("code") is None:
            r["code"] = incident_code(r["reported_at"], r["seq"])
        if r.get("updated_at") is None:
            r["updated_at"] = r["reported_at"]
        if r.get("due_at") is None:
            r["due_at"] = r["reported_at"] + dt.timedelta(hours=cat.deadline_hours)
        if r.get("close_lag") is None:
            r["close_lag"] = aggregates.close_lag_class(r["reported_at"], r.get("closed_at"))
    _executemany(session, Incident.__table__, _INCIDENT_COLS, rows)
    if aggregate:  # a bulk load that rebuilds the aggregates at its end passes aggregate=False
        aggregates.apply_change(session, None, [r["id"] for r in rows])
    _bump_sequence_to(session, max(r["seq"] for r in rows))
    _fix_pg_id_sequence(session, "incidents")
    if commit:
        session.commit()
    return [r["id"] for r in rows]


def bulk_insert_events(session: Session, rows: Iterable[dict[str, Any]], *, commit: bool = True,
                       aggregate: bool = True) -> int:
    """Insert many lifecycle events (dicts of ``incident_events`` columns; ``seq`` allocated if absent).

    The dicts are not modified (rows without ``seq`` are copied).
    """
    rows = list(rows)
    if not rows:
        return 0
    missing = [k for k, r in enumerate(rows) if r.get("seq") is None]
    if missing:
        first = sequence.allocate(session, len(missing))
        for n, k in enumerate(missing):
            rows[k] = {**rows[k], "seq": first + n}
    touched = sorted({int(r["incident_id"]) for r in rows}) if aggregate else []
    before = aggregates.capture(session, touched) if aggregate else None
    _executemany(session, IncidentEvent.__table__, [c for c in _EVENT_COLS if c != "id"], rows)
    if aggregate:
        aggregates.apply_change(session, before, touched)
    _bump_sequence_to(session, max(r["seq"] for r in rows))
    if commit:
        session.commit()
    return len(rows)


def bulk_insert_inspections(session: Session, rows: Iterable[dict[str, Any]], *, commit: bool = True,
                            aggregate: bool = True) -> int:
    """Insert many inspection rows (dicts of ``inspections`` columns; ``id`` optional)."""
    rows = [dict(r) for r in rows]
    if not rows:
        return 0
    cols = _INSPECTION_COLS if all(r.get("id") is not None for r in rows) else [c for c in _INSPECTION_COLS
                                                                                 if c != "id"]
    for r in rows:
        r.setdefault("problems_found", 0)
    _executemany(session, Inspection.__table__, cols, rows)
    if aggregate:
        aggregates.add_inspections(session.connection(), pd.DataFrame(rows))
    if "id" in cols:
        _fix_pg_id_sequence(session, "inspections")
    if commit:
        session.commit()
    return len(rows)
