// flashQ dashboard: the overview (totals, chart, queues, shard processes, workers, crons).
// Loads GET /dashboard/snapshot, then follows /ws/dashboard; falls back to polling.
"use strict";

const TOKEN_KEY = "flashq.token";
const WINDOW_MS = 5 * 60 * 1000;

const Dash = {
  token: sessionStorage.getItem(TOKEN_KEY) || "",
  snapshot: null,
  series: [],
  prev: null,
  ws: null,
  pollTimer: null,
  intervalMs: 3000,
  listeners: [],
};

// -- small helpers ---------------------------------------------------------------------------

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function num(v) {
  return typeof v === "number" ? v.toLocaleString("en-US") : "–";
}

function ago(ms) {
  if (!ms) return "–";
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 60) return s + "s ago";
  if (s < 3600) return Math.round(s / 60) + "m ago";
  return Math.round(s / 3600) + "h ago";
}

function duration(ms) {
  const s = Math.floor(ms / 1000);
  if (s < 60) return s + "s";
  if (s < 3600) return Math.floor(s / 60) + "m " + (s % 60) + "s";
  if (s < 86400) return Math.floor(s / 3600) + "h " + Math.floor((s % 3600) / 60) + "m";
  return Math.floor(s / 86400) + "d " + Math.floor((s % 86400) / 3600) + "h";
}

function when(ms) {
  return ms ? new Date(ms).toLocaleString() : "–";
}

function toast(text, isError) {
  const el = h("div", { class: "toast" + (isError ? " err" : "") }, text);
  document.getElementById("toasts").append(el);
  setTimeout(() => el.remove(), isError ? 6000 : 3000);
}

function table(el, headers, rows, emptyText) {
  const head = h("thead", {}, h("tr", {}, headers.map((x) =>
    h("th", { class: x.startsWith("#") ? "num" : "" }, x.replace(/^#/, "")))));
  const body = h("tbody", {});
  if (!rows.length) body.append(h("tr", {}, h("td", { class: "empty", colspan: headers.length }, emptyText)));
  for (const r of rows) body.append(r);
  el.replaceChildren(head, body);
}

// -- API ------------------------------------------------------------------------------------

async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (Dash.token) headers.Authorization = "Bearer " + Dash.token;
  const res = await fetch(path, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (res.status === 401) {
    showLogin();
    throw new Error("Authentication required");
  }
  let json;
  try {
    json = await res.json();
  } catch (e) {
    throw new Error(res.status + " " + res.statusText);
  }
  if (!json.ok) throw new Error(json.error || "request failed");
  return json.data;
}

async function act(label, method, path, body) {
  try {
    const data = await api(method, path, body);
    toast(label + (typeof data === "number" ? ": " + data : ""));
    refresh();
    return data;
  } catch (e) {
    toast(label + " failed: " + e.message, true);
    return undefined;
  }
}

// -- auth -----------------------------------------------------------------------------------

// The page's hash carries deep links: #queue=emails&state=failed, #job=42, and (once, then
// removed from the address bar) #token=… for opening an authenticated dashboard from a link.
function hashParams() {
  return new URLSearchParams(location.hash.replace(/^#/, ""));
}

function takeTokenFromUrl() {
  const params = hashParams();
  const token = params.get("token");
  if (token === null) return;
  Dash.token = token;
  sessionStorage.setItem(TOKEN_KEY, token);
  params.delete("token");
  const rest = params.toString();
  history.replaceState(null, "", location.pathname + location.search + (rest ? "#" + rest : ""));
}

function showLogin() {
  document.getElementById("login").classList.remove("hidden");
  document.getElementById("login-token").focus();
}

document.getElementById("login-form").addEventListener("submit", (e) => {
  e.preventDefault();
  Dash.token = document.getElementById("login-token").value.trim();
  sessionStorage.setItem(TOKEN_KEY, Dash.token);
  document.getElementById("login").classList.add("hidden");
  start();
});
document.getElementById("token-btn").addEventListener("click", showLogin);

// -- live updates ---------------------------------------------------------------------------

function setConn(state) {
  const el = document.getElementById("conn");
  el.className = "pill " + { live: "pill-live", wait: "pill-wait", down: "pill-down" }[state];
  el.textContent = { live: "● live", wait: "polling", down: "offline" }[state];
}

async function refresh() {
  try {
    render(await api("GET", "/dashboard/snapshot"));
    if (!Dash.ws || Dash.ws.readyState !== WebSocket.OPEN) setConn("wait");
  } catch (e) {
    if (e.message !== "Authentication required") setConn("down");
  }
}

function connectWs() {
  if (Dash.ws) Dash.ws.close();
  const proto = location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(proto + "://" + location.host + "/ws/dashboard");
  Dash.ws = ws;
  ws.onopen = () => {
    if (Dash.token) ws.send(JSON.stringify({ type: "auth", token: Dash.token }));
    setConn("live");
  };
  ws.onmessage = (e) => render(JSON.parse(e.data));
  ws.onclose = () => {
    if (Dash.ws !== ws) return;
    setConn("wait");
    setTimeout(() => Dash.ws === ws && connectWs(), 3000);
  };
}

function poll() {
  clearInterval(Dash.pollTimer);
  Dash.pollTimer = setInterval(() => {
    if (!Dash.ws || Dash.ws.readyState !== WebSocket.OPEN) refresh();
  }, Dash.intervalMs);
}

async function start() {
  takeTokenFromUrl();
  await refresh();
  if (Dash.snapshot) {
    connectWs();
    poll();
  }
}

// -- rendering ------------------------------------------------------------------------------

function addPoint(s) {
  const m = s.metrics || {};
  const latSum = (m.avg_latency_ms || 0) * (m.total_completed || 0);
  if (!Dash.series.length) {
    for (const p of s.metrics_history || []) {
      Dash.series.push({ t: p.timestamp, tp: p.throughput, lat: p.latency_ms, q: p.queued });
    }
  }
  const prev = Dash.prev;
  const last = Dash.series[Dash.series.length - 1];
  // A point per second at most: two snapshots close together (page load, then the first
  // WebSocket message) would otherwise make a spurious zero-throughput point.
  if (prev && s.timestamp - prev.t < 1000) return;
  if (prev && (!last || s.timestamp > last.t)) {
    const done = (m.total_completed || 0) - prev.completed;
    Dash.series.push({
      t: s.timestamp,
      tp: done > 0 ? (done * 1000) / (s.timestamp - prev.t) : 0,
      lat: done > 0 ? Math.max(0, (latSum - prev.latSum) / done) : 0,
      q: (s.stats || {}).queued || 0,
    });
  }
  Dash.prev = { t: s.timestamp, completed: m.total_completed || 0, latSum };
  while (Dash.series.length && Dash.series[0].t < s.timestamp - WINDOW_MS) Dash.series.shift();
}

function renderChart() {
  const pts = Dash.series;
  FlashChart.draw(document.getElementById("chart"), pts.map((p) => p.t), [
    { values: pts.map((p) => p.q), color: "#7b4fd6", axis: "left" },
    { values: pts.map((p) => p.tp), color: "#2f6fed", axis: "left", fill: true },
    { values: pts.map((p) => p.lat), color: "#d08a12", axis: "right" },
  ]);
  document.getElementById("chart-hint").textContent =
    "Left axis: jobs/s and waiting jobs · right axis: push→ack latency (ms) · last 5 minutes";
}

function renderCards(s) {
  const st = s.stats || {};
  const m = s.metrics || {};
  const last = Dash.series[Dash.series.length - 1];
  const cards = [
    ["Waiting", num(st.queued), "#2f6fed"],
    ["Active", num(st.processing), "#1f9d60"],
    ["Delayed", num(st.delayed), "#d08a12"],
    ["Completed", num(m.total_completed), "#8a93a3"],
    ["Failed (DLQ)", num(st.dlq), "#d64545"],
    ["Throughput", (last ? last.tp.toFixed(1) : "0") + "/s", "#2f6fed"],
    ["Avg latency", (m.avg_latency_ms || 0).toFixed(1) + " ms", "#d08a12"],
  ];
  document.getElementById("cards").replaceChildren(...cards.map(([label, value, color]) =>
    h("div", { class: "stat", style: "--c:" + color },
      h("div", { class: "label" }, label), h("div", { class: "value" }, value))));
}

function renderQueues(s) {
  const lat = s.latency || {};
  const rows = (s.queues || []).map((q) => h("tr", {},
    h("td", {}, h("strong", {}, q.name)),
    h("td", { class: "num" }, num(q.pending)),
    h("td", { class: "num" }, num(q.processing)),
    h("td", { class: "num" }, num(q.delayed)),
    h("td", { class: "num" }, num(q.completed)),
    h("td", { class: "num" + (q.dlq ? " count-failed" : "") }, num(q.dlq)),
    h("td", { class: "num" }, lat[q.name] && lat[q.name].p95_ms !== null
      ? "≤" + num(lat[q.name].p95_ms) + " ms" : h("span", { class: "dim" }, "–")),
    h("td", {}, q.paused ? h("span", { class: "badge b-paused" }, "paused")
      : h("span", { class: "badge b-active" }, "running")),
    h("td", {}, h("div", { class: "actions" },
      h("button", { class: "btn btn-sm", type: "button",
        onclick: () => act((q.paused ? "Resumed " : "Paused ") + q.name, "POST",
          "/queues/" + encodeURIComponent(q.name) + (q.paused ? "/resume" : "/pause")) },
        q.paused ? "Resume" : "Pause"),
      h("button", { class: "btn btn-sm", type: "button",
        onclick: () => window.JobBrowser && JobBrowser.show(q.name, q.dlq && !q.pending ? "failed" : "waiting") },
        "Jobs")))));
  table(document.getElementById("queues"),
    ["Queue", "#Waiting", "#Active", "#Delayed", "#Completed", "#Failed", "#p95", "State", ""],
    rows, "No queues yet: push a job to create one.");
  document.getElementById("queues-hint").textContent = (s.queues || []).length + " queues";
}

function renderShards(s) {
  const rows = (s.shards || []).map((p) => h("tr", {},
    h("td", {}, "#" + p.index),
    h("td", { class: "num" }, p.up ? String(p.pid) : "–"),
    h("td", { class: "num" }, p.up ? String((p.shards || []).length) : "–"),
    h("td", { class: "num" }, num(p.depth)),
    h("td", { class: "num" }, num(p.active)),
    h("td", { class: "num" }, p.up ? p.avg_batch.toFixed(1) : "–"),
    h("td", { class: "num" }, p.up ? Math.round(p.avg_commit_us) + " µs" : "–"),
    h("td", {}, h("span", { class: "badge " + (p.up ? "b-up" : "b-down") }, p.up ? "up" : "down"))));
  table(document.getElementById("shards"),
    ["Proc", "#PID", "#Shards", "#Depth", "#Active", "#Batch", "#Commit", ""], rows, "No shard processes");
}

function renderWorkers(s) {
  const rows = (s.workers || []).map((w) => h("tr", {},
    h("td", {}, w.id),
    h("td", { class: "wrap" }, (w.queues || []).join(", ")),
    h("td", { class: "num" }, num(w.concurrency)),
    h("td", { class: "num" }, num(w.jobs_processed)),
    h("td", {}, ago(w.last_heartbeat))));
  table(document.getElementById("workers"), ["Worker", "Queues", "#Conc.", "#Done", "Seen"], rows,
    "No worker heartbeats in the last 30 s");
}

function renderCrons(s) {
  const rows = (s.crons || []).map((c) => h("tr", {},
    h("td", {}, h("strong", {}, c.name), h("span", { class: "sub" }, "→ " + c.queue)),
    h("td", { class: "mono" }, c.schedule || (c.repeat_every ? "every " + duration(c.repeat_every) : "–")),
    h("td", {}, c.next_run ? new Date(c.next_run).toLocaleTimeString() : "–"),
    h("td", { class: "num" }, num(c.executions)),
    h("td", {}, h("button", { class: "btn btn-sm btn-danger", type: "button", title: "Delete " + c.name,
      onclick: () => confirm("Delete cron " + c.name + "?") &&
        act("Deleted cron " + c.name, "DELETE", "/crons/" + encodeURIComponent(c.name)) }, "✕"))));
  table(document.getElementById("crons"), ["Name", "Schedule", "Next run", "#Runs", ""], rows,
    "No cron jobs");
}

function render(s) {
  Dash.snapshot = s;
  const sys = s.system_metrics || {};
  document.getElementById("meta").textContent = "up " + duration(sys.uptime_ms || 0) + " · " +
    (sys.storage || "?") + " storage · " + (s.shards || []).length + " shard processes";
  document.getElementById("token-btn").classList.toggle("hidden", !sys.auth);
  addPoint(s);
  renderCards(s);
  renderChart();
  renderQueues(s);
  renderShards(s);
  renderWorkers(s);
  renderCrons(s);
  for (const fn of Dash.listeners) fn(s);
}

window.addEventListener("resize", renderChart);
start();
