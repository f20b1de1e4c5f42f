"""The judge's rubrics as data (G-Eval style: criteria, evaluation steps, what each score 1–5
means) and the fixed prompt texts, in English and Korean."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Rubric:
    """One quality to score. Texts are per language ("en", "ko"); `needs` names the item fields
    the judge must see besides the question and answer ("reference", "sources")."""

    name: str
    criteria: dict[str, str]
    steps: dict[str, tuple[str, ...]]
    scale: dict[str, tuple[str, str, str, str, str]]  # what 1 … 5 mean
    needs: tuple[str, ...] = ()


RUBRICS: dict[str, Rubric] = {
    "correctness": Rubric(
        "correctness",
        {
            "en": "Correctness: does the answer state the same facts as the reference answer? "
            "Extra detail is fine if it does not contradict the reference; missing or wrong key "
            "facts are not.",
            "ko": "정확성: 답변이 참조 답변과 같은 사실을 말하는가? 참조와 모순되지 않는 추가 "
            "설명은 괜찮지만, 핵심 사실이 빠지거나 틀리면 안 된다.",
        },
        {
            "en": (
                "Read the question and the reference answer; list the key facts it needs.",
                "Read the answer and check each key fact: present, missing or contradicted.",
                "Note any claim in the answer that contradicts the reference.",
                "Choose the score on the scale that fits best.",
            ),
            "ko": (
                "질문과 참조 답변을 읽고 필요한 핵심 사실을 나열한다.",
                "답변을 읽고 각 핵심 사실이 있는지, 빠졌는지, 반대되는지 확인한다.",
                "참조와 모순되는 주장이 있으면 적어 둔다.",
                "아래 척도에서 가장 알맞은 점수를 고른다.",
            ),
        },
        {
            "en": (
                "wrong or contradicts the reference",
                "mostly wrong; one minor fact right",
                "partly right; a key fact missing or wrong",
                "right; a minor detail missing",
                "fully right and complete",
            ),
            "ko": (
                "틀렸거나 참조와 모순됨",
                "대부분 틀림; 사소한 사실 하나만 맞음",
                "일부 맞음; 핵심 사실 하나가 빠지거나 틀림",
                "맞음; 사소한 세부 사항이 빠짐",
                "완전히 맞고 빠짐없음",
            ),
        },
        ("reference",),
    ),
    "faithfulness": Rubric(
        "faithfulness",
        {
            "en": "Faithfulness: is every claim in the answer supported by the sources? A claim "
            "that the sources do not state, even if true in the world, is unsupported.",
            "ko": "충실성: 답변의 모든 주장이 출처로 뒷받침되는가? 출처에 없는 주장은 사실이더라도 "
            "뒷받침되지 않은 것으로 본다.",
        },
        {
            "en": (
                "Split the answer into its factual claims.",
                "For each claim, find the passage in the sources that states it, if any.",
                "Count the claims that are unsupported or contradicted by the sources.",
                "Choose the score on the scale that fits best.",
            ),
            "ko": (
                "답변을 사실 주장 단위로 나눈다.",
                "각 주장에 대해 그것을 말하는 출처의 구절을 찾는다.",
                "출처로 뒷받침되지 않거나 출처와 모순되는 주장의 수를 센다.",
                "아래 척도에서 가장 알맞은 점수를 고른다.",
            ),
        },
        {
            "en": (
                "mostly unsupported or contradicted",
                "several unsupported claims",
                "one important unsupported claim",
                "one minor unsupported detail",
                "every claim supported",
            ),
            "ko": (
                "대부분 뒷받침되지 않거나 모순됨",
                "뒷받침되지 않는 주장이 여럿",
                "중요한 주장 하나가 뒷받침되지 않음",
                "사소한 세부 하나가 뒷받침되지 않음",
                "모든 주장이 뒷받침됨",
            ),
        },
        ("sources",),
    ),
    "relevance": Rubric(
        "relevance",
        {
            "en": "Relevance: does the answer address the question that was asked, directly "
            "and without padding? A justified refusal to answer counts as relevant.",
            "ko": "관련성: 답변이 질문에 직접적으로, 군더더기 없이 답하는가? 근거 있는 답변 거절은 "
            "관련 있는 것으로 본다.",
        },
        {
            "en": (
                "Work out what the question asks for.",
                "Check whether the answer gives that, or says clearly why it cannot.",
                "Note content that is off-topic or repeats itself.",
                "Choose the score on the scale that fits best.",
            ),
            "ko": (
                "질문이 무엇을 묻는지 파악한다.",
                "답변이 그것을 제공하는지, 또는 왜 답할 수 없는지 분명히 말하는지 확인한다.",
                "주제에서 벗어나거나 반복되는 내용을 적어 둔다.",
                "아래 척도에서 가장 알맞은 점수를 고른다.",
            ),
        },
        {
            "en": (
                "off-topic",
                "touches the topic but does not answer",
                "answers in part, or buried in unrelated text",
                "answers, with some padding",
                "answers the question directly",
            ),
            "ko": (
                "주제와 무관함",
                "주제를 언급하지만 답하지 않음",
                "일부만 답하거나 무관한 내용에 묻힘",
                "답하지만 군더더기가 있음",
                "질문에 직접 답함",
            ),
        },
    ),
    "factuality": Rubric(
        "factuality",
        {
            "en": "Factuality: does the response contain claims that are false or unsupported? "
            "Judge against well-established knowledge; a response that does what was asked "
            "without false claims scores high.",
            "ko": "사실성: 응답에 거짓이거나 근거 없는 주장이 있는가? 널리 확립된 지식을 기준으로 "
            "판단하며, 요청을 거짓 주장 없이 수행한 응답은 높은 점수를 받는다.",
        },
        {
            "en": (
                "Read the request and work out what a correct response needs.",
                "List the factual claims in the response.",
                "Mark each claim that is false, made up, or not what was asked.",
                "Choose the score on the scale that fits best.",
            ),
            "ko": (
                "요청을 읽고 올바른 응답에 필요한 것을 파악한다.",
                "응답의 사실 주장을 나열한다.",
                "거짓이거나 지어냈거나 요청과 다른 주장을 표시한다.",
                "아래 척도에서 가장 알맞은 점수를 고른다.",
            ),
        },
        {
            "en": (
                "mostly false or made up",
                "several false claims",
                "one important false claim",
                "one minor doubtful detail",
                "no false or unsupported claims",
            ),
            "ko": (
                "대부분 거짓이거나 지어냄",
                "거짓 주장이 여럿",
                "중요한 거짓 주장 하나",
                "사소하게 의심스러운 세부 하나",
                "거짓이거나 근거 없는 주장 없음",
            ),
        },
    ),
}

PROMPT_TEXT = {
    "en": {
        "system": "You are a strict, impartial evaluator. Follow the evaluation steps, then "
        'reply with one JSON object only: {"reason": "<one or two sentences>", "score": <1-5>}.',
        "criteria": "Evaluation criteria",
        "steps": "Evaluation steps",
        "scale": "Scale",
        "question": "Question",
        "answer": "Answer",
        "reference": "Reference answer",
        "sources": "Sources",
        "pair_system": "You are a strict, impartial evaluator. Compare two answers to the same "
        "question on the criteria below. Do not prefer an answer for its position or length. "
        'Reply with one JSON object only: {"reason": "<one or two sentences>", '
        '"winner": "1" | "2" | "tie"}.',
        "answer_n": "Answer {n}",
    },
    "ko": {
        "system": "당신은 엄격하고 공정한 평가자입니다. 평가 단계를 따른 뒤 JSON 객체 하나로만 "
        '답하세요: {"reason": "<한두 문장>", "score": <1-5>}.',
        "criteria": "평가 기준",
        "steps": "평가 단계",
        "scale": "척도",
        "question": "질문",
        "answer": "답변",
        "reference": "참조 답변",
        "sources": "출처",
        "pair_system": "당신은 엄격하고 공정한 평가자입니다. 같은 질문에 대한 두 답변을 아래 "
        "기준으로 비교하세요. 위치나 길이 때문에 답변을 선호하지 마세요. JSON 객체 하나로만 "
        '답하세요: {"reason": "<한두 문장>", "winner": "1" | "2" | "tie"}.',
        "answer_n": "답변 {n}",
    },
}
