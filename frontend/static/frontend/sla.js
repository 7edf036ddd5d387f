// SLA charts: canary vs baseline over time, from the JSON the SLA section embeds (#sla-series).
// The section is an htmx partial that re-renders on "live:sla"; this script runs after each swap.
(function () {
  const me = document.currentScript;
  const chartSrc = me && me.dataset.chartjs;
  const CHARTS = {
    success_rate: ["canary_success_rate", "baseline_success_rate"],
    p95_ms: ["canary_p95_ms", "baseline_p95_ms"],
    error_ratio: ["canary_error_ratio", "baseline_error_ratio"],
    callback_fail_rate: ["canary_callback_fail_rate", "baseline_callback_fail_rate"],
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
  function draw() {
    const data = document.getElementById("sla-series");
    if (!data) return;
    const series = JSON.parse(data.textContent);
    const labels = series.at.map((t) => t.slice(11, 19));
    document.querySelectorAll("canvas[data-sla-chart]").forEach((canvas) => {
      const [canary, baseline] = CHARTS[canvas.dataset.slaChart];
      const old = window.Chart.getChart(canvas); if (old) old.destroy();
      new window.Chart(canvas, {
        type: "line",
        data: {labels, datasets: [
          {label: "canary", data: series[canary], borderColor: "#1d4ed8", spanGaps: true, pointRadius: 1},
          {label: "baseline", data: series[baseline], borderColor: "#6b7280", spanGaps: true, pointRadius: 1},
        ]},
        options: {animation: false, responsive: true, maintainAspectRatio: false,
                  plugins: {legend: {position: "bottom"}}, scales: {x: {ticks: {maxTicksLimit: 8}}}},
      });
    });
  }
  loadChartJs().then(draw).catch(() => {
    document.querySelectorAll(".sla-charts").forEach((el) => { el.textContent = "charts unavailable (Chart.js did not load)"; });
  });
})();
