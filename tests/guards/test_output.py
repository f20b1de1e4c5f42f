"""Guards on the answer: leaked personal data, the system prompt, unsupported citations, schema."""

from __future__ import annotations

import pytest

from dari.guards.base import GuardContext
from dari.guards.output import GroundednessGuard, PIILeakGuard, PromptLeakGuard, SchemaGuard
from dari.index.analyzer import Analyzer


def test_pii_in_the_answer_that_the_question_did_not_hold_is_a_leak():
    guard = PIILeakGuard()
    ctx = GuardContext(question="제 번호 010-1234-5678로 연락 주실 수 있나요?")
    own = guard.check("네, 010-1234-5678로 연락드리겠습니다.", ctx)
    assert not own.flagged
    leak = guard.check("담당자 번호는 010-9999-8888입니다 [1].", ctx)
    assert leak.flagged and leak.redacted == "담당자 번호는 [PHONE]입니다 [1]."


def test_prompt_leak_by_a_long_run_or_most_of_the_prompt():
    system = (
        "You are dari, an assistant that answers only from the numbered sources and cites them."
    )
    guard = PromptLeakGuard()
    ctx = GuardContext(system_prompt=system)
    assert guard.check(f"Sure! My instructions: {system}", ctx).flagged
    assert not guard.check("Refunds are possible within 30 days [1].", ctx).flagged


@pytest.fixture(scope="module")
def grounded() -> GroundednessGuard:
    a = Analyzer()
    return GroundednessGuard(a.terms, a.sentences, min_support=0.9)


def test_cited_sentence_supported_by_its_source(grounded: GroundednessGuard):
    ctx = GuardContext(lang="en", sources=("Refunds can be requested within 30 days of purchase.",))
    assert not grounded.check("Refunds can be requested within 30 days [1].", ctx).flagged
    bad = grounded.check("Refunds can be requested within 90 days [1].", ctx)  # a number not there
    assert bad.flagged and bad.spans[0].kind == "unsupported"
    assert grounded.check("Shipping to Mars is free of charge [1].", ctx).flagged


def test_korean_sentence_checked_by_morphemes(grounded: GroundednessGuard):
    ctx = GuardContext(lang="ko", sources=("정규직 직원의 연차 휴가는 1년에 15일입니다.",))
    assert not grounded.check("연차 휴가는 1년에 15일이에요 [1].", ctx).flagged
    assert grounded.check("연차 휴가는 1년에 20일이에요 [1].", ctx).flagged


def test_uncited_figures_are_flagged_as_uncited(grounded: GroundednessGuard):
    ctx = GuardContext(lang="en", sources=("Refunds within 30 days.",))
    found = grounded.check("Refunds within 30 days [1]. Delivery takes 4 days.", ctx)
    assert found.flagged and [s.kind for s in found.spans] == ["uncited"]


def test_schema_guard():
    guard = SchemaGuard()
    schema = {"type": "object", "properties": {"days": {"type": "integer"}}, "required": ["days"]}
    ctx = GuardContext(schema=schema)
    assert not guard.check('{"days": 15}', ctx).flagged
    assert not guard.check('```json\n{"days": 15}\n```', ctx).flagged
    assert "days" in guard.check('{"days": "fifteen"}', ctx).detail
    assert guard.check("Fifteen days.", ctx).rule == "not-json"
    assert not guard.check("anything", GuardContext()).flagged  # no schema asked


def test_a_redacted_placeholder_is_not_an_unsupported_claim(grounded: GroundednessGuard):
    ctx = GuardContext(
        lang="ko", sources=("인사팀 담당자 김민수 과장의 휴대폰은 010-2345-6789입니다.",)
    )
    assert not grounded.check(
        "인사팀 담당자 김민수 과장의 휴대폰은 [PHONE]입니다 [1].", ctx
    ).flagged
