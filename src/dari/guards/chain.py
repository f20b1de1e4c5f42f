"""Runs the guards of one stage under a policy and a time limit, and says what happened.

The policy maps each guard to an action (guards.* settings, overridden per collection). A stage
runs in a worker thread with a deadline: when a guard raises or the stage overruns, the chain
fails closed (blocks) or open (logs and lets the text through) as configured, and says which in
the verdict, so a broken guard is visible in the trace instead of silently passing everything.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass

from dari.config import GuardSettings
from dari.guards.base import Finding, GuardContext
from dari.protocols import Guard
from dari.types import Action, Stage, Verdict

# guard name → (settings table, field)
_SETTING = {
    "injection": ("input", "injection"),
    "pii": ("input", "pii"),
    "names": ("input", "names"),
    "topics": ("input", "topics"),
    "context_injection": ("context", "injection"),
    "pii_leak": ("output", "pii_leak"),
    "toxicity": ("output", "toxicity"),
    "prompt_leak": ("output", "prompt_leak"),
    "groundedness": ("output", "groundedness"),
    "schema": ("output", "json_schema"),
}


_REFUSALS = {
    "en": "I can't help with this request: it was stopped by this service's safety policy ({why}).",
    "ko": "이 요청은 이 서비스의 안전 정책에 따라 처리할 수 없습니다 ({why}).",
}
_WHY = {
    "en": {
        "injection": "it looks like an attempt to override the assistant's instructions",
        "topics": "the topic is not discussed here",
        "pii": "it contains personal data",
        "names": "it contains personal data",
        "toxicity": "the answer was not appropriate",
        "pii_leak": "the answer contained personal data",
        "prompt_leak": "the answer exposed internal instructions",
        "schema": "the answer did not have the requested format",
    },
    "ko": {
        "injection": "어시스턴트의 지시를 바꾸려는 시도로 보입니다",
        "topics": "이 서비스에서 다루지 않는 주제입니다",
        "pii": "개인정보가 포함되어 있습니다",
        "names": "개인정보가 포함되어 있습니다",
        "toxicity": "부적절한 답변이 생성되었습니다",
        "pii_leak": "답변에 개인정보가 포함되었습니다",
        "prompt_leak": "답변에 내부 지시문이 드러났습니다",
        "schema": "답변이 요청한 형식이 아닙니다",
    },
}


def refusal(lang: str, verdict: Verdict) -> str:
    """The safe message a user sees instead of a blocked question or answer."""
    lang = lang if lang in _REFUSALS else "en"
    fallback = (
        "a safety check could not be completed"
        if lang == "en"
        else "안전 점검을 마칠 수 없었습니다"
    )
    why = _WHY[lang].get(verdict.guard, fallback)
    return _REFUSALS[lang].format(why=why)


class Policy:
    """What to do when a guard flags a text, for one collection."""

    def __init__(self, settings: GuardSettings, collection: str = "") -> None:
        self._settings = settings
        self._override = settings.collections.get(collection, {})

    def action(self, guard: str) -> str:
        table, key = _SETTING[guard]
        override = self._override.get(table, {})
        if key in override:
            return override[key]
        return str(getattr(getattr(self._settings, table), key))


@dataclass(frozen=True)
class StageResult:
    text: str  # the text after redaction (unchanged when nothing was redacted)
    verdicts: tuple[Verdict, ...]

    @property
    def blocked(self) -> bool:
        return any(v.action == Action.BLOCK for v in self.verdicts)

    @property
    def changed(self) -> bool:
        return any(v.action == Action.REDACT for v in self.verdicts)


class GuardChain:
    def __init__(
        self,
        guards: Sequence[Guard],
        policy: Policy,
        timeout_ms: float = 250.0,
        fail_closed: bool = True,
        extra_ms: Mapping[Stage, float] | None = None,  # more time for a stage (an LLM judge)
    ) -> None:
        self._guards = [g for g in guards if policy.action(g.name) != "off"]
        self._policy = policy
        self._timeout_s = timeout_ms / 1000
        self._extra_s = {stage: ms / 1000 for stage, ms in (extra_ms or {}).items()}
        self._fail_closed = fail_closed

    def guards(self, stage: Stage) -> list[Guard]:
        return [g for g in self._guards if g.stage == stage]

    def run(
        self,
        stage: Stage,
        text: str,
        ctx: GuardContext,
        source: int | None = None,
        only: frozenset[str] | None = None,
    ) -> StageResult:
        guards = [g for g in self.guards(stage) if only is None or g.name in only]
        if not guards:
            return StageResult(text, ())
        limit = self._timeout_s + self._extra_s.get(stage, 0.0)
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"guard-{stage}")
        try:
            future = pool.submit(self._run, guards, text, ctx, source)
            return future.result(timeout=limit)
        except FutureTimeout:
            return self._failure(
                stage,
                text,
                "timeout",
                f"the {stage} guards took over {limit * 1000:.0f} ms",
                source,
            )
        finally:
            pool.shutdown(wait=False, cancel_futures=True)

    def _failure(
        self,
        stage: Stage,
        text: str,
        rule: str,
        detail: str,
        source: int | None,
        guard: str = "chain",
    ) -> StageResult:
        action = Action.BLOCK if self._fail_closed else Action.LOG
        how = "failed closed" if self._fail_closed else "failed open"
        verdict = Verdict(guard, stage, True, action, 1.0, rule, f"{detail}; {how}", source=source)
        return StageResult(text, (verdict,))

    def _run(
        self, guards: Sequence[Guard], text: str, ctx: GuardContext, source: int | None
    ) -> StageResult:
        verdicts: list[Verdict] = []
        for guard in guards:
            started = time.perf_counter()
            try:
                finding = guard.check(text, ctx)
            except Exception as exc:  # a guard bug must not take the answer down, nor pass silently
                failed = self._failure(
                    guard.stage,
                    text,
                    "error",
                    f"{type(exc).__name__}: {exc}"[:200],
                    source,
                    guard.name,
                )
                verdicts += failed.verdicts
                if failed.verdicts[0].action == Action.BLOCK:
                    break
                continue
            ms = (time.perf_counter() - started) * 1000
            verdict, text = self._apply(guard, finding, text, source, ms)
            verdicts.append(verdict)
            if verdict.action == Action.BLOCK:
                break
        return StageResult(text, tuple(verdicts))

    def _apply(
        self, guard: Guard, finding: Finding, text: str, source: int | None, ms: float
    ) -> tuple[Verdict, str]:
        def verdict(action: Action) -> Verdict:
            return Verdict(
                guard.name,
                guard.stage,
                finding.flagged,
                action,
                round(finding.score, 4),
                finding.rule,
                finding.detail,
                finding.spans,
                source,
                round(ms, 3),
            )

        if not finding.flagged:
            return verdict(Action.ALLOW), text
        action = Action(self._policy.action(guard.name))
        if action == Action.REDACT:
            if finding.redacted is None:  # nothing to cut out: the whole text is the problem
                return verdict(Action.BLOCK), text
            return verdict(Action.REDACT), finding.redacted
        return verdict(action), text


_SEVERITY = {Action.ALLOW: 0, Action.LOG: 1, Action.WARN: 2, Action.REDACT: 3, Action.BLOCK: 4}


def decisive(verdicts: Sequence[Verdict]) -> Verdict | None:
    """The verdict that decided a text's fate: the strongest action, then the highest score."""
    if not verdicts:
        return None
    return max(verdicts, key=lambda v: (_SEVERITY[Action(v.action)], v.flagged, v.score))
