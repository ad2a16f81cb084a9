"""Pages, routed by path. Each page module has ``layout(settings, lang, params)`` returning its component tree
and may have ``register_callbacks(app)``; adding a page is one line in :data:`PAGES`.
"""
from __future__ import annotations

from importlib import import_module

PAGES: dict[str, str] = {
    "/": "overview",
    "/briefing": "briefing",
    "/wall": "wall",
    "/incidents": "incidents",
    "/login": "login",
}


def load_pages() -> dict:
    """Import every page module (component libraries must be imported before any callback runs)."""
    return {path: import_module(f"{__name__}.{name}") for path, name in PAGES.items()}
