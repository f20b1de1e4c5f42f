"""Prompt versions and choices kept in the store, next to the traces that name them.

Versions are insert-only: triggers refuse UPDATE and DELETE, so a `name@version` in a trace
always means the same parts. Choices (the default, the A/B split) are plain key/value rows.
"""

from __future__ import annotations

import time
from typing import cast

from dari.db.base import Connection
from dari.errors import InputError
from dari.index.store import Store
from dari.prompts.parts import PromptVersion, parts_from_json, parts_json

_COLUMNS = "name, version, parts, description, based_on, created_at"


class PromptStore:
    """The store's prompt tables, created on first use."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._memo: dict[tuple[str, int], PromptVersion] = {}  # immutable rows: safe to keep

    def _tables(self) -> Store:
        return self._store  # the tables come from the store's migrations (dari.db.schema)

    def versions(self) -> list[PromptVersion]:
        rows = self._tables().rows(f"SELECT {_COLUMNS} FROM prompt_versions ORDER BY name, version")
        return [_version(row) for row in rows]

    def get(self, name: str, version: int) -> PromptVersion | None:
        if (name, version) not in self._memo:
            rows = self._tables().rows(
                f"SELECT {_COLUMNS} FROM prompt_versions WHERE name = ? AND version = ?",
                (name, version),
            )
            if not rows:
                return None
            self._memo[name, version] = _version(rows[0])
        return self._memo[name, version]

    def latest(self, name: str) -> int:
        """The highest version number of a name; 0 when the store has none."""
        sql = "SELECT max(version) FROM prompt_versions WHERE name = ?"
        (top,) = self._tables().rows(sql, (name,))[0]
        return cast(int, top) if top is not None else 0

    def add(self, version: PromptVersion) -> PromptVersion:
        """Save `version` under the next free number of its name (its own number is ignored)."""
        with self._tables().transaction() as db:
            (top,) = db.execute(
                "SELECT max(version) FROM prompt_versions WHERE name = ?", (version.name,)
            ).fetchone()
            return _insert(db, version, (top or 0) + 1)

    def save(self, version: PromptVersion) -> PromptVersion:
        """Save `version` under its own number. Saving the same parts again changes nothing;
        different parts under a number already taken are an InputError: versions are immutable."""
        with self._tables().transaction() as db:
            row = db.execute(
                "SELECT sha256, created_at FROM prompt_versions WHERE name = ? AND version = ?",
                (version.name, version.version),
            ).fetchone()
            if row is None:
                return _insert(db, version, version.version)
        if row[0] != version.digest():
            raise InputError(
                f"{version.ref} already exists with other parts, and versions never change",
                f"save it as a new version: dari prompt create {version.name} --file F",
            )
        saved = self.get(version.name, version.version)
        assert saved is not None
        return saved

    def choice(self, key: str) -> str | None:
        rows = self._tables().rows("SELECT value FROM prompt_choices WHERE key = ?", (key,))
        return str(rows[0][0]) if rows else None

    def set_choice(self, key: str, value: str | None) -> None:
        """Set a choice (`default`, `split`), or remove it with None."""
        with self._tables().transaction() as db:
            db.execute("DELETE FROM prompt_choices WHERE key = ?", (key,))
            if value is not None:
                db.execute(
                    "INSERT INTO prompt_choices(key, value, updated_at) VALUES (?, ?, ?)",
                    (key, value, time.time()),
                )


def _insert(db: Connection, version: PromptVersion, number: int) -> PromptVersion:
    created = time.time()
    db.execute(
        "INSERT INTO prompt_versions(name, version, parts, sha256, description, based_on, "
        "created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            version.name,
            number,
            parts_json(version.parts),
            version.digest(),
            version.description,
            version.based_on,
            created,
        ),
    )
    return PromptVersion(
        version.name,
        number,
        version.parts,
        "store",
        version.description,
        version.based_on,
        created,
    )


def _version(row: tuple[object, ...]) -> PromptVersion:
    name, number, parts, description, based_on, created = row
    return PromptVersion(
        str(name),
        cast(int, number),
        parts_from_json(str(parts)),
        "store",
        str(description),
        str(based_on),
        cast(float, created),
    )
