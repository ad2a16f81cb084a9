"""``GET /api/v1/kpis`` — the numbers the KPI cards show (one source of truth: the same cached bundle).

Query: ``level`` = ``district|town|zone|grid`` (default district), ``code`` (required below the district),
either ``from``/``to`` (``YYYY-MM-DD``, local calendar days, inclusive) or ``period`` =
``today|7d|30d|year|2019`` (default ``30d``); ``children=1`` adds the children's KPIs (the ranking).

Rates are fractions in [0, 1], medians in hours, counts integers; ``null`` where the denominator is zero. The
figures come from :mod:`dashboard.services.kpis`. ``previous_year`` holds the same period a year before: its
``kpis`` and, per KPI, ``change`` = {``change``: 同比, the relative change (0.1612 = +16.12 %, rates too),
``points``: a rate's change in percentage points} (``null`` where the year before has no data or is 0).
Also ``GET /api/v1/briefing.pdf`` (the morning briefing as PDF, see :mod:`dashboard.ui.briefing`).
"""
from __future__ import annotations

import re

from flask import Blueprint, Response, jsonify, request

from ..context import services
from ..metrics import periods
from ..services import kpis as kpi_service
from ..services import units
from ..services.filters import BOOL_VALUES
from .errors import ApiError, choice_param, lang_param, register_blueprint_handlers

bp = Blueprint("kpis_api", __name__, url_prefix="/api/v1")
register_blueprint_handlers(bp)


def period_from_args(from_name: str = "from", to_name: str = "to") -> periods.Period:
    """The KPI period of the request: ``period``, or a custom one's days in ``from_name`` / ``to_name`` (the GIS
    export calls them ``period_from`` / ``period_to``: there ``from`` / ``to`` filter the incidents); a 400 naming
    the parameter as the request spelled it."""
    names = {"from": from_name, "to": to_name}
    first, last = request.args.get(from_name) or None, request.args.get(to_name) or None
    key = request.args.get("period") or None
    if first or last:
        if key and key != "custom":
            raise ApiError(400, "invalid_value", f"give either period or {from_name}/{to_name}, not both", "period")
        if not first:
            raise ApiError(400, "missing_field", f"{from_name} is required with {to_name}", from_name)
        key = "custom"
    try:
        return periods.resolve(key, first, last)
    except periods.PeriodError as e:
        message = str(e)
        if e.field in names and names[e.field] != e.field:  # the period's own words name its days from / to
            message = re.sub(r"\b(from|to)\b", lambda m: names[m.group(1)], message)
        raise ApiError(400, "invalid_value", message, names.get(e.field, e.field)) from None


def _unit(h) -> tuple[str, str | None]:
    level = choice_param("level", h.levels, "district")  # the set's own levels: a county has no city or county
    code = request.args.get("code") or None
    if level == "district":
        if code not in (None, h.root.code):
            raise ApiError(404, "not_found", f"unknown district code {code!r}", "code")
        return "district", None
    if not code:
        raise ApiError(400, "missing_field", f"code is required for level {level}", "code")
    if len(code) > 64 or not h.exists(level, code):
        raise ApiError(404, "not_found", f"no {level} with code {code[:64]!r}", "code")
    return level, code


@bp.get("/kpis")
def get_kpis():
    svc = services()
    if svc.engine is None:
        raise ApiError(503, "store_unavailable", "the incident store is not configured", None)
    level, code = _unit(units.hierarchy())
    p = period_from_args()
    children = choice_param("children", tuple(BOOL_VALUES), "0")
    resp = jsonify(kpi_service.kpi_payload(level, code, p, BOOL_VALUES[children]))
    resp.headers["Cache-Control"] = "no-cache"
    return resp


@bp.get("/briefing.pdf")
def briefing_pdf():
    from ..domain.timefmt import DAY, beijing
    from ..ui.briefing import briefing_pdf as build_pdf

    lang = lang_param()
    data = kpi_service.briefing()
    pdf = build_pdf(data, units.hierarchy(), lang)
    return Response(pdf, mimetype="application/pdf", headers={
        "Content-Disposition": f"attachment; filename=briefing-{beijing(data['end'], DAY)}.pdf",  # Beijing date
        "Cache-Control": "no-cache"})
