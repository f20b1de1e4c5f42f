"""The A/B split: checked shares, a stable arm per key, few keys moved when shares change."""

from __future__ import annotations

import pytest

from dari.errors import InputError
from dari.prompts.split import Split, parse_arms


def test_arms_are_parsed_and_checked() -> None:
    assert parse_arms(["grounded@2=90", "mine@1=10"]) == [("grounded@2", 90), ("mine@1", 10)]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["grounded@2=90", "mine@1=20"], "sum to 110, not 100"),
        (["grounded@2=50", "mine@1=40"], "sum to 90, not 100"),
        (["grounded@2=100"], "two versions or more"),
        (["grounded@2", "mine@1=100"], "not VERSION=PERCENT"),
        (["grounded@2=half", "mine@1=50"], "not VERSION=PERCENT"),
        (["grounded@2=0", "mine@1=100"], "a whole percent from 1"),
        (["a@1=50", "a@1=50"], "appears twice"),
    ],
)
def test_bad_splits_are_input_errors(args: list[str], message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_arms(args)


def test_a_key_keeps_its_arm_and_the_shares_hold_over_many_keys() -> None:
    split = Split((("a@1", 90), ("b@1", 10)))
    keys = [f"user-{i}" for i in range(5000)]
    arms = [split.choose(k) for k in keys]
    assert arms == [split.choose(k) for k in keys]  # deterministic
    assert 0.08 < arms.count("b@1") / len(keys) < 0.12


def test_changing_the_shares_moves_only_the_keys_that_must_move() -> None:
    before = Split((("a@1", 50), ("b@1", 50)))
    after = Split((("a@1", 60), ("b@1", 40)))
    keys = [f"session-{i}" for i in range(2000)]
    moved = [k for k in keys if before.choose(k) != after.choose(k)]
    assert all(before.choose(k) == "b@1" and after.choose(k) == "a@1" for k in moved)
    assert 0.05 < len(moved) / len(keys) < 0.15
    assert Split.from_json(after.to_json()) == after and after.share("b@1") == 40
