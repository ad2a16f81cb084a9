"""Exports of a filtered incident set: ``GET /api/v1/incidents/export.csv`` and ``…/export.xlsx``.

The filter is exactly the list API's (``filter_from_args``: status incl. ``open``, category, severity, source,
level, department, town, zone, grid, from/to, bbox, q, overdue); newest first; at most 100,000 rows. Needs a
signed-in leader / duty officer / admin, or ``Authorization: Bearer <API_TOKENS>``. Reporter phone numbers are
never exported. Text cells that a spreadsheet would run as a formula are prefixed with ``'``.
"""
from __future__ import annotations

import csv
import datetime as dt
import io

from flask import Blueprint, Response, request
from sqlalchemy import select

from ..context import services
from ..store import catalogue, lifecycle
from ..store.incidents import CHINA_TZ
from ..store.models import Incident, utcnow
from .errors import ApiError, register_blueprint_handlers
from .incidents import bearer_token, filter_from_args, has_valid_token, sessions

bp = Blueprint("export_api", __name__, url_prefix="/api/v1")
register_blueprint_handlers(bp)

MAX_ROWS = 100_000
COLUMNS = (  # key, zh, en
    ("code", "编号", "Code"), ("reported_at", "上报时间", "Reported"), ("category", "类别", "Category"),
    ("subcategory", "子类", "Subcategory"), ("severity", "等级", "Severity"), ("source", "来源", "Source"),
    ("status", "状态", "State"), ("level", "层级", "Level"), ("department", "交办部门", "Department"),
    ("town", "镇街", "Town"), ("zone", "片区", "Zone"), ("grid", "网格", "Grid"), ("grid_code", "网格编码", "Grid code"),
    ("address", "地址", "Address"), ("description", "描述", "Description"), ("reporter", "上报人", "Reporter"),
    ("due_at", "处置时限", "Due"), ("closed_at", "结案时间", "Closed"), ("overdue", "超期", "Overdue"),
    ("lon", "经度", "Longitude"), ("lat", "纬度", "Latitude"),
)
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _require_reader() -> None:
    from ..auth import READ_ROLES, current_user

    token = bearer_token()
    if token is not None:
        if not has_valid_token(token):
            raise ApiError(401, "unauthorized", "the token is not valid", "Authorization")
        return
    user = current_user()
    if user is None:
        raise ApiError(401, "unauthorized", "sign in (/login) or send 'Authorization: Bearer <token>'",
                       "Authorization")
    if user.role not in READ_ROLES:
        raise ApiError(403, "forbidden", f"the role {user.role} may not export", "Authorization")


def _local(t: dt.datetime | None) -> str:
    return "" if t is None else t.astimezone(CHINA_TZ).strftime("%Y-%m-%d %H:%M:%S")


def _names(lang: str) -> dict:
    gd = services().geodata()
    col = "name_en" if lang == "en" else "name"
    out = {}
    for frame in (gd.towns, gd.zones, gd.grids):
        names = frame[col] if col in frame.columns else frame["name"]
        out.update(zip(frame["code"], names))
    return out


def export_rows(flt, lang: str) -> list[list]:
    """The filtered incidents as table rows (values in :data:`COLUMNS` order), newest first."""
    en = lang == "en"
    names = _names(lang)
    now = flt.now or utcnow()
    with sessions()() as s:
        incs = s.execute(select(Incident).where(*flt.conditions())
                         .order_by(Incident.reported_at.desc(), Incident.id.desc()).limit(MAX_ROWS)).scalars().all()
    rows = []
    for inc in incs:
        cat = catalogue.CATEGORIES.get(inc.category)
        sub = cat.subcategories.get(inc.subcategory) if cat and inc.subcategory else None
        rows.append([
            inc.code, _local(inc.reported_at),
            (cat.name_en if en else cat.name_zh) if cat else inc.category,
            (sub[1] if en else sub[0]) if sub else (inc.subcategory or ""),
            inc.severity,
            catalogue.SOURCES.get(inc.source, (inc.source, inc.source))[1 if en else 0],
            lifecycle.STATES.get(inc.status, (inc.status, inc.status))[1 if en else 0],
            lifecycle.LEVELS.get(inc.level, (inc.level, inc.level))[1 if en else 0],
            catalogue.DEPARTMENTS.get(inc.department, (inc.department or "",) * 2)[1 if en else 0],
            names.get(inc.town_code, inc.town_code), names.get(inc.zone_code, inc.zone_code),
            names.get(inc.grid_code, inc.grid_code), inc.grid_code,
            inc.address or "", inc.description or "", inc.reporter or "",
            _local(inc.due_at), _local(inc.closed_at),
            ("yes" if en else "是") if inc.status != "closed" and inc.due_at < now else "",
            inc.lon, inc.lat,
        ])
    return rows


def _safe(v):
    """Keep spreadsheet programs from running a text cell as a formula (CSV/formula injection)."""
    if isinstance(v, str) and v.startswith(FORMULA_START):
        return "'" + v
    return v


def _filename(ext: str) -> str:
    return f"incidents-{dt.datetime.now(CHINA_TZ):%Y%m%d-%H%M}.{ext}"


def _lang() -> str:
    return "en" if request.args.get("lang") == "en" else "zh"


@bp.get("/incidents/export.csv")
def export_csv():
    _require_reader()
    lang = _lang()
    rows = export_rows(filter_from_args(), lang)
    buf = io.StringIO()
    buf.write("\ufeff")  # BOM: spreadsheet programs then read the Chinese text as UTF-8
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow([en if lang == "en" else zh for _, zh, en in COLUMNS])
    for r in rows:
        w.writerow([_safe(v) for v in r])
    resp = Response(buf.getvalue().encode("utf-8"), mimetype="text/csv; charset=utf-8")
    resp.headers["Content-Disposition"] = f'attachment; filename="{_filename("csv")}"'
    resp.headers["X-Row-Count"] = str(len(rows))
    return resp


@bp.get("/incidents/export.xlsx")
def export_xlsx():
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    _require_reader()
    lang = _lang()
    rows = export_rows(filter_from_args(), lang)
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
            c = WriteOnlyCell(ws, value=_safe(v))
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
