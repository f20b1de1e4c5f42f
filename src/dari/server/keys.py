"""API keys: created once and shown once, stored as a hash, each with a role, the collections it may
use and the document ACL tags its holder reads with. Kept in the store, next to the traces."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from dari.errors import InputError
from dari.index.store import Store

PREFIX = "dari_"


class Role(StrEnum):
    USER = "user"  # ask, give feedback, read its own traces, in its collections
    ADMIN = "admin"  # everything: collections, documents, keys' traces, cache, prompts


@dataclass(frozen=True)
class ApiKey:
    """A key as the server sees it after verification (never the secret)."""

    id: str
    name: str
    role: Role
    collections: tuple[str, ...]  # ("*",) = every collection
    acl: tuple[str, ...] | None  # the tags its holder reads with; None = no ACL check (admin)
    created_at: float
    revoked_at: float | None = None

    def may_use(self, collection: str) -> bool:
        return self.role == Role.ADMIN or "*" in self.collections or collection in self.collections

    @property
    def admin(self) -> bool:
        return self.role == Role.ADMIN


class KeyStore:
    def __init__(self, store: Store) -> None:
        self._store = store  # its table comes from the store's migrations (dari.db.schema)

    def create(
        self,
        name: str,
        role: Role | str = Role.USER,
        collections: Sequence[str] = ("*",),
        acl: Sequence[str] | None = (),
    ) -> tuple[ApiKey, str]:
        """A new key and its secret token; the token is not stored and cannot be shown again."""
        role = _role(role)
        cols = tuple(sorted({c.strip() for c in collections if c.strip()})) or ("*",)
        tags = None if acl is None else tuple(sorted({a.strip() for a in acl if a.strip()}))
        key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(24)
        key = ApiKey(key_id, name or key_id, role, cols, tags, time.time())
        with self._store.transaction() as db:
            db.execute(
                "INSERT INTO api_keys VALUES (?, ?, ?, ?, ?, ?, ?, NULL)",
                (
                    key.id,
                    key.name,
                    key.role.value,
                    json.dumps(list(cols)),
                    None if tags is None else json.dumps(list(tags)),
                    _hash(secret),
                    key.created_at,
                ),
            )
        return key, f"{PREFIX}{key_id}_{secret}"

    def verify(self, token: str) -> ApiKey | None:
        """The live key a token belongs to, or None (unknown, revoked or wrong secret)."""
        if not token.startswith(PREFIX) or token.count("_") < 2:
            return None
        key_id, _, secret = token[len(PREFIX) :].partition("_")
        rows = self._store.rows(f"SELECT {_COLUMNS}, hash FROM api_keys WHERE id = ?", (key_id,))
        if not rows:
            return None
        key, stored = _key(rows[0][:-1]), str(rows[0][-1])
        if not hmac.compare_digest(stored, _hash(secret)) or key.revoked_at is not None:
            return None
        return key

    def list(self) -> list[ApiKey]:
        return [_key(r) for r in self._store.rows(f"SELECT {_COLUMNS} FROM api_keys ORDER BY 7")]

    def revoke(self, key_id: str) -> ApiKey:
        with self._store.transaction() as db:
            done = db.execute(
                "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                (time.time(), key_id),
            ).rowcount
        found = [k for k in self.list() if k.id == key_id]
        if not found:
            raise InputError(f"no API key '{key_id}'", "list the keys: dari keys list")
        if not done and found[0].revoked_at is None:  # pragma: no cover - raced
            raise InputError(f"could not revoke '{key_id}'", "retry")
        return found[0]


_COLUMNS = "id, name, role, collections, acl, created_at, revoked_at"


def _key(row: Sequence[object]) -> ApiKey:
    key_id, name, role, cols, acl, created, revoked = row
    return ApiKey(
        str(key_id),
        str(name),
        Role(str(role)),
        tuple(json.loads(str(cols))),
        None if acl is None else tuple(json.loads(str(acl))),
        float(created),  # type: ignore[arg-type]
        None if revoked is None else float(revoked),  # type: ignore[arg-type]
    )


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _role(value: Role | str) -> Role:
    try:
        return Role(value)
    except ValueError:
        raise InputError(f"unknown role '{value}'", "use user or admin") from None
