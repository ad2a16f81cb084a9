"""HTTP API blueprints (Flask), registered on the Dash app's server by ``create_app``."""


def register_incident_api(server) -> None:
    """Register the incident API (``/api/v1``: incidents, changes, catalogue, openapi.json) and Open311
    GeoReport v2 (``/open311/v2``) blueprints, with JSON error handlers on those prefixes."""
    from .errors import register_error_handlers
    from .incidents import bp as incidents_bp
    from .open311 import bp as open311_bp

    server.register_blueprint(incidents_bp)
    server.register_blueprint(open311_bp)
    register_error_handlers(server)


def register_all(server) -> None:
    """Every HTTP blueprint of the product; ``create_app`` calls this once."""
    from . import geo, tiles

    server.register_blueprint(geo.bp)
    server.register_blueprint(tiles.bp)  # /tiles/<base|dark>/<z>/<x>/<y>.<ext>: the local basemap (TILE_FILE)
    if server.extensions["dashboard"].engine is not None:
        from . import mapdata

        register_incident_api(server)
        server.register_blueprint(mapdata.bp)
        from ..auth.views import setup as setup_auth
        from . import alerts, export

        setup_auth(server)  # sign-in, roles, page gates, kiosk tokens (dashboard/auth)
        alerts.register(server)  # /api/v1/alerts (+ hazard registry for the ring rule)
        server.register_blueprint(export.bp)  # /api/v1/incidents/export.csv|.xlsx
        from .audit import bp as audit_bp  # /api/v1/audit, /api/v1/audit.csv (admins)

        server.register_blueprint(audit_bp)
        from .notify import bp as notify_bp  # /api/v1/notify/outbox (admins)

        server.register_blueprint(notify_bp)
        from .kpis import bp as kpis_bp  # /api/v1/kpis, /api/v1/briefing.pdf

        server.register_blueprint(kpis_bp)
        from .gis import bp as gis_bp  # /api/v1/gis/export.gpkg, /api/v1/gis/export.shp.zip

        server.register_blueprint(gis_bp)
