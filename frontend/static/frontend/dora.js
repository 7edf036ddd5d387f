// DORA charts: one line per service / environment over the weeks, from the JSON the page embeds (#dora-series).
// Chart.js is loaded from the project's own static copy (the CSP forbids inline scripts and other origins).
(function () {
  const me = document.currentScript;
  const chartSrc = me && me.dataset.chartjs;
  const COLORS = ["#1d4ed8", "#b91c1c", "#047857", "#7c3aed", "#b45309", "#0e7490", "#6b7280"];
  const SCALE = {count: 1, ratio: 1, hours: 1 / 3600, minutes: 1 / 60};
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
    const data = document.getElementById("dora-series");
    if (!data) return;
    const series = JSON.parse(data.textContent);
    document.querySelectorAll("canvas[data-dora-chart]").forEach((canvas) => {
      const field = canvas.dataset.doraChart;
      const scale = SCALE[canvas.dataset.unit] || 1;
      const old = window.Chart.getChart(canvas); if (old) old.destroy();
      new window.Chart(canvas, {
        type: field === "deployments" ? "bar" : "line",
        data: {labels: series.weeks, datasets: series.pairs.map((pair, i) => ({
          label: pair.label, borderColor: COLORS[i % COLORS.length], backgroundColor: COLORS[i % COLORS.length],
          spanGaps: false, pointRadius: 2,
          data: pair[field].map((v) => (v === null ? null : Math.round(v * scale * 100) / 100)),
        }))},
        options: {animation: false, responsive: true, maintainAspectRatio: false,
                  plugins: {legend: {position: "bottom"}},
                  scales: {x: {ticks: {maxTicksLimit: 12}}, y: {beginAtZero: true}}},
      });
    });
  }
  loadChartJs().then(draw).catch(() => {
    document.querySelectorAll(".dora-charts").forEach((el) => { el.textContent = "charts unavailable (Chart.js did not load)"; });
  });
})();
