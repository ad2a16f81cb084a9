"""The page shell: header with title, navigation and the language switch."""
from __future__ import annotations

from urllib.parse import urlencode

from dash import html

from ..i18n import t

NAV = (("/", "nav_overview"), ("/incidents", "nav_incidents"), ("/wall", "nav_wall"))


def lang_href(path: str, params: dict, lang: str) -> str:
    other = "en" if lang == "zh" else "zh"
    query = {k: v for k, v in params.items() if k != "lang"}
    if other != "zh":
        query["lang"] = other
    return path + ("?" + urlencode(query) if query else "")


def header(lang: str, path: str, params: dict, subtitle: str = "", *, place: str) -> html.Header:
    """``place``: the root unit's name in ``lang`` (``services.units.title``), for the title."""
    suffix = "?lang=en" if lang == "en" else ""
    links = [html.A(t(key, lang), href=href + suffix, className="wx-nav") for href, key in NAV]
    return html.Header(className="wx-header", children=[
        html.H1(t("app_title", lang, place=place)),
        html.Span(subtitle, className="wx-sub", id="header-sub"),
        html.Div(className="wx-spacer"),
        *links,
        html.A(t("switch_lang", lang), href=lang_href(path, params, lang), id="lang-switch"),
    ])
