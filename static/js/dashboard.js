/* Sparklines of the dashboard home: each [data-sparkline] node draws the series of the JSON
   script it names ({days, values, colour, type}). */
(function () {
  "use strict";
  if (typeof echarts === "undefined") { return; }
  var charts = [];
  document.querySelectorAll("[data-sparkline]").forEach(function (node) {
    var source = document.getElementById(node.dataset.sparkline);
    if (!source) { return; }
    var data = JSON.parse(source.textContent);
    var bar = data.type === "bar";
    var chart = echarts.init(node, null, { renderer: "svg" });
    chart.setOption({
      animation: false,
      grid: { left: 1, right: 1, top: 3, bottom: 1 },
      tooltip: { trigger: "axis", confine: true, axisPointer: { type: bar ? "shadow" : "line" },
                 formatter: function (p) { return p[0].axisValue + ": " + p[0].value; } },
      xAxis: { type: "category", data: data.days, show: false, boundaryGap: bar },
      yAxis: { type: "value", show: false, min: bar ? 0 : "dataMin" },
      series: [bar
        ? { type: "bar", data: data.values, itemStyle: { color: data.colour, borderRadius: 1 }, barCategoryGap: "25%" }
        : { type: "line", data: data.values, symbol: "none", smooth: true, lineStyle: { color: data.colour, width: 1.5 },
            areaStyle: { color: data.colour, opacity: 0.12 } }]
    });
    charts.push(chart);
  });
  window.addEventListener("resize", function () { charts.forEach(function (c) { c.resize(); }); });
})();
