"""Guards on the answer: personal data it brings in, toxicity, the system prompt leaking, cited
sentences their source does not support, and a JSON schema when one was requested."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from typing import Any

from dari.guards import normalise, pii
from dari.guards.base import CLEAN, Finding, GuardContext
from dari.guards.input import pii_finding
from dari.guards.linear import LinearModel
from dari.text import detect_lang
from dari.types import Span, Stage

_CITE = re.compile(r"\[(\d{1,2})\]")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_PLACEHOLDER = re.compile("|".join(re.escape(label) for label in pii.LABELS.values()))


class PIILeakGuard:
    """Personal data in the answer that the question did not contain (the user's own phone number
    repeated back is not a leak; someone else's from a document is)."""

    name = "pii_leak"
    stage = Stage.OUTPUT

    def check(self, text: str, ctx: GuardContext) -> Finding:
        asked = {pii.fingerprint(m, ctx.question) for m in pii.find_pii(ctx.question)}
        new = [m for m in pii.find_pii(text) if pii.fingerprint(m, text) not in asked]
        return pii_finding(text, new, "personal data the question did not contain")


class ToxicityGuard:
    """Hate, insults and profanity. Korean: dari's linear n-gram model (trained on unsmile and
    kocohub). English: alt-profanity-check's model (a linear SVM trained on ~200k human-labelled
    comments, the `toxicity-en` extra); without it English text is left unscored and the verdict
    says so."""

    name = "toxicity"
    stage = Stage.OUTPUT
    ENGLISH_THRESHOLD = 0.8  # probability; alt-profanity-check's own default is 0.5

    def __init__(self, model: LinearModel, threshold: float | None = None) -> None:
        self._model, self._threshold = model, threshold
        self._english: Any = None

    def _english_probability(self, text: str) -> float | None:
        if self._english is None:
            try:
                from profanity_check import predict_prob
            except ImportError:
                self._english = False
            else:
                self._english = predict_prob
        return float(self._english([text])[0]) if self._english else None

    def check(self, text: str, ctx: GuardContext) -> Finding:
        if not text.strip():
            return CLEAN
        folded = normalise.views(text)[0]
        if detect_lang(text) == "ko":
            d = self._model.decision(folded)
            p = LinearModel.probability(d)
            limit = self._threshold
            hit = p >= limit if limit is not None else d > self._model.threshold("ko")
        else:
            found = self._english_probability(folded)
            if found is None:
                return Finding(False, 0.0, "unscored:en", "no English toxicity model installed")
            p = found
            hit = p >= (self._threshold if self._threshold is not None else self.ENGLISH_THRESHOLD)
        return (
            Finding(True, p, "classifier", "the text reads as toxic") if hit else Finding(False, p)
        )


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", normalise.fold(text).lower())


class PromptLeakGuard:
    """The answer repeats the system prompt: a run of RUN words in the same order, or most of its
    word 4-grams. A leak cannot be redacted, so `redact` acts as block."""

    name = "prompt_leak"
    stage = Stage.OUTPUT
    RUN = 10

    def check(self, text: str, ctx: GuardContext) -> Finding:
        secret = _words(ctx.system_prompt)
        if len(secret) < 8:
            return CLEAN
        said = _words(text)
        runs = {tuple(secret[i : i + self.RUN]) for i in range(len(secret) - self.RUN + 1)}
        if any(tuple(said[i : i + self.RUN]) in runs for i in range(len(said) - self.RUN + 1)):
            return Finding(True, 1.0, f"run-{self.RUN}", "the answer repeats the system prompt")
        grams = {tuple(secret[i : i + 4]) for i in range(len(secret) - 3)}
        shared = len(grams & {tuple(said[i : i + 4]) for i in range(len(said) - 3)})
        share = shared / len(grams) if grams else 0.0
        if share >= 0.3:
            return Finding(True, share, "4-grams", "the answer repeats the system prompt")
        return Finding(False, share)


class GroundednessGuard:
    """Every sentence that cites [n] must be supported by source n: most of its content terms
    (Korean morphemes, English stems) and every number in it appear in the cited sources. A
    sentence that states a number without citing anything is flagged as uncited."""

    name = "groundedness"
    stage = Stage.OUTPUT

    def __init__(
        self,
        terms: Callable[[str], list[str]],
        sentences: Callable[[str, str], list[str]],
        min_support: float = 0.5,
    ) -> None:
        self._terms, self._sentences = terms, sentences
        self.min_support = min_support

    def support(self, sentence: str, sources: Sequence[str]) -> float:
        """Share of the sentence's content terms found in `sources`; 0 when a number is missing."""
        claim = _PLACEHOLDER.sub(" ", _CITE.sub(" ", sentence))  # "[PHONE]" was redacted here
        source_text = " ".join(sources)
        numbers = {n.replace(",", "") for n in _NUMBER.findall(claim)}
        known = {n.replace(",", "") for n in _NUMBER.findall(source_text)}
        if numbers - known:
            return 0.0
        words = set(self._terms(claim))
        if not words:
            return 1.0
        return len(words & set(self._terms(source_text))) / len(words)

    def check(self, text: str, ctx: GuardContext) -> Finding:
        if ctx.schema is not None:  # a JSON answer is data, not sentences with citations
            return CLEAN
        bad: list[Span] = []
        worst = 1.0
        pos = 0
        sentences: list[str] = []
        for sentence in self._sentences(text, ctx.lang):
            if sentences and not _CITE.sub("", sentence).strip(" .\n"):
                sentences[-1] += sentence  # "… India. [1]": the marker belongs to the sentence
            else:
                sentences.append(sentence)
        for sentence in sentences:
            start = text.find(sentence.strip(), pos)
            start = pos if start < 0 else start
            end = start + len(sentence.strip())
            pos = end
            cited = [int(n) for n in _CITE.findall(sentence)]
            given = [ctx.sources[n - 1] for n in cited if 0 < n <= len(ctx.sources)]
            if given:
                s = self.support(sentence, given)
                worst = min(worst, s)
                if s < self.min_support:
                    bad.append(Span("unsupported", start, end))
            elif _NUMBER.search(_CITE.sub(" ", sentence)) and ctx.sources:
                bad.append(Span("uncited", start, end))
        if not bad:
            return Finding(False, worst)
        kinds = sorted({s.kind for s in bad})
        return Finding(
            True,
            1.0 - worst,
            ",".join(kinds),
            f"{len(bad)} sentence(s) of the answer are not backed by the sources they cite"
            if "unsupported" in kinds
            else f"{len(bad)} sentence(s) state figures without citing a source",
            tuple(bad),
        )


def _json_part(text: str) -> str:
    fenced = re.search(r"```(?:json)?\s*(.*?)```", text, re.S)
    return fenced.group(1) if fenced else text


class SchemaGuard:
    """When the caller asked for JSON matching a schema: the answer must parse and validate."""

    name = "schema"
    stage = Stage.OUTPUT

    def check(self, text: str, ctx: GuardContext) -> Finding:
        if ctx.schema is None:
            return CLEAN
        import jsonschema

        try:
            value = json.loads(_json_part(text))
        except json.JSONDecodeError as exc:
            return Finding(True, 1.0, "not-json", f"the answer is not JSON: {exc.msg} at {exc.pos}")
        try:
            jsonschema.validate(value, dict(ctx.schema))
        except jsonschema.ValidationError as exc:
            where = "/".join(str(p) for p in exc.absolute_path) or "(top)"
            return Finding(
                True,
                1.0,
                "invalid",
                f"the answer does not match the schema at {where}: {exc.message}",
            )
        except jsonschema.SchemaError as exc:
            return Finding(
                True, 1.0, "bad-schema", f"the requested schema is invalid: {exc.message}"
            )
        return CLEAN
