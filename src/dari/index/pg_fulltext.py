"""BM25 in PostgreSQL (`store.fulltext = "postgres"`): the lexical index kept in the store's own
server, so every dari process searches the same one and none keeps a tantivy index of its own.

PostgreSQL's own text search has no Korean parser and ranks without IDF, so dari does not use
it: each chunk is stored with the analyzer's terms (Korean morphemes, English stems: the same
terms tantivy gets) as a text array with their counts beside them, under a GIN index; document
frequencies and the collection's length live in two small tables kept in the same transaction.
A search takes the chunks holding any query term (GIN), scores them with BM25 as tantivy does
(k1 = 1.2, b = 0.75, idf = ln(1 + (N − df + 0.5) / (df + 0.5))) and filters ACL tags and
metadata tokens inside the query. Rows cascade away with their collection.

Writes are staged like tantivy's and land on `commit`, in one transaction: a crash before it
leaves the index as it was, and the ingest's recovery of pending files redoes them.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from dari.db.base import LOCK_FULLTEXT, Connection, Database
from dari.index.analyzer import Analyzer
from dari.index.bm25 import PUBLIC, TermSearch
from dari.index.store import IndexRow, Store

K1, B = 1.2, 0.75
_ANALYZE_AFTER = 1000  # rows added by one commit from which the table's statistics are renewed
_RARE = (0.01, 0.1, 1.0)  # MaxScore passes: terms in at most this share of the chunks first
_SCORE = f"""
SELECT c.chunk_id, sum(q.idf * t.tf * {K1 + 1} / (t.tf + {K1} * ({1 - B} + {B} * c.len / ?)))
FROM fulltext_chunks c
CROSS JOIN LATERAL unnest(c.terms, c.tfs) AS t(term, tf)
JOIN unnest(?::text[], ?::float8[]) AS q(term, idf) ON q.term = t.term
WHERE c.collection = ? AND c.terms && ?::text[] {{filters}}
GROUP BY c.chunk_id ORDER BY 2 DESC, c.chunk_id LIMIT ?"""


class PostgresTextIndex(TermSearch):
    """One collection's BM25 index in PostgreSQL; the same methods as `TantivyIndex`."""

    def __init__(
        self, db: Database, collection: str, analyzer: Analyzer, store: Store | None = None
    ) -> None:
        """`store`: where to build the index from when the collection has none here yet."""
        if db.dialect != "postgres":
            raise ValueError("PostgresTextIndex needs a PostgreSQL database")
        self._db = db
        self._store = store
        self._collection = collection
        self._analyzer = analyzer
        self._adds: list[IndexRow] = []
        self._deletes: list[str] = []
        self._clear = False

    # -- writes (staged, applied on commit) -------------------------------------------------
    def add(self, rows: Iterable[IndexRow]) -> None:
        self._adds.extend(rows)

    def delete_documents(self, doc_ids: Iterable[str]) -> None:
        self._deletes.extend(doc_ids)

    def clear(self) -> None:
        self._clear, self._adds, self._deletes = True, [], []

    def commit(self) -> None:
        if not (self._clear or self._adds or self._deletes):
            return
        adds, deletes, clear = self._adds, self._deletes, self._clear
        terms = self._analyzer.terms_many([row.text for row in adds]) if adds else []
        with self._db.transaction() as conn:
            self._lock(conn)
            if clear:
                for table in ("fulltext_chunks", "fulltext_terms", "fulltext_stats"):
                    conn.execute(f"DELETE FROM {table} WHERE collection = ?", (self._collection,))
            if deletes:
                gone = conn.execute(
                    "DELETE FROM fulltext_chunks WHERE collection = ? AND doc_id = ANY(?) "
                    "RETURNING terms, len",
                    (self._collection, sorted(set(deletes))),
                ).fetchall()
                self._count(conn, [(list(t), int(n)) for t, n in gone], -1)
            if adds:
                self._insert(conn, adds, terms)
            if len(adds) >= _ANALYZE_AFTER:  # a bulk load: fresh statistics for the planner
                conn.execute("ANALYZE fulltext_chunks")
        self._adds, self._deletes, self._clear = [], [], False

    def _lock(self, conn: Connection) -> None:
        """The collection's write lock until the transaction ends: one writer at a time, so
        counts stay exact and concurrent writers cannot deadlock on the terms' rows."""
        conn.execute(
            "SELECT pg_advisory_xact_lock(?, hashtext(?))", (LOCK_FULLTEXT, self._collection)
        )

    def _insert(self, conn: Connection, rows: list[IndexRow], terms: list[list[str]]) -> None:
        ids = [row.chunk_id for row in rows]
        there = {
            str(r[0])
            for r in conn.execute(
                "SELECT chunk_id FROM fulltext_chunks WHERE collection = ? AND chunk_id = ANY(?)",
                (self._collection, ids),
            ).fetchall()
        }  # a chunk already there (a repeated recovery) is neither added nor counted twice
        new: list[tuple[Any, ...]] = []
        counted: list[tuple[list[str], int]] = []
        for row, toks in zip(rows, terms, strict=True):
            if row.chunk_id in there:
                continue
            there.add(row.chunk_id)
            tf = Counter(toks)
            unique = sorted(tf)
            acl = list(row.acl) or [PUBLIC]
            tfs = [tf[t] for t in unique]
            new.append(
                (self._collection, row.chunk_id, row.doc_id, acl, list(row.meta), unique, tfs,
                 len(toks))
            )  # fmt: skip
            counted.append((unique, len(toks)))
        if new:
            conn.executemany(
                "INSERT INTO fulltext_chunks(collection, chunk_id, doc_id, acl, meta, terms, "
                "tfs, len) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                new,
            )
        self._count(conn, counted, 1)

    def _count(self, conn: Connection, rows: list[tuple[list[str], int]], sign: int) -> None:
        """Document frequencies and the collection's size, moved by `sign` for these rows.
        Terms are written in sorted order, so concurrent writers lock them in the same order."""
        if not rows:
            return
        df = Counter(t for terms, _ in rows for t in terms)
        names = sorted(df)
        conn.execute(
            "INSERT INTO fulltext_terms(collection, term, df) "
            "SELECT ?, term, df FROM unnest(?::text[], ?::bigint[]) AS u(term, df) "
            "ON CONFLICT (collection, term) DO UPDATE SET df = fulltext_terms.df + excluded.df",
            (self._collection, names, [sign * df[t] for t in names]),
        )
        conn.execute(
            "INSERT INTO fulltext_stats(collection, docs, length) VALUES (?, ?, ?) "
            "ON CONFLICT (collection) DO UPDATE SET docs = fulltext_stats.docs + excluded.docs, "
            "length = fulltext_stats.length + excluded.length",
            (self._collection, sign * len(rows), sign * sum(n for _, n in rows)),
        )
        if sign < 0:
            conn.execute(
                "DELETE FROM fulltext_terms WHERE collection = ? AND term = ANY(?) AND df <= 0",
                (self._collection, names),
            )

    def close(self) -> None:
        """Nothing held: the connections belong to the store."""

    def build_if_missing(self) -> bool:
        """Index the collection's ready documents when it has no index here (a collection moved
        by `dari migrate`, replaced, or indexed by tantivy until now). True when it built. The
        check and the build hold the collection's write lock, so an ingest committing at the
        same time is neither lost nor counted twice."""
        if self._store is None:
            return False
        with self._db.transaction() as conn:
            self._lock(conn)
            if conn.execute(
                "SELECT 1 FROM fulltext_stats WHERE collection = ?", (self._collection,)
            ).fetchone():
                return False
            rows = self._store.chunks_for_docs(self._store.ready_doc_ids(self._collection))
            if not rows:
                return False
            self._insert(conn, rows, self._analyzer.terms_many([row.text for row in rows]))
            conn.execute("ANALYZE fulltext_chunks")
        return True

    # -- reads ------------------------------------------------------------------------------
    def search_terms(
        self,
        terms: Sequence[str],
        k: int,
        acl: Sequence[str] | None = None,
        where: Sequence[str] = (),
    ) -> list[tuple[str, float]]:
        """Top k chunks by BM25 for analyzer terms, among those the ACL tags may read and whose
        document has every `key=value` token in `where`."""
        terms = list(dict.fromkeys(terms))
        if not terms or k <= 0:
            return []
        stats = self._stats()
        if not stats and self.build_if_missing():  # its rows went (`dari migrate --replace`)
            stats = self._stats()
        if not stats or not stats[0][0]:
            return []
        n, length = int(stats[0][0]), int(stats[0][1])
        df = dict(
            self._db.rows(
                "SELECT term, df FROM fulltext_terms WHERE collection = ? AND term = ANY(?)",
                (self._collection, terms),
            )
        )
        known = [t for t in terms if df.get(t)]
        if not known:
            return []
        idf = {t: math.log(1 + (n - df[t] + 0.5) / (df[t] + 0.5)) for t in known}
        filters, extra = "", list[Any]()
        if acl is not None:
            filters, extra = filters + " AND c.acl && ?::text[]", [*extra, [PUBLIC, *acl]]
        if where:
            filters, extra = filters + " AND c.meta @> ?::text[]", [*extra, list(where)]
        sql = _SCORE.format(filters=filters)
        weights = [idf[t] for t in known]
        # MaxScore: a term adds at most idf × (k1 + 1) to a chunk's score. Score first only the
        # chunks holding a rarer term; the top k are final when the common terms' bounds
        # together stay below the k-th score found (a chunk with common terms alone cannot
        # reach it). Else widen the set, at last to every term: the same results as one pass.
        by_rarity = sorted(known, key=lambda t: df[t])
        for share in _RARE:
            rare = [t for t in by_rarity if df[t] <= share * n] or by_rarity[:1]
            rest = sum(idf[t] for t in known if t not in rare) * (K1 + 1)
            rows = self._db.rows(
                sql, (length / n, known, weights, self._collection, rare, *extra, k)
            )
            if len(rare) == len(known) or (len(rows) == k and float(rows[-1][1]) > rest):
                break
        return [(str(c), float(s)) for c, s in rows]

    def _stats(self) -> list[tuple[Any, ...]]:
        return self._db.rows(
            "SELECT docs, length FROM fulltext_stats WHERE collection = ?", (self._collection,)
        )

    def num_docs(self) -> int:
        stats = self._stats()
        return int(stats[0][0]) if stats else 0
