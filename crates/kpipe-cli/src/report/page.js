// Draws every chart of the report from the data blob: one Chart.js chart per canvas that names
// a chart (`data-chart`), with as many datasets as its `data-series` says. Values are numbers;
// labels are text Chart.js draws on the canvas, never put into the page's HTML.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("report-data").textContent);
  var locale = "en-US";
  var cache = {};

  function numberFormat(options) {
    var key = JSON.stringify(options);
    if (!cache[key]) {
      cache[key] = new Intl.NumberFormat(locale, options);
    }
    return cache[key];
  }

  // A value for reading, as the tables show it; `compact` for axis ticks.
  function format(spec, value, compact) {
    if (value === null || value === undefined || !isFinite(value)) {
      return "no value";
    }
    switch (spec.unit) {
      case "ratio":
        return numberFormat({ style: "percent", maximumFractionDigits: compact ? 1 : 2 }).format(value);
      case "currency":
        return (compact
          ? numberFormat({ notation: "compact", maximumFractionDigits: 1 }).format(value)
          : numberFormat({ minimumFractionDigits: 2, maximumFractionDigits: 2 }).format(value)) +
          (spec.currency ? " " + spec.currency : "");
      case "seconds":
        return numberFormat({ maximumFractionDigits: 1 }).format(value) + " s";
      case "score":
        return numberFormat({ maximumFractionDigits: 1 }).format(value);
      default:
        return compact
          ? numberFormat({ notation: "compact", maximumFractionDigits: 1 }).format(value)
          : numberFormat({ maximumFractionDigits: 2 }).format(value);
    }
  }

  function translucent(hex, alpha) {
    var n = parseInt(hex.slice(1), 16);
    return "rgba(" + ((n >> 16) & 255) + "," + ((n >> 8) & 255) + "," + (n & 255) + "," + alpha + ")";
  }

  function config(spec) {
    var horizontal = spec.kind === "horizontal_bar";
    var line = spec.kind === "line";
    var datasets = spec.datasets.map(function (s) {
      return line
        ? {
            label: s.label,
            data: s.data,
            borderColor: s.color,
            backgroundColor: translucent(s.color, 0.15),
            pointBackgroundColor: s.color,
            pointRadius: 3,
            borderWidth: 2,
            tension: 0.25,
            spanGaps: false
          }
        : {
            label: s.label,
            data: s.data,
            backgroundColor: translucent(s.color, 0.85),
            borderColor: s.color,
            borderWidth: 1,
            borderRadius: 3,
            maxBarThickness: 42
          };
    });
    var valueAxis = {
      type: spec.log ? "logarithmic" : "linear",
      beginAtZero: !spec.log,
      grid: { color: "#eef2f7" },
      ticks: {
        maxTicksLimit: 6,
        maxRotation: 0,
        callback: function (value) {
          return format(spec, Number(value), true);
        }
      }
    };
    if (spec.log) {
      // Bars start at the power of ten below the smallest value, so that every bar shows.
      var smallest = Infinity;
      spec.datasets.forEach(function (s) {
        s.data.forEach(function (v) {
          if (v !== null && v > 0 && v < smallest) smallest = v;
        });
      });
      if (isFinite(smallest)) {
        valueAxis.min = Math.pow(10, Math.floor(Math.log10(smallest)));
      }
    }
    var categoryAxis = { grid: { display: false }, ticks: { autoSkip: true, maxRotation: 0 } };
    return {
      type: line ? "line" : "bar",
      data: { labels: spec.labels, datasets: datasets },
      options: {
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        indexAxis: horizontal ? "y" : "x",
        interaction: { mode: "nearest", intersect: false, axis: horizontal ? "y" : "x" },
        scales: horizontal ? { x: valueAxis, y: categoryAxis } : { x: categoryAxis, y: valueAxis },
        plugins: {
          legend: {
            display: spec.datasets.length > 1,
            position: "bottom",
            labels: { boxWidth: 12, boxHeight: 12, padding: 10 }
          },
          tooltip: {
            callbacks: {
              label: function (item) {
                var raw = horizontal ? item.parsed.x : item.parsed.y;
                return item.dataset.label + ": " + format(spec, raw, false);
              }
            }
          }
        }
      }
    };
  }

  Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
  Chart.defaults.font.size = 12;
  Chart.defaults.color = "#475569";

  var canvases = document.querySelectorAll("canvas[data-chart]");
  var drawn = 0;
  canvases.forEach(function (canvas) {
    var spec = data.charts[canvas.getAttribute("data-chart")];
    if (!spec) {
      throw new Error("no data for chart " + canvas.getAttribute("data-chart"));
    }
    new Chart(canvas, config(spec));
    drawn += 1;
  });
  // The number of charts drawn, for whoever waits for the page (a browser test, a printer).
  document.documentElement.setAttribute("data-charts-drawn", String(drawn));
})();
