/* Shared by the omniroute pages: API calls, safe DOM building, the live event socket.
 * Everything customers or agents wrote is inserted with textContent, never as HTML. */
"use strict";

async function api(method, path, body) {
  const options = { method, credentials: "same-origin", headers: {} };
  if (body !== undefined) {
    options.headers["content-type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const r = await fetch(path, options);
  if (r.status === 401) { location.href = "/login?next=" + encodeURIComponent(location.pathname); throw new Error("log in"); }
  if (r.status === 204) return null;
  const data = await r.json();
  if (!r.ok) { showError(data.error || r.statusText); throw new Error(data.error); }
  return data;
}

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v !== null && v !== undefined && v !== false) node.setAttribute(k, v === true ? "" : v);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function showError(text, ok) {
  const box = document.getElementById("error");
  if (!box) return;
  box.textContent = text;
  box.className = ok ? "ok" : "";
  box.hidden = false;
  clearTimeout(showError.timer);
  showError.timer = setTimeout(() => { box.hidden = true; }, 6000);
}

function duration(seconds) {
  seconds = Math.max(0, Math.floor(seconds));
  const h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60), s = seconds % 60;
  return (h ? h + ":" + String(m).padStart(2, "0") : m) + ":" + String(s).padStart(2, "0");
}

function percent(x) { return x === null || x === undefined ? "-" : Math.round(x * 100) + "%"; }

/* Calls refresh() now, and again (at most every 300 ms) whenever an event arrives;
 * typing notices go to onTyping(event) instead. */
function live(refresh, onTyping) {
  let timer = null, retry = 0;
  const later = () => { if (!timer) timer = setTimeout(() => { timer = null; refresh(); }, 300); };
  const schedule = (message) => {
    if (message && message.data) {
      const event = JSON.parse(message.data);
      if (event.type === "typing") { if (onTyping) onTyping(event); return; }
    }
    later();
  };
  function connect() {
    const ws = new WebSocket(location.origin.replace(/^http/, "ws") + "/api/events");
    ws.onopen = () => { retry = 0; document.body.dataset.live = "yes"; schedule(); };
    ws.onmessage = schedule;
    ws.onclose = (e) => {
      if (e.code === 4401) { location.href = "/login?next=" + encodeURIComponent(location.pathname); return; }
      document.body.dataset.live = "no";
      retry = Math.min(retry + 1, 5);
      setTimeout(connect, 500 * 2 ** retry);
    };
  }
  refresh();
  connect();
}

async function logout() {
  await api("POST", "/api/logout");
  location.href = "/login";
}

/* Controls that channel plugins declare (GET /api/controls, docs/plugins.md): buttons on
 * a live interaction, each sending one request to the plugin's route. Labels and answers
 * are inserted as text; what was typed in a control's boxes survives the page's redraws.
 * A control's answer shows the controls `after` it; where the control has a `status`
 * path, the server says what still goes on when the page opens the interaction. */
const controlInputs = new Map();
const statusAsked = new Set();  // interactions whose controls' status was asked
const controlRuns = new Map();  // interaction id -> controls that answered, newest last

function answerKey(interactionId, name) { return "omniroute.control." + interactionId + "." + name; }
function answerOf(interactionId, name) {
  const raw = sessionStorage.getItem(answerKey(interactionId, name));
  return raw === null ? null : JSON.parse(raw);
}

function fillPath(path, ix) { return path.split("{interaction_id}").join(encodeURIComponent(ix.id)); }

/* Ask the `status` paths of the controls of `page` on `ix` what they started that still
 * goes on (once per interaction, again when `again`), and remember it as their answers:
 * after a reload, in another tab or on another device, Complete shows again mid-consult. */
async function syncControls(controls, page, ix, again) {
  if (again) statusAsked.delete(ix.id);
  const asking = controls.filter((c) => c.status && c.page === page && c.channel === ix.channel && c.states.includes(ix.state));
  if (!asking.length || statusAsked.has(ix.id)) return;
  statusAsked.add(ix.id);
  const runs = controlRuns.get(ix.id) || 0;
  for (const path of new Set(asking.map((c) => c.status))) {
    let r, data = {};
    try { r = await fetch(fillPath(path, ix), { credentials: "same-origin" }); } catch (e) { continue; }
    if (r.status === 401) { location.href = "/login?next=" + encodeURIComponent(location.pathname); return; }
    if (!r.ok) continue;  // not known now (the call moved on): the page keeps what it knew
    if (r.status !== 204) { try { data = await r.json(); } catch (e) { continue; } }
    if ((controlRuns.get(ix.id) || 0) !== runs) return;  // a click answered meanwhile: newer
    for (const c of asking.filter((c) => c.status === path)) {
      const answer = data && typeof data === "object" ? data[c.name] : null;
      if (answer && typeof answer === "object") sessionStorage.setItem(answerKey(ix.id, c.name), JSON.stringify(answer));
      else sessionStorage.removeItem(answerKey(ix.id, c.name));
    }
  }
}

function controlsFor(controls, page, ix) {
  return controls.filter((c) => c.page === page && c.channel === ix.channel && c.states.includes(ix.state) &&
    (!c.after || answerOf(ix.id, c.after) !== null));
}

// A refusal in plain words: what the status means, then the route's own reason.
function plainError(status, error, channel) {
  const why = error ? ": " + error : "";
  if (status === 403) return "You are not allowed to do this" + why;
  if (status === 404) return "Not found (the call may have ended)" + why;
  if (status === 409) return "Not possible right now" + why;
  if (status === 400 || status === 422) return "Check what you typed" + why;
  if (status === 502) return "The " + channel + " system refused" + why;
  if (status === 503) return "Not available right now, try again in a moment" + why;
  return "It did not work (" + status + ")" + why;
}

async function runControl(control, ix, me) {
  const body = { ...control.fixed };
  for (const f of control.fields) {
    let value;
    if (f.kind === "me") value = me;
    else if (f.kind === "answer") value = (answerOf(ix.id, f.source) || {})[f.name];
    else value = (controlInputs.get(ix.id + "/" + control.name + "/" + f.name) || "").trim();
    if (value === undefined || value === null || value === "") {
      if (f.required) { showError(control.label + ": give " + (f.label || f.name)); return false; }
      continue;
    }
    body[f.name] = value;
  }
  const path = fillPath(control.path, ix);
  let r, data = null;
  try {
    r = await fetch(path, { method: control.method, credentials: "same-origin",
      headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  } catch (e) { showError(control.label + ": the server cannot be reached"); return false; }
  if (r.status === 401) { location.href = "/login?next=" + encodeURIComponent(location.pathname); return false; }
  if (r.status !== 204) { try { data = await r.json(); } catch (e) { data = null; } }
  if (!r.ok) {
    showError(control.label + ": " + plainError(r.status, data && data.error, ix.channel));
    statusAsked.delete(ix.id);  // what the page showed may be over: ask the server again
    return false;
  }
  // A follow-up (Complete after Consult) ends what it follows: its buttons hide again.
  if (control.after) sessionStorage.removeItem(answerKey(ix.id, control.after));
  sessionStorage.setItem(answerKey(ix.id, control.name), JSON.stringify(data || {}));
  controlRuns.set(ix.id, (controlRuns.get(ix.id) || 0) + 1);
  showError(control.done || control.label + ": done", true);
  return true;
}

// The controls of `page` for one interaction, as a row (null when there are none).
function controlBar(controls, page, ix, me, after) {
  const shown = controlsFor(controls, page, ix);
  if (!shown.length) return null;
  return el("div", { class: "row controls", "data-id": ix.id }, shown.map((control) => {
    const boxes = control.fields.filter((f) => f.kind !== "me" && f.kind !== "answer").map((f) => {
      const key = ix.id + "/" + control.name + "/" + f.name;
      const attrs = { "data-field": control.name + "." + f.name, "aria-label": control.label + " " + (f.label || f.name),
        oninput: (e) => controlInputs.set(key, e.target.value), onchange: (e) => controlInputs.set(key, e.target.value),
        onclick: (e) => e.stopPropagation() };
      const box = f.kind === "choice"
        ? el("select", attrs, f.choices.map((c) => el("option", { value: c }, c)))
        : el("input", { ...attrs, type: f.kind === "number" ? "tel" : "text", size: 10, placeholder: f.label || f.kind });
      if (controlInputs.has(key)) box.value = controlInputs.get(key);
      else if (f.kind === "choice") controlInputs.set(key, f.choices[0]);
      return box;
    });
    const button = el("button", { class: "control", "data-control": control.name, title: control.description || null,
      onclick: async (e) => {
        e.stopPropagation();
        button.disabled = true;
        try {
          if (await runControl(control, ix, me)) {
            for (const f of control.fields) controlInputs.delete(ix.id + "/" + control.name + "/" + f.name);
            if (after) after();
          } else if (after) after();  // redrawn as the server now says (a status asked again)
        } finally { button.disabled = false; }
      } }, control.label);
    return boxes.length ? el("span", { class: "control-group" }, boxes, button) : button;
  }));
}
