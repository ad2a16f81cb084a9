"""晨会 Morning briefing: the last 24 h per zone — printable (print CSS), exportable as PDF (server, reportlab)
and PNG (client, the vendored ``assets/vendor/html-to-image`` library). Nothing is fetched from outside."""
from __future__ import annotations

from dash import Input, Output, dcc, html

from ..domain.timefmt import DAY, beijing
from ..i18n import t
from ..services import kpis as kpi_service
from ..services import units
from ..ui.briefing import briefing_layout
from ..ui.shell import header

ASSETS = ("vendor/html-to-image-1.11.13.min.js",)  # the PNG export (pages.head: other pages leave it out)


def layout(settings, lang: str, params: dict):
    data = kpi_service.briefing()
    suffix = "?lang=en" if lang == "en" else ""
    return html.Div(className="wx-briefing-page", children=[
        header(lang, "/briefing", params, t("briefing", lang), place=units.title(lang)),
        html.Div(className="wx-b-toolbar wx-no-print", children=[
            dcc.Link(t("back_overview", lang), href="/" + suffix, className="wx-b-btn"),
            html.Button(t("print", lang), id="briefing-print", className="wx-b-btn", n_clicks=0),
            html.A(t("export_pdf", lang), href="/api/v1/briefing.pdf" + suffix, id="briefing-pdf",
                   className="wx-b-btn", download=f"briefing-{beijing(data['end'], DAY)}.pdf"),
            html.Button(t("export_png", lang), id="briefing-png", className="wx-b-btn", n_clicks=0),
            html.Span(id="briefing-png-status", className="wx-b-status"),
        ]),
        briefing_layout(data, units.hierarchy(), lang),
    ])


def register_callbacks(app) -> None:
    app.clientside_callback(
        "function (n) { if (n) { window.print(); } return ''; }",
        Output("briefing-print", "title"), Input("briefing-print", "n_clicks"), prevent_initial_call=True)
    app.clientside_callback(
        """async function (n) {
            if (!n || !window.htmlToImage) { return window.htmlToImage ? '' : 'html-to-image missing'; }
            const node = document.getElementById('briefing-sheet');
            const url = await window.htmlToImage.toPng(node, {backgroundColor: '#ffffff', pixelRatio: 2});
            const a = document.createElement('a');
            a.href = url; a.download = 'briefing.png'; document.body.appendChild(a); a.click(); a.remove();
            return 'PNG ✓';
        }""",
        Output("briefing-png-status", "children"), Input("briefing-png", "n_clicks"), prevent_initial_call=True)
