"""Recipes: defaults per method, TOML files, overrides, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from dari.errors import ConfigError
from dari.tune.recipe import Recipe, load_recipe


def test_defaults_differ_by_method() -> None:
    sft, dpo = Recipe.default("sft"), Recipe.default("dpo")
    assert sft.train.learning_rate > dpo.train.learning_rate
    assert dpo.train.batch_size < sft.train.batch_size
    assert load_recipe(None, "dpo") == dpo


def test_file_fills_unset_keys_from_the_methods_defaults(tmp_path: Path) -> None:
    path = tmp_path / "r.toml"
    path.write_text('base = "ci"\nseed = 3\n[lora]\nr = 4\n[train]\nepochs = 2\n')
    r = load_recipe(path, "dpo")
    assert (r.method, r.base, r.seed, r.lora.r, r.train.epochs) == ("dpo", "ci", 3, 4, 2)
    assert r.train.learning_rate == Recipe.default("dpo").train.learning_rate


def test_overrides_leave_none_alone() -> None:
    r = Recipe.default("sft").with_overrides(
        base="ci", seed=None, **{"train.max_steps": 5, "lora.r": None}
    )
    assert (r.base, r.seed, r.train.max_steps, r.lora.r) == ("ci", 7, 5, 8)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("[train]\nlearning_rate = -1\n", "train.learning_rate"),
        ("[lora]\nrank = 8\n", "lora.rank"),  # misspelt key: an error, not ignored
        ("method = 'sft'\n[train\n", "not valid TOML"),
        ("method = 'dpo'\n", "for method 'dpo'"),
    ],
)
def test_bad_recipes_say_what_is_wrong(tmp_path: Path, text: str, words: str) -> None:
    path = tmp_path / "r.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=words):
        load_recipe(path, "sft")


def test_missing_recipe_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the recipe"):
        load_recipe(tmp_path / "nope.toml", "sft")
