"""Recording feedback against real traces: kinds, validation, unknown ids, redaction, reading."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from tests.index.stores import reopen

from dari.app import Dari
from dari.errors import InputError, UnknownTrace
from dari.feedback.store import FeedbackStore, Kind, Signal, Thumb

LEAVE_Q = "연차 휴가는 며칠인가요?"
LEAVE_A = "정규직 직원의 연차 휴가는 1년에 15일입니다 [1]."
REFUND_Q = "How long do I have to request a refund?"
REFUND_A = "Refunds can be requested within 30 days of purchase [1]."
Ask = Callable[..., str]


def test_a_thumb_up_is_stored_and_returned_with_its_kind(ask: Ask, feedback: FeedbackStore):
    trace = ask(LEAVE_Q, LEAVE_A)
    item = feedback.add(trace, Thumb.UP)
    assert item.kind == Kind.UP and item.positive and not item.negative and not item.implicit
    assert item.trace_id == trace and item.collection == "hr" and item.id > 0
    assert feedback.entries() == [item]


def test_feedback_survives_reopening_the_store(ask: Ask, feedback: FeedbackStore, dari: Dari):
    trace = ask(LEAVE_Q, LEAVE_A)
    item = feedback.add(trace, "down", comment="답이 틀렸어요")
    again = FeedbackStore(reopen(dari.store))  # another process, or after a restart
    assert again.entries(trace_id=trace) == [item]
    assert again.entries()[0].comment == "답이 틀렸어요"


@pytest.mark.parametrize(
    ("given", "kind", "positive", "negative"),
    [
        ({"approve": True}, Kind.APPROVE, True, False),
        ({"thumb": "down"}, Kind.DOWN, False, True),
        ({"rating": 5}, Kind.RATING, True, False),
        ({"rating": 3}, Kind.RATING, False, False),
        ({"rating": 1, "comment": "wrong"}, Kind.RATING, False, True),
        ({"correction": "30 days."}, Kind.CORRECTION, False, True),
        ({"comment": "Could cite the policy page."}, Kind.COMMENT, False, False),
        ({"thumb": "up", "rating": 4, "comment": "good"}, Kind.UP, True, False),
        ({"thumb": "down", "correction": "30 days."}, Kind.DOWN, False, True),
    ],
)
def test_each_kind_of_explicit_feedback(
    ask: Ask, feedback: FeedbackStore, given: dict, kind: Kind, positive: bool, negative: bool
):
    item = feedback.add(ask(REFUND_Q, REFUND_A), **given)
    assert (item.kind, item.positive, item.negative) == (kind, positive, negative)


def test_implicit_signals(ask: Ask, feedback: FeedbackStore):
    trace = ask(REFUND_Q, REFUND_A)
    kinds = [feedback.signal(trace, s).kind for s in ("copy", Signal.REGENERATE, "rephrase")]
    assert kinds == [Kind.COPY, Kind.REGENERATE, Kind.REPHRASE]
    assert all(i.implicit and not i.positive and not i.negative for i in feedback.entries())
    with pytest.raises(InputError, match="unknown signal 'paste'") as err:
        feedback.signal(trace, "paste")
    assert "copy, regenerate, rephrase" in err.value.hint


def test_unknown_trace_is_a_clear_404_style_error(ask: Ask, feedback: FeedbackStore):
    ask(REFUND_Q, REFUND_A)
    with pytest.raises(UnknownTrace) as err:
        feedback.add("deadbeef", Thumb.UP)
    assert isinstance(err.value, InputError) and err.value.exit_code == 66
    assert "deadbeef" in err.value.message and "dari ask --json" in err.value.hint
    with pytest.raises(UnknownTrace, match="nope"):
        feedback.signal("nope", Signal.COPY)
    with pytest.raises(InputError, match="trace id is empty"):
        feedback.add("  ", Thumb.UP)
    assert feedback.entries() == []


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"rating": 7}, "rating must be 1 to 5, not 7"),
        ({"rating": 0}, "rating must be 1 to 5, not 0"),
        ({"comment": "   "}, "nothing to record for trace .*: the comment is empty"),
        ({}, "nothing to record"),
        ({"thumb": "up", "rating": 1}, "both likes and dislikes"),
        ({"approve": True, "thumb": "down"}, "both likes and dislikes"),
        ({"approve": True, "correction": "30 days."}, "correction says the answer"),
        ({"thumb": "sideways"}, "unknown thumb 'sideways'"),
        ({"comment": "x" * 8001}, "8001 characters long"),
    ],
)
def test_invalid_feedback_is_refused(ask: Ask, feedback: FeedbackStore, given: dict, message: str):
    trace = ask(REFUND_Q, REFUND_A)
    with pytest.raises(InputError, match=message):
        feedback.add(trace, **given)
    assert feedback.entries() == []


def test_personal_data_in_comments_and_corrections_is_redacted_before_storing(
    ask: Ask, feedback: FeedbackStore
):
    trace = ask(LEAVE_Q, LEAVE_A)
    item = feedback.add(
        trace,
        comment="제 메일 kim.minsu@example.com 으로 알려주세요",
        correction="인사팀 010-1234-5678로 문의하세요. 연차는 15일입니다 [1].",
    )
    stored = feedback.entries()[0]
    assert stored == item
    assert "[EMAIL]" in stored.comment and "example.com" not in stored.comment
    assert "[PHONE]" in stored.correction and "5678" not in stored.correction
    assert "연차는 15일입니다" in stored.correction


def test_rated_sums_up_each_trace(ask: Ask, feedback: FeedbackStore):
    leave = ask(LEAVE_Q, LEAVE_A)
    refund = ask(REFUND_Q, REFUND_A)
    unknown = ask("What is the boiling point of mercury?")  # abstains: no prompt stored
    feedback.add(leave, Thumb.UP)
    feedback.add(leave, rating=5)
    feedback.signal(leave, Signal.COPY)
    feedback.add(refund, correction="Within 14 days.")
    feedback.add(refund, correction="Within 30 days [1].")
    feedback.add(refund, Thumb.DOWN)
    feedback.signal(unknown, Signal.REPHRASE)
    rated = {r.trace_id: r for r in feedback.rated()}
    assert list(rated) == [leave, refund, unknown]  # oldest first
    first = rated[leave]
    assert (first.up, first.down, first.ratings, first.signals) == (2, 0, (5,), {"copy": 1})
    assert first.good and first.question == LEAVE_Q and first.answer.startswith("정규직")
    assert first.prompt is not None and "질문: 연차 휴가는 며칠인가요?" in first.prompt[1]
    assert first.sources and first.sources[0].source.endswith("leave.md")
    assert rated[refund].correction == "Within 30 days [1]." and rated[refund].down == 3
    assert rated[refund].target == "Within 30 days [1]." and rated[refund].bad
    assert rated[unknown].prompt is None and not rated[unknown].explicit
    assert rated[unknown].outcome == "abstained"


def test_reading_by_collection_and_limit(ask: Ask, feedback: FeedbackStore):
    hr = ask(REFUND_Q, REFUND_A)
    shop = ask(REFUND_Q, REFUND_A, collection="shop")
    feedback.add(hr, Thumb.UP)
    feedback.add(shop, Thumb.DOWN)
    feedback.signal(shop, Signal.COPY)
    assert [i.trace_id for i in feedback.entries("shop")] == [shop, shop]
    assert [i.kind for i in feedback.entries(limit=1)] == [Kind.COPY]  # newest first
    assert [r.trace_id for r in feedback.rated("hr")] == [hr]
    assert feedback.trace_count() == 2 and feedback.trace_count("shop") == 1
    assert feedback.trace_count("none") == 0
