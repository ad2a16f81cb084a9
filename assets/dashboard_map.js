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
  function hide(context) { return (context && context.hideout) || {}; }
  function nameOf(props, key, lang) {
    var en = props[key + "_en"];
    return lang === "en" && en ? en : props[key];
  }
  function label(h, key, fallback) { return (h.labels && h.labels[key]) || fallback; }

  function choroplethColor(h, code) {
    var values = h.values || {};
    var v = values[code];
    if (v === undefined || v === null || !h.breaks || !h.colors) { return null; }
    var i = 0;
    while (i < h.breaks.length && v > h.breaks[i]) { i++; }
    return h.colors[Math.min(i, h.colors.length - 1)];
  }

  var map = {
    esc: esc,
    districtStyle: function (feature, context) {
      var dark = hide(context).dark;
      return {color: dark ? "#7fd3ff" : "#c0392b", weight: 3, fill: false, opacity: 0.95,
              className: "wx-layer-district"};
    },
    unitStyle: function (feature, context) {
      var h = hide(context);
      var code = feature.properties.code;
      var fillColor = choroplethColor(h, code);
      var selected = h.selected && h.selected === code;
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
      var lang = h.lang || "zh";
      var lines = ["<b>" + esc(nameOf(p, "name", lang)) + "</b> <span class='wx-code'>" + esc(p.code) + "</span>"];
      if (p.zone_name) { lines.push(esc(label(h, "zone", "片区")) + ": " + esc(nameOf(p, "zone_name", lang))); }
      if (p.town_name) { lines.push(esc(label(h, "town", "镇街")) + ": " + esc(nameOf(p, "town_name", lang))); }
      var v = h.values && h.values[p.code];
      if (v !== undefined && v !== null && h.measureLabel) {
        lines.push(esc(h.measureLabel) + ": " + esc(h.format === "pct" ? (v * 100).toFixed(1) + "%" : v));
      }
      layer.bindTooltip(lines.join("<br>"), {sticky: true, className: "wx-tooltip"});
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
  window.wx = Object.assign({}, window.wx || {}, {map: map});
})();
