"""The context guard: instructions aimed at the model inside a retrieved source (indirect prompt
injection), found line by line so that neutralising removes the payload and keeps the facts."""

from __future__ import annotations

import re

from dari.guards import normalise, rules
from dari.guards.base import CLEAN, Finding, GuardContext
from dari.guards.linear import LinearModel
from dari.text import detect_lang
from dari.types import Span, Stage

# Lines, and sentences inside long lines: an injection is usually one or two sentences.
_PIECES = re.compile(r"[^\n]+?(?:[.!?。]+(?=\s)|(?=\n)|$)")  # "evil.example" is not two sentences
NEUTRALISED = "[removed: text addressed to the assistant]"


def pieces(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence or line of `text` that has letters in it."""
    return [(m.start(), m.end()) for m in _PIECES.finditer(text) if re.search(r"\w", m.group(0))]


class ContextInjectionGuard:
    """Scores every sentence of a source (rules + the n-gram model) and the whole source. A
    flagged source is redacted by removing the flagged sentences; when the whole reads as an
    injection but no single sentence does, it cannot be neutralised and `redact` drops it."""

    name = "context_injection"
    stage = Stage.CONTEXT
    GROW = 1.0  # how far below the threshold a neighbouring sentence may score and still go
    GAP = 1  # unflagged sentences between two flagged ones that go with them

    def __init__(self, model: LinearModel, threshold: float | None = None) -> None:
        self._model = model
        self._threshold = threshold
        self._rules = rules.INJECTION_RULES + rules.CONTEXT_RULES

    def _score(self, text: str, lang: str, margin: float = 0.0) -> tuple[bool, float, str]:
        """(flagged, score, rule); `margin` lowers the classifier's bar (rules are unchanged)."""
        views = normalise.views(text)
        fired = [r for v in views for r in rules.matches(v, self._rules)]
        strong = [r for r in fired if r.score >= 0.9]
        d = max(self._model.decision(v) for v in views)
        if self._threshold is not None:
            hit = LinearModel.probability(d + margin) >= self._threshold
        else:
            hit = d + margin > self._model.threshold(lang)
        score = LinearModel.probability(d)
        if strong:
            return True, max(score, strong[0].score), strong[0].name
        return hit, score, "classifier" if hit else (fired[0].name if fired else "")

    def check(self, text: str, ctx: GuardContext) -> Finding:
        if not text.strip():
            return CLEAN
        lang = detect_lang(text)
        spans = pieces(text)
        alone = [self._score(text[start:end], lang) for start, end in spans]
        seeds = {i: (r[2], r[1]) for i, r in enumerate(alone) if r[0]}
        for i in range(len(spans) - 1):  # a payload split across two sentences or a line break
            if not alone[i][0] and not alone[i + 1][0]:
                hit, score, rule = self._score(text[spans[i][0] : spans[i + 1][1]], lang)
                if hit:
                    seeds[i] = seeds[i + 1] = (rule, score)
        whole, whole_score, whole_rule = self._score(text, lang)
        if not seeds and not whole:
            return Finding(False, max(whole_score, 0.0))
        if not seeds:
            return Finding(
                True, whole_score, whole_rule, "the source reads as instructions to the model"
            )
        runs = self._runs(text, spans, lang, set(seeds))
        out, pos = [], 0
        for first, last in runs:
            start, end = spans[first][0], spans[last][1]
            out += [text[pos:start], NEUTRALISED + (" " if end < len(text) else "")]
            pos = end
        out.append(text[pos:])
        rule_names = sorted({rule for rule, _ in seeds.values()})
        return Finding(
            True,
            max(score for _, score in seeds.values()),
            ",".join(rule_names),
            f"{len(runs)} passage(s) in the source address the model ({', '.join(rule_names)})",
            tuple(Span("injection", spans[a][0], spans[b][1]) for a, b in runs),
            "".join(out),
        )

    def _runs(
        self, text: str, spans: list[tuple[int, int]], lang: str, seeds: set[int]
    ) -> list[tuple[int, int]]:
        """The flagged sentences grown into whole payloads: a payload is one stretch of text, so
        the sentences next to a flagged one go with it when they clear a lower bar (GROW), and a
        gap of up to GAP sentences between two flagged stretches goes too. (first, last) pieces."""
        keep = set(seeds)
        loose: dict[int, bool] = {}

        def near(j: int) -> bool:
            if j not in loose:
                start, end = spans[j]
                loose[j] = self._score(text[start:end], lang, self.GROW)[0]
            return loose[j]

        for i in sorted(seeds):
            for step in (-1, 1):
                j = i + step
                while 0 <= j < len(spans) and j not in keep and near(j):
                    keep.add(j)
                    j += step
        marked = sorted(keep)
        runs = [[marked[0], marked[0]]]
        for j in marked[1:]:
            if j - runs[-1][1] <= self.GAP + 1:
                runs[-1][1] = j
            else:
                runs.append([j, j])
        return [(a, b) for a, b in runs]
