"""The service layer: one layer between the store and the front doors.

The HTTP blueprints (``dashboard/api``) and the Dash callbacks (``dashboard/callbacks``) both call these
functions, and neither imports the other. Services read through the store's repositories (``dashboard/store`` is
the only package that builds SQL or holds a connection) and the geodata, and hand plain values to their callers;
``dashboard/ui`` then only builds components from values it is given.

- :mod:`.filters` — the one incident filter parser (a mapping in, a typed store filter out, one ``FilterError``);
- :mod:`.serialise` — one serialiser per audience (API JSON, map feature, duty-list row, export row, wall
  ticker, Open311 request);
- :mod:`.units` — the unit hierarchy and the names of towns, zones and grids;
- :mod:`.incidents`, :mod:`.duty`, :mod:`.alerts`, :mod:`.maps`, :mod:`.wall`, :mod:`.drill` — the data each
  front door shows.

Beijing-time formatting and small shared name tables live in :mod:`dashboard.domain` (pure; the ui may import it).
"""
