"""``GET /api/v1/audit`` (JSON, newest first, ``before`` pages back) and ``GET /api/v1/audit.csv`` — the audit log
for admins (the access policy's ADMIN class); reading it is not recorded, exporting it is (``audit_export``)."""
from __future__ import annotations

import csv
import io

from flask import Blueprint, Response, jsonify, request

from ..domain.timefmt import FILE_STAMP, beijing
from ..services import audit as service
from ..services.filters import FilterError
from ..store.models import utcnow
from .errors import ApiError, int_param, lang_param, register_blueprint_handlers
from .export import spreadsheet_safe

bp = Blueprint("audit_api", __name__, url_prefix="/api/v1")
register_blueprint_handlers(bp)  # the access policy (admins only), JSON errors
MAX_DB_INT = 2**63 - 1


def _filter():
    try:
        return service.parse_filter(request.args)
    except FilterError as e:
        raise ApiError(400, e.reason, e.message, e.field) from None


@bp.get("/audit")
def audit_json():
    flt = _filter()
    limit = int_param("limit", 100, 1, service.MAX_PAGE)
    before = int_param("before", None, 1, MAX_DB_INT)
    found, total = service.page(flt, limit=limit, before_id=before)
    return jsonify({"items": [service.as_dict(e) for e in found], "total": total,
                    "next_before": found[-1].id if len(found) == limit else None})


@bp.get("/audit.csv")
def audit_csv():
    flt = _filter()
    lang = lang_param()
    rows = service.rows(flt, lang)
    query = "&".join(f"{k}={v}" for k, v in request.args.items(multi=True))[:500]
    service.record("audit_export", "csv", {"query": query, "rows": len(rows)})
    buf = io.StringIO()
    buf.write("\ufeff")
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow([en if lang == "en" else zh for _, zh, en in service.COLUMNS])
    for r in rows:
        w.writerow([spreadsheet_safe(v) for v in r])  # actor names come from sign-in forms: never a formula
    resp = Response(buf.getvalue().encode("utf-8"), mimetype="text/csv")  # Flask adds "; charset=utf-8"
    resp.headers["Content-Disposition"] = f'attachment; filename="audit-{beijing(utcnow(), FILE_STAMP)}.csv"'
    resp.headers["X-Row-Count"] = str(len(rows))
    return resp
