// The session viewer: reads /ui/api/… with the tab's API key and renders with textContent only
// (stored text is never parsed as HTML). Routes live in the URL hash: #/ (list), #/chain/<id>,
// #/conversation/<id>, so the browser's back button and links work.
"use strict";

const KEY = "responses-gateway-key";
const $ = (id) => document.getElementById(id);
const el = (tag, props = {}, ...children) => {
  const node = document.createElement(tag);
  Object.assign(node, props);
  for (const child of children) node.append(child);
  return node;
};
const when = (epoch) => (epoch ? new Date(epoch * 1000).toISOString().replace("T", " ").slice(0, 19) : "–");

async function api(path) {
  const key = sessionStorage.getItem(KEY);
  const response = await fetch(path, { headers: key ? { Authorization: `Bearer ${key}` } : {} });
  if (response.status === 401) { showLogin("That key is not accepted here."); throw new Error("unauthorized"); }
  const body = await response.json();
  if (!response.ok) throw new Error(body.error ? body.error.message : `HTTP ${response.status}`);
  return body;
}

function show(section) {
  for (const id of ["login", "list", "detail"]) $(id).hidden = id !== section;
  $("logout").hidden = !sessionStorage.getItem(KEY);
  $("error").textContent = "";
}

function showLogin(message = "") {
  sessionStorage.removeItem(KEY);
  show("login");
  $("login-error").textContent = message;
  $("key").focus();
}

// -- the list --------------------------------------------------------------------------------
async function showList() {
  show("list");
  const params = new URLSearchParams();
  for (const [name, value] of new FormData($("filters"))) if (value) params.set(name, value);
  const { data } = await api(`/ui/api/sessions?${params}`);
  const rows = $("sessions");
  rows.replaceChildren();
  for (const s of data) {
    const link = el("a", { href: `#/${s.kind}/${encodeURIComponent(s.id)}`, textContent: s.id });
    rows.append(el("tr", { className: "session" },
      el("td", {}, link, el("span", { className: "muted", textContent: s.kind === "conversation" ? ` conversation · ${s.items} items` : "" })),
      el("td", { textContent: s.model || "–" }),
      el("td", { className: `status-${s.status}`, textContent: s.status || "–" }),
      el("td", { textContent: s.turns ?? "–" }),
      el("td", { textContent: s.tokens ?? "–" }),
      el("td", { textContent: when(s.created_at) })));
  }
  $("empty").hidden = data.length > 0;
}

// -- items ------------------------------------------------------------------------------------
function textOf(content) {
  if (typeof content === "string") return content;
  return (content || []).map((p) => p.text ?? p.refusal ?? `[${p.type}]`).join("\n");
}

function raw(item) {
  return el("details", { className: "raw" }, el("summary", { textContent: "raw JSON" }),
    el("pre", { textContent: JSON.stringify(item, null, 2) }));
}

function renderItem(item) {
  const type = item.type || "message";
  const box = el("div", { className: "item" });
  if (type === "message") {
    box.classList.add(item.role);
    box.append(el("span", { className: "who", textContent: item.role }), el("pre", { textContent: textOf(item.content) }));
  } else if (type === "reasoning") {
    const text = textOf(item.content) || textOf(item.summary) || "(sealed)";
    box.append(el("details", { className: "reasoning" }, el("summary", { textContent: `reasoning (${text.length} characters)` }),
      el("pre", { textContent: text })));
  } else if (type.endsWith("_call")) {
    box.classList.add("call");
    const name = (item.namespace ? `${item.namespace}.` : "") + (item.name || type);
    const args = item.input ?? item.arguments ?? "";
    box.append(el("span", { className: "who", textContent: `call ${name}` }),
      el("span", { className: "muted", textContent: item.call_id || "" }),
      el("pre", { className: "arguments", textContent: typeof args === "string" ? args : JSON.stringify(args, null, 2) }));
  } else if (type.endsWith("_output")) {
    box.classList.add("output");
    const output = type === "tool_search_output" ? `${(item.tools || []).length} tools loaded` : textOf(item.output);
    box.append(el("span", { className: "who", textContent: "output" }),
      el("span", { className: "muted", textContent: item.call_id || "" }), el("pre", { textContent: output }));
  } else {
    box.append(el("span", { className: "who", textContent: type }));
  }
  box.append(raw(item));
  return box;
}

function renderTurn(turn) {
  const r = turn.response;
  const usage = r.usage || {};
  const seconds = r.completed_at && r.created_at ? `${r.completed_at - r.created_at}s` : "–";
  const head = el("h2", {},
    el("span", { textContent: `Turn ${turn.depth + 1}` }),
    el("span", { className: `status status-${r.status}`, textContent: r.status }),
    el("span", { className: "muted", textContent: r.id }),
    el("span", { className: "muted", textContent: `${when(r.created_at)} · ${seconds}` }),
    el("span", { className: "usage muted", textContent: `tokens in ${usage.input_tokens ?? "–"} / out ${usage.output_tokens ?? "–"}` }));
  const li = el("li", { className: "turn", id: r.id }, head);
  for (const item of turn.input.concat(turn.output)) li.append(renderItem(item));
  if (r.error) li.append(el("p", { className: "error turn-error", textContent: `error ${r.error.code}: ${r.error.message}` }));
  return li;
}

// -- a chain ------------------------------------------------------------------------------------
let earlier = null;

async function showChain(id, prepend = false) {
  show("detail");
  $("detail-title").textContent = `Chain ending at ${id}`;
  const { data, earlier: before } = await api(`/ui/api/chains/${encodeURIComponent(id)}`);
  const list = $("turns");
  if (!prepend) list.replaceChildren();
  const nodes = data.map(renderTurn);
  if (prepend) list.prepend(...nodes); else list.append(...nodes);
  earlier = before;
  $("earlier").hidden = !earlier;
  const last = data[data.length - 1];
  if (!prepend && last && ["queued", "in_progress"].includes(last.response.status)) follow(last.response);
  else $("live").hidden = true;
}

async function showConversation(id) {
  show("detail");
  $("detail-title").textContent = `Conversation ${id}`;
  $("earlier").hidden = true;
  $("live").hidden = true;
  const { data } = await api(`/ui/api/conversations/${encodeURIComponent(id)}`);
  $("turns").replaceChildren(el("li", { className: "turn" }, ...data.map(renderItem)));
}

// A background response's events, replayed from its log and followed live; any other response in
// progress is polled until it ends.
async function follow(response) {
  $("live").hidden = false;
  $("live-text").textContent = "";
  $("live-state").textContent = response.status;
  if (!response.background) {
    setTimeout(() => route(), 2000);
    return;
  }
  const key = sessionStorage.getItem(KEY);
  const stream = await fetch(`/v1/responses/${encodeURIComponent(response.id)}?stream=true`,
    { headers: key ? { Authorization: `Bearer ${key}` } : {} });
  const reader = stream.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = block.split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n");
      if (!data) continue;
      const event = JSON.parse(data);
      $("live-state").textContent = event.type;
      if (event.type.endsWith(".delta") && typeof event.delta === "string") $("live-text").textContent += event.delta;
      if (["response.completed", "response.incomplete", "response.failed"].includes(event.type)) {
        return showChain(response.id);
      }
    }
  }
}

// -- routing ------------------------------------------------------------------------------------
async function route() {
  const [, kind, id] = location.hash.split("/");
  try {
    if (kind === "chain" && id) await showChain(decodeURIComponent(id));
    else if (kind === "conversation" && id) await showConversation(decodeURIComponent(id));
    else await showList();
  } catch (error) {
    if (error.message !== "unauthorized") $("error").textContent = error.message;
  }
}

$("login-form").addEventListener("submit", (event) => {
  event.preventDefault();
  sessionStorage.setItem(KEY, $("key").value);
  $("key").value = "";
  route();
});
$("filters").addEventListener("submit", (event) => { event.preventDefault(); location.hash = "#/"; showList(); });
$("logout").addEventListener("click", () => showLogin());
$("earlier").addEventListener("click", () => earlier && showChain(earlier, true));
for (const back of document.querySelectorAll(".back, #home")) back.addEventListener("click", () => { location.hash = "#/"; });
window.addEventListener("hashchange", route);
route();
