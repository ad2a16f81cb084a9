"""The map at scale (issue 10): one county (the committed Wuxing geodata) → a city (湖州市, 5 counties) → the
province (浙江省, 90 counties), each served on a PostgreSQL store of its own, measured in a real headless Chromium.

    python -m bench.bench_province                                   # every set of --set (defaults below)
    python -m bench.bench_province --sets zhejiang --runs 5 --moves 30
    python -m bench.bench_province --generate                        # first create the missing prov_* stores

A set is ``NAME:GEODATA_DIR:DATABASE``; the defaults are ``wuxing:geodata:prov_wuxing``,
``huzhou:/tmp/huzhou:prov_huzhou`` and ``zhejiang:/tmp/zhejiang:prov_zhejiang`` (build the sets with
``python -m dashboard.geodata build --city 湖州市 --out /tmp/huzhou`` / ``--province --out /tmp/zhejiang``;
``--generate`` fills an empty store with ``python -m dashboard.demo history --scale S [--incidents N]``: the demo is
calibrated to Wuxing's figures in proportion to a set's registered units, so ``--scale`` sets the density and
``--incidents`` tops the store up with closed cases of the bulk years).

For each set, served in-process (``bench.common.served``) on its store:

- the server: the first request after start (the geodata loaded), ``/api/geo/counties.json`` (first / warm),
  ``grids.json?bbox=`` over distinct boxes (the first builds the layer's feature texts; then each box is cut and
  compressed once), ``/api/map/measures.json`` (the choropleth payload) per layer — the client's wall time on
  127.0.0.1 and the bytes sent;
- the overview's first paint, each in a fresh browser context (cold browser cache; the server's caches warm after
  one unmeasured paint, whose figure is kept as ``server_cold``): navigation start → the end of the first frame in
  which the root's child polygons (a multi-county set: every county and city path, drawn with their fill; one
  county: every grid and zone path) and the incident layer (clusters or markers) are drawn; the requests and
  bytes transferred before it, the JS bundles apart from the rest; the main thread's CPU; then one more paint
  under a Chromium trace, summarised (where the main thread's time went before the paint);
- pan and zoom: on a page that has settled (its charts drawn, no request in flight for 0.5 s: a move made while
  its first answers still come measures the page's load), the Leaflet map driven directly
  (``wx.map.mapFor('map')``: ``setView`` without animation to a random open incident at a zoom from the
  level-of-detail ladder, ``panBy``, ``setZoom`` ±1), timed in the page from the call to the end of the frame in
  which the new view is drawn: every detail layer the zoom asks for (``ui.layers.DETAIL``: towns ≥ 9.5 when their
  overlay is on, zones ≥ 10.5, grids ≥ 12) fetched for the new view's snapped box (``/api/geo/<layer>.json?bbox=``,
  a completed request) and drawn (a new set of polygons, not empty), the layers below their zoom emptied, and the
  incident layer of the new view asked for, answered and drawn (``wx.live.view().busy`` false: since session 19;
  before, the old view's markers lying in the new one counted) with a cluster, marker or cell inside the map; when
  the box did not change, nothing is fetched and the drawn polygons stand. Each move records when its polygons
  and its incident layer were first right (``polys_ms``, ``markers_ms``), what it fetched and when (queued,
  sent, first byte, end) and the page's long animation frames;
- drill clicks: a real mouse click on a polygon (the topmost drawn unit layer, a point of the polygon that
  ``elementFromPoint`` confirms), with the incident layer switched off in the layer control (a cluster would take
  the click and zoom instead), timed from the ``mousedown`` to the end of the frame in which the panel's title
  shows the unit's code and the map's highlight (``wx.map.selectedOf`` — before session 16 ``hideout.selected`` —
  and the path stroked ``#ffd400``) is on it;
  then (not timed as the target; ``settled_ms``) until the fly to the unit ended and the new view is drawn. The
  chain goes root → county → town → zone (a grid click outside the current zone) → grid, repeated;
- a multi-county set also: the first paint of one county's page (``/?level=county&code=…``, fresh context) to its
  view drawn (panel title, highlight, the view's detail layers, incidents).

Every figure carries the load average (``/proc/loadavg``) at the set's start and end; the store's size (incidents,
open, database size) and the commit are recorded. Results: ``bench/results/province.json``, merged by set (a run
of some sets keeps the others' figures).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

from bench.bench_map import RESOURCES, bundle_name, machine, painted_script
from bench.common import RESULTS, ROOT, chromium, served, sign_in, summary, write_results

PG = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432")
DEFAULT_SETS = ["wuxing:geodata:prov_wuxing", "huzhou:/tmp/huzhou:prov_huzhou", "zhejiang:/tmp/zhejiang:prov_zhejiang"]
TOKEN = "bench-token"
SECRET = "bench-province-secret-key-0123456789abcdef"
LEVEL_LAYER = {"city": "cities", "county": "counties", "town": "towns", "zone": "zones", "grid": "grids"}

# In-page helpers (an init script): the level-of-detail state of the view, its drawn condition, the drill watch.
HELPERS = r"""(() => {
  try { performance.setResourceTimingBufferSize(100000); } catch (e) {}
  const B = window.__wxb = {t0: null, result: null, detail: %(detail)s, labels: %(labels)s, step: 0.05,
                            drillTimeout: %(drill_timeout)d};
  document.addEventListener('mousedown', () => { B.t0 = performance.now(); }, true);
  // the page's long animation frames (≥ 50 ms; Chromium's LoAF entries: where a frame's time went, by script and
  // rendering), kept to tell what a slow click waited for
  B.loafs = [];
  try { new PerformanceObserver(l => { B.loafs.push(...l.getEntries()); if (B.loafs.length > 400) { B.loafs.splice(0, 200); } })
          .observe({type: 'long-animation-frame', buffered: true}); } catch (e) {}
  B.framesIn = (from, to) => B.loafs.filter(f => f.startTime + f.duration > from && f.startTime < to).map(f => ({
    start: Math.round(f.startTime - from), ms: Math.round(f.duration), blocking: Math.round(f.blockingDuration),
    render_ms: Math.round(f.renderStart ? f.startTime + f.duration - f.renderStart : 0),
    style_layout_ms: Math.round(f.styleAndLayoutStart ? f.startTime + f.duration - f.styleAndLayoutStart : 0),
    scripts: Array.from(f.scripts || []).sort((a, b) => b.duration - a.duration).slice(0, 4).map(x => [
      Math.round(x.duration), x.invokerType + ' ' + String(x.invoker || '').slice(0, 60),
      String(x.sourceURL || '').split('/').pop().split('?')[0].slice(0, 50) + ':' + (x.sourceFunctionName || ''),
      Math.round(x.forcedStyleAndLayoutDuration || 0)])}));
  // the page's requests in flight (fetch: dash-renderer's callbacks, the map's layers) and when the last one ended
  B.inflight = 0; B.lastNet = 0;
  if (window.fetch) { const plain = window.fetch.bind(window);
    window.fetch = function () { B.inflight++;
      return plain.apply(null, arguments).finally(() => { B.inflight--; B.lastNet = performance.now(); }); }; }
  // the page has settled: nothing in flight for quietMs, no Dash component loading
  B.settled = quietMs => B.inflight === 0 && performance.now() - B.lastNet > quietMs &&
    !document.querySelector('[data-dash-is-loading="true"]');
  B.moving = false;
  B.map = () => { const m = window.wx && window.wx.map && window.wx.map.mapFor('map');
    if (m && !m.__wxb) { m.__wxb = true; m.on('movestart', () => { B.moving = true; });
                         m.on('moveend', () => { B.moving = false; }); }
    return m; };
  function snap(v, up) { return (up ? Math.ceil(v / B.step) : Math.floor(v / B.step)) * B.step; }
  B.box = m => { const b = m.getBounds();
    return [snap(b.getWest(), false), snap(b.getSouth(), false), snap(b.getEast(), true), snap(b.getNorth(), true)]
      .map(v => v.toFixed(2)).join(','); };
  B.checked = layer => { const want = B.labels[layer];
    for (const l of document.querySelectorAll('.leaflet-control-layers-overlays label')) {
      if (l.textContent.trim() === want) { const i = l.querySelector('input'); return !!(i && i.checked); } }
    return null; };
  // the drawn polygons of a unit layer: the features of its GeoJSON group (found once through one of its features,
  // kept while the group is on the map), else of the whole map — the poll below runs every frame, and walking every
  // layer of the map (all the polygons and markers) three times a frame took ~10 %% of the page's time in a move
  B.groups = {};
  B.inLayer = (l, cls) => l.feature && l._path && l._path.isConnected &&
    (' ' + ((l.options && l.options.className) || '') + ' ').includes(cls);
  B.feats = (m, layer) => { const cls = ' wx-layer-' + layer + ' ', g = B.groups[layer];
    if (g && m.hasLayer(g)) { const out = []; g.eachLayer(l => { if (B.inLayer(l, cls)) { out.push(l); } });
                               if (out.length) { return out; } }
    const out = []; m.eachLayer(l => { if (B.inLayer(l, cls)) { out.push(l); } });
    if (out.length) { const parents = out[0]._eventParents || {};
      for (const id in parents) { if (parents[id] instanceof L.GeoJSON) { B.groups[layer] = parents[id]; } } }
    return out; };
  // which polygons a layer draws, in short: a redraw makes new ones (new stamps)
  B.key = f => { let lo = Infinity, hi = -Infinity; for (const l of f) { const s = L.stamp(l); if (s < lo) { lo = s; } if (s > hi) { hi = s; } }
    return f.length + ':' + lo + ':' + hi; };
  // the oldest and newest collections a layer's drawn polygons come from (sentGeometry stamps each feature ``_wxs``): a move
  // whose new box holds the same whole units keeps every polygon (assets/dashboard_map.js, diffGeoJSON) but gives
  // each the new collection's feature
  B.stamps = f => { let lo = Infinity, hi = -Infinity; for (const l of f) { const s = (l.feature.properties || {})._wxs;
    lo = Math.min(lo, typeof s === 'number' ? s : -Infinity); hi = Math.max(hi, typeof s === 'number' ? s : Infinity); }
    return f.length ? [lo, hi] : null; };
  B.multi = () => !!document.querySelector('path.wx-layer-counties');
  B.snapshot = () => { const m = B.map(), z = m.getZoom(), box = B.box(m), out = {zoom: z, box: box, layers: {}};
    for (const layer of Object.keys(B.detail)) {
      const f = B.feats(m, layer);
      out.layers[layer] = {n: f.length, key: B.key(f), wxs: B.stamps(f),
                           needed: B.multi() && z >= B.detail[layer] && B.checked(layer) !== false};
    }
    return out; };
  B.markersInView = () => { const m = B.map(); if (!m) { return 0; }
    const r = m.getContainer().getBoundingClientRect(); let n = 0;
    document.querySelectorAll('.marker-cluster, .wx-inc, .wx-cell').forEach(e => { const b = e.getBoundingClientRect();
      if (b.width + b.height > 0 && b.right > r.left && b.left < r.right && b.bottom > r.top && b.top < r.bottom) { n++; } });
    return n; };
  // the layer holds the units of the view's box: wx.map.detail has what it wants (fetched, or kept from an earlier
  // visit of the box); else (a page without it) a completed request for the layer's units of a box
  B.held = layer => { const s = window.wx && wx.map.viewState && wx.map.viewState(layer);
    return s ? !!s.have && s.have === s.want : null; };
  // the open incidents' places ([lon, lat], given by the bench): does the view hold any (else no marker is due)?
  B.points = null;
  B.anyInView = m => { if (!B.points) { return true; } const b = m.getBounds();
    return B.points.some(p => b.contains([p[1], p[0]])); };
  B.fetched = (layer, since) => performance.getEntriesByType('resource').some(e =>
      e.name.includes('/api/geo/' + layer + '.json?bbox=') && !e.name.endsWith('bbox=0,0,0,0') &&
      e.startTime >= since && e.responseEnd > 0);
  // the new view drawn: each detail layer as its zoom asks (fetched for the view's box and redrawn, or unchanged
  // when the box is; emptied below its zoom), and the incident layer in view (markers: optional when unknown)
  B.viewState = (before, since, markers) => { const m = B.map(); if (!m) { return {ok: false, why: ['no map']}; }
    const z = m.getZoom(), box = B.box(m), multi = B.multi(), why = [];
    for (const layer of Object.keys(B.detail)) {
      const f = B.feats(m, layer);
      const needed = multi && z >= B.detail[layer] && B.checked(layer) !== false;
      if (!multi) { continue; }
      if (!needed) { if (f.length) { why.push(layer + ' not emptied'); } continue; }
      const was = before && before.layers[layer];
      if (was && was.needed && before.box === box) { if (!f.length) { why.push(layer + ' empty'); } continue; }
      const key = B.key(f);
      const held = B.held(layer);
      // the same polygons may stand for the new box (the same whole units): then each holds the new collection's
      // feature (a stamp newer than every one drawn before) and the layer holds what the view wants
      const kept = was && key === was.key && held === true && !!was.wxs && B.stamps(f)[0] > was.wxs[1];
      if (!f.length || (was && key === was.key && !kept)) { why.push(layer + ' not redrawn'); continue; }
      if (held === null ? !B.fetched(layer, since) : !held) { why.push(layer + ' not fetched'); }
    }
    // the incident layer of the new view: asked for, answered and drawn (the old view's markers may lie in the
    // new one: not enough), then some drawn where the view holds any
    const lv = markers && window.wx.live && window.wx.live.view && window.wx.live.view();
    if (lv && lv.busy) { why.push('no incident layer of this view yet'); }
    else if (markers && B.markersInView() === 0 && B.anyInView(m)) { why.push('no incident drawn in view'); }
    return {ok: why.length === 0, why: why}; };
  // resolve with ms from t0 to the end of the frame in which cond() first holds (checked once a frame); -1: timeout
  B.until = (cond, t0, timeoutMs) => new Promise(res => {
    (function poll() {
      let ok = false; try { ok = cond(); } catch (e) { ok = false; }
      if (ok) { requestAnimationFrame(() => { const c = new MessageChannel();
        c.port1.onmessage = () => res(performance.now() - t0); c.port2.postMessage(0); }); return; }
      if (performance.now() - t0 > timeoutMs) { res(-1); return; }
      requestAnimationFrame(poll);
    })();
  });
  // one move of the map: the call, then the new view drawn
  B.move = (kind, a, markers) => { const m = B.map(); const before = B.snapshot();
    return new Promise(res => {
      let ended = false; m.once('moveend', () => { ended = true; });
      const t0 = performance.now();
      if (kind === 'jump') { m.setView([a.lat, a.lon], a.zoom, {animate: false}); }
      else if (kind === 'pan') { m.panBy([a.dx, a.dy], {animate: false}); }
      else { m.setZoom(m.getZoom() + a.dz, {animate: false}); }
      let last = null, polys = null, marks = null;  // when the polygons, and the incident layer, were first right
      B.until(() => { if (!ended) { return false; } last = B.viewState(before, t0 - 1, markers);
                      const now = Math.round(performance.now() - t0);
                      if (polys === null && !last.why.some(w => !w.startsWith('no incident'))) { polys = now; }
                      if (marks === null && !last.why.some(w => w.startsWith('no incident'))) { marks = now; }
                      return last.ok; },
              t0, 30000).then(ms => res({ms: ms, zoom: m.getZoom(), why: last && last.why, polys_ms: polys,
                                         markers_ms: marks,
                                         from: {zoom: before.zoom, box: before.box}, box: B.box(m),
                                         // what the move fetched: [path, status, start, request sent, server's first byte, end,
                                         // the server's own time (Server-Timing app)] (ms after t0; from start to sent:
                                         // queued in the browser, or a connection made)
                                         fetched: performance.getEntriesByType('resource')
                                           .filter(e => e.startTime >= t0 - 1 && /\/api\/(geo|map)\//.test(e.name))
                                           .map(e => [e.name.split('/api/')[1].slice(0, 90), e.responseStatus,
                                                      Math.round(e.startTime - t0), Math.round(e.requestStart - t0),
                                                      Math.round(e.responseStart - t0),
                                                      Math.round(e.responseEnd - t0),
                                                      ((e.serverTiming || []).find(t => t.name === 'app') || {}).duration]),
                                         layers: Object.fromEntries(Object.keys(B.detail).map(k => [k, B.feats(m, k).length])),
                                         // data sent again to a layer that dropped it (wx.map: VERIFY_MS), so far
                                         resent: Object.fromEntries(['district', 'cities', 'counties', 'towns', 'zones', 'grids']
                                           .map(k => [k, (window.wx.map.viewState(k) || {}).resent || 0])),
                                         markers: B.markersInView(),
                                         // the move's long animation frames (where its main-thread time went)
                                         frames: ms > 0 ? B.framesIn(t0, t0 + ms) : []}));
    }); };
  // where to click: a point of a polygon of the topmost drawn unit layer that is on top at that point
  B.target = (order, avoid, seed, within) => { const m = B.map(); const r = m.getContainer().getBoundingClientRect();
    let rnd = seed; const next = () => { rnd = (rnd * 16807) %% 2147483647; return rnd / 2147483647; };
    for (const layer of order) {
      const cands = B.feats(m, layer).filter(l => l.feature.properties.code !== avoid &&
        (!within || l.feature.properties[within[0]] === undefined || l.feature.properties[within[0]] === within[1]));
      if (!cands.length) { continue; }
      for (let k = 0; k < 60 && cands.length; k++) {
        const l = cands.splice(Math.floor(next() * cands.length), 1)[0];
        const pb = l._path.getBoundingClientRect();
        const x0 = Math.max(pb.left, r.left + 40), x1 = Math.min(pb.right, r.right - 40);
        const y0 = Math.max(pb.top, r.top + 40), y1 = Math.min(pb.bottom, r.bottom - 40);
        if (x1 - x0 < 6 || y1 - y0 < 6) { continue; }
        for (let j = 0; j < 40; j++) {
          const x = x0 + next() * (x1 - x0), y = y0 + next() * (y1 - y0);
          // on top there, and inside its fill: a point on the outer half of its stroke only (the district's edge) is
          // no longer on it once the pointer is over it, and the click goes to the map
          const ctm = l._path.getScreenCTM();
          if (document.elementFromPoint(x, y) === l._path && ctm &&
              l._path.isPointInFill(new DOMPoint(x, y).matrixTransform(ctm.inverse()))) {
            const p = l.feature.properties;
            return {x: x, y: y, layer: layer, code: p.code, name: p.name, zone_code: p.zone_code || null,
                    zone_name: p.zone_name || null};
          }
        }
      }
    }
    return null; };
  B.highlighted = (layer, code) => { const m = B.map(); let hit = false;
    m.eachLayer(l => { if (!hit && l.feature && l.feature.properties.code === code && l._path &&
                            (l._path.getAttribute('stroke') || '').toLowerCase() === '#ffd400') { hit = true; } });
    const h = window.wx.map.hideoutOf(layer);  // the selection: wx.map.select's (since session 16), else the hideout's
    const sel = window.wx.map.selectedOf ? window.wx.map.selectedOf(layer) : (h ? h.selected : null);
    return hit && sel === code; };
  // what a highlight that did not come showed (a failed click records it): the unit's paths and their stroke, the
  // hideout the layer last received (its selected), the level of detail's state of the layer
  B.highlightParts = (layer, code) => { const m = B.map(); const strokes = [];
    m.eachLayer(l => { if (l.feature && l.feature.properties && l.feature.properties.code === code && l._path) {
      strokes.push(l._path.getAttribute('stroke')); } });
    const h = window.wx.map.hideoutOf(layer);
    return {paths: strokes.length, strokes: strokes.slice(0, 3), hideout_selected: h ? (h.selected || null) : 'none',
            selected: window.wx.map.selectedOf ? window.wx.map.selectedOf(layer) : null,
            zoom: m.getZoom(), detail: window.wx.map.viewState(layer)}; };
  B.titleHas = code => ((document.querySelector('#unit-title') || {}).innerText || '').includes(code);
  // arm before the click: resolves B.result = {ms (mousedown → panel + highlight), settled (→ fly ended, view drawn)}
  B.watchDrill = (layer, code, markers) => {
    B.result = null; B.t0 = null; const m = B.map(); const before = B.snapshot();
    let flew = false, moved = false;
    m.once('movestart', () => { moved = true; });
    const onEnd = () => { if (moved) { flew = true; m.off('moveend', onEnd); } }; m.on('moveend', onEnd);
    const start = performance.now();
    let title = null, lit = null, charts = null;  // when each part first held (ms after the mousedown)
    // the panel's charts: the ranking redrawn for the new unit (plotly replaces the plot's data on each figure)
    const plot = () => document.querySelector('#chart-ranking .js-plotly-plot');
    const chartsBefore = plot() ? plot().data : null;
    B.until(() => {
      if (B.t0 === null) { return false; }
      if (title === null && B.titleHas(code)) { title = performance.now() - B.t0; }
      if (lit === null && B.highlighted(layer, code)) { lit = performance.now() - B.t0; }
      if (charts === null && plot() && plot().data && plot().data !== chartsBefore) { charts = performance.now() - B.t0; }
      return title !== null && lit !== null; }, start, B.drillTimeout).then(v => {
      // the frame's end (until resolves after it); -1: not within 30 s (title / highlight say which part came)
      const ms = B.t0 === null || v < 0 ? -1 : performance.now() - B.t0;
      B.until(() => {
        if (charts === null && plot() && plot().data && plot().data !== chartsBefore) { charts = performance.now() - B.t0; }
        return flew && charts !== null && B.viewState(before, B.t0 - 1, markers).ok; }, start, B.drillTimeout).then(() => {
        B.result = {ms: ms, settled: performance.now() - B.t0, title: title, highlight: lit, charts: charts,
                    parts: lit === null ? B.highlightParts(layer, code) : null,
                    frames: ms < 0 ? [] : B.framesIn(B.t0, B.t0 + ms)};
      });
    });
  };
})();"""

# a multi-county map shows its incidents as counts per cell (.wx-cell) until zoomed in on few enough
PAINT_MULTI = """() => document.querySelectorAll('path.wx-layer-counties').length === %(counties)d &&
    document.querySelectorAll('path.wx-layer-cities').length === %(cities)d &&
    Array.from(document.querySelectorAll('path.wx-layer-counties')).every(p => p.getAttribute('fill')) &&
    Array.from(document.querySelectorAll('path.wx-layer-counties')).some(p => +p.getAttribute('fill-opacity') > 0.3) &&
    document.querySelectorAll('.marker-cluster, .wx-inc, .wx-cell').length > 0"""
PAINT_SINGLE = """() => document.querySelectorAll('path.wx-layer-grids').length === %(grids)d &&
    document.querySelectorAll('path.wx-layer-zones').length === %(zones)d &&
    (document.querySelectorAll('.marker-cluster').length + document.querySelectorAll('.wx-inc').length) > 0"""


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _loadavg_text() -> str:
    return Path("/proc/loadavg").read_text().strip()


def _commit() -> str:
    r = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()
    return r.stdout.strip() + ("+dirty" if dirty else "")


def count_set(gdir: Path) -> dict:
    out = {}
    for level in ("cities", "counties", "towns", "zones", "grids"):
        p = gdir / f"{level}.geojson"
        if p.exists():
            out[level] = p.read_text(encoding="utf-8").count('{"type":"Feature"')
    return out


WORKERS = [2]  # --workers


@contextmanager
def served_gunicorn(instance: Path, **settings):
    """The set served as in production (``python -m dashboard serve``: gunicorn, ``--workers`` workers, each warming
    its geodata's memos as it starts) on a free loopback port, in processes of their own (the in-process server shares
    the bench's interpreter with Playwright); yields its URL once every worker has warmed (its CPU quiet)."""
    import signal
    import socket

    with socket.socket() as sk:
        sk.bind(("127.0.0.1", 0))
        port = sk.getsockname()[1]
    env = {**os.environ, "DATABASE_URL": settings["database_url"], "GEODATA_DIR": str(settings["geodata_dir"]),
           "SECRET_KEY": settings["secret_key"], "API_TOKENS": ",".join(settings["api_tokens"]), "DEMO_USERS": "1",
           "DEMO_LIVE": "0", "TILE_URL": "", "INSTANCE_DIR": str(instance), "CACHE_URL": f"file://{instance / 'cache'}",
           **{f"RATE_LIMIT_{k.upper()}": v for k, v in settings.get("rate_limits", {}).items()}}
    log = open(instance / "serve.log", "ab")
    proc = subprocess.Popen([sys.executable, "-m", "dashboard", "serve", "--workers", str(WORKERS[0]), "--port",
                             str(port), "--host", "127.0.0.1"], cwd=ROOT, env=env, stdout=log, stderr=log,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the server did not start: " + (instance / "serve.log").read_text()[-3000:])
            try:
                if _get(url + "/healthz")[2] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.3)
        _wait_quiet(os.getpgid(proc.pid))
        yield url
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


def _wait_quiet(pgid: int, timeout: float = 180.0) -> None:
    """Until the processes of group ``pgid`` (the server's) used under 5 % of a core for two seconds running."""
    def cpu() -> float:
        total = 0
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(stat[2]) == pgid:  # the process group
                total += int(stat[11]) + int(stat[12])
        return total / os.sysconf("SC_CLK_TCK")

    deadline, quiet, last = time.monotonic() + timeout, 0, cpu()
    while time.monotonic() < deadline and quiet < 4:
        time.sleep(0.5)
        now = cpu()
        quiet = quiet + 1 if now - last < 0.025 else 0
        last = now


def _sa_url(db: str) -> str:
    return f"{PG.replace('postgresql://', 'postgresql+psycopg://', 1)}/{db}"


def store_size(db: str) -> dict:
    import psycopg

    with psycopg.connect(f"{PG}/{db}") as c:
        incidents = c.execute("select count(*) from incidents").fetchone()[0]
        open_ = c.execute("select count(*) from incidents where status <> 'closed'").fetchone()[0]
        size = c.execute("select pg_database_size(current_database())").fetchone()[0]
    return {"database": db, "incidents": incidents, "open_incidents": open_, "database_mb": round(size / 2 ** 20, 1)}


def generate(db: str, gdir: Path, scale: float, incidents: int | None) -> dict:
    """Create ``db`` (if missing) and fill it with the demo history of the set ``gdir`` (niced)."""
    import psycopg

    with psycopg.connect(f"{PG}/postgres", autocommit=True) as admin:
        if not admin.execute("select 1 from pg_database where datname=%s", (db,)).fetchone():
            admin.execute(f'create database "{db}"')
    cmd = ["nice", "-n", "10", sys.executable, "-m", "dashboard.demo", "history", "--db", _sa_url(db),
           "--geodata", str(gdir), "--scale", str(scale), "--quiet", "--if-missing"]
    if incidents:
        cmd += ["--incidents", str(incidents)]
    t0 = time.perf_counter()
    load0 = _load()
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"generation of {db} failed: {out.stderr[-2000:]}")
    last = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else "{}"
    return {"command": " ".join(cmd[3:]).replace(_sa_url(db), f"…/{db}"), "wall_s": round(time.perf_counter() - t0, 1),
            "load_before": load0, "load_after": _load(), "output": json.loads(last)}


# ------------------------------------------------------------------------------------------------ server
def _get(url: str, headers: dict | None = None) -> tuple[float, int, int]:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {TOKEN}", "Accept-Encoding": "br, gzip",
                                               **(headers or {})})
    t0 = time.perf_counter()
    with urllib.request.urlopen(req, timeout=600) as r:
        body = r.read()
        status = r.status
    return (time.perf_counter() - t0) * 1000, len(body), status


def server_figures(url: str, counts: dict, bbox_samples: int, rng: random.Random, centre: tuple) -> dict:
    out = {}
    multi = "counties" in counts
    if multi:
        first = _get(url + "/api/geo/counties.json")
        warm = [_get(url + "/api/geo/counties.json")[0] for _ in range(10)]
        out["counties_json"] = {"first_ms": round(first[0], 1), "bytes_sent": first[1], "warm": summary(warm)}
    # grids of a box the size of a 1600x1000 view at zoom 12 (~0.55° x 0.3°) at random places of the set
    lon0, lat0, lon1, lat1 = centre
    boxes = []
    for _ in range(bbox_samples):
        x = rng.uniform(lon0, lon1 - 0.55)
        y = rng.uniform(lat0, lat1 - 0.3)
        boxes.append(f"{x:.2f},{y:.2f},{x + 0.55:.2f},{y + 0.3:.2f}")
    if multi:
        t = [_get(url + f"/api/geo/grids.json?bbox={b}") for b in boxes]
        out["grids_json_bbox"] = {"box_deg": [0.55, 0.3], "first_ms": round(t[0][0], 1),
                                  "distinct_boxes_after_first": summary([x[0] for x in t[1:]]),
                                  "bytes_sent_median": statistics.median(x[1] for x in t),
                                  "cached_repeat": summary([_get(url + f"/api/geo/grids.json?bbox={b}")[0]
                                                            for b in boxes[:10]])}
    else:
        first = _get(url + "/api/geo/grids.json")
        out["grids_json_whole"] = {"first_ms": round(first[0], 1), "bytes_sent": first[1],
                                   "warm": summary([_get(url + "/api/geo/grids.json")[0] for _ in range(10)])}
    layers = ["counties", "towns", "grids"] if multi else ["zones", "grids"]
    measures = {}
    for layer in layers:
        for measure in ("open_incidents", "resolution_rate"):
            q = f"/api/map/measures.json?layer={layer}&measure={measure}&period=30d"
            first = _get(url + q)
            again = [_get(url + q)[0] for _ in range(5)]
            measures[f"{layer}:{measure}"] = {"first_ms": round(first[0], 1), "bytes_sent": first[1],
                                              "status": first[2], "repeat": summary(again)}
    out["measures_json_30d"] = measures
    return out


def substitute_set(out: Path) -> Path:
    """A stand-in for the province's set that is written in seconds (``build --province`` takes ~1 h of CPU): the 90
    real county outlines of ``geodata/source_counties_wgs84.geojson`` (made a clean partition as the build makes
    them, 吴兴区 with its own outline) as its counties, merged by city into its 11 cities and into the province; the
    towns, zones, grids and hazards are the committed Wuxing set's. What the province's first paint sends is the
    same (its outlines, the view's incident cells; towns, zones and grids only zoomed in), not its pan, zoom or
    drill (one county's detail). Written once into ``out``."""
    import shutil

    from dashboard.geodata.geojson import GRID_SIZE, feature_collection_text
    from dashboard.geodata.multi import PROVINCE, _polys, city_code, partition_outlines

    if (out / "counties.geojson").exists():
        return out
    out.mkdir(parents=True, exist_ok=True)
    src = ROOT / "geodata"
    counties = partition_outlines(src)
    by_city: dict = {}
    for c, g in counties:
        by_city.setdefault((city_code(c.code), c.city), []).append(g)
    texts = {
        "counties": feature_collection_text([({"code": c.code, "name": c.name, "name_en": None,
                                               "city_code": city_code(c.code), "province_code": PROVINCE[0]}, g)
                                             for c, g in counties]),
        "cities": feature_collection_text([({"code": code, "name": name, "name_en": None,
                                             "province_code": PROVINCE[0]},
                                            _polys(shapely_union(gs, GRID_SIZE))) for (code, name), gs in
                                           sorted(by_city.items())]),
        "district": feature_collection_text([({"code": PROVINCE[0], "name": PROVINCE[1], "name_en": None,
                                               "level": "province"},
                                              _polys(shapely_union([g for _, g in counties], GRID_SIZE)))]),
    }
    for name, text in texts.items():
        (out / f"{name}.geojson").write_text(text, encoding="utf-8")
    for name in ("towns", "zones", "grids", "hazards"):
        shutil.copy(src / f"{name}.geojson", out / f"{name}.geojson")
    return out


def shapely_union(geoms, grid_size):
    import shapely

    return shapely.union_all(geoms, grid_size=grid_size)


# ------------------------------------------------------------------------------------------------ browser
def _context(browser, helpers: str, condition: str | None):
    ctx = browser.new_context(viewport={"width": 1600, "height": 1000})
    page = ctx.new_page()
    if condition:
        page.add_init_script(painted_script(condition))
    page.add_init_script(helpers)
    return ctx, page


def _is_js(u: str) -> bool:
    return u.split("?")[0].endswith(".js")


def paint_once(browser, url: str, path: str, helpers: str, condition: str, trace: Path | None = None,
               timeout_ms: int = 120_000) -> dict:
    ctx, page = _context(browser, helpers, condition)
    try:
        sign_in(page, url)
        cdp = ctx.new_cdp_session(page)
        cdp.send("Performance.enable")
        if trace:
            cdp.send("Profiler.enable")
            cdp.send("Profiler.setSamplingInterval", {"interval": 250})
            cdp.send("Profiler.start")
            browser.start_tracing(page=page, path=str(trace), screenshots=False,
                                  categories=["devtools.timeline", "disabled-by-default-devtools.timeline",
                                              "v8.execute", "blink.user_timing", "loading", "toplevel"])
        page.goto(url + path, timeout=timeout_ms)
        page.wait_for_function("() => window.__wxPainted !== null", timeout=timeout_ms, polling=50)
        if trace:
            page.evaluate("() => performance.mark('wx-painted-read')")
            browser.stop_tracing()
            profile = cdp.send("Profiler.stop")["profile"]
            trace.with_suffix(".cpuprofile").write_text(json.dumps(profile), encoding="utf-8")
        metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
        ms = page.evaluate("window.__wxPainted")
        res = page.evaluate(RESOURCES, ms)
    finally:
        ctx.close()
    js = [r for r in res if _is_js(r["url"])]
    rest = [r for r in res if not _is_js(r["url"])]
    biggest = sorted(rest, key=lambda r: -r["transfer"])[:6]
    return {"ms": ms, "requests": len(res), "transferred": sum(r["transfer"] for r in res),
            "js_requests": len(js), "js_transferred": sum(r["transfer"] for r in js),
            "rest_requests": len(rest), "rest_transferred": sum(r["transfer"] for r in rest),
            "rest_biggest": [{"url": r["url"].split("127.0.0.1")[-1].split(":", 1)[-1][:120],
                              "transferred": r["transfer"], "decoded": r["decoded"],
                              "end_ms": round(r["end"], 1)} for r in biggest],
            "bundles": sorted(n for n in (bundle_name(r["url"]) for r in js) if n),
            "main_thread_cpu_ms": metrics.get("ThreadTime", 0) * 1000,
            "renderer_cpu_ms": metrics.get("ProcessTime", 0) * 1000}


def paint_figures(samples: list[dict]) -> dict:
    med = lambda k: statistics.median(s[k] for s in samples)  # noqa: E731
    return {**summary([s["ms"] for s in samples]),
            "main_thread_cpu_ms_median": round(med("main_thread_cpu_ms"), 1),
            "renderer_cpu_ms_median": round(med("renderer_cpu_ms"), 1),
            "requests_before_paint": med("requests"), "bytes_transferred_before_paint": med("transferred"),
            "js_requests_before_paint": med("js_requests"), "js_bytes_transferred_before_paint": med("js_transferred"),
            "non_js_requests_before_paint": med("rest_requests"),
            "non_js_bytes_transferred_before_paint": med("rest_transferred"),
            "non_js_biggest_last_run": samples[-1]["rest_biggest"], "js_bundles_last_run": samples[-1]["bundles"]}


def trace_summary(path: Path, top: int = 14) -> dict:
    """Where the renderer's main thread spent its time before the paint mark: self time by event name, the
    scripts evaluated and the functions called (inclusive, by script url), and how busy the thread was."""
    data = json.loads(path.read_text(encoding="utf-8"))
    events = data["traceEvents"] if isinstance(data, dict) else data
    mains = {(e["pid"], e["tid"]) for e in events if e.get("ph") == "M" and e.get("name") == "thread_name"
             and e.get("args", {}).get("name") == "CrRendererMain"}
    by_thread: dict = {}
    for e in events:
        if (e.get("pid"), e.get("tid")) in mains and e.get("ph") == "X" and "dur" in e:
            by_thread.setdefault((e["pid"], e["tid"]), []).append(e)
    if not by_thread:
        return {"error": "no renderer main thread in the trace"}
    main = max(by_thread.values(), key=lambda v: sum(e["dur"] for e in v))
    pid = main[0]["pid"]
    marks = {e["name"]: e["ts"] for e in events if e.get("pid") == pid and e.get("name") in
             ("navigationStart", "wx-painted-read")}
    start = marks.get("navigationStart", min(e["ts"] for e in main))
    end = marks.get("wx-painted-read", max(e["ts"] + e["dur"] for e in main))
    main = sorted((e for e in main if e["ts"] >= start and e["ts"] < end), key=lambda e: (e["ts"], -e["dur"]))
    selfs: dict = {}
    scripts: dict = {}
    stack: list = []
    busy = 0.0
    for e in main:
        while stack and stack[-1]["ts"] + stack[-1]["dur"] <= e["ts"]:
            stack.pop()
        if stack:
            stack[-1]["_child"] = stack[-1].get("_child", 0) + e["dur"]
        else:
            busy += e["dur"]
        stack.append(e)
        if e["name"] in ("EvaluateScript", "FunctionCall", "v8.compile", "TimerFire", "EventDispatch",
                         "FireAnimationFrame", "RunMicrotasks"):
            d = e.get("args", {}).get("data", {}) or {}
            u = (d.get("url") or d.get("type") or "").split("?")[0]
            u = u.split("/_dash-component-suites/")[-1].split("/assets/")[-1][-70:]
            key = f"{e['name']} {u}".strip()
            if not any(s is not e and s["name"] == e["name"] for s in stack):  # outermost of its kind only
                scripts[key] = scripts.get(key, 0) + e["dur"]
    for e in main:
        selfs[e["name"]] = selfs.get(e["name"], 0) + e["dur"] - e.get("_child", 0)
    ms = lambda us: round(us / 1000, 1)  # noqa: E731
    return {"window_ms": ms(end - start), "main_thread_busy_ms": ms(busy), "_end_us": end,
            "self_ms_by_event": {k: ms(v) for k, v in sorted(selfs.items(), key=lambda kv: -kv[1])[:top]},
            "scripts_and_calls_inclusive_ms": {k: ms(v) for k, v in
                                               sorted(scripts.items(), key=lambda kv: -kv[1])[:top]}}


def profile_summary(path, top: int = 12, until_us: float | None = None) -> dict:
    """A CPU profile of the page (its main thread's JS, sampled every 250 µs): self time by script and by
    function, and the idle / program / GC shares."""
    prof = path if isinstance(path, dict) else json.loads(Path(path).read_text(encoding="utf-8"))
    nodes = {n["id"]: n for n in prof["nodes"]}
    self_us: dict = {}
    at = prof["startTime"]
    for nid, dt_us in zip(prof["samples"], prof["timeDeltas"]):
        at += dt_us
        if until_us is not None and at > until_us:  # after the paint (the trace's mark, same clock)
            break
        self_us[nid] = self_us.get(nid, 0) + max(dt_us, 0)
    by_url: dict = {}
    by_fn: dict = {}
    for nid, us in self_us.items():
        cf = nodes[nid]["callFrame"]
        url = cf.get("url", "").split("?")[0]
        url = url.split("/_dash-component-suites/")[-1].split("/assets/")[-1] or f"({cf.get('functionName') or 'native'})"
        by_url[url] = by_url.get(url, 0) + us
        fn = f"{cf.get('functionName') or '(anonymous)'} {url.rsplit('/', 1)[-1]}:{cf.get('lineNumber', 0) + 1}"
        by_fn[fn] = by_fn.get(fn, 0) + us
    ms = lambda us: round(us / 1000, 1)  # noqa: E731
    total = sum(self_us.values())
    return {"sampled_ms": ms(total),
            "self_ms_by_script": {k: ms(v) for k, v in sorted(by_url.items(), key=lambda kv: -kv[1])[:top]},
            "self_ms_by_function": {k: ms(v) for k, v in sorted(by_fn.items(), key=lambda kv: -kv[1])[:top]},
            "timeline": profile_timeline(prof, nodes)}


def _script_of(cf: dict) -> str:
    url = cf.get("url", "").split("?")[0]
    url = url.split("/_dash-component-suites/")[-1].split("/assets/")[-1]
    return url.rsplit("/", 1)[-1].split(".v")[0] if url else f"({cf.get('functionName') or 'native'})"


def profile_timeline(prof: dict, nodes: dict, bucket_ms: float = 25.0, until_ms: float = 1500.0,
                     top: int = 3) -> list:
    """What the main thread ran when: per ``bucket_ms`` from the profile's start (the click follows it at once),
    the busy ms and the scripts that took most of it (idle left out) — where a click's time went between the
    answers' arrival and the panel's update."""
    buckets: dict = {}
    at = 0.0
    for nid, dt_us in zip(prof["samples"], prof["timeDeltas"]):
        at += dt_us / 1000
        if at > until_ms:
            break
        name = _script_of(nodes[nid]["callFrame"])
        if name == "((idle))":
            continue
        b = buckets.setdefault(int(at // bucket_ms), {})
        b[name] = b.get(name, 0) + max(dt_us, 0) / 1000
    out = []
    for i in sorted(buckets):
        b = buckets[i]
        out.append([int(i * bucket_ms), round(sum(b.values()), 1),
                    {k: round(v, 1) for k, v in sorted(b.items(), key=lambda kv: -kv[1])[:top]}])
    return out


def open_page(browser, url: str, helpers: str, condition: str, path: str = "/"):
    ctx, page = _context(browser, helpers, condition)
    sign_in(page, url)
    page.goto(url + path)
    page.wait_for_function("() => window.__wxPainted !== null", timeout=120_000, polling=50)
    page.wait_for_function("() => window.__wxb.map()", timeout=60_000)
    return ctx, page


def move_plan(points: list, n: int, multi: bool, rng: random.Random) -> list:
    """``n`` moves: jumps to open incidents at zooms of the level-of-detail ladder, each followed by a pan and a
    zoom by one (a single county: zooms about its own scale)."""
    ladder = [8.5, 10.0, 11.0, 12.5, 13.5] if multi else [12.0, 13.0, 14.0, 15.0, 16.0]
    out = []
    k = 0
    while len(out) < n:
        lon, lat = points[rng.randrange(len(points))]
        out.append(("jump", {"lat": lat, "lon": lon, "zoom": ladder[k % len(ladder)]}))
        out.append(("pan", {"dx": rng.choice([-1, 1]) * 350, "dy": rng.choice([-1, 1]) * 220}))
        out.append(("zoom", {"dz": rng.choice([-1, 1])}))
        k += 1
    return out[:n]


def pan_zoom(browser, url: str, helpers: str, condition: str, points: list, n: int, multi: bool,
             rng: random.Random) -> dict:
    ctx, page = open_page(browser, url, helpers, condition)
    # the moves start on a page that has settled (its charts drawn, no request in flight for 0.5 s): a move made
    # while the page's first answers still come and its charts are drawn measures the page's load, not the move
    t = time.monotonic()
    page.wait_for_function("() => window.__wxb.settled(500)", timeout=120_000, polling=50)
    settled_s = round(time.monotonic() - t, 2)
    samples, failed = [], []
    page.evaluate("p => { window.__wxb.points = p; }", points)
    points = points[:4000]
    try:
        for kind, arg in move_plan(points, n, multi, rng):
            r = page.evaluate("([k, a]) => window.__wxb.move(k, a, true)", [kind, arg])
            r["kind"] = kind
            (samples if r["ms"] >= 0 else failed).append(r)
    finally:
        ctx.close()
    out = {"moves": n, "settled_after_paint_s": settled_s, "all": summary([s["ms"] for s in samples]) if samples else None,
           "failed": len(failed), "failed_examples": failed[:3]}
    for kind in ("jump", "pan", "zoom"):
        xs = [s["ms"] for s in samples if s["kind"] == kind]
        if xs:
            out[kind] = summary(xs)
    bands = {}
    for s in samples:
        z = s["zoom"]
        band = "grids" if s["layers"].get("grids") else "zones" if s["layers"].get("zones") else \
            "towns" if s["layers"].get("towns") else "none"
        bands.setdefault(band, []).append(s["ms"])
    out["by_detail_drawn"] = {k: summary(v) for k, v in bands.items()}
    out["samples"] = [{"kind": s["kind"], "ms": round(s["ms"], 1), "zoom": round(s["zoom"], 2),
                       "layers": s["layers"], "markers": s["markers"], "fetched": s.get("fetched"),
                       "resent": s.get("resent"), "frames": s.get("frames"),
                       "polys_ms": s.get("polys_ms"), "markers_ms": s.get("markers_ms")} for s in samples]
    return out


B_TIMEOUT = [30_000]  # the drill's wait (ms), --drill-timeout
RANK = {"root": 0, "city": 1, "county": 2, "town": 3, "zone": 4, "grid": 5}


def click_order(state: dict, multi: bool) -> tuple[list, list | None]:
    """The layers a click may aim at from ``state`` (finer than its level, coarse to fine: a coarser one is
    clicked where no finer polygon lies on it) and which units (a parent property and code) they must be of."""
    if state["level"] == "grid":
        return ["grids"], ["zone_code", state["zone"]]
    if state["level"] == "root" and multi:
        return ["counties"], None
    order = [LEVEL_LAYER[lv] for lv in ("town", "zone", "grid") if RANK[lv] > RANK[state["level"]]]
    within = {"town": ["town_code", state["code"]], "zone": ["zone_code", state["code"]]}.get(state["level"])
    return order, within


def _expected(target: dict, state: dict) -> tuple[str, str]:
    """(level, code) a click on ``target`` drills into (``services.drill.drill_target``)."""
    layer = target["layer"]
    level = {v: k for k, v in LEVEL_LAYER.items()}[layer]
    if layer != "grids":
        return level, target["code"]
    current_zone = state["code"] if state["level"] == "zone" else state.get("zone") if state["level"] == "grid" else None
    return ("grid", target["code"]) if current_zone == target["zone_code"] else ("zone", target["zone_code"])


def drills(browser, url: str, helpers: str, condition: str, chains: int, depth: int, multi: bool,
           rng: random.Random) -> dict:
    samples, settled, failed = [], [], []
    profiles, profiled_samples = {}, []
    # one chain more than asked, its clicks under the CPU profiler: sampling every 250 µs slows the page, so its
    # clicks are reported beside the others (``profiled_clicks``), not in the figures
    for c in range(chains + 1):
        ctx, page = open_page(browser, url, helpers, condition)
        calls: list = []  # the Dash callbacks a click set off: outputs, wall time and the server's part

        def on_done(req, calls=calls):
            if "_dash-update-component" not in req.url:
                return
            try:
                body = json.loads(req.post_data or "{}")
                out = body.get("output", "")
                t = req.timing
                calls.append({"output": out[:80], "start_wall": t["startTime"] / 1000,
                              "ms": round(t["responseEnd"], 1),
                              "server_ms": round(t["responseStart"] - t["requestStart"], 1)})
            except Exception:  # a request without timing: left out
                pass

        page.on("requestfinished", on_done)
        cdp = ctx.new_cdp_session(page)
        try:
            # the incident clusters would take the click (a cluster zooms in): their layer off, as a user would
            page.locator(".leaflet-control-layers-overlays label", has_text="案事件").locator("input").uncheck()
            page.wait_for_function("() => !document.querySelector('.marker-cluster, .wx-inc')", timeout=30_000)
            towns = page.locator(".leaflet-control-layers-overlays label", has_text="镇街").locator("input")
            if multi and towns.count() == 1 and not towns.is_checked():
                towns.check()  # the towns start hidden: a user drilling through them shows them first
            state = {"level": "root", "code": None}
            for step in range(depth):
                order, within = click_order(state, multi)
                target = page.evaluate("([o, a, s, w]) => window.__wxb.target(o, a, s, w)",
                                       [order, state["code"], rng.randrange(1, 2 ** 31 - 1), within])
                if target is None:
                    failed.append({"chain": c, "step": step, "level": state["level"], "order": order,
                                   "why": "no clickable polygon of these layers in view"})
                    break
                level, code = _expected(target, state)
                page.evaluate("([l, c]) => window.__wxb.watchDrill(l, c, false)", [LEVEL_LAYER[level], code])
                profiled = c == chains  # the last chain's clicks under the CPU profiler
                if profiled:
                    cdp.send("Profiler.enable")
                    cdp.send("Profiler.setSamplingInterval", {"interval": 250})
                    cdp.send("Profiler.start")
                del calls[:]
                clicked = time.time()
                page.mouse.click(target["x"], target["y"])
                page.wait_for_function("() => window.__wxb.result !== null", timeout=3 * B_TIMEOUT[0] + 30_000,
                                       polling=50)
                r = page.evaluate("window.__wxb.result")
                if profiled:
                    profiles[f"{state['level']}→{level}"] = {"ms": round(r["ms"], 1), "title": r["title"],
                                                            "highlight": r["highlight"],
                                                            **profile_summary(cdp.send("Profiler.stop")["profile"])}
                key = f"{state['level']}→{level}"
                if r["ms"] < 0:
                    failed.append({"chain": c, "step": step, "key": key, "code": code, "title_ms": r["title"],
                                   "highlight_ms": r["highlight"], "highlight_parts": r.get("parts"),
                                   "target": target, "url_after": page.url,
                                   "title_after": page.evaluate("(document.querySelector('#unit-title') || {}).innerText")})
                    break
                kept = profiled_samples if profiled else samples
                kept.append({"key": key, "ms": r["ms"], "settled": r["settled"], "title": r["title"],
                             "highlight": r["highlight"], "charts": r.get("charts"), "code": code,
                             "long_frames": r.get("frames") or [],
                             "callbacks": [{**{k: v for k, v in x.items() if k != "start_wall"},
                                            "start_ms": round((x["start_wall"] - clicked) * 1000, 1)}
                                           for x in list(calls)]})
                state = {"level": level, "code": code,
                         "zone": target["zone_code"] if level == "grid" else None}
        except Exception as exc:  # a step that never came: recorded, the next chain goes on
            failed.append({"chain": c, "error": str(exc)[:300]})
        finally:
            ctx.close()
    with_charts = [max(s["ms"], s["charts"]) for s in samples if s.get("charts") is not None]
    out = {"clicks": len(samples), "all": summary([s["ms"] for s in samples]) if samples else None,
           # the same clicks until the panel's charts were redrawn too (the text comes first: callbacks.drill)
           "with_charts": summary(with_charts) if with_charts else None,
           "settled_all": summary([s["settled"] for s in samples]) if samples else None,
           "failed": failed}
    keys = sorted({s["key"] for s in samples}, key=lambda k: [s["key"] for s in samples].index(k))
    out["by_step"] = {k: {**summary([s["ms"] for s in samples if s["key"] == k]),
                          **{f"{part}_median_ms": _median([s[part] for s in samples if s["key"] == k])
                             for part in ("title", "highlight", "charts", "settled")}} for k in keys}
    out["samples"] = [{k: (round(v, 1) if isinstance(v, float) else v) for k, v in s.items()} for s in samples]
    out["cpu_profiles"] = profiles
    out["profiled_clicks"] = [{"key": s["key"], "ms": round(s["ms"], 1), "title": s["title"], "highlight": s["highlight"]}
                              for s in profiled_samples]
    return out


def _median(xs: list) -> float | None:
    xs = [x for x in xs if x is not None]
    return round(statistics.median(xs), 1) if xs else None


def county_page(browser, url: str, helpers: str, runs: int, code: str, path: str | None = None,
                text: str | None = None, drawn: str | None = None) -> dict:
    """One county's page of a multi-county set (``/?level=county&code=``) painted: its title in the panel and the
    map's view drawn. ``path``, ``text`` and ``drawn``: another page by the same condition (a one-county set's own
    page, ``/``, whose title is the county's name and whose map is drawn when its paint condition holds: the Wuxing
    page the county page is compared with)."""
    # (no highlight asked: a county page opened by its URL has no unit stroked — hideout.selected is set by the
    # drill callback only, on a change of the view)
    view = "(%s)()" % drawn if drawn else "!window.__wxb.moving && window.__wxb.viewState(null, 0, true).ok"
    cond = ("() => window.__wxb && window.__wxb.map() && window.__wxb.titleHas(%s) && %s"
            % (json.dumps(text or code), view))
    samples = [paint_once(browser, url, path or f"/?level=county&code={code}", helpers, cond,
                          timeout_ms=max(120_000, 3 * B_TIMEOUT[0])) for _ in range(runs + 1)]
    return {"code": code, "path": path or f"/?level=county&code={code}", **paint_figures(samples[1:])}


def incident_points(url: str, limit: int = 10 ** 6) -> list:
    req = urllib.request.Request(url + "/api/map/incidents.json", headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(req, timeout=600) as r:
        fc = json.loads(r.read())
    pts = [tuple(f["geometry"]["coordinates"][:2]) for f in fc.get("features", []) if f.get("geometry")]
    random.Random(7).shuffle(pts)
    return pts[:limit]


def _safe(run):
    """A section's figures, or what went wrong (the other sections and the file still get written)."""
    try:
        return run()
    except Exception as exc:  # noqa: BLE001 — a bench section that failed is a figure too
        import traceback

        traceback.print_exc()
        return {"error": f"{type(exc).__name__}: {str(exc)[:400]}"}


def bench_set(browser, name: str, gdir: Path, db: str, args, rng: random.Random) -> dict:
    from dashboard.i18n import t
    from dashboard.ui.layers import DETAIL

    counts = count_set(gdir)
    multi = "counties" in counts
    fig = {"set": name, "geodata_dir": str(gdir), "units": counts, "commit": _commit(),
           "loadavg_at_start": _loadavg_text(), "store": store_size(db)}
    print(f"[{name}] {json.dumps(fig, ensure_ascii=False)}", flush=True)
    helpers = HELPERS % {"drill_timeout": args.drill_timeout * 1000,
                         "detail": json.dumps({k: v["zoom"] for k, v in DETAIL.items()}),
                         "labels": json.dumps({k: t(f"layer_{k}", "zh") for k in DETAIL}, ensure_ascii=False)}
    # a city's set draws no city layer (the root is the city): the cities only where there are several
    cities = counts.get("cities", 0) if counts.get("cities", 0) > 1 else 0
    condition = (PAINT_MULTI % {"counties": counts["counties"], "cities": cities}) if multi else \
        PAINT_SINGLE % {"grids": counts["grids"], "zones": counts["zones"]}
    settings = {"geodata_dir": gdir, "database_url": _sa_url(db), "secret_key": SECRET, "api_tokens": (TOKEN,),
                "rate_limits": {"login_name": "6000/minute", "login_address": "6000/minute"}}
    serve = served if args.server == "inprocess" else served_gunicorn
    fig["server"] = ("in the bench's process (werkzeug, threads; bench.common.served)" if args.server == "inprocess"
                     else f"python -m dashboard serve: gunicorn, {args.workers} workers × 4 threads (+ stream slots)")
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp, serve(Path(tmp), **settings) as url:
        t0 = time.perf_counter()
        _, _, status = _get(url + "/api/geo/district.json")
        fig["server_first_request_ms"] = {"ms": round((time.perf_counter() - t0) * 1000, 1), "status": status,
                                          "what": "/api/geo/district.json, the first request: the geodata loaded"}
        only = set(args.only.split(",")) if args.only else {"server", "paint", "pan", "drill", "county"}
        if args.only:
            fig["sections_of_this_run"] = sorted(only)
        if "server" in only:
            import geopandas as gpd

            root = gpd.read_file(gdir / "district.geojson").total_bounds
            fig["server"] = server_figures(url, counts, args.bbox_samples, rng, tuple(root))
            print(f"[{name}] server {json.dumps(fig['server'], ensure_ascii=False)[:600]}", flush=True)
        if "paint" in only:
            # first paints: one with the server's caches cold (kept apart), then --runs fresh contexts
            cold = paint_once(browser, url, "/", helpers, condition, timeout_ms=900_000)
            fig["first_paint_server_cold"] = {"ms": round(cold["ms"], 1), "transferred": cold["transferred"]}
            samples = [paint_once(browser, url, "/", helpers, condition) for _ in range(args.runs)]
            fig["first_paint"] = {"runs": args.runs, **paint_figures(samples)}
            print(f"[{name}] first paint {json.dumps(fig['first_paint'], ensure_ascii=False)[:400]}", flush=True)
            trace = Path(tmp) / "trace.json"
            traced = paint_once(browser, url, "/", helpers, condition, trace=trace)

            def traced_figures():
                ts = trace_summary(trace)
                end_us = ts.pop("_end_us", None)
                return {"ms": round(traced["ms"], 1), **ts,
                        "cpu_profile_to_the_paint": profile_summary(trace.with_suffix(".cpuprofile"),
                                                                    until_us=end_us)}

            fig["first_paint_traced"] = _safe(traced_figures)
        if "pan" in only:
            points = incident_points(url)
            fig["open_incidents_on_map"] = len(points)
            fig["pan_zoom"] = _safe(lambda: pan_zoom(browser, url, helpers, condition, points, args.moves, multi,
                                                     rng))
            print(f"[{name}] pan/zoom {json.dumps(fig['pan_zoom'], ensure_ascii=False)[:600]}", flush=True)
        if "drill" in only:
            fig["drill"] = _safe(lambda: drills(browser, url, helpers, condition, args.chains, 5 if multi else 3,
                                                multi, rng))
            fig["drill"]["timeout_s"] = args.drill_timeout
            print(f"[{name}] drill {json.dumps(fig['drill'], ensure_ascii=False)[:600]}", flush=True)
        if multi and args.county_runs and "county" in only:
            codes = [f["properties"]["code"] for f in json.loads((gdir / "counties.geojson").read_text(
                encoding="utf-8"))["features"]]
            code = args.county or ("330502" if "330502" in codes else codes[0])  # 吴兴区: beside the Wuxing page
            fig["county_page"] = _safe(lambda: county_page(browser, url, helpers, args.county_runs, code))
        elif args.county_runs and "county" in only:  # one county's own page by the county page's condition
            root = json.loads((gdir / "district.geojson").read_text(encoding="utf-8"))["features"][0]["properties"]
            fig["county_page"] = _safe(lambda: county_page(browser, url, helpers, args.county_runs, root["code"],
                                                           path="/", text=root["name"], drawn=condition))
    fig["loadavg_at_end"] = _loadavg_text()
    return fig


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--set", action="append", default=[], metavar="NAME:GEODATA_DIR:DATABASE")
    ap.add_argument("--sets", default=None, help="only these names of the sets (comma separated)")
    ap.add_argument("--runs", type=int, default=7, help="first paints per set (after one unmeasured)")
    ap.add_argument("--moves", type=int, default=30, help="pan / zoom moves per set (≥ 10)")
    ap.add_argument("--chains", type=int, default=4, help="drill chains (root → … → grid) per set")
    ap.add_argument("--county-runs", type=int, default=5, help="first paints of one county's page (multi sets)")
    ap.add_argument("--county", default=None, help="the county of the county page (default: the first)")
    ap.add_argument("--bbox-samples", type=int, default=20)
    ap.add_argument("--generate", action="store_true", help="create and fill the stores that are missing or empty")
    ap.add_argument("--scale", type=float, default=0.028, help="with --generate: the demo's scale (density)")
    ap.add_argument("--incidents", default=None, help="with --generate: total incidents (NAME=N,… or N for all)")
    ap.add_argument("--generate-only", action="store_true", help="with --generate: no bench afterwards")
    ap.add_argument("--drill-timeout", type=int, default=30, help="seconds a drill click may take")
    ap.add_argument("--only", default=None, help="only these sections (server,paint,pan,drill,county), merged into "
                                                 "the set's figures already in the results")
    ap.add_argument("--out", default="province", help="results name (bench/results/<out>.json)")
    ap.add_argument("--tag", default="", help="a word for this run in the results (e.g. the machine's state)")
    ap.add_argument("--server", choices=["inprocess", "gunicorn"], default="inprocess",
                    help="serve each set in the bench's process (werkzeug, as before) or as in production "
                         "(python -m dashboard serve: gunicorn)")
    ap.add_argument("--workers", type=int, default=2, help="with --server gunicorn: its workers")
    ap.add_argument("--substitute", default=None, metavar="DIR",
                    help="write the province's stand-in set into DIR first (substitute_set: the 90 real county "
                         "outlines with Wuxing's towns, zones and grids) — name it in --set")
    args = ap.parse_args(argv)
    WORKERS[0] = args.workers
    if args.substitute:
        substitute_set(Path(args.substitute))
    sets = [s.split(":", 2) for s in (args.set or DEFAULT_SETS)]
    if args.sets:
        wanted = args.sets.split(",")
        sets = [s for s in sets if s[0] in wanted]
    path = RESULTS / f"{args.out}.json"
    old = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    results = dict(old.get("sets", {}))
    generated = dict(old.get("generated", {}))
    rng = random.Random(20261202)
    B_TIMEOUT[0] = args.drill_timeout * 1000
    if args.generate:
        per = {}
        if args.incidents:
            for part in args.incidents.split(","):
                k, _, v = part.rpartition("=")
                per[k or "*"] = int(float(v[:-1]) * 1e6) if v.lower().endswith("m") else int(v)
        for name, gdir, db in sets:
            n = per.get(name, per.get("*"))
            print(f"generating {db} ({name}, scale {args.scale}, incidents {n}) …", flush=True)
            generated[name] = generate(db, ROOT / gdir, args.scale, n)
            print(json.dumps(generated[name], ensure_ascii=False), flush=True)
    missing = []
    for name, gdir, db in sets:  # what the bench needs first (see the docstring): built sets and filled stores
        if not (ROOT / gdir / "grids.geojson").exists():
            missing.append(f"{name}: no geodata set in {gdir} (python -m dashboard.geodata build … --out {gdir})")
        elif not args.generate:
            try:
                store_size(db)
            except Exception as exc:  # noqa: BLE001 — no database, or no table
                missing.append(f"{name}: no store {db} ({type(exc).__name__}; --generate fills it)")
    if missing:
        print("bench_province: not ready —\n  " + "\n  ".join(missing), file=sys.stderr)
        return 2
    if args.generate_only:
        write_results(args.out, {**{k: v for k, v in old.items() if k != "measured_at"}, "generated": generated})
        return 0
    with chromium() as browser:
        for name, gdir, db in sets:
            results[name] = fig = bench_set(browser, name, ROOT / gdir, db, args, rng)
            fig["chromium"] = browser.version
            if args.tag:
                fig["tag"] = args.tag
            results[name]["generated"] = generated.get(name)
    # merged at the end: another run (a store's generation) may have written the file meanwhile
    old = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    merged = {}
    for name, _, _ in sets:  # a run of some sections (--only) keeps the set's other sections
        prev = old.get("sets", {}).get(name, {}) if args.only else {}
        merged[name] = {**prev, **results[name]}
        if args.only:
            merged[name]["loadavg_of_this_run"] = [results[name]["loadavg_at_start"], results[name]["loadavg_at_end"]]
            for k in ("loadavg_at_start", "loadavg_at_end"):
                if k in prev:
                    merged[name][k] = prev[k]
    results = {**old.get("sets", {}), **merged}
    generated = {**old.get("generated", {}), **generated}
    write_results(args.out, {"machine": machine(), "sets": results, "generated": generated,
                               "curve": [{"set": n, "counties": r["units"].get("counties", 1),
                                          "grids": r["units"].get("grids"),
                                          "incidents": r["store"]["incidents"],
                                          "first_paint_median_ms": r["first_paint"]["median_ms"],
                                          "non_js_kb_before_paint": round(
                                              r["first_paint"]["non_js_bytes_transferred_before_paint"] / 1024, 1),
                                          "pan_zoom_p95_ms": ((r.get("pan_zoom") or {}).get("all") or {}).get("p95_ms"),
                                          "drill_p95_ms": ((r.get("drill") or {}).get("all") or {}).get("p95_ms"),
                                          "load": [r["loadavg_at_start"], r["loadavg_at_end"]]}
                                         for n, r in results.items() if "first_paint" in r]})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
