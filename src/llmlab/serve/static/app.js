// llmlab's chat page: conversations kept in this browser (localStorage), answers streamed from the server's
// OpenAI-compatible API, rendered as Markdown, with every answer token's probability and its strongest
// alternatives on hover (or tap): the seeds' "mat 97%".
"use strict";

(function () {
  const $ = (s) => document.querySelector(s);
  const KEYS = { convs: "llmlab.conversations", current: "llmlab.current", settings: "llmlab.settings",
                 model: "llmlab.model" };
  const SETTINGS = ["temperature", "top_p", "top_k", "max_tokens", "seed", "api_key", "color_tokens"];

  function load(key, fallback) {
    try {
      const v = JSON.parse(localStorage.getItem(key));
      return v === null ? fallback : v;
    } catch (e) {
      return fallback;
    }
  }
  function store(key, value) {
    try {
      localStorage.setItem(key, JSON.stringify(value));
    } catch (e) {
      status("could not save the conversation (browser storage full?)");
    }
  }

  let convs = load(KEYS.convs, []);
  if (!Array.isArray(convs)) convs = [];
  let currentId = load(KEYS.current, null);
  let model = null;
  let models = []; // /v1/models: the served run and the assistants
  let busy = null; // {ctrl, conv, msg} while an answer streams
  let pinned = null; // the token span whose tip was opened by a tap

  const current = () => convs.find((c) => c.id === currentId) || null;
  const save = () => { store(KEYS.convs, convs); store(KEYS.current, currentId); };
  const status = (text) => { $("#status").textContent = text || ""; };

  // ------------------------------------------------------------------------------------------ settings
  function readSettings() {
    const s = {};
    for (const k of SETTINGS) {
      const input = $("#" + k);
      s[k] = input.type === "checkbox" ? input.checked : input.value;
    }
    return s;
  }
  function applySettings() {
    const s = load(KEYS.settings, {});
    for (const k of SETTINGS) {
      const input = $("#" + k);
      if (s[k] === undefined) continue;
      if (input.type === "checkbox") input.checked = !!s[k];
      else input.value = s[k];
    }
    $("#messages").classList.toggle("shade", $("#color_tokens").checked);
  }
  function headers() {
    const h = { "Content-Type": "application/json" };
    const key = $("#api_key").value.trim();
    if (key) h.Authorization = "Bearer " + key;
    return h;
  }
  async function errorText(res) {
    try {
      const body = await res.json();
      if (body && body.error && body.error.message) return body.error.message;
    } catch (e) { /* not JSON */ }
    return res.status + " " + res.statusText;
  }
  async function fetchModel() {
    try {
      const res = await fetch("/v1/models", { headers: headers() });
      if (!res.ok) {
        status(res.status === 401 ? "this server needs an API key (Settings)" : await errorText(res));
        return null;
      }
      const body = await res.json();
      models = body.data;
      const sel = $("#model-select");
      const want = load(KEYS.model, null);
      sel.replaceChildren(...models.map((m) => {
        const o = document.createElement("option");
        o.value = m.id;
        o.textContent = m.id;
        return o;
      }));
      sel.value = models.some((m) => m.id === want) ? want : models[0].id;
      chooseModel(sel.value);
      status("");
      return model;
    } catch (e) {
      status("server unreachable");
      return null;
    }
  }

  // The served run first, then the saved assistants ("assistant:NAME", llmlab assistant create).
  function chooseModel(id) {
    model = models.find((m) => m.id === id) || models[0];
    store(KEYS.model, model.id);
    const tools = (model.llmlab && model.llmlab.tools) || [];
    $("#model-info").textContent = model.id + " \u00b7 context " + (model.max_model_len || "?") +
      (tools.length ? " \u00b7 tools: " + tools.join(", ") : "");
  }

  // ------------------------------------------------------------------------------------- conversations
  function newConversation() {
    const c = { id: Date.now().toString(36) + Math.random().toString(36).slice(2, 7), title: "New chat",
                system: "", messages: [], created: Date.now() };
    convs.unshift(c);
    currentId = c.id;
    save();
    renderAll();
    $("#input").focus();
  }
  function renderList() {
    const ul = $("#conversations");
    ul.replaceChildren();
    for (const c of convs) {
      const li = document.createElement("li");
      li.dataset.id = c.id;
      if (c.id === currentId) li.className = "active";
      const title = document.createElement("span");
      title.className = "title";
      title.textContent = c.title;
      const del = document.createElement("button");
      del.className = "delete";
      del.type = "button";
      del.title = "Delete this conversation";
      del.textContent = "\u00d7";
      li.append(title, del);
      ul.append(li);
    }
  }
  function renderAll() {
    renderList();
    const c = current();
    $("#system").value = c ? c.system || "" : "";
    renderMessages();
  }

  // ----------------------------------------------------------------------------------------- messages
  function probClass(p) {
    return p < 0.1 ? " p2" : p < 0.4 ? " p1" : "";
  }
  function fillAssistant(body, m) {
    const toks = m.tokens || [];
    const src = m.content || "";
    const textNode = (a, b) => document.createTextNode(src.slice(a, b));
    const leaf = (parent, a, b) => {
      if (!toks.length) { parent.append(textNode(a, b)); return; }
      let lo = 0, hi = toks.length;
      while (lo < hi) { const mid = (lo + hi) >> 1; if (toks[mid].e <= a) lo = mid + 1; else hi = mid; }
      let pos = a;
      for (let t = lo; t < toks.length && pos < b; t++) {
        const tk = toks[t];
        if (tk.s >= b) break;
        if (tk.s > pos) { parent.append(textNode(pos, tk.s)); pos = tk.s; }
        const end = Math.min(b, tk.e);
        if (end <= pos) continue;
        const span = document.createElement("span");
        span.className = "tok" + probClass(tk.p);
        span.dataset.i = String(t);
        span.textContent = src.slice(pos, end);
        parent.append(span);
        pos = end;
      }
      if (pos < b) parent.append(textNode(pos, b));
    };
    body.replaceChildren(window.LlmMarkdown.render(src, leaf));
  }
  function metaText(m) {
    if (m.error) return "error: " + m.error;
    const parts = [];
    if (m.finish === "stopped") parts.push("stopped");
    else if (m.finish === "length") parts.push("cut at the token limit");
    else if (m.finish === "content_filter") parts.push("refused by the content filter");
    if (m.usage) parts.push(m.usage.completion_tokens + " tokens");
    return parts.join(" \u00b7 ");
  }
  function renderMessage(m, index) {
    const div = document.createElement("div");
    div.className = "msg " + m.role + (m.error ? " error" : "");
    div.dataset.index = String(index);
    if (m.role === "user") {
      div.textContent = m.content;
      return div;
    }
    const body = document.createElement("div");
    body.className = "body";
    fillAssistant(body, m);
    if (m.refusal && !m.content) body.textContent = m.refusal;
    const meta = document.createElement("div");
    meta.className = "meta";
    meta.textContent = metaText(m);
    div.append(body, meta);
    return div;
  }
  function renderMessages() {
    const box = $("#messages");
    box.replaceChildren();
    hideTip();
    const c = current();
    if (c) c.messages.forEach((m, i) => box.append(renderMessage(m, i)));
    if (busy && busy.conv === c) {
      const last = box.lastElementChild;
      if (last) last.querySelector(".body").classList.add("cursor");
    }
    box.scrollTop = box.scrollHeight;
    updateButtons();
  }
  let frame = 0;
  function renderStreaming() {
    if (frame) return;
    frame = requestAnimationFrame(() => {
      frame = 0;
      if (!busy || busy.conv !== current()) return;
      const box = $("#messages");
      const last = box.lastElementChild;
      if (!last || !last.classList.contains("assistant")) { renderMessages(); return; }
      const body = last.querySelector(".body");
      const stick = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
      fillAssistant(body, busy.msg);
      body.classList.add("cursor");
      if (stick) box.scrollTop = box.scrollHeight;
    });
  }
  function updateButtons() {
    const c = current();
    const streaming = !!busy;
    $("#stop").hidden = !streaming;
    $("#send").disabled = streaming;
    const last = c && c.messages[c.messages.length - 1];
    $("#regenerate").hidden = streaming || !last || last.role !== "assistant";
  }

  // -------------------------------------------------------------------------------------- generation
  function requestBody(c) {
    const s = readSettings();
    const messages = [];
    if (c.system.trim()) messages.push({ role: "system", content: c.system });
    for (const m of c.messages) {
      if (m.error || !(m.role === "user" || m.role === "assistant") || !m.content) continue;
      messages.push({ role: m.role, content: m.content });
    }
    const body = { model: model.id, messages, stream: true, stream_options: { include_usage: true } };
    const assistant = model.id.startsWith("assistant:");
    // An assistant brings its own sampling defaults; one with tools answers after its calls, without logprobs.
    if (!(assistant && model.llmlab && model.llmlab.tools && model.llmlab.tools.length)) {
      body.logprobs = true;
      body.top_logprobs = 5;
    }
    const num = (v) => (v === "" || v === null || v === undefined ? null : Number(v));
    if (!assistant) {
      if (num(s.temperature) !== null) body.temperature = num(s.temperature);
      if (num(s.top_p) !== null) body.top_p = num(s.top_p);
      if (num(s.top_k) > 0) body.top_k = Math.floor(num(s.top_k));
      if (num(s.max_tokens) > 0) body.max_tokens = Math.floor(num(s.max_tokens));
    }
    if (num(s.seed) !== null) body.seed = Math.floor(num(s.seed));
    return body;
  }

  async function generate(c) {
    if (!model && !(await fetchModel())) return;
    const body = requestBody(c);
    const msg = { role: "assistant", content: "", tokens: [], finish: null };
    c.messages.push(msg);
    const ctrl = new AbortController();
    busy = { ctrl, conv: c, msg };
    save();
    renderMessages();
    const tokenBytes = new TextDecoder("utf-8"); // token bytes -> characters, a character split across tokens
    let chars = 0; //                                 belongs to the token that completes it
    const onEvent = (data) => {
      if (data === "[DONE]") return;
      const obj = JSON.parse(data);
      if (obj.error) { msg.error = obj.error.message; return; }
      if (obj.usage) msg.usage = obj.usage;
      const ch = obj.choices && obj.choices[0];
      if (!ch) return;
      const lp = ch.logprobs && ch.logprobs.content;
      if (lp) {
        for (const e of lp) {
          const piece = tokenBytes.decode(new Uint8Array(e.bytes || []), { stream: true });
          msg.tokens.push({ s: chars, e: chars + piece.length, p: Math.exp(e.logprob), t: e.token,
                            alt: (e.top_logprobs || []).map((a) => [a.token, Math.exp(a.logprob)]) });
          chars += piece.length;
        }
      }
      if (ch.delta && ch.delta.content) msg.content += ch.delta.content;
      if (ch.delta && ch.delta.refusal) msg.refusal = ch.delta.refusal;
      if (ch.finish_reason) msg.finish = ch.finish_reason;
      renderStreaming();
    };
    try {
      const res = await fetch("/v1/chat/completions", { method: "POST", headers: headers(),
                                                          body: JSON.stringify(body), signal: ctrl.signal });
      if (!res.ok) {
        msg.error = await errorText(res);
      } else {
        const reader = res.body.getReader();
        const dec = new TextDecoder();
        let buf = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += dec.decode(value, { stream: true });
          let k;
          while ((k = buf.indexOf("\n\n")) >= 0) {
            const event = buf.slice(0, k);
            buf = buf.slice(k + 2);
            for (const line of event.split("\n")) if (line.startsWith("data: ")) onEvent(line.slice(6));
          }
        }
      }
    } catch (e) {
      if (e.name === "AbortError") msg.finish = "stopped";
      else msg.error = String(e.message || e);
    } finally {
      busy = null;
      save();
      renderMessages();
    }
  }

  async function send() {
    const text = $("#input").value;
    if (!text.trim() || busy) return;
    if (!current()) newConversation();
    const c = current();
    c.messages.push({ role: "user", content: text });
    if (c.title === "New chat") c.title = text.trim().slice(0, 40);
    $("#input").value = "";
    save();
    renderList();
    renderMessages();
    await generate(c);
  }

  function regenerate() {
    const c = current();
    if (!c || busy) return;
    while (c.messages.length && c.messages[c.messages.length - 1].role === "assistant") c.messages.pop();
    if (!c.messages.length) return;
    generate(c);
  }

  // ---------------------------------------------------------------------------------- the token tip
  function tokenOf(span) {
    const msgEl = span.closest(".msg");
    const c = current();
    if (!msgEl || !c) return null;
    const m = busy && msgEl === $("#messages").lastElementChild && busy.conv === c ? busy.msg
      : c.messages[Number(msgEl.dataset.index)];
    return m && m.tokens ? m.tokens[Number(span.dataset.i)] : null;
  }
  const pct = (p) => (p >= 0.995 ? (100 * p).toFixed(1) : p >= 0.001 ? (100 * p).toFixed(1) : "<0.1") + "%";
  function showTip(span) {
    const tk = tokenOf(span);
    if (!tk) return;
    const tip = $("#tip");
    tip.replaceChildren();
    const head = document.createElement("div");
    head.className = "head";
    const name = document.createElement("span");
    name.className = "tokname";
    name.textContent = JSON.stringify(tk.t);
    const prob = document.createElement("span");
    prob.className = "prob";
    prob.textContent = pct(tk.p);
    head.append(name, prob);
    tip.append(head);
    for (const [t, p] of tk.alt || []) {
      const row = document.createElement("div");
      row.className = "alt" + (t === tk.t ? " chosen" : "");
      const a = document.createElement("span");
      a.className = "alt-tok";
      a.textContent = JSON.stringify(t);
      const b = document.createElement("span");
      b.className = "alt-p";
      b.textContent = pct(p);
      const bar = document.createElement("div");
      bar.className = "bar";
      bar.style.width = Math.max(1, Math.round(100 * p)) + "%";
      row.append(a, b, bar);
      tip.append(row);
    }
    tip.hidden = false;
    const r = span.getBoundingClientRect();
    const w = tip.offsetWidth, h = tip.offsetHeight;
    let top = r.bottom + 6;
    if (top + h > window.innerHeight) top = Math.max(4, r.top - h - 6);
    tip.style.left = Math.max(4, Math.min(r.left, window.innerWidth - w - 4)) + "px";
    tip.style.top = top + "px";
  }
  function hideTip() {
    $("#tip").hidden = true;
    if (pinned) pinned.classList.remove("pinned");
    pinned = null;
  }

  // ------------------------------------------------------------------------------------------ wiring
  function wire() {
    $("#new-chat").addEventListener("click", () => { if (!busy) newConversation(); });
    $("#conversations").addEventListener("click", (e) => {
      const li = e.target.closest("li");
      if (!li || busy) return;
      if (e.target.classList.contains("delete")) {
        convs = convs.filter((c) => c.id !== li.dataset.id);
        if (currentId === li.dataset.id) currentId = convs.length ? convs[0].id : null;
      } else {
        currentId = li.dataset.id;
      }
      save();
      renderAll();
    });
    $("#composer").addEventListener("submit", (e) => { e.preventDefault(); send(); });
    $("#input").addEventListener("keydown", (e) => {
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); send(); }
    });
    $("#stop").addEventListener("click", () => { if (busy) busy.ctrl.abort(); });
    $("#regenerate").addEventListener("click", regenerate);
    $("#system").addEventListener("input", () => {
      const c = current();
      if (c) { c.system = $("#system").value; save(); }
    });
    for (const [button, panel] of [["#system-toggle", "#system-panel"], ["#settings-toggle", "#settings-panel"]]) {
      $(button).addEventListener("click", () => {
        const p = $(panel);
        p.hidden = !p.hidden;
        $(button).setAttribute("aria-expanded", String(!p.hidden));
      });
    }
    $("#model-select").addEventListener("change", (e) => chooseModel(e.target.value));
    $("#settings-panel").addEventListener("change", () => {
      store(KEYS.settings, readSettings());
      $("#messages").classList.toggle("shade", $("#color_tokens").checked);
      if (!model) fetchModel();
    });
    const box = $("#messages");
    box.addEventListener("mouseover", (e) => {
      const span = e.target.closest(".tok");
      if (span && !pinned) showTip(span);
    });
    box.addEventListener("mouseout", (e) => {
      if (e.target.closest(".tok") && !pinned) $("#tip").hidden = true;
    });
    box.addEventListener("click", (e) => { // tap: pin the tip to a token (touch screens have no hover)
      const span = e.target.closest(".tok");
      if (!span) { hideTip(); return; }
      if (pinned === span) { hideTip(); return; }
      hideTip();
      pinned = span;
      span.classList.add("pinned");
      showTip(span);
    });
    box.addEventListener("scroll", hideTip);
  }

  wire();
  applySettings();
  if (!current() && convs.length) currentId = convs[0].id;
  renderAll();
  fetchModel();
})();
