/* Map functions for dash-leaflet, referenced from Python through dash-extensions Namespace("wx", "map").
 * Styling reads `context.hideout`, so changing hideout restyles polygons without re-sending geometry.
 * Everything that reaches innerHTML goes through esc(). Committed on purpose: no generated assign() code. */
(function () {
  "use strict";
  function esc(value) {
    return String(value === undefined || value === null ? "" : value)
      .replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
      .replace(/"/g, "&quot;").replace(/'/g, "&#39;");
  }
  // the incident whose popup is open and what it last showed (both survive a layer rebuild)
  var openPopup = {id: null, closedAt: 0, html: null};
  var maps = {};  // Leaflet maps by container id, remembered from the context dash-leaflet passes to our functions
  var ringCounts = null;  // the newest pushed ring counts (ringStyle keeps it; the popups read it when opened)
  function ringCount(p) {
    return ringCounts && ringCounts[p.code] !== undefined ? ringCounts[p.code] : p.open_incidents;
  }

  function hide(context) {
    var m = context && context.map;
    if (m && m.getContainer && !m._wxSeen) {
      m._wxSeen = true;
      maps[m.getContainer().id || "map"] = m;
      addPanelFullscreen(m, (context.hideout || {}).lang);
    }
    return (context && context.hideout) || {};
  }
  // every Leaflet map registers itself as it is made (wx.map.detail needs the map's view before any layer is drawn)
  if (window.L && L.Map && L.Map.addInitHook) {
    L.Map.addInitHook(function () {
      if (this._container) {
        maps[this._container.id || "map"] = this;
        delete chosen[this._container.id || "map"];
        watchOutlines(this);
        // the level of detail follows a move at once (its clientside callback, on the map's bounds, comes a
        // Dash round of 10–50 ms later and then finds the view's geometry asked for already); a move that changes
        // the zoom asks on zoomend, before the layers' own zoomend listeners reproject every drawn polygon (and
        // viewreset does again), so the requests are out while the browser does that
        this.on("zoomend moveend", function () {
          if (maps.map === this && view.map === this && view.names.length) { syncView(); }
        });
      }
    });
  }

  /* ---- the selected units' outlines, on top (pane SELECTION_PANE) ----
   * Each polygon layer draws in a pane of its own, the finer above the coarser (ui/layers.py PANES): a county
   * selected at a zoom that shows its zones and grids had its yellow stroke drawn under theirs, hidden along its
   * whole boundary. So each selected unit (wx.map.select's, or a hideout's ``selected``: the wall's tour) is also
   * outlined in a pane above every polygon layer and below the markers, with no pointer events: a copy of the
   * polygon as its layer last drew it, made again when the layer draws it anew (another level of detail) and gone
   * with the selection; where its layer does not draw it (switched off, or not at this zoom), a copy of its polygon
   * fetched for the view (outlineUndrawn). */
  var SELECTION_PANE = "wx-selection", SELECTION_Z = 590;  // polygon panes 401…, markers 600
  var SELECTED_STYLE = {color: "#ffd400", weight: 4, opacity: 0.95, fill: false};

  function layerNameOf(l) {
    var f = l && l.feature, cls = (l && l.options && l.options.className) || "";
    return f && f.properties && l.getLatLngs ? (/(?:^|\s)wx-layer-(\w+)/.exec(cls) || [])[1] || null : null;
  }

  function dropOutline(m, name) {
    var o = m._wxOutlines && m._wxOutlines[name];
    if (o) { m.removeLayer(o.poly); delete m._wxOutlines[name]; }
  }

  function drawOutline(m, name, src) {
    if (!m._wxOutlines) { watchOutlines(m); }  // a map made before this file ran (none expected): set it up now
    dropOutline(m, name);
    var poly = L.polygon(src.getLatLngs(), Object.assign({pane: SELECTION_PANE, interactive: false,
      className: "wx-selected-outline wx-selected-" + name}, SELECTED_STYLE));
    m._wxOutlines[name] = {code: src.feature.properties.code, src: src, poly: poly.addTo(m)};
  }

  /* outline the unit ``selectedIn`` names for layer ``name`` (or none), from its polygon in the map if drawn */
  function outlineSelected(m, name, code) {
    if (!code) { dropOutline(m, name); return; }
    var src = null;
    m.eachLayer(function (l) {
      if (!src && layerNameOf(l) === name && l.feature.properties.code === code) { src = l; }
    });
    if (src) { drawOutline(m, name, src); } else { dropOutline(m, name); }
  }

  function watchOutlines(m) {
    if (m._wxOutlines) { return; }
    if (!m.getPane(SELECTION_PANE)) {
      var pane = m.createPane(SELECTION_PANE);
      pane.style.zIndex = String(SELECTION_Z);
      pane.style.pointerEvents = "none";
    }
    m._wxOutlines = {};
    m.on("layeradd", function (e) {
      var name = layerNameOf(e.layer);
      if (!name) { return; }
      var code = e.layer.feature.properties.code;
      var sel = selectedIn(styledWith[name] || received[name] || {layer: name}, m);  // as it was just styled
      var o = m._wxOutlines[name];
      if (sel && code === sel) { drawOutline(m, name, e.layer); } else if (o && o.code !== sel) { dropOutline(m, name); }
    });
    m.on("layerremove", function (e) {
      var name = layerNameOf(e.layer), o = name && m._wxOutlines[name];
      if (o && o.src === e.layer) { dropOutline(m, name); }
    });
  }

  // Full screen for the whole map panel (map, measure controls, legends), not the bare map: a full-screen map
  // without its colour legend cannot be read.
  function addPanelFullscreen(map, lang) {
    var panel = map.getContainer().closest(".wx-map");
    if (!panel || !document.fullscreenEnabled || map._wxFullscreen) { return; }
    map._wxFullscreen = true;
    var Ctl = L.Control.extend({
      options: {position: "topleft"},
      onAdd: function () {
        var div = L.DomUtil.create("div", "leaflet-bar wx-fullscreen");
        var a = L.DomUtil.create("a", "wx-fullscreen-button", div);
        a.href = "#";
        a.setAttribute("role", "button");
        a.title = lang === "en" ? "Full screen" : "全屏";
        a.innerHTML = "<svg viewBox='0 0 16 16' width='16' height='16' aria-hidden='true'><path d='M1 5V1h4M11 1h4v4" +
          "M15 11v4h-4M5 15H1v-4' fill='none' stroke='currentColor' stroke-width='2'/></svg>";
        L.DomEvent.on(a, "click", function (e) {
          L.DomEvent.preventDefault(e);
          L.DomEvent.stopPropagation(e);
          if (document.fullscreenElement) { document.exitFullscreen(); } else { panel.requestFullscreen(); }
        });
        L.DomEvent.disableClickPropagation(div);
        return div;
      }
    });
    new Ctl().addTo(map);
    document.addEventListener("fullscreenchange", function () {
      setTimeout(function () { if (map._loaded) { map.invalidateSize(); } }, 100);
    });
  }
  function nameOf(props, key, lang) {
    var en = props[key + "_en"];
    return lang === "en" && en ? en : props[key];
  }
  function label(h, key, fallback) { return (h.labels && h.labels[key]) || fallback; }

  // the hideout each unit layer was last styled with (see map.settleHideout)
  var styledWith = {};
  var drawnStamp = {};  // the stamp of the geometry each layer last drew (wx.map.detail's data: see sentGeometry)
  var received = {};  // the hideout each unit layer last received (tests wait on it)
  // the unit selected in each layer of a map by the overview's drill (wx.map.select), over the hideout's
  // ``selected``: {map id: {layer: code}}, forgotten when a map of that id is made anew (another page, the same page
  // opened again by a link)
  var chosen = {};
  function mapId(m) { return (m && m.getContainer && m.getContainer().id) || "map"; }
  function selectedIn(h, m) {
    var on = chosen[mapId(m)];
    return h.layer && on && Object.prototype.hasOwnProperty.call(on, h.layer) ? on[h.layer] : h.selected;
  }
  var resent = new WeakSet();

  function choroplethColor(h, code) {
    var values = h.values || {};
    var v = values[code];
    if (v === undefined || v === null || !h.breaks || !h.colors) { return null; }
    var i = 0;
    while (i < h.breaks.length && v > h.breaks[i]) { i++; }
    return h.colors[Math.min(i, h.colors.length - 1)];
  }

  /* ---- the level of detail's geometry (map.detail) ---- */
  var view = {overlays: null, names: [], hideouts: [], timer: null, map: null};
  var geo = {};  // by layer name: {want: key, have: key, sent: data, stamp, cache: [[key, collection], …]}
  var GEO_CACHE = 4;  // collections kept per layer (its last boxes or levels of detail)
  var VERIFY_MS = [600, 1200, 2500, 5000];
  var stampSeq = 0;

  function snapTo(v, up, step) {
    return ((up ? Math.ceil(v / step - 1e-9) : Math.floor(v / step + 1e-9)) * step).toFixed(2);
  }
  /* the view's box snapped outward to the lattice of ``step`` degrees (the server's: api/geo.py) */
  function snappedBox(b, step) {
    return [snapTo(b.getWest(), false, step), snapTo(b.getSouth(), false, step), snapTo(b.getEast(), true, step),
      snapTo(b.getNorth(), true, step)];
  }

  /* the key (the url; "" for nothing) a layer with hideout ``h`` wants at ``zoom`` over ``b`` (Leaflet bounds) */
  function wantedKey(h, zoom, b) {
    if (h.detail) {
      if (zoom < h.detail.zoom) { return ""; }
      return h.detail.url + "?bbox=" + snappedBox(b, 0.05).join(",");
    }
    var zooms = h.lod.zooms || [];
    for (var i = 0; i < zooms.length; i++) {
      if (zoom < zooms[i]) { return h.lod.url + "?lod=" + (i + 1); }
    }
    var bb = h.lod.bbox;  // zoomed in: the outlines of the view, unless it is wider than bb.max (then whole)
    if (bb) {
      var box = snappedBox(b, bb.step);
      if (box[2] - box[0] <= bb.max && box[3] - box[1] <= bb.max) { return h.lod.url + "?bbox=" + box.join(","); }
    }
    return h.lod.url;
  }

  /* a collection of the geo API (this page's session), or a rejection for an HTTP error */
  function geometry(url) {
    return fetch(url, {credentials: "same-origin"})
      .then(function (r) { if (!r.ok) { throw new Error("HTTP " + r.status); } return r.json(); });
  }

  function cached(st, key) {
    for (var i = 0; i < st.cache.length; i++) { if (st.cache[i][0] === key) { return st.cache[i][1]; } }
    return null;
  }

  function remember(st, key, fc) {
    st.cache = st.cache.filter(function (e) { return e[0] !== key; });
    st.cache.push([key, fc]);
    if (st.cache.length > GEO_CACHE) { st.cache.shift(); }
  }

  /* hand ``fc`` to the layer as its data, each feature stamped so that the style functions record which data the
   * layer drew (drawnStamp); dash-leaflet also drops a data change that reaches a layer still taking its previous
   * data (at mount, the layout's empty collection): checked after a while, and sent again (a new object) if so */
  function sentGeometry(name, key, fc) {
    var st = geo[name], stamp = ++stampSeq;
    var features = (fc && fc.features) || [];
    features.forEach(function (f) { (f.properties || (f.properties = {}))._wxs = stamp; });
    st.have = key;
    st.stamp = stamp;
    send(name, {type: "FeatureCollection", features: features}, 1);
  }

  function send(name, data, attempt) {
    var st = geo[name];
    st.sent = data;
    window.dash_clientside.set_props("geo-" + name, {data: data});
    setTimeout(function () {
      if (st.sent !== data || geo[name] !== st) { return; }  // newer data went since (or another map came)
      var drawn = data.features.length ? drawnStamp[name] === st.stamp
        : document.querySelector("path.wx-layer-" + name) === null;
      if (drawn || attempt >= VERIFY_MS.length) { return; }
      st.resent += 1;
      send(name, {type: "FeatureCollection", features: data.features}, attempt + 1);
    }, VERIFY_MS[attempt - 1]);
  }

  function syncView() {
    var m = maps.map;
    if (view.timer) { clearTimeout(view.timer); view.timer = null; }
    if (!m || !m._loaded) {  // the map has not set its view yet: look again shortly
      view.timer = setTimeout(syncView, 100);
      return;
    }
    if (view.map !== m) {  // another map (a client-side route to another page with the map): its layers hold nothing
      view.map = m;
      geo = {};
    }
    var zoom = m.getZoom(), b = m.getBounds();
    view.names.forEach(function (name, i) {
      var h = view.hideouts[i];
      if (h && h.whole) {  // a unit layer drawn whole (its url): off in the layer control, it draws no unit
        outlineUndrawn(m, name, h, !!view.overlays && view.overlays.indexOf(h.whole.name) < 0);
      }
      if (!h || !(h.detail || h.lod)) { return; }
      var conf = h.detail || h.lod;
      var st = geo[name] || (geo[name] = {want: null, have: null, sent: null, stamp: 0, cache: [], fetches: 0,
                                          answers: 0, resent: 0});
      var shown = !view.overlays || view.overlays.indexOf(conf.name) >= 0;
      var key = shown ? wantedKey(h, zoom, b) : "";
      outlineUndrawn(m, name, h, key === "");
      if (!shown) {  // off in the layer control: nothing fetched for it (what is in flight is dropped)
        st.want = st.have;
        return;
      }
      if (key === "" && st.have === "" && document.querySelector("path.wx-layer-" + name)) {
        sentGeometry(name, "", null);  // switched on holding what an earlier, dropped change should have emptied
      }
      if (key === st.want) { return; }  // asked for already, or held
      st.want = key;
      if (key === st.have) { return; }
      if (key === "") { sentGeometry(name, "", null); return; }
      var hit = cached(st, key);
      if (hit) { sentGeometry(name, key, hit); return; }
      st.fetches += 1;
      geometry(key)
        .then(function (fc) {
          st.answers += 1;
          remember(st, key, fc);
          if (st.want === key && geo[name] === st) { sentGeometry(name, key, fc); }  // else the view moved on
        })
        .catch(function () {
          if (st.want === key) { st.want = st.have; }  // the next move or switch asks again
        });
    });
  }

  /* The selected unit of a layer that does not draw it — switched off in the layer control (a multi-county map's
   * towns are, at first), or below the zoom its units come from — is outlined all the same (a link to a town, a
   * ranking bar's town): its polygon is fetched for the view's box, once per unit and box, and drawn in the selection
   * pane; the layer's own polygon replaces it when the layer draws it (layeradd). */
  var undrawn = {};  // by layer: {ask: "code box", src: the unit's polygon once fetched (null: none in that box)}
  function selectedNow(m, name, h) {  // the layer's hideout as last received or drawn, else the view's (``h``)
    return selectedIn(Object.assign({layer: name}, received[name] || styledWith[name] || h), m);
  }
  function outlineUndrawn(m, name, h, notDrawn) {
    var code = selectedNow(m, name, h), o = m._wxOutlines && m._wxOutlines[name];
    var conf = h.detail || h.lod || h.whole;
    if (!code || !notDrawn || !conf || !conf.url || (o && o.code === code)) { return; }
    var box = snappedBox(m.getBounds(), 0.05).join(","), ask = code + " " + box, u = undrawn[name];
    if (u && u.code === code && u.src) { drawOutline(m, name, u.src); return; }  // fetched before (layer off again)
    if (u && u.ask === ask) { return; }  // on its way, or not in this box
    var mine = undrawn[name] = {ask: ask, code: code, src: undefined};
    geometry(conf.url + "?bbox=" + box)
      .then(function (fc) {
        var f = ((fc && fc.features) || []).filter(function (x) { return (x.properties || {}).code === code; })[0];
        mine.src = f ? L.geoJSON(f).getLayers()[0] || null : null;
        var now = m._wxOutlines && m._wxOutlines[name];
        if (!mine.src || maps[mapId(m)] !== m || (now && now.code === code)) { return; }
        if (selectedNow(m, name, h) !== code) { return; }
        drawOutline(m, name, mine.src);
      })
      .catch(function () { if (undrawn[name] === mine) { delete undrawn[name]; } });  // the next move asks again
  }

  /* the zone of grid ``code`` as the map's grid layer has it (the grid in view: the view is on it), else null */
  function gridZone(code) {
    var m = maps.map, zone = null;
    if (!m || !code) { return null; }
    m.eachLayer(function (l) {
      var f = l.feature;
      if (zone === null && f && f.properties && f.properties.code === code && f.properties.zone_code) {
        zone = f.properties.zone_code;
      }
    });
    return zone;
  }

  var map = {
    esc: esc,
    /* The overview's URL query after a click on unit ``props`` of the map's ``layer`` (services.drill.drill_target, the
     * rule, in the browser: the click writes the URL at once, with no request before the view's): a city, county, town
     * or zone drills into it; a grid into its zone, unless the view is already in that zone (the zone, or one of its
     * grids): then into the grid. The view's other parameters (period, language) are kept as they are. null: nothing
     * to do (not a unit, or the view already). */
    drillQuery: function (layer, props, search) {
      var level = {cities: "city", counties: "county", towns: "town", zones: "zone", grids: "grid"}[layer];
      var p = props || {}, q = new URLSearchParams(search || "");
      var now = [q.get("level") || "district", q.get("code") || null];
      if (!level || !p.code) { return null; }
      var next = [level, p.code];
      if (layer === "grids") {
        var inZone = now[0] === "zone" ? now[1] : now[0] === "grid" ? gridZone(now[1]) : null;
        next = inZone && inZone === p.zone_code ? ["grid", p.code] : ["zone", p.zone_code];
      }
      if (!next[1] || (next[0] === now[0] && next[1] === now[1])) { return null; }
      var out = new URLSearchParams();
      out.set("level", next[0]);
      out.set("code", next[1]);
      q.forEach(function (v, k) { if (k !== "level" && k !== "code") { out.append(k, v); } });
      return "?" + out.toString();
    },
    mapFor: function (id) {  // the map once it has its view (a map is registered as it is made: map.detail)
      var m = maps[id || "map"];
      return m && m._loaded ? m : undefined;
    },
    /* Resolves once the map has drawn its grids and incident markers: "drawn"; or its grids, with the incident
     * data in and empty (wx.live holds no feature): "drawn-no-incidents"; or after timeoutMs: "timeout". It looks
     * at the page every 25 ms itself (a few selector lookups; nothing goes through Dash while it waits): what waits
     * on it — a first load's panel text and charts — starts within 25 ms of the draw, not up to 100 ms later. */
    whenDrawn: function (timeoutMs) {
      var t0 = Date.now();
      return new Promise(function (resolve) {
        (function check() {
          // the map is drawn when its grid and zone polygons are both in (two layers, two fetches) and the markers
          var grids = (document.querySelector("path.wx-layer-grids") !== null &&
            document.querySelector("path.wx-layer-zones") !== null) ||
            document.querySelector("path.wx-layer-counties") !== null;  // a multi-county map draws its counties first
          // (a multi-county map shows counts per cell until zoomed in: wx.map.incidentCell)
          var markers = document.querySelector(".marker-cluster, .leaflet-marker-pane .wx-inc, .wx-cell") !== null;
          var held = window.wx && window.wx.live ? window.wx.live.size() : null;
          var reason = grids && markers ? "drawn" : grids && held === 0 ? "drawn-no-incidents"
            : Date.now() - t0 >= timeoutMs ? "timeout" : null;
          if (reason) { resolve(reason); } else { setTimeout(check, 25); }
        })();
      });
    },
    /* dash-leaflet (1.1.3) ignores a hideout that arrives while its layer's url is being fetched, and styles the
     * fetched features with the hideout the fetch began with: colouring towns, which switches their hidden layer on
     * (a fetch) while the colours are computed, could leave them uncoloured. Called (clientside callback) whenever
     * a unit layer's hideout changes: once the layer is drawn, if it was styled with another hideout for longer
     * than a render takes, the layer is given its hideout again (a copy, once). */
    settleHideout: function (id, name, hideout) {
      var noUpdate = window.dash_clientside.no_update;
      received[name] = hideout;
      // a stand-in for a layer the set has not (ui.layers.absent_layers) is never drawn: nothing to wait for
      if (!hideout || hideout.absent || resent.has(hideout)) { return noUpdate; }
      var t0 = Date.now(), drawnAt = null;
      function same(a, b) { return a === b || (!!a && !!b && JSON.stringify(a) === JSON.stringify(b)); }
      (function check() {
        var drawn = document.querySelector("path.wx-layer-" + name) !== null;
        if (drawn && drawnAt === null) { drawnAt = Date.now(); }
        if (drawn && same(styledWith[name], hideout)) { return; }  // styled with it: nothing to do
        if (drawn && Date.now() - drawnAt >= 600) {
          var again = Object.assign({}, hideout);
          resent.add(again);
          window.dash_clientside.set_props(id, {hideout: again});
          return;
        }
        if (Date.now() - t0 < 60000) { setTimeout(check, 100); }  // hidden or still loading: wait for it
      })();
      return noUpdate;
    },
    // the hideout a layer last received from Dash, else the one it was drawn with (a page opened by its URL draws
    // with the layout's hideout, which no callback has sent yet)
    hideoutOf: function (name) { return received[name] || styledWith[name] || null; },
    /* The overview's map for a view (clientside callback, callbacks/drill.py ``_map_view``): {selected: {layer: code
     * or null} or null, flight: {bounds, duration, padding} or null}. Only the polygons whose selection changes are
     * restyled, in place, each with its layer's style function and hideout; polygons drawn later (a new view's
     * detail, a recolour) read the selection in unitStyle. As the layers' hideout, a highlight had dash-leaflet
     * rebuild every polygon of each layer whose selection changed (it redraws a layer on any hideout change); the
     * flight, as the map's viewport, re-rendered the map's component. */
    select: function (view) {
      var noUpdate = window.dash_clientside.no_update;
      var m = maps.map, selection = view && view.selected, flight = view && view.flight;
      if (selection) {
        var on = chosen.map = chosen.map || {};  // the overview's map
        var before = Object.assign({}, on);
        Object.keys(selection).forEach(function (name) { on[name] = selection[name] || null; });
        if (m) {
          var self = this;
          m.eachLayer(function (l) {
            var name = layerNameOf(l);
            if (!name || !Object.prototype.hasOwnProperty.call(selection, name)) { return; }
            var f = l.feature, code = f.properties.code;
            if (code !== before[name] && code !== on[name]) { return; }
            var h = self.hideoutOf(name) || {layer: name};
            l.setStyle(self.unitStyle(f, {hideout: h, map: m}));  // in place: the grids stay over the zones (panes)
          });
          Object.keys(selection).forEach(function (name) { outlineSelected(m, name, on[name]); });
        }
      }
      if (flight && m) {
        var bounds = L.latLngBounds(flight.bounds);
        if (!m.getBounds().equals(bounds)) {
          m.flyToBounds(bounds, {duration: flight.duration, padding: flight.padding});
        }
      }
      return noUpdate;
    },
    selectedOf: function (name) {  // the unit a layer of the overview's map shows selected (tests, the bench)
      return selectedIn(this.hideoutOf(name) || {layer: name}, maps.map) || null;
    },
    /* Level of detail of a multi-county map (clientside callback, callbacks/map.py, on the map's zoom and bounds and
     * the layer control's checked overlays; at start too). Each layer whose hideout names a ``detail`` ({zoom, url,
     * name}: ui.layers.DETAIL) holds, at and above that zoom, its units in view — `url?bbox=` the view's box snapped
     * outward to the server's 0.05° lattice (api/geo.py BBOX_STEP), so that small moves keep the box and nothing is
     * fetched again — and below it nothing; each whose hideout names a ``lod`` ({zooms, url, name, bbox}:
     * ui.layers.LOD_ZOOMS) its outlines coarse (`url?lod=1|2`) by the zoom, then those of the view (`url?bbox=` on
     * the coarser lattice of ui.layers.OUTLINE_BBOX; whole when the view is wider). The geometry is fetched here and
     * handed to the layer as ``data``, never as its url: dash-leaflet (1.1.3) drops a url (or hideout) change that
     * reaches a layer while it is still fetching its previous url, so a jump of the zoom (9 → 11) could leave a layer
     * empty for good. A response that is no longer wanted (the view moved on meanwhile) is dropped; the last few of
     * each layer are kept, so coming back costs no request; an empty layer is an empty collection (no request). A
     * layer switched off in the layer control (its name not in ``overlays``) is not fetched until it is switched on.
     * Layers without either (one county's map) are left alone. */
    detail: function (zoom, bounds, overlays, names, hideouts) {
      view.overlays = overlays;
      view.names = names;
      view.hideouts = hideouts;
      syncView();
      return window.dash_clientside.no_update;
    },
    viewState: function (name) {  // what wx.map.detail holds for a layer (tests): the key it wants and has
      var st = geo[name];
      return st ? {want: st.want, have: st.have, fetches: st.fetches, answers: st.answers, resent: st.resent}
        : null;
    },
    /* Fly to an incident and open its popup (used when a list row is picked). Resolves true when opened.
     * A flight stopped by a move the page made itself is flown again (up to three times): dash-leaflet's viewport
     * tracking sends the map's zoom and centre to Dash on each moveend (and once when the map is ready) and, when
     * those props come back, sets the map to them if it is elsewhere — a flight begun in that window (a desk opened
     * on an incident while the map was still settling, on a busy machine) was cut short at the district's zoom.
     * A flight the user stops (drag, wheel, touch, key) is left stopped. */
    focusIncident: function (mapId, incidentId, lat, lon, zoom) {
      var m = maps[mapId || "map"];
      if (!m) { return Promise.resolve(false); }
      var target = zoom || 18, flights = 0, userMoved = false, token = {};
      var box = m.getContainer(), USER = "mousedown wheel touchstart keydown";
      m._wxFocus = token;  // a later pick supersedes this one: its flights are not flown again
      function onUser() { userMoved = true; }
      L.DomEvent.on(box, USER, onUser);
      return new Promise(function (resolve) {
        function openIt() {
          var found = null;
          m.eachLayer(function (l) {
            if (!found && l.feature && l.feature.properties && l.feature.properties.id === incidentId && l.openPopup) {
              found = l;
            }
          });
          if (found) { found.openPopup(); }
          resolve(!!found);
        }
        function arrived() {
          if (Math.abs(m.getZoom() - target) > 0.5) { return false; }
          return m.latLngToContainerPoint([lat, lon]).distanceTo(m.getSize().divideBy(2)) < 40;
        }
        function superseded() {  // a later pick took over: this one ends here, unopened
          if (m._wxFocus === token) { return false; }
          L.DomEvent.off(box, USER, onUser);
          resolve(false);
          return true;
        }
        function fly() {
          if (flights && superseded()) { return; }
          flights += 1;
          m.once("moveend", function () {
            if (superseded()) { return; }
            if (!arrived() && !userMoved && flights < 3) { setTimeout(fly, 50); return; }
            L.DomEvent.off(box, USER, onUser);
            setTimeout(openIt, 350);
          });
          m.flyTo([lat, lon], target, {duration: 0.8});
        }
        fly();
      });
    },
    districtStyle: function (feature, context) {
      var h = hide(context), dark = h.dark;
      if (h.layer && feature.properties._wxs) { drawnStamp[h.layer] = feature.properties._wxs; }
      return {color: dark ? "#7fd3ff" : "#c0392b", weight: 3, fill: false, opacity: 0.95,
              className: "wx-layer-district"};
    },
    unitStyle: function (feature, context) {
      var h = hide(context);
      if (h.layer) {
        styledWith[h.layer] = context.hideout;
        if (feature.properties._wxs) { drawnStamp[h.layer] = feature.properties._wxs; }
      }
      var code = feature.properties.code;
      var fillColor = choroplethColor(h, code);
      var sel = selectedIn(h, context && context.map);
      var selected = !!sel && sel === code;
      return {
        color: selected ? "#ffd400" : (h.stroke || "#34495e"),
        weight: selected ? 4 : (h.weight || 1),
        opacity: h.opacity === undefined ? 0.9 : h.opacity,
        fill: true,
        fillColor: fillColor || h.fillColor || "#3498db",
        fillOpacity: fillColor ? (h.fillOpacity === undefined ? 0.6 : h.fillOpacity) : (h.emptyFillOpacity || 0.04),
        dashArray: h.dashArray || null,
        className: "wx-unit wx-layer-" + (h.layer || "unit")
      };
    },
    unitTooltip: function (feature, layer, context) {
      var h = hide(context);
      var p = feature.properties;
      // the text is made when the tooltip opens (a hover), not for each of the ~600 polygons as the map draws
      function text() {
        var lang = h.lang || "zh";
        var lines = ["<b>" + esc(nameOf(p, "name", lang)) + "</b> <span class='wx-code'>" + esc(p.code) + "</span>"];
        if (p.zone_name) { lines.push(esc(label(h, "zone", "片区")) + ": " + esc(nameOf(p, "zone_name", lang))); }
        if (p.town_name) { lines.push(esc(label(h, "town", "镇街")) + ": " + esc(nameOf(p, "town_name", lang))); }
        var v = h.values && h.values[p.code];
        if (v !== undefined && v !== null && h.measureLabel) {
          lines.push(esc(h.measureLabel) + ": " + esc(h.format === "pct" ? (v * 100).toFixed(1) + "%" : v));
        }
        return lines.join("<br>");
      }
      // and the tooltip itself is bound on the polygon's first hover or tap: binding one gives the path its
      // listeners (hover, move, tap, focus) as it is drawn: some 14 % of drawing the ~600 polygons
      function bind(e) {
        layer.off("mouseover click", bind);
        layer.bindTooltip(text, {sticky: true, className: "wx-tooltip"});
        layer.openTooltip(e && e.latlng);
      }
      layer.on("mouseover click", bind);
    },
    hazardPoint: function (feature, latlng, context) {
      var p = feature.properties;
      var colors = {1: "#27ae60", 2: "#f1c40f", 3: "#e67e22", 4: "#c0392b"};
      var glyph = {hazchem: "危", gas_station: "油", sanheyi: "三", construction: "工"}[p.kind] || "!";
      var icon = L.divIcon({
        className: "wx-hazard wx-hazard-" + esc(p.kind) + " wx-risk-" + esc(p.risk),
        html: "<span style='background:" + (colors[p.risk] || "#888") + "'>" + glyph + "</span>",
        iconSize: [20, 20], iconAnchor: [10, 10]
      });
      return L.marker(latlng, {icon: icon, title: p.name});
    },
    hazardPopup: function (feature, layer, context) {
      var h = hide(context);
      var p = feature.properties;
      var lang = h.lang || "zh";
      var kinds = h.kinds || {};
      var html = "<div class='wx-popup'><b>" + esc(p.name) + "</b><br>" +
        esc(kinds[p.kind] || p.kind) + " · " + esc(label(h, "risk", "风险等级")) + " " + esc(p.risk) + "<br>" +
        esc(nameOf(p, "zone_name", lang) || p.zone_code) + " · " + esc(nameOf(p, "town_name", lang) || p.town_code) +
        "</div>";
      layer.bindPopup(html);
    }
  };

  var SEVERITY_COLORS = {1: "#2e86de", 2: "#f1c40f", 3: "#e67e22", 4: "#c0392b"};

  function fmtTime(iso, lang) {
    if (!iso) { return ""; }
    var d = new Date(iso);
    if (isNaN(d.getTime())) { return esc(iso); }
    return d.toLocaleString(lang === "en" ? "en-GB" : "zh-CN", {timeZone: "Asia/Shanghai", hour12: false});
  }

  function incidentHtml(h, inc) {
    var lang = h.lang || "zh";
    var cats = h.categories || {};
    var sts = h.statuses || {};
    var L_ = function (k, d) { return esc(label(h, k, d)); };
    var cat = cats[inc.category] || {};
    var rows = [
      "<div class='wx-popup wx-incident-popup' data-code='" + esc(inc.code) + "'>",
      "<div class='wx-popup-title'><b>" + esc(inc.code) + "</b> <span class='wx-sev wx-sev-" + esc(inc.severity) + "'>" +
        L_("severity", "等级") + " " + esc(inc.severity) + "</span></div>",
      "<div>" + L_("category", "类别") + ": " + esc(cat.name || (lang === "en" ? inc.category_name_en : inc.category_name) || inc.category) +
        (inc.subcategory ? " / " + esc(nameOf(inc, "subcategory_name", lang) || inc.subcategory) : "") + "</div>",
      "<div>" + L_("state", "状态") + ": <b>" + esc(sts[inc.status] || inc.status) + "</b></div>",
      "<div class='wx-desc'>" + esc(inc.description) + "</div>",
      "<div>" + L_("place", "位置") + ": " + esc(inc.address || "") + " · " + esc(inc.grid_name || inc.grid_code) +
        " · " + esc(nameOf(inc, "zone_name", lang) || inc.zone_code) + " · " +
        esc(nameOf(inc, "town_name", lang) || inc.town_code) + "</div>",
      "<div>" + L_("reported", "上报") + ": " + fmtTime(inc.reported_at, lang) + " · " + L_("due", "时限") + ": " +
        fmtTime(inc.due_at, lang) + "</div>"
    ];
    if (inc.events && inc.events.length) {
      rows.push("<ol class='wx-timeline'>");
      inc.events.forEach(function (e) {
        rows.push("<li><span class='wx-when'>" + fmtTime(e.at, lang) + "</span> " + esc(sts[e.to_status] || e.to_status) +
          " · " + esc(e.actor) + (e.department ? " · " + esc(nameOf(e, "department_name", lang) || e.department) : "") +
          (e.note ? "<div class='wx-note'>" + esc(e.note) + "</div>" : "") + "</li>");
      });
      rows.push("</ol>");
    }
    rows.push("<a class='wx-detail-link' href='/incidents?incident=" + encodeURIComponent(inc.id) +
      (lang === "en" ? "&lang=en" : "") + "'>" + L_("detail", "详情") + " →</a></div>");
    return rows.join("");
  }

  Object.assign(map, {
    incidentHtml: incidentHtml,
    incidentPoint: function (feature, latlng, context) {
      var h = hide(context);
      var p = feature.properties;
      // compact properties from /api/map/incidents.json: k category, s severity, t state, od hours overdue, hz in ring;
      // al (set by wx.live, assets/live.js): an active alert — else the hideout's alerts list of the first paint
      var cat = (h.categories || {})[p.k] || {};
      var age = p.od > 72 ? 3 : (p.od > 24 ? 2 : (p.od > 0 ? 1 : 0));
      var cls = "wx-inc wx-sev-" + p.s + (age ? " wx-overdue wx-age-" + age : "") + (p.hz ? " wx-in-ring" : "") +
        (p.t === "reported" ? " wx-new" : "") + ((p.al === undefined ? (h.alerts && h.alerts.indexOf(p.id) >= 0) : p.al) ? " wx-pulse" : "");
      var icon = L.divIcon({
        className: cls,
        html: "<span style='background:" + (SEVERITY_COLORS[p.s] || "#888") + "'>" + esc(cat.glyph || "事") + "</span>" +
          (p.hz ? "<i class='wx-ring-flag'>危</i>" : ""),
        iconSize: [22, 22], iconAnchor: [11, 11], popupAnchor: [0, -10]
      });
      return L.marker(latlng, {icon: icon, title: (cat.name || p.k) + " #" + p.id, riseOnHover: true,
                               zIndexOffset: p.s * 100});
    },
    /* A multi-county map's count of the incidents in one square cell of the view (/api/map/incident_cells.json,
     * properties n: count, s: [count of severity 1..4], ms: the highest, hi: of severity 3 and 4, b: the cell's
     * [west, south, east, north]) at the count-weighted centre: a bubble growing with the count, its ring the
     * severities' shares (4 first, clockwise), the count inside. */
    incidentCell: function (feature, latlng, context) {
      hide(context);
      var p = feature.properties;
      var n = p.n || 0, s = p.s || [0, 0, 0, 0], at = 0, stops = [];
      [3, 2, 1, 0].forEach(function (i) {
        if (!s[i] || !n) { return; }
        var to = at + 360 * s[i] / n;
        stops.push(SEVERITY_COLORS[i + 1] + " " + at.toFixed(1) + "deg " + to.toFixed(1) + "deg");
        at = to;
      });
      var size = Math.round(30 + 8 * Math.log(Math.max(1, n)) / Math.LN10);  // 30 px for one, 54 for a thousand
      var text = n >= 10000 ? Math.round(n / 1000) + "k" : (n >= 1000 ? (n / 1000).toFixed(1) + "k" : String(n));
      var icon = L.divIcon({
        className: "wx-cell wx-cell-sev-" + esc(p.ms),
        html: "<span class='wx-cell-ring' data-n='" + esc(n) + "' style='background:conic-gradient(" +
          esc(stops.join(",") || "#888 0deg 360deg") + ")'><b>" + esc(text) + "</b></span>",
        iconSize: [size, size], iconAnchor: [size / 2, size / 2]
      });
      return L.marker(latlng, {icon: icon, riseOnHover: true, zIndexOffset: 1000 + Math.min(n, 9999),
                               keyboard: true, title: ""});
    },
    /* the cell's tooltip (bound on the first hover, as a unit's) and its click: the map zooms in to the cell */
    incidentCellTooltip: function (feature, layer, context) {
      var h = hide(context);
      var p = feature.properties;
      function text() {
        var s = p.s || [];
        var lines = ["<b>" + esc(label(h, "count", "案事件数")) + ": " + esc(p.n) + "</b>"];
        [4, 3, 2, 1].forEach(function (sev) {
          if (s[sev - 1]) {
            lines.push("<span class='wx-sev wx-sev-" + sev + "'>" + esc(label(h, "severity", "等级")) + " " + sev +
              "</span>: " + esc(s[sev - 1]));
          }
        });
        lines.push("<i>" + esc(label(h, "zoom_in", "点击放大查看")) + "</i>");
        return lines.join("<br>");
      }
      function bind(e) {
        layer.off("mouseover", bind);
        layer.bindTooltip(text, {className: "wx-tooltip", direction: "top"});
        layer.openTooltip(e && e.latlng);
      }
      layer.on("mouseover", bind);
      layer.on("click", function () {
        var m = layer._map, b = p.b;
        if (!m || !b) { return; }
        m.fitBounds([[b[1], b[0]], [b[3], b[2]]], {padding: [24, 24]});
      });
    },
    incidentPopup: function (feature, layer, context) {
      var h = hide(context);
      var p = feature.properties;
      if (p.cluster || p.id === undefined || p.id === null) { return; }  // a cluster bubble zooms in, no popup
      layer.bindPopup("<div class='wx-popup'>#" + esc(p.id) + " …</div>", {maxWidth: 360, minWidth: 260});
      // A live refresh rebuilds the layer and closes any open popup: reopen it on the rebuilt marker, with what it
      // showed, and without autoPan. Leaflet pans a popup that does not fit into view when it opens and each time
      // its content is set: the refreshed details (fetched again below) would pull the map back to the popup
      // each time anything changed, taking away the view the officer moved to (and stopping a pan in progress).
      if (openPopup.id === p.id && Date.now() - openPopup.closedAt < 3000) {
        layer.once("add", function () {
          setTimeout(function () {
            if (!layer._map) { return; }
            var popup = layer.getPopup();
            popup.options.autoPan = false;
            if (openPopup.html) { popup.setContent(openPopup.html); }
            layer.openPopup();
          }, 0);
        });
      }
      layer.on("popupclose", function (ev) {
        ev.popup.options.autoPan = true;  // opened again by the user: brought into view
        if (openPopup.id === p.id) { openPopup.closedAt = Date.now(); }
      });
      layer.on("popupopen", function (ev) {
        if (openPopup.id !== p.id) { openPopup.html = null; }
        openPopup.id = p.id;
        openPopup.closedAt = Infinity;
        fetch("/api/v1/incidents/" + encodeURIComponent(p.id), {credentials: "same-origin"})
          .then(function (r) { if (!r.ok) { throw new Error(r.status); } return r.json(); })
          .then(function (inc) {
            var html = incidentHtml(h, inc.incident || inc);
            if (openPopup.id === p.id) { openPopup.html = html; }
            ev.popup.setContent(html);
          })
          .catch(function (err) { ev.popup.setContent("<div class='wx-popup'>#" + esc(p.id) + ": " + esc(err) + "</div>"); });
      });
    },
    // open incidents in a ring: the live count the stream pushed into the hideout (counts by site code), else the
    // count the layer was loaded with
    ringStyle: function (feature, context) {
      var p = feature.properties;
      var h = hide(context);
      if (h.counts) { ringCounts = h.counts; }
      var n = ringCount(p);
      return {color: p.kind === "hazchem" ? "#c0392b" : "#e67e22", weight: 2, dashArray: "4 4",
              fill: true, fillOpacity: n ? 0.18 : 0.06,
              className: "wx-ring wx-ring-" + p.kind + " wx-ring-site-" + String(p.code).replace(/[^A-Za-z0-9_-]/g, "")};
    },
    ringPopup: function (feature, layer, context) {
      var h = hide(context);
      var p = feature.properties;
      var kinds = h.kinds || {};
      layer.bindPopup(function () {  // written when opened: the count as it is then
        return "<div class='wx-popup wx-ring-popup'><b>" + esc(p.name) + "</b><br>" + esc(kinds[p.kind] || p.kind) +
          " · " + esc(label(h, "ring", "安全半径")) + " " + esc(p.ring_m) + " m<br>" +
          esc(label(h, "open_in_ring", "半径内未结案事件")) + ": <b class='wx-ring-count'>" + esc(ringCount(p)) + "</b></div>";
      });
    },
    hotspotStyle: function (feature, context) {
      var h = hide(context);
      var p = feature.properties;
      var t = p.n === undefined ? Math.min(1, p.count / (h.max || 1)) : p.n;
      var colors = h.colors || ["#fff5eb", "#fdbe85", "#fd8d3c", "#e6550d", "#a63603"];
      var c = colors[Math.min(colors.length - 1, Math.floor(t * colors.length))];
      return {color: p.hot ? "#7f0000" : "#ffffff", weight: p.hot ? 2.5 : 0.5, fillColor: c,
              fillOpacity: 0.25 + 0.5 * t, className: "wx-hex" + (p.hot ? " wx-hex-hot" : "")};
    },
    hotspotTooltip: function (feature, layer, context) {
      var h = hide(context);
      var p = feature.properties;
      layer.bindTooltip(esc(label(h, "count", "案事件数")) + ": " + esc(p.count) + "<br>Gi* z = " + esc(p.z) +
        (p.hot ? "<br><b>" + esc(label(h, "hot", "显著热点")) + " " + esc(p.confidence) + "%</b>" : ""), {sticky: true});
    }
  });
  window.wx = Object.assign({}, window.wx || {}, {map: map});

  /* Leaflet's layer control (1.9) rebuilds its whole list on every layer added to it or to the map, and an expanded
   * one (collapsed=False) then measures itself: a forced page layout each time. While a map mounts, that is a dozen
   * rebuilds and layouts in one task (11 layers added, then each GeoJSON layer's data). Here the rebuild and the
   * measuring wait for the end of the task (a microtask), once per control: what is drawn is the same, done once. */
  function batchLayerControl(Layers) {
    if (!Layers || Layers._wxBatched) { return; }
    Layers._wxBatched = true;
    var update = Layers._update, expandIfNotCollapsed = Layers._expandIfNotCollapsed;
    function flushLater(ctl) {
      if (ctl._wxFlush) { return; }
      ctl._wxFlush = true;
      Promise.resolve().then(function () {  // the list first, then its measuring
        var u = ctl._wxUpdate, e = ctl._wxExpand;
        ctl._wxFlush = ctl._wxUpdate = ctl._wxExpand = false;
        if (u) { update.call(ctl); }
        if (e) { expandIfNotCollapsed.call(ctl); }
      });
    }
    Layers._update = function () { this._wxUpdate = true; flushLater(this); return this; };
    Layers._expandIfNotCollapsed = function () { this._wxExpand = true; flushLater(this); return this; };
  }
  batchLayerControl(window.L && L.Control && L.Control.Layers && L.Control.Layers.prototype);

  /* A multi-county map's unit layers get a new collection on every move (wx.map.detail: the units of the new box), and
   * dash-leaflet (1.1.3) draws it as `clearLayers()` then `addData(collection)`: every polygon of the layer made,
   * projected and put in the page again, though a pan or a zoom by one keeps most of them (a zoom-12 view's ~900
   * grids, a zoom-11 view's ~250 zones). For a layer whose collections come from wx.map.detail (features stamped
   * ``_wxs`` by sentGeometry), that pair is done as a difference: the polygons of units whose geometry is the same
   * in the new collection (same code, same coordinates: an outline cut to another box is another geometry) stay as
   * drawn, those no longer there are removed, only the new ones are made. The styling and the feature binding are
   * the layer's own (a restyle — a hideout change, which gives the layer new style functions — is still drawn
   * whole); a clear not followed by an add in the same task is done at the end of it. Other layers (the incident
   * markers, their clusters) are drawn as before. */
  var geoKeys = new WeakMap();
  function geoKey(f) {  // the unit's code and a fingerprint of its geometry, or null (drawn anew each time)
    if (!f || typeof f !== "object") { return null; }
    var k = geoKeys.get(f);
    if (k !== undefined) { return k; }
    var p = f.properties || {}, g = f.geometry, n = 0, s = 0;
    if (p.code === undefined || p.code === null || !g || !g.coordinates) {
      k = null;
    } else {
      // each ring's length and about ten of its vertices (every vertex: 4 ms a move of a zoom-12 view's grids): an
      // outline cut to another box has other lengths and other vertices where it was cut
      (function walk(c) {
        if (!c.length) { return; }
        if (typeof c[0] === "number") { s += c[0] * 7 + c[1] * 3; return; }
        if (typeof c[0][0] !== "number") { for (var i = 0; i < c.length; i++) { walk(c[i]); } return; }
        n += c.length;
        for (var j = 0, step = Math.max(1, c.length >> 3); j < c.length; j += step) {
          s += c[j][0] * (j % 7 + 1) + c[j][1] * (j % 11 + 1);
        }
        s += c[c.length - 1][0] + 2 * c[c.length - 1][1];
      })(g.coordinates);
      k = p.code + "|" + g.type + "|" + n + "|" + s;
    }
    geoKeys.set(f, k);
    return k;
  }
  function stampedCollection(features) { return features.length > 0 && !!(features[0].properties || {})._wxs; }

  function diffGeoJSON(GeoJSON) {
    if (!GeoJSON || GeoJSON._wxDiff) { return; }
    GeoJSON._wxDiff = true;
    var baseAdd = GeoJSON.addData, baseClear = GeoJSON.clearLayers;
    GeoJSON.clearLayers = function () {
      if (!this._wxKeyed) { return baseClear.call(this); }
      if (!this._wxPending) {
        this._wxPending = true;
        var self = this;
        Promise.resolve().then(function () {  // no addData came in this task: cleared as asked
          if (self._wxPending) { self._wxPending = false; baseClear.call(self); }
        });
      }
      return this;
    };
    GeoJSON.addData = function (geojson) {
      var features = geojson && (Array.isArray(geojson) ? geojson : geojson.features);
      if (!features) { return baseAdd.call(this, geojson); }  // one feature (the collection's own loop)
      var pending = this._wxPending, o = this.options;
      this._wxPending = false;
      var keyed = features.length ? stampedCollection(features) : !!this._wxKeyed;
      if (!pending || !keyed || o.filter || o.style !== this._wxStyle || o.onEachFeature !== this._wxEach) {
        if (pending) { baseClear.call(this); }
        this._wxKeyed = keyed;
        this._wxStyle = o.style;
        this._wxEach = o.onEachFeature;
        return baseAdd.call(this, geojson);
      }
      var have = new Map(), gone = [], kept = [], fresh = [];
      this.eachLayer(function (l) {
        var k = geoKey(l.feature);
        if (k === null || have.has(k)) { gone.push(l); } else { have.set(k, l); }
      });
      features.forEach(function (f) {
        var k = geoKey(f), l = k === null ? undefined : have.get(k);
        if (l) { have.delete(k); l.feature = f; kept.push(l); } else { fresh.push(f); }
      });
      have.forEach(function (l) { gone.push(l); });
      for (var i = 0; i < gone.length; i++) { this.removeLayer(gone[i]); }
      // the style functions record which collection a layer drew (drawnStamp): a kept polygon is styled again when no
      // new one will be
      if (!fresh.length && kept.length) { this.resetStyle(kept[0]); }
      this._wxKept = kept.length;
      return fresh.length ? baseAdd.call(this, fresh) : this;
    };
  }
  diffGeoJSON(window.L && L.GeoJSON && L.GeoJSON.prototype);
})();
