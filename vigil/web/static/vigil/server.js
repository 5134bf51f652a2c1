// Live charts of one server: each chart asks /api/v1/query for its metrics
// with max_points equal to its width in pixels, and refreshes while visible.
// Where a point averages several samples (long ranges, rollup tiers), the
// answer's min and max are drawn as a light band behind the line, so that a
// spike hidden by the average stays visible.
(function () {
  "use strict";

  const REFRESH_MS = 10000;
  const CHARTS = [
    { title: "CPU", unit: "%", max: 100, metrics: [{ name: "cpu_usage_percent", label: "cpu" }] },
    {
      title: "Memory", unit: "%", max: 100,
      metrics: [{ name: "memory_used_percent", label: "memory" }, { name: "swap_used_percent", label: "swap" }],
    },
    { title: "File systems used", unit: "%", max: 100, metrics: [{ name: "filesystem_used_percent", by: "mountpoint" }] },
    { title: "Network received", unit: "B/s", metrics: [{ name: "network_receive_bytes_per_second", by: "interface" }] },
    { title: "Network sent", unit: "B/s", metrics: [{ name: "network_transmit_bytes_per_second", by: "interface" }] },
    { title: "Disk read", unit: "B/s", metrics: [{ name: "disk_read_bytes_per_second", by: "device" }] },
    { title: "Disk written", unit: "B/s", metrics: [{ name: "disk_write_bytes_per_second", by: "device" }] },
    {
      title: "Load", unit: "",
      metrics: [{ name: "load1", label: "1 min" }, { name: "load5", label: "5 min" }, { name: "load15", label: "15 min" }],
    },
  ];
  const COLORS = ["#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#4b5563"];

  const root = document.getElementById("charts");
  const server = root.dataset.server;
  const queryUrl = root.dataset.queryUrl;
  const liveStatus = document.getElementById("live-status");
  let rangeSeconds = 3600;
  let timer = null;
  const panels = CHARTS.map(makePanel);

  function makePanel(spec) {
    const el = document.createElement("section");
    el.className = "chart";
    const h = document.createElement("h2");
    h.textContent = spec.title + (spec.unit ? " (" + spec.unit + ")" : "");
    const body = document.createElement("div");
    body.className = "chart-body";
    el.append(h, body);
    root.append(el);
    return { spec: spec, el: el, body: body, plot: null, key: "" };
  }

  function formatValue(unit, v) {
    if (v == null) return "–";
    if (unit === "B/s") {
      const units = ["B/s", "kB/s", "MB/s", "GB/s", "TB/s"];
      let i = 0;
      while (Math.abs(v) >= 1000 && i < units.length - 1) { v /= 1000; i++; }
      return v.toFixed(v < 10 && i > 0 ? 1 : 0) + " " + units[i];
    }
    if (unit === "%") return v.toFixed(1) + " %";
    return v.toFixed(2);
  }

  async function fetchMetric(metric, start, end, maxPoints) {
    const params = new URLSearchParams({
      metric: metric.name, server: server, start: start, end: end, max_points: maxPoints,
    });
    const response = await fetch(queryUrl + "?" + params, { credentials: "same-origin" });
    if (!response.ok) throw new Error("query failed: " + response.status);
    const data = await response.json();
    return data.series.map(function (s) {
      const label = metric.by ? (s.labels[metric.by] || metric.name) : (metric.label || metric.name);
      return {
        label: label,
        xs: s.points.map(p => p[0]),
        ys: s.points.map(p => p[1]),
        mins: s.min || null,
        maxs: s.max || null,
      };
    });
  }

  async function draw(panel, start, end) {
    const width = Math.max(300, panel.body.clientWidth);
    const lists = await Promise.all(panel.spec.metrics.map(m => fetchMetric(m, start, end, width)));
    const lines = lists.flat().filter(l => l.xs.length > 0);
    panel.el.classList.toggle("no-data", lines.length === 0);
    if (lines.length === 0) {
      if (panel.plot) { panel.plot.destroy(); panel.plot = null; panel.key = ""; }
      panel.body.textContent = "No data in this range yet.";
      return;
    }
    // uPlot series: the average line of each metric, then, for those with an
    // envelope, its max and min as invisible series that a band fills between.
    const tables = [];
    const series = [{}];
    const bands = [];
    const hidden = [];
    const unit = panel.spec.unit;
    lines.forEach(function (l, i) {
      const color = COLORS[i % COLORS.length];
      tables.push([l.xs, l.ys]);
      series.push({
        label: l.label, stroke: color, width: 1.5, spanGaps: false,
        value: (u, v) => formatValue(unit, v),
      });
      if (l.mins && l.maxs) {
        tables.push([l.xs, l.maxs], [l.xs, l.mins]);
        const edge = { stroke: "transparent", width: 0, points: { show: false }, spanGaps: false };
        series.push(Object.assign({ label: l.label + " max" }, edge));
        series.push(Object.assign({ label: l.label + " min" }, edge));
        const hi = series.length - 2;
        bands.push({ series: [hi, hi + 1], fill: color + "33" });
        hidden.push(hi, hi + 1);
      }
    });
    const data = uPlot.join(tables);
    const key = series.map(s => s.label).join("|") + "@" + width;
    // The x scale always shows the whole chosen range, even where data is missing.
    panel.start = start;
    panel.end = end;
    if (panel.plot && panel.key === key) {
      panel.plot.setData(data);
      return;
    }
    if (panel.plot) panel.plot.destroy();
    panel.body.textContent = "";
    const opts = {
      width: width,
      height: 220,
      scales: {
        x: { time: true, range: () => [panel.start, panel.end] },
        y: { range: (u, min, max) => [0, Math.max(panel.spec.max || 0, max * 1.1 || 1)] },
      },
      axes: [{}, { size: 70, values: (u, vals) => vals.map(v => formatValue(unit, v)) }],
      series: series,
      bands: bands,
    };
    panel.plot = new uPlot(opts, data, panel.body);
    // The envelope's edges stay out of the legend: the band shows them.
    const rows = panel.plot.root.querySelectorAll(".u-legend .u-series");
    hidden.forEach(function (i) { if (rows[i]) rows[i].style.display = "none"; });
    panel.el.classList.toggle("has-envelope", bands.length > 0);
    panel.key = key;
  }

  async function refresh() {
    if (document.hidden) return;
    const end = Math.floor(Date.now() / 1000);
    const start = end - rangeSeconds;
    try {
      await Promise.all(panels.map(p => draw(p, start, end)));
      liveStatus.textContent = "live · updated " + new Date().toLocaleTimeString();
      liveStatus.classList.remove("stale");
      root.dataset.drawn = "true";
    } catch (err) {
      liveStatus.textContent = "not updating: " + err.message;
      liveStatus.classList.add("stale");
    }
  }

  function schedule() {
    clearInterval(timer);
    timer = setInterval(refresh, REFRESH_MS);
  }

  document.querySelectorAll(".ranges button").forEach(function (button) {
    button.addEventListener("click", function () {
      document.querySelectorAll(".ranges button").forEach(b => b.classList.remove("active"));
      button.classList.add("active");
      rangeSeconds = parseInt(button.dataset.range, 10);
      refresh();
      schedule();
    });
  });
  // Live widgets pause while the tab is hidden and catch up when it is shown.
  document.addEventListener("visibilitychange", function () { if (!document.hidden) refresh(); });
  let resizeTimer = null;
  window.addEventListener("resize", function () {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(refresh, 250);
  });
  refresh();
  schedule();
})();
