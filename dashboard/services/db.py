"""Store sessions for the services (the store's repositories take a ``Session``; only they run queries)."""
from __future__ import annotations

from .. import context


class StoreUnavailable(RuntimeError):
    """The app runs without an incident store (``create_app(with_store=False)``)."""


def session():
    """A new store session, to use as a context manager: ``with db.session() as s: repo.f(s, …)``."""
    maker = context.services().sessions
    if maker is None:
        raise StoreUnavailable("the incident store is not configured")
    return maker()


RETRY_AFTER_S = 5  # what a request refused while the store is down is told to wait (Retry-After)


def unavailable(e: BaseException) -> bool:
    """Is ``e`` the database being unreachable or busy (restarting, connections dropped, SQLite locked), as opposed
    to a bug? Such a request is the client's to retry: the front doors answer 503 with ``Retry-After``."""
    from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

    return isinstance(e, (OperationalError, InterfaceError)) or (
        isinstance(e, DBAPIError) and bool(getattr(e, "connection_invalidated", False)))
