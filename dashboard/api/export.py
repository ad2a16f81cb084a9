"""Exports of a filtered incident set: ``GET /api/v1/incidents/export.csv`` and ``…/export.xlsx``.

The filter is exactly the list API's (``filter_from_args``: status incl. ``open``, category, severity, source,
level, department, town, zone, grid, from/to, bbox, q, overdue); newest first; at most 100,000 rows. Needs a
signed-in leader / duty officer / admin, or ``Authorization: Bearer <API_TOKENS>``. Reporter phone numbers are
never exported. Text cells that a spreadsheet would run as a formula are prefixed with ``'``.
"""
from __future__ import annotations

import csv
import io

from flask import Blueprint, Response, request

from ..domain.timefmt import FILE_STAMP, beijing
from ..services import incidents as incident_service
from ..services.serialise import EXPORT_COLUMNS
from ..store.models import utcnow
from .errors import ApiError, lang_param, register_blueprint_handlers
from .incidents import filter_from_args

bp = Blueprint("export_api", __name__, url_prefix="/api/v1")
register_blueprint_handlers(bp)

MAX_ROWS = incident_service.EXPORT_MAX_ROWS
COLUMNS = EXPORT_COLUMNS  # key, zh, en
# what a spreadsheet may run as a formula or a DDE call when it opens a cell (ASCII and full-width forms), also
# after leading blanks: Excel and LibreOffice skip spaces and line breaks before "="
FORMULA_START = ("=", "+", "-", "@", "|", ";", "\t", "\r", "\n", "＝", "＋", "－", "＠", "｜", "；")
_BLANKS = " \t\r\n\u3000\u00a0"


def _require_reader() -> str:
    """The audience of the export (``dashboard.auth.audience``); the access policy already refused non-readers,
    this checks again where the data leaves."""
    from ..auth import audience, current_principal

    who = current_principal()
    if who is None:
        raise ApiError(401, "unauthorized", "sign in (/login) or send 'Authorization: Bearer <token>'",
                       "Authorization")
    if not who.can_read:
        raise ApiError(403, "forbidden", f"the role {who.role} may not export", "Authorization")
    return audience(who)


def _audit(fmt: str, n: int, audience: str) -> None:
    """Who exported what (the filter as sent), how many rows, with or without personal data."""
    from ..services import audit

    query = "&".join(f"{k}={v}" for k, v in request.args.items(multi=True))[:500]
    audit.record("export", fmt, {"query": query, "rows": n, "personal": audience == "personal"})


def spreadsheet_safe(v):
    """Keep spreadsheet programs from running a text cell as a formula (CSV/formula injection)."""
    if isinstance(v, str) and v.lstrip(_BLANKS).startswith(FORMULA_START) or (
            isinstance(v, str) and v.startswith(FORMULA_START)):
        return "'" + v
    return v


def xlsx_safe(v):
    """:func:`spreadsheet_safe`, and without the control characters an Excel sheet cannot hold (openpyxl refuses
    them; a report may carry them): each becomes U+FFFD."""
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    v = spreadsheet_safe(v)
    return ILLEGAL_CHARACTERS_RE.sub("\ufffd", v) if isinstance(v, str) else v


def _filename(ext: str) -> str:
    return f"incidents-{beijing(utcnow(), FILE_STAMP)}.{ext}"


def _lang() -> str:
    return lang_param()


@bp.get("/incidents/export.csv")
def export_csv():
    who = _require_reader()
    lang = _lang()
    rows = incident_service.export_rows(filter_from_args(), lang, who)
    _audit("csv", len(rows), who)
    buf = io.StringIO()
    buf.write("\ufeff")  # BOM: spreadsheet programs then read the Chinese text as UTF-8
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow([en if lang == "en" else zh for _, zh, en in COLUMNS])
    for r in rows:
        w.writerow([spreadsheet_safe(v) for v in r])
    resp = Response(buf.getvalue().encode("utf-8"), mimetype="text/csv")  # Flask adds "; charset=utf-8"
    resp.headers["Content-Disposition"] = f'attachment; filename="{_filename("csv")}"'
    resp.headers["X-Row-Count"] = str(len(rows))
    return resp


@bp.get("/incidents/export.xlsx")
def export_xlsx():
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    who = _require_reader()
    lang = _lang()
    rows = incident_service.export_rows(filter_from_args(), lang, who)
    _audit("xlsx", len(rows), who)
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("案事件" if lang == "zh" else "Incidents")
    header = []
    for _, zh, en in COLUMNS:
        c = WriteOnlyCell(ws, value=en if lang == "en" else zh)
        c.font = Font(bold=True)
        header.append(c)
    ws.append(header)
    for r in rows:
        cells = []
        for v in r:
            c = WriteOnlyCell(ws, value=xlsx_safe(v))
            if isinstance(v, str):
                c.data_type = "s"  # never a formula
            cells.append(c)
        ws.append(cells)
    out = io.BytesIO()
    wb.save(out)
    resp = Response(out.getvalue(), mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    resp.headers["Content-Disposition"] = f'attachment; filename="{_filename("xlsx")}"'
    resp.headers["X-Row-Count"] = str(len(rows))
    return resp
