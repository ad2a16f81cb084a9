/* Duty desk (值班处置台) and alert banner — browser side, namespace window.wx.duty (also reachable by Dash as
 * dash_clientside.wx_duty). Links the incident list (dash-ag-grid) and the map (window.wx.map), applies live list
 * changes by row id, keeps the URL in step with the filters and the open incident, counts down the due time and
 * announces new alerts. No HTML is built here: text goes through Dash components or ag-grid text cells. */
(function () {
  "use strict";
  var NO = function () { return window.dash_clientside.no_update; };
  var GRID = "duty-grid";
  var MAP = "map";
  var state = {suppress: null, flyTimer: null, rowTimer: null};  // per page: which row selection we made ourselves

  function gridApi() {
    try { return window.dash_ag_grid && window.dash_ag_grid.getApi(GRID); } catch (e) { return null; }
  }

  function retry(timerKey, fn, attempts, delay) {
    clearTimeout(state[timerKey]);
    if (fn() || attempts <= 0) { return; }
    state[timerKey] = setTimeout(function () { retry(timerKey, fn, attempts - 1, delay); }, delay);
  }

  /* Select (and scroll to) the list row of an incident, marking the selection as ours so it does not fly. The row
   * may not be there yet (the grid is still loading, is being re-created, or a live change brings it): it is tried
   * again on the grid of the moment until it is there, for up to 5 minutes, or until another row is wished for
   * (the next call replaces the pending try). */
  function selectRow(rid) {
    retry("rowTimer", function () {
      var api = gridApi();
      var node = api && api.getRowNode(rid);
      if (!node) { return false; }
      if (!node.isSelected()) { state.suppress = rid; node.setSelected(true, true); }
      api.ensureNodeVisible(node, "middle");
      return true;
    }, 1200, 250);
  }

  function flyTo(sel) {
    if (sel.lat === undefined || sel.lat === null) { return; }
    retry("flyTimer", function () {
      if (!window.wx.map || !window.wx.map.mapFor(MAP)) { return false; }
      window.wx.map.focusIncident(MAP, sel.id, sel.lat, sel.lon);
      return true;
    }, 300, 200);  // up to a minute: the map may still be loading on a busy machine
  }

  function fill(tpl, values) {
    return String(tpl).replace(/\{(\w+)\}/g, function (_, k) { return values[k] === undefined ? "" : values[k]; });
  }

  function duration(ms, units) {
    var min = Math.floor(ms / 60000), d = Math.floor(min / 1440), h = Math.floor((min % 1440) / 60), m = min % 60;
    if (d > 0) { return fill(units.dh, {d: d, h: h}); }
    if (h > 0) { return fill(units.hm, {h: h, m: m}); }
    return fill(units.m, {m: m});
  }

  function play() {
    try {
      var audio = new Audio("/assets/alert.wav");
      var p = audio.play();
      if (p && p.catch) { p.catch(function () { /* autoplay refused until the user interacts */ }); }
    } catch (e) { /* no audio device */ }
  }

  var duty = {
    gridApi: gridApi,
    rowCount: function () { var api = gridApi(); return api ? api.getDisplayedRowCount() : null; },
    selectRow: selectRow,

    /* live list changes: update rows that are there, add new ones, remove the ones that left the filter */
    applyDelta: function (delta, query) {
      if (!delta || delta.q !== query) { return NO(); }
      return window.dash_ag_grid.getApiAsync(GRID).then(function (api) {
        var add = [], update = [], remove = [];
        (delta.upsert || []).forEach(function (r) { (api.getRowNode(r.rid) ? update : add).push(r); });
        (delta.remove || []).forEach(function (rid) { var n = api.getRowNode(rid); if (n) { remove.push(n.data); } });
        if (add.length || update.length || remove.length) {
          api.applyTransaction({add: add, update: update, remove: remove});
        }
        return {seq: delta.seq, changed: add.length + update.length + remove.length, at: Date.now()};
      });
    },

    // The count. With the list's own column filters on, say that they narrow the list only: the map and the
    // exports follow the filter panel (the same query as the API).
    countRows: function (rowData, applied, filterModel, conf) {
      var txt = (conf && conf.txt) || {};
      return new Promise(function (resolve) {
        setTimeout(function () {
          var api = gridApi();
          var n = api ? api.getDisplayedRowCount() : (rowData || []).length;
          var all = 0;
          if (api) { api.forEachNode(function () { all += 1; }); } else { all = (rowData || []).length; }
          var columnFiltered = filterModel && Object.keys(filterModel).length > 0 && n !== all;
          resolve(fill(columnFiltered ? (txt.colfiltered || "{n} / {all}") : (txt.rows || "{n}"), {n: n, all: all}));
        }, 80);
      });
    },

    rowPicked: function (rows, selected) {
      if (!rows || !rows.length) { return NO(); }
      var r = rows[0];
      if (state.suppress === r.rid) { state.suppress = null; return NO(); }
      if (selected && String(selected.id) === r.rid) { return NO(); }
      return {id: r.id, lat: r.lat, lon: r.lon, src: "grid"};
    },

    // triggered by the click count: clicking the marker clicked before (after picking another row) still counts
    markerClicked: function (nClicks, clickData, selected) {
      var p = clickData && clickData.properties;
      if (!p || p.cluster || p.id === undefined || p.id === null) { return NO(); }
      if (selected && selected.id === p.id) { return NO(); }
      selectRow(String(p.id));
      return {id: p.id, src: "map"};
    },

    alertLocate: function (clicks, store) {
      var ctx = window.dash_clientside.callback_context;
      var trig = ctx.triggered_id;
      if (!trig || !ctx.triggered.length || !ctx.triggered[0].value) { return NO(); }
      var item = ((store && store.items) || []).filter(function (a) { return a.incident.id === trig.id; })[0];
      var inc = item ? item.incident : {};
      return {id: trig.id, lat: inc.lat, lon: inc.lon, src: "feed", n: Date.now()};
    },

    locate: function (n, due) {
      if (!n || !due) { return NO(); }
      return {id: due.id, lat: due.lat, lon: due.lon, src: "locate", n: Date.now()};
    },

    /* fly the map to the picked incident and open its popup; select its row when the pick did not come from it */
    focus: function (selected) {
      if (!selected || !selected.id) { return NO(); }
      if (selected.src !== "map") { flyTo(selected); }
      if (selected.src !== "grid" && selected.src !== "map") { selectRow(String(selected.id)); }
      return selected.id;
    },

    /* filters and the open incident in the address bar (replaceState: reload and bookmarks keep them) */
    syncUrl: function (search, selected) {
      var params = new URLSearchParams(search || "");
      if (selected && selected.id) { params.set("incident", selected.id); }
      var qs = params.toString();
      window.history.replaceState(window.history.state, "", window.location.pathname + (qs ? "?" + qs : ""));
      var link = document.getElementById("lang-switch");
      if (link) {
        var other = new URLSearchParams(qs);
        if (other.get("lang") === "en") { other.delete("lang"); } else { other.set("lang", "en"); }
        var oq = other.toString();
        link.setAttribute("href", window.location.pathname + (oq ? "?" + oq : ""));
      }
      return qs;
    },

    timeLeft: function (n, due) {
      if (!due || !due.due) { return ["", "wx-timeleft"]; }
      var txt = due.txt || {};
      var ms = Date.parse(due.due) - Date.now();
      if (isNaN(ms)) { return ["", "wx-timeleft"]; }
      var late = ms < 0;
      var text = (late ? txt.overdue_by : txt.left) + " " + duration(Math.abs(ms), txt.units || {dh: "{d} d {h} h", hm: "{h} h {m} min", m: "{m} min"});
      return [text, "wx-timeleft" + (late ? " wx-late" : (ms < 2 * 3600 * 1000 ? " wx-soon" : ""))];
    },

    /* alerts: a sound for alerts that arrived while the page is open (not for those already waiting) */
    announce: function (store, seen, soundOn) {
      var ids = ((store && store.items) || []).map(function (a) { return a.id; });
      if (seen === null || seen === undefined) { return ids; }
      var fresh = ids.filter(function (id) { return seen.indexOf(id) < 0; });
      if (fresh.length && soundOn) { play(); }
      return ids;
    },

    /* marker pulse, belt and braces: the layer's hideout.alerts makes rebuilt markers pulse, but dash-leaflet drops a
     * hideout change that arrives while the layer is refetching its data, so the visible markers are also synced
     * here on every alert tick (markers carry "… #<id>" as their title, see wx.map.incidentPoint). */
    pulseMarkers: function (n, store) {
      var ids = {};
      ((store && store.items) || []).forEach(function (a) { ids[a.incident.id] = true; });
      var icons = document.querySelectorAll(".leaflet-marker-icon.wx-inc");
      for (var i = 0; i < icons.length; i++) {
        var m = /#(\d+)$/.exec(icons[i].title || "");
        var on = !!(m && ids[m[1]]);
        if (icons[i].classList.contains("wx-pulse") !== on) { icons[i].classList.toggle("wx-pulse", on); }
      }
      return NO();
    },

    toggleSound: function (n, on, conf) {
      if (!n) { return [NO(), NO()]; }
      var txt = (conf && conf.txt) || {};
      var next = !on;
      if (next) { play(); }
      return [next, next ? txt.sound_on : txt.sound_off];
    }
  };

  window.wx = window.wx || {};
  window.wx.duty = duty;
  window.dash_clientside = window.dash_clientside || {};
  window.dash_clientside.wx_duty = duty;
})();
