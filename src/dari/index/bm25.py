"""BM25 over chunks with tantivy, fed analyzer terms (Korean morphemes, English stems)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from dari.errors import StoreError
from dari.index.analyzer import Analyzer
from dari.index.store import IndexRow

PUBLIC = "__public__"  # ACL token of documents that everyone may read


class SchemaChanged(StoreError):
    """The index on disk was written by an older dari; it is rebuilt from the store."""


class TermSearch:
    """`search` of a text index: the query's analyzer terms, once each, to `search_terms`."""

    _analyzer: Analyzer

    def search(
        self, query: str, k: int, acl: Sequence[str] | None = None, where: Sequence[str] = ()
    ) -> list[tuple[str, float]]:
        terms = list(dict.fromkeys(self._analyzer.terms(query)))
        return self.search_terms(terms, k, acl, where)

    def search_terms(
        self,
        terms: Sequence[str],
        k: int,
        acl: Sequence[str] | None = None,
        where: Sequence[str] = (),
    ) -> list[tuple[str, float]]:
        raise NotImplementedError


class TantivyIndex(TermSearch):
    """One collection's BM25 index on disk. Writes are staged and become visible on `commit`."""

    def __init__(self, path: Path, analyzer: Analyzer) -> None:
        import tantivy

        self._tantivy = tantivy
        self._analyzer = analyzer
        builder = tantivy.SchemaBuilder()
        builder.add_text_field("chunk_id", stored=True, tokenizer_name="raw")
        builder.add_text_field("doc_id", stored=False, tokenizer_name="raw")
        builder.add_text_field("acl", stored=False, tokenizer_name="raw", index_option="basic")
        builder.add_text_field("meta", stored=False, tokenizer_name="raw", index_option="basic")
        builder.add_text_field("body", stored=False, tokenizer_name="whitespace")
        self._schema = builder.build()
        try:
            path.mkdir(parents=True, exist_ok=True)
            self._index = tantivy.Index(self._schema, path=str(path), reuse=True)
        except ValueError as exc:
            if "schema does not match" in str(exc):
                raise SchemaChanged(f"the BM25 index at {path} has an older schema") from exc
            raise StoreError(
                f"cannot open the BM25 index at {path}: {exc}",
                "delete that folder and re-ingest the collection to rebuild it",
            ) from exc
        except OSError as exc:
            raise StoreError(
                f"cannot open the BM25 index at {path}: {exc}",
                "delete that folder and re-ingest the collection to rebuild it",
            ) from exc
        self._writer: Any = None

    def _w(self) -> Any:
        if self._writer is None:
            try:
                self._writer = self._index.writer(heap_size=64_000_000, num_threads=1)
            except ValueError as exc:
                raise StoreError(
                    f"the BM25 index is locked by another writer: {exc}",
                    "wait for the other `dari ingest` to finish",
                ) from exc
        return self._writer

    def add(self, rows: Iterable[IndexRow]) -> None:
        rows = list(rows)
        terms = self._analyzer.terms_many([row.text for row in rows])
        writer = self._w()
        for row, toks in zip(rows, terms, strict=True):
            doc = self._tantivy.Document()
            doc.add_text("chunk_id", row.chunk_id)
            doc.add_text("doc_id", row.doc_id)
            for tag in row.acl or [PUBLIC]:
                doc.add_text("acl", tag)
            for token in row.meta:
                doc.add_text("meta", token)
            doc.add_text("body", " ".join(toks))
            writer.add_document(doc)

    def delete_documents(self, doc_ids: Iterable[str]) -> None:
        writer = self._w()
        for doc_id in doc_ids:
            writer.delete_documents_by_term("doc_id", doc_id)

    def clear(self) -> None:
        """Delete every chunk (visible on `commit`)."""
        self._w().delete_all_documents()

    def commit(self) -> None:
        if self._writer is not None:
            try:
                self._writer.commit()
            except ValueError as exc:
                raise StoreError(
                    f"could not commit the BM25 index: {exc}",
                    "free disk space and run the same command again",
                ) from exc

    def close(self) -> None:
        if self._writer is not None:
            self._writer.wait_merging_threads()
            self._writer = None

    def search_terms(
        self,
        terms: Sequence[str],
        k: int,
        acl: Sequence[str] | None = None,
        where: Sequence[str] = (),
    ) -> list[tuple[str, float]]:
        """Top k chunks for analyzer terms, among those the ACL tags may read and whose
        document has every `key=value` token in `where`."""
        if not terms:
            return []
        q = self._tantivy.Query
        occur = self._tantivy.Occur
        body = q.boolean_query(
            [(occur.Should, q.term_query(self._schema, "body", t)) for t in terms]
        )
        if acl is not None:
            # A filter, not a scorer: zero weight keeps BM25 scores comparable across users.
            allowed = q.const_score_query(
                q.term_set_query(self._schema, "acl", [PUBLIC, *acl]), 0.0
            )
            body = q.boolean_query([(occur.Must, body), (occur.Must, allowed)])
        if where:
            must = [(occur.Must, q.term_query(self._schema, "meta", t)) for t in where]
            body = q.boolean_query(
                [(occur.Must, body), (occur.Must, q.const_score_query(q.boolean_query(must), 0.0))]
            )
        self._index.reload()
        searcher = self._index.searcher()
        result = searcher.search(body, limit=k)
        return [(searcher.doc(addr)["chunk_id"][0], float(score)) for score, addr in result.hits]

    def num_docs(self) -> int:
        self._index.reload()
        return int(self._index.searcher().num_docs)
