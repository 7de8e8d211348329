// Cairn's web console: one page, no dependencies. Everything it shows comes from this
// node's HTTP API (/v1/status, the REST Proxy v3 admin routes, the v2 records route); all
// data is put on the page as text (never as HTML).
"use strict";

const REFRESH_MS = 2000;
const SPARK_POINTS = 30;
const RECENT_PER_PARTITION = 10;
const RECENT_SHOWN = 20;

let status = null;
let statusError = null;
// topic -> [{t, total}] of the sum of high watermarks at each refresh.
const history = new Map();
let viewKey = null;

// --- DOM helpers ---------------------------------------------------------------------

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k === "class") node.className = v;
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

function table(headers, rows, caption) {
  const head = el("tr", {}, headers.map(h => el("th", { scope: "col", class: h.num ? "num" : null }, h.label || h)));
  const body = rows.map(r => el("tr", {}, r.map((cell, i) => {
    const num = headers[i] && headers[i].num;
    return el("td", { class: num ? "num" : (cell && cell.data ? "data" : null) }, cell && cell.data !== undefined ? cell.data : cell);
  })));
  return el("table", {}, caption ? el("caption", { class: "muted" }, caption) : null, el("thead", {}, head), el("tbody", {}, body));
}

// Replaces a region's content, unless keyboard focus is inside it (a refresh would drop
// the focus; the region catches up once focus leaves it).
function fill(id, ...children) {
  const node = document.getElementById(id);
  if (!node) return;
  const active = document.activeElement;
  if (active && active !== node && active !== document.body && node.contains(active)) return;
  node.replaceChildren(...children.flat());
}

function bytes(n) {
  if (n === null || n === undefined) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i === 0 ? n : n.toFixed(1)) + " " + units[i];
}

function count(n) {
  return n === null || n === undefined ? "–" : Number(n).toLocaleString("en-US");
}

// --- data ----------------------------------------------------------------------------

async function api(method, path, body, accept) {
  const init = { method, headers: { Accept: accept || "application/json" } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  const text = await response.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch (_) { json = null; }
  if (!response.ok) {
    const message = json && json.message ? json.message : `HTTP ${response.status}`;
    throw new Error(message);
  }
  return json;
}

async function refresh() {
  try {
    status = await api("GET", "/v1/status");
    statusError = null;
    const now = Date.now();
    for (const t of status.topics) {
      const total = t.partitions.reduce((s, p) => s + p.high_watermark, 0);
      const h = history.get(t.name) || [];
      h.push({ t: now, total });
      while (h.length > SPARK_POINTS + 1) h.shift();
      history.set(t.name, h);
    }
    fill("cluster", `cluster ${status.cluster_id} · node ${status.node_id} · v${status.version}`);
    fill("refreshed", "updated " + new Date(now).toLocaleTimeString());
  } catch (e) {
    statusError = e.message;
    fill("refreshed", "cannot reach the node: " + e.message);
  }
  show();
}

// Records per second between refreshes.
function rates(topic) {
  const h = history.get(topic) || [];
  const out = [];
  for (let i = 1; i < h.length; i++) {
    const dt = (h[i].t - h[i - 1].t) / 1000;
    out.push(dt > 0 ? Math.max(0, (h[i].total - h[i - 1].total) / dt) : 0);
  }
  return out;
}

function sparkline(values, label) {
  const w = 120, hgt = 24;
  const max = Math.max(1, ...values);
  const step = values.length > 1 ? w / (SPARK_POINTS - 1) : 0;
  const points = values.map((v, i) => `${(i * step).toFixed(1)},${(hgt - 2 - (v / max) * (hgt - 4)).toFixed(1)}`).join(" ");
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("class", "spark");
  svg.setAttribute("width", w);
  svg.setAttribute("height", hgt);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", label);
  const line = document.createElementNS(ns, "polyline");
  line.setAttribute("points", points);
  line.setAttribute("fill", "none");
  line.setAttribute("stroke", "#0b5cad");
  line.setAttribute("stroke-width", "1.5");
  svg.append(line);
  return svg;
}

// --- views ---------------------------------------------------------------------------

function route() {
  const hash = decodeURIComponent(location.hash.replace(/^#/, "")) || "/";
  const parts = hash.split("/").filter(Boolean);
  if (parts[0] === "topics" && parts.length > 1) return { view: "topic", name: parts.slice(1).join("/") };
  if (parts[0] === "groups" && parts.length > 1) return { view: "group", name: parts.slice(1).join("/") };
  if (parts[0] === "topics") return { view: "topics" };
  if (parts[0] === "groups") return { view: "groups" };
  return { view: "overview" };
}

function show() {
  const r = route();
  const key = r.view + ":" + (r.name || "");
  const section = { overview: "#/", topics: "#/topics", topic: "#/topics", groups: "#/groups", group: "#/groups" }[r.view];
  for (const a of document.querySelectorAll("nav a")) {
    if (a.getAttribute("href") === section) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  if (key !== viewKey && status) {
    viewKey = key;
    const main = document.getElementById("main");
    main.replaceChildren(...skeleton(r));
    main.focus({ preventScroll: true });
    if (r.view === "topic") loadRecords(r.name);
  }
  update();
}

function skeleton(r) {
  switch (r.view) {
    case "topics":
      return [el("h2", {}, "Topics"), createForm(), el("div", { id: "topics" })];
    case "groups":
      return [el("h2", {}, "Consumer groups"), el("div", { id: "groups" })];
    case "topic":
      return [
        el("h2", {}, "Topic ", el("span", { id: "topic-name" }, r.name)),
        el("div", { id: "topic-summary" }),
        el("h3", {}, "Partitions"), el("div", { id: "partitions" }),
        el("h3", {}, "Recent records"),
        el("p", {},
          el("button", { type: "button", onclick: () => loadRecords(r.name) }, "Reload records"), " ",
          el("label", { style: "display:inline-flex;flex-direction:row;gap:4px" },
            el("input", { type: "checkbox", id: "hex", onchange: () => loadRecords(r.name) }), "show as hex")),
        el("div", { id: "records" }, "Loading…"),
        el("h3", {}, "Delete"), deleteForm(r.name),
      ];
    case "group":
      return [el("h2", {}, "Consumer group ", el("span", {}, r.name)), el("div", { id: "group" })];
    default:
      return [
        el("h2", {}, "Cluster"), el("div", { id: "cards", class: "cards" }),
        el("h2", {}, "Brokers"), el("div", { id: "brokers" }),
        el("h2", {}, "Topics"), el("div", { id: "topics" }),
        el("h2", {}, "Consumer groups"), el("div", { id: "groups" }),
      ];
  }
}

function update() {
  if (!status) {
    if (statusError) {
      viewKey = null; // rebuilt once the node answers
      fill("main", el("p", { class: "bad" }, "Cannot reach the node: " + statusError));
    }
    return;
  }
  const r = route();
  if (document.getElementById("cards")) fill("cards", cards());
  if (document.getElementById("brokers")) fill("brokers", brokersTable());
  if (document.getElementById("topics")) fill("topics", topicsTable(r.view === "overview"));
  if (document.getElementById("groups")) fill("groups", groupsTable());
  if (r.view === "topic") topicDetail(r.name);
  if (r.view === "group") groupDetail(r.name);
}

function card(label, value, cls) {
  return el("div", { class: "card" }, el("div", { class: "label" }, label), el("div", { class: "value " + (cls || "") }, value));
}

function cards() {
  const s = status;
  const disk = s.disk;
  return [
    card("Controller", s.controller === null ? "none" : "node " + s.controller, s.controller === null ? "bad" : ""),
    card("Brokers", s.brokers.length),
    card("Under-replicated partitions", s.under_replicated_partitions, s.under_replicated_partitions ? "bad" : "ok"),
    card("Offline partitions", s.offline_partitions, s.offline_partitions ? "bad" : "ok"),
    card("Topics", s.topics.filter(t => !t.internal).length),
    card("Disk free", disk.available_bytes === null ? "–" : bytes(disk.available_bytes), disk.full ? "bad" : ""),
  ];
}

function brokersTable() {
  const rows = status.brokers.map(b => [
    b.node_id, `${b.host}:${b.port}`,
    [b.node_id === status.controller ? "controller" : null, b.node_id === status.node_id ? "this node" : null].filter(Boolean).join(", "),
  ]);
  return table(["Node", "Kafka address", "Role"], rows);
}

function topicsTable(brief) {
  const topics = status.topics.filter(t => !t.internal).sort((a, b) => a.name.localeCompare(b.name));
  if (!topics.length) return el("p", { class: "muted" }, "No topics yet.");
  const rows = topics.map(t => {
    const r = rates(t.name);
    const now = r.length ? r[r.length - 1] : 0;
    const under = t.partitions.filter(p => p.leader !== null && p.isr.length < p.replicas.length).length;
    return [
      el("a", { href: "#/topics/" + encodeURIComponent(t.name) }, t.name),
      t.partitions_count, count(t.records), bytes(t.size_bytes),
      sparkline(r, `${t.name}: records per second, last minute`),
      now.toFixed(1),
      under ? el("span", { class: "bad" }, under) : 0,
    ];
  });
  return table(["Topic", { label: "Partitions", num: true }, { label: "Records", num: true }, { label: "Size", num: true },
    "Throughput", { label: "Records/s", num: true }, { label: "Under-replicated", num: true }], brief ? rows.slice(0, 50) : rows);
}

function groupsTable() {
  const groups = status.groups.slice().sort((a, b) => a.group_id.localeCompare(b.group_id));
  if (!groups.length) return el("p", { class: "muted" }, "No consumer groups.");
  return table(["Group", "State", { label: "Coordinator", num: true }, { label: "Members", num: true }, { label: "Lag", num: true }],
    groups.map(g => [el("a", { href: "#/groups/" + encodeURIComponent(g.group_id) }, g.group_id), g.state,
      g.coordinator === null || g.coordinator === undefined ? "–" : "node " + g.coordinator, g.members, count(g.total_lag)]));
}

function topicDetail(name) {
  const t = status.topics.find(x => x.name === name);
  if (!t) {
    fill("topic-summary", el("p", { class: "bad" }, "No such topic (deleted?)."));
    fill("partitions");
    return;
  }
  fill("topic-summary", el("p", {}, `${t.partitions_count} partition(s), ${count(t.records)} records, ${bytes(t.size_bytes)}`));
  fill("partitions", table(["Partition", "Leader", "Replicas", "In sync", { label: "Log start", num: true },
    { label: "High watermark", num: true }, { label: "Size", num: true }],
  t.partitions.map(p => [p.partition, p.leader === null ? el("span", { class: "bad" }, "none") : p.leader,
    p.replicas.join(", "), p.isr.join(", "), count(p.log_start_offset), count(p.high_watermark), bytes(p.size_bytes)])));
}

function groupDetail(name) {
  const g = status.groups.find(x => x.group_id === name);
  if (!g) { fill("group", el("p", { class: "bad" }, "No such group.")); return; }
  fill("group",
    el("p", {}, `State ${g.state}, ${g.members} member(s), protocol type ${g.protocol_type || "–"}, total lag ${count(g.total_lag)}, coordinated by node ${g.coordinator ?? "–"}`),
    table(["Topic", { label: "Partition", num: true }, { label: "Committed", num: true }, { label: "Log end", num: true }, { label: "Lag", num: true }],
      g.partitions.map(p => [p.topic, p.partition, count(p.committed_offset), count(p.log_end_offset), count(p.lag)])));
}

// --- records -------------------------------------------------------------------------

function decode64(text) {
  if (text === null || text === undefined) return null;
  const raw = atob(text);
  const out = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
  return out;
}

function shown(data, hex) {
  if (data === null) return el("span", { class: "muted" }, "null");
  if (!hex) {
    try {
      const text = new TextDecoder("utf-8", { fatal: true }).decode(data);
      // eslint-disable-next-line no-control-regex
      if (!/[\u0000-\u0008\u000e-\u001f\u007f]/.test(text)) return { data: text };
    } catch (_) { /* not UTF-8: hex below */ }
  }
  return { data: Array.from(data, b => b.toString(16).padStart(2, "0")).join(" ") };
}

async function loadRecords(name) {
  const t = status && status.topics.find(x => x.name === name);
  if (!t) { if (status) fill("records", el("p", { class: "muted" }, "No such topic.")); return; }
  const hex = document.getElementById("hex") && document.getElementById("hex").checked;
  const found = [];
  try {
    for (const p of t.partitions) {
      if (p.high_watermark <= p.log_start_offset) continue;
      const from = Math.max(p.log_start_offset, p.high_watermark - RECENT_PER_PARTITION);
      const path = `/topics/${encodeURIComponent(name)}/partitions/${p.partition}/records` +
        `?offset=${from}&max_records=${RECENT_PER_PARTITION}&max_bytes=65536&timeout_ms=0`;
      const records = await api("GET", path, undefined, "application/vnd.kafka.binary.v2+json");
      found.push(...records);
    }
  } catch (e) {
    fill("records", el("p", { class: "bad" }, "Cannot read records: " + e.message));
    return;
  }
  if (!found.length) { fill("records", el("p", { class: "muted" }, "The topic holds no records.")); return; }
  found.sort((a, b) => b.timestamp - a.timestamp || b.offset - a.offset);
  fill("records", table(["Partition", "Offset", "Timestamp", "Key", "Value"],
    found.slice(0, RECENT_SHOWN).map(r => [r.partition, r.offset, new Date(r.timestamp).toISOString(),
      shown(decode64(r.key), hex), shown(decode64(r.value), hex)]),
    `The ${Math.min(found.length, RECENT_SHOWN)} most recent records (at most ${RECENT_PER_PARTITION} per partition), read-only.`));
}

// --- create and delete ----------------------------------------------------------------

function createForm() {
  const message = el("p", { id: "create-message", class: "message", role: "status" });
  const form = el("form", { class: "inline", id: "create-topic", onsubmit: async (ev) => {
    ev.preventDefault();
    const name = form.elements["topic_name"].value.trim();
    const partitions = Number(form.elements["partitions_count"].value);
    message.className = "message";
    message.textContent = "Creating…";
    try {
      await api("POST", `/v3/clusters/${encodeURIComponent(status.cluster_id)}/topics`,
        { topic_name: name, partitions_count: partitions });
      message.className = "message ok";
      message.textContent = `Created topic ${name}.`;
      form.reset();
      await refresh();
    } catch (e) {
      message.className = "message bad";
      message.textContent = `Cannot create ${name}: ${e.message}`;
    }
  } },
  el("label", {}, "New topic name", el("input", { name: "topic_name", required: true, pattern: "[a-zA-Z0-9._-]+", maxlength: 249 })),
  el("label", {}, "Partitions", el("input", { name: "partitions_count", type: "number", min: 1, value: 1, required: true, style: "width:6em" })),
  el("button", { type: "submit" }, "Create topic"));
  return el("section", { "aria-label": "Create a topic" }, form, message);
}

function deleteForm(name) {
  const message = el("p", { class: "message", role: "status" });
  const input = el("input", { id: "confirm-name", "aria-describedby": "confirm-help", autocomplete: "off" });
  const button = el("button", { type: "submit", class: "danger", disabled: true }, "Delete topic");
  input.addEventListener("input", () => { button.disabled = input.value !== name; });
  const form = el("form", { class: "inline", id: "delete-topic", onsubmit: async (ev) => {
    ev.preventDefault();
    if (input.value !== name) return;
    try {
      await api("DELETE", `/v3/clusters/${encodeURIComponent(status.cluster_id)}/topics/${encodeURIComponent(name)}`);
      message.className = "message ok";
      message.textContent = `Deleted topic ${name}.`;
      await refresh();
      location.hash = "#/topics";
    } catch (e) {
      message.className = "message bad";
      message.textContent = `Cannot delete ${name}: ${e.message}`;
    }
  } },
  el("label", {}, "Type the topic name to confirm", input), button);
  return el("section", { "aria-label": "Delete this topic" },
    el("p", { id: "confirm-help", class: "muted" }, "Deleting removes the topic and all its records on every node. It cannot be undone."),
    form, message);
}

// --- keyboard ------------------------------------------------------------------------

let pendingG = false;
document.addEventListener("keydown", (ev) => {
  if (ev.target instanceof HTMLInputElement || ev.ctrlKey || ev.metaKey || ev.altKey) return;
  if (pendingG) {
    pendingG = false;
    const to = { o: "#/", t: "#/topics", g: "#/groups" }[ev.key];
    if (to) { location.hash = to; ev.preventDefault(); }
    return;
  }
  if (ev.key === "g") pendingG = true;
});

window.addEventListener("hashchange", show);
refresh();
setInterval(refresh, REFRESH_MS);
