"""Values that flow through dari: frozen dataclasses, no behaviour beyond small conveniences."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum


@dataclass(frozen=True)
class Block:
    """A stretch of a document with its place: a markdown/html section, a PDF page, a row."""

    text: str
    heading: str = ""  # heading path, "Install > Linux"
    page: int | None = None  # 1-based page number where the format has pages


@dataclass(frozen=True)
class Document:
    """One loaded source: a file, or one row of a csv/jsonl file."""

    source: str  # path, or "path#row" for row formats
    title: str
    blocks: tuple[Block, ...]
    format: str  # txt, md, html, pdf, docx, csv, jsonl
    content_hash: str  # sha256 of the text the document was built from
    lang: str = "en"  # "ko" or "en": decides the analyzer and sentence splitter
    acl: tuple[str, ...] = ()  # tags; empty means readable by everyone
    metadata: Mapping[str, str] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return "\n\n".join(b.text for b in self.blocks)


@dataclass(frozen=True)
class Section:
    """A parent: what the LLM reads when one of its children is retrieved."""

    id: str
    doc_id: str
    ordinal: int
    text: str
    heading: str = ""
    page: int | None = None
    flags: str = ""  # set at ingest by the context guard, e.g. "injection:addressed-to-model"


@dataclass(frozen=True)
class Chunk:
    """A child: the small unit that is indexed (BM25 + vector) and points to its parent section."""

    id: str
    doc_id: str
    section_id: str
    ordinal: int
    text: str
    lang: str = "en"


@dataclass(frozen=True)
class Split:
    """What a splitter makes of one document."""

    sections: tuple[Section, ...]
    chunks: tuple[Chunk, ...]


@dataclass(frozen=True)
class Hit:
    """One retrieved source, already expanded to its parent section."""

    chunk_id: str
    section_id: str
    doc_id: str
    score: float  # fused score, higher is better
    text: str  # the parent section's text
    source: str
    title: str
    heading: str = ""
    page: int | None = None
    bm25_rank: int | None = None
    dense_rank: int | None = None
    dense_score: float | None = None
    bm25_score: float | None = None
    child_text: str = ""  # the matched child chunk (with its header line)
    flags: str = ""  # the parent section's ingest-time guard tags


@dataclass(frozen=True)
class Retrieval:
    hits: tuple[Hit, ...]  # in prompt order (see order_for_context)
    coverage: float  # best share of the question's terms found in one source
    dense_top: float  # best cosine similarity among the sources
    abstain: bool  # both below the floor: do not answer
    timings_ms: dict[str, float] = field(default_factory=dict)
    ranked: tuple[Hit, ...] = ()  # the same sources, best first


@dataclass(frozen=True)
class Citation:
    """A numbered source of an answer, as the user sees it."""

    n: int
    source: str
    title: str
    page: int | None
    heading: str
    chunk_id: str
    snippet: str


class Outcome(StrEnum):
    ANSWERED = "answered"
    ABSTAINED = "abstained"  # retrieval too weak: dari says it does not know
    BLOCKED = "blocked"  # a guard's policy refused the question or the answer


class Stage(StrEnum):
    """Where in the flow a guard looks: the question, a retrieved source, the answer."""

    INPUT = "input"
    CONTEXT = "context"
    OUTPUT = "output"


class Action(StrEnum):
    """What a policy does with a flagged text. In the context stage `block` drops the source and
    `redact` neutralises it (the offending lines are removed, the rest is kept)."""

    ALLOW = "allow"  # not flagged
    LOG = "log"  # recorded in the trace and audit log only
    WARN = "warn"  # answered, with a warning shown to the user
    REDACT = "redact"  # the flagged span is replaced ([PHONE]) or neutralised
    BLOCK = "block"  # a safe refusal instead of an answer (or the source is dropped)


@dataclass(frozen=True)
class Span:
    """Where a guard found something, and what kind of thing: never the text itself."""

    kind: str
    start: int
    end: int


@dataclass(frozen=True)
class Verdict:
    """One guard's judgement of one text, after its policy was applied."""

    guard: str  # injection, pii, topic, toxicity, groundedness, prompt_leak, schema…
    stage: Stage
    flagged: bool
    action: Action
    score: float = 0.0  # 0..1, the detector's confidence
    rule: str = ""  # the matched rule or label, e.g. "ignore-instructions", "phone:kr"
    detail: str = ""  # a sentence for the user or operator; never the raw personal data
    spans: tuple[Span, ...] = ()
    source: int | None = None  # context and groundedness verdicts: which source [n]
    ms: float = 0.0


@dataclass(frozen=True)
class GenerationParams:
    temperature: float = 0.1
    top_p: float = 0.9
    max_tokens: int = 256
    seed: int = 7


@dataclass(frozen=True)
class CacheUse:
    """What the answer cache did for one question."""

    lookup: str  # exact | semantic (served) | miss | bypass (not looked up: see `reason`)
    entry: str = ""  # the entry served, or the one this answer was stored as
    similarity: float = 0.0  # of the nearest neighbour looked at
    refused_by: str = ""  # the check that kept the nearest neighbour from being served
    created_by: str = ""  # served: the trace whose answer it is
    stored: bool = False  # this answer was written to the cache
    reason: str = ""  # why it was not looked up or not stored
    scope: str = ""  # the key of everything besides the question (dari.cache.key.Scope)


@dataclass(frozen=True)
class Trace:
    """What happened while answering: enough to debug, evaluate, cache and audit."""

    id: str
    query: str
    collection: str
    outcome: Outcome
    hits: tuple[Hit, ...]
    timings_ms: Mapping[str, float]
    model: str
    prompt_version: str
    params: GenerationParams
    prompt_tokens: int = 0
    completion_tokens: int = 0
    invalid_citations: int = 0  # [n] that named no given source, stripped from the answer
    verdicts: tuple[Verdict, ...] = ()  # every guard that looked, flagged or not
    cache: CacheUse | None = None
    caller: str = ""  # who asked: the API key id in the server, "" from the CLI and Python API


@dataclass(frozen=True)
class Answer:
    text: str
    citations: tuple[Citation, ...]
    outcome: Outcome
    trace: Trace

    @property
    def warnings(self) -> tuple[str, ...]:
        """What the user should be told next to the answer (guards whose policy is warn)."""
        return tuple(v.detail for v in self.trace.verdicts if v.action == Action.WARN)


class FileStatus(StrEnum):
    ADDED = "added"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    REMOVED = "removed"
    FAILED = "failed"


@dataclass(frozen=True)
class FileResult:
    path: str
    status: FileStatus
    documents: int = 0
    chunks: int = 0
    reason: str = ""
    hint: str = ""


@dataclass(frozen=True)
class IngestReport:
    collection: str
    files: tuple[FileResult, ...]
    seconds: float
    timings_s: Mapping[str, float] = field(default_factory=dict)  # parse / embed / index

    def count(self, status: FileStatus) -> int:
        return sum(1 for f in self.files if f.status == status)

    @property
    def failed(self) -> int:
        return self.count(FileStatus.FAILED)

    @property
    def ok(self) -> bool:
        return self.failed == 0
