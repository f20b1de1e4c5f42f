// dari's operator page: plain ES module, no framework, nothing from the network.
// Every value from the API is inserted as text (textContent / text nodes), never as markup.

import { builder, problem } from "./dom.js";

const STRINGS = {
  en: {
    title: "operator", key: "API key", save: "Save",
    keyHint: "This page needs an admin API key. It is kept in this browser only.",
    keyRefused: "The key was refused: ", error: "Something went wrong: ", loading: "Loading…",
    needAdminTitle: "This page needs an admin key",
    needAdmin: "The key saved in this browser may ask questions but not manage the server. " +
      "Enter an admin key (dari keys create --role admin).",
    tabCollections: "Collections", tabTraces: "Traces", tabFeedback: "Feedback",
    tabEvals: "Evals", tabCache: "Cache",
    collections: "Collections", name: "Name", files: "Files", documents: "Documents",
    chunks: "Chunks", embedder: "Embedder", newCollection: "New collection", create: "Create",
    created: "Collection created: ", documentsOf: "Documents of", aclTags: "ACL tags",
    aclHint: "optional, e.g. hr, legal", upload: "Upload", uploading: "uploading",
    processing: "Uploaded; reading and indexing the files…", uploadDone: "Done",
    uploadFailed: "The upload failed: ", networkError: "the connection was lost",
    file: "File", result: "Result", reason: "Reason", hint: "Hint", titleCol: "Title",
    format: "Format", lang: "Language", acl: "ACL", updated: "Updated", remove: "Delete",
    confirmDelete: "Delete this file's documents from the collection? ",
    removed: "Removed: ", noDocuments: "No documents yet.", noCollections: "No collections yet.",
    recentTraces: "Recent traces", outcome: "Outcome", all: "All", refresh: "Refresh",
    time: "Time", collection: "Collection", question: "Question", totalMs: "Total ms",
    cacheLookup: "Cache", noTraces: "No questions asked yet.", timings: "Timings",
    verdicts: "Guard verdicts", stage: "Stage", guard: "Guard", action: "Action",
    score: "Score", rule: "Rule", detail: "Detail", ms: "ms", cited: "Cited sources",
    noSources: "No sources were cited.", promptVersion: "prompt", model: "model",
    tokens: "tokens", cacheWas: "cache", stored: "stored", page: "page",
    feedbackReport: "Feedback", byCollection: "By collection", byPrompt: "By prompt version",
    mostDisliked: "Most disliked questions", recentFeedback: "Recent feedback", kind: "Kind",
    rating: "Rating", comment: "Comment / correction", trace: "Trace",
    noFeedback: "No feedback yet.", answersTraced: "Answers traced",
    withFeedback: "With feedback", explicit: "Explicit", ratings: "Ratings",
    meanRating: "Mean rating", signals: "Copied · regenerated · rephrased", up: "👍",
    down: "👎", share: "Liked", times: "Asked",
    evalRuns: "Evals", evalKind: "Kind", kindRetrieval: "Retrieval", kindAnswers: "Answers",
    dataset: "Dataset folder", configs: "Configurations",
    split: "Split", limit: "Queries", allQueries: "all", startEval: "Start",
    evalHint: "A BEIR folder (corpus.jsonl, queries.jsonl, qrels/) or a QA folder " +
      "(corpus.jsonl, qa.jsonl) on the server, as a full path. One run at a time.",
    golden: "Golden file", modelField: "Model", promptField: "Prompt", items: "Items",
    serverDefault: "the server's",
    answerHint: "A golden JSONL file on the server, as a full path: one question a line with " +
      "its answer (or \"unanswerable\": true), as dari eval answers reads it. Bad lines are " +
      "skipped and counted. Every answer is asked through the full pipeline with the server's " +
      "model. One run at a time.",
    evalStarted: "Eval run started: ", started: "Started", state: "State", evalSet: "Eval set",
    results: "Results", openReport: "Open report", noEvals: "No eval runs yet.",
    retrievalFigures: "nDCG@10 · recall@10", itemsWord: "items", skippedWord: "skipped lines",
    collectionShort: "collection", pick: "Compare", compareRuns: "Compare the two runs",
    compareHint: "Tick two finished answer runs: the older is A, the newer B.",
    comparison: "Comparison", pairedItems: "paired items", metric: "Metric",
    delta: "Δ (B − A)", ci95: "95 % CI", openComparison: "Open comparison",
    answerCache: "Answer cache", entries: "Entries", approved: "Approved", hits: "Hits",
    size: "Size on disk",
    words: {},
  },
  ko: {
    title: "운영", key: "API 키", save: "저장",
    keyHint: "이 페이지는 관리자 API 키가 필요합니다. 키는 이 브라우저에만 저장됩니다.",
    keyRefused: "키가 거부되었습니다: ", error: "오류가 발생했습니다: ", loading: "불러오는 중…",
    needAdminTitle: "이 페이지는 관리자 키가 필요합니다",
    needAdmin: "이 브라우저에 저장된 키로는 질문만 할 수 있고 서버를 관리할 수는 없습니다. " +
      "관리자 키를 입력하세요(dari keys create --role admin).",
    tabCollections: "컬렉션", tabTraces: "트레이스", tabFeedback: "피드백",
    tabEvals: "평가", tabCache: "캐시",
    collections: "컬렉션", name: "이름", files: "파일", documents: "문서",
    chunks: "청크", embedder: "임베더", newCollection: "새 컬렉션", create: "만들기",
    created: "컬렉션을 만들었습니다: ", documentsOf: "문서 목록:", aclTags: "ACL 태그",
    aclHint: "선택, 예: hr, legal", upload: "업로드", uploading: "업로드 중",
    processing: "업로드했습니다. 파일을 읽고 색인하는 중…", uploadDone: "완료",
    uploadFailed: "업로드에 실패했습니다: ", networkError: "연결이 끊겼습니다",
    file: "파일", result: "결과", reason: "이유", hint: "도움말", titleCol: "제목",
    format: "형식", lang: "언어", acl: "ACL", updated: "수정 시각", remove: "삭제",
    confirmDelete: "이 파일의 문서를 컬렉션에서 삭제할까요? ",
    removed: "삭제했습니다: ", noDocuments: "아직 문서가 없습니다.", noCollections: "아직 컬렉션이 없습니다.",
    recentTraces: "최근 트레이스", outcome: "결과", all: "전체", refresh: "새로 고침",
    time: "시각", collection: "컬렉션", question: "질문", totalMs: "전체 ms",
    cacheLookup: "캐시", noTraces: "아직 질문이 없습니다.", timings: "단계별 시간",
    verdicts: "가드 판정", stage: "단계", guard: "가드", action: "조치",
    score: "점수", rule: "규칙", detail: "상세", ms: "ms", cited: "인용한 출처",
    noSources: "인용한 출처가 없습니다.", promptVersion: "프롬프트", model: "모델",
    tokens: "토큰", cacheWas: "캐시", stored: "저장됨", page: "쪽",
    feedbackReport: "피드백", byCollection: "컬렉션별", byPrompt: "프롬프트 버전별",
    mostDisliked: "가장 많이 싫어요를 받은 질문", recentFeedback: "최근 피드백", kind: "종류",
    rating: "평점", comment: "의견 / 수정안", trace: "트레이스",
    noFeedback: "아직 피드백이 없습니다.", answersTraced: "기록된 답변",
    withFeedback: "피드백 받음", explicit: "명시적 피드백", ratings: "평점 수",
    meanRating: "평균 평점", signals: "복사 · 다시 생성 · 바꿔 묻기", up: "👍",
    down: "👎", share: "좋아요 비율", times: "질문 횟수",
    evalRuns: "평가", evalKind: "종류", kindRetrieval: "검색", kindAnswers: "답변",
    dataset: "데이터셋 폴더", configs: "구성",
    split: "분할", limit: "질문 수", allQueries: "전체", startEval: "시작",
    evalHint: "서버에 있는 BEIR 폴더(corpus.jsonl, queries.jsonl, qrels/)나 QA 폴더" +
      "(corpus.jsonl, qa.jsonl)의 전체 경로입니다. 한 번에 하나씩 실행됩니다.",
    golden: "골든 파일", modelField: "모델", promptField: "프롬프트", items: "항목 수",
    serverDefault: "서버 기본값",
    answerHint: "서버에 있는 골든 JSONL 파일의 전체 경로입니다. dari eval answers가 읽는 형식대로 " +
      "한 줄에 질문 하나와 그 답(또는 \"unanswerable\": true)을 적습니다. 잘못된 줄은 건너뛰고 " +
      "그 수를 셉니다. 모든 답변은 서버의 모델로 전체 파이프라인을 거쳐 만듭니다. " +
      "한 번에 하나씩 실행됩니다.",
    evalStarted: "평가를 시작했습니다: ", started: "시작", state: "상태", evalSet: "평가 세트",
    results: "결과", openReport: "보고서 열기", noEvals: "아직 평가 실행이 없습니다.",
    retrievalFigures: "nDCG@10 · recall@10", itemsWord: "항목", skippedWord: "건너뛴 줄",
    collectionShort: "컬렉션", pick: "비교", compareRuns: "두 실행 비교",
    compareHint: "끝난 답변 평가 두 개를 고르세요. 먼저 실행한 쪽이 A, 나중 쪽이 B입니다.",
    comparison: "비교", pairedItems: "짝지은 항목", metric: "지표",
    delta: "Δ (B − A)", ci95: "95 % 신뢰구간", openComparison: "비교 보고서 열기",
    answerCache: "답변 캐시", entries: "항목", approved: "승인됨", hits: "적중",
    size: "디스크 크기",
    words: {
      answered: "답변함", abstained: "답변 보류", blocked: "차단됨",
      running: "실행 중", done: "완료", failed: "실패", loading: "준비 중",
      added: "추가됨", updated: "갱신됨", unchanged: "변경 없음", removed: "삭제됨",
      up: "좋아요", down: "싫어요", rating: "평점",
      index: "색인", report: "보고서", approve: "승인", correction: "수정안",
      comment: "의견", copy: "복사", regenerate: "다시 생성", rephrase: "바꿔 묻기",
      input: "입력", context: "문맥", output: "출력", allow: "허용", warn: "경고",
      block: "차단", redact: "가림", miss: "없음", exact: "일치", semantic: "의미 일치",
      bypass: "건너뜀", retrieval: "검색", answers: "답변",
    },
  },
};

const $ = (id) => document.getElementById(id);
const state = { lang: "en", key: "", tab: "", collection: "", evalTimer: 0, traces: [],
  runs: [], picked: [] };
const TABS = ["collections", "traces", "feedback", "evals", "cache"];

const t = (name) => STRINGS[state.lang][name] ?? STRINGS.en[name];
// An API word (an outcome, a status, a guard action) in the page's language.
const word = (value) => STRINGS[state.lang].words[value] ?? value;

const h = builder(t);

const row = (...cells) => h("tr", {}, ...cells.map((c) => c instanceof Node && c.tagName === "TD"
  ? c : h("td", {}, c instanceof Node ? c : text(c))));
const text = (v) => (v === null || v === undefined || v === "" ? "—" : String(v));
const num = (v, digits = 0) => (typeof v === "number" ? v.toFixed(digits) : "—");
const pct = (v) => (typeof v === "number" ? `${(v * 100).toFixed(1)} %` : "—");

function when(seconds) {
  if (!seconds) return "—";
  return new Intl.DateTimeFormat(state.lang === "ko" ? "ko-KR" : "en-GB",
    { dateStyle: "short", timeStyle: "medium" }).format(new Date(seconds * 1000));
}

function bytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 2 ** 20) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 2 ** 20).toFixed(1)} MB`;
}

function fill(table, rows, empty) {
  const body = table.tBodies[0] || table.createTBody();
  body.replaceChildren(...rows);
  if (empty) $(empty).hidden = rows.length > 0;
}

// --- the API --------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

function authHeaders(extra = {}) {
  return state.key ? { ...extra, Authorization: `Bearer ${state.key}` } : extra;
}

async function api(path, { method = "GET", body } = {}) {
  const init = { method, headers: authHeaders(body ? { "Content-Type": "application/json" } : {}) };
  if (body) init.body = JSON.stringify(body);
  const res = await fetch(path, init);
  if (!res.ok) throw new ApiError(res.status, await problem(res));
  return res.json();
}

function status(message) {
  $("status").textContent = message;
  $("status").hidden = !message;
}

const failed = (err) => status(t("error") + err.message);

// --- access ---------------------------------------------------------------------------------

// Whether the saved key (or none, when the server needs none) may use the admin endpoints.
async function checkAccess() {
  status(t("loading"));
  let res = await fetch("/api/evals?limit=1");
  const open = res.ok;
  if (open) state.key = "";
  else if (res.status === 401 && state.key) res = await fetch("/api/evals?limit=1", { headers: authHeaders() });
  $("keybtn").hidden = open;
  $("needadmin").hidden = res.status !== 403;
  $("keybox").hidden = res.ok;
  $("tabs").hidden = !res.ok;
  if (!res.ok) {
    for (const name of TABS) $(`tab-${name}`).hidden = true;
    if (res.status === 403 || (res.status === 401 && !state.key)) status("");
    else status(t(res.status === 401 ? "keyRefused" : "error") + await problem(res));
    $("key").focus();
    return;
  }
  status("");
  const wanted = location.hash.slice(1);
  show(TABS.includes(wanted) ? wanted : "collections");
}

function show(tab) {
  state.tab = tab;
  history.replaceState(null, "", `#${tab}`);
  for (const b of $("tabs").querySelectorAll("button")) {
    b.setAttribute("aria-selected", String(b.dataset.tab === tab));
  }
  for (const name of TABS) $(`tab-${name}`).hidden = name !== tab;
  status("");
  clearTimeout(state.evalTimer);
  const load = { collections: loadCollections, traces: loadTraces, feedback: loadFeedback,
    evals: loadEvalsTab, cache: loadCache }[tab];
  load().catch(failed);
}

// --- collections and documents --------------------------------------------------------------

async function loadCollections() {
  const list = await api("/api/collections");
  fill($("collections"), list.map((c) => {
    const open = h("button", { type: "button", class: "link", onclick: () => pick(c.name) }, c.name);
    const tr = row(open, text(c.files), text(c.documents), text(c.chunks), c.embedder);
    if (c.name === state.collection) tr.className = "chosen";
    return tr;
  }));
  if (!list.length) status(t("noCollections"));
  if (state.collection && list.some((c) => c.name === state.collection)) await loadDocuments();
  else $("picked").hidden = true;
}

async function createCollection(e) {
  e.preventDefault();
  const name = $("newname").value.trim();
  try {
    await api("/api/collections", { method: "POST", body: { name } });
    $("newname").value = "";
    status(t("created") + name);
    await pick(name);
  } catch (err) { failed(err); }
}

async function pick(name) {
  state.collection = name;
  $("uploadreport").hidden = true;
  $("progressbox").hidden = true;
  await loadCollections();
}

async function loadDocuments() {
  const name = state.collection;
  $("picked").hidden = false;
  $("pickedname").textContent = name;
  const docs = await api(`/api/collections/${encodeURIComponent(name)}/documents?limit=1000`);
  fill($("documents"), docs.map((d) => row(
    h("span", { title: d.path, class: d.name ? "" : "path" }, d.name || d.path), text(d.title), text(d.format), text(d.lang),
    text(d.acl.join(", ")), text(d.chunks), when(d.updated_at),
    h("button", { type: "button", class: "ghost small", onclick: () => removeDoc(d) }, t("remove")),
  )), "nodocs");
}

async function removeDoc(doc) {
  const label = doc.name || doc.path;
  if (!confirm(t("confirmDelete") + label)) return;
  const ref = doc.name ? encodeURIComponent(doc.name)
    : doc.path.replace(/^\/+/, "").split("/").map(encodeURIComponent).join("/");
  try {
    await api(`/api/collections/${encodeURIComponent(state.collection)}/documents/${ref}`,
      { method: "DELETE" });
    status(t("removed") + label);
    await loadCollections();
  } catch (err) { failed(err); }
}

// The files go with XMLHttpRequest, the one browser API that reports upload progress.
function upload(e) {
  e.preventDefault();
  const files = $("files").files;
  if (!files.length || !state.collection) return;
  const form = new FormData();
  for (const f of files) form.append("file", f, f.name);
  const acl = $("acl").value.trim();
  if (acl) form.append("acl", acl);
  const xhr = new XMLHttpRequest();
  xhr.open("POST", `/api/collections/${encodeURIComponent(state.collection)}/documents`);
  for (const [k, v] of Object.entries(authHeaders())) xhr.setRequestHeader(k, v);
  xhr.upload.addEventListener("progress", (ev) => {
    if (ev.lengthComputable) progress(ev.loaded / ev.total, t("uploading"));
  });
  xhr.upload.addEventListener("load", () => progress(1, t("processing")));
  xhr.addEventListener("load", () => uploaded(xhr));
  xhr.addEventListener("error", () => uploadFailed(t("networkError")));
  $("upload").querySelector("button").disabled = true;
  $("uploadreport").hidden = true;
  status("");
  progress(0, t("uploading"));
  xhr.send(form);
}

function progress(fraction, label) {
  const value = Math.round(fraction * 100);
  $("progressbox").hidden = false;
  $("progress").value = value;
  $("progresstext").textContent = `${value} % · ${label}`;
}

function uploadFailed(message) {
  $("upload").querySelector("button").disabled = false;
  $("progresstext").textContent = t("uploadFailed") + message;
}

function uploaded(xhr) {
  let data = null;
  try { data = JSON.parse(xhr.responseText); } catch { /* not JSON: a proxy's error page */ }
  if (xhr.status !== 200) {
    const error = data?.error;
    uploadFailed(error ? [error.message, error.hint].filter(Boolean).join(" — ") : `HTTP ${xhr.status}`);
    return;
  }
  $("upload").querySelector("button").disabled = false;
  $("upload").reset();
  progress(1, t("uploadDone"));
  const counts = ["added", "updated", "unchanged", "failed"].map((s) => `${word(s)} ${data[s]}`);
  $("uploadsummary").textContent = `${counts.join(" · ")} · ${data.seconds} s`;
  fill($("uploadfiles"), data.files.map((f) => {
    const tr = row(f.name, word(f.status), text(f.documents), text(f.reason), text(f.hint));
    tr.className = `status-${f.status}`;
    return tr;
  }));
  $("uploadreport").hidden = false;
  loadCollections().catch(failed);
}

// --- traces ---------------------------------------------------------------------------------

async function loadTraces() {
  const outcome = $("outcome").value;
  const query = outcome ? `&outcome=${encodeURIComponent(outcome)}` : "";
  state.traces = await api(`/api/traces?limit=50${query}`);
  fill($("traces"), state.traces.map((tr) => row(
    when(tr.created_at), tr.collection,
    h("button", { type: "button", class: "link", onclick: () => openTrace(tr) }, tr.query),
    h("span", { class: `badge ${tr.outcome}` }, word(tr.outcome)),
    num(tr.timings_ms?.total, 1), word(tr.cache?.lookup ?? "—"),
  )), "notraces");
}

function openTrace(tr) {
  $("trace").hidden = false;
  $("tr-question").textContent = tr.query;
  const tokens = `${tr.prompt_tokens} + ${tr.completion_tokens}`;
  const meta = [tr.id, `${t("promptVersion")} ${tr.prompt_version}`, `${t("model")} ${tr.model}`,
    `${t("tokens")} ${tokens}`];
  if (tr.cache) {
    const c = tr.cache;
    meta.push(`${t("cacheWas")} ${word(c.lookup)}${c.stored ? ` (${t("stored")})` : ""}` +
      (c.similarity ? ` ${c.similarity.toFixed(3)}` : ""));
  }
  $("tr-meta").textContent = meta.join(" · ");
  $("tr-answer").textContent = tr.answer ?? "";
  timings(tr.timings_ms || {});
  fill($("tr-verdicts"), (tr.verdicts || []).map((v) => {
    const cells = row(word(v.stage), v.guard, word(v.action), num(v.score, 3), text(v.rule),
      text(v.detail), num(v.ms, 1));
    if (v.flagged) cells.className = "flagged";
    return cells;
  }));
  const sources = (tr.citations || []).map((c) => {
    const where = [c.title || c.source.split(/[\\/]/).pop()];
    if (c.page !== null && c.page !== undefined) where.push(`${t("page")} ${c.page}`);
    if (c.heading) where.push(c.heading);
    return h("li", {}, `[${c.n}] ${where.join(" · ")} `, h("span", { class: "path" }, c.source));
  });
  $("tr-sources").replaceChildren(...(sources.length ? sources : [h("li", { class: "hint" },
    t("noSources"))]));
  $("trace").scrollIntoView({ block: "nearest" });
}

// Per-step timings as horizontal bars, scaled to the slowest step. A sub-step (retrieve.bm25)
// is recorded before its step (retrieve) ends; it is drawn indented under it instead.
function timings(ms) {
  const entries = Object.entries(ms);
  const parent = (name) => name.slice(0, Math.max(0, name.lastIndexOf(".")));
  const isSub = (name) => parent(name) !== "" && parent(name) in ms;
  const ordered = entries.filter(([name]) => !isSub(name)).flatMap((step) =>
    [step, ...entries.filter(([name]) => isSub(name) && parent(name) === step[0])]);
  const longest = Math.max(1e-9, ...entries.map(([, v]) => v));
  $("tr-timings").replaceChildren(...ordered.map(([name, value]) => {
    const fill = h("span", { class: "fill" });
    fill.style.width = `${Math.max(0.5, (value / longest) * 100)}%`; // CSSOM: allowed by the CSP
    return h("div", { class: isSub(name) ? "step sub" : "step", role: "img",
      "aria-label": `${name} ${value.toFixed(1)} ms` },
    h("span", { class: "label" }, name), h("span", { class: "track" }, fill),
    h("span", { class: "value" }, `${value.toFixed(1)} ms`));
  }));
}

// --- feedback -------------------------------------------------------------------------------

async function loadFeedback() {
  const [figures, entries] = await Promise.all([api("/api/feedback/report"),
    api("/api/feedback?limit=50")]);
  const s = figures.signals;
  figuresList($("fb-figures"), [
    [t("answersTraced"), figures.traces],
    [t("withFeedback"), `${figures.with_feedback} (${pct(figures.feedback_rate)})`],
    [t("explicit"), `${figures.with_explicit} (${pct(figures.explicit_rate)})`],
    [t("ratings"), figures.ratings],
    [t("meanRating"), text(figures.mean_rating)],
    [t("signals"), `${s.copy ?? 0} · ${s.regenerate ?? 0} · ${s.rephrase ?? 0}`],
  ]);
  shares($("fb-collections"), t("collection"), figures.by_collection);
  shares($("fb-prompts"), t("promptVersion"), figures.by_prompt_version);
  const disliked = $("fb-disliked");
  disliked.replaceChildren(head(t("question"), t("collection"), t("down"), t("up"), t("times")));
  fill(disliked, figures.most_disliked.map((d) => row(d.question, d.collection, d.down, d.up,
    d.traces)));
  fill($("fb-entries"), entries.map((f) => row(
    when(f.created_at), f.collection, word(f.kind), text(f.rating), text(f.question),
    text([f.comment, f.correction && `→ ${f.correction}`].filter(Boolean).join(" · ")),
    h("span", { class: "path", title: f.trace_id }, f.trace_id.slice(0, 8)),
  )), "nofeedback");
}

function head(...names) {
  return h("thead", {}, h("tr", {}, ...names.map((n) => h("th", {}, n))));
}

function shares(table, what, list) {
  table.replaceChildren(head(what, t("up"), t("down"), t("share")));
  fill(table, list.map((s) => row(s.name, s.up, s.down, pct(s.share))));
}

function figuresList(dl, pairs) {
  dl.replaceChildren(...pairs.map(([k, v]) => h("div", {}, h("dt", {}, k), h("dd", {}, text(v)))));
}

// --- evals ---------------------------------------------------------------------------------

// The headline figures of an answer run, as the run list shows them.
const ANSWER_FIGURES = ["token_f1", "faithfulness", "citation_precision", "citation_recall",
  "abstention_accuracy"];

async function loadEvalsTab() {
  await Promise.all([loadEvalCollections(), loadEvals()]);
}

async function loadEvalCollections() {
  const select = $("ea-collection");
  const chosen = select.value;
  const list = await api("/api/collections");
  select.replaceChildren(...list.map((c) => h("option", { value: c.name }, c.name)));
  if (list.some((c) => c.name === chosen)) select.value = chosen;
}

function chooseKind() {
  const kind = document.querySelector("input[name=evkind]:checked").value;
  $("ev-retrieval").hidden = kind !== "retrieval";
  $("ev-answers").hidden = kind !== "answers";
}

async function loadEvals() {
  clearTimeout(state.evalTimer);
  const runs = await api("/api/evals");
  const comparable = new Set(runs.filter(canCompare).map((r) => r.id));
  state.picked = state.picked.filter((id) => comparable.has(id));
  state.runs = runs;
  fill($("evals"), runs.map(evalRow), "noevals");
  pickedChanged();
  if (runs.some((r) => r.status === "running") && state.tab === "evals") {
    state.evalTimer = setTimeout(() => loadEvals().catch(failed), 1000);
  }
}

const canCompare = (run) => run.kind === "answers" && run.status === "done" && run.summary;

function evalRow(run) {
  let where = word(run.status);
  if (run.status === "running" && run.progress?.total) {
    where += ` · ${word(run.progress.stage)} ${run.progress.done}/${run.progress.total}`;
  } else if (run.status === "running" && run.progress?.stage) {
    where += ` · ${word(run.progress.stage)}`;
  }
  const stateCell = h("td", { class: `run-${run.status}` }, where);
  if (run.error) stateCell.append(h("div", { class: "error" }, run.error), h("div", { class: "hint" }, run.hint || ""));
  const open = run.report_url
    ? h("a", { href: run.report_url, target: "_blank", rel: "noopener noreferrer" }, t("openReport"))
    : "";
  const pick = canCompare(run) ? h("input", { type: "checkbox", "data-run": run.id,
    "aria-label": `${t("pick")} ${run.id}`, onchange: (e) => togglePick(run.id, e.target.checked) })
    : "";
  if (pick) pick.checked = state.picked.includes(run.id);
  const answers = run.kind === "answers";
  const path = answers ? run.golden : run.dataset;
  const name = (answers ? run.summary?.golden : run.summary?.dataset) ??
    path.split(/[\\/]/).filter(Boolean).pop();
  return row(when(run.started), h("span", { class: "nowrap" }, word(run.kind)),
    h("span", { title: path }, name),
    answers ? answerSetup(run) : run.configs, stateCell,
    h("td", {}, ...(answers ? answerFigures(run) : retrievalFigures(run))), h("td", {}, open),
    h("td", {}, pick));
}

function retrievalFigures(run) {
  const configs = Object.entries(run.summary?.configs ?? {});
  if (!configs.length) return [];
  return [h("div", { class: "hint" }, t("retrievalFigures")), ...configs.map(([label, m]) =>
    h("div", {}, `${label}: ${num(m["ndcg@10"], 3)} · ${num(m["recall@10"], 3)}`))];
}

function answerSetup(run) {
  const parts = [`${t("collectionShort")} ${run.collection}`];
  const model = run.summary?.model ?? run.model;
  if (model) parts.push(`${t("model")} ${model}`);
  const prompts = run.summary?.prompt_versions?.join(", ") || run.prompt;
  if (prompts) parts.push(`${t("promptVersion")} ${prompts}`);
  if (run.top_k) parts.push(`top_k ${run.top_k}`);
  return parts.join(" · ");
}

function answerFigures(run) {
  const s = run.summary;
  if (!s) return [];
  const lines = ANSWER_FIGURES.filter((name) => s.metrics[name]).map((name) => {
    const m = s.metrics[name];
    const interval = m.n ? ` [${num(m.low, 2)}, ${num(m.high, 2)}] n=${m.n}` : "";
    return h("div", {}, `${name}: ${num(m.mean, 3)}`, h("span", { class: "hint" }, interval));
  });
  const counts = `${t("itemsWord")} ${s.items} · ${t("skippedWord")} ${s.skipped}`;
  return [...lines, h("div", { class: "hint" }, counts)];
}

function togglePick(id, on) {
  state.picked = state.picked.filter((p) => p !== id);
  if (on) state.picked.push(id);
  if (state.picked.length > 2) state.picked = state.picked.slice(-2); // the last two ticked
  for (const box of $("evals").querySelectorAll("input[data-run]")) {
    box.checked = state.picked.includes(box.dataset.run);
  }
  pickedChanged();
}

function pickedChanged() {
  $("comparebtn").disabled = state.picked.length !== 2;
}

async function startEval(e) {
  e.preventDefault();
  const limit = $("ev-limit").value.trim();
  const body = { dataset: $("ev-dataset").value.trim(), configs: $("ev-configs").value.trim(),
    split: $("ev-split").value.trim() || "test", limit: limit ? Number(limit) : null };
  await begin("/api/evals/retrieval", body);
}

async function startAnswerEval(e) {
  e.preventDefault();
  const optional = (id) => $(id).value.trim() || null;
  const limit = optional("ea-limit");
  const body = { golden: $("ea-golden").value.trim(), collection: $("ea-collection").value,
    model: optional("ea-model"), prompt: optional("ea-prompt"),
    limit: limit ? Number(limit) : null };
  await begin("/api/evals/answers", body);
}

async function begin(path, body) {
  try {
    const run = await api(path, { method: "POST", body });
    status(t("evalStarted") + run.id);
    await loadEvals();
  } catch (err) { failed(err); }
}

// B is the newer run: a change is read as what happened since A.
async function compareRuns() {
  const started = new Map(state.runs.map((r) => [r.id, r.started]));
  const [a, b] = [...state.picked].sort((x, y) => started.get(x) - started.get(y));
  try {
    const data = await api("/api/evals/compare", { method: "POST", body: { a, b } });
    showComparison(data);
  } catch (err) { failed(err); }
}

// Lower is better for latency and token counts (dari.eval.compare.lower_is_better).
const lowerIsBetter = (name) => /(_ms|_s|tokens)$/.test(name) || name.includes("latency");

function showComparison(data) {
  $("comparison").hidden = false;
  $("cmp-title").textContent = `${t("comparison")}: B = ${data.b} · A = ${data.a}`;
  $("cmp-meta").textContent = `${data.paired_items} ${t("pairedItems")} · ${data.note}`;
  const rows = Object.entries(data.metrics).filter(([, m]) => m.n).map(([name, m]) => {
    const [lo, hi] = m.ci95;
    const up = lowerIsBetter(name) ? hi < 0 : lo > 0;
    const down = lowerIsBetter(name) ? lo > 0 : hi < 0;
    const digits = lowerIsBetter(name) ? 1 : 3; // ms and tokens, or scores
    const sign = (v) => (v > 0 ? "+" : "") + v.toFixed(digits);
    const tr = row(name, num(m.a, digits), num(m.b, digits), h("td", { class: "delta" }, sign(m.delta)),
      `[${sign(lo)}, ${sign(hi)}]`, m.n);
    if (up || down) tr.className = up ? "delta-better" : "delta-worse";
    return tr;
  });
  fill($("cmp-deltas"), rows);
  $("cmp-open").href = data.report_url;
  $("comparison").scrollIntoView({ block: "nearest" });
}

// --- the answer cache -----------------------------------------------------------------------

async function loadCache() {
  const stats = await api("/api/cache/stats");
  figuresList($("cache-figures"), [[t("size"), bytes(stats.bytes)],
    ...Object.entries(stats.counters).map(([k, v]) => [k, v])]);
  fill($("cache-collections"), stats.collections.map((c) => row(c.collection, c.entries,
    c.approved, c.hits)));
}

// --- language and wiring --------------------------------------------------------------------

function setLang(lang) {
  state.lang = STRINGS[lang] ? lang : "en";
  localStorage.setItem("dari.lang", state.lang);
  document.documentElement.lang = state.lang;
  for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of document.querySelectorAll("[data-i18n-placeholder]")) {
    el.placeholder = t(el.dataset.i18nPlaceholder);
  }
  for (const el of document.querySelectorAll("[data-word]")) el.textContent = word(el.dataset.word);
  const other = state.lang === "ko" ? "en" : "ko";
  $("lang").textContent = other === "ko" ? "한국어" : "English";
  $("lang").lang = other;
}

function start() {
  state.key = localStorage.getItem("dari.key") || "";
  const browser = (navigator.language || "en").toLowerCase().startsWith("ko") ? "ko" : "en";
  setLang(localStorage.getItem("dari.lang") || browser);
  $("lang").addEventListener("click", () => {
    setLang(state.lang === "ko" ? "en" : "ko");
    if (state.tab && !$("tabs").hidden) show(state.tab); // tables are drawn in the language
  });
  $("keybtn").addEventListener("click", () => { $("keybox").hidden = !$("keybox").hidden; });
  $("keybox").addEventListener("submit", (e) => {
    e.preventDefault();
    state.key = $("key").value.trim();
    localStorage.setItem("dari.key", state.key);
    $("key").value = "";
    checkAccess().catch(failed);
  });
  for (const b of $("tabs").querySelectorAll("button")) {
    b.addEventListener("click", () => show(b.dataset.tab));
  }
  $("create").addEventListener("submit", createCollection);
  $("upload").addEventListener("submit", upload);
  $("outcome").addEventListener("change", () => loadTraces().catch(failed));
  $("reloadtraces").addEventListener("click", () => loadTraces().catch(failed));
  $("evalform").addEventListener("submit", startEval);
  $("answerform").addEventListener("submit", startAnswerEval);
  for (const r of document.querySelectorAll("input[name=evkind]")) r.addEventListener("change", chooseKind);
  $("comparebtn").addEventListener("click", compareRuns);
  checkAccess().catch(failed);
}

start();
