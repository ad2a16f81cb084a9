"""The base of this app's own Dash components (``window.wx_ui``, defined by assets/dashboard_app.js): a few lines of
JS each instead of a component library. A subclass names its ``_type`` and ``_props`` and passes its
``__init__``'s ``locals()`` (the signature is explicit, as Dash's generated components are, for
``_explicitize_args``) to :meth:`WxComponent._init`."""
from __future__ import annotations

from dash.development.base_component import Component

NAMESPACE = "wx_ui"  # window.wx_ui, defined by assets/dashboard_app.js


class WxComponent(Component):
    _children_props: list = []
    _base_nodes = ["children"]
    _namespace = NAMESPACE
    _props: tuple = ()

    def _init(self, given: dict) -> None:
        """Dash's component set-up from an ``__init__``'s ``locals()``: the props passed explicitly, in order."""
        kwargs = dict(given["kwargs"])
        explicit = kwargs.pop("_explicit_args")
        values = {**given, **kwargs}
        self._prop_names = list(self._props)
        self._valid_wildcard_attributes = []
        self.available_properties = list(self._prop_names)
        self.available_wildcard_properties = []
        Component.__init__(self, **{k: values[k] for k in explicit})
