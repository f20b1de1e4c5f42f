"""The question flow with real store/BM25/analyzer and fake embedder and LLM."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.conftest import WITH_FULLTEXT

from dari.app import Dari
from dari.errors import InputError, UnknownCollection
from dari.testing import FakeGenerator
from dari.types import Outcome


@pytest.fixture(params=WITH_FULLTEXT)
def store_backend(request: pytest.FixtureRequest) -> str:
    """The question flow, ACL and metadata filters are proven on SQLite and on PostgreSQL (BM25
    in tantivy, or in PostgreSQL too)."""
    return str(request.param)


def test_answer_cites_the_source_it_used(dari: Dari, corpus: Path, fake_generator: FakeGenerator):
    dari.ingest([corpus], "hr")
    fake_generator.enqueue("정규직 직원의 연차 휴가는 1년에 15일입니다 [1].")
    answer = dari.ask("연차 휴가는 며칠인가요?", "hr")
    assert answer.outcome == Outcome.ANSWERED
    assert "15일" in answer.text
    assert [c.n for c in answer.citations] == [1]
    assert answer.citations[0].source.endswith("leave.md")
    assert "연차" in answer.citations[0].heading
    prompt = fake_generator.seen[-1][-1]["content"]
    assert prompt.startswith("[1]") and "질문: 연차 휴가는 며칠인가요?" in prompt


def test_citation_to_a_source_not_given_is_stripped_and_counted(
    dari: Dari, corpus: Path, fake_generator: FakeGenerator
):
    dari.ingest([corpus], "c")
    fake_generator.enqueue("Refunds can be requested within 30 days [1][9].")
    streamed: list[str] = []
    answer = dari.ask("How long do I have to request a refund?", "c", on_token=streamed.append)
    assert "[9]" not in answer.text and "[9]" not in "".join(streamed)
    assert answer.trace.invalid_citations == 1
    assert [c.n for c in answer.citations] == [1]


def test_uncited_answer_gets_the_best_matching_source(
    dari: Dari, corpus: Path, fake_generator: FakeGenerator
):
    dari.ingest([corpus], "c")
    fake_generator.enqueue("Refunds are paid to the original card within 5 business days.")
    answer = dari.ask("When is my refund paid?", "c")
    assert answer.citations and answer.citations[0].source.endswith("refunds.md")
    assert answer.text.endswith("[1].") or "[" in answer.text


def test_abstains_without_calling_the_llm_when_nothing_relevant(
    dari: Dari, corpus: Path, fake_generator: FakeGenerator
):
    dari.ingest([corpus], "c")
    answer = dari.ask("What is the boiling point of mercury?", "c")
    assert answer.outcome == Outcome.ABSTAINED
    assert fake_generator.seen == []
    assert "don't know" in answer.text


def test_llm_saying_it_does_not_know_is_an_abstention(
    dari: Dari, corpus: Path, fake_generator: FakeGenerator
):
    dari.ingest([corpus], "c")
    fake_generator.enqueue("I don't know based on the provided documents.")
    answer = dari.ask("Can gift cards be refunded by bank transfer?", "c")
    assert answer.outcome == Outcome.ABSTAINED and answer.citations == ()


def test_trace_is_stored_without_document_text(dari: Dari, corpus: Path, fake_generator):
    dari.ingest([corpus], "c")
    fake_generator.enqueue("The office opens at 8 am [1].")
    answer = dari.ask("When does the office open?", "c")
    stored = dari.store.trace(answer.trace.id)
    assert stored is not None and stored["query"] == "When does the office open?"
    assert stored["hits"] and "text" not in stored["hits"][0]
    assert {"retrieve", "generate", "total"} <= set(stored["timings_ms"])


def test_acl_hides_documents_from_users_without_the_tag(dari: Dari, tmp_path: Path, fake_generator):
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "salaries.txt").write_text("The salary band for engineers is 80k to 120k euros.")
    dari.ingest([secret], "c", acl=["hr"])
    fake_generator.enqueue("The band is 80k to 120k euros [1].")
    assert dari.ask("What is the salary band for engineers?", "c", acl=["hr"]).citations
    blocked = dari.ask("What is the salary band for engineers?", "c", acl=["sales"])
    assert blocked.outcome == Outcome.ABSTAINED and blocked.trace.hits == ()


def test_unknown_collection_and_empty_question(dari: Dari, corpus: Path):
    with pytest.raises(UnknownCollection, match="unknown collection 'nope'"):
        dari.ask("hello?", "nope")
    dari.ingest([corpus], "c")
    with pytest.raises(InputError, match="empty"):
        dari.ask("   ", "c")


def test_metadata_filters_apply_inside_retrieval(dari: Dari, corpus: Path, fake_generator):
    dari.ingest([corpus], "c")
    retriever = dari.pipeline("c")._retriever
    hits = retriever.retrieve("office refund leave", 5, filters={"format": "txt"}).hits
    assert hits and all(h.source.endswith("office.txt") for h in hits)
    korean = retriever.retrieve("연차 휴가 refund office", 5, filters={"lang": "ko"}).hits
    assert korean and all(h.source.endswith("leave.md") for h in korean)
    assert retriever.retrieve("office", 5, filters={"format": "pdf"}).hits == ()


def test_bad_filter_is_an_input_error():
    from dari.index.filters import parse_filters

    assert parse_filters(["lang=ko", "format = pdf"]) == {"lang": "ko", "format": "pdf"}
    with pytest.raises(InputError, match="invalid filter 'lang'"):
        parse_filters(["lang"])


def test_a_bm25_index_older_or_missing_is_rebuilt_from_the_store(
    dari: Dari, corpus: Path, settings
):
    """tantivy: an index of an older schema. PostgreSQL: a collection with no rows there yet
    (moved by `dari migrate`, or indexed by tantivy until store.fulltext was switched)."""
    import shutil

    import tantivy

    dari.ingest([corpus], "c")
    chunks = dari.store.collection("c").chunks
    if settings.store.fulltext == "postgres":
        with dari.store.db.transaction() as tx:
            for table in ("fulltext_chunks", "fulltext_terms", "fulltext_stats"):
                tx.execute(f"DELETE FROM {table} WHERE collection = 'c'")
        # a running process finds the rows gone at its next search and builds them again
        hits = dari.pipeline("c")._retriever.retrieve("refund within 30 days").hits
        assert hits[0].source.endswith("refunds.md") and dari.bm25("c").num_docs() == chunks
        with dari.store.db.transaction() as tx:
            for table in ("fulltext_chunks", "fulltext_terms", "fulltext_stats"):
                tx.execute(f"DELETE FROM {table} WHERE collection = 'c'")
    dari.close()
    folder = settings.home_dir / "collections" / "c" / "bm25"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    old = tantivy.SchemaBuilder()
    old.add_text_field("chunk_id", stored=True, tokenizer_name="raw")
    old.add_text_field("body", stored=False, tokenizer_name="whitespace")
    tantivy.Index(old.build(), path=str(folder))  # an index as an older release wrote it

    again = Dari(settings)
    again.analyzer = dari.analyzer
    again.__dict__["embedder"] = dari.embedder
    assert again.bm25("c").num_docs() == chunks
    hits = again.pipeline("c")._retriever.retrieve("refund within 30 days").hits
    assert hits[0].source.endswith("refunds.md")
    again.close()


def test_trace_keeps_the_answer_and_the_prompt_apart(dari: Dari, corpus: Path, fake_generator):
    dari.ingest([corpus], "c")
    fake_generator.enqueue("The office opens at 8 am [1].")
    answer = dari.ask("When does the office open?", "c")
    stored = dari.store.trace(answer.trace.id)
    assert stored is not None and stored["answer"] == answer.text
    prompt = dari.store.trace_prompt(answer.trace.id)
    assert prompt is not None
    system, data = prompt
    assert "sources" in system and data.endswith("Question: When does the office open?")
    assert "[1]" in data and "prompt_data" not in stored


def test_abstention_has_no_prompt(dari: Dari, corpus: Path):
    dari.ingest([corpus], "c")
    answer = dari.ask("What was the population of Seoul in 1990?", "c")
    assert answer.outcome == Outcome.ABSTAINED
    assert dari.store.trace_prompt(answer.trace.id) is None
