// gatebox centre console: one page over /api. Everything a box sent is shown with textContent
// (never parsed as HTML). The server pushes "something changed" over SSE; the page refetches it.
"use strict";

const $ = (selector) => document.querySelector(selector);
const KIND_LABELS = {
  panic: "PANIC", long_press: "PANIC (long press)", cancel: "Panic cancelled",
  face_match: "Face match", elder_leaving: "Elder leaving", plate_match: "Plate match",
};
// What a list does comes from its kind (the centre's config `lists`), never from its name: a sighting on
// an urgent list, or an at-risk person leaving, is shown as urgent.
const URGENT_KINDS = new Set(["urgent", "leaving-only"]);
let stream = null;
let me = null;
let listKinds = new Map();  // list name -> kind, from /api/me

const SVG_NS = "http://www.w3.org/2000/svg";

function el(tag, attrs = {}, ...children) {
  return build(document.createElement(tag), attrs, children);
}

// The map's shapes: the same, in SVG's namespace.
function svg(tag, attrs = {}, ...children) {
  return build(document.createElementNS(SVG_NS, tag), attrs, children);
}

function build(node, attrs, children) {
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.setAttribute("class", value);  // (an SVG element's className is read-only)
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child !== undefined && child !== null) node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

// Every request says it comes from this page's script: a form or a no-cors request from another
// site cannot add a header, and the console refuses a state-changing request without it.
const CSRF_HEADER = { "X-Gatebox-CSRF": "1" };

async function api(path, options = {}) {
  const headers = { ...CSRF_HEADER, ...(options.headers || {}) };
  const response = await fetch(path, { credentials: "same-origin", ...options, headers });
  if (response.status === 401 && path !== "/api/login") {
    showLogin();
    throw new Error("log in first");
  }
  const body = response.headers.get("content-type")?.includes("json") ? await response.json() : null;
  if (!response.ok) throw new Error(body?.detail ? formatDetail(body.detail) : `${response.status}`);
  return body;
}

function formatDetail(detail) {
  return Array.isArray(detail) ? detail.map((d) => `${(d.loc || []).join(".")}: ${d.msg}`).join("; ") : detail;
}

const postJson = (path, body) =>
  api(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });

// --- login ----------------------------------------------------------------------------------

function showLogin() {
  if (stream) { stream.close(); stream = null; }
  stopAlarm();
  $("#app").hidden = true;
  $("#history").hidden = true;
  $("#tabs").hidden = true;
  $("#logout").hidden = true;
  $("#who").textContent = "";
  $("#login").hidden = false;
}

async function start() {
  try {
    me = await api("/api/me");
  } catch {
    return;
  }
  $("#login").hidden = true;
  showView(currentView);
  $("#tabs").hidden = false;
  $("#logout").hidden = false;
  $("#who").textContent = me.name;
  showBroker(me);
  listKinds = new Map(me.lists.map((item) => [item.list, item.kind]));
  for (const select of document.querySelectorAll("#lists select[name=list]")) {
    select.replaceChildren(...me.lists.map((item) => el("option", { value: item.list }, item.list)));
  }
  fillSelect($("#history-form select[name=list]"), me.lists.map((item) => item.list));
  showUploadFields();
  connectStream();
  await Promise.all([refreshBoxes(), refreshLists(), refreshMap()]);
  await refreshEvents();
}

$("#login-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const form = new FormData(e.target);
  try {
    await postJson("/api/login", { name: form.get("name"), password: form.get("password") });
    $("#login-error").textContent = "";
    e.target.reset();
    await start();
  } catch (err) {
    $("#login-error").textContent = err.message;
  }
});

$("#logout").addEventListener("click", async () => {
  await api("/api/logout", { method: "POST" }).catch(() => {});
  showLogin();
});

// --- live updates ---------------------------------------------------------------------------

function connectStream() {
  if (stream) stream.close();
  stream = new EventSource("/api/stream");
  document.dispatchEvent(new CustomEvent("gatebox-stream", { detail: stream }));  // other parts of the page listen too
  stream.addEventListener("hello", () => {
    setLink(true);
    refreshEvents(); refreshBoxes(); refreshLists(); refreshMap();  // catch up on what happened while disconnected
  });
  stream.addEventListener("change", (message) => {
    const change = JSON.parse(message.data);
    if (change.kind === "events") {
      if (change.new_panic) {
        now(refreshEvents, "events");  // a panic is shown at once (and sounds until acknowledged)
      } else later(refreshEvents, "events");
      later(refreshMap, "map", 1000);  // an event places its box's gate
    } else if (change.kind === "boxes") {
      later(refreshBoxes, "boxes");
      later(refreshMap, "map", 1000);  // a new box may bring a gate
      later(refreshLists, "lists", 1000);  // a new box counts towards "applied by"
    }
    else if (change.kind === "lists") later(refreshLists, "lists");
    else if (change.kind === "previews") { if (previewOf) later(refreshPreviews, "previews", 100); }
    else if (change.kind === "status") api("/api/me").then(showBroker).catch(() => {});
  });
  stream.onerror = () => {
    setLink(false);
    api("/api/me").catch(() => {});  // an expired session shows the login form
  };
}

// At most one refetch per `ms` for each part of the page, however many changes arrive meanwhile
// (200 boxes heartbeating must not postpone it for ever).
const timers = {};
function later(fn, key, ms = 150) {
  if (timers[key]) return;
  timers[key] = setTimeout(() => { timers[key] = null; fn(); }, ms);
}

function now(fn, key) {
  clearTimeout(timers[key]);
  timers[key] = null;
  fn();
}

function setLink(up) {
  $("#link").textContent = up ? "live" : "reconnecting…";
  $("#link").className = `link ${up ? "up" : "down"}`;
}

function showBroker(status) {
  // A stopped receiver stores nothing the boxes send, whatever the broker link says.
  const up = status.broker_connected && status.receiving;
  $("#broker").textContent = !status.receiving ? "receiver stopped: restart the console"
    : status.broker_connected ? "broker connected" : "broker unreachable";
  $("#broker").className = `link ${up ? "up" : "down"}`;
}

// --- the alarm ------------------------------------------------------------------------------
// While any panic is unacknowledged the tone repeats. A browser plays no sound before someone has
// clicked on the page (after a reload too): then the header shows "sound blocked — click to enable".

const ALARM_EVERY_MS = 2500;
let audio = null;  // one context for the page: each one holds an audio device stream
let alarmTimer = null;

function setAlarm(on) {
  if (on && !alarmTimer) {
    alarmTimer = setInterval(beep, ALARM_EVERY_MS);
    beep();
  } else if (!on && alarmTimer) stopAlarm();
}

function stopAlarm() {
  clearInterval(alarmTimer);
  alarmTimer = null;
  document.body.dataset.alarm = "off";
  $("#sound").hidden = true;
  document.title = "gatebox centre";
}

function soundBlocked(blocked) {
  if (blocked && $("#sound").hidden) console.warn("gatebox: the browser blocked the alarm tone until the page is clicked");
  $("#sound").hidden = !blocked;
  document.body.dataset.alarm = blocked ? "blocked" : "on";
}

function beep() {
  document.title = document.title.startsWith("PANIC") ? "gatebox centre" : "PANIC — gatebox centre";
  try {
    audio = audio || new AudioContext();
  } catch {
    return;  // no audio device: the colour and the title still show it
  }
  if (audio.state !== "running") {
    audio.resume().catch(() => {});  // allowed once someone has clicked on the page
    soundBlocked(true);
    return;
  }
  soundBlocked(false);
  for (let i = 0; i < 3; i++) {
    const tone = audio.createOscillator();
    tone.frequency.value = 880;
    tone.connect(audio.destination);
    tone.start(audio.currentTime + i * 0.4);
    tone.stop(audio.currentTime + i * 0.4 + 0.25);
  }
  document.body.dataset.alarmBeeps = String(Number(document.body.dataset.alarmBeeps || 0) + 1);
}

$("#sound").addEventListener("click", async () => {
  try {
    audio = audio || new AudioContext();
    await audio.resume();
  } catch { /* no audio device */ }
  if (audio && audio.state === "running") {
    soundBlocked(false);
    beep();
  }
});

// --- events ---------------------------------------------------------------------------------

$("#filters").addEventListener("change", refreshEvents);

let openEvents = [];  // every open event (whatever the filters): the map's pins and the alarm

async function refreshEvents() {
  const params = new URLSearchParams();
  for (const [key, value] of new FormData($("#filters"))) if (value) params.set(key, value);
  params.set("limit", "200");
  const [{ events }, open] = await Promise.all([
    api(`/api/events?${params}`), api("/api/events?state=open&limit=500"),
  ]);
  openEvents = open.events;
  const groups = groupEvents(events, me.group_window_s);
  $("#events").replaceChildren(...groups.map(eventCard));
  const grouped = events.length - groups.length;
  $("#event-count").textContent = `${events.length} shown` + (grouped ? ` in ${groups.length} cards` : "");
  // Sounds until an operator acknowledges: a panic nobody has acted on yet.
  setAlarm(openEvents.some((ev) => ev.panic && (ev.requested_state || ev.state) === "new"));
  drawMap();
}

// Repeated alerts on one subject from one box, each within `windowS` of the one before (one pass at the
// gate), are one card: the newest shown, with a count. Panics are grouped by their box already.
function groupEvents(events, windowS) {
  const groups = [];
  const latest = new Map();  // subject key -> its group still open to older alerts
  for (const ev of events) {
    const key = ev.panic ? null : [ev.site, ev.box_id, ev.kind, ev.list, ev.subject_id].join("\u0000");
    const group = key && windowS > 0 ? latest.get(key) : null;
    const oldest = group && group[group.length - 1];
    if (group && oldest.received_at - ev.received_at <= windowS) {
      group.push(ev);
      continue;
    }
    groups.push([ev]);
    if (key) latest.set(key, groups[groups.length - 1]);
  }
  return groups;
}

const RANK = { new: 0, acked: 1, closed: 2 };
const least = (states) => states.reduce((a, b) => (RANK[b] < RANK[a] ? b : a));
const eventUrl = (ev, leaf) =>
  `/api/events/${encodeURIComponent(ev.event_id)}/${leaf}?${new URLSearchParams({ site: ev.site, box_id: ev.box_id })}`;
const referenceUrl = (ev) =>
  `/api/subjects/${encodeURIComponent(ev.list)}/${encodeURIComponent(ev.subject_id)}/reference.jpg`;

// Whose event: ids are the box's own, so the box is named too (two boxes may send the same id).
function eventCard(group) {
  const ev = group[0];  // the newest
  const first = group[group.length - 1];  // the card keeps the id of the pass's first alert
  const urgent = URGENT_KINDS.has(listKinds.get(ev.list));
  const state = least(group.map((e) => e.state));
  const requested = least(group.map((e) => e.requested_state || e.state));
  const classes = ["event", ev.panic ? "panic" : null, urgent ? "urgent" : null, `state-${state}`].filter(Boolean).join(" ");
  const who = ev.name || ev.subject_id;
  const title = ev.panic
    ? [KIND_LABELS[ev.kind] || ev.kind, ev.household ? ` · ${ev.household}` : "", ev.presses > 1 ? ` · ${ev.presses} presses` : ""]
    : [KIND_LABELS[ev.kind] || ev.kind, " · ", el("span", { class: "subject" }, who), ev.plate ? ` · ${ev.plate}` : ""];
  const about = ev.panic ? [] : [
    ev.name ? el("span", { class: "subject-id" }, ev.subject_id) : null,
    ev.category ? el("span", { class: "tag category" }, ev.category) : null,
    ev.priority ? el("span", { class: "tag priority", title: "priority (0-9) from the list" }, `priority ${ev.priority}`) : null,
    ev.strength ? el("span", { class: `tag strength ${ev.strength.level}`, title: ev.strength.why }, ev.strength.label) : null,
  ];
  const details = ev.panic
    ? [`device ${ev.device_id || "-"}`, ev.address ? `address ${ev.address}` : "", ev.battery != null ? `battery ${ev.battery}%` : ""]
    : [`list ${ev.list} (${ev.list_version || "?"})`, ev.distance != null ? `distance ${ev.distance.toFixed(2)}` : "",
       ev.plate_read && ev.plate_read !== ev.plate ? `read ${ev.plate_read}` : ""];
  const where = [`${ev.site}/${ev.box_id}`, ev.camera, ev.gate, ev.site_name, ev.grid_cell ? `grid ${ev.grid_cell}` : ""]
    .filter(Boolean).join(" · ");
  const pending = group.some((e) => e.requested_state && e.requested_state !== e.state);
  const acted = group.find((e) => e.acted_by);
  const note = el("input", { name: "note", placeholder: "note (what was done)", maxlength: "1000", value: (acted && acted.note) || "" });
  // One click acts on every alert of the card that still needs it.
  const act = (action) => async (e) => {
    e.target.disabled = true;
    const target = action === "ack" ? "acked" : "closed";
    const due = group.filter((g) => RANK[g.requested_state || g.state] < RANK[target]
      || (g.requested_state === target && g.requested_state !== g.state && stale(g)));
    try {
      for (const g of due) await postJson(eventUrl(g, action), { note: note.value || null });
    } catch (err) {
      alert(`${action} failed: ${err.message}`);
    }
    refreshEvents();
  };
  const staleOne = group.find((g) => g.requested_state && g.requested_state !== g.state && stale(g));
  return el("li", { class: classes, dataset: { eventId: first.event_id, state, count: String(group.length),
      eventIds: group.map((g) => g.event_id).join(" "), site: ev.site, box: `${ev.site}/${ev.box_id}` } },
    pictures(ev),
    el("div", {},
      el("div", { class: "title" }, ...title,
        group.length > 1 ? el("span", { class: "count", title: "alerts on this subject in one pass" }, `×${group.length}`) : null),
      ev.panic ? null : el("div", { class: "about" }, ...about),
      ev.panic && ev.contact ? el("div", { class: "contact" }, "contact: ", el("strong", {}, ev.contact)) : null,
      el("div", {}, details.filter(Boolean).join(" · ")),
      el("div", { class: "meta" }, where),
      el("div", { class: "meta" }, `seen ${new Date(ev.ts).toLocaleString()}`,
        group.length > 1 ? ` · first ${new Date(first.ts).toLocaleTimeString()} (${group.length} alerts)` : "",
        acted ? ` · ${acted.requested_state} by ${acted.acted_by}` : "", acted && acted.note ? ` · “${acted.note}”` : ""),
    ),
    el("div", { class: "actions" },
      el("div", {}, "box: ", el("span", { class: `badge ${state} box-state` }, state),
        pending ? el("span", { class: "badge pending" }, `${requested === "new" ? "ack" : requested} sent…`) : null),
      requested === "closed" ? null : note,
      requested === "new" ? el("button", { type: "button", class: "ack", onclick: act("ack") },
        group.length > 1 ? `Acknowledge all ${group.length}` : "Acknowledge") : null,
      staleOne ? el("button", { type: "button", class: "resend", onclick: act(staleOne.requested_state === "closed" ? "close" : "ack") },
        `Send ${staleOne.requested_state === "closed" ? "close" : "ack"} again`) : null,
      requested === "closed" ? null
        : el("button", { type: "button", class: "close secondary", onclick: act("close") }, "Close"),
    ),
  );
}

// Unconfirmed for a while (the box was offline when it went out): it may be sent again.
const stale = (ev) => Date.now() / 1000 - ev.acted_at > me.ack_resend_after_s;

// The snapshot (what the camera saw) and, for a listed face, the enrolled reference beside it.
function pictures(ev) {
  const seen = ev.has_snapshot
    ? el("img", { class: "snapshot", src: eventUrl(ev, "snapshot.jpg"), alt: "snapshot", loading: "lazy" })
    : el("div", { class: "noimg" }, ev.panic ? "SOS" : "—");
  const enrolled = ev.has_reference
    ? el("img", { class: "reference", src: referenceUrl(ev), alt: "enrolled photo", loading: "lazy" }) : null;
  const box = el("div", { class: enrolled ? "pictures pair" : "pictures", title: "click to enlarge" },
    el("figure", {}, seen, enrolled ? el("figcaption", {}, "seen") : null),
    enrolled ? el("figure", {}, enrolled, el("figcaption", {}, "enrolled")) : null);
  if (ev.has_snapshot || enrolled) box.addEventListener("click", () => showPictures(ev));
  return box;
}

function showPictures(ev) {
  const figures = [];
  if (ev.has_snapshot) figures.push(el("figure", {}, el("img", { src: eventUrl(ev, "snapshot.jpg"), alt: "snapshot" }),
    el("figcaption", {}, `seen ${new Date(ev.ts).toLocaleString()} at ${ev.gate || ev.box_id}`)));
  if (ev.has_reference) figures.push(el("figure", {}, el("img", { src: referenceUrl(ev), alt: "enrolled photo" }),
    el("figcaption", {}, `enrolled: ${ev.name || ev.subject_id} (${ev.list})`)));
  $("#viewer-pictures").replaceChildren(...figures);
  $("#viewer-caption").textContent = ev.strength ? `${ev.strength.label}: ${ev.strength.why}` : "";
  $("#viewer").showModal();
}

// --- the map ----------------------------------------------------------------------------------
// Offline: the gates at their lat/lon over the site's plan (console.site_plans), or a plain view
// fitted to the gates; open alerts and panics pinned at their gate, panics flashing until acknowledged.

let siteMap = { sites: [], gates: [] };
let boxStatus = new Map();  // "site/box_id" -> online, offline, silent
const MAP_WIDTH = 1000;
const METRES_PER_DEGREE = 111320;

async function refreshMap() {
  siteMap = await api("/api/map");
  fillSelect($("#map-site"), siteMap.sites.map((s) => s.site), false);
  $("#gate-names").replaceChildren(...[...new Set(siteMap.gates.map((g) => g.gate).filter(Boolean))]
    .map((g) => el("option", { value: g })));
  drawMap();
}

$("#map-site").addEventListener("change", () => { mapSiteChosen = true; drawMap(); });
let mapSiteChosen = false;

function drawMap() {
  const select = $("#map-site");
  // Unless an operator chose a site, show the one with an open panic, else the one with open alerts.
  const busy = openEvents.find((e) => e.panic && (e.requested_state || e.state) === "new") || openEvents[0];
  if (!mapSiteChosen && busy && siteMap.sites.some((s) => s.site === busy.site)) select.value = busy.site;
  const site = siteMap.sites.find((s) => s.site === select.value);
  if (!site) {
    $("#map-view").replaceChildren(el("p", { class: "muted" }, "no sites yet"));
    return;
  }
  const gates = siteMap.gates.filter((g) => g.site === site.site);
  const gateOf = new Map(gates.map((g) => [`${g.site}/${g.box_id}`, g]));
  const pins = [];
  for (const ev of openEvents.filter((e) => e.site === site.site)) {
    const gate = gateOf.get(`${ev.site}/${ev.box_id}`);
    const at = ev.lat != null && ev.lon != null ? { lat: ev.lat, lon: ev.lon } : gate;
    if (at) pins.push({ ev, lat: at.lat, lon: at.lon });
  }
  const place = projection(site.plan, [...gates, ...pins]);
  if (!place) {
    $("#map-view").replaceChildren(el("p", { class: "muted" }, `no gate of ${site.site} has a place yet: set box.lat/box.lon on its boxes, or console.gate_positions`));
    return;
  }
  const { project, height } = place;
  const layers = [];
  if (site.plan) {
    layers.push(svg("image", { href: site.plan.url, x: 0, y: 0, width: MAP_WIDTH, height, preserveAspectRatio: "none", class: "plan" }));
  } else {
    layers.push(svg("rect", { x: 0, y: 0, width: MAP_WIDTH, height, class: "ground" }));
    layers.push(grid(place));
    layers.push(scaleBar(place));
  }
  for (const gate of gates) {
    const [x, y] = project(gate.lat, gate.lon);
    const key = `${gate.site}/${gate.box_id}`;
    layers.push(svg("g", { class: `gate status-${boxStatus.get(key) || "unknown"}`, dataset: { box: key } },
      svg("title", {}, `${gate.gate || gate.box_id} (${key}): ${boxStatus.get(key) || "not heard from"}`),
      svg("rect", { x: x - 14, y: y - 14, width: 28, height: 28, rx: 4 }),
      svg("text", { x, y: y + 46, "text-anchor": "middle" }, gate.gate || gate.box_id)));
  }
  // Several open events at one gate: spread over the arc above it (its name is below), newest first.
  const around = new Map();
  for (const pin of pins) {
    const [gx, gy] = project(pin.lat, pin.lon);
    const n = around.get(`${gx},${gy}`) || 0;
    around.set(`${gx},${gy}`, n + 1);
    const angle = -Math.PI / 2 + (n % 2 ? -1 : 1) * Math.ceil(n / 2) * 0.6;
    const reach = 52 + 40 * Math.floor(n / 7);
    const [x, y] = [gx + reach * Math.cos(angle), gy + reach * Math.sin(angle)];
    const ev = pin.ev;
    const urgent = URGENT_KINDS.has(listKinds.get(ev.list));
    const waiting = (ev.requested_state || ev.state) === "new";
    const kind = ev.panic ? "panic" : urgent ? "urgent" : "alert";
    layers.push(svg("g", { class: `pin ${kind}${ev.panic && waiting ? " flash" : ""}${waiting ? "" : " handled"}`,
        dataset: { eventId: ev.event_id }, onclick: () => focusCard(ev) },
      svg("title", {}, `${KIND_LABELS[ev.kind] || ev.kind}: ${ev.panic ? ev.household || ev.device_id : ev.name || ev.subject_id} (${ev.state})`),
      svg("line", { x1: gx, y1: gy, x2: x, y2: y }),
      svg("circle", { cx: x, cy: y, r: 17 }),
      svg("text", { x, y: y + 8, "text-anchor": "middle" }, ev.panic ? "!" : kind === "urgent" ? "U" : "A")));
  }
  $("#map-view").replaceChildren(svg("svg", { viewBox: `0 0 ${MAP_WIDTH} ${height}`, role: "img",
    "aria-label": `map of ${site.site}`, dataset: { site: site.site } }, ...layers));
  $("#map-note").textContent = site.plan ? "site plan" : "vector view (no plan configured)";
}

// Latitude and longitude to the map's units: over a plan, its bounds; without, fitted round the points
// (at least ~70 m across), longitudes shrunk by cos(latitude) so distances look right.
function projection(plan, points) {
  let north, south, west, east;
  if (plan) {
    ({ north, south, west, east } = plan);
  } else {
    if (!points.length) return null;
    const lats = points.map((p) => p.lat), lons = points.map((p) => p.lon);
    const mid = [(Math.max(...lats) + Math.min(...lats)) / 2, (Math.max(...lons) + Math.min(...lons)) / 2];
    const k = Math.cos(mid[0] * Math.PI / 180);
    const half = Math.max(0.0003, (Math.max(...lats) - Math.min(...lats)) * 0.7, (Math.max(...lons) - Math.min(...lons)) * k * 0.7 / 1.6);
    [north, south] = [mid[0] + half, mid[0] - half];
    [west, east] = [mid[1] - half * 1.6 / k, mid[1] + half * 1.6 / k];
  }
  const k = Math.cos(((north + south) / 2) * Math.PI / 180);
  const height = Math.max(200, Math.min(2000, MAP_WIDTH * (north - south) / ((east - west) * k)));
  const project = (lat, lon) => [(lon - west) / (east - west) * MAP_WIDTH, (north - lat) / (north - south) * height];
  return { project, height, metresPerUnit: (east - west) * k * METRES_PER_DEGREE / MAP_WIDTH };
}

// Lines every scale-bar length, and north up: a plain view still shows distances and bearings.
function grid({ height, metresPerUnit }) {
  const step = scaleMetres(metresPerUnit) / metresPerUnit;
  const lines = [];
  for (let x = step; x < MAP_WIDTH; x += step) lines.push(svg("line", { x1: x, y1: 0, x2: x, y2: height }));
  for (let y = step; y < height; y += step) lines.push(svg("line", { x1: 0, y1: y, x2: MAP_WIDTH, y2: y }));
  return svg("g", { class: "grid" }, ...lines,
    svg("text", { x: MAP_WIDTH - 40, y: 44, class: "north", "text-anchor": "middle" }, "N ↑"));
}

function scaleMetres(metresPerUnit) {
  const target = metresPerUnit * MAP_WIDTH / 5;
  return [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000].reduce((a, b) => (Math.abs(b - target) < Math.abs(a - target) ? b : a));
}

function scaleBar({ height, metresPerUnit }) {
  const metres = scaleMetres(metresPerUnit);
  const length = metres / metresPerUnit;
  return svg("g", { class: "scale" }, svg("line", { x1: 20, y1: height - 20, x2: 20 + length, y2: height - 20 }),
    svg("text", { x: 20, y: height - 28 }, metres >= 1000 ? `${metres / 1000} km` : `${metres} m`));
}

function focusCard(ev) {
  showView("app");
  const card = document.querySelector(`li.event[data-event-ids~="${CSS.escape(ev.event_id)}"]`);
  if (card) {
    card.scrollIntoView({ behavior: "smooth", block: "center" });
    card.classList.add("focused");
    setTimeout(() => card.classList.remove("focused"), 2000);
  }
}

// --- history ----------------------------------------------------------------------------------

let currentView = "app";
let historyNext = null;

function showView(view) {
  currentView = view;
  $("#app").hidden = view !== "app";
  $("#history").hidden = view !== "history";
  for (const tab of document.querySelectorAll("#tabs .tab")) tab.classList.toggle("current", tab.dataset.view === view);
}

for (const tab of document.querySelectorAll("#tabs .tab")) {
  tab.addEventListener("click", () => {
    showView(tab.dataset.view);
    if (tab.dataset.view === "history") searchHistory();
  });
}

function historyParams() {
  const params = new URLSearchParams();
  const form = new FormData($("#history-form"));
  for (const key of ["subject", "list", "site", "box_id", "gate", "kind", "state"]) {
    const value = String(form.get(key) || "").trim();
    if (value) params.set(key, value);
  }
  // Whole days in the operator's own time zone, sent as instants.
  const from = form.get("from"), to = form.get("to");
  if (from) params.set("since", new Date(`${from}T00:00`).toISOString());
  if (to) {
    const end = new Date(`${to}T00:00`);
    end.setDate(end.getDate() + 1);
    params.set("until", end.toISOString());
  }
  return params;
}

async function searchHistory(more = false) {
  const params = historyParams();
  $("#export").href = `/api/history.csv?${params}`;
  params.set("limit", "100");
  if (more && historyNext) params.set("before", historyNext);
  let page;
  try {
    page = await api(`/api/history?${params}`);
  } catch (err) {
    $("#history-count").textContent = `refused: ${err.message}`;
    return;
  }
  const rows = page.events.map(historyRow);
  if (more) $("#history-rows").append(...rows); else $("#history-rows").replaceChildren(...rows);
  historyNext = page.next;
  $("#history-more").hidden = !historyNext;
  const shown = $("#history-rows").children.length;
  $("#history-count").textContent = `${shown} shown${historyNext ? ", more older" : ""}`;
}

function historyRow(ev) {
  const subject = ev.panic ? [ev.household || "-", ev.contact ? ` (${ev.contact})` : ""]
    : [ev.name || ev.subject_id, ev.name ? ` (${ev.subject_id})` : "", ev.strength ? ` · ${ev.strength.label}` : ""];
  return el("tr", { dataset: { eventId: ev.event_id, state: ev.state } },
    el("td", {}, new Date(ev.received_at * 1000).toLocaleString()),
    el("td", {}, KIND_LABELS[ev.kind] || ev.kind),
    el("td", {}, ...subject),
    el("td", {}, ev.panic ? "-" : ev.list),
    el("td", {}, [`${ev.site}/${ev.box_id}`, ev.gate].filter(Boolean).join(" · ")),
    el("td", {}, ev.state),
    el("td", {}, ev.acted_by ? `${ev.requested_state || ev.state} by ${ev.acted_by} ${new Date(ev.acted_at * 1000).toLocaleString()}` : "-",
      ev.note ? el("div", { class: "meta" }, `“${ev.note}”`) : null));
}

$("#history-form").addEventListener("submit", (e) => { e.preventDefault(); searchHistory(); });
$("#history-form").addEventListener("change", () => { $("#export").href = `/api/history.csv?${historyParams()}`; });
$("#history-more").addEventListener("click", () => searchHistory(true));

// --- boxes ----------------------------------------------------------------------------------

async function refreshBoxes() {
  const { boxes } = await api("/api/boxes");
  const counts = { online: 0, offline: 0, silent: 0 };
  for (const box of boxes) counts[box.status] = (counts[box.status] || 0) + 1;
  const receiversDown = boxes.reduce((n, box) => n + Object.values(box.panic_receivers || {}).filter((r) => r.state === "down").length, 0);
  $("#box-summary").textContent = `${boxes.length} · ${counts.online} online · ${counts.offline} offline · ${counts.silent} silent`
    + (receiversDown ? ` · ${receiversDown} panic receiver${receiversDown > 1 ? "s" : ""} down` : "");
  // Problems first, then by name.
  const order = { offline: 0, silent: 1, online: 2 };
  boxes.sort((a, b) => order[a.status] - order[b.status] || `${a.site}/${a.box_id}`.localeCompare(`${b.site}/${b.box_id}`));
  $("#box-rows").replaceChildren(...boxes.map((box) => el("tr", { dataset: { box: `${box.site}/${box.box_id}`, status: box.status } },
    el("td", {}, el("div", { class: "box-name" }, `${box.site}/${box.box_id}`,
      el("button", { type: "button", class: "preview secondary", title: "what its cameras see, with the gate line drawn",
        onclick: () => askPreview(box.site, box.box_id) }, "Preview"))),
    el("td", { class: `status-${box.status}` }, box.status),
    el("td", {}, box.last_seen_age_s == null ? "never" : `${Math.round(box.last_seen_age_s)} s ago`),
    el("td", { class: "cameras" }, Object.entries(box.cameras).map(([name, cam]) => `${name} ${cam.connected === false ? "LOST" : cam.fps}`).join(", ")
      || (Object.keys(box.panic_receivers || {}).length ? "none (panic buttons only)" : "-")),
    receiversCell(box.panic_receivers || {}),
    el("td", {}, box.outbox_depth ?? "-"),
    // What the box holds (its heartbeat's report and its list acks), whoever published it.
    el("td", { class: "held" }, Object.entries(box.lists).map(([name, version]) => `${name} v${version}`).join(", ") || "none reported"),
  )));
  const sites = [...new Set(boxes.map((b) => b.site))].sort(), ids = [...new Set(boxes.map((b) => b.box_id))].sort();
  for (const form of ["#filters", "#history-form"]) {
    fillSelect($(`${form} select[name=site]`), sites);
    fillSelect($(`${form} select[name=box_id]`), ids);
  }
  const before = [...boxStatus.entries()].join();
  boxStatus = new Map(boxes.map((b) => [`${b.site}/${b.box_id}`, b.status]));
  if ([...boxStatus.entries()].join() !== before) drawMap();
}

// A time of today as its time alone; an earlier one with its date.
function moment(epochS) {
  const at = new Date(epochS * 1000);
  return at.toDateString() === new Date().toDateString() ? at.toLocaleTimeString() : at.toLocaleString();
}

// Each panic receiver's state: ok, starting, or down since when (why, on hover), in the alarm colour.
function receiversCell(receivers) {
  const entries = Object.entries(receivers).sort(([a], [b]) => a.localeCompare(b));
  if (!entries.length) return el("td", {}, "-");
  return el("td", {}, el("div", { class: "receivers" }, ...entries.map(([name, r]) => el("div", {
      class: `receiver ${r.state}`, dataset: { receiver: name, state: r.state },
      title: r.state === "down" ? `down: ${r.error || "no reason given"}` : r.reconnects ? `came back ${r.reconnects} time(s)` : null },
    r.state === "down" ? `${name} DOWN${r.down_since ? ` since ${moment(r.down_since)}` : ""}`
      : `${name} ${r.state}`))));
}

// --- camera preview -------------------------------------------------------------------------
// The box draws each camera's newest frame (gate line, detection window, faces) and sends it; the page
// shows the latest per camera, and replaces it when a newer one arrives (a `previews` change).

const PREVIEW_PATIENCE_MS = 20000;
let previewOf = null;  // { site, box_id, requestedAt (the centre's clock) } while the dialog is open
let previewTimer = null;

async function askPreview(site, boxId) {
  previewOf = { site, box_id: boxId, requestedAt: null };
  $("#preview-box").textContent = `${site}/${boxId}`;
  $("#preview-cameras").replaceChildren();
  if (!$("#preview").open) $("#preview").showModal();
  await refreshPreviews();  // what it sent before, marked as earlier, while the new one is drawn
  $("#preview-status").textContent = "asking the box…";
  try {
    const asked = await postJson(`${boxPath(site, boxId)}/preview`, {});
    if (previewOf && previewOf.site === site && previewOf.box_id === boxId) previewOf.requestedAt = asked.requested_at;
  } catch (err) {
    $("#preview-status").textContent = `not asked: ${err.message}`;
    return;
  }
  clearTimeout(previewTimer);
  previewTimer = setTimeout(() => refreshPreviews(true), PREVIEW_PATIENCE_MS);
  refreshPreviews();
}

const boxPath = (site, boxId) => `/api/boxes/${encodeURIComponent(site)}/${encodeURIComponent(boxId)}`;

async function refreshPreviews(waitedLong = false) {
  const target = previewOf;
  if (!target || !$("#preview").open) return;
  const { previews } = await api(`${boxPath(target.site, target.box_id)}/previews`);
  if (previewOf !== target) return;  // another box's dialog since
  const fresh = (p) => target.requestedAt != null && p.received_at >= target.requestedAt;
  $("#preview-cameras").replaceChildren(...previews.map((p) => previewFigure(target, p, fresh(p))));
  const answered = previews.filter(fresh);
  if (target.requestedAt == null) return;
  if (answered.length) {
    clearTimeout(previewTimer);
    $("#preview-status").textContent = `answered ${new Date(Math.max(...answered.map((p) => p.received_at)) * 1000).toLocaleTimeString()}`;
  } else if (waitedLong) {
    $("#preview-status").textContent = `no answer from the box in ${PREVIEW_PATIENCE_MS / 1000} s: is it online? (Ask again)`;
  }
}

const PREVIEW_PROBLEMS = { no_camera: "no camera", unknown_camera: "no such camera", no_frame: "no picture", failed: "failed" };

function previewFigure(target, p, fresh) {
  const taken = p.taken_at ? new Date(p.taken_at * 1000) : null;
  const caption = [p.camera || "box", taken ? `taken ${taken.toLocaleString()}` : `answered ${new Date(p.received_at * 1000).toLocaleString()}`,
    p.width ? `frame ${p.width}×${p.height}` : "", fresh ? "" : "(earlier)"].filter(Boolean).join(" · ");
  const dataset = { camera: p.camera || "", status: p.status, fresh: String(fresh), takenAt: p.taken_at ?? "" };
  if (!p.has_image) {
    return el("figure", { class: `preview-camera${fresh ? "" : " earlier"}`, dataset },
      el("p", { class: "preview-none" }, `${PREVIEW_PROBLEMS[p.status] || p.status}: ${p.detail || ""}`),
      el("figcaption", {}, caption));
  }
  const src = `${boxPath(target.site, target.box_id)}/previews/${encodeURIComponent(p.camera)}.jpg?t=${p.received_at}`;
  return el("figure", { class: `preview-camera${fresh ? "" : " earlier"}`, dataset },
    el("img", { src, alt: `camera ${p.camera} with the gate line drawn` }),
    el("figcaption", {}, caption),
    p.summary.length ? el("ul", {}, ...p.summary.map((line) => el("li", {}, line))) : null);
}

$("#preview-again").addEventListener("click", () => { if (previewOf) askPreview(previewOf.site, previewOf.box_id); });
$("#preview").addEventListener("close", () => { previewOf = null; clearTimeout(previewTimer); });

function fillSelect(select, values, withAll = true) {
  const current = select.value;
  select.replaceChildren(...(withAll ? [el("option", { value: "" }, "all")] : []), ...values.map((v) => el("option", { value: v }, v)));
  select.value = values.includes(current) ? current : withAll ? "" : values[0] || "";
}

// --- lists ----------------------------------------------------------------------------------

async function refreshLists() {
  const { lists } = await api("/api/lists");
  $("#list-rows").replaceChildren(...lists.map((item) => {
    // The newest version: this console's, or one published elsewhere (the CLI) seen on the broker.
    const elsewhere = item.published_elsewhere;
    const latest = elsewhere ? elsewhere.version : item.published?.version;
    const applied = item.boxes.filter((b) => latest != null && b.version === latest).length;
    const behind = item.boxes.filter((b) => latest != null && b.version !== latest);
    const held = [...new Set(item.boxes.map((b) => b.version).filter((v) => v != null))].sort((a, b) => b - a);
    const what = elsewhere
      ? `v${elsewhere.version} (${elsewhere.entries} entries, published elsewhere, e.g. the CLI, ${new Date(elsewhere.created_at).toLocaleString()})`
      : latest != null ? `v${latest} (${item.published.entries} entries, by ${item.published.by})`
      : held.length ? `boxes hold ${held.map((v) => "v" + v).join(", ")} (not published from this console)`
      : "nothing published yet";
    return el("li", { dataset: { list: item.list } },
      el("strong", {}, item.list), " ", el("span", { class: "meta" }, `(${item.kind})`), " ", what,
      latest == null ? "" : ` · applied by ${applied}/${item.boxes.length} boxes`,
      behind.length ? el("div", { class: "meta" },
        "behind: " + behind.slice(0, 10).map((b) => `${b.site}/${b.box_id} ${b.version == null ? "none" : "v" + b.version}`).join(", ")
        + (behind.length > 10 ? ` and ${behind.length - 10} more` : "")) : null);
  }));
}

// A `plates` list is built from a plate CSV, any other from a zip of photos: offer the one the list takes.
function uploadField(listName) {
  return listKinds.get(listName) === "plates" ? "plates" : "photos";
}

function showUploadFields() {
  const wanted = uploadField($("#upload-form select[name=list]").value);
  for (const field of ["photos", "plates"]) $(`#upload-form label.${field}`).hidden = field !== wanted;
}

$("#upload-form select[name=list]").addEventListener("change", showUploadFields);

$("#upload-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const form = new FormData(e.target);
  const body = new FormData();
  body.set("mode", form.get("mode"));
  for (const field of [uploadField(form.get("list")), "meta"]) if (form.get(field)?.size) body.set(field, form.get(field));
  $("#upload-result").textContent = "building…";
  try {
    const result = await api(`/api/lists/${encodeURIComponent(form.get("list"))}/versions`, { method: "POST", body });
    $("#upload-result").textContent = `published ${result.list} v${result.version} (${result.entries} entries)`;
    e.target.reset();
    showUploadFields();  // the form is back on its first list
  } catch (err) {
    $("#upload-result").textContent = `refused: ${err.message}`;
  }
  refreshLists();
});

$("#remove-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const form = new FormData(e.target);
  const ids = form.get("subjects").split(",").map((s) => s.trim()).filter(Boolean);
  try {
    const result = await postJson(`/api/lists/${encodeURIComponent(form.get("list"))}/remove`, { subject_ids: ids });
    $("#remove-result").textContent = `published ${result.list} v${result.version} (${result.entries} entries)`;
  } catch (err) {
    $("#remove-result").textContent = `refused: ${err.message}`;
  }
  refreshLists();
});

setInterval(() => { if (me && !$("#app").hidden) refreshBoxes().catch(() => {}); }, 10000);  // ages keep moving
start();
