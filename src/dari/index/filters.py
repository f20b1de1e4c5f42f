"""Metadata filters and ACL, as applied inside both searches (never after them).

A document carries ACL tags (readable by users holding any of them; none = everyone) and metadata
tokens `key=value` (its format, language and short metadata fields). A query may ask for a set of
`key=value` pairs, all of which must hold.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping

from dari.errors import InputError

# Per-file facts and row ids are not filters: they would make every document a group of its own.
_NOT_FILTERABLE = frozenset({"id", "_id", "doc_id", "mtime", "size_bytes", "encoding"})
_MAX_VALUE = 64


def meta_tokens(fmt: str, lang: str, metadata: Mapping[str, str]) -> tuple[str, ...]:
    tokens = {f"format={fmt}", f"lang={lang}"}
    for key, value in metadata.items():
        text = str(value)
        if key not in _NOT_FILTERABLE and text and len(text) <= _MAX_VALUE:
            tokens.add(f"{key}={text}")
    return tuple(sorted(tokens))


def filter_tokens(filters: Mapping[str, str] | None) -> list[str]:
    return sorted(f"{k}={v}" for k, v in (filters or {}).items())


def parse_filters(items: Iterable[str]) -> dict[str, str]:
    """`["lang=ko", "format=pdf"]` → {"lang": "ko", "format": "pdf"}; a clear error otherwise."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise InputError(
                f"invalid filter '{item}'", "write filters as KEY=VALUE, e.g. --filter lang=ko"
            )
        out[key.strip()] = value.strip()
    return out


def visible(
    acl: Collection[str], meta: Collection[str], user_acl: Collection[str] | None,
    wanted: Collection[str],
) -> bool:  # fmt: skip
    """Whether a document with these tags passes a user's ACL and the query's filters."""
    if user_acl is not None and acl and not set(acl) & set(user_acl):
        return False
    return set(wanted) <= set(meta)
