// The dashboard: reads the JSON API every second and draws the farm.
// No framework and no build step. Every name that comes from the farm (file names are
// uploaded by customers) goes into the page as text, never as HTML.
"use strict";

const API = "/api/v1/";
const REFRESH_MS = 1000;
// The latest done and failed files and the failing notifications are database reads:
// asked for when files finished (for a few refreshes, while their rows are saved), after
// an action, and otherwise every SLOW_MS.
const SLOW_MS = 10000;
const SETTLE_REFRESHES = 3;
const STORE_KEY = "transcoder-admin-token";

const state = {
  token: sessionStorage.getItem(STORE_KEY) || localStorage.getItem(STORE_KEY),
  role: null,
  timer: null,
  busy: false,
  again: false,
  drawn: new Map(), // table id → the JSON it was last drawn from
  diagnoses: new Map(), // job id → its diagnosis, as text
  open: new Set(), // job ids whose diagnosis is shown
  finished: null, // files done and failed in the last hour, as last seen
  slowAt: 0, // when the database reads were last made
  settle: 1, // refreshes that still make them whatever the time
};

const $ = (id) => document.getElementById(id);

// -- talking to the API --------------------------------------------------------------

class APIError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function api(path, { method = "GET", body } = {}) {
  const headers = { Accept: "application/json" };
  if (state.token) headers.Authorization = "Bearer " + state.token;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(API + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
      credentials: "omit",
    });
  } catch (error) {
    throw new APIError(0, "the admin does not answer (" + error.message + ")");
  }
  let data = null;
  try {
    data = await response.json();
  } catch (error) {
    data = null;
  }
  if (!response.ok) {
    const message = data && data.error ? data.error.message : response.statusText;
    throw new APIError(response.status, message || "HTTP " + response.status);
  }
  return data;
}

async function act(path, body, done) {
  try {
    const answer = await api(path, { method: "POST", body: body || {} });
    say(null);
    if (done) say(done(answer), "ok");
  } catch (error) {
    say(path + ": " + error.message);
  }
  state.settle = SETTLE_REFRESHES;
  refresh();
}

// -- small helpers ---------------------------------------------------------------------

function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function say(text, kind) {
  const box = $("message");
  box.hidden = !text;
  box.textContent = text || "";
  box.className = kind || "";
}

function fileName(row) {
  const relpath = row.relpath !== undefined ? row.relpath : row.relative_path;
  return row.customer + " / " + row.profile + " / " + relpath;
}

function seconds(value) {
  if (value === null || value === undefined || !isFinite(value)) return "–";
  if (value < 1) return "<1 s";
  value = Math.round(value);
  if (value < 60) return value + " s";
  if (value < 3600) return Math.floor(value / 60) + " min " + (value % 60) + " s";
  return Math.floor(value / 3600) + " h " + Math.floor((value % 3600) / 60) + " min";
}

function clock(iso) {
  if (!iso) return "–";
  const when = new Date(iso);
  if (isNaN(when)) return iso;
  const today = new Date().toDateString() === when.toDateString();
  return today ? when.toLocaleTimeString() : when.toLocaleString();
}

// Redraw a table body only when its rows changed (keeps open details and selections).
function fill(id, rows, draw, empty, columns) {
  const json = JSON.stringify(rows);
  if (state.drawn.get(id) === json) return;
  state.drawn.set(id, json);
  const body = $(id).tBodies[0];
  body.replaceChildren();
  if (!rows.length) {
    body.append(el("tr", {}, el("td", { class: "empty", colspan: String(columns), text: empty })));
    return;
  }
  for (const row of rows) body.append(draw(row));
}

// -- drawing ---------------------------------------------------------------------------

function drawStatus(status) {
  const badge = $("state");
  badge.textContent = status.state;
  badge.className = "badge " + status.state;
  const files = status.files || {};
  $("summary").textContent =
    status.running + " running · " + status.queued + " queued · " +
    (files.done || 0) + " done · " + (files.failed || 0) + " failed · " +
    (files.stuck || 0) + " stuck";
  $("slots").textContent = "(" + status.free_slots + " of " + status.capacity + " slots free)";
  const admin = state.role === "admin";
  $("pause").hidden = !admin || status.state !== "started";
  $("resume").hidden = !admin || status.state !== "paused";
}

function drawWorkers(workers) {
  fill("workers", workers.items, (w) => el("tr", {},
    el("td", { class: "file", text: w.name }),
    el("td", { text: w.state }),
    el("td", { text: w.load + " / " + w.max_jobs }),
    el("td", { text: w.host || (w.kind === "in-process" ? "in the admin" : "–") }),
  ), "no worker attached", 4);
}

// Running jobs are kept by job id and updated in place: a job's item, and its Cancel
// button, stay the same elements from one refresh to the next, so a click that spans a
// refresh still lands.
function drawTasks(tasks) {
  $("tasks-count").textContent = "(" + tasks.items.length + ")";
  const list = $("tasks");
  if (!tasks.items.length) {
    if (list.dataset.empty !== "yes") {
      list.replaceChildren(el("li", { class: "muted", text: "nothing is transcoding" }));
      list.dataset.empty = "yes";
    }
    return;
  }
  delete list.dataset.empty;
  const kept = new Map();
  for (const item of list.children) if (item.dataset.job) kept.set(item.dataset.job, item);
  const items = tasks.items.map((task) => {
    const shape = state.role + " " + (task.cancelled_by || "");
    let item = kept.get(task.job_id);
    if (!item || item.dataset.shape !== shape) item = taskItem(task, shape);
    updateTask(item, task);
    return item;
  });
  const same = items.length === list.children.length && items.every((item, i) => list.children[i] === item);
  if (!same) list.replaceChildren(...items);
}

// A job's item: its name, progress bar, facts, and Cancel for an admin.
function taskItem(task, shape) {
  const bar = el("div", {
    class: "bar unknown",
    role: "progressbar",
    "aria-valuemin": "0",
    "aria-valuemax": "100",
  }, el("span"));
  const cancel = state.role === "admin" && !task.cancelled_by
    ? el("button", {
      type: "button",
      class: "small",
      text: "Cancel",
      onclick: () => {
        if (!window.confirm("Cancel " + fileName(task) + "? Its source goes to failed.")) return;
        act("tasks/cancel", { customer: task.customer, profile: task.profile, relpath: task.relpath },
          (answer) => fileName(task) + ": cancelled (" + answer.state + ")");
      },
    })
    : null;
  return el("li", { "data-job": task.job_id, "data-shape": shape },
    el("div", { class: "file", text: fileName(task) }), bar, el("div", { class: "facts" }), cancel);
}

// What changes while a job runs: its progress bar and its facts.
function updateTask(item, task) {
  const progress = task.progress || {};
  const known = typeof progress.percent === "number";
  const bar = item.querySelector("[role=progressbar]");
  bar.className = known ? "bar" : "bar unknown";
  if (known) {
    bar.setAttribute("aria-valuenow", String(Math.round(progress.percent)));
    bar.firstChild.style.width = Math.min(100, progress.percent) + "%";
  } else {
    bar.removeAttribute("aria-valuenow");
    bar.firstChild.style.width = "";
  }
  item.querySelector(".facts").replaceChildren(...[
    el("span", { text: known ? progress.percent.toFixed(0) + " %" : "starting" }),
    el("span", { text: "speed " + (typeof progress.speed === "number" ? progress.speed.toFixed(1) + "×" : "–") }),
    el("span", { text: "ETA " + seconds(progress.eta) }),
    el("span", { text: "on " + (task.worker || "–") + (task.attempt > 1 ? " · attempt " + task.attempt : "") }),
    progress.target ? el("span", { text: "target " + progress.target }) : null,
    task.cancelled_by ? el("span", { text: "cancelled by " + task.cancelled_by }) : null,
  ].filter(Boolean));
}

function drawChart(throughput) {
  $("chart-total").textContent = "(" + throughput.done + " done, " + throughput.failed + " failed)";
  const json = JSON.stringify(throughput.minutes);
  if (state.drawn.get("chart") === json) return;
  state.drawn.set("chart", json);
  const most = Math.max(1, ...throughput.minutes.map((m) => m.done + m.failed));
  const chart = $("chart");
  chart.replaceChildren();
  for (const minute of throughput.minutes) {
    const column = el("div", {
      class: "minute",
      title: clock(minute.minute) + ": " + minute.done + " done, " + minute.failed + " failed",
    });
    for (const kind of ["done", "failed"]) {
      const part = el("div", { class: kind });
      part.style.height = (100 * minute[kind]) / most + "%";
      column.append(part);
    }
    chart.append(column);
  }
}

function drawQueue(queue) {
  $("queue-total").textContent = "(" + queue.total + ")";
  fill("queue", queue.items, (q) => el("tr", {},
    el("td", { class: "file", text: fileName(q) }),
    el("td", { text: q.priority }),
    el("td", { text: clock(q.queued) }),
  ), "the queue is empty", 3);
}

function drawDone(reports) {
  fill("done", reports.items, (r) => el("tr", { "data-job": r.job_id },
    el("td", { class: "file", text: fileName(r) }),
    el("td", { text: clock(r.finish_time) }),
    el("td", { text: seconds(r.real_time) }),
    el("td", { text: r.worker_name || "–" }),
  ), "no file done yet", 4);
}

function diagnosisText(found) {
  const lines = [];
  const failure = found.failure || {};
  lines.push("failure: " + (failure.kind || "?") + ": " + (failure.reason || "?"));
  if (found.verdict) lines.push("verdict: " + found.verdict);
  if (found.host || found.worker) lines.push("on: " + (found.worker || "?") + " at " + (found.host || "?"));
  for (const command of found.commands || []) {
    const argv = command.argv || command.command || [];
    lines.push("$ " + (Array.isArray(argv) ? argv.join(" ") : String(argv)));
  }
  if (found.log_tail && found.log_tail.length) lines.push("", ...found.log_tail);
  if (found.reproduce) lines.push("", "to reproduce: " + found.reproduce);
  return lines.join("\n");
}

function diagnosis(jobId) {
  const text = el("pre", { text: state.diagnoses.get(jobId) || "loading…" });
  const box = el("details", { class: "diagnosis" }, el("summary", { text: "diagnosis" }), text);
  box.open = state.open.has(jobId);
  box.addEventListener("toggle", async () => {
    if (!box.open) {
      state.open.delete(jobId);
      return;
    }
    state.open.add(jobId);
    if (state.diagnoses.has(jobId)) return;
    try {
      state.diagnoses.set(jobId, diagnosisText(await api("diagnosis?job_id=" + encodeURIComponent(jobId))));
    } catch (error) {
      state.diagnoses.set(jobId, "no diagnosis: " + error.message);
    }
    text.textContent = state.diagnoses.get(jobId);
  });
  return box;
}

function drawFailed(reports) {
  fill("failed", reports.items, (r) => {
    const why = el("td", { class: "why" },
      el("div", { text: r.failure_reason || "–" }),
      el("div", { class: "kind", text: [r.failure_kind, r.verdict].filter(Boolean).join(" · ") }),
      diagnosis(r.job_id));
    const retry = state.role === "admin"
      ? el("button", {
        type: "button",
        class: "small",
        text: "Retry",
        onclick: () => act("files/retry",
          { customer: r.customer, profile: r.profile, relpath: r.relative_path },
          () => fileName(r) + ": back in incoming"),
      })
      : null;
    return el("tr", { "data-job": r.job_id },
      el("td", { class: "file", text: fileName(r) }),
      el("td", { text: clock(r.finish_time) }), why, el("td", {}, retry));
  }, "no file failed", 4);
}

function drawNotifications(notifications) {
  $("notifications-total").textContent = "(" + notifications.total + ")";
  fill("notifications", notifications.items, (n) => el("tr", {},
    el("td", { class: "file" }, el("div", { text: n.destination }), el("div", { class: "kind", text: n.kind + " · " + n.trigger })),
    el("td", { class: "file", text: n.relpath ? fileName(n) : "–" }),
    el("td", { class: "why", text: n.last_error || "–" }),
    el("td", {}, state.role === "admin"
      ? el("button", {
        type: "button",
        class: "small",
        text: "Retry",
        onclick: () => act("notifications/retry", { id: n.id }, () => n.id + ": queued again"),
      })
      : null),
  ), "none failing", 4);
}

// -- the loop --------------------------------------------------------------------------

// One refresh at a time: a refresh asked for while one runs follows it at once.
async function refresh() {
  if (state.busy) {
    state.again = true;
    return;
  }
  state.busy = true;
  clearTimeout(state.timer);
  let polling = true;
  try {
    polling = await load();
  } finally {
    state.busy = false;
  }
  if (state.again) {
    state.again = false;
    refresh();
  } else if (polling) {
    state.timer = setTimeout(refresh, REFRESH_MS);
  }
}

// Read everything and draw it; false when the API wants a token (polling stops).
async function load() {
  try {
    if (state.role === null) {
      const me = await api("whoami");
      state.role = me.role;
      $("who").textContent = me.name ? me.name + " (" + me.role + ")" : "no token needed";
      $("logout").hidden = !state.token;
      state.drawn.clear(); // buttons depend on the role
      state.settle = 1;
    }
    const [status, workers, tasks, queue, throughput] = await Promise.all([
      api("status"),
      api("workers"),
      api("tasks"),
      api("queue?limit=20"),
      api("throughput"),
    ]);
    const finished = throughput.done + " " + throughput.failed;
    if (state.finished !== null && finished !== state.finished) state.settle = SETTLE_REFRESHES;
    state.finished = finished;
    let slow = null;
    if (state.settle > 0 || Date.now() - state.slowAt >= SLOW_MS) {
      slow = await Promise.all([
        api("reports?outcome=done&limit=10"),
        api("reports?outcome=failed&limit=10"),
        api("notifications?state=failed&limit=10"),
      ]);
      state.settle = Math.max(0, state.settle - 1);
      state.slowAt = Date.now();
    }
    $("login").hidden = true;
    $("farm").hidden = false;
    drawStatus(status);
    drawWorkers(workers);
    drawTasks(tasks);
    drawChart(throughput);
    drawQueue(queue);
    if (slow) {
      drawDone(slow[0]);
      drawFailed(slow[1]);
      drawNotifications(slow[2]);
    }
    $("updated").textContent = new Date().toLocaleTimeString();
    if ($("message").className !== "ok") say(null);
  } catch (error) {
    if (error.status === 401) {
      login(state.token ? "The token was refused: " + error.message : null);
      return false;
    }
    $("state").textContent = "offline";
    $("state").className = "badge offline";
    say(error.message);
  }
  return true;
}

function login(problem) {
  forget();
  $("farm").hidden = true;
  $("login").hidden = false;
  $("state").textContent = "locked";
  $("state").className = "badge";
  say(problem);
  $("token").focus();
}

function forget() {
  state.token = null;
  state.role = null;
  sessionStorage.removeItem(STORE_KEY);
  localStorage.removeItem(STORE_KEY);
}

document.addEventListener("DOMContentLoaded", () => {
  $("login").addEventListener("submit", (event) => {
    event.preventDefault();
    state.token = $("token").value.trim();
    state.role = null;
    (($("remember").checked) ? localStorage : sessionStorage).setItem(STORE_KEY, state.token);
    $("token").value = "";
    say(null);
    refresh();
  });
  $("logout").addEventListener("click", () => {
    login(null);
  });
  $("pause").addEventListener("click", () => act("pause", {}, () => "paused: running jobs go on"));
  $("resume").addEventListener("click", () => act("resume", {}, () => "resumed"));
  refresh();
});
