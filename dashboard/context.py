"""The one door to shared services for blueprints and callbacks.

``create_app`` builds a :class:`Services` and stores it on the Flask server; request code reaches it with
:func:`services`. Nothing here is mutable after start-up but the live hub (``services.live.Hub``: the newest
change sequence this process saw and its open streams), so the app is stateless between requests and
can run as several gunicorn workers.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Mapping

from flask import current_app

if TYPE_CHECKING:  # pragma: no cover
    from flask_caching import Cache
    from sqlalchemy.engine import Engine
    from sqlalchemy.orm import sessionmaker

    from .ratelimit import RateLimits
    from .services.live import Hub
    from .settings import Settings


@dataclass(frozen=True)
class Services:
    settings: "Settings"
    cache: "Cache"
    engine: "Engine | None" = None
    sessions: "sessionmaker | None" = None
    limits: "RateLimits | None" = None  # dashboard.ratelimit: None -> no limits (bare test apps)
    # the local basemap files (TILE_FILE, TILE_FILE_DARK): "base"/"dark" -> a read-only store.tiles reader
    tiles: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    hub: "Hub | None" = None  # services.live: this process's live watcher and open streams (None without a store)

    def geodata(self) -> Any:
        from .geodata import load_geodata

        return load_geodata(self.settings.geodata_dir)


def services() -> Services:
    return current_app.extensions["dashboard"]
