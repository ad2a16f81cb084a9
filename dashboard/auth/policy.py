"""Who may read what: the one access policy of the app. Private by default.

Every request is classed by what it reaches, and each class names who may:

- ``PUBLIC`` — anyone: the sign-in page and form, ``/healthz``, the app's static files and component bundles, the
  API's contract (``/api/v1/openapi.json``) and vocabulary (``/api/v1/catalogue``), Open311 discovery and its
  service list (they carry no incident), and Dash's plumbing (``/_dash-layout`` and ``/_dash-update-component``
  check the page and the callback themselves: :func:`page_allowed`, :func:`callback_allowed`).
- ``WALL`` — what the wall shows: the map geometry and map data (``/api/geo/…``, ``/api/map/…``: aggregates and
  anonymised markers), the local basemap's tiles (``/tiles/…``) and the wall page with its callbacks. Any signed-in
  user, a kiosk session, a read token.
- ``READ`` — everything else that holds incidents: the overview, the duty desk, the briefing, the read API
  (``GET /api/v1/…``, Open311 ``requests``), the exports and their callbacks. Leaders, duty officers and admins,
  and tokens with the ``read`` scope. The exports (:data:`EXPORT_PREFIXES`: the incident CSV / Excel and the GIS
  GeoPackage / Shapefile zip) are ``READ`` whatever else is opened (``PUBLIC_OVERVIEW`` too).

- ``ADMIN`` — the audit log (the page ``/audit`` and ``/api/v1/audit…``) and the alert push's delivery state (the
  page ``/notify`` and ``/api/v1/notify/…``): admins only.

Writes (POST) are checked by the route that writes (ingest scope, acting roles, same origin); nothing here lets
one through. ``PUBLIC_OVERVIEW=1`` moves the overview page, its callbacks and the ``WALL`` data to ``PUBLIC``.
What each audience sees of an incident is :func:`dashboard.auth.audience`.
"""
from __future__ import annotations

from . import ANY_ROLE, CurrentUser, current_principal

PUBLIC, WALL, READ, ADMIN = "public", "wall", "read", "admin"

PUBLIC_PATHS = frozenset({
    "/login", "/logout", "/healthz", "/_favicon.ico", "/favicon.ico", "/_dash-dependencies", "/_reload-hash",
    "/_dash-layout", "/_dash-update-component", "/api/v1/openapi.json", "/api/v1/catalogue",
    "/open311/v2/discovery.json", "/open311/v2/services.json",
})
PUBLIC_PREFIXES = ("/assets/", "/_dash-component-suites/", "/open311/v2/services/")
WALL_PREFIXES = ("/api/geo/", "/api/map/", "/tiles/")
ADMIN_PREFIXES = ("/api/v1/audit", "/api/v1/notify")
READ_PREFIXES = ("/api/", "/open311/")
EXPORT_PREFIXES = ("/api/v1/incidents/export.", "/api/v1/gis/")  # files of incidents: READ, never opened wider

# Dash pages (dashboard.pages.PAGES) -> class; a path that is no page gets the 404 view, which shows nothing
PAGE_ACCESS = {"/": READ, "/briefing": READ, "/incidents": READ, "/wall": WALL, "/login": PUBLIC, "/audit": ADMIN,
               "/notify": ADMIN}
OVERVIEW = "/"


def allowed(level: str, who: CurrentUser | None) -> bool:
    if level == PUBLIC:
        return True
    if who is None:
        return False
    if level == WALL:
        return who.kiosk or who.role in ANY_ROLE or who.can_read
    if level == ADMIN:
        return who.role == "admin" and not who.kiosk
    return who.can_read


def _public_overview(settings) -> bool:
    return bool(getattr(settings, "public_overview", False))


def page_level(path: str | None, settings) -> str:
    path = path or "/"
    if path == OVERVIEW and _public_overview(settings):
        return PUBLIC
    return PAGE_ACCESS.get(path, PUBLIC)


def page_allowed(path: str | None, settings, who: CurrentUser | None = None) -> bool:
    """May the one who asks open the page ``path``?"""
    return allowed(page_level(path, settings), who if who is not None else current_principal())


def request_level(path: str, method: str, settings) -> str | None:
    """The class of an HTTP request, or None when its route decides itself (writes; Dash page shells, which
    :func:`dashboard.auth.views.gate_pages` redirects to sign-in)."""
    if path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES):
        return PUBLIC
    if method not in ("GET", "HEAD"):
        return None
    if path.startswith(ADMIN_PREFIXES):
        return ADMIN
    if path.startswith(EXPORT_PREFIXES):
        return READ
    if path.startswith(WALL_PREFIXES):
        return PUBLIC if _public_overview(settings) else WALL
    if path.startswith(READ_PREFIXES):
        return READ
    return None


def callback_level(pages: frozenset, settings) -> str:
    """The class of a Dash callback whose outputs live on ``pages`` (paths): the most open of those pages, and
    ``READ`` for a callback on no known page."""
    levels = {page_level(p, settings) for p in pages}
    for level in (PUBLIC, WALL, READ, ADMIN):
        if level in levels:
            return level
    return READ
