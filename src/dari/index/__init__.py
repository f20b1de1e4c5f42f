"""Storing and indexing: SQLite store, BM25 (tantivy), vectors, embedders, the text analyzer."""
