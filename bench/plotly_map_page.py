"""The page the overview's first paint is compared with (``bench_map``): the default way to draw this map with
plotly in Dash — one ``dcc.Graph`` holding a ``choropleth_map`` figure (plotly.js with MapLibre, WebGL) — with
the data the overview draws, read from the dashboard's own API in the same run: the 46 zones coloured by open
incidents (the overview's default measure), the 538 grid outlines, the district outline and the open incidents
as clustered markers. No basemap tiles (the bench serves the overview without any either). Dash's defaults
otherwise (no compression, plotly.js served by the app). Offline, MapLibre's request for the cluster counts'
glyphs fails at once (no name resolution) and it draws them with a local font, as it would on the centre's network.

``painted_script`` is the page script that stamps ``window.__wxPainted`` (ms since navigation start) after the
frame in which MapLibre first went idle with every trace's source loaded and drawn.
"""
from __future__ import annotations

import json
import logging
import urllib.request
from contextlib import contextmanager

SEVERITY_COLORS = {1: "#2e86de", 2: "#f1c40f", 3: "#e67e22", 4: "#c0392b"}
CENTER = {"lat": 30.80, "lon": 120.10}  # the overview's centre (ui.map.CENTER); zoom 10 here = Leaflet's 11


def fetch_data(base: str, token: str) -> dict:
    """What the overview's first paint draws, from the dashboard at ``base`` (a bearer ``token`` with read scope)."""
    def get(path):
        req = urllib.request.Request(base + path, headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(req, timeout=120) as resp:
            return json.loads(resp.read())

    return {"zones": get("/api/geo/zones.json"), "grids": get("/api/geo/grids.json"),
            "district": get("/api/geo/district.json"), "incidents": get("/api/map/incidents.json"),
            "measure": get("/api/map/measures.json?layer=zones&measure=open_incidents")}


def figure(data: dict):
    import plotly.express as px
    import plotly.graph_objects as go

    zones, grids, measure = data["zones"], data["grids"], data["measure"]
    codes = [f["properties"]["code"] for f in zones["features"]]
    fig = px.choropleth_map(
        {"code": codes, "value": [measure["values"].get(c) for c in codes]}, geojson=zones, locations="code",
        featureidkey="properties.code", color="value", color_continuous_scale=measure["colors"], opacity=0.6,
        map_style="white-bg", center=CENTER, zoom=10, labels={"value": measure["label"]})
    fig.update_traces(marker_line_width=2.5, marker_line_color="#1f618d")
    grid_codes = [f["properties"]["code"] for f in grids["features"]]
    fig.add_trace(go.Choroplethmap(
        geojson=grids, locations=grid_codes, featureidkey="properties.code", z=[0] * len(grid_codes),
        colorscale=[[0, "rgba(52,152,219,0.04)"], [1, "rgba(52,152,219,0.04)"]], showscale=False,
        marker_line_width=0.6, marker_line_color="#5d6d7e", name="grids"))
    fig.add_trace(go.Choroplethmap(
        geojson=data["district"], locations=[f["properties"]["code"] for f in data["district"]["features"]],
        featureidkey="properties.code", z=[0] * len(data["district"]["features"]),
        colorscale=[[0, "rgba(0,0,0,0)"], [1, "rgba(0,0,0,0)"]], showscale=False,
        marker_line_width=3, marker_line_color="#c0392b", name="district"))
    points = data["incidents"]["features"]
    fig.add_trace(go.Scattermap(
        lon=[p["geometry"]["coordinates"][0] for p in points], lat=[p["geometry"]["coordinates"][1] for p in points],
        mode="markers", marker={"size": 10, "color": [SEVERITY_COLORS.get(p["properties"]["s"], "#888")
                                                      for p in points]},
        text=[f'#{p["properties"]["id"]} {p["properties"]["k"]}' for p in points],
        cluster={"enabled": True, "maxzoom": 17}, name="incidents"))
    fig.update_layout(margin={"l": 0, "r": 0, "t": 0, "b": 0}, showlegend=False)
    return fig


def make_app(data: dict):
    import dash
    from dash import dcc, html

    app = dash.Dash(__name__, title="plotly choropleth_map", serve_locally=True)
    app.layout = html.Div(dcc.Graph(id="map", figure=figure(data), style={"height": "100vh"}),
                          style={"height": "100vh"})
    return app


@contextmanager
def served(data: dict):
    """The page served by a process of its own (Dash's component registry is per process: in the bench's process
    the page would also carry every library the dashboard imported). Yields its URL."""
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "data.json"
        path.write_text(json.dumps(data), encoding="utf-8")
        proc = subprocess.Popen([sys.executable, "-m", "bench.plotly_map_page", str(path)], stdout=subprocess.PIPE,
                                cwd=Path(__file__).resolve().parent.parent, text=True)
        try:
            line = proc.stdout.readline().strip()
            if not line.startswith("http://"):
                raise RuntimeError(f"the plotly page did not start: {line!r}")
            yield line
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def _serve(data_path: str) -> None:
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    with open(data_path, encoding="utf-8") as f:
        app = make_app(json.load(f))
    server = make_server("127.0.0.1", 0, app.server, threaded=True)
    print(f"http://127.0.0.1:{server.server_port}", flush=True)
    server.serve_forever()


def painted_script(sources: int = 4) -> str:
    """Init script: ``window.__wxPainted`` = ms from navigation start to the end of the frame in which MapLibre
    first went idle with at least ``sources`` trace sources (one per choropleth, the clustered points' circles)
    all loaded (polled once a frame until the map exists)."""
    return """(() => {
  window.__wxPainted = null;
  const SOURCES = %d;
  function afterFrame(fn) { requestAnimationFrame(() => { const c = new MessageChannel(); c.port1.onmessage = fn; c.port2.postMessage(0); }); }
  function sources(m) {
    const s = (m.getStyle() || {}).sources || {};
    return Object.keys(s).filter(k => k.indexOf('source-') === 0);
  }
  function watch(m) {
    const check = () => {
      if (window.__wxPainted !== null) { return; }
      const ids = sources(m);
      if (m.loaded() && ids.length >= SOURCES && ids.every(id => m.isSourceLoaded(id))) {
        afterFrame(() => { if (window.__wxPainted === null) { window.__wxPainted = performance.now(); } });
      } else { m.triggerRepaint(); }
    };
    m.on('idle', check);
    m.triggerRepaint();
  }
  (function poll() {
    const gd = document.querySelector('.js-plotly-plot');
    const sub = gd && gd._fullLayout && gd._fullLayout.map && gd._fullLayout.map._subplot;
    if (sub && sub.map) { watch(sub.map); return; }
    requestAnimationFrame(poll);
  })();
})();""" % sources


if __name__ == "__main__":
    import sys

    _serve(sys.argv[1])
