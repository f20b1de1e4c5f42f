"""`dari cache stats|clear|inspect|check-pairs` on a DARI_HOME whose cache the pipeline filled."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from dari.app import Dari
from dari.cli.main import app
from dari.config import Settings
from dari.errors import InputError
from dari.index.analyzer import Analyzer
from dari.testing import FakeEmbedder, FakeGenerator

runner = CliRunner()


@pytest.fixture
def cached(tmp_path: Path, analyzer: Analyzer) -> Iterator[str]:
    """One answer in the cache of the DARI_HOME the CLI opens; yields its trace id."""
    d = Dari(Settings(home=tmp_path / "home"))
    d.analyzer = analyzer
    d.__dict__["embedder"] = FakeEmbedder(analyzer)
    d.__dict__["generator"] = FakeGenerator("The office opens at 8 am [1].")
    corpus = tmp_path / "docs"
    corpus.mkdir()
    (corpus / "office.txt").write_text("The office opens at 8 am and closes at 6 pm.\n")
    d.ingest([corpus], "c")
    answer = d.ask("When does the office open?", "c")
    assert answer.trace.cache is not None and answer.trace.cache.stored
    d.ask("When does the office open?", "c")  # a hit
    d.close()
    yield answer.trace.id


def _json(*args: str) -> Any:
    result = runner.invoke(app, ["cache", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_stats_count_lookups_hits_and_tokens(cached: str):
    stats = _json("stats")
    assert stats["lookups"] == 2 and stats["hits"]["exact"] == 1 and stats["hit_rate"] == 0.5
    assert stats["collections"] == [{"collection": "c", "entries": 1, "approved": 0, "hits": 1}]
    assert stats["tokens_saved"] > 0
    human = runner.invoke(app, ["cache", "stats"])
    assert human.exit_code == 0 and "LLM tokens saved" in human.output


def test_inspect_shows_provenance(cached: str):
    (entry,) = _json("inspect")
    assert entry["trace_id"] == cached and entry["question"] == "When does the office open?"
    assert entry["citations"][0]["chunk_id"]
    one = runner.invoke(app, ["cache", "inspect", entry["id"]])
    assert one.exit_code == 0 and f"created by trace {cached}" in one.output.replace("\n", "")
    assert _json("inspect", "--trace", cached)[0]["id"] == entry["id"]


def test_inspect_unknown_entry_is_a_clear_error(cached: str):
    result = runner.invoke(app, ["cache", "inspect", "nope"])
    assert isinstance(result.exception, InputError)
    assert "no cache entry 'nope'" in str(result.exception)


def test_clear_one_collection(cached: str):
    assert _json("clear", "--collection", "other") == {"removed": 0}
    assert _json("clear", "--stale") == {"removed": 0}
    assert _json("clear", "--collection", "c") == {"removed": 1}
    assert _json("inspect") == []


def test_check_pairs_writes_a_verdict_per_pair(tmp_path: Path):
    src = tmp_path / "pairs.jsonl"
    src.write_text(
        "\n".join(
            [
                json.dumps(
                    {"sentence1": "환불이 되나요?", "sentence2": "환불이 안 되나요?", "label": 0}
                ),
                json.dumps(
                    {
                        "sentence1": "How do I reset my password?",
                        "sentence2": "how do I reset my password",
                        "label": 1,
                    }
                ),
                "{not json",
                json.dumps({"sentence1": "only one side"}),
            ]
        ),
        encoding="utf-8",
    )
    out = tmp_path / "out.jsonl"
    figures = _json("check-pairs", str(src), "--output", str(out))
    assert figures["pairs"] == 2 and figures["bad_lines"] == 2
    assert figures["hit_rate_same_meaning"] == 1.0
    assert figures["false_hit_rate_different_meaning"] == 0.0
    rows = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert rows[0]["would_hit"] is False and rows[0]["refused_by"] in ("negation", "similarity")
    assert rows[1]["would_hit"] is True and rows[1]["similarity"] == 1.0
    again = runner.invoke(app, ["cache", "check-pairs", str(src), "--output", str(out)])
    assert isinstance(again.exception, InputError) and "exists" in str(again.exception)
    missing = runner.invoke(
        app, ["cache", "check-pairs", str(tmp_path / "no.jsonl"), "-o", str(tmp_path / "x.jsonl")]
    )
    assert isinstance(missing.exception, InputError)
    assert "no such file" in str(missing.exception)
