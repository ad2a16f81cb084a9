"""The store (SQLAlchemy 2.x over SQLite or PostgreSQL) — tables per docs/data-model.md.

``make_engine(url)``, ``session_factory(engine)``, ``init_db(engine)`` (Alembic upgrade head, programmatic;
migrations in ``dashboard/store/migrations``).
"""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from .models import Base, HazardSite, Incident, IncidentEvent, Inspection

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 30_000

__all__ = ["make_engine", "session_factory", "init_db", "Base", "HazardSite", "Incident", "IncidentEvent",
           "Inspection", "MIGRATIONS_DIR"]


def make_engine(url: str, **kwargs) -> Engine:
    """An engine for ``url``.

    SQLite: WAL journal, ``synchronous=FULL`` (an acknowledged write survives a power cut), foreign keys on,
    30 s busy timeout, and real ``BEGIN`` so reads run in a consistent snapshot.
    PostgreSQL (psycopg 3): ``pool_pre_ping``.
    """
    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        if u.database and u.database != ":memory:" and not u.database.startswith("file:"):
            Path(u.database).parent.mkdir(parents=True, exist_ok=True)
        connect_args = {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False}
        connect_args.update(kwargs.pop("connect_args", {}))
        engine = create_engine(u, connect_args=connect_args, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_conn, _record):  # pragma: no cover - exercised by every sqlite test
            dbapi_conn.isolation_level = None  # we emit BEGIN ourselves (see "begin" below)
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn):  # pragma: no cover
            conn.exec_driver_sql("BEGIN")

        return engine
    if u.get_backend_name() == "postgresql" and u.drivername == "postgresql":
        u = u.set(drivername="postgresql+psycopg")
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(u, **kwargs)


def session_factory(engine: Engine, *, notify=None) -> sessionmaker[Session]:
    """Sessions on ``engine``. ``notify``: a ``store.outbox.Routes`` — where the alerts these sessions raise are
    queued for the group robots (``store.outbox.enqueue``); without it they queue nothing."""
    if notify is None:
        return sessionmaker(bind=engine, expire_on_commit=False)
    from .outbox import ROUTES_KEY

    return sessionmaker(bind=engine, expire_on_commit=False, info={ROUTES_KEY: notify})


def alembic_config(engine: Engine):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False).replace("%", "%%"))
    return cfg


MIGRATION_LOCK_KEY = 0x5778_4D49_4752  # pg_advisory lock id ("WxMIGR")


def init_db(engine: Engine) -> None:
    """Bring the schema to the newest migration (Alembic ``upgrade head``).

    Safe when several processes start at once (gunicorn workers): PostgreSQL serialises them on an advisory
    lock held for the migration's transaction; SQLite on an exclusive file lock beside the database file. The
    second process then finds the schema at head and does nothing.
    """
    from alembic import command

    cfg = alembic_config(engine)
    with _migration_file_lock(engine), engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})")
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


@contextmanager
def _migration_file_lock(engine: Engine):
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if not database or database == ":memory:" or database.startswith("file:"):
        yield
        return
    import fcntl

    with open(f"{database}.migrate.lock", "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
