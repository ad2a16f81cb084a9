"""Waiting for committed changes, for the live feeds (``services.live.Hub``).

- PostgreSQL: every write that takes a change-sequence value sends ``NOTIFY wx_changes`` in its transaction
  (``store.sequence.allocate``); PostgreSQL delivers it at commit — and only if it commits — to every process
  that ``LISTEN``s, whichever worker or host wrote. One dedicated autocommit connection per process listens.
- SQLite (one machine): no notification exists; the waiter sleeps ``poll_s`` and the hub then compares the
  change sequence (one look-up on a unique index per process, not per viewer).

After waking the hub re-reads the head (the change and alert sequences; PostgreSQL: on the listening connection,
one round trip), so a lost notification only delays a change until the next fallback look-up; it never loses one.
"""
from __future__ import annotations

import logging
import threading

from sqlalchemy.engine import Engine

from . import sequence

log = logging.getLogger("dashboard.live")


class ChangeWaiter:
    """``wait(timeout)`` returns when a change may have been committed (a notification) or after ``timeout``."""

    def __init__(self, engine: Engine, poll_s: float = 0.5):
        self._engine = engine
        self._poll_s = poll_s
        self._pg = engine.dialect.name == "postgresql"
        self._conn = None
        self._stop = threading.Event()

    @property
    def pushes(self) -> bool:
        """True when changes are notified (PostgreSQL); the caller may then wait longer between look-ups."""
        return self._pg

    def _connect(self):
        import psycopg

        url = self._engine.url.set(drivername="postgresql")
        conn = psycopg.connect(url.render_as_string(hide_password=False), autocommit=True, connect_timeout=3)
        conn.execute(f"LISTEN {sequence.NOTIFY_CHANNEL}")
        return conn

    def wait(self, timeout: float) -> bool:
        """True when notified; False on timeout (or without notifications: after ``min(timeout, poll_s)``)."""
        if not self._pg:
            self._stop.wait(min(timeout, self._poll_s))
            return False
        try:
            if self._conn is None:
                self._conn = self._connect()
            got = False
            for _ in self._conn.notifies(timeout=timeout, stop_after=1):
                got = True
            return got
        except Exception as exc:  # noqa: BLE001 - the store restarting: fall back to look-ups, reconnect later
            log.warning("change listener lost (%s); reconnecting", type(exc).__name__)
            self.close()
            self._stop.wait(min(timeout, 1.0))
            return False

    def heads(self) -> tuple[int, int] | None:
        """PostgreSQL: ``sequence.heads`` on the listening connection itself (autocommit: one round trip, no pool
        checkout, ping, BEGIN or ROLLBACK) — what each worker reads after every notification. None without
        notifications (SQLite) or when that connection is down: read it through a session then."""
        if not self._pg:
            return None
        try:
            if self._conn is None:
                self._conn = self._connect()
            seq, aseq = self._conn.execute(sequence.HEADS_SQL).fetchone()
            return int(seq), int(aseq)
        except Exception as exc:  # noqa: BLE001 - the store restarting: the caller reads through the pool
            log.warning("change listener cannot read the head (%s)", type(exc).__name__)
            self.close()
            return None

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # noqa: BLE001
                pass

    def stop(self) -> None:
        """Ends a waiting ``wait`` early on SQLite; the listening connection is closed by its own thread."""
        self._stop.set()
