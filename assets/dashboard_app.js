/* Long-running pages (duty desk, overview on a second screen) must not grow without bound: the Dash renderer
 * keeps an undo history entry for every interval tick and every failed request. Trim both once a minute.
 * (The wall page trims from its own heartbeat too: assets/wall.js.) */
(function () {
  "use strict";
  var HISTORY_KEEP = 20, ERRORS_KEEP = 20;
  function trim(list, keep) { if (list && list.length > keep) { list.splice(0, list.length - keep); } }
  function trimDashState() {
    var stores = window.dash_stores || [];
    for (var i = 0; i < stores.length; i++) {
      var state = stores[i].getState && stores[i].getState();
      if (!state) { continue; }
      if (state.history) { trim(state.history.past, HISTORY_KEEP); trim(state.history.future, HISTORY_KEEP); }
      if (state.error) { trim(state.error.frontEnd, ERRORS_KEEP); trim(state.error.backEnd, ERRORS_KEEP); }
    }
  }
  window.wx = Object.assign({}, window.wx || {}, {app: {trimDashState: trimDashState}});
  setInterval(trimDashState, 60000);
})();
