// Charts of the operator dashboard, drawn by the vendored Chart.js from the data the page embeds.
(function () {
  "use strict";
  function data(id) {
    var element = document.getElementById(id);
    return element ? JSON.parse(element.textContent) : null;
  }
  var common = { responsive: true, maintainAspectRatio: false, animation: false };

  var traffic = data("traffic-data");
  if (traffic) {
    new Chart(document.getElementById("api-traffic-chart"), {
      type: "bar",
      data: {
        labels: traffic.labels,
        datasets: [
          { label: "Requests", data: traffic.requests, backgroundColor: "#7c3aed", stack: "api" },
          { label: "Rate-limited", data: traffic.rate_limited, backgroundColor: "#c62828", stack: "limited" },
        ],
      },
      options: Object.assign({}, common, { scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } }),
    });
  }

  var tenants = data("tenants-data");
  if (tenants) {
    var colors = ["#2e7d32", "#c62828", "#f9a825", "#7c3aed"];
    new Chart(document.getElementById("tenants-chart"), {
      type: "bar",
      data: {
        labels: tenants.rows.map(function (row) { return row.tier; }),
        datasets: tenants.statuses.map(function (status, index) {
          return {
            label: status,
            data: tenants.rows.map(function (row) { return row.counts[index]; }),
            backgroundColor: colors[index % colors.length],
          };
        }),
      },
      options: Object.assign({}, common, {
        indexAxis: "y",
        scales: { x: { stacked: true, beginAtZero: true, ticks: { precision: 0 } }, y: { stacked: true } },
      }),
    });
  }

  var webhooks = data("webhooks-data");
  if (webhooks) {
    new Chart(document.getElementById("webhook-chart"), {
      type: "bar",
      data: {
        labels: webhooks.labels,
        datasets: [
          { label: "Succeeded", data: webhooks.succeeded, backgroundColor: "#2e7d32", stack: "attempts" },
          { label: "Failed", data: webhooks.failed, backgroundColor: "#c62828", stack: "attempts" },
        ],
      },
      options: Object.assign({}, common, {
        scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } },
      }),
    });
  }
})();
