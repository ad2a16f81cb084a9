"""The GIS export links (GeoPackage, zipped Shapefile) of the overview's drill panel and the duty desk: built from a
query string the caller computed (the desk's incident filter; the overview's period and unit), nothing read here."""
from __future__ import annotations

from dash import html

from ..i18n import t

GPKG_URL = "/api/v1/gis/export.gpkg"
SHP_URL = "/api/v1/gis/export.shp.zip"


def hrefs(query: str) -> tuple[str, str]:
    """(GeoPackage, Shapefile zip) URLs of the GIS export for ``query`` (period and incident filter)."""
    q = (query or "").lstrip("?")
    return (f"{GPKG_URL}?{q}" if q else GPKG_URL, f"{SHP_URL}?{q}" if q else SHP_URL)


def gis_links(lang: str, query: str, id_prefix: str, class_name: str = "wx-btn wx-btn-light") -> list:
    """The two download links, ids ``{id_prefix}-gpkg`` and ``{id_prefix}-shp``."""
    gpkg, shp = hrefs(query)
    title = t("gis_export_title", lang)
    return [
        html.A(t("gis_export_gpkg", lang), id=f"{id_prefix}-gpkg", href=gpkg, download="", title=title,
               className=class_name),
        html.A(t("gis_export_shp", lang), id=f"{id_prefix}-shp", href=shp, download="", title=title,
               className=class_name),
    ]
