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

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
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
  $("#app").hidden = true;
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
  $("#app").hidden = false;
  $("#logout").hidden = false;
  $("#who").textContent = me.name;
  showBroker(me);
  listKinds = new Map(me.lists.map((item) => [item.list, item.kind]));
  for (const select of document.querySelectorAll("select[name=list]")) {
    select.replaceChildren(...me.lists.map((item) => el("option", { value: item.list }, item.list)));
  }
  showUploadFields();
  connectStream();
  await Promise.all([refreshEvents(), refreshBoxes(), refreshLists()]);
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
  stream.addEventListener("hello", () => {
    setLink(true);
    refreshEvents(); refreshBoxes(); refreshLists();  // catch up on what happened while disconnected
  });
  stream.addEventListener("change", (message) => {
    const change = JSON.parse(message.data);
    if (change.kind === "events") {
      if (change.new_panic) {
        alarm();
        now(refreshEvents, "events");  // a panic is shown at once
      } else later(refreshEvents, "events");
    } else if (change.kind === "boxes") {
      later(refreshBoxes, "boxes");
      later(refreshLists, "lists", 1000);  // a new box counts towards "applied by"
    }
    else if (change.kind === "lists") later(refreshLists, "lists");
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

let audio = null;  // one context for the page: each one holds an audio device stream
function alarm() {
  document.title = "PANIC — gatebox centre";
  setTimeout(() => { document.title = "gatebox centre"; }, 10000);
  try {
    audio = audio || new AudioContext();
    for (let i = 0; i < 3; i++) {
      const tone = audio.createOscillator();
      tone.frequency.value = 880;
      tone.connect(audio.destination);
      tone.start(audio.currentTime + i * 0.4);
      tone.stop(audio.currentTime + i * 0.4 + 0.25);
    }
  } catch { /* no audio device: the colour still shows it */ }
}

// --- events ---------------------------------------------------------------------------------

$("#filters").addEventListener("change", refreshEvents);

async function refreshEvents() {
  const params = new URLSearchParams();
  for (const [key, value] of new FormData($("#filters"))) if (value) params.set(key, value);
  params.set("limit", "200");
  const { events } = await api(`/api/events?${params}`);
  $("#events").replaceChildren(...events.map(eventCard));
  $("#event-count").textContent = `${events.length} shown`;
}

function eventCard(ev) {
  // Whose event: ids are the box's own, so the box is named too (two boxes may send the same id).
  const eventUrl = (leaf) => `/api/events/${encodeURIComponent(ev.event_id)}/${leaf}?${new URLSearchParams({ site: ev.site, box_id: ev.box_id })}`;
  const urgent = URGENT_KINDS.has(listKinds.get(ev.list));
  const classes = ["event", ev.panic ? "panic" : null, urgent ? "urgent" : null, `state-${ev.state}`].filter(Boolean).join(" ");
  const picture = ev.has_snapshot
    ? el("img", { src: eventUrl("snapshot.jpg"), alt: "snapshot", loading: "lazy" })
    : el("div", { class: "noimg" }, ev.panic ? "SOS" : "—");
  const title = ev.panic
    ? [KIND_LABELS[ev.kind] || ev.kind, ev.household ? ` · ${ev.household}` : "", ev.presses > 1 ? ` · ${ev.presses} presses` : ""]
    : [KIND_LABELS[ev.kind] || ev.kind, " · ", ev.subject_id, ev.plate ? ` · ${ev.plate}` : ""];
  const details = ev.panic
    ? [`device ${ev.device_id || "-"}`, ev.address ? `address ${ev.address}` : "", ev.battery != null ? `battery ${ev.battery}%` : ""]
    : [`list ${ev.list} (${ev.list_version || "?"})`, ev.score != null ? `score ${ev.score.toFixed(2)}` : "",
       ev.plate_read && ev.plate_read !== ev.plate ? `read ${ev.plate_read}` : ""];
  const where = [`${ev.site}/${ev.box_id}`, ev.camera, ev.gate, ev.site_name].filter(Boolean).join(" · ");
  const pending = ev.requested_state && ev.requested_state !== ev.state;
  const note = el("input", { name: "note", placeholder: "note (what was done)", maxlength: "1000", value: ev.note || "" });
  const act = (state) => async (e) => {
    e.target.disabled = true;
    try {
      await postJson(eventUrl(state), { note: note.value || null });
    } catch (err) {
      alert(`${state} failed: ${err.message}`);
    }
    refreshEvents();
  };
  const requested = ev.requested_state || ev.state;
  // Unconfirmed for a while (the box was offline when it went out): it may be sent again.
  const stale = pending && Date.now() / 1000 - ev.acted_at > me.ack_resend_after_s;
  return el("li", { class: classes, dataset: { eventId: ev.event_id, state: ev.state } },
    picture,
    el("div", {},
      el("div", { class: "title" }, ...title),
      el("div", {}, details.filter(Boolean).join(" · ")),
      el("div", { class: "meta" }, where),
      el("div", { class: "meta" }, `seen ${new Date(ev.ts).toLocaleString()}`,
        ev.acted_by ? ` · ${ev.requested_state} by ${ev.acted_by}` : "", ev.note ? ` · “${ev.note}”` : ""),
    ),
    el("div", { class: "actions" },
      el("div", {}, "box: ", el("span", { class: `badge ${ev.state} box-state` }, ev.state),
        pending ? el("span", { class: "badge pending" }, `${ev.requested_state} sent…`) : null),
      requested === "closed" ? null : note,
      requested === "new" ? el("button", { type: "button", class: "ack", onclick: act("ack") }, "Acknowledge") : null,
      stale ? el("button", { type: "button", class: "resend", onclick: act(ev.requested_state === "closed" ? "close" : "ack") },
        `Send ${ev.requested_state === "closed" ? "close" : "ack"} again`) : null,
      requested === "closed" ? null
        : el("button", { type: "button", class: "close secondary", onclick: act("close") }, "Close"),
    ),
  );
}

// --- boxes ----------------------------------------------------------------------------------

async function refreshBoxes() {
  const { boxes } = await api("/api/boxes");
  const counts = { online: 0, offline: 0, silent: 0 };
  for (const box of boxes) counts[box.status] = (counts[box.status] || 0) + 1;
  $("#box-summary").textContent = `${boxes.length} · ${counts.online} online · ${counts.offline} offline · ${counts.silent} silent`;
  // Problems first, then by name.
  const order = { offline: 0, silent: 1, online: 2 };
  boxes.sort((a, b) => order[a.status] - order[b.status] || `${a.site}/${a.box_id}`.localeCompare(`${b.site}/${b.box_id}`));
  $("#box-rows").replaceChildren(...boxes.map((box) => el("tr", { dataset: { box: `${box.site}/${box.box_id}`, status: box.status } },
    el("td", {}, `${box.site}/${box.box_id}`),
    el("td", { class: `status-${box.status}` }, box.status),
    el("td", {}, box.last_seen_age_s == null ? "never" : `${Math.round(box.last_seen_age_s)} s ago`),
    el("td", {}, Object.entries(box.cameras).map(([name, cam]) => `${name} ${cam.connected === false ? "LOST" : cam.fps}`).join(", ") || "-"),
    el("td", {}, box.outbox_depth ?? "-"),
    el("td", {}, Object.entries(box.lists).map(([name, version]) => `${name} v${version}`).join(", ") || "-"),
  )));
  fillSelect($("#filters select[name=site]"), [...new Set(boxes.map((b) => b.site))].sort());
  fillSelect($("#filters select[name=box_id]"), [...new Set(boxes.map((b) => b.box_id))].sort());
}

function fillSelect(select, values) {
  const current = select.value;
  select.replaceChildren(el("option", { value: "" }, "all"), ...values.map((v) => el("option", { value: v }, v)));
  select.value = values.includes(current) ? current : "";
}

// --- lists ----------------------------------------------------------------------------------

async function refreshLists() {
  const { lists } = await api("/api/lists");
  $("#list-rows").replaceChildren(...lists.map((item) => {
    const latest = item.published?.version;
    const applied = item.boxes.filter((b) => latest != null && b.version === latest).length;
    const behind = item.boxes.filter((b) => latest != null && b.version !== latest);
    return el("li", { dataset: { list: item.list } },
      el("strong", {}, item.list), " ", el("span", { class: "meta" }, `(${item.kind})`), " ",
      latest == null ? "nothing published from this console"
        : `v${latest} (${item.published.entries} entries, by ${item.published.by}) · applied by ${applied}/${item.boxes.length} boxes`,
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
