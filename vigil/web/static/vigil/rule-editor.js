// The rule editor: shows the fields the chosen kind and scope use, and runs
// the unsaved rule over the last days of history ("Backtest"): a sentence,
// a chart of the most affected series with the threshold line and the
// firing intervals shaded, and the list of firings.
(function () {
  "use strict";

  const COLORS = ["#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#4b5563"];
  // Fields each kind of rule uses (others are hidden, still submitted).
  const KIND_FIELDS = {
    threshold: ["metric", "matchers", "aggregation", "window_seconds", "per_core", "operator", "threshold", "recovery_threshold"],
    rate: ["metric", "matchers", "aggregation", "window_seconds", "per_core", "operator", "threshold", "recovery_threshold"],
    forecast: ["metric", "matchers", "window_seconds", "operator", "threshold", "recovery_threshold", "forecast_seconds"],
    no_data: ["metric", "matchers", "no_data_seconds"],
    host_down: [],
  };
  const OPTIONAL = ["metric", "matchers", "aggregation", "window_seconds", "per_core", "operator", "threshold",
    "recovery_threshold", "forecast_seconds", "no_data_seconds"];
  const SCOPED = ["location", "tag", "group", "server"];

  const form = document.getElementById("rule-form");
  const section = document.getElementById("backtest");
  const summary = document.getElementById("backtest-summary");
  const chartBox = document.getElementById("backtest-chart");
  const chartBody = chartBox.querySelector(".chart-body");
  const chartTitle = document.getElementById("backtest-chart-title");
  const episodes = document.getElementById("backtest-episodes");
  const button = document.getElementById("backtest-button");
  let plot = null;

  function field(name) {
    return form.querySelector("[data-field=" + name + "]");
  }

  function showFields() {
    const kind = form.elements.kind.value;
    const scope = form.elements.scope.value;
    const used = KIND_FIELDS[kind] || OPTIONAL;
    OPTIONAL.forEach(function (name) {
      const el = field(name);
      if (el) el.hidden = !used.includes(name) && !el.classList.contains("has-error");
    });
    SCOPED.forEach(function (name) {
      const el = field(name);
      if (el) el.hidden = name !== scope && !el.classList.contains("has-error");
    });
  }

  function seriesKey(server, labels) {
    const pairs = Object.keys(labels || {}).sort().map(k => k + "=" + labels[k]);
    return server + "|" + pairs.join(",");
  }

  function seriesName(server, labels) {
    const pairs = Object.keys(labels || {}).sort().map(k => k + "=" + labels[k]);
    return pairs.length ? server + " " + pairs.join(",") : server;
  }

  function when(ts) {
    return ts == null ? "still firing" : new Date(ts * 1000).toLocaleString();
  }

  function cell(row, text) {
    const td = document.createElement("td");
    td.textContent = text;
    row.append(td);
  }

  function showErrors(errors) {
    const lines = [];
    Object.keys(errors).forEach(function (name) {
      errors[name].forEach(function (e) {
        lines.push((name === "__all__" ? "" : name + ": ") + e.message);
      });
    });
    summary.textContent = "The rule cannot run yet: " + lines.join(" ");
    summary.classList.add("error");
  }

  function fillEpisodes(list) {
    const body = episodes.querySelector("tbody");
    body.textContent = "";
    // Newest first; the answer lists them oldest first.
    list.slice(-100).reverse().forEach(function (e) {
      const row = document.createElement("tr");
      cell(row, e.server);
      cell(row, Object.keys(e.labels || {}).sort().map(k => k + "=" + e.labels[k]).join(", "));
      cell(row, when(e.fired_at));
      cell(row, e.resolved_at == null ? "still firing" : when(e.resolved_at));
      cell(row, e.value == null ? "–" : Number(e.value).toPrecision(4));
      body.append(row);
    });
    episodes.hidden = list.length === 0;
  }

  // Firing intervals, shaded behind the lines in their series' colour.
  function shade(spans) {
    return function (u) {
      const ctx = u.ctx;
      const top = u.bbox.top;
      const height = u.bbox.height;
      const xmax = u.scales.x.max;
      ctx.save();
      spans.forEach(function (s) {
        const x0 = u.valToPos(s.from, "x", true);
        const x1 = u.valToPos(s.to == null ? xmax : s.to, "x", true);
        ctx.fillStyle = s.color + "26";
        ctx.fillRect(x0, top, Math.max(2, x1 - x0), height);
      });
      ctx.restore();
    };
  }

  function drawChart(data) {
    if (plot) { plot.destroy(); plot = null; }
    chartBody.textContent = "";
    const charts = (data.charts || []).filter(c => c.points && c.points.length);
    chartTitle.textContent = data.rule.metric + (charts.length ? " — the most affected series" : "");
    if (charts.length === 0) {
      chartBody.textContent = "No data for this metric in the last " + data.days + " days.";
      chartBox.dataset.drawn = "true";
      return;
    }
    const tables = charts.map(c => [c.points.map(p => p[0]), c.points.map(p => p[1])]);
    const joined = uPlot.join(tables);
    // The x axis spans the whole backtested range, so that missing history
    // shows as such and the limits are drawn from edge to edge.
    const last = joined[0][joined[0].length - 1];
    const end = Math.max(last, Math.floor(Date.now() / 1000));
    const start = end - data.days * 86400;
    if (joined[0][0] > start) joined.forEach((col, i) => col.unshift(i === 0 ? start : null));
    if (last < end) joined.forEach((col, i) => col.push(i === 0 ? end : null));
    const series = [{}];
    const colorOf = {};
    charts.forEach(function (c, i) {
      const color = COLORS[i % COLORS.length];
      colorOf[seriesKey(c.server, c.labels)] = color;
      series.push({ label: seriesName(c.server, c.labels), stroke: color, width: 1.5, spanGaps: false });
    });
    const limits = [];
    // The chart shows the metric itself: a rate's or a per-core limit is on
    // another scale, so only a plain threshold or forecast limit is drawn.
    const sameScale = (data.rule.kind === "threshold" || data.rule.kind === "forecast") && !data.rule.per_core;
    if (sameScale && data.rule.threshold != null) {
      limits.push({ label: "threshold " + data.rule.operator + " " + data.rule.threshold, value: data.rule.threshold, dash: [6, 4] });
    }
    if (sameScale && data.rule.recovery_threshold != null) {
      limits.push({ label: "recovery " + data.rule.recovery_threshold, value: data.rule.recovery_threshold, dash: [2, 4] });
    }
    limits.forEach(function (l) {
      joined.push(joined[0].map(() => l.value));
      series.push({ label: l.label, stroke: "#111827", width: 1, dash: l.dash, points: { show: false } });
    });
    const spans = (data.episodes || [])
      .filter(e => colorOf[seriesKey(e.server, e.labels)])
      .map(e => ({ from: e.fired_at, to: e.resolved_at, color: colorOf[seriesKey(e.server, e.labels)] }));
    const values = charts.flatMap(c => c.points.map(p => p[1])).filter(v => v != null);
    limits.forEach(l => values.push(l.value));
    const lo = values.reduce((a, b) => Math.min(a, b), 0);
    const hi = values.reduce((a, b) => Math.max(a, b), lo);
    const opts = {
      width: Math.max(300, chartBody.clientWidth),
      height: 280,
      scales: {
        // The whole backtested range, so that missing history shows as such.
        x: { time: true, range: () => [start, end] },
        y: { range: () => [lo, hi + (hi - lo) * 0.08 || 1] },
      },
      axes: [{}, { size: 60 }],
      series: series,
      hooks: { drawClear: [shade(spans)] },
    };
    plot = new uPlot(opts, joined, chartBody);
    chartBox.dataset.drawn = "true";
  }

  async function runBacktest() {
    button.disabled = true;
    section.hidden = false;
    delete chartBox.dataset.drawn;
    summary.classList.remove("error");
    summary.textContent = "Running this rule over the history…";
    try {
      const response = await fetch(form.dataset.backtestUrl, {
        method: "POST",
        body: new FormData(form),
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      });
      const data = await response.json();
      if (!response.ok) {
        showErrors(data.errors || { __all__: [{ message: "the server answered " + response.status }] });
        return;
      }
      summary.textContent = data.summary + " Computed in " + Number(data.seconds).toFixed(1) + " s.";
      drawChart(data);
      fillEpisodes(data.episodes || []);
    } catch (err) {
      summary.textContent = "The backtest failed: " + err.message;
      summary.classList.add("error");
    } finally {
      button.disabled = false;
    }
  }

  form.elements.kind.addEventListener("change", showFields);
  form.elements.scope.addEventListener("change", showFields);
  button.addEventListener("click", runBacktest);
  showFields();
})();
