"""The question flow takes its prompt from the registry, and the trace names the version used."""

from __future__ import annotations

from pathlib import Path

from dari.app import Dari
from dari.config import Settings
from dari.index.analyzer import Analyzer
from dari.prompts.split import Split
from dari.testing import FakeEmbedder, FakeGenerator
from dari.types import Outcome

QUESTION = "When does the office open?"
SHORT = '[en]\nrole = "You are the short-answer assistant."\n'


def test_the_trace_records_name_at_version(dari: Dari, corpus: Path, fake_generator: FakeGenerator):
    dari.ingest([corpus], "c")
    fake_generator.enqueue("The office opens at 8 am [1].")
    answer = dari.ask(QUESTION, "c")
    assert answer.trace.prompt_version == "grounded@2"
    stored = dari.store.trace(answer.trace.id)
    assert stored is not None and stored["prompt_version"] == "grounded@2"
    abstained = dari.ask("What is the boiling point of mercury?", "c")
    assert abstained.outcome == Outcome.ABSTAINED
    assert abstained.trace.prompt_version == "grounded@2"


def test_the_old_setting_name_still_works(
    tmp_path: Path, corpus: Path, fake_generator: FakeGenerator, analyzer: Analyzer
):
    d = Dari(Settings(home=tmp_path / "home", llm={"prompt": "grounded-v1"}))
    d.analyzer = analyzer
    d.__dict__["embedder"] = FakeEmbedder(analyzer)
    d.__dict__["generator"] = fake_generator
    d.ingest([corpus], "c")
    fake_generator.enqueue("The office opens at 8 am [1].")
    answer = d.ask(QUESTION, "c")
    d.close()
    assert answer.trace.prompt_version == "grounded@1"
    assert "North Gate" not in str(fake_generator.seen[-1])  # v2's demonstration


def test_a_50_50_split_sends_keys_to_both_arms_and_each_key_to_the_same_one(
    dari: Dari, corpus: Path, fake_generator: FakeGenerator
):
    dari.ingest([corpus], "c")
    dari.prompts.create("short", SHORT, "short.toml", base="grounded@2")
    dari.prompts.set_split(["grounded@2=50", "short@1=50"])
    split = Split((("grounded@2", 50), ("short@1", 50)))
    keys = [f"user-{i}" for i in range(12)]
    expected = {key: split.choose(key) for key in keys}
    assert set(expected.values()) == {"grounded@2", "short@1"}
    for key in keys + keys:  # twice: the same key, the same arm
        fake_generator.enqueue("The office opens at 8 am [1].")
        answer = dari.ask(QUESTION, "c", prompt_key=key)
        assert answer.trace.prompt_version == expected[key]
        system = fake_generator.seen[-1][0]["content"]
        assert system.startswith("You are the short-answer") == (expected[key] == "short@1")


def test_without_a_key_the_question_picks_the_arm(
    dari: Dari, corpus: Path, fake_generator: FakeGenerator
):
    dari.ingest([corpus], "c")
    dari.prompts.create("short", SHORT, "short.toml", base="grounded@2")
    dari.prompts.set_split(["grounded@2=50", "short@1=50"])
    versions = set()
    for _ in range(3):
        fake_generator.enqueue("The office opens at 8 am [1].")
        versions.add(dari.ask(QUESTION, "c").trace.prompt_version)
    assert versions == {Split((("grounded@2", 50), ("short@1", 50))).choose(QUESTION)}
