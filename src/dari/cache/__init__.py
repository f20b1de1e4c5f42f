"""The answer cache: exact and semantic lookup, scoped, checked for meaning, invalidated by
re-ingest and feedback (docs/en/cache.md)."""
