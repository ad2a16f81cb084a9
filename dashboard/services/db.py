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
