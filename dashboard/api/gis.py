"""The GIS export (QGIS / ArcGIS): ``GET /api/v1/gis/export.gpkg`` and ``GET /api/v1/gis/export.shp.zip``.

Towns, zones and grids with their KPIs of a period and the filtered incidents as points (layers ``towns``,
``zones``, ``grids``, ``incidents``; see :mod:`dashboard.services.gis`). Query:

- the KPI period as the overview names it: ``period`` = ``today|7d|30d|year|2019|custom`` (default ``30d``); a
  custom period's days are ``period_from`` / ``period_to`` (``YYYY-MM-DD``, inclusive; ``period_from`` alone means
  ``period=custom``) — ``from`` / ``to`` belong to the incident filter;
- the incident filter of the list and its exports (``filter_from_args``: status incl. ``open``, category,
  severity, source, level, department, town, zone, grid, ``from``/``to`` (reported), bbox, q, overdue).

Needs a signed-in leader / duty officer / admin or a read token (401 / 403); a bad period or filter is a 400 naming
the parameter. Incident points stop at the export maximum (``services.incidents.EXPORT_MAX_ROWS``): then
``X-Incidents-Truncated: 1`` and ``X-Incident-Total`` say how many matched. Every export is in the audit log.
"""
from __future__ import annotations

from flask import Blueprint, Response, request

from ..context import services
from ..metrics import periods
from ..services import filters
from ..services import gis as gis_service
from . import kpis as kpi_api
from .errors import ApiError, register_blueprint_handlers
from .export import _require_reader
from .incidents import filter_from_args

bp = Blueprint("gis_api", __name__, url_prefix="/api/v1")
register_blueprint_handlers(bp)


def period_from_args() -> periods.Period:
    """The KPI period of the request (``period``, ``period_from``, ``period_to``); a 400 naming the parameter."""
    return kpi_api.period_from_args("period_from", "period_to")


def _audit(fmt: str, out: gis_service.GisExport, query: str) -> None:
    """Who exported what: the filter as sent, the period, the features per layer, personal or not."""
    from ..services import audit

    p = out.period
    audit.record("export", f"gis.{fmt}", {
        "query": query[:500], "period": {"key": p.key, "from": p.first_day, "to": p.last_day},
        "rows": out.counts["incidents"], "layers": out.counts, "incidents_total": out.incidents_total,
        "truncated": out.truncated, "personal": out.personal})


def _export(fmt: str) -> Response:
    audience = _require_reader()
    if services().engine is None:
        raise ApiError(503, "store_unavailable", "the incident store is not configured", None)
    p = period_from_args()
    flt = filter_from_args()
    out = gis_service.export(fmt, p, flt, audience, filters.canonical_query(request.args))
    try:
        _audit(fmt, out, "&".join(f"{k}={v}" for k, v in request.args.items(multi=True)))
    except BaseException:
        out.close()
        raise
    resp = Response(out.chunks(), mimetype=out.mimetype, direct_passthrough=True)
    resp.call_on_close(out.close)
    resp.headers["Content-Length"] = str(out.size)
    resp.headers["Content-Disposition"] = f'attachment; filename="{out.filename}"'
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["X-Row-Count"] = str(out.counts["incidents"])
    resp.headers["X-Layer-Counts"] = ",".join(f"{k}={v}" for k, v in out.counts.items())
    resp.headers["X-Incident-Total"] = str(out.incidents_total)
    resp.headers["X-Incidents-Truncated"] = "1" if out.truncated else "0"
    resp.headers["X-Period"] = f"{p.key},{p.first_day},{p.last_day}"
    return resp


@bp.get("/gis/export.gpkg")
def export_gpkg():
    return _export("gpkg")


@bp.get("/gis/export.shp.zip")
def export_shp_zip():
    return _export("shp.zip")
