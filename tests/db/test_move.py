"""`dari migrate`: an embedded home moved into a real PostgreSQL, all or nothing, then served from
there by a Dari with another home (the replica's view)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dari.app import Dari
from dari.cli.main import app
from dari.config import Settings
from dari.db import move as move_module
from dari.db.move import move
from dari.db.postgres import PostgresDatabase
from dari.errors import Conflict, UnknownCollection
from dari.feedback.store import FeedbackStore
from dari.index.analyzer import Analyzer
from dari.index.store import Store
from dari.prompts.builtin import builtin_versions
from dari.prompts.parts import PromptVersion
from dari.prompts.store import PromptStore
from dari.server.keys import KeyStore
from dari.testing import FakeEmbedder, FakeGenerator

pytest.importorskip("psycopg", reason="the postgres extra is not installed")
runner = CliRunner()
ANSWER = "The office opens at 8 am [1]."


@pytest.fixture
def home(dari: Dari, corpus: Path, fake_generator: FakeGenerator) -> Dari:
    """An embedded home in use: two collections, answers, feedback, a prompt version, a key."""
    dari.ingest([corpus], "docs")
    dari.ingest([corpus / "office.txt"], "office", acl=["staff"])
    fake_generator.enqueue(ANSWER)
    trace = dari.ask("When does the office open?", "docs").trace.id
    FeedbackStore(dari.store).add(trace, "up", comment="정확해요")
    base = builtin_versions()["grounded@2"]
    PromptStore(dari.store).add(PromptVersion("house", 1, base.parts, "store", "ours", base.ref))
    KeyStore(dari.store).create("ops", "admin")
    return dari


@pytest.fixture
def target(postgres_url: str) -> Iterator[Store]:
    s = Store(PostgresDatabase(postgres_url, pool_size=2))
    yield s
    s.close()


def served_from(url: str, home: Path, analyzer: Analyzer) -> Dari:
    settings = Settings(
        home=home,
        cache={"enabled": False},  # type: ignore[arg-type]
        store={"backend": "postgres", "postgres_url": url},  # type: ignore[arg-type]
    )
    d = Dari(settings)
    d.analyzer = analyzer
    d.__dict__["embedder"] = FakeEmbedder(analyzer)
    d.__dict__["generator"] = FakeGenerator()
    return d


def table_counts(store: Store) -> dict[str, int]:
    names = ("collections", "files", "documents", "sections", "chunks", "traces", "feedback")
    return {t: int(store.rows(f"SELECT count(*) FROM {t}")[0][0]) for t in names}


def test_everything_moves_and_is_served_from_the_target(
    home: Dari, target: Store, postgres_url: str, tmp_path: Path, analyzer: Analyzer
) -> None:
    report = move(home.store, target, progress=lambda *_: None)
    assert report.collections == ["docs", "office"]
    assert table_counts(target) == table_counts(home.store)
    for name in ("docs", "office"):
        assert target.collection(name) == home.store.collection(name)

    replica = served_from(postgres_url, tmp_path / "replica", analyzer)
    try:
        hits = replica.retriever("docs").retrieve("refund within 30 days", 3).ranked
        assert hits and "refund" in hits[0].text.lower()
        assert replica.retriever("office").retrieve("office opens", 3, acl=["guests"]).ranked == ()
        assert replica.retriever("office").retrieve("office opens", 3, acl=["staff"]).ranked
        (item,) = replica.feedback_store.entries()
        assert item.comment == "정확해요"
        assert replica.prompts.get("house@1").description == "ours"  # type: ignore[union-attr]
        assert [k.name for k in KeyStore(replica.store).list()] == ["ops"]
        # the chunks keep their order: the vectors read back in the source's order
        assert replica.store.ready_vectors("docs")[0] == home.store.ready_vectors("docs")[0]
    finally:
        replica.close()


def test_an_interrupted_move_leaves_the_target_as_it_was_and_runs_again(
    home: Dari, target: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = move_module._insert

    def crash_on_chunks(db, table, rows):  # type: ignore[no-untyped-def]
        if table.name == "chunks":
            raise KeyboardInterrupt  # Ctrl-C half-way
        real(db, table, rows)

    monkeypatch.setattr(move_module, "_insert", crash_on_chunks)
    with pytest.raises(KeyboardInterrupt):
        move(home.store, target)
    assert target.collection_names() == []
    assert table_counts(target)["documents"] == 0

    monkeypatch.setattr(move_module, "_insert", real)
    move(home.store, target)
    assert table_counts(target) == table_counts(home.store)


def test_a_collection_the_target_has_is_refused_unless_replaced(home: Dari, target: Store) -> None:
    move(home.store, target, ["office"])
    with pytest.raises(Conflict, match="already has the collection"):
        move(home.store, target, ["office"])
    before = table_counts(target)
    report = move(home.store, target, ["office"], replace=True)
    assert report.replaced == ["office"]
    assert table_counts(target) == before  # replaced, not doubled; traces merged by id


def test_only_the_chosen_collections_move(home: Dari, target: Store) -> None:
    move(home.store, target, ["office"])
    assert target.collection_names() == ["office"]
    assert target.rows("SELECT count(*) FROM traces") == [(0,)]  # the trace was of docs
    with pytest.raises(UnknownCollection, match="'nope'"):
        move(home.store, target, ["nope"])


def test_a_prompt_version_that_differs_on_the_target_is_refused(home: Dari, target: Store) -> None:
    base = builtin_versions()["grounded@1"]
    PromptStore(target).save(PromptVersion("house", 1, base.parts, "store", "theirs", base.ref))
    with pytest.raises(Conflict, match="house@1 exists in the target with other parts"):
        move(home.store, target)
    assert target.collection_names() == []  # nothing written


def test_the_cli_moves_the_home_and_reports_rows(home: Dari, postgres_url: str) -> None:
    home.store.close()  # the CLI opens the home's store itself
    result = runner.invoke(app, ["migrate", "--to", postgres_url, "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["collections"] == ["docs", "office"]
    assert report["rows"]["chunks"] > 0 and report["rows"]["api_keys"] == 1
    assert "@" not in report["target"]  # no credentials in the output
    again = runner.invoke(app, ["migrate", "--to", postgres_url])
    assert isinstance(again.exception, Conflict)
    replaced = runner.invoke(app, ["migrate", "--to", postgres_url, "--replace", "-c", "office"])
    assert replaced.exit_code == 0, replaced.output
    assert "replaced on the target: office" in replaced.stdout
    assert "store.backend" in replaced.stdout  # says what to do next


def test_the_cli_names_what_is_missing(tmp_path: Path) -> None:
    result = runner.invoke(app, ["migrate", "--to", "postgresql://x/y"])
    assert "no embedded store at" in str(result.exception)
