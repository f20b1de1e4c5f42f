"""Builds the guard chain from settings: loads the trained models once, picks the guards."""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from pathlib import Path

import numpy as np

from dari.config import GuardSettings
from dari.errors import ConfigError
from dari.guards.base import GuardContext
from dari.guards.chain import GuardChain, Policy
from dari.guards.context import ContextInjectionGuard
from dari.guards.input import InjectionGuard, NamesGuard, PIIGuard, TopicGuard
from dari.guards.judge import InjectionJudge
from dari.guards.linear import LinearModel
from dari.guards.output import (
    GroundednessGuard,
    PIILeakGuard,
    PromptLeakGuard,
    SchemaGuard,
    ToxicityGuard,
)
from dari.guards.stacked import StackedModel
from dari.index.analyzer import Analyzer
from dari.protocols import Embedder, Generator, Guard
from dari.types import Stage

BUNDLED = Path(__file__).parent / "models"
INJECTION = "injection-ngram"
INJECTION_JOINT = "injection-e5"  # n-grams + the multilingual-e5 embedding of the question
INJECTION_STACKED = "injection-e5-mlp"  # a small network over the e5 embedding + n-gram score
TOXICITY = "toxicity-ko"


class GuardSet:
    """The guards of one dari: models loaded on first use, a chain per collection."""

    def __init__(
        self,
        settings: GuardSettings,
        analyzer: Analyzer,
        embedder: Embedder | None = None,
        judge: Callable[[], Generator] | None = None,
    ) -> None:
        self.settings = settings
        self._analyzer = analyzer
        self._embedder = embedder
        self._judge = judge  # the LLM behind guards.judge, loaded on its first question

    @cached_property
    def judge(self) -> InjectionJudge | None:
        s = self.settings.judge
        if s.mode == "off":
            return None
        if self._judge is None:
            raise ConfigError(
                f'guards.judge.mode = "{s.mode}" but these guards have no LLM to ask',
                'set guards.judge.mode = "off", or build GuardSet with a judge',
            )
        return InjectionJudge(self._judge, s.max_chars)

    def _model(self, name: str) -> LinearModel:
        folder = self._folder()
        path = folder / name
        if not path.with_suffix(".npz").is_file():
            raise ConfigError(
                f"the guard model '{name}' is not in {folder}",
                "train it with `dari guard train --output DIR` or clear guards.models_dir",
            )
        return LinearModel.load(path)

    @cached_property
    def injection_model(self) -> LinearModel:
        return self._model(INJECTION)

    def _folder(self) -> Path:
        return Path(self.settings.models_dir).expanduser() if self.settings.models_dir else BUNDLED

    @cached_property
    def joint_models(self) -> dict[str, LinearModel | StackedModel]:
        """The models that also read the question's embedding (when the configured embedder is
        the one they learnt), by language: the stacked network for the languages its card
        names (where it measured better), the joint linear model for the rest."""
        if self._embedder is None:
            return {}
        out: dict[str, LinearModel | StackedModel] = {}
        try:
            linear = self._model(INJECTION_JOINT)
        except ConfigError:
            return {}
        if linear.embedder == self._embedder.name:
            out["default"] = linear
        path = self._folder() / INJECTION_STACKED
        if path.with_suffix(".npz").is_file():
            stacked = StackedModel.load(path, self.injection_model)
            if stacked.embedder == self._embedder.name:
                out |= {lang: stacked for lang in stacked.card.get("languages", [])}
        return out

    @cached_property
    def toxicity_model(self) -> LinearModel:
        return self._model(TOXICITY)

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed_query_batch([text])[0]

    def embed_query_batch(self, texts: list[str]) -> np.ndarray:
        if self._embedder is None:
            raise ConfigError("the guards have no embedder", "build GuardSet with one")
        return np.asarray(self._embedder.embed_queries(texts))

    def _injection(self, judge: InjectionJudge | None) -> InjectionGuard:
        s = self.settings
        return InjectionGuard(
            self.injection_model,
            self.joint_models,
            s.injection_threshold,
            judge=judge,
            judge_band=s.judge.band if s.judge.mode == "uncertain" else None,
        )

    @cached_property
    def guards(self) -> list[Guard]:
        s = self.settings
        return [
            self._injection(self.judge),
            PIIGuard(),
            NamesGuard(lambda: self._analyzer.kiwi),
            TopicGuard(s.input.deny_topics),
            self.context_guard,
            PIILeakGuard(),
            ToxicityGuard(self.toxicity_model, s.toxicity_threshold),
            PromptLeakGuard(),
            GroundednessGuard(
                self._analyzer.terms, self._analyzer.sentences, s.grounded_min_support
            ),
            SchemaGuard(),
        ]

    def tag_section(self, text: str) -> str:
        """Ingest-time scan of a section for text addressed to the model: "" or
        "injection:<rules>", stored with the section and shown with the source in traces."""
        finding = self.context_guard.check(text, GuardContext())
        return f"injection:{finding.rule}" if finding.flagged else ""

    @cached_property
    def context_guard(self) -> ContextInjectionGuard:
        return ContextInjectionGuard(self.injection_model, self.settings.injection_threshold)

    def warm(self) -> None:
        """Load what the guards need (models, Kiwi, the embedder) before the first timed check:
        a cold start would otherwise count against the chain's time limit."""
        if getattr(self, "_warm", False):
            return
        ctx = GuardContext(question="warm up", sources=("warm up",), system_prompt="warm up")
        # lazy loads: Kiwi, the stemmer, the English toxicity model; not the LLM judge, whose
        # model loads on its first question under guards.judge.timeout_ms
        unjudged = [
            self._injection(None) if isinstance(g, InjectionGuard) else g for g in self.guards
        ]
        for guard in unjudged:
            for text in ("warm up [1].", "준비 [1]."):
                guard.check(text, ctx)
        if self.joint_models:
            self.embed_query("warm up")
        self._warm = True

    def chain(self, collection: str = "") -> GuardChain:
        self.warm()
        return GuardChain(
            self.guards,
            Policy(self.settings, collection),
            self.settings.timeout_ms,
            fail_closed=self.settings.on_error == "closed",
            extra_ms={Stage.INPUT: self.settings.judge.timeout_ms} if self.judge else None,
        )
