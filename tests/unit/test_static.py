"""ui.static: dash.html trees frozen into one component keep every element's tag, id, class, title and text, in
order; anything that needs Dash (another library's component, a pattern id, an event prop) is refused."""
from __future__ import annotations

import pytest
from dash import dcc, html

from dashboard.ui import cards, static


def test_a_tree_keeps_tags_ids_classes_titles_and_text():
    node = html.Div(id="a", className="c1", children=[
        "text", html.Span("x", title="t", className="s"), html.Ul([html.Li(1), html.Li(2.5)]), None])
    assert static.freeze(node) == {"t": "div", "p": {"id": "a", "className": "c1"}, "c": [
        "text", {"t": "span", "p": {"title": "t", "className": "s"}, "c": "x"},
        {"t": "ul", "p": {}, "c": [{"t": "li", "p": {}, "c": 1}, {"t": "li", "p": {}, "c": 2.5}]}, None]}


@pytest.mark.parametrize("node", [html.Div(dcc.Link("x", href="/")), html.Div(id={"type": "x", "i": 1}),
                                  html.Button("x", n_clicks=0), html.A("x", href="javascript:alert(1)")])
def test_what_needs_dash_is_refused(node):
    with pytest.raises(ValueError):
        static.freeze(node)


def test_the_cards_are_one_component_with_each_card_s_ids():
    values = {k: 1 for k in cards.CARD_KPIS}
    out = cards.cards(values, values, "上级", values, "zh")
    assert len(out) == 1 and isinstance(out[0], static.Static)
    tree = out[0].tree
    assert [c["p"]["id"] for c in tree] == [f"card-{k}" for k in cards.CARD_KPIS]
    assert all(c["c"][1]["p"]["id"] == f"card-value-{k}" for c, k in zip(tree, cards.CARD_KPIS))
