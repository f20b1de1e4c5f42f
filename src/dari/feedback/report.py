"""How answers are received: the feedback rate, the share of likes per collection and per prompt
version, the most disliked questions, and how often readers copied, regenerated or rephrased."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass

from dari.feedback.dedup import normalise
from dari.feedback.store import FeedbackStore, Rated, Signal

TOP_DISLIKED = 10


@dataclass(frozen=True)
class Share:
    """Likes (👍, approvals, ratings 4–5) against dislikes (👎, ratings 1–2, corrections)."""

    name: str
    up: int
    down: int

    @property
    def share(self) -> float | None:
        votes = self.up + self.down
        return self.up / votes if votes else None


@dataclass(frozen=True)
class Disliked:
    question: str  # redacted, as the trace keeps it
    collection: str
    down: int
    up: int
    traces: int  # how many times it was asked and got feedback


@dataclass(frozen=True)
class FeedbackReport:
    traces: int  # answers traced
    with_feedback: int  # of which received any feedback, explicit or implicit
    with_explicit: int
    ratings: int
    mean_rating: float | None
    by_collection: tuple[Share, ...]
    by_prompt_version: tuple[Share, ...]
    most_disliked: tuple[Disliked, ...]
    signals: Mapping[str, int]  # copy, regenerate, rephrase → count

    @property
    def feedback_rate(self) -> float:
        return self.with_feedback / self.traces if self.traces else 0.0

    @property
    def explicit_rate(self) -> float:
        return self.with_explicit / self.traces if self.traces else 0.0

    def to_dict(self) -> dict[str, object]:
        """The same figures as the table, with rates and shares computed, for --json."""
        data = asdict(self)
        data["feedback_rate"] = round(self.feedback_rate, 4)
        data["explicit_rate"] = round(self.explicit_rate, 4)
        for key in ("by_collection", "by_prompt_version"):
            data[key] = [_share_dict(s) for s in getattr(self, key)]
        return data


def report(
    feedback: FeedbackStore, collection: str | None = None, top: int = TOP_DISLIKED
) -> FeedbackReport:
    """The report over every trace (of one collection) and the feedback it received."""
    return summarise(feedback.trace_count(collection), feedback.rated(collection), top)


def summarise(traces: int, rated: Sequence[Rated], top: int = TOP_DISLIKED) -> FeedbackReport:
    """The report's figures from the trace count and the traces that received feedback."""
    ratings = [n for r in rated for n in r.ratings]
    signals: Counter[str] = Counter({s.value: 0 for s in Signal})
    for r in rated:
        signals.update(r.signals)
    return FeedbackReport(
        traces=traces,
        with_feedback=len(rated),
        with_explicit=sum(r.explicit for r in rated),
        ratings=len(ratings),
        mean_rating=round(sum(ratings) / len(ratings), 3) if ratings else None,
        by_collection=_shares(rated, lambda r: r.collection),
        by_prompt_version=_shares(rated, lambda r: r.prompt_version),
        most_disliked=_most_disliked(rated, top),
        signals=dict(signals),
    )


def _shares(rated: Sequence[Rated], group: Callable[[Rated], str]) -> tuple[Share, ...]:
    """Likes and dislikes summed per group, for groups with any explicit feedback."""
    up: Counter[str] = Counter()
    down: Counter[str] = Counter()
    for r in (r for r in rated if r.explicit):
        up[group(r)] += r.up
        down[group(r)] += r.down
    names = sorted({group(r) for r in rated if r.explicit})
    return tuple(Share(name, up[name], down[name]) for name in names)


def _most_disliked(rated: Sequence[Rated], top: int) -> tuple[Disliked, ...]:
    """Questions by how many dislikes they got, across every time they were asked."""
    groups: dict[tuple[str, str], list[Rated]] = defaultdict(list)
    for r in rated:
        groups[(r.collection, normalise(r.question))].append(r)
    found = [
        Disliked(
            question=group[-1].question,
            collection=group[-1].collection,
            down=sum(r.down for r in group),
            up=sum(r.up for r in group),
            traces=len(group),
        )
        for group in groups.values()
    ]
    found = [d for d in found if d.down]
    found.sort(key=lambda d: (-d.down, d.up, d.question))
    return tuple(found[: max(0, top)])


def _share_dict(s: Share) -> dict[str, object]:
    share = s.share
    rounded = None if share is None else round(share, 4)
    return {"name": s.name, "up": s.up, "down": s.down, "share": rounded}
