/* Tocsin's charts, drawn with the vendored uPlot from data the page carries in json_script
   elements. A static file, not inline scripts: the Content-Security-Policy allows no inline
   script (docs/security-secrets.md). Charts are drawn on load and again when htmx swaps in
   new data for them (the dashboard's host tile, an SLO's figures). */
(function () {
  "use strict";
  var plots = [];

  function textColour() {
    return getComputedStyle(document.body).color || "#444";
  }

  function plot(el, opts, data, minWidth) {
    if (el._tocsinPlot) el._tocsinPlot.destroy();
    opts.width = Math.max(el.clientWidth, minWidth);
    var made = new uPlot(opts, data, el);
    el._tocsinPlot = made;
    plots.push({ el: el, plot: made, minWidth: minWidth, height: opts.height });
  }

  function line(label, stroke, width, extra) {
    var s = { label: label, stroke: stroke, width: width };
    Object.keys(extra || {}).forEach(function (k) { s[k] = extra[k]; });
    return s;
  }

  // One entry per json_script id: how its data becomes charts.
  var drawers = {
    "backup-chart": function (d) {
      var text = textColour();
      var specs = {
        size: [[d.size, "read", "#1f5fbf"], [d.stored, "stored", "#1b7a3a"]],
        seconds: [[d.seconds, "seconds", "#a15c00"]],
        rate: [[d.rate, "MB/s", "#1f5fbf"]],
        dedup: [[d.dedup, "% already stored", "#1b7a3a"]],
      };
      Object.keys(specs).forEach(function (name) {
        var el = document.querySelector('[data-chart="' + name + '"]');
        if (!el) return;
        var series = [{}], data = [d.t];
        specs[name].forEach(function (s) {
          series.push(line(s[1], s[2], 2, { points: { show: d.t.length < 60 } }));
          data.push(s[0]);
        });
        plot(el, { height: 200, axes: [{ stroke: text }, { stroke: text }], series: series }, data, 240);
      });
    },
    "database-charts": function (charts) {
      var text = textColour();
      charts.forEach(function (c) {
        var el = document.querySelector('[data-chart="' + c.metric + '"]');
        if (!el || !c.t.length) return;
        plot(el, { height: 180, axes: [{ stroke: text }, { stroke: text }],
                   series: [{}, line(c.title, "#1f5fbf", 2)] }, [c.t, c.v], 240);
      });
    },
    "host-charts": function (charts) {
      var text = textColour();
      charts.forEach(function (c) {
        var el = document.querySelector('[data-host-chart="' + c.metric + '"]');
        if (!el || !c.t.length) return;
        plot(el, { height: 140, axes: [{ stroke: text }, { stroke: text }], scales: { y: { range: [0, 100] } },
                   series: [{}, line(c.title, "#1f5fbf", 2)] }, [c.t, c.v], 200);
      });
    },
    "slo-burn-down": function (d) {
      var el = document.querySelector('[data-chart="burn-down"]');
      if (!el) return;
      if (!d.t.length) {
        if (el._tocsinPlot) { el._tocsinPlot.destroy(); el._tocsinPlot = null; }
        return;
      }
      var text = textColour();
      plot(el, {
        height: 220,
        axes: [{ stroke: text }, { stroke: text, label: "% left" }],
        series: [{}, line("budget left", "#1f5fbf", 2, { fill: "rgba(31,95,191,.08)" })],
      }, [d.t, d.budget], 240);
    },
    "check-latency": function (data) {
      var text = textColour();
      ["hourly", "daily"].forEach(function (name) {
        var el = document.querySelector('[data-chart="' + name + '"]');
        var s = data[name];
        if (!el || !s || !s.t.length) return;
        plot(el, {
          height: 220,
          axes: [{ stroke: text }, { stroke: text, label: "ms" }],
          series: [
            {},
            line("p50", "#1b7a3a", 2, { spanGaps: false }),
            line("p95", "#a15c00", 2, { spanGaps: false }),
            line("p99", "#c4231a", 1, { dash: [4, 3], spanGaps: false }),
          ],
        }, [s.t, s.p50, s.p95, s.p99], 240);
      });
    },
  };

  // Draw the charts whose data lies in ``scope`` (the document, or what htmx just swapped in).
  function draw(scope) {
    if (typeof uPlot === "undefined") return;
    Object.keys(drawers).forEach(function (id) {
      var source = document.getElementById(id);
      if (!source || !(scope === document || scope.contains(source))) return;
      drawers[id](JSON.parse(source.textContent));
    });
  }

  window.addEventListener("resize", function () {
    plots = plots.filter(function (p) { return p.el.isConnected && p.el._tocsinPlot === p.plot; });
    plots.forEach(function (p) {
      p.plot.setSize({ width: Math.max(p.el.clientWidth, p.minWidth), height: p.height });
    });
  });
  document.addEventListener("htmx:afterSettle", function (evt) {
    if (evt.target && evt.target.nodeType === 1) draw(evt.target);
  });
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { draw(document); });
  } else {
    draw(document);
  }
})();
