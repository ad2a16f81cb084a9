"""Schemathesis hooks of ``test_contract.py``: what the OpenAPI document can only say in words, kept true for the
*positive* cases (those the document calls valid), so that a refusal of one of them is a real disagreement.

Each rule is stated in the operation's description in ``dashboard/api/openapi.py``:

- an order between two query parameters (``from`` not after ``to``, ``start_date`` not after ``end_date``; the
  audit log's ``from`` before ``to``);
- the KPI period: ``period`` or ``from``/``to`` (the GIS export's ``period_from``/``period_to``), ``to`` needs
  ``from``, ``custom`` needs ``from``; a ``code`` below the district;
- a report's point inside Wuxing District, an ``inspection_id`` that is stored, a ``reported_at`` not in the future.

Negative cases (meant to be refused) pass untouched. The site's facts (points inside the district, stored
inspections, unit codes) come from the JSON file named by ``WX_CONTRACT_CONTEXT``.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import zlib
from pathlib import Path

import schemathesis

from dashboard.services.filters import parse_time

CONTEXT = json.loads(Path(os.environ["WX_CONTRACT_CONTEXT"]).read_text(encoding="utf-8"))
FILTERED = ("/api/v1/incidents", "/api/v1/incidents/export.csv", "/api/v1/incidents/export.xlsx",
            "/api/v1/gis/export.gpkg", "/api/v1/gis/export.shp.zip")
REPORTS = {("POST", "/api/v1/incidents"): ("lon", "lat"), ("POST", "/open311/v2/requests.json"): ("long", "lat")}
PAST = "2019-04-24T08:30:00+08:00"


def _positive(case) -> bool:
    return case.meta is not None and case.meta.generation.mode.is_positive


def _time(value):
    try:
        return parse_time(value, "t")
    except ValueError:  # not of the form: a negative value the document refuses anyway
        return None


def _in_order(q: dict, first: str, last: str, *, strictly: bool = False, last_day_whole: bool = False) -> None:
    """Swap ``first`` and ``last`` of query ``q`` when they are the wrong way round; drop ``last`` when equal and
    ``strictly``."""
    if not (q.get(first) and q.get(last)):
        return
    a, b = _time(q[first]), _time(q[last])
    if a is None or b is None:
        return
    if last_day_whole and len(q[last]) == 10:
        b += dt.timedelta(days=1)
    if a > b or (strictly and a >= b):
        q[first], q[last] = q[last], q[first]
        a, b = _time(q[first]), _time(q[last])
        if last_day_whole and len(q[last]) == 10:
            b += dt.timedelta(days=1)
        if strictly and a >= b:
            del q[last]


def _period(q: dict, first: str, last: str) -> None:
    """``period`` or ``first``/``last``: named days win over a named period; ``last`` needs ``first``."""
    if q.get(last) and not q.get(first):
        q[first] = q[last]
    if q.get(first):
        if q.get("period") not in (None, "", "custom"):
            del q["period"]
        if q.get(last) and q[first] > q[last]:
            q[first], q[last] = q[last], q[first]
    elif q.get("period") == "custom":
        del q["period"]


def _report(body: dict, lon_key: str, lat_key: str) -> None:
    seed = zlib.crc32(json.dumps(body, sort_keys=True, default=str).encode())
    body[lon_key], body[lat_key] = CONTEXT["points"][seed % len(CONTEXT["points"])]
    if body.get("inspection_id") is not None:
        body["inspection_id"] = CONTEXT["inspections"][seed % len(CONTEXT["inspections"])]
    when = body.get("reported_at")
    if isinstance(when, str) and (_time(when) or dt.datetime.min.replace(tzinfo=dt.timezone.utc)) > \
            dt.datetime.now(dt.timezone.utc):
        body["reported_at"] = PAST


@schemathesis.hook
def map_case(context, case):
    if not _positive(case):
        return case
    method, path = case.method.upper(), case.operation.path
    q = case.query if isinstance(case.query, dict) else None
    if q is not None:
        if path in FILTERED:
            _in_order(q, "from", "to")
        if path.startswith("/api/v1/gis/"):
            _period(q, "period_from", "period_to")
        if path == "/api/v1/kpis":
            _period(q, "from", "to")
            level = q.get("level") or "district"
            if level != "district" and not q.get("code"):
                q["code"] = CONTEXT["codes"][level]
        if path in ("/api/v1/audit", "/api/v1/audit.csv"):
            _in_order(q, "from", "to", strictly=True, last_day_whole=True)
        if path == "/open311/v2/requests.json":
            _in_order(q, "start_date", "end_date")
    keys = REPORTS.get((method, path))
    if keys and isinstance(case.body, dict):
        _report(case.body, *keys)
    return case
