"""The morning-meeting briefing (晨会简报): the last 24 h per zone, as a printable page and as a PDF.

The PDF is built with reportlab and its built-in CJK font ``STSong-Light`` (Adobe Asian font pack, CID; no
font file, no internet). CID fonts are not embedded: PDF viewers and printers supply an Adobe-GB1 font (Adobe
Reader, Chrome/Edge, Foxit, WPS do); embedding needs a TrueType CJK font, which reportlab requires and the
Noto CJK (CFF) fonts are not. All report text (case descriptions, addresses) is escaped before it reaches the
reportlab paragraph markup; Dash escapes it on the page.
"""
from __future__ import annotations

import io
from xml.sax.saxutils import escape

from dash import html

from ..domain.timefmt import SHORT, beijing
from ..i18n import kind_words, t
from ..store import catalogue, lifecycle
from .cards import change, fmt, kpi_label, points_text

COLUMNS = ("new", "onsite", "routed_town", "escalated_district", "overdue")
COLUMN_KEYS = {"new": "b_new", "onsite": "b_onsite", "routed_town": "b_town", "escalated_district": "b_district",
               "overdue": "b_overdue"}
TOTAL_KEYS = {"new": "new", "onsite": "onsite", "routed_town": "town", "escalated_district": "district",
              "overdue": "overdue"}


def _cat(key: str, lang: str) -> str:
    c = catalogue.CATEGORIES.get(key)
    return (c.name_zh if lang == "zh" else c.name_en) if c else key


def _short(text, n: int = 60) -> str:
    s = " ".join(str(text or "").split())
    return s if len(s) <= n else s[: n - 1] + "…"


def notable_line(c: dict, lang: str) -> str:
    state = lifecycle.STATES.get(c["status"], (c["status"], c["status"]))[0 if lang == "zh" else 1]
    tag = f" [{t('overdue_tag', lang)}]" if c.get("overdue") else ""
    return (f"{c['code']} · {_cat(c['category'], lang)} · {state} · {beijing(c['reported_at'], SHORT)}{tag}"
            f" — {_short(c.get('description'))}")


def title(data: dict, lang: str) -> str:
    """晨会简报 · 近24小时各片区情况 — or 各区县 / 各地市 in a city's or province's set (the rows' level)."""
    unit = t(data.get("level", "zone"), lang)
    return t("briefing_title", lang, unit=unit if lang == "zh" else unit.lower())


def unit_columns(data: dict, lang: str) -> list[str]:
    """The header of the unit columns: the rows' level and, where the parent is not the root, the parent's."""
    return [t(data["level"], lang)] + ([t(data["parent_level"], lang)] if data.get("parent_level") else [])


def unit_cells(data: dict, row: dict, h, lang: str) -> list[str]:
    """A row's unit name and (where shown) its parent's."""
    out = [h.name(data["level"], row["unit"], lang)]
    if data.get("parent_level"):
        out.append(h.name(data["parent_level"], row["parent"], lang))
    return out


def year_rows(year: dict, lang: str) -> list[dict]:
    """The year-on-year table's rows as text: measure, the year's value, the year before's, 同比 (relative change;
    for a rate also the change in percentage points) and the change's css class (good / bad / flat)."""
    out = []
    for r in year["rows"]:
        k = r["kpi"]
        text, cls = change(k, r["value"], r["before"], lang)
        pts = points_text(k, r["value"], r["before"], lang)
        out.append({"kpi": k, "label": kpi_label(k, lang), "value": fmt(k, r["value"], lang),
                    "before": fmt(k, r["before"], lang), "change": text + (f" ({pts})" if pts else ""), "class": cls})
    return out


def year_title(year: dict, lang: str) -> str:
    return t("b_year_title", lang, year=year["year"], previous=year["previous"], **kind_words(year["kind"], lang))


def year_section(year: dict | None, lang: str) -> html.Div:
    """年度同比: the district's headline measures of the last whole year against the year before."""
    if not year:
        return html.Div(id="briefing-year", className="wx-b-year", children=[
            html.H3(t("b_year", lang)), html.Div(t("b_year_none", lang), className="wx-b-window")])
    head = [html.Th(t("b_measure", lang)), html.Th(t("b_year_col", lang, year=year["year"])),
            html.Th(t("b_year_col", lang, year=year["previous"])), html.Th(t("b_yoy", lang))]
    rows = [html.Tr(id=f"briefing-year-{r['kpi']}", children=[
        html.Td(r["label"]), html.Td(r["value"], className="wx-num"), html.Td(r["before"], className="wx-num"),
        html.Td(r["change"], className=f"wx-num wx-b-yoy {r['class']}")]) for r in year_rows(year, lang)]
    return html.Div(id="briefing-year", className="wx-b-year", children=[
        html.H3(year_title(year, lang)),
        html.Table(className="wx-b-table wx-b-year-table", id="briefing-year-table",
                   children=[html.Thead(html.Tr(head)), html.Tbody(rows)])])


def briefing_layout(data: dict, h, lang: str) -> html.Div:
    head = [html.Th(c) for c in unit_columns(data, lang)] + [html.Th(t(COLUMN_KEYS[c], lang)) for c in COLUMNS] + [
        html.Th(t("b_notable", lang))]
    blank = [html.Td("")] * (len(unit_columns(data, lang)) - 1)
    rows = []
    for z in data["rows"]:
        notable = [html.Li(notable_line(c, lang), className="wx-b-overdue" if c.get("overdue") else "")
                   for c in z["notable"]]
        cls = "wx-b-row" + (" wx-b-alert" if z["overdue"] or z["escalated_district"] else "")
        rows.append(html.Tr(className=cls, **{"data-unit": z["unit"]}, children=[
            *[html.Td(name) for name in unit_cells(data, z, h, lang)],
            *[html.Td(z[c], className="wx-num" + (" wx-b-hot" if c == "overdue" and z[c] else "")) for c in COLUMNS],
            html.Td(html.Ul(notable, className="wx-b-notable") if notable else "—"),
        ]))
    tot = data["totals"]
    rows.append(html.Tr(className="wx-b-total", children=[
        html.Td(t("b_total", lang)), *blank,
        *[html.Td(tot[TOTAL_KEYS[c]], className="wx-num") for c in COLUMNS], html.Td("")]))
    return html.Div(id="briefing-sheet", className="wx-briefing-sheet", children=[
        html.H2(title(data, lang)),
        html.Div(t("briefing_window", lang, start=beijing(data["start"]), end=beijing(data["end"])),
                 className="wx-b-window"),
        html.Table(className="wx-b-table", id="briefing-table", children=[html.Thead(html.Tr(head)), html.Tbody(rows)]),
        year_section(data.get("year"), lang),
    ])


def briefing_pdf(data: dict, h, lang: str = "zh") -> bytes:
    """The briefing as an A4 landscape PDF (reportlab, built-in CJK font, no network)."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    font = "STSong-Light"
    if font not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(font))
    heading = ParagraphStyle("t", fontName=font, fontSize=15, leading=20)
    small = ParagraphStyle("s", fontName=font, fontSize=7.5, leading=9.5)
    cell = ParagraphStyle("c", fontName=font, fontSize=8.5, leading=10.5)

    def pdf_text(text) -> str:
        # STSong-Light has no glyph for the middle dot "·": it printed as a missing-glyph box
        return escape(str(text).replace(" · ", " | ").replace("·", "|"))

    def P(text, style=cell):
        return Paragraph(pdf_text(text), style)

    unit_cols = unit_columns(data, lang)
    header = [P(c) for c in unit_cols] + [P(t(COLUMN_KEYS[c], lang)) for c in COLUMNS] + [P(t("b_notable", lang))]
    body = [header]
    alerts = []
    for i, z in enumerate(data["rows"], start=1):
        notes = "<br/>".join(pdf_text(notable_line(c, lang)) for c in z["notable"]) or "—"
        body.append([P(name) for name in unit_cells(data, z, h, lang)]
                    + [str(z[c]) for c in COLUMNS] + [Paragraph(notes, small)])
        if z["overdue"]:
            alerts.append(i)
    tot = data["totals"]
    body.append([P(t("b_total", lang))] + [""] * (len(unit_cols) - 1) + [str(tot[TOTAL_KEYS[c]]) for c in COLUMNS]
                + [""])
    widths = [30 * mm, 24 * mm][: len(unit_cols)] + [17 * mm] * len(COLUMNS) + [None]
    page_w = landscape(A4)[0] - 24 * mm
    widths[-1] = page_w - sum(w for w in widths[:-1])
    table = Table(body, colWidths=widths, repeatRows=1)
    style = [
        ("FONTNAME", (0, 0), (-1, -1), font), ("FONTSIZE", (0, 0), (-1, -1), 8.5),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#12355b")), ("TEXTCOLOR", (0, 0), (-1, 0), colors.white),
        ("GRID", (0, 0), (-1, -1), 0.3, colors.HexColor("#95a5a6")), ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("ALIGN", (len(unit_cols), 1), (-2, -1), "RIGHT"), ("BACKGROUND", (0, -1), (-1, -1), colors.HexColor("#eaf2f8")),
    ]
    for i in alerts:
        col = len(unit_cols) + COLUMNS.index("overdue")
        style.append(("TEXTCOLOR", (col, i), (col, i), colors.HexColor("#c0392b")))
    table.setStyle(TableStyle(style))
    # header cells are Paragraphs: make their text white too
    for p in body[0]:
        p.style = ParagraphStyle("h", parent=cell, textColor=colors.white)
    buf = io.BytesIO()
    doc = SimpleDocTemplate(buf, pagesize=landscape(A4), leftMargin=12 * mm, rightMargin=12 * mm, topMargin=12 * mm,
                            bottomMargin=12 * mm, title=title(data, lang),
                            author=t("app_title", lang, place=h.root.title(lang)))
    story = [Paragraph(pdf_text(t("app_title", lang, place=h.root.title(lang))), small), Paragraph(pdf_text(title(data, lang)), heading),
             Paragraph(pdf_text(t("briefing_window", lang, start=beijing(data["start"]), end=beijing(data["end"]))),
                       cell), Spacer(1, 4 * mm), table]
    year = data.get("year")
    if year:  # 年度同比: the last whole year against the year before
        ybody = [[P(t("b_measure", lang)), P(t("b_year_col", lang, year=year["year"])),
                  P(t("b_year_col", lang, year=year["previous"])), P(t("b_yoy", lang))]]
        ybody += [[P(r["label"]), r["value"], r["before"], P(r["change"])] for r in year_rows(year, lang)]
        for p in ybody[0]:
            p.style = ParagraphStyle("h", parent=cell, textColor=colors.white)
        ytable = Table(ybody, colWidths=[70 * mm, 35 * mm, 35 * mm, 60 * mm], repeatRows=1)
        ytable.setStyle(TableStyle([
            ("FONTNAME", (0, 0), (-1, -1), font), ("FONTSIZE", (0, 0), (-1, -1), 8.5),
            ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#12355b")),
            ("GRID", (0, 0), (-1, -1), 0.3, colors.HexColor("#95a5a6")), ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ("ALIGN", (1, 1), (2, -1), "RIGHT")]))
        story += [Spacer(1, 6 * mm), Paragraph(pdf_text(year_title(year, lang)), cell), Spacer(1, 2 * mm), ytable]
    doc.build(story)
    return buf.getvalue()
