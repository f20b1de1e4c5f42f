"""Policies, failures and time limits: what the chain does with what the guards find."""

from __future__ import annotations

import time

import pytest

from dari.config import GuardSettings
from dari.guards.base import CLEAN, Finding, GuardContext
from dari.guards.chain import GuardChain, Policy, decisive, refusal
from dari.types import Action, Stage


class Flags:
    """A guard that flags any text containing its word, and can redact it."""

    stage = Stage.INPUT

    def __init__(self, name: str, word: str) -> None:
        self.name, self.word = name, word

    def check(self, text: str, ctx: GuardContext) -> Finding:
        if self.word not in text:
            return CLEAN
        return Finding(
            True, 0.9, "word", f"contains {self.word}", redacted=text.replace(self.word, "[X]")
        )


class Broken:
    name, stage = "injection", Stage.INPUT

    def check(self, text: str, ctx: GuardContext) -> Finding:
        raise RuntimeError("model file is corrupt")


class Slow:
    name, stage = "injection", Stage.INPUT

    def check(self, text: str, ctx: GuardContext) -> Finding:
        time.sleep(0.5)  # simulates a guard that hangs; the chain must not wait for it
        return CLEAN


def chain(*guards, **settings) -> GuardChain:
    s = GuardSettings(**settings)
    return GuardChain(
        list(guards), Policy(s, settings.get("_c", "")), s.timeout_ms, s.on_error == "closed"
    )


def test_each_action_of_the_policy():
    ctx = GuardContext()
    for action, blocked, text in (
        ("block", True, "call 555"),
        ("redact", False, "call [X]"),
        ("warn", False, "call 555"),
        ("log", False, "call 555"),
    ):
        result = chain(Flags("pii", "555"), input={"pii": action}).run(Stage.INPUT, "call 555", ctx)
        assert result.blocked is blocked and result.text == text, action
        assert result.verdicts[0].action == action and result.verdicts[0].flagged


def test_off_removes_the_guard_and_clean_text_is_allowed():
    assert (
        chain(Flags("pii", "555"), input={"pii": "off"})
        .run(Stage.INPUT, "555", GuardContext())
        .verdicts
        == ()
    )
    result = chain(Flags("pii", "555")).run(Stage.INPUT, "hello", GuardContext())
    assert [v.action for v in result.verdicts] == [Action.ALLOW]


def test_redact_without_a_redaction_blocks():
    class Whole(Flags):
        def check(self, text: str, ctx: GuardContext) -> Finding:
            return Finding(True, 1.0, "all")

    result = chain(Whole("toxicity", ""), output={"toxicity": "redact"})
    assert result.run(Stage.INPUT, "x", GuardContext()).blocked


def test_collection_overrides_the_default_policy():
    s = GuardSettings(collections={"hr": {"input": {"pii": "block"}}})
    assert Policy(s, "hr").action("pii") == "block"
    assert Policy(s, "other").action("pii") == "redact"


def test_a_block_stops_the_stage():
    result = chain(Flags("topics", "x"), Flags("pii", "x"), input={"topics": "block"}).run(
        Stage.INPUT, "x", GuardContext()
    )
    assert [v.guard for v in result.verdicts] == ["topics"]


@pytest.mark.parametrize("on_error, blocked", [("closed", True), ("open", False)])
def test_a_failing_guard_fails_closed_or_open_and_says_so(on_error: str, blocked: bool):
    result = chain(Broken(), on_error=on_error).run(Stage.INPUT, "hi", GuardContext())
    v = result.verdicts[0]
    assert result.blocked is blocked and v.rule == "error" and "corrupt" in v.detail
    assert ("failed closed" if blocked else "failed open") in v.detail


@pytest.mark.parametrize("on_error, blocked", [("closed", True), ("open", False)])
def test_a_slow_stage_times_out(on_error: str, blocked: bool):
    started = time.perf_counter()
    result = chain(Slow(), on_error=on_error, timeout_ms=50).run(Stage.INPUT, "hi", GuardContext())
    assert time.perf_counter() - started < 0.4
    assert result.blocked is blocked and result.verdicts[0].rule == "timeout"


def test_decisive_verdict_and_refusal_text():
    result = chain(Flags("names", "a"), Flags("injection", "b"), input={"names": "log"}).run(
        Stage.INPUT, "a b", GuardContext()
    )
    top = decisive(result.verdicts)
    assert top is not None and top.guard == "injection" and top.action == "block"
    assert "override" in refusal("en", top) and "지시" in refusal("ko", top)
