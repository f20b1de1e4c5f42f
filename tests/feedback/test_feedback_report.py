"""The feedback report over real traces: rates, like shares, most disliked questions, signals."""

from __future__ import annotations

import json
from collections.abc import Callable

from dari.feedback.report import Share, report
from dari.feedback.store import FeedbackStore, Signal, Thumb

Ask = Callable[..., str]
LEAVE_Q = "연차 휴가는 며칠인가요?"
LEAVE_A = "정규직 직원의 연차 휴가는 1년에 15일입니다 [1]."
OFFICE_Q = "When does the office open?"
OFFICE_A = "The office opens at 8 am [1]."


def test_report_figures(ask: Ask, feedback: FeedbackStore):
    leave = [ask(LEAVE_Q, LEAVE_A), ask("연차 휴가는 며칠인가요", "30일입니다 [1].")]
    office = ask(OFFICE_Q, OFFICE_A)
    shop = ask(OFFICE_Q, OFFICE_A, collection="shop")
    ask("What is the boiling point of mercury?")  # no feedback
    feedback.add(leave[0], Thumb.DOWN, comment="틀렸어요")
    feedback.add(leave[1], rating=1)
    feedback.add(leave[1], Thumb.UP)  # someone else liked it
    feedback.add(office, Thumb.UP)
    feedback.add(office, rating=4)
    feedback.add(shop, correction="It opens at 8 am [1].")
    feedback.signal(shop, Signal.COPY)
    feedback.signal(office, Signal.COPY)
    feedback.signal(office, Signal.REGENERATE)
    data = report(feedback)
    assert (data.traces, data.with_feedback, data.with_explicit) == (5, 4, 4)
    assert data.feedback_rate == 0.8
    assert (data.ratings, data.mean_rating) == (2, 2.5)
    assert data.by_collection == (Share("hr", 3, 2), Share("shop", 0, 1))
    assert data.by_collection[0].share == 0.6 and data.by_collection[1].share == 0.0
    assert [s.name for s in data.by_prompt_version] and sum(
        s.up + s.down for s in data.by_prompt_version
    ) == 6
    worst = data.most_disliked
    assert [(d.collection, d.down, d.up, d.traces) for d in worst] == [
        ("hr", 2, 1, 2),
        ("shop", 1, 0, 1),
    ]
    assert worst[0].question.startswith("연차 휴가는 며칠인가요")
    assert data.signals == {"copy": 2, "regenerate": 1, "rephrase": 0}
    as_json = json.dumps(data.to_dict(), ensure_ascii=False)
    assert "연차 휴가는" in as_json and json.loads(as_json)["feedback_rate"] == 0.8
    assert json.loads(as_json)["by_collection"][0] == {
        "name": "hr",
        "up": 3,
        "down": 2,
        "share": 0.6,
    }


def test_report_of_one_collection_and_of_nothing(ask: Ask, feedback: FeedbackStore):
    empty = report(feedback)
    assert (empty.traces, empty.feedback_rate, empty.mean_rating) == (0, 0.0, None)
    assert empty.most_disliked == () and empty.signals == {
        "copy": 0,
        "regenerate": 0,
        "rephrase": 0,
    }
    feedback.add(ask(OFFICE_Q, OFFICE_A), Thumb.DOWN)
    feedback.add(ask(OFFICE_Q, OFFICE_A, collection="shop"), Thumb.UP)
    shop = report(feedback, "shop", top=0)
    assert (shop.traces, shop.with_feedback, shop.by_collection) == (1, 1, (Share("shop", 1, 0),))
    assert shop.most_disliked == () and report(feedback, "hr").most_disliked[0].down == 1
