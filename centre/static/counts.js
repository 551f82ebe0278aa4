// gatebox centre console: people and vehicles in and out of each gate (today), the last 24 hours as a
// bar chart, and a search over the passage log. Uses console.js's helpers ($, el, svg, api, later, me);
// refetches when the console says passages changed (its server-sent events), and each minute (the hours move).
"use strict";

const PASSAGE_KINDS = [["person_in", "people in"], ["person_out", "people out"],
  ["vehicle_in", "vehicles in"], ["vehicle_out", "vehicles out"]];
const CHART = { width: 480, height: 150, top: 10, bottom: 22, left: 28 };
let passageGates = [];  // [{site, box_id, camera, today}] from the last refresh

const gateKey = (g) => `${g.site}/${g.box_id}/${g.camera}`;

function gateParams(key) {
  const params = new URLSearchParams();
  if (!key) return params;
  const [site, box_id, camera] = key.split("/");
  Object.entries({ site, box_id, camera }).forEach(([k, v]) => params.set(k, v));
  return params;
}

$("#passages").append(
  el("h2", {}, "Passages ", el("span", { id: "passage-summary", class: "muted" })),
  el("div", { class: "scroll" },
    el("table", {},
      el("thead", {}, el("tr", {}, el("th", {}, "Gate (today)"), ...PASSAGE_KINDS.map(([, label]) => el("th", {}, label)))),
      el("tbody", { id: "passage-gates" }))),
  el("label", { class: "chart-gate" }, "Last 24 h of ",
    el("select", { id: "passage-chart-gate", onchange: () => refreshPassages() }, el("option", { value: "" }, "all gates"))),
  el("div", { id: "passage-chart", class: "chart" }),
  el("form", { id: "passage-search", class: "filters" },
    el("label", {}, "From ", el("input", { name: "from", type: "datetime-local" })),
    el("label", {}, "To ", el("input", { name: "to", type: "datetime-local" })),
    el("label", {}, "Gate ", el("select", { name: "gate" }, el("option", { value: "" }, "all"))),
    el("label", {}, "Direction ", el("select", { name: "direction" },
      el("option", { value: "" }, "both"), el("option", { value: "in" }, "in"), el("option", { value: "out" }, "out"))),
    el("label", {}, "Plate ", el("input", { name: "plate", maxlength: "16", placeholder: "starts with", size: "10" })),
    el("button", { type: "submit" }, "Search"),
    el("span", { id: "passage-found", class: "muted" })),
  el("div", { class: "scroll" },
    el("table", {},
      el("thead", {}, el("tr", {}, ...["Time", "Gate", "Who", "Direction", "Plate"].map((h) => el("th", {}, h)))),
      el("tbody", { id: "passage-rows" }))),
);

async function refreshPassages() {
  const gate = $("#passage-chart-gate").value;
  const [all, chosen] = await Promise.all([
    api("/api/passages/counts"), gate ? api(`/api/passages/counts?${gateParams(gate)}`) : null,
  ]);
  passageGates = all.gates;
  const total = (kind) => all.today[kind] || 0;
  $("#passage-summary").textContent = `today: ${total("person_in") + total("person_out")} people, `
    + `${total("vehicle_in") + total("vehicle_out")} vehicles`;
  $("#passage-gates").replaceChildren(...passageGates.map((g) => el("tr", { dataset: { gate: gateKey(g) } },
    el("td", {}, gateKey(g)),
    ...PASSAGE_KINDS.map(([kind]) => el("td", { class: kind }, String(g.today[kind] || 0))))));
  const keys = passageGates.map(gateKey);
  fillSelect($("#passage-chart-gate"), keys);
  fillSelect($("#passage-search select[name=gate]"), keys);
  drawPassageChart((chosen || all).hours);
}

// Per hour two bars side by side: everyone and everything that went in, and out.
function drawPassageChart(hours) {
  const { width, height, top, bottom, left } = CHART;
  const totals = hours.map((h) => ({ hour: h.hour, in: h.person_in + h.vehicle_in, out: h.person_out + h.vehicle_out }));
  const most = Math.max(1, ...totals.flatMap((t) => [t.in, t.out]));
  const slot = (width - left) / totals.length, bar = slot * 0.4, plot = height - top - bottom;
  const shapes = [
    svg("line", { class: "axis", x1: left, y1: height - bottom, x2: width, y2: height - bottom }),
    svg("text", { class: "label", x: left - 4, y: top + 8, "text-anchor": "end" }, String(most)),
    svg("text", { class: "label", x: left - 4, y: height - bottom, "text-anchor": "end" }, "0"),
  ];
  totals.forEach((t, i) => {
    const x = left + i * slot;
    const label = `${new Date(t.hour * 1000).getHours()}:00`;
    for (const [direction, offset] of [["in", 0], ["out", bar]]) {
      if (!t[direction]) continue;
      const h = (t[direction] / most) * plot;
      shapes.push(svg("rect", { class: `bar ${direction}`, x: x + slot * 0.1 + offset, y: height - bottom - h,
          width: bar, height: h, dataset: { hour: String(t.hour), direction, count: String(t[direction]) } },
        svg("title", {}, `${label}: ${t[direction]} ${direction}`)));
    }
    if (i % 6 === 0 || i === totals.length - 1) {
      const last = i === totals.length - 1;  // (kept inside the chart's right edge)
      shapes.push(svg("text", { class: "label", x: last ? width : x + slot / 2, y: height - 6, "text-anchor": last ? "end" : "middle" }, label));
    }
  });
  $("#passage-chart").replaceChildren(svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img",
      "aria-label": "passages in and out, the last 24 hours by hour" }, ...shapes),
    el("div", { class: "legend muted" }, el("span", { class: "key in" }), "in ", el("span", { class: "key out" }), "out"));
}

async function searchPassages() {
  const form = new FormData($("#passage-search"));
  const params = gateParams(form.get("gate"));
  // The operator's own time zone, sent as seconds since the epoch (what the passage log keeps).
  if (form.get("from")) params.set("since", String(new Date(form.get("from")).getTime() / 1000));
  if (form.get("to")) params.set("until", String(new Date(form.get("to")).getTime() / 1000));
  if (form.get("direction")) params.set("direction", form.get("direction"));
  const plate = String(form.get("plate") || "").trim();
  if (plate) params.set("plate", plate);
  params.set("limit", "200");
  let found;
  try {
    found = await api(`/api/passages?${params}`);
  } catch (err) {
    $("#passage-found").textContent = `refused: ${err.message}`;
    return;
  }
  $("#passage-found").textContent = `${found.passages.length} found`;
  $("#passage-rows").replaceChildren(...found.passages.map((p) => el("tr", { dataset: { subject: p.subject } },
    el("td", {}, new Date(p.ts * 1000).toLocaleString()),
    el("td", {}, `${p.site}/${p.box_id}/${p.camera}`),
    el("td", {}, p.subject === "person" ? (p.has_snapshot ? "person (face view)" : "person") : "vehicle"),
    el("td", {}, p.direction || "-"),
    el("td", { class: "plate" }, p.plate ? `${p.plate}${p.colour ? ` (${p.colour})` : ""}` : "-"))));
}

$("#passage-search").addEventListener("submit", (e) => { e.preventDefault(); searchPassages(); });

document.addEventListener("gatebox-stream", ({ detail: source }) => {
  source.addEventListener("hello", () => refreshPassages().catch(() => {}));
  source.addEventListener("change", (message) => {
    if (JSON.parse(message.data).kind === "passages") later(() => refreshPassages().catch(() => {}), "passages", 1000);
  });
});
setInterval(() => { if (me && !$("#app").hidden) refreshPassages().catch(() => {}); }, 60000);
