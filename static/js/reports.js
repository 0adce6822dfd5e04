// The Reports page's two charts, drawn with the vendored uPlot from the page's JSON.
(function () {
  "use strict";

  function draw() {
    var source = document.getElementById("report-data");
    if (!source || typeof uPlot === "undefined") return;
    var data = JSON.parse(source.textContent);
    // One point per week: an index scale with the weeks' Mondays as labels (no daily ticks).
    var xs = data.weeks.map(function (day, i) { return i; });
    var label = function (i) { return data.weeks[Math.round(i)] || ""; };
    var style = getComputedStyle(document.body);
    var text = style.color || "#444";
    var every = Math.max(1, Math.ceil(data.weeks.length / 10));
    var axes = [
      {
        stroke: text,
        splits: function () { return xs.filter(function (i) { return i % every === 0; }); },
        values: function (u, ticks) { return ticks.map(function (i) { return label(i).slice(5); }); },
      },
      { stroke: text },
    ];
    var charts = [];

    function make(el, series, values) {
      var width = Math.max(el.clientWidth, 280);
      var opts = {
        width: width,
        height: 220,
        scales: { x: { time: false, range: function () { return [-0.5, xs.length - 0.5]; } } },
        axes: axes,
        series: [{ label: "Week of", value: function (u, i) { return i == null ? "--" : label(i); } }].concat(series),
      };
      charts.push({ el: el, plot: new uPlot(opts, [xs].concat(values), el) });
    }

    var bars = uPlot.paths && uPlot.paths.bars ? uPlot.paths.bars({ size: [0.6, 40] }) : undefined;
    var counts = document.querySelector('[data-chart="counts"]');
    if (counts) {
      make(counts, [
        { label: "Incidents", stroke: "#3b82f6", fill: "rgba(59, 130, 246, 0.35)", paths: bars },
        { label: "Missed targets", stroke: "#dc2626", width: 2 },
      ], [data.incidents, data.breaches]);
    }
    var times = document.querySelector('[data-chart="times"]');
    if (times) {
      make(times, [
        { label: "MTTA (min)", stroke: "#d97706", width: 2, spanGaps: true },
        { label: "MTTR (min)", stroke: "#059669", width: 2, spanGaps: true },
      ], [data.mtta, data.mttr]);
    }
    window.addEventListener("resize", function () {
      charts.forEach(function (c) { c.plot.setSize({ width: Math.max(c.el.clientWidth, 280), height: 220 }); });
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", draw);
  else draw();
})();
