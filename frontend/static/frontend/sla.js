// SLA charts: canary vs baseline (the stable release) over time, from the JSON the page embeds (#sla-series):
// the release page's SLA section (an htmx partial that re-renders on "live:sla"; this script runs after each
// swap) and a snapshot's page (the history up to that snapshot).
(function () {
  const me = document.currentScript;
  const chartSrc = me && me.dataset.chartjs;
  const CHARTS = {
    success_rate: ["canary_success_rate", "baseline_success_rate"],
    p95_ms: ["canary_p95_ms", "baseline_p95_ms"],
    error_ratio: ["canary_error_ratio", "baseline_error_ratio"],
    callback_fail_rate: ["canary_callback_fail_rate", "baseline_callback_fail_rate"],
    eval_score: ["canary_eval_score", "baseline_eval_score"],
  };
  function loadChartJs() {
    if (window.Chart) return Promise.resolve();
    if (!window.rollgateChartJs) {
      window.rollgateChartJs = new Promise((resolve, reject) => {
        const script = document.createElement("script");
        script.src = chartSrc; script.onload = resolve; script.onerror = reject;
        document.head.appendChild(script);
      });
    }
    return window.rollgateChartJs;
  }
  // Axis and tooltip numbers in the chart's unit, rounded as the tables round them (sla/explain.py).
  const FORMAT = {
    ratio: (v) => (v * 100).toFixed(2) + " %",
    ms: (v) => Math.round(v).toLocaleString("en-US") + " ms",
    score: (v) => v.toFixed(3),
  };
  function format(unit, value) {
    if (value === null || value === undefined) return "n/a";
    return (FORMAT[unit] || ((v) => String(v)))(value);
  }
  function draw() {
    const data = document.getElementById("sla-series");
    if (!data) return;
    const series = JSON.parse(data.textContent);
    const labels = series.at.map((t) => t.slice(11, 19));
    document.querySelectorAll("canvas[data-sla-chart]").forEach((canvas) => {
      const [canary, baseline] = CHARTS[canvas.dataset.slaChart];
      const unit = canvas.dataset.unit;
      // A chart without a single number (a service whose traces carry no eval score) is left out, not drawn empty.
      const empty = ![...(series[canary] || []), ...(series[baseline] || [])].some((v) => v !== null);
      canvas.closest("figure").hidden = empty;
      if (empty) return;
      const old = window.Chart.getChart(canvas); if (old) old.destroy();
      new window.Chart(canvas, {
        type: "line",
        data: {labels, datasets: [
          {label: "canary", data: series[canary], borderColor: "#1d4ed8", spanGaps: true, pointRadius: 1},
          {label: "stable", data: series[baseline], borderColor: "#6b7280", spanGaps: true, pointRadius: 1},
        ]},
        options: {animation: false, responsive: true, maintainAspectRatio: false,
                  plugins: {legend: {position: "bottom"},
                            tooltip: {callbacks: {label: (item) => `${item.dataset.label}: ${format(unit, item.parsed.y)}`}}},
                  scales: {x: {ticks: {maxTicksLimit: 8}}, y: {ticks: {callback: (value) => format(unit, value)}}}},
      });
    });
  }
  loadChartJs().then(draw).catch(() => {
    document.querySelectorAll(".sla-charts").forEach((el) => { el.textContent = "charts unavailable (Chart.js did not load)"; });
  });
})();
