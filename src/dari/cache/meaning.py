"""What a question says, in the parts that embeddings blur: negation, numbers, names, comparative
direction, who does what to whom, and content words. Two questions that differ in any of these
must not share a cached answer, however close their embeddings are.

`parse` turns a question into `Meaning` once (at write time for cached entries, once per lookup for
the new question); `differs` compares two and names the first check that refuses, or returns "".
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from dari.index.analyzer import Analyzer

_HANGUL = re.compile(r"[\uac00-\ud7a3]")
_EN_WORD = re.compile(r"[A-Za-z][A-Za-z'’-]*|\d+(?:[.,:/]\d+)*%?")
_NUMBER = re.compile(r"\d+(?:[.,:/]\d+)*")

# English: words that flip a statement, words of direction/degree, and function words.
_EN_NEGATION = frozenset(
    {
        "not",
        "no",
        "never",
        "none",
        "nothing",
        "nobody",
        "neither",
        "nor",
        "without",
        "cannot",
        "can't",
        "cant",
        "won't",
        "don't",
        "doesn't",
        "didn't",
        "isn't",
        "aren't",
        "wasn't",
        "weren't",
        "shouldn't",
        "wouldn't",
        "couldn't",
        "mustn't",
        "hasn't",
        "haven't",
        "hadn't",
        "unable",
        "fail",
        "fails",
        "failed",
        "except",
        "excluding",
    }
)
_EN_DIRECTION = {
    # word -> (axis, sign): "more"/"less" share an axis and point opposite ways.
    "more": ("amount", 1),
    "less": ("amount", -1),
    "fewer": ("amount", -1),
    "most": ("amount", 2),
    "least": ("amount", -2),
    "higher": ("height", 1),
    "lower": ("height", -1),
    "highest": ("height", 2),
    "lowest": ("height", -2),
    "bigger": ("size", 1),
    "larger": ("size", 1),
    "smaller": ("size", -1),
    "biggest": ("size", 2),
    "largest": ("size", 2),
    "smallest": ("size", -2),
    "before": ("time", -1),
    "after": ("time", 1),
    "earlier": ("time", -1),
    "later": ("time", 1),
    "first": ("order", -1),
    "last": ("order", 1),
    "older": ("age", 1),
    "younger": ("age", -1),
    "oldest": ("age", 2),
    "youngest": ("age", -2),
    "newer": ("age", -1),
    "newest": ("age", -2),
    "better": ("quality", 1),
    "worse": ("quality", -1),
    "best": ("quality", 2),
    "worst": ("quality", -2),
    "faster": ("speed", 1),
    "slower": ("speed", -1),
    "fastest": ("speed", 2),
    "slowest": ("speed", -2),
    "longer": ("length", 1),
    "shorter": ("length", -1),
    "longest": ("length", 2),
    "shortest": ("length", -2),
    "increase": ("change", 1),
    "decrease": ("change", -1),
    "rise": ("change", 1),
    "fall": ("change", -1),
    "above": ("height", 1),
    "below": ("height", -1),
    "over": ("height", 1),
    "under": ("height", -1),
    "maximum": ("amount", 2),
    "minimum": ("amount", -2),
    "max": ("amount", 2),
    "min": ("amount", -2),
    "cheaper": ("price", -1),
    "cheapest": ("price", -2),
    "expensive": ("price", 1),
}
_EN_NUMBER_WORDS = {
    w: str(i)
    for i, w in enumerate(
        [
            "zero",
            "one",
            "two",
            "three",
            "four",
            "five",
            "six",
            "seven",
            "eight",
            "nine",
            "ten",
            "eleven",
            "twelve",
            "thirteen",
            "fourteen",
            "fifteen",
            "sixteen",
            "seventeen",
            "eighteen",
            "nineteen",
            "twenty",
        ]
    )
} | {
    "thirty": "30",
    "forty": "40",
    "fifty": "50",
    "hundred": "100",
    "thousand": "1000",
    "million": "1000000",
    "billion": "1000000000",
    "once": "1",
    "twice": "2",
    "half": "0.5",
    "first": "1st",
    "second": "2nd",
    "third": "3rd",
    "fourth": "4th",
    "fifth": "5th",
}
_EN_FUNCTION = frozenset(
    [
        "a",
        "an",
        "the",
        "and",
        "or",
        "but",
        "if",
        "then",
        "than",
        "that",
        "this",
        "these",
        "those",
        "there",
        "here",
        "of",
        "in",
        "on",
        "at",
        "to",
        "for",
        "from",
        "by",
        "with",
        "about",
        "as",
        "into",
        "onto",
        "upon",
        "out",
        "up",
        "down",
        "off",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "being",
        "am",
        "do",
        "does",
        "did",
        "done",
        "doing",
        "have",
        "has",
        "had",
        "having",
        "will",
        "would",
        "shall",
        "should",
        "can",
        "could",
        "may",
        "might",
        "must",
        "i",
        "me",
        "my",
        "mine",
        "we",
        "us",
        "our",
        "you",
        "your",
        "he",
        "him",
        "his",
        "she",
        "her",
        "it",
        "its",
        "they",
        "them",
        "their",
        "what",
        "which",
        "who",
        "whom",
        "whose",
        "when",
        "where",
        "why",
        "how",
        "whether",
        "so",
        "such",
        "very",
        "too",
        "also",
        "just",
        "only",
        "even",
        "still",
        "yet",
        "again",
        "any",
        "some",
        "all",
        "each",
        "every",
        "both",
        "either",
        "much",
        "many",
        "s",
        "t",
        "one's",
        "own",
        "same",
        "other",
        "another",
        "'s",
        "also",
        "please",
        "tell",
        "know",
        "let",
        "get",
        "got",
    ]
)
_EN_PREPOSITIONS = frozenset(
    [
        "of",
        "in",
        "on",
        "at",
        "to",
        "for",
        "from",
        "by",
        "with",
        "about",
        "into",
        "onto",
        "upon",
        "between",
        "against",
        "among",
        "through",
        "toward",
        "towards",
        "via",
        "per",
        "than",
        "versus",
        "vs",
    ]
)

# Korean: morpheme tags that carry content, negation morphemes, numerals, and case particles.
_KO_CONTENT = frozenset({"NNG", "NNP", "NR", "NP", "VV", "VA", "XR", "SL", "SN", "SH", "MAG"})
_KO_NEGATION = {
    ("안", "MAG"),
    ("못", "MAG"),
    ("않", "VX"),
    ("못하", "VX"),
    ("없", "VA"),
    ("아니", "VCN"),
    ("말", "VX"),
    ("불", "XPN"),
    ("비", "XPN"),
    ("무", "XPN"),
    ("미", "XPN"),
}
_KO_NUMERALS = {
    "하나": "1",
    "한": "1",
    "둘": "2",
    "두": "2",
    "셋": "3",
    "세": "3",
    "석": "3",
    "넷": "4",
    "네": "4",
    "다섯": "5",
    "여섯": "6",
    "일곱": "7",
    "여덟": "8",
    "아홉": "9",
    "열": "10",
    "스물": "20",
    "스무": "20",
    "서른": "30",
    "마흔": "40",
    "쉰": "50",
    "백": "100",
    "천": "1000",
    "만": "10000",
    "일": "1",
    "이": "2",
    "삼": "3",
    "사": "4",
    "오": "5",
    "육": "6",
    "칠": "7",
    "팔": "8",
    "구": "9",
    "십": "10",
    "첫": "1st",
    "첫째": "1st",
    "둘째": "2nd",
    "셋째": "3rd",
}
_KO_DIRECTION = {
    "많": ("amount", 1),
    "적": ("amount", -1),
    "높": ("height", 1),
    "낮": ("height", -1),
    "크": ("size", 1),
    "작": ("size", -1),
    "이전": ("time", -1),
    "이후": ("time", 1),
    "전": ("time", -1),
    "후": ("time", 1),
    "먼저": ("time", -1),
    "나중": ("time", 1),
    "빠르": ("speed", 1),
    "느리": ("speed", -1),
    "길": ("length", 1),
    "짧": ("length", -1),
    "늘": ("change", 1),
    "줄": ("change", -1),
    "증가": ("change", 1),
    "감소": ("change", -1),
    "오르": ("change", 1),
    "내리": ("change", -1),
    "최대": ("amount", 2),
    "최소": ("amount", -2),
    "최고": ("quality", 2),
    "최저": ("height", -2),
    "이상": ("bound", 1),
    "이하": ("bound", -1),
    "초과": ("bound", 1),
    "미만": ("bound", -1),
    "비싸": ("price", 1),
    "싸": ("price", -1),
    "저렴": ("price", -1),
    "좋": ("quality", 1),
    "나쁘": ("quality", -1),
    "새롭": ("age", -1),
    "오래되": ("age", 1),
}
_KO_ROLE = {
    "JKS": "subject",
    "JKO": "object",
    "JKB": "adverbial",
    "JKG": "of",
    "JX": "topic",
    "JC": "and",
}


@dataclass(frozen=True)
class Meaning:
    """The parts of one question that the checks compare."""

    lang: str
    content: tuple[str, ...]  # content lemmas, in order
    numbers: tuple[str, ...]  # sorted, with repeats: "1층 2개, 2층 1개" ≠ "두 층에 한 개씩"
    negations: int  # how many negating words; only the parity matters
    entities: frozenset[str]  # names: capitalised words, Korean proper nouns, foreign words
    directions: tuple[tuple[str, int], ...]  # (axis, sign) of comparative words, in order
    roles: tuple[tuple[str, str], ...]  # (content lemma, its role: particle or preposition)


class MeaningParser:
    """Parses questions with the shared analyzer (Kiwi for Korean, a stemmer for English)."""

    def __init__(self, analyzer: Analyzer) -> None:
        self._analyzer = analyzer

    @cached_property
    def _stem(self) -> Any:
        import tantivy

        return (
            tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.raw())
            .filter(tantivy.Filter.lowercase())
            .filter(tantivy.Filter.stemmer("english"))
            .build()
        )

    def parse(self, text: str) -> Meaning:
        text = unicodedata.normalize("NFKC", text)
        if _HANGUL.search(text):
            return self._korean(text)
        return self._english(text)

    def parse_many(self, texts: Sequence[str]) -> list[Meaning]:
        return [self.parse(t) for t in texts]

    def stem(self, word: str) -> str:
        out = self._stem.analyze(word)
        return str(out[0]) if out else word.lower()

    def _english(self, text: str) -> Meaning:
        words = _EN_WORD.findall(text)
        content: list[str] = []
        numbers: list[str] = []
        entities: set[str] = set()
        directions: list[tuple[str, int]] = []
        roles: list[tuple[str, str]] = []
        negations = 0
        prep = "subject"
        for i, raw in enumerate(words):
            w = raw.lower().replace("’", "'")
            if w.endswith("n't") or w in _EN_NEGATION:
                negations += 1
                continue
            if _NUMBER.fullmatch(w.rstrip("%")):
                numbers.append(_number(w))
                continue
            if w in _EN_NUMBER_WORDS:
                numbers.append(_EN_NUMBER_WORDS[w])
                continue
            if w in _EN_DIRECTION:
                directions.append(_EN_DIRECTION[w])
                continue
            if w in _EN_PREPOSITIONS:
                prep = w
                continue
            if w in _EN_FUNCTION or len(w) < 2:
                continue
            lemma = self.stem(w)
            content.append(lemma)
            roles.append((lemma, prep))
            if raw[0].isupper() and (i > 0 or raw[1:2].isupper()):
                entities.add(lemma)
        return Meaning(
            "en",
            tuple(content),
            tuple(sorted(numbers)),
            negations,
            frozenset(entities),
            tuple(directions),
            tuple(roles),
        )

    def _korean(self, text: str) -> Meaning:
        tokens = list(self._analyzer.kiwi.tokenize(text))
        content: list[str] = []
        numbers: list[str] = []
        entities: set[str] = set()
        directions: list[tuple[str, int]] = []
        pending: list[str] = []  # nouns waiting for their particle
        digits: list[str] = []  # "4", "만", "7", "천" -> 47000
        roles: list[tuple[str, str]] = []
        negations = 0
        for tok in tokens:
            form, tag = str(tok.form), str(tok.tag).split("-")[0]
            if (form, tag) in _KO_NEGATION:
                negations += 1
                continue
            if tag == "SN" or (tag in {"NR", "MM"} and form in _KO_NUMERALS):
                digits.append(_number(form) if tag == "SN" else _KO_NUMERALS[form])
                continue
            if digits:
                numbers.append(_korean_number(digits))
                digits = []
            if tag in _KO_ROLE:
                roles.extend((n, _KO_ROLE[tag]) for n in pending)
                pending = []
                continue
            if form in _KO_DIRECTION and tag in {"VA", "VV", "NNG", "MAG", "XR"}:
                directions.append(_KO_DIRECTION[form])
                continue
            if tag not in _KO_CONTENT or form in {"더", "좀", "잘", "꼭", "정말", "너무", "아주"}:
                continue
            lemma = self.stem(form) if tag == "SL" else form
            content.append(lemma)
            if tag in {"NNP", "SL", "SH"}:
                entities.add(lemma)
            if tag.startswith("N") or tag in {"SL", "SH", "XR"}:
                pending.append(lemma)
        if digits:
            numbers.append(_korean_number(digits))
        return Meaning(
            "ko",
            tuple(content),
            tuple(sorted(numbers)),
            negations,
            frozenset(entities),
            tuple(directions),
            tuple(roles),
        )


def _number(token: str) -> str:
    """One spelling per number: 1,000 = 1000; 3.50 = 3.5."""
    t = token.rstrip("%").replace(",", "")
    if re.fullmatch(r"\d+\.\d+", t):
        t = t.rstrip("0").rstrip(".")
    return t.lstrip("0") or "0"


_KO_UNIT_WORDS = frozenset({"10", "100", "1000", "10000"})
_UNITS = {"10": 10, "100": 100, "1000": 1000, "10000": 10_000}


def _korean_number(parts: list[str]) -> str:
    """Digits and Korean numerals written together as one number: 4만7천 = 47000, 삼 = 3."""
    if len(parts) == 1 or not all(p.replace(".", "").isdigit() for p in parts):
        return "".join(parts)
    total, current = 0.0, 0.0
    for p in parts:
        unit = _UNITS.get(p) if p in _KO_UNIT_WORDS else None
        if unit is None:
            current = current * 10 + float(p) if current and len(p) == 1 else float(p)
        elif unit == 10_000:
            total += (current or 1) * unit
            current = 0
        else:
            total += (current or 1) * unit
            current = 0
    value = total + current
    return str(int(value)) if value == int(value) else str(value)


def _matched(word: str, others: set[str]) -> bool:
    """A word is found on the other side when equal, or (Korean stems, compounds) when one
    contains the other and they share at least two characters."""
    if word in others:
        return True
    if len(word) >= 2 and _HANGUL.search(word):
        return any(len(o) >= 2 and (word in o or o in word) for o in others)
    return False


def unmatched(a: Meaning, b: Meaning) -> tuple[int, int]:
    """How many content words of each side the other side lacks; a comparative word only one
    side has ("the largest airline" vs "the airline") counts as one."""
    sa, sb = set(a.content), set(b.content)
    da, db = {d[0] for d in a.directions}, {d[0] for d in b.directions}
    return (
        sum(1 for w in sa if not _matched(w, sb)) + len(da - db),
        sum(1 for w in sb if not _matched(w, sa)) + len(db - da),
    )


def differs(a: Meaning, b: Meaning, max_unmatched: int = 0) -> str:
    """The name of the first check under which `a` and `b` ask different things, or ""."""
    if a.negations % 2 != b.negations % 2:
        return "negation"
    if a.numbers != b.numbers:
        return "number"
    if _other_entity(a, b):
        return "entity"
    if _opposite(a, b):
        return "comparative"
    if _swapped(a, b):
        return "role"
    ua, ub = unmatched(a, b)
    if max(ua, ub) > max_unmatched:
        return "content"
    return ""


def _other_entity(a: Meaning, b: Meaning) -> bool:
    """One name put in the place of another: each side has a name the other lacks (a name
    written lower-case or inside a compound on the other side still counts as there)."""
    ca, cb = set(a.content), set(b.content)
    return any(not _matched(e, cb) for e in a.entities) and any(
        not _matched(e, ca) for e in b.entities
    )


def _opposite(a: Meaning, b: Meaning) -> bool:
    """Comparative words on the same axis pointing opposite ways (more/less, 이상/이하)."""
    sa, sb = dict(a.directions), dict(b.directions)
    return any(axis in sb and (sign > 0) != (sb[axis] > 0) for axis, sign in sa.items())


def _swapped(a: Meaning, b: Meaning) -> bool:
    """Who does what to whom: a word both sides share, in a different role on each side (the
    subject of one is the object of the other; "from Seoul to Busan" vs "from Busan to Seoul")."""
    ra, rb = _role_map(a), _role_map(b)
    shared = [w for w in ra if w in rb]
    if sum(1 for w in shared if frozenset({ra[w], rb[w]}) in _SWAPS) >= 2:
        return True
    if a.lang == "en":  # English has no particles: the order of the names is the roles
        names = a.entities & b.entities
        order_a = [w for w in dict.fromkeys(a.content) if w in names]
        order_b = [w for w in dict.fromkeys(b.content) if w in names]
        return len(order_a) >= 2 and order_a != order_b
    return False


def _role_map(m: Meaning) -> dict[str, str]:
    out: dict[str, str] = {}
    for word, role in m.roles:
        out.setdefault(word, "subject" if role == "topic" else role)
    return out


# Role pairs that make a different question when two shared words trade them.
_SWAPS = frozenset(
    frozenset(p)
    for p in (
        ("subject", "object"),
        ("from", "to"),
        ("subject", "than"),
        ("than", "object"),
        ("subject", "by"),
        ("from", "into"),
        ("for", "from"),
    )
)
