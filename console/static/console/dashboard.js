// Charts of the operator dashboard, drawn by the vendored Chart.js from the data the page embeds.
(function () {
  "use strict";
  function data(id) {
    var element = document.getElementById(id);
    return element ? JSON.parse(element.textContent) : null;
  }
  // Every chart of the page is a bar chart that fills its card and draws at once.
  function barChart(canvasId, labels, datasets, options) {
    return new Chart(document.getElementById(canvasId), {
      type: "bar",
      data: { labels: labels, datasets: datasets },
      options: Object.assign({ responsive: true, maintainAspectRatio: false, animation: false }, options),
    });
  }

  var traffic = data("traffic-data");
  if (traffic) {
    barChart("api-traffic-chart", traffic.labels, [
      { label: "Requests", data: traffic.requests, backgroundColor: "#7c3aed", stack: "api" },
      { label: "Rate-limited", data: traffic.rate_limited, backgroundColor: "#c62828", stack: "limited" },
    ], { scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } });
  }

  var tenants = data("tenants-data");
  if (tenants) {
    var colors = ["#2e7d32", "#c62828", "#f9a825", "#7c3aed"];
    barChart(
      "tenants-chart",
      tenants.rows.map(function (row) { return row.tier; }),
      tenants.statuses.map(function (status, index) {
        return {
          label: status,
          data: tenants.rows.map(function (row) { return row.counts[index]; }),
          backgroundColor: colors[index % colors.length],
        };
      }),
      {
        indexAxis: "y",
        scales: { x: { stacked: true, beginAtZero: true, ticks: { precision: 0 } }, y: { stacked: true } },
      }
    );
  }

  var webhooks = data("webhooks-data");
  if (webhooks) {
    barChart("webhook-chart", webhooks.labels, [
      { label: "Succeeded", data: webhooks.succeeded, backgroundColor: "#2e7d32", stack: "attempts" },
      { label: "Failed", data: webhooks.failed, backgroundColor: "#c62828", stack: "attempts" },
    ], { scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } } });
  }
})();
