"""What a cached answer is keyed by: the normalised question within a scope. The scope holds
everything else that shaped the answer, so an answer is never served across it."""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

from dari.types import GenerationParams

_SPACE = re.compile(r"\s+")
_TRAILING = re.compile(r"[\s?？!！.。]+$")


def normalise(question: str) -> str:
    """The exact-match form of a question: NFKC, case-folded, spaces collapsed, no trailing
    punctuation ("How do I install dari?" = "how do i install dari")."""
    text = unicodedata.normalize("NFKC", question).casefold()
    return _TRAILING.sub("", _SPACE.sub(" ", text).strip())


@dataclass(frozen=True)
class Scope:
    """Everything besides the question that an answer depends on."""

    collection: str
    index_version: str  # the retrieval configuration, plus the write generation if asked for
    prompt_version: str
    model: str
    params: GenerationParams
    lang: str
    acl: tuple[str, ...] | None  # the reader's tags; None = no ACL check (an operator)
    tenant: str = ""
    filters: tuple[tuple[str, str], ...] = ()
    schema: str = ""  # hash of a requested JSON schema
    top_k: int | None = None  # sources given to the model, when the request sets it

    @property
    def key(self) -> str:
        body = asdict(self)
        body["acl"] = None if self.acl is None else sorted(set(self.acl))
        raw = json.dumps(body, sort_keys=True, ensure_ascii=False, default=str)
        return hashlib.sha256(raw.encode()).hexdigest()[:32]


def make_scope(
    collection: str,
    index_version: str,
    prompt_version: str,
    model: str,
    params: GenerationParams,
    lang: str,
    acl: Sequence[str] | None,
    tenant: str = "",
    filters: Mapping[str, str] | None = None,
    schema: Mapping[str, object] | None = None,
    top_k: int | None = None,
) -> Scope:
    schema_hash = (
        hashlib.sha256(json.dumps(schema, sort_keys=True).encode()).hexdigest()[:16]
        if schema is not None
        else ""
    )
    return Scope(
        collection,
        index_version,
        prompt_version,
        model,
        params,
        lang,
        None if acl is None else tuple(sorted(set(acl))),
        tenant,
        tuple(sorted((filters or {}).items())),
        schema_hash,
        top_k,
    )
