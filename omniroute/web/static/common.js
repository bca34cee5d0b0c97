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

function showError(text) {
  const box = document.getElementById("error");
  if (!box) return;
  box.textContent = text;
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
