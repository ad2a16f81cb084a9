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
