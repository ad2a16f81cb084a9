"""The change sequence (``incidents.seq``, ``incident_events.seq``) for live feeds (``/api/v1/changes``).

Values are allocated inside the writing transaction and are monotonic in *commit order* on both back ends,
so a reader that saw seq N never later sees a new commit with a seq below N:

- PostgreSQL: ``pg_advisory_xact_lock`` (held to commit) then ``nextval('change_seq')`` — writers that take
  a sequence value are serialised for the rest of their (short) transaction.
- SQLite: a one-row counter table ``change_counter`` bumped with ``UPDATE … RETURNING``; that write takes
  SQLite's single writer lock, so it is also held to commit.

Call :func:`allocate` as the first statement of a write transaction (on SQLite this avoids upgrading a read
snapshot to a write, which would fail with SQLITE_BUSY under concurrency).
"""
from __future__ import annotations

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

# pg_advisory lock id ("WxSEQ"; beside store.MIGRATION_LOCK_KEY "WxMIGR"): a constant of the app, the same for
# every deployment whatever district it serves. Every process that writes must use the same key: a deploy that
# changes it stops the old processes before the new ones write (as for any change of the write path)
ADVISORY_LOCK_KEY = 0x57_7853_4551
NOTIFY_CHANNEL = "wx_changes"  # PostgreSQL: every write that takes a sequence value wakes the live feeds at commit


def allocate(session: Session, n: int = 1) -> int:
    """Reserve ``n`` consecutive sequence values; return the first. The values are first … first+n-1."""
    if n < 1:
        raise ValueError("n must be >= 1")
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": ADVISORY_LOCK_KEY})
        # delivered when (and only if) this transaction commits, to every LISTENing process (store.live)
        session.execute(text(f"NOTIFY {NOTIFY_CHANNEL}"))
        if n == 1:
            return int(session.execute(text("SELECT nextval('change_seq')")).scalar_one())
        # setval under the advisory lock: no other allocator can interleave.
        last = int(
            session.execute(
                text("SELECT setval('change_seq', nextval('change_seq') + :m)"), {"m": n - 1}
            ).scalar_one()
        )
        return last - n + 1
    last = session.execute(
        text("UPDATE change_counter SET value = value + :n WHERE id = 1 RETURNING value"), {"n": n}
    ).scalar_one()
    return int(last) - n + 1


def allocate_one(session: Session) -> int:
    return allocate(session, 1)


def current(session: Session) -> int:
    """The highest sequence value allocated so far (0 when none)."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        row = session.execute(text("SELECT last_value, is_called FROM change_seq")).one()
        return int(row[0]) if row[1] else 0
    return int(session.execute(text("SELECT value FROM change_counter WHERE id = 1")).scalar_one())


# the live hub's head: the newest incident change and the newest alert (both on unique indexes), in one statement
HEADS_SQL = "SELECT (SELECT coalesce(max(seq), 0) FROM incidents), (SELECT coalesce(max(seq), 0) FROM alerts)"


def heads(session) -> tuple[int, int]:
    """``(latest incident change, latest alert seq)`` in one round trip (``services.live.Hub``'s head)."""
    seq, aseq = session.execute(text(HEADS_SQL)).one()
    return int(seq), int(aseq)


def latest(session) -> int:
    """The newest committed incident change: ``max(incidents.seq)`` (0 when empty) — one look-up on the unique
    index. Live feeds, cached map layers and the duty desk key on it (a ``Session`` or a ``Connection``)."""
    from .models import Incident

    return int(session.execute(select(func.coalesce(func.max(Incident.seq), 0))).scalar_one())
