"""Plain HTML drawn from a tree of values: one Dash component where ``dash.html`` would make one per element.

Every Dash component in a page is a wrapper the renderer keeps paths, props and a store subscription for: a drill's
new KPI cards and profile were ~120 of them, and the renderer's handling of that answer (37–44 ms for the cards
alone on the bench machine) held the panel's title. Parts that are only text to read — no input, no callback, no
``dcc`` component inside — are built with ``dash.html`` as before (:mod:`dashboard.ui.cards`,
:mod:`dashboard.ui.profile`) and then frozen into one :class:`Static` whose ``tree`` the browser turns into the
same elements (``window.wx_ui.Static``, assets/dashboard_app.js): ids, classes, titles and styles kept, so pages,
CSS and tests find them as before.

A tree is a string, a number, ``None``, a list of trees, or ``{"t": tag, "p": {prop: value}, "c": tree}``.
"""
from __future__ import annotations

from dash import html
from dash.development.base_component import Component, _explicitize_args

from .component import WxComponent

# the props an element keeps (React's names); anything else on a frozen component is refused — no link (``href``):
# what is frozen is text to read, and a link's address is better checked where links are made
PROPS = ("id", "className", "title", "style", "colSpan", "rowSpan", "lang", "dir", "role", "hidden")


class Static(WxComponent):
    """A tree of plain elements (see the module's docstring); ``tag`` wraps it in an element of its own, else the
    elements stand where the component stands."""

    _type = "Static"
    _props = ("id", "tree", "tag", "className")

    @_explicitize_args
    def __init__(self, id=Component.UNDEFINED, tree=Component.UNDEFINED, tag=Component.UNDEFINED,
                 className=Component.UNDEFINED, **kwargs):
        self._init(locals())


def freeze(node):
    """The tree of ``dash.html`` components (or text, or a list of them) ``node``; a component of another library
    (it may need its own code or a callback) or a prop outside :data:`PROPS` is a ``ValueError``."""
    if node is None or isinstance(node, (str, int, float)):
        return node
    if isinstance(node, (list, tuple)):
        return [freeze(n) for n in node]
    if not isinstance(node, Component) or getattr(node, "_namespace", None) != html.Div._namespace:
        raise ValueError(f"only dash.html components can be frozen, not {type(node).__name__}")
    props = {}
    for name in node._prop_names:
        value = getattr(node, name, None)
        if name == "children" or value is None:
            continue
        if name not in PROPS or (name == "id" and not isinstance(value, str)):
            raise ValueError(f"{type(node).__name__}.{name} cannot be frozen")
        props[name] = value
    out = {"t": node._type.lower(), "p": props}
    children = getattr(node, "children", None)
    if children is not None:
        out["c"] = freeze(children)
    return out


def static(node, **kwargs) -> Static:
    """``node`` (``dash.html`` components) as one :class:`Static`."""
    return Static(tree=freeze(node), **kwargs)
