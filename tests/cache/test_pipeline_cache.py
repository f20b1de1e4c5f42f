"""The answer cache inside the pipeline: what is stored, what is served, to whom, and when an
entry dies (re-ingest, feedback)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.generate.lora_gguf import write_run

from dari.app import Dari
from dari.config import Settings
from dari.index.analyzer import Analyzer
from dari.testing import FakeEmbedder, FakeGenerator
from dari.types import Outcome

OFFICE = "When does the office open?"
GOOD = "The office opens at 8 am [1]."


def faked(settings: Settings, analyzer: Analyzer, generator: FakeGenerator) -> Dari:
    """A Dari with the real cache, store and analyzer, and a fake embedder and LLM."""
    d = Dari(settings)
    d.analyzer = analyzer
    d.__dict__["embedder"] = FakeEmbedder(analyzer)
    d.__dict__["generator"] = generator
    return d


@pytest.fixture
def dari(tmp_path: Path, fake_generator: FakeGenerator, analyzer: Analyzer) -> Iterator[Dari]:
    settings = Settings(
        home=tmp_path / "home",
        cache={"similarity": {"en": 0.5}, "max_unmatched": 1},  # type: ignore[arg-type]
    )  # the fake embedder's similarities are lower than e5's
    d = faked(settings, analyzer, fake_generator)
    yield d
    d.close()


def _first(dari: Dari, corpus: Path, fake_generator: FakeGenerator, **kw: object):  # type: ignore[no-untyped-def]
    dari.ingest([corpus], "c")
    fake_generator.enqueue(GOOD)
    answer = dari.ask(OFFICE, "c", **kw)  # type: ignore[arg-type]
    assert answer.outcome == Outcome.ANSWERED and answer.trace.cache is not None
    assert answer.trace.cache.stored, answer.trace.cache.reason
    return answer


def test_the_same_question_is_answered_from_the_cache(
    dari: Dari, corpus: Path, fake_generator: FakeGenerator
):
    first = _first(dari, corpus, fake_generator)
    seen: list[str] = []
    again = dari.ask("  when does the office OPEN ", "c", on_token=seen.append)
    assert len(fake_generator.seen) == 1  # the model was not asked again
    assert again.text == first.text == "".join(seen)
    assert again.citations == first.citations
    use = again.trace.cache
    assert use is not None and use.lookup == "exact" and use.created_by == first.trace.id
    stored = dari.store.trace(again.trace.id)
    assert stored is not None and stored["cache"]["lookup"] == "exact"


def test_a_paraphrase_is_served_but_a_negation_is_not(
    dari: Dari, corpus: Path, fake_generator: FakeGenerator
):
    _first(dari, corpus, fake_generator)
    para = dari.ask("When does the office open in the morning?", "c")
    assert para.trace.cache is not None and para.trace.cache.lookup == "semantic"
    fake_generator.enqueue("The office is open every weekday [1].")
    neg = dari.ask("When does the office not open?", "c")
    assert neg.trace.cache is not None and neg.trace.cache.lookup == "miss"
    assert neg.trace.cache.refused_by == "negation"
    assert len(fake_generator.seen) == 2


def test_readers_with_other_tags_never_share_an_answer(
    dari: Dari, corpus: Path, fake_generator: FakeGenerator
):
    _first(dari, corpus, fake_generator, acl=["hr"])
    fake_generator.enqueue(GOOD)
    other = dari.ask(OFFICE, "c", acl=[])
    assert other.trace.cache is not None and other.trace.cache.lookup == "miss"
    fake_generator.enqueue(GOOD)
    tenant = dari.ask(OFFICE, "c", acl=["hr"], tenant="acme")
    assert tenant.trace.cache is not None and tenant.trace.cache.lookup == "miss"
    same = dari.ask(OFFICE, "c", acl=["hr"])
    assert same.trace.cache is not None and same.trace.cache.lookup == "exact"


def test_a_changed_source_kills_the_entries_that_cite_it(
    dari: Dari, corpus: Path, fake_generator: FakeGenerator
):
    _first(dari, corpus, fake_generator)
    (corpus / "office.txt").write_text("The office opens at 9 am.\n", encoding="utf-8")
    dari.ingest([corpus], "c")
    assert dari.cache.store.entries() == []
    fake_generator.enqueue("The office opens at 9 am [1].")
    answer = dari.ask(OFFICE, "c")
    assert answer.text.startswith("The office opens at 9 am")


def test_a_stale_entry_is_not_served_even_without_the_ingest_hook(
    dari: Dari, corpus: Path, fake_generator: FakeGenerator
):
    _first(dari, corpus, fake_generator)
    (corpus / "office.txt").unlink()
    off = dari.settings.cache.model_copy(update={"enabled": False})
    other = Dari(dari.settings.model_copy(update={"cache": off}))  # ingests, cache untouched
    other.analyzer, other.__dict__["embedder"] = dari.analyzer, dari.embedder
    other.ingest([corpus], "c", prune=True)
    other.close()
    fake_generator.enqueue("I don't know based on the provided documents.")
    answer = dari.ask(OFFICE, "c")
    assert answer.trace.cache is None or answer.trace.cache.lookup != "exact"
    assert dari.cache.store.counters().get("invalidated", 0) >= 1


def test_only_clean_grounded_answers_are_stored(
    dari: Dari, corpus: Path, fake_generator: FakeGenerator
):
    dari.ingest([corpus], "c")
    fake_generator.enqueue("The office opens at 8 am and serves free breakfast to visitors [1].")
    warned = dari.ask(OFFICE, "c")
    assert warned.warnings  # groundedness: "free breakfast" is not in the source
    assert warned.trace.cache is not None and not warned.trace.cache.stored
    assert "groundedness" in warned.trace.cache.reason
    dontknow = dari.ask("What is the capital of Mongolia?", "c")
    assert dontknow.trace.cache is not None and not dontknow.trace.cache.stored


def test_questions_with_personal_data_and_follow_ups_bypass_the_cache(
    dari: Dari, corpus: Path, fake_generator: FakeGenerator
):
    dari.ingest([corpus], "c")
    fake_generator.enqueue(GOOD)
    pii = dari.ask("When does the office open? Mail me at kim@example.com", "c")
    assert pii.trace.cache is not None and pii.trace.cache.lookup == "bypass"
    assert "pii" in pii.trace.cache.reason
    fake_generator.enqueue(GOOD)
    follow = dari.ask(OFFICE, "c", history=[("Where is the office?", "In Seoul [1].")])
    assert follow.trace.cache is not None and follow.trace.cache.lookup == "bypass"


def test_thumbs_down_evicts_and_approval_promotes(
    dari: Dari, corpus: Path, fake_generator: FakeGenerator
):
    first = _first(dari, corpus, fake_generator)
    served = dari.ask(OFFICE, "c")
    dari.feedback(served.trace.id, thumb="up")
    (entry,) = dari.cache.store.entries()
    assert entry.approved and entry.trace_id == first.trace.id
    dari.feedback(served.trace.id, thumb="down")
    assert dari.cache.store.entries() == []


def test_an_operator_approval_caches_an_answer_a_guard_warned_about(
    dari: Dari, corpus: Path, fake_generator: FakeGenerator
):
    dari.ingest([corpus], "c")
    fake_generator.enqueue("The office opens at 8 am, reception says [1].")
    warned = dari.ask(OFFICE, "c")
    assert warned.trace.cache is not None and not warned.trace.cache.stored
    dari.feedback(warned.trace.id, approve=True)
    again = dari.ask(OFFICE, "c")
    assert again.trace.cache is not None and again.trace.cache.lookup == "exact"
    assert again.text == warned.text and again.citations[0].snippet


def test_another_prompt_version_does_not_share_answers(
    dari: Dari, corpus: Path, fake_generator: FakeGenerator
):
    _first(dari, corpus, fake_generator)
    fake_generator.enqueue(GOOD)
    dari.prompts.set_default("grounded@1")
    answer = dari.ask(OFFICE, "c")
    assert answer.trace.prompt_version == "grounded@1"
    assert answer.trace.cache is not None and answer.trace.cache.lookup == "miss"


def test_a_corrupt_cache_file_is_rebuilt_and_the_question_answered(
    dari: Dari, corpus: Path, fake_generator: FakeGenerator
):
    dari.ingest([corpus], "c")
    dari.cache_path.parent.mkdir(parents=True, exist_ok=True)
    dari.cache_path.write_bytes(b"\x00garbage" * 512)
    fake_generator.enqueue(GOOD)
    answer = dari.ask(OFFICE, "c")
    assert answer.outcome == Outcome.ANSWERED and answer.trace.cache is not None
    assert answer.trace.cache.stored and "unreadable" in dari.cache.store.rebuilt


def test_a_tuned_model_does_not_share_answers_with_its_base(
    dari: Dari, corpus: Path, fake_generator: FakeGenerator, tmp_path: Path
):
    _first(dari, corpus, fake_generator)
    base = tmp_path / "base.gguf"
    base.write_bytes(b"GGUF base")
    run = tmp_path / "sft-1"
    run.mkdir()
    (run / "adapter.gguf").write_bytes(b"GGUF adapter")
    write_run(run, base, run / "adapter.gguf")
    dari.use_model(str(run))
    dari.__dict__["generator"] = fake_generator  # use_model let go of the loaded one
    fake_generator.enqueue(GOOD)
    answer = dari.ask(OFFICE, "c")
    assert answer.trace.model.startswith("sft-1+lora@")
    assert answer.trace.cache is not None and answer.trace.cache.lookup == "miss"


@pytest.mark.parametrize("backend", ["redis", "postgres"])
def test_replicas_share_one_cache_server_and_its_invalidation(
    tmp_path: Path, corpus: Path, analyzer: Analyzer, backend: str, request: pytest.FixtureRequest
) -> None:
    """Two dari processes (here two Dari objects) whose cache is one server: an answer one
    stored is a hit on the other, and a re-ingest on one kills it for both. With Redis they
    share a home; with PostgreSQL (store and cache) each has a home of its own."""
    cache: dict[str, object] = {"backend": backend, "similarity": {"en": 0.5}}
    store: dict[str, object] = {}
    if backend == "redis":
        cache["redis_url"] = request.getfixturevalue("redis_url")
    else:
        store = {"backend": "postgres", "postgres_url": request.getfixturevalue("postgres_url")}
    homes = [tmp_path / "home"] * 2 if backend == "redis" else [tmp_path / "a", tmp_path / "b"]
    replicas: list[tuple[Dari, FakeGenerator]] = []
    for home in homes:
        settings = Settings(home=home, cache=cache, store=store)  # type: ignore[arg-type]
        gen = FakeGenerator()
        replicas.append((faked(settings, analyzer, gen), gen))
    (a, gen_a), (b, gen_b) = replicas
    try:
        first = _first(a, corpus, gen_a)
        hit = b.ask(OFFICE, "c")
        assert gen_b.seen == [] and hit.text == first.text
        assert hit.trace.cache is not None and hit.trace.cache.lookup == "exact"
        assert b.cache.store.counters()["version"] >= 1
        (corpus / "office.txt").write_text("The office opens at 9 am on weekdays.\n")
        a.ingest([corpus], "c")  # the cited chunk changed: the entry dies everywhere
        assert b.cache.store.entries() == []
        gen_b.enqueue("The office opens at 9 am on weekdays [1].")
        fresh = b.ask(OFFICE, "c")
        assert len(gen_b.seen) == 1 and "9 am" in fresh.text
    finally:
        a.close()
        b.close()


def test_a_redis_cache_that_is_down_never_stops_an_answer(
    tmp_path: Path, corpus: Path, analyzer: Analyzer, fake_generator: FakeGenerator
) -> None:
    """The cache is derived data: with its Redis down, questions are answered (the trace says
    the cache was bypassed and why), feedback is recorded, ingest completes; only the cache's
    own commands fail, with a message naming the server."""
    from tests.conftest import free_port

    from dari.errors import BackendError

    url = f"redis://:pw@127.0.0.1:{free_port()}/0"  # nothing listens there
    cache = {"backend": "redis", "redis_url": url}
    settings = Settings(home=tmp_path / "h", cache=cache)  # type: ignore[arg-type]
    d = faked(settings, analyzer, fake_generator)
    try:
        d.ingest([corpus], "c")
        fake_generator.enqueue(GOOD)
        answer = d.ask(OFFICE, "c")
        assert answer.outcome == Outcome.ANSWERED
        use = answer.trace.cache
        assert use is not None and use.lookup == "bypass" and "Redis" in use.reason
        assert "pw" not in use.reason
        assert d.feedback(answer.trace.id, thumb="down").trace_id == answer.trace.id
        with pytest.raises(BackendError, match="answer cache's Redis") as info:
            d.cache.store.counters()
        assert "cache.redis_url" in info.value.hint
    finally:
        d.close()


def test_a_postgres_cache_that_is_down_never_stops_an_answer(
    tmp_path: Path, corpus: Path, analyzer: Analyzer, fake_generator: FakeGenerator
) -> None:
    """With cache.backend = "postgres" and that server unreachable, the question is answered
    without the cache (the trace says why), feedback is recorded, and the cache's own commands
    name the server."""
    from tests.conftest import free_port

    from dari.errors import BackendError

    url = f"postgresql://dari:pw@127.0.0.1:{free_port()}/dari"  # nothing listens there
    cache = {"backend": "postgres", "postgres_url": url}
    store = {"connect_timeout_s": 1}
    settings = Settings(home=tmp_path / "h", cache=cache, store=store)  # type: ignore[arg-type]
    d = faked(settings, analyzer, fake_generator)
    try:
        d.ingest([corpus], "c")
        fake_generator.enqueue(GOOD)
        answer = d.ask(OFFICE, "c")
        assert answer.outcome == Outcome.ANSWERED
        use = answer.trace.cache
        assert use is not None and use.lookup == "bypass" and "PostgreSQL at" in use.reason
        assert "pw" not in use.reason
        assert d.feedback(answer.trace.id, thumb="down").trace_id == answer.trace.id
        with pytest.raises(BackendError, match=r"PostgreSQL at 127\.0\.0\.1") as info:
            d.cache.store.counters()
        assert "pw" not in str(info.value)
    finally:
        d.close()
