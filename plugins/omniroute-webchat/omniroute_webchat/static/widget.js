/* omniroute web chat widget. Embed with one tag:
 *   <script src="https://YOUR-OMNIROUTE/webchat/widget.js" data-title="Chat with us" async></script>
 * It draws a chat button in the corner (inside a shadow root, so the page's styles and
 * the widget's never mix), asks the customer's name and topic, and keeps the
 * conversation across page reloads. Text is always inserted as text, never as HTML.
 */
(function () {
  "use strict";
  var script = document.currentScript;
  var base = new URL(script ? script.src : "/webchat/widget.js", location.href);
  var socketUrl = base.href.replace(/^http/, "ws").replace(/widget\.js.*$/, "socket");
  var title = (script && script.dataset.title) || "Chat with us";
  var KEY = "omniroute-webchat:" + base.host;

  var host = document.createElement("div");
  host.id = "omniroute-webchat";
  document.body.appendChild(host);
  var root = host.attachShadow({ mode: "open" });
  root.innerHTML =
    "<style>" +
    ":host{all:initial;font:14px/1.4 system-ui,sans-serif}" +
    ".btn{position:fixed;right:20px;bottom:20px;background:#1f6feb;color:#fff;border:0;border-radius:24px;padding:12px 18px;cursor:pointer;box-shadow:0 2px 8px #0003}" +
    ".panel{position:fixed;right:20px;bottom:72px;width:320px;max-height:480px;display:none;flex-direction:column;background:#fff;border:1px solid #ccd;border-radius:10px;box-shadow:0 4px 16px #0003;overflow:hidden}" +
    ".panel.open{display:flex}" +
    ".head{background:#1f6feb;color:#fff;padding:10px 12px;font-weight:600}" +
    ".status{padding:6px 12px;background:#f3f5f9;color:#445;font-size:12px}" +
    ".log{flex:1;overflow-y:auto;padding:8px 12px;min-height:160px}" +
    ".msg{margin:6px 0;padding:6px 10px;border-radius:10px;max-width:85%;white-space:pre-wrap;word-wrap:break-word}" +
    ".me{background:#dbe9ff;margin-left:auto}.them{background:#eef0f3}.sys{color:#667;font-style:italic;font-size:12px}" +
    ".pending{opacity:.5}" +
    "form{display:flex;gap:6px;padding:8px;border-top:1px solid #eee}" +
    "input,select{flex:1;padding:6px;border:1px solid #ccd;border-radius:6px;font:inherit}" +
    "button.send{padding:6px 10px;border:0;border-radius:6px;background:#1f6feb;color:#fff;cursor:pointer}" +
    ".start{display:flex;flex-direction:column;gap:8px;padding:12px}" +
    "</style>" +
    '<button class="btn" part="button"></button>' +
    '<div class="panel" role="dialog">' +
    '<div class="head"></div><div class="status" aria-live="polite"></div>' +
    '<div class="log" aria-live="polite"></div>' +
    '<form class="start"><div class="greeting"></div>' +
    '<input name="name" placeholder="Your name" maxlength="100" required>' +
    '<select name="topic"></select><button class="send" type="submit">Start chat</button></form>' +
    '<form class="compose" style="display:none"><input name="text" placeholder="Type a message" autocomplete="off">' +
    '<button class="send" type="submit">Send</button><button class="send end" type="button" title="End chat">&#x2715;</button></form>' +
    "</div>";

  var $ = function (s) { return root.querySelector(s); };
  var panel = $(".panel"), log = $(".log"), status = $(".status");
  var startForm = $(".start"), compose = $(".compose");
  $(".btn").textContent = title;
  $(".head").textContent = title;
  $(".btn").addEventListener("click", function () {
    panel.classList.toggle("open");
    if (panel.classList.contains("open") && !ws) connect();
  });

  var ws = null, retry = 0, pending = {}, counter = 0, ended = false;

  function setStatus(text) { status.textContent = text; }

  function add(kind, text, name) {
    var div = document.createElement("div");
    div.className = "msg " + kind;
    div.textContent = name ? name + ": " + text : text;
    log.appendChild(div);
    log.scrollTop = log.scrollHeight;
    return div;
  }

  function connect() {
    ended = false;
    ws = new WebSocket(socketUrl);
    ws.onmessage = function (e) { handle(JSON.parse(e.data)); };
    ws.onclose = function (e) {
      ws = null;
      if (ended || e.code === 4410 || e.code === 4401) return;
      if (e.code >= 4400 && e.code < 4500 && e.code !== 4429) return;
      setStatus("Reconnecting...");
      retry = Math.min(retry + 1, 6);
      setTimeout(connect, 500 * Math.pow(2, retry - 1));
    };
  }

  function send(obj) { if (ws && ws.readyState === 1) ws.send(JSON.stringify(obj)); }

  function handle(m) {
    if (m.type === "hello") {
      retry = 0;
      var session = localStorage.getItem(KEY);
      if (session) { send({ type: "resume", session: session }); return; }
      $(".greeting").textContent = m.greeting;
      var select = startForm.querySelector("select");
      select.textContent = "";
      m.topics.forEach(function (t) {
        var o = document.createElement("option"); o.value = t; o.textContent = t; select.appendChild(o);
      });
      select.style.display = m.topics.length > 1 ? "" : "none";
      startForm.style.display = "flex";
      compose.style.display = "none";
    } else if (m.type === "started" || m.type === "resumed") {
      if (m.session) localStorage.setItem(KEY, m.session);
      startForm.style.display = "none";
      compose.style.display = "flex";
      if (m.type === "resumed") {
        log.textContent = "";
        m.messages.forEach(show);
      }
      Object.keys(pending).forEach(function (id) { send({ type: "message", text: pending[id].text, id: id }); });
    } else if (m.type === "position") {
      setStatus(m.position ? "Waiting, position " + m.position : "Connecting you to an agent...");
    } else if (m.type === "agent_joined") {
      var joined = (m.name || "An agent") + " joined the chat";
      setStatus(joined);
      if (status.dataset.joined !== joined) add("sys", joined);
      status.dataset.joined = joined;
    } else if (m.type === "typing") {
      setStatus((m.name || "The agent") + " is typing...");
      clearTimeout(handle.typingTimer);
      handle.typingTimer = setTimeout(function () { if (status.dataset.joined) setStatus(status.dataset.joined); }, 4000);
    } else if (m.type === "transferred") {
      setStatus("Transferring you...");
    } else if (m.type === "message") {
      show(m);
    } else if (m.type === "ack") {
      var p = pending[m.id];
      if (p) { p.node.classList.remove("pending"); delete pending[m.id]; }
    } else if (m.type === "ended") {
      finish(m.message || "The chat has ended. Thank you!");
    } else if (m.type === "error") {
      add("sys", m.error);
    } else if (m.type === "closed") {
      if (/ended|resumed/.test(m.reason)) { finish(m.reason); } else { add("sys", m.reason); }
    }
  }

  function show(m) {
    if (m.from === "customer") add("me", m.text);
    else if (m.from === "system") add("sys", m.text);
    else add("them", m.text, m.name);
  }

  function finish(text) {
    ended = true;
    localStorage.removeItem(KEY);
    setStatus(text);
    compose.style.display = "none";
    add("sys", text);
    if (ws) ws.close();
  }

  startForm.addEventListener("submit", function (e) {
    e.preventDefault();
    var name = startForm.querySelector("input").value.trim();
    var topic = startForm.querySelector("select").value || null;
    if (!name) return;
    log.textContent = "";
    send({ type: "start", name: name, topic: topic });
  });

  compose.addEventListener("submit", function (e) {
    e.preventDefault();
    var input = compose.querySelector("input");
    var text = input.value.trim();
    if (!text) return;
    var id = "w" + Date.now().toString(36) + (counter++);
    pending[id] = { text: text, node: add("me pending", text) };
    send({ type: "message", text: text, id: id });
    input.value = "";
  });

  var lastTyping = 0;
  compose.querySelector("input").addEventListener("input", function () {
    if (Date.now() - lastTyping > 2000) { lastTyping = Date.now(); send({ type: "typing" }); }
  });

  compose.querySelector(".end").addEventListener("click", function () {
    send({ type: "end" });
    finish("You ended the chat.");
  });

  if (localStorage.getItem(KEY)) { panel.classList.add("open"); connect(); }
})();
