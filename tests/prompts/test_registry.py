"""The registry on a real store: names, defaults and their precedence, the A/B split."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dari.errors import ConfigError, InputError
from dari.index.store import Store
from dari.prompts.registry import PromptRegistry

BRIEF = '[en]\noutput_format = "Answer in one sentence."\n'


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "dari.db")
    yield s
    s.close()


@pytest.fixture
def prompts(store: Store) -> PromptRegistry:
    return PromptRegistry(store)


def test_versions_by_exact_bare_and_old_name(prompts: PromptRegistry) -> None:
    assert prompts.get("grounded@1").ref == "grounded@1"
    assert prompts.get("grounded").ref == "grounded@2"  # the latest
    assert prompts.get("grounded-v1").ref == "grounded@1"  # the name before the registry
    assert prompts.default() == (prompts.get("grounded@2"), "llm.prompt")


@pytest.mark.parametrize("ref", ["grounded@7", "nothing", "nothing@1"])
def test_unknown_versions_are_config_errors_listing_the_known(
    prompts: PromptRegistry, ref: str
) -> None:
    with pytest.raises(ConfigError, match=f"unknown prompt '{ref}' .*grounded@1, grounded@2"):
        prompts.get(ref)


@pytest.mark.parametrize("ref", ["Grounded@2", "grounded@0", "grounded@x", "@2", "a b"])
def test_malformed_references_say_how_to_write_one(prompts: PromptRegistry, ref: str) -> None:
    with pytest.raises(ConfigError) as err:
        prompts.get(ref)
    assert "NAME@VERSION" in err.value.hint or "lower-case" in err.value.hint


def test_created_versions_are_numbered_and_based_on_their_origin(prompts: PromptRegistry) -> None:
    first = prompts.create("brief", BRIEF, "brief.toml", base="grounded@2")
    second = prompts.create("brief", BRIEF.replace("one", "a single"), "b.toml", base="grounded")
    assert (first.ref, second.ref, second.based_on) == ("brief@1", "brief@2", "grounded@2")
    assert prompts.get("brief").ref == "brief@2"
    system = prompts.get("brief@1").template("en").system
    assert system == prompts.get("grounded@2").template("en").system + "\nAnswer in one sentence."
    assert [v.ref for v in prompts.versions()] == ["brief@1", "brief@2", "grounded@1", "grounded@2"]


def test_an_exact_version_can_be_saved_again_only_with_the_same_parts(
    prompts: PromptRegistry,
) -> None:
    saved = prompts.create("brief@5", BRIEF, "brief.toml", base="grounded@2")
    assert prompts.create("brief@5", BRIEF, "brief.toml", base="grounded@2") == saved
    with pytest.raises(InputError, match="brief@5 already exists with other parts"):
        prompts.create("brief@5", BRIEF.replace("one", "two"), "brief.toml", base="grounded@2")


def test_the_store_cannot_add_to_or_overwrite_a_builtin(prompts: PromptRegistry) -> None:
    for name in ("grounded", "grounded@2", "grounded@3"):
        with pytest.raises(InputError, match="'grounded' is a built-in prompt name") as err:
            prompts.create(name, BRIEF, "brief.toml", base="grounded@2")
        assert "my-grounded" in err.value.hint
    assert prompts.get("grounded@2").source == "builtin"


def test_a_file_without_a_base_must_be_complete(prompts: PromptRegistry) -> None:
    with pytest.raises(InputError, match=r"brief\.toml \[en\] has no 'role'"):
        prompts.create("brief", BRIEF, "brief.toml")


def test_set_default_wins_over_the_setting_until_cleared(store: Store) -> None:
    prompts = PromptRegistry(store, setting="grounded-v1")
    assert prompts.default() == (prompts.get("grounded@1"), "llm.prompt")
    prompts.create("brief", BRIEF, "brief.toml", base="grounded@2")
    prompts.create("brief", BRIEF, "brief.toml", base="grounded@1")
    assert prompts.set_default("brief@1") == prompts.get("brief@1")
    assert prompts.default() == (prompts.get("brief@1"), "set-default")
    assert prompts.get("brief").ref == "brief@1"  # a bare name: the default's version
    assert PromptRegistry(store, "grounded@2").choose("anyone").ref == "brief@1"
    prompts.set_default(None)
    assert prompts.default()[1] == "llm.prompt" and prompts.get("brief").ref == "brief@2"


def test_an_unknown_setting_fails_the_check_early(store: Store) -> None:
    with pytest.raises(ConfigError, match="unknown prompt 'grounded@9'"):
        PromptRegistry(store, setting="grounded@9").check()
    PromptRegistry(store).check()


def test_a_split_wins_picks_a_stable_arm_per_key_and_can_be_cleared(
    prompts: PromptRegistry,
) -> None:
    prompts.create("brief", BRIEF, "brief.toml", base="grounded@2")
    prompts.set_default("grounded@1")
    split = prompts.set_split(["grounded@2=50", "brief=50"])  # a bare name is pinned
    assert split.arms == (("grounded@2", 50), ("brief@1", 50)) and prompts.split() == split
    chosen = {key: prompts.choose(key).ref for key in (f"user-{i}" for i in range(40))}
    assert set(chosen.values()) == {"grounded@2", "brief@1"}
    assert all(prompts.choose(key).ref == ref for key, ref in chosen.items())
    prompts.check()
    prompts.clear_split()
    assert prompts.split() is None and prompts.choose("user-1").ref == "grounded@1"


@pytest.mark.parametrize(
    ("arms", "error", "message"),
    [
        (["grounded@2=60", "grounded@1=60"], InputError, "sum to 120"),
        (["grounded@2=50", "grounded=50"], InputError, "names one version twice"),
        (["grounded@2=50", "mine@1=50"], ConfigError, "unknown prompt 'mine@1'"),
    ],
)
def test_bad_splits_are_refused_and_nothing_is_stored(
    prompts: PromptRegistry, arms: list[str], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        prompts.set_split(arms)
    assert prompts.split() is None


def test_a_pinned_prompt_wins_over_the_stored_default_and_split(store: Store) -> None:
    """An eval of grounded@1 measures grounded@1, whatever the operator chose for users."""
    users = PromptRegistry(store)
    users.set_default("grounded@2")
    users.set_split(["grounded@2=50", "grounded@1=50"])
    pinned = PromptRegistry(store, "grounded@1", pinned=True)
    assert pinned.default() == (pinned.get("grounded@1"), "pinned")
    assert pinned.split() is None
    assert {pinned.choose(f"user-{i}").ref for i in range(20)} == {"grounded@1"}
    assert {users.choose(f"user-{i}").ref for i in range(20)} == {"grounded@1", "grounded@2"}


def test_eval_settings_pin_the_prompt_they_name() -> None:
    from dari.config import Settings
    from dari.eval.answers import eval_settings

    assert eval_settings(Settings(), prompt="grounded@1").llm.pin_prompt
    assert not eval_settings(Settings(), model="ci").llm.pin_prompt
