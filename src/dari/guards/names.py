"""Person names, where they can be told without a named-entity model.

Korean: Kiwi tags names as proper nouns (NNP); a proper noun of two to four syllables that starts
with a common surname is a name when a title follows it ("김철수 님", "이준호 과장") or a label
precedes it ("성명: 박준혁"). English: capitalised words after a title ("Mr. John Smith") or a
label ("Name: Jane Doe"). Measured in bench/guards.py; recall on free-running English names is low
by design (no NER model ships offline).
"""

from __future__ import annotations

import re
from typing import Any

from dari.guards.pii import PIIMatch

# The most common Korean surnames (about 98 % of the population), one syllable each, plus the
# common two-syllable ones.
_SURNAMES = set(
    "김이박최정강조윤장임한오서신권황안송류전홍고문양손배백허유남심노하곽성차주우구민진지엄채원"
    "천방공현함변염여추도소석선설마길연위표명기반왕금옥육인맹제모탁국어은편용예경봉사부가복태목"
    "형피계두감음빈동온호범좌팽승간상시갈"
)
_SURNAMES2 = ("남궁", "황보", "제갈", "선우", "독고", "사공", "서문")
_TITLES = (
    *[
        "님",
        "씨",
        "고객",
        "선생",
        "선생님",
        "과장",
        "대리",
        "부장",
        "차장",
        "팀장",
        "사원",
        "주임",
        "실장",
        "이사",
        "대표",
        "사장",
        "교수",
    ],
    *[
        "박사",
        "기자",
        "엔지니어",
        "상담원",
        "담당자",
        "매니저",
        "학생",
        "군",
        "양",
        "환자",
        "회원",
        "원장",
        "변호사",
        "의사",
        "간호사",
    ],
)
_LABEL = re.compile(
    r"(?:성명|이름|성함|담당자?|작성자|상담원|고객명|신청인|구매자|여행자명|수령인|보호자|환자명|"
    r"예금주|명의자|대표자|name|guest name|customer|contact person)\s*(?:\([^)]*\))?\s*[:：]?\s*$",
    re.I,
)
_PLACE_END = tuple("구시도동군읍면리국역산강로길")
_EN_NAME = re.compile(
    r"(?:\b(?:Mr|Mrs|Ms|Miss|Dr|Prof|Sir|Madam)\.?\s+|(?:\bname\s*(?:is|:)\s*))"
    r"([A-Z][a-z'-]+(?:\s+[A-Z]\.?)?(?:\s+[A-Z][a-z'-]+){0,2})"
)


MAX_CHARS = 50_000  # Korean names are looked for in the first 50k characters (Kiwi's cost)


def _surname(word: str) -> bool:
    return word[:2] in _SURNAMES2 or word[0] in _SURNAMES


def find_names(text: str, kiwi: Any | None) -> list[PIIMatch]:
    """Name spans in `text`; Korean ones need a Kiwi instance (None skips them)."""
    found = [
        PIIMatch("name", m.start(1), m.end(1), "name:title-en", 0.8)
        for m in _EN_NAME.finditer(text)
    ]
    if kiwi is None or not re.search(r"[\uac00-\ud7a3]", text):
        return found
    tokens = kiwi.tokenize(text[:MAX_CHARS])
    for i, tok in enumerate(tokens):
        if tok.tag not in ("NNP", "NNG"):
            continue
        start, end, form = tok.start, tok.start + tok.len, tok.form
        # Kiwi may split "박준혁" into 박 + 준혁: join a surname with the proper noun after it.
        nxt = tokens[i + 1] if i + 1 < len(tokens) else None
        if len(form) == 1 and nxt is not None and nxt.tag == "NNP" and nxt.start == end:
            form, end = form + nxt.form, nxt.start + nxt.len
        if not (2 <= len(form) <= 4 and re.fullmatch(r"[\uac00-\ud7a3]+", form)):
            continue
        if not _surname(form) or form.endswith(_PLACE_END):
            continue
        after = text[end : end + 8].lstrip()
        titled = any(after.startswith(t) for t in _TITLES)
        labelled = bool(_LABEL.search(text[max(0, start - 20) : start]))
        if labelled or (titled and (tok.tag == "NNP" or len(form) == 3)):
            found.append(PIIMatch("name", start, end, "name:kiwi", 0.8 if titled else 0.9))
        elif tok.tag == "NNP" and len(form) == 3:  # most Korean names: surname + two syllables
            found.append(PIIMatch("name", start, end, "name:kiwi-bare", 0.5))
    # A name found once is a name wherever else it appears (Kiwi may tag a repeat differently).
    for name in {text[m.start : m.end] for m in found if m.end - m.start >= 3}:
        found += [
            PIIMatch("name", m.start(), m.end(), "name:repeat", 0.8)
            for m in re.finditer(re.escape(name), text)
        ]
    first: dict[tuple[int, int], PIIMatch] = {}
    for m in found:
        first.setdefault((m.start, m.end), m)
    return sorted(first.values(), key=lambda m: m.start)
