"""Open311 GeoReport v2 (http://wiki.open311.org/GeoReport_v2) under ``/open311/v2`` — JSON format only.

- ``discovery.json``, ``services.json`` (the category catalogue), ``services/<code>.json`` (definition),
- ``requests.json`` GET (service_request_id, service_code, start_date, end_date, status; page, page_size)
  and POST (form-encoded: api_key, service_code, lat, long, description, address_string, attribute[…],
  email/first_name/last_name/phone as the reporter),
- ``requests/<id>.json`` (``<id>`` is the incident code ``WX…`` or the numeric id).

Status is ``open`` or ``closed``; the detailed lifecycle state is in ``status_notes``. Errors are the spec's
``[{"code": <http status>, "description": "…"}]``. The ``api_key`` (in the query, or a field of the POST's form: the
query's counts when both are sent) accepts the same tokens as ``API_TOKENS``.
"""
from __future__ import annotations

import datetime as dt

from flask import Blueprint, jsonify, request

from ..services import incidents as incident_service
from ..services import units
from ..services.serialise import open311_request
from ..store import catalogue, lifecycle
from ..store import incidents as repo
from ..store.models import utcnow
from ..context import services
from ..domain import grammar
from .errors import ApiError, check_text, int_param, register_blueprint_handlers
from .incidents import create_from_clean, has_valid_token, parse_time, validate_new_incident

bp = Blueprint("open311", __name__, url_prefix="/open311/v2")
register_blueprint_handlers(bp)

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
MAX_PAGE = 1_000_000
DEFAULT_WINDOW = dt.timedelta(days=90)
# our validator's field names -> the Open311 names the client sent
_FIELD_NAMES = {"category": "service_code", "lon": "long", "location": "lat/long", "address": "address_string",
                "subcategory": "attribute[subcategory]", "severity": "attribute[severity]",
                "client_ref": "attribute[client_ref]", "reporter": "first_name", "reporter_phone": "phone",
                "source": "attribute[source]"}


def _service_json(cat: catalogue.Category) -> dict:
    return {
        "service_code": cat.service_code,
        "service_name": f"{cat.name_zh} {cat.name_en}",
        "description": f"{cat.group_zh} / {cat.name_zh} ({cat.group_en}: {cat.name_en}); "
                       f"deadline {cat.deadline_hours} h",
        "metadata": True,
        "type": "realtime",
        "keywords": ",".join([cat.key, *cat.subcategories]),
        "group": cat.group_en,
    }


@bp.get("/discovery.json")
def discovery():
    # absolute only when the deployment says where it is (PUBLIC_URL): the Host header is not trusted for links
    root = services().settings.public_url + bp.url_prefix
    return jsonify({
        "changeset": "2026-11-25T00:00:00Z",
        "contact": f"{units.title('zh')}社会治理综合指挥中心 {units.title('en')} command centre",
        "key_service": "API keys are the API_TOKENS of this deployment",
        "endpoints": [{
            "specification": "http://wiki.open311.org/GeoReport_v2",
            "url": root,
            "changeset": "2026-11-25T00:00:00Z",
            "type": "production",
            "formats": ["application/json"],
        }],
    })


@bp.get("/services.json")
def services_list():
    return jsonify([_service_json(c) for c in catalogue.CATEGORIES.values()])


@bp.get("/services/<service_code>.json")
def service_definition(service_code: str):
    cat = catalogue.BY_SERVICE_CODE.get(service_code)
    if cat is None:
        raise ApiError(404, "not_found", f"unknown service_code {service_code[:40]!r}", "service_code")
    return jsonify({
        "service_code": cat.service_code,
        "attributes": [
            {"variable": True, "code": "subcategory", "datatype": "singlevaluelist", "required": False,
             "datatype_description": "", "order": 1, "description": "Subcategory 子类",
             "values": [{"key": k, "name": f"{zh} {en}"} for k, (zh, en) in cat.subcategories.items()]},
            {"variable": True, "code": "severity", "datatype": "singlevaluelist", "required": False,
             "datatype_description": "", "order": 2, "description": "Severity 等级",
             "values": [{"key": str(k), "name": f"{zh} {en}"} for k, (zh, en) in catalogue.SEVERITY_NAMES.items()]},
            {"variable": True, "code": "client_ref", "datatype": "string", "required": False,
             "datatype_description": "client reference for idempotent posting (max 64 chars)", "order": 3,
             "description": "Client reference"},
        ],
    })


FORM_MEDIA_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
SERVICE_CODES = (*catalogue.BY_SERVICE_CODE, *catalogue.CATEGORIES)  # a service code or a category key
NAME_FIELDS = {"first_name": 64, "last_name": 64, "email": 254}  # the reporter's name: the first 64 characters


def _form_number(name: str) -> float | None:
    """A form field holding a JSON number (``domain.grammar.NUMBER``); None when absent or empty."""
    raw = request.form.get(name)
    if raw is None or raw == "":
        return None
    if not grammar.matches(f"^{grammar.NUMBER}$", raw):
        raise ApiError(400, "invalid_type", f"{name} must be a number", name)
    return float(raw)  # 1e999 is inf: refused as not finite by the incident's own check


def api_key() -> str | None:
    """The Open311 ``api_key`` of this request: the query's, else the form's."""
    return request.args.get("api_key") or (request.form.get("api_key") if request.method == "POST" else None)


@bp.post("/requests.json")
def post_request():
    if request.mimetype not in FORM_MEDIA_TYPES:
        raise ApiError(415, "unsupported_media_type",
                       "post the request form-encoded (application/x-www-form-urlencoded)", "body")
    form = request.form
    key = api_key()
    if not key:
        raise ApiError(401, "unauthorized", "api_key is required", "api_key")
    if not has_valid_token(key):
        raise ApiError(401, "unauthorized", "api_key is not valid", "api_key")
    code = form.get("service_code")
    if not code:
        raise ApiError(400, "missing_field", "service_code is required", "service_code")
    cat = catalogue.BY_SERVICE_CODE.get(code) or catalogue.CATEGORIES.get(code)
    if cat is None:
        raise ApiError(400, "unknown_category", f"unknown service_code {code[:40]!r}; see services.json",
                       "service_code")
    lat, lon = _form_number("lat"), _form_number("long")
    if lat is None or lon is None:
        raise ApiError(400, "missing_field", "lat and long are required (address-only requests are not "
                                             "supported)", "lat" if lat is None else "long")
    severity = form.get("attribute[severity]") or None
    if severity is not None:
        if severity not in ("1", "2", "3", "4"):
            raise ApiError(400, "invalid_value", "must be 1, 2, 3 or 4", "attribute[severity]")
        severity = int(severity)
    parts = {k: check_text(form.get(k), k, max_len=n) or "" for k, n in NAME_FIELDS.items()}
    name = " ".join(p for p in (parts["first_name"].strip(), parts["last_name"].strip()) if p)
    reporter = (name or parts["email"].strip() or "open311")[:64]
    payload = {
        "category": cat.key,
        "subcategory": form.get("attribute[subcategory]") or None,
        "severity": severity or None,
        "source": form.get("attribute[source]") or "citizen",
        "description": form.get("description"),
        "address": form.get("address_string") or None,
        "lon": lon,
        "lat": lat,
        "reporter": reporter,
        "reporter_phone": form.get("phone") or None,
        "client_ref": form.get("attribute[client_ref]") or None,
    }
    try:
        clean = validate_new_incident(payload, default_source="citizen")
        inc, created = create_from_clean(clean, location_field="lat/long")
    except ApiError as e:
        e.field = _FIELD_NAMES.get(e.field, e.field)
        raise
    resp = jsonify([{"service_request_id": inc.code, "service_notice": "", "account_id": None}])
    resp.status_code = 201 if created else 200
    return resp


MAX_IDS = 1000
ID_LIST = grammar.list_of_codes(MAX_IDS)  # service_request_id: ids and codes
SERVICE_CODE_LIST = grammar.list_of(SERVICE_CODES)
STATUS_LIST = grammar.list_of(("open", "closed"))


def _list_param(name: str, pattern: str, what: str) -> list[str]:
    raw = request.args.get(name) or ""
    if not grammar.matches(pattern, raw):
        raise ApiError(400, "invalid_value", f"{name} must be a comma-separated list of {what}", name)
    return list(dict.fromkeys(grammar.items(raw)))


@bp.get("/requests.json")
def get_requests():
    flt = repo.IncidentFilter(now=utcnow())
    wanted = _list_param("service_request_id", ID_LIST, f"at most {MAX_IDS} ids or codes")
    codes = _list_param("service_code", SERVICE_CODE_LIST, "service codes (services.json) or category keys")
    flt.categories = list(dict.fromkeys((catalogue.BY_SERVICE_CODE.get(c) or catalogue.CATEGORIES[c]).key
                                        for c in codes))
    statuses = _list_param("status", STATUS_LIST, "open and closed")
    if set(statuses) == {"open"}:
        flt.statuses = list(lifecycle.OPEN_STATES)
    elif set(statuses) == {"closed"}:
        flt.statuses = ["closed"]
    start = parse_time(request.args["start_date"], "start_date") if request.args.get("start_date") else None
    end = parse_time(request.args["end_date"], "end_date") if request.args.get("end_date") else None
    if start is None and end is None:
        start = flt.now - DEFAULT_WINDOW  # the spec's default: the most recent 90 days
    if start and end and start > end:
        raise ApiError(400, "invalid_value", "start_date must not be after end_date", "start_date")
    flt.reported_from = start
    flt.reported_to = end + dt.timedelta(microseconds=1) if end else None  # end_date is inclusive
    page = int_param("page", 1, 1, MAX_PAGE)
    page_size = int_param("page_size", DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE)
    if wanted:  # overrides the other parameters (the spec), which are checked all the same
        ids = [int(v) for v in wanted if v.isdigit() and len(v) < 19]
        found = incident_service.by_ids_and_codes(ids, [v for v in wanted if not (v.isdigit() and len(v) < 19)])
        return jsonify([open311_request(i) for i in found])
    rows = incident_service.page(flt, page, page_size)
    return jsonify([open311_request(i) for i in rows])


@bp.get("/requests/<request_id>.json")
def get_request(request_id: str):
    inc = None
    if request_id.isascii() and request_id.isdigit() and len(request_id) < 19:
        inc = incident_service.by_id_or_code(incident_id=int(request_id))
    elif len(request_id) <= 32:
        inc = incident_service.by_id_or_code(code=request_id)
    if inc is None:
        raise ApiError(404, "not_found", f"no service request {request_id[:40]!r}", "service_request_id")
    return jsonify([open311_request(inc)])
