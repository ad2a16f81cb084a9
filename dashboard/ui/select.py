"""A native ``<select>`` as a Dash input: the choice lists on screen at a page's first paint.

``dcc.Dropdown`` is a lazy component: mounting it fetches and evaluates dcc's ``async-dropdown`` chunk (33 KB) and
renders its own popover, on the main thread before the overview's map can paint (the measure and hotspot period
over the map, the ranking's measure in the panel are there at once). A plain ``<select>`` needs neither: its code
is a few lines of ``assets/dashboard_app.js`` (``window.wx_ui.Select``), evaluated with the page's other assets, and
the browser draws and drives it (mouse, keyboard: arrows, type-ahead, Enter / Space / Alt+↓ to open; a screen
reader reads it as a combo box, ``html.Label(htmlFor=id)`` names it). ``value`` is the chosen option's value as
given (a string or a number, as ``dcc.Dropdown``'s); ``options``: ``[{"label": str, "value": …, "disabled":
bool?}]``. Choosing sets ``value`` (one callback per choice; arrow keys on the closed list choose as they move).
"""
from __future__ import annotations

from dash.development.base_component import Component, _explicitize_args

from .component import NAMESPACE, WxComponent  # noqa: F401 (NAMESPACE: re-exported)


class Select(WxComponent):
    """A single choice from ``options``, drawn as the browser's ``<select>`` (see the module's docstring)."""

    _type = "Select"
    _props = ("id", "options", "value", "className", "style", "disabled", "title")

    @_explicitize_args
    def __init__(self, id=Component.UNDEFINED, options=Component.UNDEFINED, value=Component.UNDEFINED,
                 className=Component.UNDEFINED, style=Component.UNDEFINED, disabled=Component.UNDEFINED,
                 title=Component.UNDEFINED, **kwargs):
        self._init(locals())
