#include "server/chat_page.h"

namespace insitu::server {

namespace {

// Plain HTML, CSS and JavaScript; no build step, no external resource. The element ids are what
// tests/server/test_chat_page.py drives: #prompt, #send, #messages (.msg.user / .msg.assistant),
// #stats, #temperature, #top_p, #top_k, #max_tokens, #isq_type, #requantize, #isq_status.
constexpr const char kChatPage[] = R"HTML(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>insitu chat</title>
<style>
  :root { --fg: #1d1d1f; --muted: #6e6e73; --line: #d2d2d7; --accent: #0a66c2; --bg: #fafafa; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 15px/1.45 system-ui, sans-serif; color: var(--fg); background: var(--bg);
         display: flex; height: 100vh; }
  main { flex: 1; display: flex; flex-direction: column; min-width: 0; }
  header { padding: 10px 16px; border-bottom: 1px solid var(--line); display: flex; gap: 12px;
           align-items: baseline; }
  header h1 { font-size: 17px; margin: 0; }
  #model { color: var(--muted); font-size: 13px; }
  #messages { flex: 1; overflow-y: auto; padding: 16px; }
  .msg { max-width: 780px; margin: 0 auto 12px; padding: 10px 14px; border-radius: 10px;
         white-space: pre-wrap; word-wrap: break-word; }
  .msg.user { background: #e8f0fe; }
  .msg.assistant { background: #fff; border: 1px solid var(--line); }
  .msg.error { background: #fdecea; color: #8a1c12; }
  form { display: flex; gap: 8px; padding: 12px 16px; border-top: 1px solid var(--line); }
  textarea { flex: 1; resize: none; height: 56px; padding: 8px; font: inherit;
             border: 1px solid var(--line); border-radius: 8px; }
  button { font: inherit; padding: 6px 14px; border: 0; border-radius: 8px; background: var(--accent);
           color: #fff; cursor: pointer; }
  button:disabled { opacity: .5; cursor: default; }
  button.secondary { background: #e5e5ea; color: var(--fg); }
  aside { width: 250px; border-left: 1px solid var(--line); padding: 12px 16px; overflow-y: auto;
          font-size: 13px; }
  aside h2 { font-size: 13px; text-transform: uppercase; color: var(--muted); margin: 16px 0 8px; }
  aside label { display: flex; justify-content: space-between; align-items: center; margin: 6px 0; }
  aside input, aside select { width: 90px; font: inherit; }
  #stats, #isq_status { color: var(--muted); min-height: 1.4em; }
</style>
</head>
<body>
<main>
  <header><h1>insitu</h1><span id="model">loading…</span></header>
  <div id="messages"></div>
  <form id="form">
    <textarea id="prompt" placeholder="Message (Enter sends, Shift+Enter for a new line)"></textarea>
    <button id="send" type="submit">Send</button>
    <button id="stop" type="button" class="secondary" disabled>Stop</button>
    <button id="reset" type="button" class="secondary">New chat</button>
  </form>
</main>
<aside>
  <h2>Sampling</h2>
  <label>temperature <input id="temperature" type="number" step="0.05" min="0" max="2" value="0.7"></label>
  <label>top_p <input id="top_p" type="number" step="0.05" min="0.01" max="1" value="0.95"></label>
  <label>top_k <input id="top_k" type="number" step="1" min="0" value="40"></label>
  <label>min_p <input id="min_p" type="number" step="0.01" min="0" max="1" value="0.05"></label>
  <label>max tokens <input id="max_tokens" type="number" step="1" min="1" value="512"></label>
  <label>system <input id="system" type="text" value=""></label>
  <h2>Speed</h2>
  <div id="stats"></div>
  <h2>Re-quantize</h2>
  <label>type
    <select id="isq_type">
      <option>q8_0</option><option>q6k</option><option>q5k</option><option selected>q4k</option>
      <option>q4_0</option><option>q3k</option><option>q2k</option><option>hqq4</option>
      <option>afq4</option>
    </select>
  </label>
  <button id="requantize" type="button" class="secondary">Re-quantize</button>
  <div id="isq_status"></div>
</aside>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
let conversation = [];
let controller = null;
let modelName = null;

function addMessage(role, text) {
  const div = document.createElement("div");
  div.className = "msg " + role;
  div.textContent = text;
  $("messages").appendChild(div);
  $("messages").scrollTop = $("messages").scrollHeight;
  return div;
}

async function loadModel() {
  try {
    const r = await fetch("/v1/models");
    if (!r.ok) throw new Error("HTTP " + r.status);
    const j = await r.json();
    modelName = j.data[0].id;
    const meta = j.data[0].meta || {};
    $("model").textContent = modelName + (meta.weight_types ? " · " + meta.weight_types : "");
  } catch (e) {
    $("model").textContent = "model not ready (" + e.message + ")";
    setTimeout(loadModel, 1000);
  }
}

function samplingOptions() {
  const num = (id) => Number($(id).value);
  return { temperature: num("temperature"), top_p: num("top_p"), top_k: num("top_k"),
           min_p: num("min_p"), max_tokens: num("max_tokens") };
}

async function send(text) {
  conversation.push({ role: "user", content: text });
  addMessage("user", text);
  const out = addMessage("assistant", "");
  const messages = ($("system").value ? [{ role: "system", content: $("system").value }] : [])
      .concat(conversation);
  const body = Object.assign({ model: modelName, messages, stream: true,
                               stream_options: { include_usage: true } }, samplingOptions());
  controller = new AbortController();
  $("send").disabled = true; $("stop").disabled = false;
  const t0 = performance.now();
  let tFirst = null, answer = "", nTokens = 0;
  try {
    const r = await fetch("/v1/chat/completions", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body), signal: controller.signal });
    if (!r.ok) {
      const j = await r.json().catch(() => ({}));
      throw new Error((j.error && j.error.message) || ("HTTP " + r.status));
    }
    const reader = r.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const event = buffer.slice(0, cut); buffer = buffer.slice(cut + 2);
        if (!event.startsWith("data: ")) continue;
        const data = event.slice(6);
        if (data === "[DONE]") continue;
        const j = JSON.parse(data);
        if (j.error) throw new Error(j.error.message);
        if (j.usage) nTokens = j.usage.completion_tokens;
        for (const c of j.choices || []) {
          const d = c.delta && c.delta.content;
          if (d) {
            if (tFirst === null) tFirst = performance.now();
            answer += d;
            out.textContent = answer;
            $("messages").scrollTop = $("messages").scrollHeight;
          }
        }
      }
    }
    const t1 = performance.now();
    const decodeSeconds = tFirst !== null ? (t1 - tFirst) / 1000 : 0;
    $("stats").textContent = nTokens + " tokens · " +
        (decodeSeconds > 0 ? (Math.max(nTokens - 1, 0) / decodeSeconds).toFixed(1) : "–") +
        " tokens/s · first token " + (tFirst !== null ? ((tFirst - t0) / 1000).toFixed(2) : "–") + " s";
    out.dataset.done = "1";
  } catch (e) {
    if (e.name !== "AbortError") { out.className = "msg error"; out.textContent = answer + "\n[" + e.message + "]"; }
    out.dataset.done = "1";
  } finally {
    conversation.push({ role: "assistant", content: answer });
    controller = null;
    $("send").disabled = false; $("stop").disabled = true;
  }
}

$("form").addEventListener("submit", (e) => {
  e.preventDefault();
  const text = $("prompt").value.trim();
  if (!text || controller) return;
  $("prompt").value = "";
  send(text);
});
$("prompt").addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); $("form").requestSubmit(); }
});
$("stop").addEventListener("click", () => { if (controller) controller.abort(); });
$("reset").addEventListener("click", () => { conversation = []; $("messages").innerHTML = ""; });

async function pollIsq() {
  const r = await fetch("/re_isq");
  const j = await r.json();
  $("isq_status").textContent = j.status + (j.ggml_type ? " · " + j.ggml_type : "") +
      (j.status === "done" ? " in " + j.seconds.toFixed(1) + " s" : "") +
      (j.error ? " · " + j.error : "");
  if (j.status === "running") setTimeout(pollIsq, 500); else { $("requantize").disabled = false; loadModel(); }
}
$("requantize").addEventListener("click", async () => {
  $("requantize").disabled = true;
  const r = await fetch("/re_isq", { method: "POST", headers: { "Content-Type": "application/json" },
                                     body: JSON.stringify({ ggml_type: $("isq_type").value }) });
  if (!r.ok) {
    const j = await r.json().catch(() => ({}));
    $("isq_status").textContent = (j.error && j.error.message) || ("HTTP " + r.status);
    $("requantize").disabled = false;
    return;
  }
  pollIsq();
});

loadModel();
</script>
</body>
</html>
)HTML";

}  // namespace

const char* chat_page_html() { return kChatPage; }

}  // namespace insitu::server
