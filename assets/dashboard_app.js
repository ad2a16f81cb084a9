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
