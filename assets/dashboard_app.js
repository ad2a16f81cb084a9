/* Long-running pages (duty desk, overview on a second screen) must not grow without bound: the Dash renderer
 * keeps an undo history entry for every interval tick and every failed request. Trim both once a minute; the
 * wall also calls wx.app.trimDashState from its heartbeat (assets/wall.js). */
(function () {
  "use strict";
  var HISTORY_KEEP = 20, ERRORS_KEEP = 20;
  function keepLast(list, keep) { if (list && list.length > keep) { list.splice(0, list.length - keep); } }
  function keepFirst(list, keep) { if (list && list.length > keep) { list.splice(keep, list.length - keep); } }
  // history.past is oldest first, the error lists newest first: each keeps its newest entries
  function trimDashState() {
    var stores = window.dash_stores || [];
    for (var i = 0; i < stores.length; i++) {
      var state = stores[i].getState && stores[i].getState();
      if (!state) { continue; }
      if (state.history) { keepLast(state.history.past, HISTORY_KEEP); keepLast(state.history.future, HISTORY_KEEP); }
      if (state.error) { keepFirst(state.error.frontEnd, ERRORS_KEEP); keepFirst(state.error.backEnd, ERRORS_KEEP); }
    }
  }
  window.wx = Object.assign({}, window.wx || {}, {app: {trimDashState: trimDashState}});
  setInterval(trimDashState, 60000);
})();

/* Reads of the app's own data (GET /api/…, e.g. the map layers' GeoJSON urls, which dash-leaflet fetches without
 * handling a failure) ride out a server restart: a request that fails to reach the server is tried again with
 * backoff for up to a minute, so a wall or desk keeps its last content and picks up where it was instead of
 * throwing "Failed to fetch". HTTP answers (any status) are passed on as they are. */
(function () {
  "use strict";
  if (!window.fetch || window.fetch.wxRetry) { return; }
  var plain = window.fetch.bind(window);
  var DELAYS = [250, 500, 1000, 2000, 4000, 8000, 15000, 30000];  // ≈ 61 s in all
  function retriable(input, init) {
    var method = ((init && init.method) || (input && input.method) || "GET").toUpperCase();
    if (method !== "GET") { return false; }
    var url;
    try { url = new URL(typeof input === "string" ? input : input.url, window.location.href); } catch (e) { return false; }
    return url.origin === window.location.origin && url.pathname.indexOf("/api/") === 0;
  }
  function aborted(init) { return init && init.signal && init.signal.aborted; }
  var wrapped = function (input, init) {
    if (!retriable(input, init)) { return plain(input, init); }
    var attempt = 0;
    function go() {
      return plain(input, init).catch(function (err) {
        if (aborted(init) || attempt >= DELAYS.length) { throw err; }
        var wait = DELAYS[attempt++];
        return new Promise(function (resolve) { setTimeout(resolve, wait); }).then(go);
      });
    }
    return go();
  };
  wrapped.wxRetry = true;
  window.fetch = wrapped;
})();

/* A page's HTML carries only the component libraries and own assets that page uses (dashboard/pages/head.py); the
 * other libraries are named in <meta name="wx-deferred-libraries">. Should a client-side route (dcc.Link) bring a
 * page that draws one of them into this document, its components are these stand-ins: they load the page afresh,
 * and the server's HTML for that page has the library. Once per address and 30 s, so a page that still lacks it cannot loop. */
(function () {
  "use strict";
  var meta = document.querySelector('meta[name="wx-deferred-libraries"]');
  var names = meta ? (meta.getAttribute("content") || "").split(/\s+/).filter(Boolean) : [];
  function reloadOnce() {
    var key = "wx-reload-for-library:" + window.location.pathname + window.location.search;
    var last = 0;
    try { last = Number(window.sessionStorage.getItem(key)) || 0; } catch (e) { /* storage off: reload anyway */ }
    if (Date.now() - last > 30000) {
      try { window.sessionStorage.setItem(key, String(Date.now())); } catch (e) { /* idem */ }
      window.location.reload();
    } else if (window.console) {
      window.console.error("component library missing on " + window.location.pathname);
    }
  }
  function StandIn() { reloadOnce(); return null; }
  names.forEach(function (name) {
    if (window[name] || typeof Proxy !== "function") { return; }
    // Dash resolves window[namespace][type]: component types are capitalised, anything else is not a component
    window[name] = new Proxy({}, {get: function (target, key) {
      return typeof key === "string" && /^[A-Z]/.test(key) ? StandIn : undefined;
    }});
  });
  // Likewise the pages whose own assets (html-to-image, duty.js, wall.js …) this document lacks: a client-side
  // route there (dcc.Link, back/forward) loads that page afresh. Listening before the renderer does, this runs
  // before its router asks for the page.
  var pagesMeta = document.querySelector('meta[name="wx-reload-pages"]');
  var pages = pagesMeta ? (pagesMeta.getAttribute("content") || "").split(/\s+/).filter(Boolean) : [];
  function routed() { if (pages.indexOf(window.location.pathname) >= 0) { reloadOnce(); } }
  if (pages.length) {
    window.addEventListener("_dashprivate_pushstate", routed);
    window.addEventListener("popstate", routed);
  }
})();

/* wx_ui.Select (dashboard/ui/select.py): a Dash input drawn as the browser's own <select>, for the choice lists on
 * screen at a page's first paint (dcc.Dropdown would fetch and evaluate its lazy chunk before the map paints).
 * Each <option>'s value is String(the option's value); choosing one sets the component's value to the option's
 * value as given (a string or a number). */
(function () {
  "use strict";
  var h = window.React && window.React.createElement;
  if (!h) { return; }
  function Select(props) {
    var options = props.options || [];
    var chosen = "";
    for (var i = 0; i < options.length; i++) {
      if (options[i].value === props.value) { chosen = String(options[i].value); break; }
    }
    var attrs = {
      value: chosen, className: props.className, style: props.style, disabled: props.disabled, title: props.title,
      onChange: function (e) {
        var picked = e.target.value;
        for (var j = 0; j < options.length; j++) {
          if (String(options[j].value) === picked) {
            if (props.setProps) { props.setProps({value: options[j].value}); }
            return;
          }
        }
      }
    };
    if (typeof props.id === "string") { attrs.id = props.id; }
    return h("select", attrs, options.map(function (o) {
      return h("option", {key: String(o.value), value: String(o.value), disabled: o.disabled}, o.label);
    }));
  }
  /* wx_ui.Static (dashboard/ui/static.py): plain elements from a tree — a string, a number, null, a list, or
   * {t: tag, p: props, c: tree} — one Dash component where dash.html makes one per element. */
  function build(node, key) {
    if (node === null || node === undefined || typeof node !== "object") { return node === undefined ? null : node; }
    if (Array.isArray(node)) { return node.map(function (n, i) { return build(n, i); }); }
    var p = Object.assign({}, node.p || {});
    if (key !== undefined) { p.key = key; }
    return node.c === undefined || node.c === null ? h(node.t, p) : h(node.t, p, build(node.c));
  }
  function Static(props) {
    var body = build(props.tree);
    if (props.tag) { return h(props.tag, {id: props.id, className: props.className}, body); }
    return h(window.React.Fragment, null, body);
  }
  window.wx_ui = Object.assign({}, window.wx_ui || {}, {Select: Select, Static: Static});
})();

/* The drill panel's charts (callbacks/drill.py): the figures of a view come in one answer and are drawn one per task,
 * each only while the panel still shows that view. Drawn in one go, seven plotly charts held the main thread for up
 * to a second, and a click meanwhile (the page's first charts arriving just before it) waited for all of them; a
 * view left meanwhile is not drawn at all. */
(function () {
  "use strict";
  var KEYS = ["level", "code", "period", "from", "to"];
  var shown = null, turns = {};
  function same(a, b) {
    return !!a && !!b && KEYS.every(function (k) { return (a[k] || null) === (b[k] || null); });
  }
  var panel = {
    // the view the panel's text shows (the text-shown store, kept here by a clientside callback)
    show: function (state) { shown = state || null; return window.dash_clientside.no_update; },
    hasShown: function () { return shown !== null; },
    // {state, figures: {graph id: figure}} of one group of charts ("charts", "lifecycle"): a newer answer of the
    // group stops the drawing of an older one
    draw: function (group, data) {
      var noUpdate = window.dash_clientside.no_update;
      if (!data || !data.figures) { return noUpdate; }
      var ids = Object.keys(data.figures), turn = turns[group] = (turns[group] || 0) + 1;
      (function next(i) {
        if (i >= ids.length || turns[group] !== turn || !same(shown, data.state)) { return; }
        window.dash_clientside.set_props(ids[i], {figure: data.figures[ids[i]]});
        setTimeout(function () { next(i + 1); }, 0);
      })(0);
      return noUpdate;
    }
  };
  window.wx = Object.assign({}, window.wx || {}, {panel: panel});
})();

/* The language switch (ui/shell.py, #lang-switch) keeps what the page shows now: its href was written with the query
 * the page was served with, and the overview's drill, period and the duty desk's filters change the URL in the
 * browser since (switching to English after a drill to a zone opened the district's overview). Before the link is
 * followed — a click, a middle click, the context menu's "open in new tab" or "copy link" — its href becomes the
 * current URL with the other language. */
(function () {
  "use strict";
  function follow(e) {
    var a = e.target && e.target.closest ? e.target.closest("#lang-switch") : null;
    if (!a) { return; }
    var want = new URL(a.getAttribute("href") || "", window.location.href).searchParams.get("lang");
    var q = new URLSearchParams(window.location.search);
    if (want) { q.set("lang", want); } else { q.delete("lang"); }
    var s = q.toString();
    a.setAttribute("href", window.location.pathname + (s ? "?" + s : "") + window.location.hash);
  }
  ["click", "auxclick", "contextmenu"].forEach(function (type) { document.addEventListener(type, follow, true); });
})();
