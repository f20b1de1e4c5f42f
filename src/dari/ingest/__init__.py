"""Ingestion: files on disk to documents, then sections and chunks in the index."""
