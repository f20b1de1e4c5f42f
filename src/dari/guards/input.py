"""Guards on the question: prompt injection and jailbreaks, personal data, names, denied topics."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from dari.guards import names, normalise, pii, rules
from dari.guards.base import CLEAN, Finding, GuardContext
from dari.guards.judge import InjectionJudge
from dari.guards.linear import LinearModel
from dari.guards.stacked import StackedModel
from dari.types import Span, Stage


class InjectionGuard:
    """Rules (named, exact) and a learned linear model over n-grams, joined by the question's
    sentence embedding when the model was trained with one and an embedder is at hand. Every
    view of the text is scored: as typed, with look-alikes folded, and each decoded payload.
    With a `judge`, an LLM's word decides the texts whose score lies within `judge_band` logits
    of the threshold (all texts when the band is None); named rules that fire stay decisive."""

    name = "injection"
    stage = Stage.INPUT

    def __init__(
        self,
        ngram: LinearModel,
        joint: Mapping[str, LinearModel | StackedModel] | None = None,
        threshold: float | None = None,
        rule_set: tuple[rules.Rule, ...] = rules.INJECTION_RULES,
        judge: InjectionJudge | None = None,
        judge_band: float | None = None,
    ) -> None:
        self._ngram = ngram
        self._joint = dict(joint or {})  # lang (or "default") → model that reads the embedding
        self._threshold = threshold  # a probability; None = the model card's, per language
        self._rules = rule_set
        self._judge, self._band = judge, judge_band

    def _limit(self, model: LinearModel | StackedModel, lang: str) -> float:
        """The decision threshold as a logit."""
        if self._threshold is None:
            return model.threshold(lang)
        p = min(max(self._threshold, 1e-6), 1 - 1e-6)
        return math.log(p / (1 - p))

    def _flagged(self, model: LinearModel | StackedModel, decision: float, lang: str) -> bool:
        if self._threshold is not None:
            return LinearModel.probability(decision) >= self._threshold
        return decision > model.threshold(lang)

    def check(self, text: str, ctx: GuardContext) -> Finding:
        if not text.strip():
            return CLEAN
        seen = normalise.views(text)
        fired = [r for view in seen for r in rules.matches(view, self._rules)]
        joint = self._joint.get(ctx.lang, self._joint.get("default"))
        embedding = ctx.embedding(text) if joint is not None else None
        model: LinearModel | StackedModel = (
            joint if joint is not None and embedding is not None else self._ngram
        )
        best = model.decision(seen[0], embedding)
        flagged = self._flagged(model, best, ctx.lang)
        for payload in seen[1:]:  # decoded Base64/%-escapes: the n-gram model alone
            d = self._ngram.decision(payload)
            if self._flagged(self._ngram, d, ctx.lang):
                flagged, best = True, max(best, d)
        score = LinearModel.probability(best)
        strong = [r for r in fired if r.score >= 0.9]
        if strong:
            flagged, score = True, max(score, strong[0].score)
        elif self._judge is not None and (
            self._band is None or abs(best - self._limit(model, ctx.lang)) <= self._band
        ):
            weak = fired[0].name if fired else ""
            return self._judged(self._judge, text, flagged, score, model, weak)
        if not flagged:
            return Finding(False, score, fired[0].name if fired else "")
        via = strong[0].name if strong else f"classifier ({model.card.get('name', 'model')})"
        encoded = " in an encoded payload" if len(seen) > 1 and not strong else ""
        return Finding(
            True,
            score,
            strong[0].name if strong else "classifier",
            f"the text reads as a prompt injection or jailbreak attempt{encoded} ({via})",
        )

    @staticmethod
    def _judged(
        judge: InjectionJudge,
        text: str,
        flagged: bool,
        score: float,
        model: LinearModel | StackedModel,
        weak: str,
    ) -> Finding:
        answer = judge.ask(text)
        name = judge.name
        classifier = f"classifier ({model.card.get('name', 'model')}) score {score:.2f}"
        if answer.attack is None:  # the classifier's verdict stands
            why = (
                f"the LLM judge ({name}) could not decide: {answer.raw!r}; the {classifier} decided"
            )
            return Finding(flagged, score, "classifier" if flagged else weak, why)
        if answer.attack:
            why = (
                "the text reads as a prompt injection or jailbreak attempt "
                f"(LLM judge {name}: ATTACK in {answer.ms:.0f} ms; {classifier})"
            )
            return Finding(True, score, "judge", why)
        why = f"the LLM judge ({name}) said SAFE in {answer.ms:.0f} ms; {classifier}"
        return Finding(False, score, "judge", why)


def _kinds(found: Sequence[pii.PIIMatch]) -> str:
    return ", ".join(f"{k} x{n}" for k, n in sorted(Counter(m.kind for m in found).items()))


def pii_finding(text: str, found: Sequence[pii.PIIMatch], what: str) -> Finding:
    if not found:
        return CLEAN
    return Finding(
        True,
        max(m.score for m in found),
        ",".join(sorted({m.rule for m in found})),
        f"{what}: {_kinds(found)}",
        tuple(Span(m.kind, m.start, m.end) for m in found),
        pii.redact(text, found),
    )


class PIIGuard:
    """Structured personal data (phone, e-mail, RRN, card, account, passport, IP…) by pattern and
    checksum; redaction replaces each with its kind, e.g. "[PHONE]"."""

    name = "pii"
    stage = Stage.INPUT

    def check(self, text: str, ctx: GuardContext) -> Finding:
        return pii_finding(text, pii.find_pii(text), "personal data in the question")


class NamesGuard:
    """Person names (Korean by Kiwi's proper nouns, English after a title or label)."""

    name = "names"
    stage = Stage.INPUT

    def __init__(self, kiwi: Callable[[], Any]) -> None:
        self._kiwi = kiwi

    def check(self, text: str, ctx: GuardContext) -> Finding:
        return pii_finding(text, names.find_names(text, self._kiwi()), "names in the question")


class TopicGuard:
    """Topics the operator denied (`guards.input.deny_topics`, regular expressions)."""

    name = "topics"
    stage = Stage.INPUT

    def __init__(self, patterns: Sequence[str]) -> None:
        self._patterns = [(p, re.compile(p, re.I)) for p in patterns]

    def check(self, text: str, ctx: GuardContext) -> Finding:
        folded = normalise.fold(text)
        for source, pattern in self._patterns:
            if pattern.search(folded):
                return Finding(
                    True, 1.0, source, "the question is about a topic this service does not discuss"
                )
        return CLEAN
