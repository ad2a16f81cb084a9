/* Live by push (wx.live): one Server-Sent Events stream per page, /api/map/stream, instead of polling.
 *
 * The page's incident layer is loaded here, not by dash-leaflet: its `url` prop only describes what the layer
 * shows (the filter; the layout gives the layer an empty `data`, so dash-leaflet never fetches). wx.live fetches
 * that url once, keeps the features by id and, on each `change` event (only the incidents that changed since the
 * last one and match the filter, the ids that left it), upserts/removes them and hands the layer its new data.
 *
 * The page's other live parts come in the same event: the page names them in `live-push` ({part: params}, kept
 * current by the page's own clientside callback as its view changes; dashboard/callbacks/pushed.py renders each
 * once per change for every page that shows the same) and the `parts` event that follows each change event (its
 * `set`: [[id, props], ...]; KPI figures at most every few seconds while changes come) is applied with
 * dash_clientside.set_props: the duty list's changed rows, the alert banner and list, the zone colours of a
 * measure counted now, the overview's KPI cards, the wall's ticker, alerts and figures. No page sends a request
 * because something changed. The overview's charts follow `charts-seq`, moved at most once a minute while
 * changes come.
 *
 * A multi-county map (a city's or the province's: `live-conf`'s `view`, ui.layers.incident_view) never holds every
 * open incident: wx.live asks for what its view shows (view mode). Below `markersZoom`, or when the view holds more
 * than MAP_VIEW_MARKERS incidents, the server's counts per square cell of the view
 * (/api/map/incident_cells.json?bbox=&zoom=, drawn by wx.map.incidentCell in the layer `geo-incident_cells`); zoomed
 * in on few enough, the markers of the view (asked with `points=1`: they come in the same answer) in the clustered
 * layer as on one county's map. After the map moves, and after each pushed change (at most once a second), it asks
 * again; a change also updates the markers shown at once.
 *
 * A stream that breaks (server restart, network) is reopened with `after=<seq>&aseq=<aseq>` (or the browser's
 * Last-Event-ID): the server sends what happened meanwhile, once; features are keyed by id, so nothing shows
 * twice. `wx.live.state()` tells the wall whether the server is reachable (no /healthz probing).
 */
(function () {
  "use strict";
  var APPLY_MS = 150;  // coalesce bursts: dash-leaflet drops a data change sent while it is still drawing one
  var BACKOFF_MAX_MS = 15000;
  var CHARTS_MS = 60000;  // the overview's charts follow changes at most this often
  var S = {
    base: null, url: null, rings: null, seq: null, aseq: null, es: null, features: null, loading: null,
    queued: [], timer: null, lastApply: 0, backoff: 1000, retryTimer: null, connected: false, everConnected: false,
    events: 0, parts: 0, lastEventAt: 0, ids: {}, push: "", chartsAt: 0, chartsTimer: null, sent: null, resent: 0,
    verifyNext: false, view: null,
    vw: {mode: null, token: null, timer: null, lastFetch: 0, map: null, cells: null, cellsSent: null, total: null,
         fetches: 0, key: null, asked: null}
  };
  var EMPTY = {type: "FeatureCollection", features: []};
  var VIEW_MOVE_MS = 0;  // after the map stopped moving: at once (moves of one task ask once; answers for a view left are dropped)
  var VIEW_CHANGE_MS = 1000;  // after pushed changes: at most once a second

  function setProps(id, props) {
    // dash-leaflet layers have no DOM element of their id: ask Dash, which knows every component of the layout
    try { window.dash_clientside.set_props(id, props); } catch (err) { /* not on this page */ }
  }

  function stripV(url) {
    if (!url) { return null; }
    var u = new URL(url, window.location.origin);
    u.searchParams.delete("v");
    return u.pathname + "?" + u.searchParams.toString();
  }

  function withV(url, v) {
    var u = new URL(url, window.location.origin);
    u.searchParams.set("v", String(v));
    return u.pathname + "?" + u.searchParams.toString();
  }

  function streamUrl() {
    var u = new URL(S.base, window.location.origin);
    var q = new URLSearchParams(u.search);
    q.delete("v");
    if (S.seq !== null && S.seq !== undefined) { q.set("after", String(S.seq)); }
    if (S.aseq !== null && S.aseq !== undefined) { q.set("aseq", String(S.aseq)); }
    if (S.push) { q.set("push", S.push); }
    return "/api/map/stream?" + q.toString();
  }

  function scheduleApply() {
    if (S.timer) { return; }
    var wait = Math.max(0, APPLY_MS - (Date.now() - S.lastApply));
    S.timer = setTimeout(function () {
      S.timer = null;
      S.lastApply = Date.now();
      if (!S.features) { return; }
      var features = [];
      S.features.forEach(function (f) { features.push(f); });
      var data = {type: "FeatureCollection", features: features, truncated: S.truncated};
      S.sent = data;
      setProps("geo-incidents", {data: data});
      if (S.verifyNext) { S.verifyNext = false; verify(data, 1); }  // the first apply after a load
    }, wait);
  }

  /* dash-leaflet also drops a data change that arrives while the layer is still taking its previous data (at mount,
   * the empty collection of the layout): the layer would stay empty until the next change. After the first apply
   * of a loaded layer, if
   * the map shows no marker although some of the data lies in view, the same data goes again (a new object), a few
   * times with growing waits. */
  var VERIFY_MS = [600, 1200, 2500, 5000];
  function verify(data, attempt) {
    setTimeout(function () {
      if (S.sent !== data || !data.features.length) { return; }  // newer data went since, or nothing to show
      if (document.querySelector(".marker-cluster, .wx-inc")) { return; }
      var m = window.wx && window.wx.map && window.wx.map.mapFor("map");
      if (!m) { return; }
      var b = m.getBounds();
      var inView = data.features.some(function (f) {
        var c = f.geometry && f.geometry.coordinates;
        return c && b.contains([c[1], c[0]]);
      });
      if (!inView) { return; }
      var again = Object.assign({}, data);
      S.sent = again;
      S.resent += 1;
      setProps("geo-incidents", {data: again});
      if (attempt < VERIFY_MS.length) { verify(again, attempt + 1); }
    }, VERIFY_MS[attempt - 1]);
  }

  function mark(f) {  // p.al: an active alert — the marker pulses (wx.map.incidentPoint)
    if (S.alerted) { f.properties.al = S.alerted.has(f.properties.id); }
    return f;
  }

  function merge(d) {
    if (d.alerts) {  // the alert sequence moved: the pulsing set is in the data, not in a hideout that can be dropped
      S.alerted = new Set(d.alerts);
      S.features.forEach(function (f, id) { S.features.set(id, mark(Object.assign({}, f, {properties: Object.assign({}, f.properties)}))); });
    }
    (d.upsert || []).forEach(function (f) { S.features.set(f.properties.id, mark(f)); });
    (d.remove || []).forEach(function (id) { S.features.delete(id); });
  }

  function load(url) {
    var token = {};
    S.loading = token;
    S.queued = [];
    return fetch(url, {credentials: "same-origin"})
      .then(function (r) { if (!r.ok) { throw new Error("HTTP " + r.status); } return r.json(); })
      .then(function (fc) {
        if (S.loading !== token) { return; }  // the filter changed meanwhile
        S.loading = null;
        var m = new Map();
        (fc.features || []).forEach(function (f) { m.set(f.properties.id, mark(f)); });
        S.features = m;
        S.truncated = !!fc.truncated;
        if (S.ids.truncated) { setProps(S.ids.truncated, {hidden: !S.truncated}); }  // say so on the map
        S.verifyNext = true;
        S.queued.forEach(merge);  // events that arrived while loading (each idempotent: upsert/remove by id)
        S.queued = [];
        scheduleApply();
      })
      .catch(function () {
        if (S.loading !== token) { return; }
        S.loading = null;
        setTimeout(function () { if (S.url === url && !S.features) { load(url); } }, 2000);
      });
  }

  /* ---- view mode (a multi-county map) ---- */
  function viewMap() { return window.wx && window.wx.map && window.wx.map.mapFor("map"); }

  function filterParams() {  // the layer's filter: its url's query, without the cache buster or a box
    var q = new URLSearchParams(new URL(S.base, window.location.origin).search);
    q.delete("v");
    q.delete("bbox");
    return q;
  }

  function snapBox(b, step) {  // [west, south, east, north] snapped outward to the lattice of step degrees
    function down(v) { return Math.floor(v / step + 1e-9) * step; }
    function up(v) { return Math.ceil(v / step - 1e-9) * step; }
    return [down(b.getWest()), down(b.getSouth()), up(b.getEast()), up(b.getNorth())];
  }

  function fmt(box) {  // the cells' lattice: multiples of 90 / 2^z, in the shortest exact decimal form
    return box.map(String).join(",");
  }

  /* ask for the view again after `wait` ms; a move (wait VIEW_MOVE_MS) goes before a change's pending wait, and
   * changes are asked for at most once a second */
  function viewSchedule(wait) {
    var vw = S.vw;
    if (wait >= VIEW_CHANGE_MS) {
      if (vw.timer) { return; }  // one is coming: it will read the new state
      wait = Math.max(0, vw.lastFetch + VIEW_CHANGE_MS - Date.now());
    } else if (vw.timer) {
      clearTimeout(vw.timer);
    }
    vw.timer = setTimeout(function () { vw.timer = null; viewFetch(); }, wait);
  }

  function setCells(fc) {
    var vw = S.vw;
    if (fc === null) {
      if (!vw.cellsSent || !vw.cellsSent.features.length) { return; }
      fc = EMPTY;
    }
    vw.cellsSent = fc;
    setProps("geo-incident_cells", {data: fc});
    verifyCells(fc, 1);
  }

  /* the cells' data may be dropped as the markers' is (see verify): sent again when what the map draws does not
   * match it (none drawn although some lie in view, or some left drawn after they were taken away) */
  function verifyCells(fc, attempt) {
    setTimeout(function () {
      if (S.vw.cellsSent !== fc) { return; }
      var shown = document.querySelector(".wx-cell") !== null;
      if (fc.features.length) {
        var m = viewMap(), b = m && m.getBounds();
        if (shown || !b || !fc.features.some(function (f) {
          var c = f.geometry.coordinates;
          return b.contains([c[1], c[0]]);
        })) { return; }
      } else if (!shown) {
        return;
      }
      var again = Object.assign({}, fc);
      S.vw.cellsSent = again;
      S.resent += 1;
      setProps("geo-incident_cells", {data: again});
      if (attempt < VERIFY_MS.length) { verifyCells(again, attempt + 1); }
    }, VERIFY_MS[attempt - 1]);
  }

  /* the markers taken away for the cells (their empty data may be dropped too: sent again while some are drawn) */
  function clearMarkers(attempt) {
    var none = {type: "FeatureCollection", features: []};
    S.sent = none;
    setProps("geo-incidents", {data: none});
    setTimeout(function () {
      if (S.sent !== none || S.vw.mode !== "cells") { return; }
      if (!document.querySelector(".marker-cluster, .leaflet-marker-pane .wx-inc")) { return; }
      S.resent += 1;
      if (attempt < VERIFY_MS.length) { clearMarkers(attempt + 1); }
    }, VERIFY_MS[attempt - 1]);
  }

  function viewFetch() {
    var vw = S.vw, v = S.view;
    var m = viewMap();
    if (!m || !S.base) {  // the map registers itself when it draws its first layer
      vw.timer = setTimeout(function () { vw.timer = null; viewFetch(); }, 150);
      return;
    }
    if (vw.map !== m) {
      vw.map = m;
      m.on("moveend", function () { viewSchedule(VIEW_MOVE_MS); });
    }
    var zoom = m.getZoom(), z = Math.floor(zoom + 1e-9), b = m.getBounds();
    var cell = v.cell0 / Math.pow(2, z);
    var q = filterParams();
    q.set("bbox", fmt(snapBox(b, cell)));
    q.set("zoom", String(z));
    // zoomed in: the markers come in the same answer when the box holds few enough (``points``)
    if (zoom >= v.markersZoom) { q.set("points", "1"); }
    var cellsUrl = v.cells + "?" + q.toString();
    var asks = [cellsUrl, S.base, S.seq].join("|");
    if (asks === vw.asked) { return; }  // the same view of the same state (asked, or being asked): nothing new
    vw.asked = asks;
    vw.lastFetch = Date.now();
    var token = {};
    vw.token = token;
    vw.fetches += 1;
    function json(r) { if (!r.ok) { throw new Error("HTTP " + r.status); } return r.json(); }
    fetch(cellsUrl, {credentials: "same-origin"}).then(json).then(function (fc) {
      if (vw.token !== token) { return; }
      vw.token = null;
      vw.total = fc.total;
      vw.key = cellsUrl;
      if (fc.points) {  // few enough in view: their markers
        var kept = new Map();
        (fc.points.features || []).forEach(function (f) { kept.set(f.properties.id, mark(f)); });
        var first = vw.mode !== "markers";
        vw.mode = "markers";
        S.features = kept;
        S.truncated = !!fc.points.truncated;
        setCells(null);
        if (first) { S.verifyNext = true; }
        scheduleApply();
        return;
      }
      vw.mode = "cells";
      vw.cells = fc;
      if (S.features) {  // the markers go: the cells stand for them
        S.features = null;
        clearMarkers(1);
      }
      setCells(fc);
    }).catch(function () {
      if (vw.token === token) { vw.token = null; vw.asked = null; viewSchedule(2000); }
    });
  }

  /* A move that changes the zoom reprojects every polygon drawn (Leaflet's paths on zoomend, then again on
   * viewreset): 50–100 ms of a province view's main thread before the moveend listeners run. So the view is also
   * asked for on zoomend, from a listener each map gets as it is made (ahead of every layer's): the request is on its
   * way while the browser reprojects. The moveend that follows finds it asked. */
  if (window.L && L.Map && L.Map.addInitHook) {
    L.Map.addInitHook(function () {
      this.on("zoomend", function () {
        var vw = S.vw;
        if (!S.view || vw.map !== this || viewMap() !== this) { return; }
        if (vw.timer) { clearTimeout(vw.timer); vw.timer = null; }
        viewFetch();
      });
    });
  }

  function onChange(e) {
    var d;
    try { d = JSON.parse(e.data); } catch (err) { return; }
    S.events += 1;
    S.lastEventAt = Date.now();
    if (S.view) {  // view mode: the markers shown take the change at once; the view is asked again (<= 1/s)
      if (!d.reload && S.vw.mode === "markers" && S.features) { merge(d); scheduleApply(); }
      if (d.reload) { S.vw.asked = null; }  // whatever the view showed: asked afresh
      if (d.reload || d.seq !== S.seq || (d.upsert && d.upsert.length) || (d.remove && d.remove.length)) {
        viewSchedule(d.reload ? 0 : VIEW_CHANGE_MS);
      }
    } else if (d.reload) {
      if (S.url) { S.url = withV(S.base, d.seq); load(S.url); }
    } else if (S.loading || !S.features) {
      S.queued.push(d);
    } else {
      merge(d);
      scheduleApply();
    }
    // a page that has the ring counts pushed (part "rings") keeps its ring layer; others refetch it
    if (d.rings && S.rings && S.push.indexOf('"rings"') < 0) { S.rings = withV(S.rings, d.seq); setProps("geo-rings", {url: S.rings}); }
    if (d.reload && S.ids.reload) { setProps(S.ids.reload, {data: d.seq}); }
    var moved = d.seq !== S.seq;
    S.seq = d.seq;
    S.aseq = d.aseq;
    if (moved && S.ids.charts) { charts(); }
  }

  function charts() {  // move charts-seq now, or once the minute since the last move is over
    if (S.chartsTimer) { return; }
    var wait = Math.max(0, S.chartsAt + CHARTS_MS - Date.now());
    S.chartsTimer = setTimeout(function () {
      S.chartsTimer = null;
      S.chartsAt = Date.now();
      setProps(S.ids.charts, {data: S.seq});
    }, wait);
  }

  function onParts(e) {  // the page's live parts, after the markers' change event (dashboard/callbacks/pushed.py)
    var d;
    try { d = JSON.parse(e.data); } catch (err) { return; }
    S.lastEventAt = Date.now();
    S.parts += 1;
    (d.set || []).forEach(function (item) { setProps(item[0], item[1]); });
  }

  function onEnd(e) {  // the server ended the stream: the session is over (signed out elsewhere, disabled, …)
    var d = {};
    try { d = JSON.parse(e.data); } catch (err) { d = {}; }
    S.ended = d.reason || "ended";
    if (S.es) { S.es.close(); S.es = null; }
    S.connected = false;
    if (S.ended === "signed_out") {  // sign in again, back to this page (the server's gate says the same)
      window.location.assign("/login?next=" + encodeURIComponent(window.location.pathname + window.location.search));
    }
  }

  function connect() {
    if (S.retryTimer) { clearTimeout(S.retryTimer); S.retryTimer = null; }
    if (S.es) { S.es.close(); }
    if (!S.base || typeof EventSource !== "function") { return; }
    var es = new EventSource(streamUrl(), {withCredentials: true});
    S.es = es;
    es.addEventListener("change", onChange);
    es.addEventListener("parts", onParts);
    es.addEventListener("end", onEnd);
    es.onopen = function () { S.connected = true; S.everConnected = true; S.backoff = 1000; };
    es.onmessage = function () { S.lastEventAt = Date.now(); };
    es.onerror = function () {
      S.connected = false;
      if (es.readyState === 2 && S.es === es) {  // CLOSED (an HTTP error, e.g. 503 or 502): reopen ourselves
        S.retryTimer = setTimeout(connect, S.backoff);
        S.backoff = Math.min(BACKOFF_MAX_MS, S.backoff * 2);
      }  // CONNECTING: the browser retries by itself, with Last-Event-ID
    };
  }

  /* Markers age without a request: "od" (hours overdue) from "du" (due, Unix seconds) each minute; the layer is
   * redrawn only when a marker crosses one of the style's steps (due, 24 h, 72 h overdue). */
  function step(od) { return od > 72 ? 3 : (od > 24 ? 2 : (od > 0 ? 1 : 0)); }

  function age(at) {
    if (!S.features) { return 0; }
    var now = at || Date.now() / 1000, moved = 0;
    S.features.forEach(function (f, id) {
      var p = f.properties;
      if (p.du === null || p.du === undefined) { return; }
      var od = now > p.du ? Math.round((now - p.du) / 360) / 10 : 0;
      if (step(od) !== step(p.od)) {
        S.features.set(id, Object.assign({}, f, {properties: Object.assign({}, p, {od: od})}));
        moved += 1;
      }
    });
    if (moved) { scheduleApply(); }
    return moved;
  }
  setInterval(function () { age(); }, 60000);

  var live = {
    /* Called (clientside callback) whenever the incident or ring layer's url changes, and at start. */
    follow: function (incidentsUrl, ringsUrl, conf) {
      conf = conf || {};
      var push = S.pushed || conf.push;
      S.ids = conf.ids || {};
      if (S.seq === null && conf.seq !== null && conf.seq !== undefined) { S.seq = conf.seq; }
      if (S.aseq === null && conf.aseq !== null && conf.aseq !== undefined) { S.aseq = conf.aseq; }
      if (!S.chartsAt) { S.chartsAt = Date.now(); }  // the charts were drawn with the page
      S.rings = ringsUrl || null;
      S.view = conf.view || null;
      var base = stripV(incidentsUrl);
      var parts = push && Object.keys(push).length ? JSON.stringify(push) : "";
      if (base && base !== S.base) {
        S.base = base;
        S.url = incidentsUrl;
        S.features = null;
        S.push = parts;
        if (S.view) { S.vw.token = null; viewSchedule(0); } else { load(incidentsUrl); }
        connect();
      }
      return window.dash_clientside.no_update;
    },
    /* the page's live parts changed (its view did): the stream follows them from where it was */
    push: function (push) {
      S.pushed = push || {};
      var parts = Object.keys(S.pushed).length ? JSON.stringify(S.pushed) : "";
      if (parts !== S.push) {
        S.push = parts;
        if (S.base) { connect(); }
      }
      return window.dash_clientside.no_update;
    },
    /* `push` with each part's params merged with `changes` ({part: params}); no_update when nothing moved (the
     * page's clientside callbacks keep live-push current with this) */
    pushWith: function (push, changes) {
      var out = {}, moved = false;
      Object.keys(push || {}).forEach(function (k) { out[k] = Object.assign({}, push[k]); });
      Object.keys(changes || {}).forEach(function (k) {
        var next = Object.assign({}, out[k] || {}, changes[k]);
        if (JSON.stringify(next) !== JSON.stringify(out[k])) { out[k] = next; moved = true; }
      });
      return moved ? out : window.dash_clientside.no_update;
    },
    /* {connected, everConnected, events, lastEventAt}: the wall's connection sign reads this. */
    state: function () {
      return {connected: S.connected || (S.es !== null && S.es.readyState === 1), everConnected: S.everConnected,
              events: S.events, parts: S.parts, lastEventAt: S.lastEventAt, seq: S.seq, aseq: S.aseq,
              resent: S.resent};
    },
    /* the number of markers the page holds (tests and the bench); a multi-county map showing cells: 0 when they
     * count none, else null */
    size: function () {
      if (S.features) { return S.features.size; }
      return S.view && S.vw.mode === "cells" && S.vw.total === 0 ? 0 : null;
    },
    /* a multi-county map's view mode: what it shows ("cells" / "markers"), the incidents counted in view, the url
     * it last took, how many times it asked, and whether an ask is due, in flight or not yet drawn (tests, bench) */
    view: function () {
      var vw = S.vw;
      return S.view ? {mode: vw.mode, total: vw.total, cells: vw.cells ? vw.cells.features.length : null,
                       url: vw.key, fetches: vw.fetches, busy: !!(vw.timer || vw.token || S.timer)} : null;
    },
    /* the markers' properties by id, and ageing at a given time (Unix seconds): tests */
    props: function (id) { var f = S.features && S.features.get(id); return f ? f.properties : null; },
    age: age,
    ids: function () { var out = []; if (S.features) { S.features.forEach(function (f, id) { out.push(id); }); } return out; },
    /* hold the stream (nothing arrives) and take it up again from where it was: a duty officer's page that has
     * not yet heard of a change, made deterministic in tests */
    pause: function () { if (S.es) { S.es.close(); S.es = null; } S.connected = false; S.paused = true; },
    resume: function () { S.paused = false; connect(); }
  };

  window.wx = window.wx || {};
  window.wx.live = live;
  window.addEventListener("pagehide", function () { if (S.es) { S.es.close(); } });
})();
