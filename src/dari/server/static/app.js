// dari's chat page: plain ES module, no framework, nothing from the network.
// Model output is only ever inserted as text (textContent / text nodes), never as markup.

import { builder, problem } from "./dom.js";

const STRINGS = {
  en: {
    collection: "Collection", key: "API key", save: "Save",
    keyHint: "This server needs an API key. It is kept in this browser only.",
    keyRefused: "The key was refused: ",
    introTitle: "Ask questions about your documents",
    introCan: "I answer only from the documents in the selected collection and number the " +
      "passages I used: press [1] to read the source (document, page, passage).",
    introCannot: "I don't answer from general knowledge, browse the web or see other " +
      "collections. When the documents don't say, I tell you instead of guessing, and a " +
      "safety check stops requests that try to change my instructions or expose personal data.",
    examplesTitle: "Try one of these:",
    examples: [
      "Which file formats can dari ingest?",
      "What happens if dari is killed during ingestion?",
      "How do I record feedback on an answer?",
    ],
    note: "Answers can be wrong — check the sources.",
    placeholder: "Ask a question… (Enter sends, Shift+Enter for a new line)",
    send: "Send", stop: "Stop", regenerate: "Regenerate", copy: "Copy", copied: "Copied",
    up: "Helpful", down: "Not helpful", close: "Close", sources: "Sources", page: "page",
    commentPrompt: "What was wrong? (optional)", sendComment: "Send feedback", skip: "Skip",
    thanks: "Thanks for the feedback.",
    blocked: "A safety check stopped this. Rephrase the question, or ask about the documents.",
    abstained: "The documents don't contain enough to answer this. Try other words, or " +
      "another collection.",
    stopped: "Stopped.", error: "Something went wrong: ", warnings: "Note: ",
    noCollections: "No collections yet: add documents with `dari ingest`.",
    chooseCollection: "Choose a collection first.",
    loading: "Loading…", cutOff: "the answer stream ended early.",
  },
  ko: {
    collection: "컬렉션", key: "API 키", save: "저장",
    keyHint: "이 서버는 API 키가 필요합니다. 키는 이 브라우저에만 저장됩니다.",
    keyRefused: "키가 거부되었습니다: ",
    introTitle: "문서에 대해 질문하세요",
    introCan: "선택한 컬렉션의 문서만 근거로 답하고, 사용한 구절에 번호를 붙입니다. " +
      "[1]을 누르면 출처(문서, 쪽, 구절)를 볼 수 있습니다.",
    introCannot: "일반 상식이나 웹 검색으로 답하지 않으며 다른 컬렉션은 보지 않습니다. " +
      "문서에 없는 내용은 추측하지 않고 모른다고 답하며, 지시를 바꾸려 하거나 개인정보를 " +
      "드러내는 요청은 안전 점검에서 차단됩니다.",
    examplesTitle: "이런 질문을 해 보세요:",
    examples: [
      "dari를 처음 설치하고 실행하려면 어떤 명령을 쓰나요?",
      "수집 중에 dari가 강제 종료되면 어떻게 되나요?",
      "답변에 대한 피드백은 어떻게 남기나요?",
    ],
    note: "답변이 틀릴 수 있습니다 — 출처를 확인하세요.",
    placeholder: "질문을 입력하세요… (Enter 보내기, Shift+Enter 줄바꿈)",
    send: "보내기", stop: "중지", regenerate: "다시 생성", copy: "복사", copied: "복사됨",
    up: "도움이 됨", down: "도움이 안 됨", close: "닫기", sources: "출처", page: "쪽",
    commentPrompt: "무엇이 잘못되었나요? (선택)", sendComment: "의견 보내기", skip: "건너뛰기",
    thanks: "의견 감사합니다.",
    blocked: "안전 점검에서 차단되었습니다. 질문을 바꾸거나 문서에 관한 질문을 해 주세요.",
    abstained: "문서에 답할 만한 내용이 충분하지 않습니다. 다른 표현이나 다른 컬렉션으로 " +
      "질문해 보세요.",
    stopped: "중지되었습니다.", error: "오류가 발생했습니다: ", warnings: "참고: ",
    noCollections: "아직 컬렉션이 없습니다. `dari ingest`로 문서를 추가하세요.",
    chooseCollection: "먼저 컬렉션을 선택하세요.",
    loading: "불러오는 중…", cutOff: "답변 스트림이 중간에 끊겼습니다.",
  },
};

const $ = (id) => document.getElementById(id);
const state = { lang: "en", key: "", turns: [], controller: null, busy: false };
const session = localStorage.getItem("dari.session") || crypto.randomUUID();
localStorage.setItem("dari.session", session);

const t = (name) => STRINGS[state.lang][name] ?? STRINGS.en[name];

const h = builder(t);

// --- language -------------------------------------------------------------------------------

function setLang(lang) {
  state.lang = STRINGS[lang] ? lang : "en";
  localStorage.setItem("dari.lang", state.lang);
  document.documentElement.lang = state.lang;
  for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of document.querySelectorAll("[data-i18n-placeholder]")) {
    el.placeholder = t(el.dataset.i18nPlaceholder);
  }
  for (const el of document.querySelectorAll("[data-i18n-label]")) {
    el.title = t(el.dataset.i18nLabel);
    el.setAttribute("aria-label", el.title);
  }
  const other = state.lang === "ko" ? "en" : "ko";
  $("lang").textContent = other === "ko" ? "한국어" : "English";
  $("lang").lang = other;
  $("examples").replaceChildren(...t("examples").map((q) =>
    h("li", {}, h("button", { type: "button", class: "example", onclick: () => ask(q) }, q))));
}

// --- the API --------------------------------------------------------------------------------

function headers() {
  const out = { "Content-Type": "application/json" };
  if (state.key) out.Authorization = `Bearer ${state.key}`;
  return out;
}

function post(path, body, signal) {
  return fetch(path, { method: "POST", headers: headers(), body: JSON.stringify(body), signal });
}

// Server-sent events from a POST: read the body stream and split it into events.
async function* events(res) {
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer = (buffer + decoder.decode(value, { stream: true })).replace(/\r\n/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let event = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (data.length) yield { event, data: JSON.parse(data.join("\n")) };
    }
  }
}

async function loadCollections() {
  status(t("loading"));
  let res = await fetch("/api/collections");
  const open = res.ok; // no key needed: no key box at all
  if (open) state.key = "";
  else if (res.status === 401 && state.key) res = await fetch("/api/collections", { headers: headers() });
  $("keybtn").hidden = open;
  $("keybox").hidden = res.ok;
  if (!res.ok) {
    const refused = res.status === 401;
    if (refused && !state.key) status("");
    else status(t(refused ? "keyRefused" : "error") + await problem(res));
    if (refused) $("key").focus();
    return;
  }
  const names = (await res.json()).map((c) => c.name);
  const select = $("collection");
  select.replaceChildren(...names.map((n) => h("option", { value: n }, n)));
  const saved = localStorage.getItem("dari.collection");
  if (names.includes(saved)) select.value = saved;
  status(names.length ? "" : t("noCollections"));
}

function status(text) {
  $("status").textContent = text;
  $("status").hidden = !text;
}

// --- turns ----------------------------------------------------------------------------------

function turnView() {
  const text = h("div", { class: "text" });
  const extra = h("div", { class: "extra" });
  const actions = h("div", { class: "actions" });
  const el = h("article", { class: "msg bot" }, text, extra, actions);
  return { el, text, extra, actions };
}

async function ask(question, turn = null) {
  question = question.trim();
  if (!question || state.busy) return;
  const collection = $("collection").value;
  if (!collection) { status(t("chooseCollection")); return; }
  if (!turn) {
    for (const old of state.turns) old.view.actions.querySelector(".regen")?.remove();
    turn = { question, answer: null, view: turnView() };
    state.turns.push(turn);
    $("messages").append(h("article", { class: "msg user" }, question), turn.view.el);
    $("intro").hidden = true;
  }
  const history = state.turns
    .filter((x) => x !== turn && x.answer?.outcome === "answered")
    .slice(-10)
    .map((x) => [x.question, x.answer.answer]);
  const { el, text, extra, actions } = turn.view;
  el.className = "msg bot streaming";
  text.textContent = "";
  extra.replaceChildren();
  actions.replaceChildren();
  busy(true);
  const controller = (state.controller = new AbortController());
  try {
    const res = await post("/api/query/stream", { question, collection, history, session },
      controller.signal);
    if (!res.ok) throw new Error(await problem(res));
    for await (const { event, data } of events(res)) {
      if (event === "token") text.append(data);
      else if (event === "answer") finish(turn, data);
      else if (event === "error") throw new Error([data.message, data.hint].filter(Boolean).join(" — "));
      el.scrollIntoView({ block: "end" });
    }
    if (!turn.answer) throw new Error(t("cutOff"));
  } catch (err) {
    if (err.name === "AbortError") {
      el.className = "msg bot stopped";
      extra.append(h("p", { class: "explain", i18n: "stopped" }));
    } else {
      el.className = "msg bot error";
      extra.append(h("p", { class: "explain" }, h("span", { i18n: "error" }), err.message));
      if (/API key|401/.test(err.message)) $("keybox").hidden = false;
    }
  } finally {
    busy(false);
    addActions(turn);
  }
}

function busy(on) {
  state.busy = on;
  $("send").hidden = on;
  $("stop").hidden = !on;
  if (!on) state.controller = null;
}

function finish(turn, answer) {
  turn.answer = answer;
  const { el, text, extra } = turn.view;
  el.className = `msg bot ${answer.outcome}`;
  renderText(text, answer.answer, answer.citations);
  if (answer.outcome === "blocked" || answer.outcome === "abstained") {
    extra.append(h("p", { class: "explain", i18n: answer.outcome }));
  }
  if (answer.warnings.length) {
    extra.append(h("ul", { class: "warnings" },
      ...answer.warnings.map((w) => h("li", {}, h("span", { i18n: "warnings" }), w))));
  }
  if (answer.citations.length) {
    extra.append(h("div", { class: "sources" }, h("span", { class: "hint", i18n: "sources" }),
      ...answer.citations.map((c) => citeButton(c, `[${c.n}] ${label(c)}`))));
  }
}

// The answer as text nodes, with each known citation mark [n] (or [1, 2]) as a button.
function renderText(el, text, citations) {
  const byN = new Map(citations.map((c) => [c.n, c]));
  el.replaceChildren();
  let last = 0;
  for (const m of text.matchAll(/\[(\d{1,3}(?:\s*,\s*\d{1,3})*)\]/g)) {
    const cited = m[1].split(",").map((n) => byN.get(Number(n.trim())));
    if (cited.some((c) => !c)) continue;
    el.append(text.slice(last, m.index), ...cited.map((c) => citeButton(c, `[${c.n}]`)));
    last = m.index + m[0].length;
  }
  el.append(text.slice(last));
}

const label = (c) => c.title || c.source.split(/[\\/]/).pop();

function citeButton(c, text) {
  return h("button", { type: "button", class: "cite", onclick: () => openSource(c) }, text);
}

function openSource(c) {
  $("src-title").textContent = `[${c.n}] ${label(c)}`;
  const where = [];
  if (c.page !== null && c.page !== undefined) where.push(`${t("page")} ${c.page}`);
  if (c.heading) where.push(c.heading);
  $("src-where").textContent = where.join(" · ");
  $("src-snippet").textContent = c.snippet;
  $("src-path").textContent = c.source;
  $("source").showModal();
}

// --- feedback, copy, regenerate -------------------------------------------------------------

function addActions(turn) {
  const { actions } = turn.view;
  const done = turn.answer;
  const button = (i18n, cls, onclick, icon) => icon
    ? h("button", { type: "button", class: `icon ${cls}`, "data-i18n-label": i18n,
      title: t(i18n), "aria-label": t(i18n), onclick }, icon)
    : h("button", { type: "button", class: cls, i18n, onclick });
  if (done && done.outcome !== "blocked") {
    actions.append(
      button("up", "up", () => thumb(turn, "up"), "👍"),
      button("down", "down", () => commentBox(turn), "👎"),
    );
  }
  const shown = done ? done.answer : turn.view.text.textContent;
  if (shown) actions.append(button("copy", "copy", (e) => copy(turn, shown, e.currentTarget)));
  actions.append(button("regenerate", "regen", () => regenerate(turn)));
}

async function sendFeedback(turn, body) {
  const res = await post("/api/feedback", { trace_id: turn.answer.trace_id, ...body });
  if (!res.ok) throw new Error(await problem(res));
}

async function thumb(turn, which, comment = null) {
  const { extra, actions } = turn.view;
  for (const b of actions.querySelectorAll(".up, .down")) b.disabled = true;
  extra.querySelector(".comment")?.remove();
  try {
    await sendFeedback(turn, comment ? { thumb: which, comment } : { thumb: which });
    extra.append(h("p", { class: "thanks", i18n: "thanks" }));
    actions.querySelector(`.${which}`).classList.add("chosen");
  } catch (err) {
    extra.append(h("p", { class: "explain" }, h("span", { i18n: "error" }), err.message));
    for (const b of actions.querySelectorAll(".up, .down")) b.disabled = false;
  }
}

function commentBox(turn) {
  const { extra } = turn.view;
  if (extra.querySelector(".comment")) return;
  const box = h("textarea", { rows: "2", maxlength: "8000", "data-i18n-placeholder":
    "commentPrompt", placeholder: t("commentPrompt"), "aria-label": t("commentPrompt") });
  const form = h("form", { class: "comment", onsubmit: (e) => {
    e.preventDefault();
    thumb(turn, "down", box.value.trim() || null);
  } }, box, h("button", { type: "submit", i18n: "sendComment" }),
  h("button", { type: "button", class: "ghost", i18n: "skip",
    onclick: () => thumb(turn, "down") }));
  extra.append(form);
  box.focus();
}

async function copy(turn, text, button) {
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    const area = h("textarea", {}, text); // not secure context, or no permission
    document.body.append(area);
    area.select();
    document.execCommand("copy");
    area.remove();
  }
  button.textContent = t("copied");
  if (turn.answer) post("/api/feedback", { trace_id: turn.answer.trace_id, signal: "copy" });
}

function regenerate(turn) {
  if (state.busy) return;
  // The implicit signal: the user wanted another answer than this one.
  if (turn.answer) post("/api/feedback", { trace_id: turn.answer.trace_id, signal: "regenerate" });
  turn.answer = null;
  ask(turn.question, turn);
}

// --- wiring ---------------------------------------------------------------------------------

function start() {
  state.key = localStorage.getItem("dari.key") || "";
  const browser = (navigator.language || "en").toLowerCase().startsWith("ko") ? "ko" : "en";
  setLang(localStorage.getItem("dari.lang") || browser);
  $("lang").addEventListener("click", () => setLang(state.lang === "ko" ? "en" : "ko"));
  $("keybtn").addEventListener("click", () => { $("keybox").hidden = !$("keybox").hidden; });
  $("keybox").addEventListener("submit", (e) => {
    e.preventDefault();
    state.key = $("key").value.trim();
    localStorage.setItem("dari.key", state.key);
    $("key").value = "";
    loadCollections();
  });
  $("collection").addEventListener("change", (e) =>
    localStorage.setItem("dari.collection", e.target.value));
  $("ask").addEventListener("submit", (e) => {
    e.preventDefault();
    const q = $("question").value;
    if (!$("collection").value) status(t("chooseCollection"));
    else if (q.trim() && !state.busy) { $("question").value = ""; ask(q); }
  });
  $("question").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      $("ask").requestSubmit();
    }
  });
  $("stop").addEventListener("click", () => state.controller?.abort());
  $("src-close").addEventListener("click", () => $("source").close());
  $("source").addEventListener("click", (e) => { if (e.target === $("source")) $("source").close(); });
  loadCollections().catch((err) => status(t("error") + err.message));
}

start();
