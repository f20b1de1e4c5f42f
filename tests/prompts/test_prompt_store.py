"""Stored prompt versions on real stores (SQLite, PostgreSQL): numbered, kept, never changed."""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.conftest import STORE_BACKENDS
from tests.index.stores import open_store, reopen

from dari.errors import InputError, StoreError
from dari.index.store import Store
from dari.prompts.builtin import builtin_versions
from dari.prompts.parts import Parts, PromptVersion
from dari.prompts.store import PromptStore


def version(name: str, role: str, number: int = 1) -> PromptVersion:
    base = builtin_versions()["grounded@2"]
    parts: dict[str, Parts] = {
        lang: dataclasses.replace(p, role=role) for lang, p in base.parts.items()
    }
    return PromptVersion(name, number, parts, "store", "why", base.ref)


@pytest.fixture(params=STORE_BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    s = open_store(request.param, tmp_path, request)
    yield s
    s.close()


def test_added_versions_get_the_next_number_and_read_back_whole(store: Store) -> None:
    prompts = PromptStore(store)
    first = prompts.add(version("mine", "Be brief."))
    second = prompts.add(version("mine", "Be briefer.", number=7))  # the number is ignored
    assert (first.ref, second.ref) == ("mine@1", "mine@2") and prompts.latest("mine") == 2
    again = PromptStore(store).get("mine", 2)  # a fresh reader, not the memo
    assert again is not None and again.parts == second.parts
    assert again.source == "store" and again.based_on == "grounded@2" and again.created
    assert [v.ref for v in prompts.versions()] == ["mine@1", "mine@2"]
    assert prompts.get("mine", 3) is None and prompts.latest("other") == 0


def test_versions_survive_reopening_the_store(store: Store) -> None:
    PromptStore(store).add(version("mine", "Be brief."))
    s = reopen(store)
    found = PromptStore(s).get("mine", 1)
    s.close()
    assert found is not None and found.parts["en"].role == "Be brief."


def test_a_saved_version_is_immutable(store: Store) -> None:
    prompts = PromptStore(store)
    saved = prompts.save(version("mine", "Be brief.", number=3))
    assert saved.ref == "mine@3"
    assert prompts.save(version("mine", "Be brief.", number=3)).created == saved.created  # no-op
    with pytest.raises(InputError, match="mine@3 already exists with other parts"):
        prompts.save(version("mine", "Be long-winded.", number=3))
    stored = PromptStore(store).get("mine", 3)
    assert stored is not None and stored.parts["en"].role == "Be brief."


def test_the_database_itself_refuses_to_change_or_delete_a_version(store: Store) -> None:
    PromptStore(store).add(version("mine", "Be brief."))
    for sql in ("UPDATE prompt_versions SET parts = '{}'", "DELETE FROM prompt_versions"):
        refused = pytest.raises((sqlite3.IntegrityError, StoreError), match="immutable")
        with refused, store.transaction() as db:
            db.execute(sql)
    assert store.rows("SELECT count(*) FROM prompt_versions") == [(1,)]


def test_choices_are_set_replaced_and_cleared(store: Store) -> None:
    prompts = PromptStore(store)
    assert prompts.choice("default") is None
    prompts.set_choice("default", "mine@1")
    prompts.set_choice("default", "grounded@1")
    assert prompts.choice("default") == "grounded@1"
    prompts.set_choice("default", None)
    assert prompts.choice("default") is None
