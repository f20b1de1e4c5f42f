"""Named patterns for text aimed at the model rather than at the reader (English and Korean).

A rule fires on the folded text (see normalise.fold), so full-width letters and Cyrillic look-alikes
do not slip past. Rules are exact where the learned detector is statistical: each has a name that
goes into the verdict, so a user reads *why* ("ignore-instructions"), not just a score. Their false
positive rate on benign prompts is measured with the detector in bench/guards.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Rule:
    name: str
    pattern: re.Pattern[str]
    score: float  # how sure a match alone makes us (the detector's probability scale)


def _r(name: str, pattern: str, score: float = 0.99, flags: int = re.I) -> Rule:
    return Rule(name, re.compile(pattern, flags | re.S), score)


_PREV = r"(?:previous|prior|above|earlier|preceding|former|initial|original|system|all(?: the)?)"
_ORDERS = r"(?:instructions?|prompts?|rules|directions|directives|guidelines|context|commands)"
_KO_PREV = r"(?:이전|위|앞|기존|지금까지|원래|최초|시스템|모든)[의에서]*"
_KO_ORDERS = r"(?:지시|지침|명령|규칙|프롬프트|설정|가이드라인|제약|제한)"

INJECTION_RULES: tuple[Rule, ...] = (
    _r(
        "ignore-instructions",
        rf"\b(?:ignore|disregard|forget|override|bypass|skip)\b.{{0,20}}?\b{_PREV}\b.{{0,20}}?\b{_ORDERS}\b",
    ),
    _r(
        "ignore-instructions",
        rf"{_KO_PREV}\s*(?:모든\s*)?{_KO_ORDERS}\S{{0,4}}\s*(?:은|는|을|를|들을)?\s*(?:모두\s*|전부\s*|다\s*)?"
        r"(?:무시|잊어|잊고|무효|취소|따르지\s*마)",
    ),
    _r(
        "system-prompt-extraction",
        r"\b(?:reveal|show|print|repeat|output|display|leak|dump|tell me"
        r"|what (?:is|are|was|were))\b"
        r".{0,30}?\b(?:your|the)\s+(?:system|initial|original|hidden|secret|full)\s+"
        r"(?:prompt|instructions?|message|rules)",
    ),
    _r(
        "system-prompt-extraction",
        r"(?:repeat|print|output)\b.{0,30}\b(?:words|text|everything)\s+(?:above|before)",
    ),
    _r(
        "system-prompt-extraction",
        r"(?:시스템|초기|원래|숨겨진|비밀|전체)\s*(?:프롬프트|지시문?|지침|명령어?|설정)\S{0,3}\s*"
        r"(?:을|를)?\s*(?:그대로\s*)?(?:보여|출력|알려|공개|반복|말해|복사|누설)",
    ),
    _r(
        "jailbreak-persona",
        r"\b(?:do anything now|jailbreak(?:ed)?|god mode|evil (?:confidant|mode)"
        r"|unfiltered and amoral|always intelligent and machiavellian)\b",
        0.95,
    ),
    # Persona names are upper case in the prompts that use them ("Dan" and "dude" are people).
    _r(
        "jailbreak-persona",
        r"\b(?:DAN|STAN|DUDE|AIM|BetterDAN)\b\s*(?::|mode|prompt|jailbreak)",
        0.95,
        0,
    ),
    _r(
        "jailbreak-persona",
        r"\b(?:no|without|free (?:of|from))\s+(?:any\s+)?(?:ethical|moral|content)?\s*"
        r"(?:restrictions|filters|limitations|guidelines|censorship)\b.{0,60}"
        r"\b(?:answer|respond|reply|act|pretend|behave)\b",
        0.9,
    ),
    _r(
        "jailbreak-persona",
        r"탈옥|개발자\s*모드|(?:제한|제약|검열|필터|윤리)\S{0,2}\s*(?:이|가)?\s*(?:없는|없이|해제)"
        r".{0,40}(?:답|대답|응답|행동|역할|척)",
        0.95,
    ),
    _r(
        "template-injection",
        r"<\|im_start\|>|<\|im_end\|>|<\|system\|>|<\|assistant\|>|<\|user\|>|\[/?INST\]|<</?SYS>>"
        r"|<\|begin_of_text\|>|<\|start_header_id\|>|^\s*#{2,}\s*(?:system|instruction)s?\s*:?\s*$",
    ),
    _r(
        "new-instructions",
        r"\b(?:new|updated|real|actual|hidden)\s+(?:instructions?|task|system prompt)\s*:"
        r"|\bfrom now on,?\s+(?:you|your|ignore|respond|answer|act)\b",
        0.9,
    ),
    _r(
        "new-instructions",
        r"(?:지금부터|이제부터)\s*(?:너|당신|넌|AI)|새로운\s*(?:지시|명령|임무)\s*:",
        0.9,
    ),
)

# Instructions addressed to the model from inside a document, and ways to smuggle data out of the
# answer: these matter in retrieved text, where a user never typed them.
CONTEXT_RULES: tuple[Rule, ...] = (
    _r(
        "addressed-to-model",
        r"\b(?:if you are|attention|note to|message for|instructions? for)\s+(?:an?\s+|the\s+)?"
        r"(?:AI|assistant|language model|LLM|chatbot|GPT|bot)\b"
        r"|\b(?:AI|assistant|language model|LLM|chatbot)s?\s*"
        r"(?:reading this|,\s*(?:you must|ignore|do not|instead))",
        0.95,
    ),
    _r(
        "addressed-to-model",
        r"(?:AI|인공지능|어시스턴트|챗봇|언어\s*모델|LLM)\s*(?:은|는|야|에게|라면|이라면)\s*"
        r".{0,30}(?:무시|반드시|대신|답하지|말하지|출력하)",
        0.95,
    ),
    _r("exfiltration-link", r"!\[[^\]]*\]\(\s*https?://[^)\s]*[?&][^)\s]*=[^)]*\)", 0.95),
    _r(
        "exfiltration-link",
        r"<img\b[^>]*\bsrc\s*=\s*[\"']?https?://[^\"'>\s]*[?&][^\"'>\s]*=",
        0.95,
    ),
    _r(
        "exfiltration-link",
        r"\b(?:send|post|append|include|encode)\b.{0,40}\b(?:conversation|chat history|user data|"
        r"previous messages|the user'?s)\b.{0,40}\b(?:url|link|https?://|image)",
        0.9,
    ),
    _r(
        "hidden-text",
        r"<!--.{0,400}?-->|<[^>]+(?:display\s*:\s*none|visibility\s*:\s*hidden|"
        r"font-size\s*:\s*0|opacity\s*:\s*0)[^>]*>",
        0.6,
    ),
)


def matches(text: str, rules: tuple[Rule, ...]) -> list[Rule]:
    """The rules that fire on `text` (already folded), strongest first."""
    return sorted((r for r in rules if r.pattern.search(text)), key=lambda r: -r.score)
