"""The answer cache in Redis (`cache.backend = "redis"`): one cache for every dari process that
points at the same server, so replicas share hits, and an entry invalidated or evicted by one is
gone for all. The same contract as the SQLite CacheStore (the same tests run on both).

Keys, under `cache.redis_prefix`:
    entry:<id>            hash: the entry, its normalised question, meaning and float16 vector
    key:<scope>:<sha>     the entry id stored for (scope, normalised question); SET NX, so the
                          first writer wins
    scope:<scope>, coll:<collection>, trace:<trace id>   sets of entry ids
    lru                   sorted set: last use, approved entries offset to be evicted last
    counters              hash: hits, tokens saved…, and `version` (bumped by every write that
                          changes what a semantic lookup may find)

Each process keeps the vectors of the scopes it looked up in memory, reloaded when `version`
moved, exactly like the SQLite store.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import numpy as np

from dari.cache.meaning import Meaning
from dari.cache.store import (
    NEVER,
    Entry,
    ScopeVectors,
    _meaning_from,
    _meaning_json,
    _ScopeIndex,
)
from dari.errors import BackendError, MissingExtra

_APPROVED = 1e12  # added to an approved entry's LRU score: evicted after every other one
_FIELDS = (
    "id", "scope", "collection", "question", "lang", "answer", "citations", "trace_id",
    "tokens", "approved", "created", "last_used", "expires", "hits",
)  # fmt: skip


class RedisCacheStore(ScopeVectors):
    """Entries keyed by (scope, normalised question), their cited chunks, hit counters."""

    def __init__(self, url: str, prefix: str = "dari:cache:") -> None:
        try:
            import redis
        except ImportError as exc:
            raise MissingExtra("redis", "server") from exc
        super().__init__()
        self.path = _redact(url)  # where the cache is, as `dari cache stats` shows it
        self.rebuilt = ""
        self._p = prefix
        self._r = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)
        # No ping here: a Redis that is down makes each call fail (a lookup becomes a miss,
        # said in the trace), never the construction of the pipeline.
        self._errors: tuple[type[BaseException], ...] = (redis.RedisError, OSError)

    def close(self) -> None:
        self._r.close()

    # -- reads -----------------------------------------------------------------------------
    def exact(self, scope: str, norm: str, now: float) -> Entry | None:
        entry_id = self._call(self._r.get, self._key(scope, norm))
        entry = self.get(entry_id.decode()) if entry_id else None
        return entry if entry is not None and entry.expires > now else None

    def get(self, entry_id: str) -> Entry | None:
        row = self._call(self._r.hmget, self._p + "entry:" + entry_id, _FIELDS)
        return _entry(row) if row[0] is not None else None

    def entries(self, collection: str = "", limit: int = 50) -> list[Entry]:
        ids = self._members("coll:" + collection) if collection else self._all_ids()
        found = self._many(ids)
        return sorted(found, key=lambda e: -e.last_used)[:limit]

    def by_trace(self, trace_id: str) -> list[Entry]:
        return self._many(self._members("trace:" + trace_id))

    def counters(self) -> dict[str, float]:
        raw = self._call(self._r.hgetall, self._p + "counters")
        return {k.decode(): float(v) for k, v in raw.items()}

    def summary(self) -> list[tuple[str, int, int, int]]:
        """(collection, entries, approved, hits) per collection."""
        rows: dict[str, list[int]] = {}
        for e in self._many(self._all_ids()):
            row = rows.setdefault(e.collection, [0, 0, 0])
            row[0] += 1
            row[1] += int(e.approved)
            row[2] += e.hits
        return [(c, n, a, h) for c, (n, a, h) in sorted(rows.items())]

    def size_bytes(self) -> int:
        """Bytes Redis holds for the entries (MEMORY USAGE of each entry's hash)."""
        ids = self._all_ids()
        pipe = self._r.pipeline(transaction=False)
        for i in ids:
            pipe.memory_usage(self._p + "entry:" + i)
        return int(sum(n or 0 for n in self._call(pipe.execute))) if ids else 0

    def dead_entries(
        self, collection: str, alive: Callable[[Sequence[str]], set[str]]
    ) -> list[str]:
        """Entries of a collection citing a chunk that `alive` no longer knows."""
        cited = {e.id: e.chunk_ids for e in self._many(self._members("coll:" + collection))}
        living = alive(sorted({c for chunks in cited.values() for c in chunks}))
        return sorted(e for e, chunks in cited.items() if any(c not in living for c in chunks))

    # -- writes ----------------------------------------------------------------------------
    def put(
        self,
        entry: Entry,
        norm: str,
        meaning: Meaning,
        vec: np.ndarray | None,
        max_entries: int,
    ) -> str:
        """Store an entry unless its key is taken (the first writer wins; an approval of the
        same key marks the stored one approved). Returns the id of the entry now stored."""
        key = self._key(entry.scope, norm)
        if not self._call(self._r.set, key, entry.id, nx=True):
            stored = self._call(self._r.get, key)
            stored_id = stored.decode() if stored else entry.id
            if entry.approved:
                self.approve(stored_id)
            return stored_id
        fields: dict[Any, Any]  # redis-py wants its own Mapping key union
        fields = {name: _field(entry, name) for name in _FIELDS}
        fields |= {"norm": norm, "meaning": json.dumps(_meaning_json(meaning), ensure_ascii=False)}
        if vec is not None:
            fields["vec"] = vec.astype(np.float16).tobytes()
        pipe = self._r.pipeline(transaction=True)
        pipe.hset(self._p + "entry:" + entry.id, mapping=fields)
        pipe.sadd(self._p + "scope:" + entry.scope, entry.id)
        pipe.sadd(self._p + "coll:" + entry.collection, entry.id)
        pipe.sadd(self._p + "trace:" + entry.trace_id, entry.id)
        pipe.zadd(self._p + "lru", {entry.id: _lru(entry.last_used, entry.approved)})
        pipe.hincrbyfloat(self._p + "counters", "version", 1)
        version = self._call(pipe.execute)[-1]
        if vec is not None:
            self._patched(version, lambda: self._remember(entry.scope, entry.id, vec, meaning))
        else:
            self._patched(version, lambda: None)
        self._shrink(max_entries)
        return entry.id

    def touch(self, entry_id: str, now: float, tokens: int) -> None:
        """A hit: counts, recency for LRU, and the tokens it saved."""
        approved = self._call(self._r.hget, self._p + "entry:" + entry_id, "approved")
        if approved is None:
            return
        pipe = self._r.pipeline(transaction=True)
        pipe.hincrby(self._p + "entry:" + entry_id, "hits", 1)
        pipe.hset(self._p + "entry:" + entry_id, "last_used", now)
        pipe.zadd(self._p + "lru", {entry_id: _lru(now, approved == b"1")})
        pipe.hincrbyfloat(self._p + "counters", "tokens_saved", tokens)
        self._call(pipe.execute)

    def count(self, name: str, n: float = 1) -> None:
        self._call(self._r.hincrbyfloat, self._p + "counters", name, n)

    def approve(self, entry_id: str) -> bool:
        entry = self.get(entry_id)
        if entry is None:
            return False
        pipe = self._r.pipeline(transaction=True)
        pipe.hset(self._p + "entry:" + entry_id, mapping={"approved": 1, "expires": NEVER})
        pipe.zadd(self._p + "lru", {entry_id: _lru(entry.last_used, True)})
        pipe.hincrbyfloat(self._p + "counters", "version", 1)
        self._patched(self._call(pipe.execute)[-1], lambda: None)  # the vectors stay as they are
        return True

    def delete(self, entry_ids: Iterable[str]) -> int:
        gone = 0
        for entry_id in entry_ids:
            found = self._call(
                self._r.hmget,
                self._p + "entry:" + entry_id,
                ("scope", "norm", "collection", "trace_id"),
            )
            if found[0] is None:
                continue
            scope, norm, coll, trace = (v.decode() for v in found)
            pipe = self._r.pipeline(transaction=True)
            pipe.delete(self._p + "entry:" + entry_id)
            pipe.srem(self._p + "scope:" + scope, entry_id)
            pipe.srem(self._p + "coll:" + coll, entry_id)
            pipe.srem(self._p + "trace:" + trace, entry_id)
            pipe.zrem(self._p + "lru", entry_id)
            pipe.hincrbyfloat(self._p + "counters", "version", 1)
            self._patched(self._call(pipe.execute)[-1], partial(self._forget, [entry_id]))
            key = self._key(scope, norm)
            if self._call(self._r.get, key) == entry_id.encode():
                self._call(self._r.delete, key)
            gone += 1
        return gone

    def delete_where(self, collection: str = "", expired_before: float | None = None) -> int:
        ids = self._members("coll:" + collection) if collection else self._all_ids()
        if expired_before is not None:
            ids = [e.id for e in self._many(ids) if e.expires <= expired_before]
        return self.delete(ids)

    # -- internals -------------------------------------------------------------------------
    def _patched(self, version: float, patch: Callable[[], None]) -> None:
        """After our write made `version`: when nobody else wrote since our scopes were loaded,
        patch them in place; else they are reloaded on the next lookup."""
        with self._lock:
            if float(version) - 1 == self._seen_version:
                self._seen_version = float(version)
                patch()

    def _shrink(self, max_entries: int) -> None:
        """LRU: over the limit, the least recently used go first, approved ones last."""
        n = int(self._call(self._r.zcard, self._p + "lru"))
        if n > max_entries:
            oldest = self._call(self._r.zrange, self._p + "lru", 0, n - max_entries - 1)
            self.delete([i.decode() for i in oldest])

    def _refresh(self) -> None:
        raw = self._call(self._r.hget, self._p + "counters", "version")
        version = float(raw) if raw else 0.0
        if version != self._seen_version:
            self._scopes.clear()
            self._seen_version = version

    def _load_scope(self, scope: str) -> _ScopeIndex:
        ids, rows, meanings = [], [], []
        now = time.time()
        members = self._members("scope:" + scope)
        pipe = self._r.pipeline(transaction=False)
        for i in members:
            pipe.hmget(self._p + "entry:" + i, ("vec", "meaning", "expires"))
        for entry_id, (vec, meaning, expires) in zip(
            members, self._call(pipe.execute), strict=True
        ):
            if vec is None or float(expires) <= now:
                continue
            ids.append(entry_id)
            rows.append(np.frombuffer(vec, dtype=np.float16))
            meanings.append(_meaning_from(json.loads(meaning)))
        vecs = np.stack(rows).astype(np.float32) if rows else np.zeros((0, 1), np.float32)
        index = _ScopeIndex(ids, vecs, meanings)
        self._scopes[scope] = index
        return index

    def _key(self, scope: str, norm: str) -> str:
        return f"{self._p}key:{scope}:{hashlib.sha256(norm.encode()).hexdigest()[:32]}"

    def _members(self, name: str) -> list[str]:
        return sorted(m.decode() for m in self._call(self._r.smembers, self._p + name))

    def _all_ids(self) -> list[str]:
        return [m.decode() for m in self._call(self._r.zrange, self._p + "lru", 0, -1)]

    def _many(self, ids: Sequence[str]) -> list[Entry]:
        pipe = self._r.pipeline(transaction=False)
        for i in ids:
            pipe.hmget(self._p + "entry:" + i, _FIELDS)
        rows = self._call(pipe.execute) if ids else []
        return [_entry(r) for r in rows if r[0] is not None]

    def _call(self, fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        try:
            return fn(*args, **kw)
        except self._errors as exc:
            raise BackendError(
                f"the answer cache's Redis at {self.path} failed: {exc}",
                "check that redis-server is up and cache.redis_url is right "
                "(DARI_CACHE__REDIS_URL), or set cache.backend = 'sqlite'",
            ) from exc


def _lru(last_used: float, approved: bool) -> float:
    return last_used + (_APPROVED if approved else 0.0)


def _field(e: Entry, name: str) -> str | int | float:
    value = getattr(e, name)
    if name == "citations":
        return json.dumps(list(value), ensure_ascii=False)
    return int(value) if isinstance(value, bool) else value


def _entry(row: Sequence[bytes | None]) -> Entry:
    v = dict(zip(_FIELDS, (x.decode() if x is not None else "" for x in row), strict=True))
    return Entry(
        v["id"],
        v["scope"],
        v["collection"],
        v["question"],
        v["lang"],
        v["answer"],
        tuple(json.loads(v["citations"] or "[]")),
        v["trace_id"],
        int(float(v["tokens"] or 0)),
        v["approved"] == "1",
        float(v["created"] or 0),
        float(v["last_used"] or 0),
        float(v["expires"] or 0),
        int(float(v["hits"] or 0)),
    )


def _redact(url: str) -> str:
    """The URL without its password, for messages."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    netloc = f"{parts.username or ''}:***@{parts.hostname or ''}"
    return urlunsplit(parts._replace(netloc=netloc + (f":{parts.port}" if parts.port else "")))
