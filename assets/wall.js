/* The wall display (大屏 /wall) in the browser: clock, tour (of a county's zones, a city's counties or a province's
 * cities: dashboard/services/wall.py tour_level), connection watch — window.wx.wall.
 *
 * Called from Dash clientside callbacks (dashboard/callbacks/wall.py); Dash's dcc.Interval components are the only
 * timers (one per purpose), so nothing here schedules work of its own, adds listeners or grows: the tour state
 * keeps at most SEEN_MAX alert ids, and Dash's undo history and error log (which would otherwise grow for as
 * long as the page is open) are trimmed on each heartbeat.
 * Text reaches the page only as component children (escaped by React), never as HTML. */
(function () {
  "use strict";
  var SEEN_MAX = 100;
  var TOUR_MAX_ZOOM = 14;
  var ALERT_ZOOM = 15;
  var formatters = {};

  function noUpdate() { return window.dash_clientside.no_update; }

  function el(type, props, children) {
    var p = props || {};
    if (children !== undefined) { p.children = children; }
    return {type: type, namespace: "dash_html_components", props: p};
  }

  function fmt(lang) {
    if (!formatters[lang]) {
      var loc = lang === "en" ? "en-GB" : "zh-CN";
      formatters[lang] = {
        time: new Intl.DateTimeFormat(loc, {timeZone: "Asia/Shanghai", hour: "2-digit", minute: "2-digit",
                                            second: "2-digit", hourCycle: "h23"}),
        date: new Intl.DateTimeFormat(loc, {timeZone: "Asia/Shanghai", year: "numeric", month: "long",
                                            day: "numeric", weekday: "long"})
      };
    }
    return formatters[lang];
  }

  function leaflet() {
    var m = window.wx && window.wx.map && window.wx.map.mapFor && window.wx.map.mapFor("map");
    return m && m.getContainer && document.body.contains(m.getContainer()) ? m : null;
  }

  /* The first time the map is there, fit the district to the panel (its initial bounds were applied before
   * the wall's grid gave the panel its size). The flag lives on the Leaflet map, so it goes with it. */
  function fitOnce(bounds) {
    var m = leaflet();
    if (!m || !bounds || m._wxWallFitted) { return; }
    m._wxWallFitted = true;
    try {
      m.invalidateSize(false);
      m.fitBounds(bounds, {padding: [12, 12], animate: false});
    } catch (e) { /* see flyToBounds */ }
  }

  function flyToBounds(bounds) {
    var m = leaflet();
    if (!m || !bounds) { return; }
    m._wxWallFitted = true;
    try {
      m.stop();
      m.flyToBounds(bounds, {padding: [24, 24], maxZoom: TOUR_MAX_ZOOM, duration: 1.6});
    } catch (e) { /* a map being replaced: the next step flies again */ }
  }

  function flyTo(lat, lon, zoom) {
    var m = leaflet();
    if (!m || lat === undefined || lon === undefined) { return; }
    m._wxWallFitted = true;
    try {
      m.stop();
      m.flyTo([lat, lon], zoom, {duration: 1.6});
    } catch (e) { /* see flyToBounds */ }
  }

  var TOUR_LAYERS = ["zones", "counties", "cities"];  // the tour callback's hideout outputs (callbacks/wall.py)

  function selectIn(code) {
    return new window.dash_clientside.Patch().assign(["selected"], code || null).build();
  }

  /* The hideout patches of TOUR_LAYERS: `code` outlined on `layer`; `zone` (an alert's zone, or null to clear
   * one outlined before) on the zones when the tour is of another layer; the others untouched. */
  function select(layer, code, zone) {
    var nu = noUpdate();
    return TOUR_LAYERS.map(function (name) {
      if (name === layer) { return selectIn(code); }
      if (name === "zones" && zone !== undefined) { return selectIn(zone); }
      return nu;
    });
  }

  /* a card's figures: labels ([[kpi, label], …]) with their values (texts, from `offset` on) */
  function cards(labels, values, offset) {
    return (labels || []).map(function (k, i) {
      return el("Div", {className: "wx-wall-card wx-wall-card-" + k[0]}, [
        el("Div", {className: "wx-wall-card-label"}, k[1]),
        el("Div", {className: "wx-wall-card-value"}, (values || [])[offset + i])
      ]);
    });
  }

  function fact(label, value) {
    return el("Span", {className: "wx-wall-fact"}, [el("Small", {}, label), el("B", {}, String(value))]);
  }

  function unitCard(u, T, step, total, code, zones) {
    var today = (zones.cards && zones.cards.today) || [], month = (zones.cards && zones.cards.month) || [];
    var values = (zones.values || {})[code || "district"] || [];
    // a county's or city's card (and the root's on a city's or province's wall) counts its towns and zones first
    var facts = (u.counts || []).map(function (c) { return fact(T[c[0]] || c[0], c[1]); }).concat([
      fact(T.grids, u.grids),
      fact(T.registered_units, (u.registered_units || 0).toLocaleString()),
      fact(T.hazards, u.hazards + (u.major_hazards ? " / " + u.major_hazards : ""))
    ]);
    // a unit's rank: its place among the ranked units of the tour's rank order
    var at = code ? ((zones.order && zones.order.rank) || []).indexOf(code) : -1;
    var rank = at >= 0 && at < (zones.ranked || 0) ? at + 1 : null;
    if (rank) { facts.push(el("Span", {className: "wx-wall-fact wx-wall-rank-badge"},
      T.rank_of.replace("{r}", rank).replace("{n}", total))); }
    return el("Div", {className: "wx-wall-unit", "data-zone": code || "district"}, [
      el("H3", {className: "wx-wall-panel-title"}, [T.tour, el("Small", {}, step)]),
      el("Div", {className: "wx-wall-zone-name"}, u.name),
      el("Div", {className: "wx-wall-zone-sub"}, !code ? T.tour_district
        : u.station !== undefined ? (u.town + " · " + u.station) : (u.parent || "")),
      el("Div", {className: "wx-wall-facts"}, facts),
      el("H4", {}, T.today), el("Div", {className: "wx-wall-cards"}, cards(today, values, 0)),
      el("H4", {}, T.month), el("Div", {className: "wx-wall-cards"}, cards(month, values, today.length))
    ]);
  }

  function alertCard(a, T) {
    return el("Div", {className: "wx-wall-alert-box", "data-code": a.code}, [
      el("Div", {className: "wx-wall-alert-head"}, [
        el("B", {}, T.alert_title),
        el("Span", {className: "wx-wall-alert-reason"}, a.reason === "ring" ? T.alert_ring : T.alert_high)
      ]),
      el("Div", {className: "wx-wall-alert-code"}, a.code + " · " + a.time),
      el("Div", {className: "wx-wall-alert-cat"}, [
        el("Span", {className: "wx-wall-sev wx-wall-sev-" + a.severity}, a.severity_name), " " + a.category
      ]),
      el("Div", {className: "wx-wall-alert-place"}, a.zone + " · " + a.town),
      el("Div", {className: "wx-wall-alert-desc"}, a.description)
    ]);
  }


  /* The KPI header from its values (dashboard/ui/wall.py, header_data): a row per period, a cell per figure. */
  function header(h) {
    if (!h || !h.rows) { return []; }
    return h.rows.map(function (row) {
      var per = row[0], values = (h.values || {})[per] || [];
      var cells = [el("Div", {className: "wx-wall-kpi-period"}, row[1])];
      row[2].forEach(function (k, j) {
        cells.push(el("Div", {className: "wx-wall-kpi wx-wall-kpi-" + k[0], "data-kpi": per + "." + k[0]}, [
          el("Div", {className: "wx-wall-kpi-label"}, k[1]),
          el("Div", {className: "wx-wall-kpi-value"}, values[j])
        ]));
      });
      return el("Div", {className: "wx-wall-kpi-row wx-wall-kpi-row-" + per}, cells);
    });
  }

  /* The ticker from its values (ui/wall.py, ticker_data; a report: TICK_FIELDS by position). */
  function ticker(d) {
    if (!d || !d.items || !d.items.length) {
      return [el("Li", {className: "wx-wall-tick wx-wall-tick-empty"}, (d && d.empty) || "")];
    }
    var fresh = d.fresh || [];
    return d.items.map(function (t) {
      var sev = (d.sev || {})[String(t[2])] || ["", "#888"];
      return el("Li", {key: String(t[0]), className: "wx-wall-tick wx-sev-" + t[2] +
                       (fresh.indexOf(t[0]) >= 0 ? " wx-tick-new" : ""), "data-code": t[1]}, [
        el("Div", {className: "wx-wall-tick-when"}, [el("Span", {className: "wx-wall-tick-time"}, t[4]),
                                                     el("Span", {className: "wx-wall-tick-date"}, t[5])]),
        el("Span", {className: "wx-wall-tick-glyph", style: {background: sev[1]}}, t[6]),
        el("Div", {className: "wx-wall-tick-body"}, [
          el("Div", {className: "wx-wall-tick-head"}, [el("B", {}, t[7]),
                                                       el("Span", {className: "wx-wall-tick-place"}, t[8])]),
          el("Div", {className: "wx-wall-tick-desc"}, t[9])
        ]),
        el("Div", {className: "wx-wall-tick-side"}, [
          el("Span", {className: "wx-wall-sev wx-wall-sev-" + t[2]}, sev[0]),
          el("Span", {className: "wx-wall-state wx-wall-state-" + t[3]}, t[10])
        ])
      ]);
    });
  }

  /* The ranking from its values (ui/wall.py, ranking_data): the best and the last zones (counties, cities). */
  function ranking(r) {
    if (!r || !r.rows_top) { return []; }
    function rows(list, first) {  // [unit code, name, second line, bar width, text]; positions from `first` on
      return list.map(function (x, i) {
        return el("Li", {className: "wx-wall-rank-row", "data-zone": x[0]}, [
          el("Span", {className: "wx-wall-rank-pos"}, String(first + i)),
          el("Span", {className: "wx-wall-rank-name"}, [x[1], el("Small", {}, x[2])]),
          el("Span", {className: "wx-wall-rank-bar"}, el("I", {style: {width: x[3]}})),
          el("Span", {className: "wx-wall-rank-value"}, x[4])
        ]);
      });
    }
    return [
      el("H3", {className: "wx-wall-panel-title"}, [r.title, el("Small", {}, r.sub)]),
      el("Div", {className: "wx-wall-rank-cols"}, [
        el("Div", {className: "wx-wall-rank-top"}, [el("H4", {}, r.top),
                                                    el("Ol", {className: "wx-wall-rank-list"}, rows(r.rows_top, 1))]),
        // a single county or city ranked: no second column
        r.rows_bottom.length ? el("Div", {className: "wx-wall-rank-bottom"}, [
          el("H4", {}, r.bottom),
          el("Ol", {className: "wx-wall-rank-list"}, rows(r.rows_bottom, r.total - r.rows_bottom.length + 1))])
          : el("Div", {className: "wx-wall-rank-bottom"})
      ])
    ];
  }

  var wall = {
    SEEN_MAX: SEEN_MAX,
    header: header,
    ticker: ticker,
    ranking: ranking,

    /* [time, date] in Asia/Shanghai, whatever the screen's own time zone (and the district fitted once). */
    clock: function (n, cfg) {
      fitOnce(cfg && cfg.district_bounds);
      var f = fmt((cfg && cfg.lang) || "zh");
      var d = new Date();
      return [f.time.format(d), f.date.format(d)];
    },

    /* One tour step (tick) or an alert (new id in the alert list): returns [tour state, unit card, alert card,
     * alert card class, hideout patches of the zones, counties and cities]. Step -1 is the district. The toured
     * units are `zones.units` on the layer `zones.layer` (a county's zones, a city's counties, a province's
     * cities). */
    tour: function (n, alerts, zones, st, cfg) {
      var nu = noUpdate();
      var ctx = window.dash_clientside.callback_context || {};
      var trig = (ctx.triggered && ctx.triggered.length && ctx.triggered[0].prop_id) || "";
      var T = (cfg && cfg.text) || {};
      var now = Date.now();
      var first = !st;
      zones = zones || {};
      alerts = alerts || [];
      var order = (zones.order && zones.order[cfg.order]) || [];
      var layer = zones.layer || "zones";
      var idle = [nu, nu, nu, nu].concat(TOUR_LAYERS.map(function () { return nu; }));
      st = first ? {i: -1, until: 0, seen: null, alert: null} : Object.assign({}, st);

      if (st.seen === null) {
        st.seen = alerts.map(function (a) { return a.id; }).slice(0, SEEN_MAX);  // the backlog only pulses
      } else {
        var fresh = alerts.filter(function (a) { return st.seen.indexOf(a.id) < 0; });
        if (fresh.length) {
          var a = fresh[0];
          st.seen = st.seen.concat(fresh.map(function (x) { return x.id; })).slice(-SEEN_MAX);
          st.alert = a.id;
          st.until = now + (cfg.pause_ms || 20000);
          flyTo(a.lat, a.lon, ALERT_ZOOM);
          var outline = layer === "zones" ? select(layer, a.zone_code) : select(null, null, a.zone_code);
          return [st, nu, alertCard(a, T), "wx-wall-alert wx-wall-alert-on"].concat(outline);
        }
        if (!first && trig.indexOf("wall-tour-tick") !== 0) { return idle; }
      }
      if (!first && now < st.until) { return idle; }  // still showing an alert
      var alertClass = st.alert ? "wx-wall-alert" : nu;
      // after an alert on a tour of counties or cities, its zone's outline goes
      var clearZone = st.alert && layer !== "zones" ? null : undefined;
      st.alert = null;
      st.until = 0;
      if (!first) { st.i = (st.i + 1 >= order.length) ? -1 : st.i + 1; }
      var code = st.i >= 0 ? order[st.i] : null;
      var unit = code ? (zones.units || {})[code] : zones.district;
      if (code && !unit) { st.i = -1; code = null; unit = zones.district; }
      if (!unit) { return [st, nu, nu, alertClass].concat(TOUR_LAYERS.map(function () { return nu; })); }
      var step = code ? (st.i + 1) + " / " + order.length : (T.tour_district || "");
      if (!first) { flyToBounds(unit.bounds); }
      return [st, unitCard(unit, T, step, zones.ranked || order.length, code, zones), alertClass === nu ? nu : [],
              alertClass].concat(select(layer, code, clearZone));
    },

    /* The connection sign from the live stream's state (wx.live, assets/live.js; no request): [connection state,
     * sign class, KPI state (reset when the stream is back, so the KPIs are rebuilt)]. The stream reconnects by
     * itself and catches up from its last sequence. */
    heartbeat: function (n, st) {
      // Dash keeps every tick in its undo history and every failed request in its error log: cut both back
      if (window.wx.app) { window.wx.app.trimDashState(); }
      st = st || {ok: true, fails: 0};
      var live = window.wx.live ? window.wx.live.state() : {connected: true, everConnected: true};
      var ok = live.connected || !live.everConnected;  // not yet opened at all: nothing to report
      var nu = noUpdate();
      if (ok && st.ok) { return [nu, nu, nu]; }
      if (ok) { return [{ok: true, fails: 0}, "wx-wall-conn", null]; }  // back: refresh the KPIs
      var away = [{ok: false, fails: Math.min((st.fails || 0) + 1, 1000000)}, "wx-wall-conn wx-wall-conn-on"];
      return away.concat([nu]);
    }
  };

  window.wx = window.wx || {};
  window.wx.wall = wall;
})();
