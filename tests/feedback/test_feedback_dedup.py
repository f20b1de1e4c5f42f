"""Near-duplicate detection: normalisation, shingles, and the prefix filter matching brute force."""

from __future__ import annotations

import random

from dari.feedback.dedup import distinct, jaccard, normalise, shingles


def test_normalise_folds_width_case_punctuation_and_space():
    assert normalise("  Ｒefund   POLICY?! ") == "refund policy"
    assert normalise("연차 휴가는, 며칠인가요?") == "연차 휴가는 며칠인가요"


def test_short_and_empty_texts_are_one_shingle():
    assert shingles("abc") == frozenset({"abc"})
    assert shingles("") == frozenset({""})
    assert jaccard(shingles("연차는 며칠"), shingles("연차는 며칠?")) == 1.0


def test_earlier_texts_win_and_different_questions_stay():
    texts = [
        "연차 휴가는 며칠인가요?",
        "연차 휴가는 며칠인가요",
        "병가는 며칠까지 쓸 수 있나요?",
        "How long do I have to request a refund?",
        "how long do i have to request a refund",
        "",
        " ",
    ]
    assert distinct(texts) == [True, False, True, True, False, True, False]


def test_prefix_filter_finds_exactly_the_pairs_brute_force_finds():
    rng = random.Random(7)
    words = ["연차", "휴가", "병가", "refund", "days", "policy", "30", "일", "office", "opens"]
    base = [" ".join(rng.choice(words) for _ in range(12)) for _ in range(40)]
    texts = [t if rng.random() < 0.5 else t + rng.choice(["", " x", "!", " 일"]) for t in base]
    texts += [rng.choice(texts) + " " + rng.choice(words) for _ in range(40)]
    for threshold in (0.5, 0.8, 0.9):
        expected: list[bool] = []
        for i, text in enumerate(texts):
            earlier = [texts[j] for j in range(i) if expected[j]]
            expected.append(
                all(jaccard(shingles(text), shingles(e)) < threshold - 1e-9 for e in earlier)
            )
        assert distinct(texts, threshold) == expected
