"""Incident reads for the exports and Open311 (the list API reads the store's repository the same way).

Each function opens its own store session, reads through ``dashboard.store`` and returns serialised values or
the incidents themselves.
"""
from __future__ import annotations

from ..store import incidents as repo
from ..store import queries
from ..store.incidents import IncidentFilter
from ..store.models import Incident, utcnow
from . import db, units
from .serialise import EXPORT_COLUMNS, export_row, gis_point

EXPORT_MAX_ROWS = 100_000

__all__ = ["EXPORT_COLUMNS", "EXPORT_MAX_ROWS", "export_rows", "gis_points", "by_ids_and_codes", "page",
           "by_id_or_code"]


def export_rows(flt: IncidentFilter, lang: str, audience: str = "staff") -> list[list]:
    """The filtered incidents as table rows (values in ``EXPORT_COLUMNS`` order), newest first, at most
    :data:`EXPORT_MAX_ROWS`."""
    now = flt.now or utcnow()
    with db.session() as s:
        incs, _ = repo.list_incidents(s, flt, limit=EXPORT_MAX_ROWS)
    names = units.names()
    return [export_row(inc, lang, now, names, audience) for inc in incs]


def gis_points(flt: IncidentFilter, audience: str = "staff", max_rows: int | None = None) -> tuple[list[dict], int]:
    """(the filtered incidents as GIS point attributes (``serialise.gis_point``), newest first, at most
    ``max_rows`` — default :data:`EXPORT_MAX_ROWS` —; how many match the filter in all)."""
    now = flt.now or utcnow()
    cap = EXPORT_MAX_ROWS if max_rows is None else max_rows
    with db.session() as s:
        incs, _ = repo.list_incidents(s, flt, limit=cap)
        total = len(incs) if len(incs) < cap else repo.count_incidents(s, flt)
    return [gis_point(inc, now, audience) for inc in incs], total


def by_ids_and_codes(ids: list[int], codes: list[str]) -> list[Incident]:
    """The incidents with these public codes, then those with these ids (each group newest first)."""
    found: list[Incident] = []
    with db.session() as s:
        if codes:
            found += repo.list_incidents(s, IncidentFilter(codes=codes), limit=len(codes))[0]
        if ids:
            found += repo.list_incidents(s, IncidentFilter(ids=ids), limit=len(ids))[0]
    return found


def page(flt: IncidentFilter, page_no: int, page_size: int) -> list[Incident]:
    """Page ``page_no`` (from 1) of the filtered incidents, newest first."""
    with db.session() as s:
        return queries.incidents_page(s, flt, page=page_no, page_size=page_size)


def by_id_or_code(incident_id: int | None = None, code: str | None = None) -> Incident | None:
    with db.session() as s:
        if incident_id is not None:
            return repo.get_incident(s, incident_id)
        if code is not None:
            return repo.get_by_code(s, code)
    return None
