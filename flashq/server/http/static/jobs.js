// flashQ dashboard: the job browser (by queue and state) and the job drawer with its actions.
"use strict";

window.JobBrowser = (function () {
  const STATES = ["waiting", "active", "delayed", "completed", "failed"];
  const PAGE = 25;
  const view = { queue: "", state: "waiting", offset: 0, count: 0, openId: null };

  const $ = (id) => document.getElementById(id);
  const q = (name) => encodeURIComponent(name);

  function badge(state) {
    return h("span", { class: "badge b-" + state }, state);
  }

  function preview(data) {
    if (data === undefined) return "";
    const text = JSON.stringify(data);
    return text.length > 90 ? text.slice(0, 90) + "…" : text;
  }

  function renderTabs() {
    $("job-states").replaceChildren(...STATES.map((s) => h("button", {
      class: "tab" + (s === view.state ? " on" : ""), type: "button", role: "tab",
      onclick: () => { view.state = s; view.offset = 0; load(); },
    }, s)));
    $("dlq-actions").classList.toggle("hidden", !(view.state === "failed" && view.queue));
  }

  function syncQueues(s) {
    const select = $("job-queue");
    const names = (s.queues || []).map((x) => x.name);
    const have = Array.from(select.options).slice(1).map((o) => o.value);
    if (names.join("\n") !== have.join("\n")) {
      select.replaceChildren(h("option", { value: "" }, "all queues"),
        ...names.map((n) => h("option", { value: n }, n)));
    }
    select.value = view.queue;
  }

  async function load() {
    renderTabs();
    const params = new URLSearchParams({ state: view.state, limit: PAGE, offset: view.offset });
    if (view.queue) params.set("queue", view.queue);
    let jobs;
    try {
      jobs = await api("GET", "/jobs?" + params);
    } catch (e) {
      table($("jobs"), ["Job"], [], "Could not load jobs: " + e.message);
      return;
    }
    view.count = jobs.length;
    const rows = jobs.map((j) => h("tr", { class: j.id === view.openId ? "sel" : "", onclick: () => open(j.id) },
      h("td", { class: "mono" }, "#" + j.id),
      h("td", {}, j.queue),
      h("td", {}, badge(j.state)),
      h("td", { class: "num" }, num(j.priority)),
      h("td", { class: "num" }, num(j.attempts) + (j.max_attempts ? "/" + j.max_attempts : "")),
      h("td", {}, ago(j.created_at)),
      h("td", { class: "wrap mono" }, preview(j.data))));
    table($("jobs"), ["Id", "Queue", "State", "#Priority", "#Attempts", "Created", "Data"], rows,
      "No " + view.state + " jobs" + (view.queue ? " in " + view.queue : ""));
    $("page-info").textContent = jobs.length
      ? "jobs " + (view.offset + 1) + "–" + (view.offset + jobs.length) : "";
    $("prev").disabled = view.offset === 0;
    $("next").disabled = jobs.length < PAGE;
  }

  function show(queue, state) {
    view.queue = queue;
    view.state = state || "waiting";
    view.offset = 0;
    $("job-queue").value = queue;
    load();
    $("browser").scrollIntoView({ behavior: "smooth" });
  }

  function kv(pairs) {
    return h("dl", { class: "kv" }, pairs.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
  }

  function pre(value) {
    return h("pre", { class: "json" }, JSON.stringify(value, null, 2));
  }

  async function open(id) {
    view.openId = id;
    $("drawer").classList.remove("hidden");
    $("drawer-title").textContent = "Job #" + id;
    let job, logs;
    try {
      [job, logs] = await Promise.all([api("GET", "/jobs/" + id), api("GET", "/jobs/" + id + "/logs")]);
    } catch (e) {
      $("drawer-body").replaceChildren(h("p", {}, "Could not load the job: " + e.message));
      return;
    }
    const state = job.state;
    const buttons = [];
    const after = () => { open(id); load(); };
    const button = (label, cls, fn) => buttons.push(h("button", { class: "btn " + cls, type: "button", onclick: fn }, label));
    if (["waiting", "delayed", "active", "waiting-children"].includes(state)) {
      button("Cancel", "btn-danger", async () => confirm("Cancel job #" + id + "?") &&
        (await act("Cancelled #" + id, "POST", "/jobs/" + id + "/cancel")) !== undefined && after());
    }
    if (state === "delayed") {
      button("Promote", "", async () => (await act("Promoted #" + id, "POST", "/jobs/" + id + "/promote")) !== undefined && after());
    }
    if (state === "failed" && job.queue) {
      button("Retry", "btn-primary", async () => (await act("Retried #" + id, "POST",
        "/queues/" + q(job.queue) + "/dlq/retry", { job_id: id })) !== undefined && after());
    }
    const progress = job.progress || 0;
    const body = [
      h("div", { class: "actions", style: "margin-bottom:12px" }, badge(state), ...buttons),
      kv([
        ["Queue", job.queue || "–"],
        ["Priority", num(job.priority)],
        ["Attempts", job.attempts === undefined ? "–" : num(job.attempts) + " of " + (job.max_attempts || "∞")],
        ["Created", when(job.created_at)],
        ["Run at", when(job.run_at)],
        ["Started", when(job.started_at)],
        ["Progress", h("div", { class: "actions" },
          h("div", { class: "bar", style: "width:140px" }, h("span", { style: "width:" + progress + "%" })),
          progress + "%")],
        // The last PROGRESS message, or the error of the latest failed attempt.
        ["Message", job.progress_msg || "–"],
        ["Custom id", job.custom_id || "–"],
        ["Tags", (job.tags || []).join(", ") || "–"],
      ]),
      h("h3", {}, "Data"), job.data === undefined ? h("p", { class: "hint" }, "not kept") : pre(job.data),
      h("h3", {}, "Result"), job.result === null || job.result === undefined ? h("p", { class: "hint" }, "none") : pre(job.result),
      h("h3", {}, "Logs (" + logs.length + ")"),
      logs.length ? h("ul", { class: "logs" }, logs.map((l) => h("li", {},
        h("span", { class: "lvl" }, l.level.toUpperCase()),
        h("span", { class: "hint" }, new Date(l.timestamp).toLocaleTimeString() + " "), l.message)))
        : h("p", { class: "hint" }, "none"),
    ];
    $("drawer-body").replaceChildren(...body);
  }

  $("drawer-close").addEventListener("click", () => {
    view.openId = null;
    $("drawer").classList.add("hidden");
  });
  $("job-queue").addEventListener("change", (e) => show(e.target.value, view.state));
  $("prev").addEventListener("click", () => { view.offset = Math.max(0, view.offset - PAGE); load(); });
  $("next").addEventListener("click", () => { view.offset += PAGE; load(); });
  $("dlq-retry").addEventListener("click", () =>
    act("Retried DLQ of " + view.queue, "POST", "/queues/" + q(view.queue) + "/dlq/retry", {}).then(load));
  $("dlq-purge").addEventListener("click", () => confirm("Purge the DLQ of " + view.queue + "?") &&
    act("Purged DLQ of " + view.queue, "DELETE", "/queues/" + q(view.queue) + "/dlq").then(load));

  let first = true;
  Dash.listeners.push((s) => {
    syncQueues(s);
    if (first) {
      const params = hashParams();
      view.queue = params.get("queue") || "";
      if (STATES.includes(params.get("state"))) view.state = params.get("state");
      $("job-queue").value = view.queue;
      const id = Number(params.get("job"));
      if (id > 0) open(id);
    }
    if (first || view.offset === 0) load();
    first = false;
  });
  renderTabs();
  return { show, open, load };
})();
