"""Shared vocabulary and pure helpers that every layer may import (store, services, api, callbacks, ui).

Nothing here reads data or holds state: Beijing-time formatting (:mod:`.timefmt`) and the small name tables the
store's rules and the pages both use (:mod:`.vocab`). The incident catalogue and the lifecycle states stay in
``dashboard.store.catalogue`` / ``dashboard.store.lifecycle`` (pure modules too, imported the same way).
"""
