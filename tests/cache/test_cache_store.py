"""The answer cache's store: keys, LRU and TTL, invalidation, concurrent writers; the same tests on
SQLite (the embedded default), a real redis-server and a real PostgreSQL; corrupt or old SQLite
files, PostgreSQL tables of another cache schema."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from dari.cache.answers import AnswerCache
from dari.cache.key import make_scope, normalise
from dari.cache.meaning import MeaningParser
from dari.cache.redis_store import RedisCacheStore
from dari.cache.store import CacheStore, Entry, open_postgres
from dari.config import CacheSettings
from dari.index.analyzer import Analyzer
from dari.types import GenerationParams


@pytest.fixture(scope="module")
def parser() -> MeaningParser:
    return MeaningParser(Analyzer())


Opener = Callable[[], CacheStore | RedisCacheStore]


@pytest.fixture(params=["sqlite", "redis", "postgres"])
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    """Opens the cache as another process would: a connection of its own to the same data."""
    opened: list[CacheStore | RedisCacheStore] = []

    def remember(store: CacheStore | RedisCacheStore) -> CacheStore | RedisCacheStore:
        opened.append(store)
        return store

    if request.param == "sqlite":
        yield lambda: remember(CacheStore(tmp_path / "a.db"))
    elif request.param == "redis":
        url = request.getfixturevalue("redis_url")
        yield lambda: remember(RedisCacheStore(url, "test:cache:"))
    else:
        url = request.getfixturevalue("postgres_url")
        yield lambda: remember(open_postgres(url, 2, 5.0))
    for store in opened:
        store.close()


def _entry(i: int, scope: str = "s", chunks: tuple[str, ...] = ("c1",), **kw: object) -> Entry:
    now = time.time()
    base: dict[str, object] = {
        "id": f"e{i}",
        "scope": scope,
        "collection": "docs",
        "question": f"question {i}",
        "lang": "en",
        "answer": f"answer {i} [1]",
        "citations": tuple({"n": 1, "chunk_id": c} for c in chunks),
        "trace_id": f"t{i}",
        "tokens": 100,
        "approved": False,
        "created": now,
        "last_used": now + i,
        "expires": now + 3600,
        "hits": 0,
    }
    base.update(kw)
    return Entry(**base)  # type: ignore[arg-type]


def _put(
    store: CacheStore | RedisCacheStore, e: Entry, parser: MeaningParser, limit: int = 100
) -> str:
    vec = np.ones(4, dtype=np.float32) / 2
    return store.put(e, normalise(e.question), parser.parse(e.question), vec, limit)


def test_scope_key_separates_everything_that_shaped_an_answer() -> None:
    p = GenerationParams()
    base = make_scope("docs", "v1", "grounded@2", "default", p, "en", ["hr"])
    assert base.key == make_scope("docs", "v1", "grounded@2", "default", p, "en", ["hr", "hr"]).key
    others = [
        make_scope("other", "v1", "grounded@2", "default", p, "en", ["hr"]),
        make_scope("docs", "v2", "grounded@2", "default", p, "en", ["hr"]),
        make_scope("docs", "v1", "grounded@1", "default", p, "en", ["hr"]),
        make_scope("docs", "v1", "grounded@2", "small", p, "en", ["hr"]),
        make_scope("docs", "v1", "grounded@2", "default", GenerationParams(0.7), "en", ["hr"]),
        make_scope("docs", "v1", "grounded@2", "default", p, "ko", ["hr"]),
        make_scope("docs", "v1", "grounded@2", "default", p, "en", []),
        make_scope("docs", "v1", "grounded@2", "default", p, "en", None),
        make_scope("docs", "v1", "grounded@2", "default", p, "en", ["hr"], tenant="acme"),
        make_scope("docs", "v1", "grounded@2", "default", p, "en", ["hr"], filters={"y": "1"}),
        make_scope("docs", "v1", "grounded@2", "default", p, "en", ["hr"], schema={"a": 1}),
        make_scope("docs", "v1", "grounded@2", "default", p, "en", ["hr"], top_k=5),
    ]
    assert len({base.key, *(o.key for o in others)}) == len(others) + 1


def test_normalise() -> None:
    assert normalise("  How do I  install dari?? ") == normalise("how do i install dari")
    assert normalise("환불 되나요?") == "환불 되나요"


def test_first_writer_wins_and_approval_sticks(opener: Opener, parser: MeaningParser) -> None:
    store = opener()
    assert _put(store, _entry(1), parser) == "e1"
    same_key = _entry(2, question="Question 1?", approved=True)
    assert _put(store, same_key, parser) == "e1"
    got = store.get("e1")
    assert got is not None and got.approved and got.answer == "answer 1 [1]"


def test_concurrent_writers_on_the_same_key(opener: Opener, parser: MeaningParser) -> None:
    opener().close()
    errors: list[BaseException] = []
    winners: list[str] = []

    def write(i: int) -> None:
        try:
            store = opener()  # a connection of its own, like another process
            winners.append(_put(store, _entry(i, question="same question"), parser))
            store.close()
        except BaseException as exc:  # pragma: no cover - the assertion shows it
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(set(winners)) == 1
    assert len(opener().entries()) == 1


def test_lru_evicts_least_recently_used_and_keeps_approved(
    opener: Opener, parser: MeaningParser
) -> None:
    store = opener()
    _put(store, _entry(0, approved=True, last_used=0.0), parser, limit=3)
    for i in range(1, 5):
        _put(store, _entry(i), parser, limit=3)
    left = {e.id for e in store.entries()}
    assert left == {"e0", "e3", "e4"}


def test_expired_entries_are_not_served(opener: Opener, parser: MeaningParser) -> None:
    store = opener()
    _put(store, _entry(1, expires=time.time() - 1), parser)
    assert store.exact("s", normalise("question 1"), time.time()) is None
    assert store.delete_where(expired_before=time.time()) == 1


def test_invalidation_by_cited_chunk(opener: Opener, parser: MeaningParser) -> None:
    store = opener()
    _put(store, _entry(1, chunks=("c1", "c2")), parser)
    _put(store, _entry(2, chunks=("c3",)), parser)
    alive = {"c1", "c3"}
    cache = AnswerCache(store, CacheSettings(), parser, lambda ids: set(ids) & alive)
    assert cache.invalidate("docs") == 1
    assert [e.id for e in store.entries()] == ["e2"]


def test_corrupt_file_is_moved_aside_and_rebuilt(tmp_path: Path, parser: MeaningParser) -> None:
    path = tmp_path / "a.db"
    path.write_bytes(b"this is not a database" * 100)
    store = CacheStore(path)
    assert "unreadable" in store.rebuilt
    assert list(tmp_path.glob("a.db.broken-*"))
    assert _put(store, _entry(1), parser) == "e1"


def test_old_schema_is_rebuilt(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE entries(id TEXT)")
    db.execute("PRAGMA user_version=0")
    db.commit()
    db.close()
    store = CacheStore(path)
    assert "schema 0" in store.rebuilt
    assert store.entries() == []


def test_semantic_index_sees_writes_of_other_connections(
    opener: Opener, parser: MeaningParser
) -> None:
    reader, writer = opener(), opener()
    vec = np.ones(4, dtype=np.float32) / 2
    assert reader.nearest("s", vec, 0.5) == []
    _put(writer, _entry(1), parser)
    found = reader.nearest("s", vec, 0.5)
    assert [f[0] for f in found] == ["e1"] and found[0][1] == pytest.approx(1.0, abs=1e-3)


def test_own_writes_patch_the_loaded_scope_instead_of_reloading(
    opener: Opener, parser: MeaningParser
) -> None:
    store = opener()
    vec = np.ones(4, dtype=np.float32) / 2
    _put(store, _entry(1), parser)
    store.nearest("s", vec, 0.5)  # loads the scope
    loaded = store._scopes["s"]
    _put(store, _entry(2), parser, limit=2)
    _put(store, _entry(3), parser, limit=2)  # evicts e1, the least recently used
    assert store._scopes["s"] is loaded and loaded.ids == ["e2", "e3"]
    assert [f[0] for f in store.nearest("s", vec, 0.5)] == ["e2", "e3"]
    store.delete(["e2"])
    assert [f[0] for f in store.nearest("s", vec, 0.5)] == ["e3"]


def test_postgres_tables_of_another_cache_schema_are_rebuilt(
    postgres_url: str, parser: MeaningParser
) -> None:
    """The cache's tables live in their own schema, apart from the store's, and tables written
    by another cache schema are dropped and made again (the cache is derived data)."""
    import psycopg

    store = open_postgres(postgres_url, 2, 5.0)
    _put(store, _entry(1), parser)
    store.close()
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("UPDATE dari_cache.meta SET value = '0' WHERE key = 'schema'")
        public = conn.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename = 'entries'"
        ).fetchone()
    assert public == (0,)
    again = open_postgres(postgres_url, 2, 5.0)
    try:
        assert "cache schema 0" in again.rebuilt
        assert again.entries() == [] and again.size_bytes() > 0
        assert _put(again, _entry(2), parser) == "e2"
    finally:
        again.close()
