"""One settings object, from `dari.toml` then `DARI_*` environment variables (nested with `__`).

Loaded once at the edge (CLI root, server factory) and passed down as values.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from dari.errors import ConfigError


class _Section(BaseModel):
    """A settings table: a misspelt key is an error, not a silently ignored default."""

    model_config = ConfigDict(extra="forbid")


class EmbedderSettings(_Section):
    # e5 by measurement (bench/embedders.py): the only one whose fusion beats BM25 alone, on
    # Korean and English; use is 10x faster to ingest but lowers hybrid nDCG.
    name: Literal["use", "e5", "openai"] = "e5"
    batch_size: int = Field(32, ge=1, le=1024)
    base_url: str = ""  # for name = "openai": an OpenAI-compatible /v1/embeddings
    model: str = ""
    api_key: SecretStr = SecretStr("")


class IngestSettings(_Section):
    max_file_mb: float = Field(64.0, gt=0)  # larger files are refused with a hint
    text_fields: tuple[str, ...] = ("text", "contents", "content", "body")  # csv/jsonl columns
    title_field: str = "title"
    id_field: str = (
        ""  # csv/jsonl column naming the row; "" = guess (id, _id, doc_id), else row no.
    )


class ChunkingSettings(_Section):
    chunk_tokens: int = Field(128, ge=16, le=4096)  # children: what is indexed
    chunk_overlap: int = Field(24, ge=0, le=1024)
    section_tokens: int = Field(384, ge=32, le=8192)  # parents: what the LLM reads


class RetrievalSettings(_Section):
    top_k: int = Field(3, ge=1, le=50)  # sources given to the LLM
    candidates: int = Field(40, ge=1, le=1000)  # per retriever, before fusion
    # Budget for all sources together (estimated LLM tokens): each source is its parent section,
    # or the part of it around the matched child when the section is longer than its share.
    # Measured: ~430 new tokens (sources, their header lines, the question) keep the first
    # token near 5 s on 2 cores with the default model.
    context_tokens: int = Field(360, ge=64, le=32000)
    # linear: Σ weight × score min-max normalised per list; rrf: Σ weight / (rrf_k + rank).
    # linear by measurement (docs/benchmarks/retrieval): nDCG@10 0.714 vs 0.707 on SciFact,
    # 0.941 vs 0.924 on AutoRAG-KO; both above BM25 alone.
    fusion: Literal["rrf", "linear"] = "linear"
    rrf_k: int = Field(60, ge=1)
    bm25_weight: float = Field(1.0, ge=0)
    dense_weight: float = Field(1.0, ge=0)
    # Rewrite the question with the LLM before searching (dari.retrieve.transform): one LLM call
    # per question. multi-query and step-back search the rewrites too; hyde adds a hypothetical
    # answer passage to the dense search.
    query_transform: Literal["none", "multi-query", "step-back", "hyde"] = "none"
    # Second stage over the first `rerank_depth` fused sources (dari.retrieve.rerank):
    # mmr = maximal marginal relevance (diversity), ltr = learned ranker over retrieval features,
    # llm = listwise reranking by the configured LLM, cross-encoder = your own ONNX model.
    reranker: Literal["none", "mmr", "ltr", "llm", "cross-encoder"] = "none"
    rerank_depth: int = Field(20, ge=1, le=200)
    mmr_lambda: float = Field(0.7, ge=0, le=1)  # 1 = relevance only, 0 = diversity only
    ltr_model: str = ""  # a model from `dari rerank train`; "" = the bundled one
    llm_rerank_window: int = Field(8, ge=2, le=30)  # candidates the LLM reorders
    cross_encoder_model: str = ""  # a folder with model.onnx + tokenizer.json (your own weights)
    # Abstain when the best source covers less than this share of the question's content words
    # and its dense similarity is also below `min_dense`: dari says it does not know.
    # min_dense None = the embedder's own floor, calibrated on answerable vs unrelated questions.
    min_coverage: float = Field(0.25, ge=0, le=1)
    min_dense: float | None = Field(None, ge=-1, le=1)


class LLMSettings(_Section):
    backend: Literal["llama", "openai"] = "llama"
    # The default prompt, NAME@VERSION or NAME (its latest); `dari prompt set-default` wins over it.
    prompt: str = "grounded@2"
    # true: llm.prompt answers every question, whatever `dari prompt set-default` or a split
    # says (dari eval answers --prompt sets it, so an eval measures the version it names)
    pin_prompt: bool = False
    model: str = "default"  # default | small | ci | a path to a .gguf file | a remote model name
    base_url: str = ""  # for backend = "openai", e.g. http://localhost:8000/v1
    api_key: SecretStr = SecretStr("")
    timeout_s: float = Field(120.0, gt=0)
    n_ctx: int = Field(4096, ge=512)
    n_threads: int = Field(0, ge=0)  # 0: all cores
    temperature: float = Field(0.1, ge=0, le=2)
    top_p: float = Field(0.9, gt=0, le=1)
    max_tokens: int = Field(256, ge=1)
    seed: int = 7


GuardAction = Literal["block", "redact", "warn", "log", "off"]


class InputGuardSettings(_Section):
    injection: GuardAction = "block"  # prompt injection and jailbreak attempts
    pii: GuardAction = "redact"  # personal data in the question: replaced before retrieval/LLM
    names: GuardAction = "log"  # person names (lower precision than the structured kinds)
    topics: GuardAction = "block"  # deny_topics below
    deny_topics: tuple[str, ...] = ()  # regular expressions (case-insensitive) the service refuses


class ContextGuardSettings(_Section):
    # A retrieved source carrying instructions for the model: block = drop the source, redact =
    # remove the offending lines and keep the rest, warn/log = keep it and record the verdict.
    injection: GuardAction = "redact"


class OutputGuardSettings(_Section):
    pii_leak: GuardAction = "redact"  # personal data in the answer that the question did not hold
    toxicity: GuardAction = "block"
    prompt_leak: GuardAction = "block"  # the answer repeats the system prompt
    groundedness: GuardAction = "warn"  # a cited sentence its source does not support
    json_schema: GuardAction = "block"  # the answer is not valid JSON for a requested schema


class JudgeGuardSettings(_Section):
    """An LLM asked whether a question is an attack, behind the injection guard's classifier
    (docs/en/guardrails.md): seconds per question on a local model, so off by default."""

    # off | uncertain: asked when the classifier's score is within `band` of its threshold, the
    # judge's word then decides | always: asked about every question, its word decides
    mode: Literal["off", "uncertain", "always"] = "off"
    band: float = Field(2.0, gt=0)  # logits either side of the classifier's threshold
    # "" = the answering model (llm.*); else an OpenAI-compatible endpoint for the judge alone
    base_url: str = ""
    model: str = ""  # the judge's model name at base_url
    api_key: SecretStr = SecretStr("")
    max_chars: int = Field(2000, ge=200)  # of the question shown to the judge (head and tail)
    timeout_ms: float = Field(30000.0, gt=0)  # added to the input stage's time limit


class GuardSettings(_Section):
    enabled: bool = True
    # Decision thresholds (probability) where the model card's per-language ones are not wanted.
    injection_threshold: float | None = Field(None, ge=0, le=1)
    toxicity_threshold: float | None = Field(None, ge=0, le=1)
    # Share of a cited sentence's content terms its sources must contain (docs/en/guardrails.md).
    grounded_min_support: float = Field(0.9, ge=0, le=1)
    # Per stage (and per source in the context stage). Includes the question's e5 embedding
    # (~10-200 ms by length on 2 cores), which dense retrieval then reuses.
    timeout_ms: float = Field(1000.0, gt=0)
    on_error: Literal["closed", "open"] = "closed"  # closed = block when a guard fails or times out
    audit: bool = True  # append every verdict to <home>/audit/audit.jsonl
    models_dir: str = ""  # models from `dari guard train`; "" = the ones bundled with dari
    input: InputGuardSettings = InputGuardSettings()
    context: ContextGuardSettings = ContextGuardSettings()
    output: OutputGuardSettings = OutputGuardSettings()
    judge: JudgeGuardSettings = JudgeGuardSettings()
    # Per-collection overrides, e.g. [guards.collections.hr.input] pii = "block"
    collections: dict[str, dict[str, dict[str, GuardAction]]] = Field(default_factory=dict)

    def with_judge(self, mode: str) -> GuardSettings:
        """These settings with the LLM judge in `mode` (validated: ValidationError if unknown)."""
        judge = JudgeGuardSettings.model_validate(self.judge.model_dump() | {"mode": mode})
        return self.model_copy(update={"judge": judge})


class StoreSettings(_Section):
    """Where documents, chunks, traces, feedback, prompts and keys live (docs/en/scale-out.md)."""

    # sqlite: DARI_HOME/dari.db (embedded default; processes on one machine may share it).
    # postgres: the server at postgres_url, shared by every dari replica that points at it.
    backend: Literal["sqlite", "postgres"] = "sqlite"
    postgres_url: str = ""  # e.g. postgresql://dari:secret@db:5432/dari
    pool_size: int = Field(10, ge=1, le=500)  # connections per process
    connect_timeout_s: float = Field(5.0, gt=0)
    # Where BM25 lives. tantivy: an index per process under DARI_HOME (with backend = "postgres",
    # kept in step with the store's change log). postgres: one index in the store's PostgreSQL,
    # shared by every process (needs backend = "postgres").
    fulltext: Literal["tantivy", "postgres"] = "tantivy"

    @model_validator(mode="after")
    def _fulltext_in_postgres(self) -> StoreSettings:
        if self.fulltext == "postgres" and self.backend != "postgres":
            raise ValueError('fulltext = "postgres" needs backend = "postgres"')
        return self


class VectorSettings(_Section):
    # numpy: exact search, memory-mapped next to the collection (embedded default; ~10 ms at
    # 100k chunks). qdrant: a Qdrant server at `url`, or qdrant-client's local mode in
    # DARI_HOME/qdrant when url is "" (exact, slow: for tests and trials). pgvector: HNSW in
    # PostgreSQL at `url`, or at store.postgres_url when url is "".
    backend: Literal["numpy", "qdrant", "pgvector"] = "numpy"
    url: str = ""
    api_key: SecretStr = SecretStr("")
    prefix: str = "dari_"  # Qdrant collection = prefix + dari collection
    timeout_s: float = Field(10.0, gt=0)
    # pgvector: the most memory (maintenance_work_mem, MB) a collection's HNSW build may use; the
    # graph of N chunks needs about N × (4·dim + 300) bytes, and one larger goes to disk (slow)
    build_memory_mb: int = Field(1024, ge=64)
    # pgvector's HNSW candidate list per search (hnsw.ef_search): higher finds more of the exact
    # top k, slower. 0: max(200, 2 × retrieval.candidates) (docs/benchmarks.md has the trade-off).
    ef_search: int = Field(0, ge=0, le=1000)


class CacheSettings(_Section):
    """The answer cache (docs/en/cache.md). The defaults were tuned on labelled paraphrase pairs
    (bench/cache.py) for at most 0.5 % false hits in Korean and English."""

    enabled: bool = True
    semantic: bool = True  # also serve paraphrases, not only the same question
    # Cosine similarity of the two questions' e5 embeddings from which a neighbour is considered,
    # per language of the new question ("en" also for other languages); it must then pass every
    # meaning check (negation, numbers, names, comparatives, roles).
    similarity: dict[str, float] = Field(default_factory=lambda: {"en": 0.98, "ko": 0.9775})
    # Content words one question may have that the other lacks, for a paraphrase to be served.
    max_unmatched: int = Field(3, ge=0, le=20)
    ttl_hours: float = Field(168.0, gt=0)  # a week; approved answers do not expire
    max_entries: int = Field(10_000, ge=1)  # beyond it the least recently used go first
    # cited: an entry dies when a chunk it cites is changed or removed by re-ingest;
    # any-change: every ingest into the collection empties its part of the cache.
    invalidate: Literal["cited", "any-change"] = "cited"
    path: str = ""  # "" = <home>/cache/answers.db
    # sqlite: the file at `path` (one machine; processes sharing DARI_HOME share it). redis: one
    # cache for every dari process pointing at redis_url (replicas on several machines).
    # postgres: one cache in the `dari_cache` schema of postgres_url (store.postgres_url when "").
    backend: Literal["sqlite", "redis", "postgres"] = "sqlite"
    redis_url: str = ""  # e.g. redis://cache:6379/1
    redis_prefix: str = "dari:cache:"
    postgres_url: str = ""

    @field_validator("similarity")
    @classmethod
    def _thresholds(cls, value: dict[str, float]) -> dict[str, float]:
        if "en" not in value or not all(0 <= v <= 1 for v in value.values()):
            raise ValueError('needs an "en" threshold, and every threshold between 0 and 1')
        return value

    def threshold(self, lang: str) -> float:
        return self.similarity.get(lang, self.similarity["en"])


class TuneSettings(_Section):
    # llama.cpp's GGUF converters (from the llama-cpp-python sdist; `make tune-tools` puts them
    # in <venv>/share/dari/llama.cpp, the place "" means)
    tools_dir: str = ""


class ServerSettings(_Section):
    """`dari serve` (docs/en/server.md)."""

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    auth: bool = True  # false: no API keys, every caller is an admin (only on a trusted machine)
    cors_origins: tuple[str, ...] = ()  # browsers from other origins are refused unless listed
    max_body_kb: int = Field(256, ge=1)  # JSON requests
    max_upload_mb: float = Field(64.0, gt=0)  # document uploads
    rate_per_minute: float = Field(120.0, gt=0)  # per API key: sustained rate
    burst: int = Field(30, ge=1)  # per API key: requests allowed at once
    redis_url: str = ""  # share rate limits between processes; "" = in-process
    # uploaded files; "" = DARI_HOME/uploads. Replicas with homes of their own point it at one
    # shared folder (a shared volume), so that each sees every upload under the same path.
    uploads_dir: str = ""
    otel_endpoint: str = ""  # OTLP/HTTP traces URL (…:4318/v1/traces); "" = no tracing
    otel_service_name: str = "dari"  # service.name of the spans


class Settings(BaseSettings):
    """dari's settings. Precedence: explicit arguments > DARI_* env vars > dari.toml > defaults."""

    model_config = SettingsConfigDict(
        env_prefix="DARI_",
        env_nested_delimiter="__",
        toml_file="dari.toml",
        extra="forbid",
    )

    home: Path = Field(default_factory=lambda: Path("~/.dari"))
    ingest: IngestSettings = IngestSettings()
    embedder: EmbedderSettings = EmbedderSettings()
    chunking: ChunkingSettings = ChunkingSettings()
    retrieval: RetrievalSettings = RetrievalSettings()
    store: StoreSettings = StoreSettings()
    vectors: VectorSettings = VectorSettings()
    llm: LLMSettings = LLMSettings()
    guards: GuardSettings = GuardSettings()
    cache: CacheSettings = CacheSettings()
    server: ServerSettings = ServerSettings()
    tune: TuneSettings = TuneSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_path = Path(os.environ.get("DARI_CONFIG", "dari.toml"))
        return (
            init_settings,
            env_settings,
            TomlConfigSettingsSource(settings_cls, toml_file=toml_path),
        )

    @property
    def home_dir(self) -> Path:
        return self.home.expanduser()

    def scratch(self, home: Path) -> Settings:
        """These settings over a scratch home on the embedded engines (evals index their data
        sets there): nothing reaches the shared store, vector server or cache of the users."""
        return self.model_copy(
            update={
                "home": home,
                "store": StoreSettings(),
                "vectors": VectorSettings(),
                "cache": self.cache.model_copy(update={"backend": "sqlite", "path": ""}),
            }
        )


def load_settings(**overrides: object) -> Settings:
    """Read settings, turning validation errors into one readable ConfigError."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(
            f"invalid setting '{where}': {first['msg']}",
            "check dari.toml and DARI_* environment variables (see docs/en/configuration.md)",
        ) from exc
    except (OSError, ValueError) as exc:  # unreadable or malformed TOML
        raise ConfigError(f"cannot read settings: {exc}", "fix or remove dari.toml") from exc
