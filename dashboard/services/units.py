"""The unit hierarchy (the root unit, a county-level district → towns → zones → grids) and the names of
units — one source.

For now the hierarchy is ``metrics.views.hierarchy(geodata)`` (the root unit, names, parents, children, bounds;
memoised per geodata bundle); everything that shows a unit's name asks this module instead of building its own
table. The root unit (its code, Chinese and English name) is data: ``district.geojson``'s one feature — no code
outside the geodata build knows which county the app serves. :func:`root` and :func:`title` are what titles,
messages and metadata name it by.
"""
from __future__ import annotations

from functools import lru_cache

from .. import context
from ..domain.vocab import pick
from ..metrics import views

LEVELS = views.LEVELS  # every level a set can have; a set's own: hierarchy().levels


def geodata(gd=None):
    """The app's geodata bundle (or ``gd`` when given)."""
    return gd if gd is not None else context.services().geodata()


def hierarchy(gd=None) -> "views.Hierarchy":
    """Names, parents, children and bounds of every unit (memoised per geodata bundle)."""
    return views.hierarchy(geodata(gd))


def root(gd=None) -> "views.Root":
    """The root unit the app serves: ``.code``, ``.name``, ``.name_en`` (None when the geodata has none)."""
    return hierarchy(gd).root


def kind(gd=None) -> str:
    """区 / 县 / 市: the root unit's kind (what 全区 / 全县 / 全市 and "District / County / City average" say)."""
    return root(gd).kind


def title(lang: str = "zh", gd=None) -> str:
    """The root unit's full name in ``lang`` (德清县; in English its geodata name and kind, else ``County 330521``)."""
    return root(gd).title(lang)


def root_bounds(gd=None) -> list:
    """[[south, west], [north, east]] of the root unit (the map's initial view)."""
    h = hierarchy(gd)
    return h.bounds[h.key("district", None)]


@lru_cache(maxsize=8)
def _by_code(gd) -> tuple[dict, dict]:
    h = views.hierarchy(gd)
    names = {code: pair for (_level, code), pair in h.names.items()}
    workers = dict(zip(h.grids["code"], h.grids["worker_name"])) if "worker_name" in h.grids.columns else {}
    return names, workers


def names(gd=None) -> dict:
    """``{code: (zh, en)}`` for the district and every town, zone and grid (a grid without an English name: its Chinese one)."""
    return _by_code(geodata(gd))[0]


def name_of(code: str | None, lang: str, gd=None) -> str:
    """A unit's name in ``lang`` by its code; ``""`` for no code, the code itself for an unknown one."""
    if not code:
        return ""
    return pick(names(gd).get(code), lang, code)


def worker_of(grid_code: str | None, gd=None) -> str | None:
    """The grid worker (网格员) of a grid."""
    return _by_code(geodata(gd))[1].get(grid_code) if grid_code else None


def normalise_view(h, level: str | None, code: str | None) -> tuple[str, str | None]:
    """A valid (level, code) of hierarchy ``h``: unknown levels or codes fall back to the district."""
    return views.normalise_view(h, level, code)
