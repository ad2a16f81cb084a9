"""The OpenAPI 3.1 document of ``/api/v1`` and ``/open311/v2`` (served at ``/api/v1/openapi.json``)."""
from __future__ import annotations

from ..store import catalogue, lifecycle
from .incidents import BATCH_MAX_BODY_BYTES, BATCH_MAX_ITEMS


def _list_param(name: str, desc: str, enum: list | None = None) -> dict:
    schema: dict = {"type": "string"}
    d = desc + " Comma-separated list."
    if enum:
        d += " Values: " + ", ".join(map(str, enum)) + "."
    return {"name": name, "in": "query", "required": False, "description": d, "schema": schema}


def _q(name: str, desc: str, schema: dict | None = None) -> dict:
    return {"name": name, "in": "query", "required": False, "description": desc, "schema": schema or {"type": "string"}}


ERR = {"$ref": "#/components/responses/Error"}
O311_ERR = {"$ref": "#/components/responses/Open311Error"}


def openapi_document(server_url: str = "") -> dict:
    states = list(lifecycle.STATES)
    incident_props = {
        "id": {"type": "integer"}, "code": {"type": "string", "example": "WX20190424-000123"},
        "client_ref": {"type": ["string", "null"]}, "category": {"type": "string", "enum": list(catalogue.CATEGORIES)},
        "category_name": {"type": "string"}, "category_name_en": {"type": "string"},
        "subcategory": {"type": ["string", "null"]}, "subcategory_name": {"type": ["string", "null"]},
        "subcategory_name_en": {"type": ["string", "null"]}, "severity": {"type": "integer", "minimum": 1, "maximum": 4},
        "source": {"type": "string", "enum": list(catalogue.SOURCES)}, "description": {"type": "string"},
        "address": {"type": ["string", "null"]}, "lon": {"type": "number"}, "lat": {"type": "number"},
        "grid_code": {"type": "string"}, "zone_code": {"type": "string"}, "town_code": {"type": "string"},
        "status": {"type": "string", "enum": states}, "status_name": {"type": "string"},
        "status_name_en": {"type": "string"}, "level": {"type": "string", "enum": list(lifecycle.LEVELS)},
        "department": {"type": ["string", "null"]}, "department_name": {"type": ["string", "null"]},
        "department_name_en": {"type": ["string", "null"]},
        "reporter": {"type": ["string", "null"],
                     "description": "personal data: null unless the caller may see it (duty officers, admins, "
                                    "tokens with the personal scope)"},
        "reporter_phone": {"type": ["string", "null"], "description": "personal data: only for the personal audience"},
        "persons": {"type": "array", "items": {"type": "string"},
                    "description": "residents the text names: only for the personal audience; everyone else gets "
                                   "description and address with these names replaced by 某某"},
        "inspection_id": {"type": ["integer", "null"]}, "outcome": {"type": ["string", "null"]},
        "longstanding": {"type": "boolean"},
        "reported_at": {"type": "string", "format": "date-time"},
        "updated_at": {"type": "string", "format": "date-time"},
        "due_at": {"type": "string", "format": "date-time"},
        "closed_at": {"type": ["string", "null"], "format": "date-time"},
        "overdue": {"type": "boolean", "description": "open and past due_at"},
        "next_states": {"type": "array", "items": {"type": "string"}},
        "seq": {"type": "integer", "description": "change sequence"},
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Wuxing District incidents API (吴兴区案事件接口)",
            "version": "1.0.0",
            "description": "Incidents (案事件) of Wuxing District's grassroots governance: report, move along the "
                           "closed loop, query, follow changes. Private by default: every read needs a signed-in "
                           "session (cookie `wx_session`) or `Authorization: Bearer <token>` with the `read` scope, "
                           "writes a token with the `ingest` scope (API_TOKENS `token:scope+scope`; demo default "
                           "`demo-token`, every scope). Personal data (reporter, phone, persons) only for duty "
                           "officers, admins and tokens with the `personal` scope. Errors: `{\"error\": {\"code\", \"message\", "
                           "\"field\"}}`. Times are ISO 8601; without an offset they are Beijing time.",
        },
        "servers": [{"url": server_url or "/"}],
        "security": [{"bearer": []}, {"session": []}],  # private by default; the open paths say security: []
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"},
                                "session": {"type": "apiKey", "in": "cookie", "name": "wx_session"}},
            "schemas": {
                "Error": {"type": "object", "required": ["error"], "properties": {"error": {
                    "type": "object", "required": ["code", "message", "field"],
                    "properties": {"code": {"type": "string"}, "message": {"type": "string"},
                                   "field": {"type": ["string", "null"]},
                                   "current_status": {"type": "string"},
                                   "allowed": {"type": "array", "items": {"type": "string"}}}}}},
                "Incident": {"type": "object", "properties": incident_props},
                "Event": {"type": "object", "properties": {
                    "id": {"type": "integer"}, "seq": {"type": "integer"}, "at": {"type": "string", "format": "date-time"},
                    "actor": {"type": "string"}, "actor_role": {"type": ["string", "null"]},
                    "from_status": {"type": ["string", "null"]}, "to_status": {"type": "string"},
                    "note": {"type": ["string", "null"]}, "department": {"type": ["string", "null"]}}},
                "NewIncident": {"type": "object", "required": ["category", "description", "lon", "lat"], "properties": {
                    "category": {"type": "string", "enum": list(catalogue.CATEGORIES)},
                    "subcategory": {"type": "string", "maxLength": 64},
                    "severity": {"type": "integer", "minimum": 1, "maximum": 4,
                                 "description": "default: the category's default severity"},
                    "source": {"type": "string", "enum": list(catalogue.SOURCES), "default": "app"},
                    "description": {"type": "string", "minLength": 1, "maxLength": 4000},
                    "address": {"type": "string", "maxLength": 255},
                    "lon": {"type": "number", "minimum": -180, "maximum": 180, "description": "WGS84"},
                    "lat": {"type": "number", "minimum": -90, "maximum": 90, "description": "WGS84"},
                    "reporter": {"type": "string", "maxLength": 64}, "reporter_phone": {"type": "string", "maxLength": 32},
                    "persons": {"type": "array", "maxItems": 20,
                                "items": {"type": "string", "minLength": 1, "maxLength": 32},
                                "description": "residents named in description or address (personal data): masked "
                                               "as 某某 for audiences without personal data"},
                    "client_ref": {"type": "string", "maxLength": 64, "description": "idempotency key"},
                    "inspection_id": {"type": "integer"}, "longstanding": {"type": "boolean"},
                    "reported_at": {"type": "string", "format": "date-time"}}},
                "BatchResult": {"type": "object", "required": ["index", "status"], "properties": {
                    "index": {"type": "integer", "description": "position of the item in the request (0-based)"},
                    "status": {"type": "string", "enum": ["created", "existing", "refused"],
                               "description": "created: stored now; existing: its client_ref was stored before, "
                                              "or by an earlier item of this batch (duplicate_of); refused: "
                                              "nothing stored for it, error says why"},
                    "id": {"type": ["integer", "null"]}, "code": {"type": ["string", "null"]},
                    "client_ref": {"type": ["string", "null"]},
                    "duplicate_of": {"type": ["integer", "null"],
                                     "description": "index of the earlier item of this batch with the same client_ref"},
                    "error": {"type": ["object", "null"], "properties": {
                        "field": {"type": ["string", "null"]},
                        "reason": {"type": "string", "description": "the error code POST /api/v1/incidents gives"},
                        "message": {"type": "string"},
                        "status": {"type": "integer", "description": "the status POST /api/v1/incidents gives"}}}}},
                "BatchResponse": {"type": "object", "required": ["results", "created", "existing", "refused", "seq"],
                                  "properties": {
                    "results": {"type": "array", "items": {"$ref": "#/components/schemas/BatchResult"}},
                    "created": {"type": "integer"}, "existing": {"type": "integer"}, "refused": {"type": "integer"},
                    "seq": {"type": ["integer", "null"],
                            "description": "last change sequence value this batch wrote (null: it created nothing)"}}},
                "Transition": {"type": "object", "required": ["to", "actor", "actor_role"], "properties": {
                    "to": {"type": "string", "enum": states}, "actor": {"type": "string", "maxLength": 64},
                    "actor_role": {"type": "string", "enum": list(lifecycle.ROLES),
                                   "description": "verification (to=verified) needs grid_worker"},
                    "note": {"type": "string", "maxLength": 2000},
                    "department": {"type": "string", "enum": list(catalogue.DEPARTMENTS),
                                   "description": "required when to=assigned"},
                    "outcome": {"type": "string", "enum": ["resolved", "unresolved"], "description": "only with to=closed"}}},
                "Open311Request": {"type": "object", "properties": {k: {"type": ["string", "number", "null"]} for k in (
                    "service_request_id", "status", "status_notes", "service_name", "service_code", "description",
                    "agency_responsible", "service_notice", "requested_datetime", "updated_datetime",
                    "expected_datetime", "address", "address_id", "zipcode", "lat", "long", "media_url")}},
            },
            "responses": {
                "Error": {"description": "Bad input (the field is named) or unknown resource",
                          "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
                "Open311Error": {"description": "Open311 error list",
                                 "content": {"application/json": {"schema": {"type": "array", "items": {
                                     "type": "object", "properties": {"code": {"type": "integer"},
                                                                      "description": {"type": "string"}}}}}}},
            },
        },
        "paths": {
            "/api/v1/incidents": {
                "post": {
                    "summary": "Report an incident (idempotent on client_ref)", "security": [{"bearer": []}],
                    "requestBody": {"required": True, "content": {"application/json": {
                        "schema": {"$ref": "#/components/schemas/NewIncident"}}}},
                    "responses": {
                        "201": {"description": "Created; the body has grid, zone, town too",
                                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Incident"}}}},
                        "200": {"description": "Same client_ref seen before: the stored incident"},
                        "400": ERR, "401": ERR, "413": ERR,
                        "422": {"description": "Unknown category/subcategory/inspection, or the point is outside "
                                               "Wuxing District", "content": {"application/json": {
                                                   "schema": {"$ref": "#/components/schemas/Error"}}}}},
                },
                "get": {
                    "summary": "List incidents, newest first, with filters and cursor pagination",
                    "parameters": [
                        _list_param("status", "Status; `open` = every state but closed.", ["open", *states]),
                        _list_param("category", "Category key.", list(catalogue.CATEGORIES)),
                        _list_param("severity", "Severity.", [1, 2, 3, 4]),
                        _list_param("source", "Source.", list(catalogue.SOURCES)),
                        _list_param("level", "Level reached.", list(lifecycle.LEVELS)),
                        _list_param("department", "Assigned department.", list(catalogue.DEPARTMENTS)),
                        _list_param("town", "Town code, e.g. 330502-ZL."),
                        _list_param("zone", "Zone code, e.g. 330502-ZL-03."),
                        _list_param("grid", "Grid code, e.g. 330502-ZL-03-07."),
                        _q("from", "reported_at >= from (ISO 8601 date or date-time)"),
                        _q("to", "reported_at < to"),
                        _q("bbox", "minlon,minlat,maxlon,maxlat (WGS84)"),
                        _q("q", "Text in code, address or description (case-insensitive)"),
                        _q("overdue", "1: open and past due; 0: not overdue", {"type": "string", "enum": ["1", "0"]}),
                        _q("limit", "Page size (default 100)", {"type": "integer", "minimum": 1, "maximum": 1000}),
                        _q("cursor", "next_cursor of the previous page (opaque)"),
                        _q("format", "json (default) or geojson (FeatureCollection for the map)",
                           {"type": "string", "enum": ["json", "geojson"]}),
                    ],
                    "responses": {"200": {"description": "`{items, next_cursor, limit}`; or a GeoJSON "
                                                         "FeatureCollection with `next_cursor`",
                                          "content": {"application/json": {"schema": {"type": "object", "properties": {
                                              "items": {"type": "array", "items": {"$ref": "#/components/schemas/Incident"}},
                                              "next_cursor": {"type": ["string", "null"]},
                                              "limit": {"type": "integer"}}}}}},
                                  "400": ERR},
                },
            },
            "/api/v1/incidents/batch": {
                "post": {
                    "summary": f"Report up to {BATCH_MAX_ITEMS:,} incidents at once (idempotent on client_ref)",
                    "description": "Each item is checked and placed as by `POST /api/v1/incidents` and answered on "
                                   "its own, in order: `created`, `existing` (its `client_ref` is stored, or repeats "
                                   "an earlier item of the batch) or `refused` (with the error the single POST would "
                                   "give; nothing stored for it). The accepted items are stored in one transaction "
                                   "with one block of the change sequence. A body that is no batch (not an array, "
                                   "an item that is not an object) is refused whole. Bodies up to "
                                   f"{BATCH_MAX_BODY_BYTES // (1024 * 1024)} MB.",
                    "security": [{"bearer": []}],
                    "requestBody": {"required": True, "content": {"application/json": {"schema": {"oneOf": [
                        {"type": "object", "required": ["incidents"], "properties": {"incidents": {
                            "type": "array", "maxItems": BATCH_MAX_ITEMS,
                            "items": {"$ref": "#/components/schemas/NewIncident"}}}},
                        {"type": "array", "maxItems": BATCH_MAX_ITEMS,
                         "items": {"$ref": "#/components/schemas/NewIncident"}}]}}}},
                    "responses": {
                        "200": {"description": "One result per item (also when every item was refused)",
                                "content": {"application/json": {
                                    "schema": {"$ref": "#/components/schemas/BatchResponse"}}}},
                        "400": ERR, "401": ERR,
                        "413": {"description": f"More than {BATCH_MAX_ITEMS:,} items (`too_many_items`, "
                                               "`max_items`) or a body over the size limit; nothing stored",
                                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}},
                },
            },
            "/api/v1/incidents/{id}": {
                "get": {"summary": "One incident with its whole lifecycle (events)",
                        "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}],
                        "responses": {"200": {"description": "Incident plus `events` (oldest first)"}, "404": ERR}},
            },
            "/api/v1/incidents/{id}/transitions": {
                "post": {"summary": "Move an incident one step along the closed loop", "security": [{"bearer": []}],
                         "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}],
                         "requestBody": {"required": True, "content": {"application/json": {
                             "schema": {"$ref": "#/components/schemas/Transition"}}}},
                         "responses": {"200": {"description": "`{incident, event}`"}, "400": ERR, "401": ERR,
                                       "403": {"description": "verification by a role other than grid_worker"},
                                       "404": ERR,
                                       "409": {"description": "Step not allowed; names current_status and allowed"}}},
            },
            "/api/v1/changes": {
                "get": {"summary": "Incidents created or changed after a sequence number (live feed)",
                        "parameters": [_q("after", "last_seq of the previous call (default 0)", {"type": "integer", "minimum": 0}),
                                       _q("limit", "default 500", {"type": "integer", "minimum": 1, "maximum": 1000})],
                        "responses": {"200": {"description": "`{items (seq order), last_seq, has_more}`"}, "400": ERR}},
            },
            "/api/v1/catalogue": {"get": {"security": [], "summary": "Categories, severities, sources, departments, states, levels, roles",
                                          "responses": {"200": {"description": "The catalogue"}}}},
            "/api/v1/openapi.json": {"get": {"security": [], "summary": "This document", "responses": {"200": {"description": "OpenAPI 3.1"}}}},
            "/open311/v2/discovery.json": {"get": {"security": [], "summary": "Open311 discovery", "responses": {"200": {"description": "ok"}}}},
            "/open311/v2/services.json": {"get": {"security": [], "summary": "Open311 services (the category catalogue)",
                                                  "responses": {"200": {"description": "list of services"}}}},
            "/open311/v2/services/{service_code}.json": {"get": {"security": [],
                "summary": "Open311 service definition (attributes subcategory, severity, client_ref)",
                "parameters": [{"name": "service_code", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {"200": {"description": "definition"}, "404": O311_ERR}}},
            "/open311/v2/requests.json": {
                "get": {"summary": "Open311 service requests",
                        "parameters": [_q("service_request_id", "comma list of codes or ids; overrides the rest"),
                                       _q("service_code", "comma list"), _q("start_date", "W3C date-time"),
                                       _q("end_date", "W3C date-time (default window: last 90 days)"),
                                       _q("status", "open or closed"),
                                       _q("page", "1-based", {"type": "integer", "minimum": 1}),
                                       _q("page_size", "default 50", {"type": "integer", "minimum": 1, "maximum": 1000})],
                        "responses": {"200": {"description": "list", "content": {"application/json": {"schema": {
                            "type": "array", "items": {"$ref": "#/components/schemas/Open311Request"}}}}},
                            "400": O311_ERR}},
                "post": {"summary": "Open311 create service request (form-encoded)",
                         "requestBody": {"required": True, "content": {"application/x-www-form-urlencoded": {"schema": {
                             "type": "object", "required": ["api_key", "service_code", "lat", "long"],
                             "properties": {"api_key": {"type": "string"}, "service_code": {"type": "string"},
                                            "lat": {"type": "number"}, "long": {"type": "number"},
                                            "description": {"type": "string"}, "address_string": {"type": "string"},
                                            "attribute[subcategory]": {"type": "string"},
                                            "attribute[severity]": {"type": "string"},
                                            "attribute[client_ref]": {"type": "string"},
                                            "first_name": {"type": "string"}, "last_name": {"type": "string"},
                                            "email": {"type": "string"}, "phone": {"type": "string"}}}}}},
                         "responses": {"201": {"description": "`[{service_request_id, service_notice, account_id}]`"},
                                       "400": O311_ERR, "401": O311_ERR, "422": O311_ERR}},
            },
            "/open311/v2/requests/{id}.json": {"get": {
                "summary": "One Open311 request (id = code WX… or numeric id)",
                "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {"200": {"description": "a one-element list"}, "404": O311_ERR}}},
        },
    }
