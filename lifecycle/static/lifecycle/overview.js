/* Charts of the lifecycle page, drawn from the JSON the view embeds (#lifecycle-charts). */
(function () {
  "use strict";
  var source = document.getElementById("lifecycle-charts");
  if (!source || typeof echarts === "undefined") { return; }
  var data = JSON.parse(source.textContent);
  var order = ["introduction", "growth", "maturity", "dormant", "churned"];
  var colours = { introduction: "#6366f1", growth: "#16a34a", maturity: "#0284c7", dormant: "#d97706", churned: "#dc2626" };
  var label = function (stage) { return data.labels[stage] || stage; };
  var charts = [];

  function draw(id, option, hasData) {
    var node = document.getElementById(id);
    if (!node) { return; }
    var chart = echarts.init(node);
    if (!hasData) {
      option = { title: { text: data.text.no_data, left: "center", top: "middle", textStyle: { color: "#9a9fb4", fontSize: 13, fontWeight: "normal" } } };
    }
    chart.setOption(option);
    charts.push(chart);
  }

  draw("chart-trend", {
    color: order.map(function (s) { return colours[s]; }).concat(["#a16207"]),
    tooltip: { trigger: "axis" },
    legend: { bottom: 0, type: "scroll" },
    grid: { left: 50, right: 16, top: 16, bottom: 56 },
    xAxis: { type: "category", data: data.trend.map(function (r) { return r.day; }) },
    yAxis: { type: "value" },
    series: order.map(function (stage) {
      return { name: label(stage), type: "line", stack: "members", areaStyle: { opacity: 0.35 }, symbol: "none",
               data: data.trend.map(function (r) { return r[stage]; }) };
    }).concat([{ name: data.text.warning, type: "line", lineStyle: { type: "dashed" }, symbol: "none",
                 data: data.trend.map(function (r) { return r.warning; }) }])
  }, data.trend.length > 0);

  draw("chart-funnel", {
    tooltip: { trigger: "item", formatter: "{b}: {c}" },
    series: [{
      type: "funnel", left: "10%", width: "80%", sort: "none", minSize: "20%", gap: 2,
      label: { show: true, position: "inside", formatter: "{b}\n{c}" },
      data: data.funnel.map(function (s) { return { name: label(s.stage), value: s.count, itemStyle: { color: colours[s.stage] } }; })
    }]
  }, data.funnel.length && data.funnel[0].count > 0);

  // A Sankey must be acyclic: the stages appear twice, as "from" nodes on the left and "to" on the right.
  var nodes = {}, links = [];
  function node(id, stage) { nodes[id] = { name: id, itemStyle: { color: colours[stage] || "#94a3b8" }, stage: stage }; }
  data.flows.forEach(function (f) {
    node("from:" + f.from, f.from); node("to:" + f.to, f.to);
    links.push({ source: "from:" + f.from, target: "to:" + f.to, value: f.count });
  });
  Object.keys(data.entered).forEach(function (stage) {
    if (data.entered[stage] > 0) {
      node("from:new", "new"); node("to:" + stage, stage);
      links.push({ source: "from:new", target: "to:" + stage, value: data.entered[stage] });
    }
  });
  // Nodes in stage order on both sides (new members first), kept so by the layout.
  var rank = function (id) {
    var side = id.indexOf("to:") === 0 ? 1 : 0, stage = id.split(":")[1];
    return side * 10 + (stage === "new" ? -1 : order.indexOf(stage));
  };
  var nodeList = Object.keys(nodes).sort(function (a, b) { return rank(a) - rank(b); }).map(function (k) { return nodes[k]; });
  draw("chart-flows", {
    tooltip: { trigger: "item", formatter: function (p) {
      if (p.dataType === "edge") { return nameOf(p.data.source) + " → " + nameOf(p.data.target) + ": " + p.data.value; }
      return nameOf(p.name);
    } },
    series: [{
      type: "sankey", left: 8, right: 90, top: 8, bottom: 8, nodeAlign: "justify", layoutIterations: 0,
      emphasis: { focus: "adjacency" }, data: nodeList, links: links,
      label: { formatter: function (p) { return nameOf(p.name); } },
      lineStyle: { color: "gradient", curveness: 0.5, opacity: 0.35 }
    }]
  }, links.length > 0);

  function nameOf(id) {
    var stage = id.split(":")[1];
    return stage === "new" ? data.text.new : label(stage);
  }

  window.addEventListener("resize", function () { charts.forEach(function (c) { c.resize(); }); });
})();
