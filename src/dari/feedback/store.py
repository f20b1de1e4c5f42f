"""Feedback on answers, kept in the store next to the traces it judges.

Explicit feedback is a 👍/👎, a 1–5 rating, a comment, a corrected answer or an operator's approval;
implicit signals are what a reader did with the answer (copied it, regenerated it, rephrased the
question). Comments and corrections are redacted of personal data before they are stored, as the
trace's question is.
"""

from __future__ import annotations

import json
import time
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import cast

from dari.errors import InputError, UnknownTrace
from dari.guards.pii import find_pii, redact
from dari.index.store import Store

MAX_TEXT_CHARS = 8000  # a comment or correction longer than this is pasted material, not feedback
_COLUMNS = (
    "f.id, f.trace_id, t.collection, f.kind, f.thumb, f.rating, f.comment, f.correction, "
    "f.approved, f.created_at"
)


class Thumb(StrEnum):
    UP = "up"
    DOWN = "down"


class Signal(StrEnum):
    """What a reader did with an answer, without saying what they thought of it."""

    COPY = "copy"
    REGENERATE = "regenerate"
    REPHRASE = "rephrase"  # asked again in other words right after


class Kind(StrEnum):
    """What a piece of feedback mainly is: the first that applies of approve, up/down, rating,
    correction, comment; or the implicit signal."""

    APPROVE = "approve"
    UP = "up"
    DOWN = "down"
    RATING = "rating"
    CORRECTION = "correction"
    COMMENT = "comment"
    COPY = "copy"
    REGENERATE = "regenerate"
    REPHRASE = "rephrase"


SIGNAL_KINDS = frozenset({Kind.COPY, Kind.REGENERATE, Kind.REPHRASE})


@dataclass(frozen=True)
class Feedback:
    """One recorded piece of feedback on one trace."""

    id: int
    trace_id: str
    collection: str
    kind: Kind
    thumb: Thumb | None = None
    rating: int | None = None
    comment: str = ""
    correction: str = ""  # the answer as it should have been (redacted)
    approved: bool = False  # an operator vouched for the answer
    created_at: float = 0.0

    @property
    def implicit(self) -> bool:
        return self.kind in SIGNAL_KINDS

    @property
    def positive(self) -> bool:
        """The answer was liked: 👍, approved, or rated 4–5 (a cache may keep it)."""
        return self.approved or self.thumb == Thumb.UP or (self.rating or 0) >= 4

    @property
    def negative(self) -> bool:
        """The answer was disliked: 👎, rated 1–2, or corrected (a cache should drop it)."""
        low = self.rating is not None and self.rating <= 2
        return self.thumb == Thumb.DOWN or low or bool(self.correction)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready, with the two judgements a caller reacts to (CLI --json and the API)."""
        return {**vars(self), "positive": self.positive, "negative": self.negative}


@dataclass(frozen=True)
class SourceRef:
    """A source an answer was given, as the trace keeps it (no document text)."""

    source: str
    title: str
    chunk_id: str
    doc_id: str


@dataclass(frozen=True)
class Rated:
    """One trace with everything its feedback says, for exports and reports."""

    trace_id: str
    collection: str
    question: str  # as the trace keeps it: personal data redacted
    answer: str  # as shown to the user
    outcome: str
    prompt_version: str
    sources: tuple[SourceRef, ...]
    prompt: tuple[str, str] | None  # (system, user message); None when no model was asked
    created_at: float
    up: int = 0  # positive explicit feedback (👍, approval, rating 4–5)
    down: int = 0  # negative explicit feedback (👎, rating 1–2, correction)
    ratings: tuple[int, ...] = ()
    approved: bool = False
    correction: str = ""  # the latest correction
    signals: Mapping[str, int] = field(default_factory=dict)

    @property
    def explicit(self) -> bool:
        return bool(self.up or self.down or self.ratings or self.approved or self.correction)

    @property
    def good(self) -> bool:
        """Approved by an operator, or liked with no dislike."""
        return self.approved or (self.up > 0 and self.down == 0)

    @property
    def bad(self) -> bool:
        """Disliked with no like, and not approved."""
        return not self.approved and self.down > 0 and self.up == 0

    @property
    def target(self) -> str:
        """The answer to learn from: the correction when there is one (it always wins)."""
        return self.correction or self.answer


class FeedbackStore:
    """Records feedback against trace ids and reads it back, in the store next to the traces."""

    def __init__(self, store: Store) -> None:
        self._store = store  # its table comes from the store's migrations (dari.db.schema)

    def add(
        self,
        trace_id: str,
        thumb: Thumb | str | None = None,
        rating: int | None = None,
        comment: str | None = None,
        correction: str | None = None,
        approve: bool = False,
    ) -> Feedback:
        """Record explicit feedback; returns it as stored, with its kind, so a caller (the answer
        cache) can react: promote on `positive`, evict on `negative`."""
        thumb = _thumb(thumb)
        note, fixed = _text(comment, "comment"), _text(correction, "correction")
        _check(trace_id, thumb, rating, note, fixed, approve, comment is not None)
        kind = _kind(thumb, rating, fixed, approve)
        return self._insert(trace_id, kind, thumb, rating, note, fixed, approve)

    def signal(self, trace_id: str, signal: Signal | str) -> Feedback:
        """Record an implicit signal (copy, regenerate, rephrase) on a trace."""
        try:
            kind = Kind(Signal(signal).value)
        except ValueError:
            choices = ", ".join(s.value for s in Signal)
            raise InputError(f"unknown signal '{signal}'", f"use one of: {choices}") from None
        return self._insert(trace_id, kind, None, None, "", "", False)

    def _insert(
        self,
        trace_id: str,
        kind: Kind,
        thumb: Thumb | None,
        rating: int | None,
        comment: str,
        correction: str,
        approved: bool,
    ) -> Feedback:
        collection = self._collection_of(trace_id)
        now = time.time()
        with self._store.transaction() as db:
            (row_id,) = db.execute(
                "INSERT INTO feedback(trace_id, kind, thumb, rating, comment, correction, "
                "approved, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (trace_id, kind.value, thumb, rating, comment, correction, int(approved), now),
            ).fetchone()
        return Feedback(
            row_id, trace_id, collection, kind, thumb, rating, comment, correction, approved, now
        )

    def _collection_of(self, trace_id: str) -> str:
        if not trace_id.strip():
            raise InputError(
                "the trace id is empty", "give the trace_id printed by dari ask --json"
            )
        found = self._store.rows("SELECT collection FROM traces WHERE id = ?", (trace_id,))
        if not found:
            raise UnknownTrace(trace_id)
        return str(found[0][0])

    def entries(
        self,
        collection: str | None = None,
        trace_id: str | None = None,
        limit: int | None = None,
    ) -> list[Feedback]:
        """Recorded feedback, newest first, optionally of one collection or one trace."""
        clauses, args = _filters(collection, trace_id)
        sql = f"SELECT {_COLUMNS} FROM feedback f JOIN traces t ON t.id = f.trace_id"
        sql += "".join(f" {'AND' if i else 'WHERE'} {c}" for i, c in enumerate(clauses))
        sql += " ORDER BY f.id DESC"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(max(0, limit))
        return [_feedback(row) for row in self._store.rows(sql, args)]

    def trace_count(self, collection: str | None = None) -> int:
        """How many answers were traced (the denominator of the feedback rate)."""
        clauses, args = _filters(collection, None)
        where = f" WHERE {clauses[0]}" if clauses else ""
        (count,) = self._store.rows(f"SELECT count(*) FROM traces t{where}", args)[0]
        return cast(int, count)

    def rated(self, collection: str | None = None) -> list[Rated]:
        """Every trace that received feedback, oldest first, with its feedback summed up."""
        by_trace: dict[str, list[Feedback]] = defaultdict(list)
        for item in reversed(self.entries(collection)):
            by_trace[item.trace_id].append(item)
        if not by_trace:
            return []
        clauses, args = _filters(collection, None)
        rows = self._store.rows(
            "SELECT t.id, t.created_at, t.body, p.system, p.data FROM traces t "
            "LEFT JOIN trace_prompts p ON p.trace_id = t.id "
            "WHERE t.id IN (SELECT trace_id FROM feedback)"
            + "".join(f" AND {c}" for c in clauses)
            + " ORDER BY t.created_at, t.id",
            args,
        )
        return [_rated(row, by_trace[str(row[0])]) for row in rows]


def _text(value: str | None, what: str) -> str:
    """A comment or correction trimmed, checked for length, and redacted of personal data."""
    text = (value or "").strip()
    if len(text) > MAX_TEXT_CHARS:
        raise InputError(
            f"the {what} is {len(text)} characters long (limit {MAX_TEXT_CHARS})", "shorten it"
        )
    return redact(text, find_pii(text))


def _check(
    trace_id: str,
    thumb: Thumb | None,
    rating: int | None,
    comment: str,
    correction: str,
    approve: bool,
    comment_given: bool,
) -> None:
    """Refuse feedback that says nothing or contradicts itself."""
    if rating is not None and not 1 <= rating <= 5:
        raise InputError(f"the rating must be 1 to 5, not {rating}", "e.g. --rating 4")
    if not (thumb or rating or comment or correction or approve):
        empty = ": the comment is empty" if comment_given else ""
        raise InputError(
            f"nothing to record for trace '{trace_id}'{empty}",
            "give --up, --down, --rating N, --comment TEXT, --correction TEXT or --approve",
        )
    liked = approve or thumb == Thumb.UP or (rating or 0) >= 4
    disliked = thumb == Thumb.DOWN or (rating is not None and rating <= 2)
    if liked and disliked:
        raise InputError(
            f"the feedback for trace '{trace_id}' both likes and dislikes the answer",
            "record one opinion at a time: --up, --approve and ratings 4-5 like it; "
            "--down and ratings 1-2 dislike it",
        )
    if liked and correction:
        raise InputError(
            f"a correction says the answer to trace '{trace_id}' was wrong, so it cannot "
            "also like or approve it",
            "record the correction alone or with --down",
        )


def _kind(thumb: Thumb | None, rating: int | None, correction: str, approve: bool) -> Kind:
    if approve:
        return Kind.APPROVE
    if thumb is not None:
        return Kind(thumb.value)
    if rating is not None:
        return Kind.RATING
    return Kind.CORRECTION if correction else Kind.COMMENT


def _thumb(value: Thumb | str | None) -> Thumb | None:
    try:
        return Thumb(value) if value is not None else None
    except ValueError:
        raise InputError(f"unknown thumb '{value}'", "use up or down") from None


def _filters(collection: str | None, trace_id: str | None) -> tuple[list[str], list[object]]:
    """SQL conditions on the traces table (aliased t) and their arguments."""
    clauses: list[str] = []
    args: list[object] = []
    if collection is not None:
        clauses.append("t.collection = ?")
        args.append(collection)
    if trace_id is not None:
        clauses.append("t.id = ?")
        args.append(trace_id)
    return clauses, args


def _feedback(row: Sequence[object]) -> Feedback:
    fid, trace_id, collection, kind, thumb, rating, comment, correction, approved, at = cast(
        tuple[int, str, str, str, str | None, int | None, str, str, int, float], row
    )
    return Feedback(
        fid,
        trace_id,
        collection,
        Kind(kind),
        Thumb(thumb) if thumb else None,
        rating,
        comment,
        correction,
        bool(approved),
        at,
    )


def _rated(row: Sequence[object], items: Sequence[Feedback]) -> Rated:
    trace_id, created_at, body_json, system, data = cast(
        tuple[str, float, str, str | None, str | None], row
    )
    body = json.loads(body_json)
    explicit = [f for f in items if not f.implicit]
    corrections = [f.correction for f in explicit if f.correction]
    return Rated(
        trace_id=trace_id,
        collection=str(body.get("collection", "")),
        question=str(body.get("query", "")),
        answer=str(body.get("answer", "")),
        outcome=str(body.get("outcome", "")),
        prompt_version=str(body.get("prompt_version", "")),
        sources=tuple(_source(h) for h in body.get("hits", ())),
        prompt=(system, data) if system is not None and data is not None else None,
        created_at=created_at,
        up=sum(f.positive for f in explicit),
        down=sum(f.negative for f in explicit),
        ratings=tuple(f.rating for f in explicit if f.rating is not None),
        approved=any(f.approved for f in explicit),
        correction=corrections[-1] if corrections else "",
        signals=dict(Counter(f.kind.value for f in items if f.implicit)),
    )


def _source(hit: Mapping[str, object]) -> SourceRef:
    return SourceRef(
        source=str(hit.get("source", "")),
        title=str(hit.get("title", "")),
        chunk_id=str(hit.get("chunk_id", "")),
        doc_id=str(hit.get("doc_id", "")),
    )
