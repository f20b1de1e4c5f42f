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

from dari.cache import lexicon as lex
from dari.index.analyzer import Analyzer

_HANGUL = re.compile(r"[\uac00-\ud7a3]")
_EN_WORD = re.compile(r"[A-Za-z][A-Za-z'’-]*|\d+(?:[.,:/]\d+)*%?")
_NUMBER = re.compile(r"\d+(?:[.,:/]\d+)*")

# Korean: morpheme tags that carry content, and the roles case particles give.
_KO_CONTENT = frozenset({"NNG", "NNP", "NR", "NP", "VV", "VA", "XR", "SL", "SN", "SH", "MAG"})
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
            if w.endswith("n't") or w in lex.EN_NEGATION:
                negations += 1
                continue
            if _NUMBER.fullmatch(w.rstrip("%")):
                numbers.append(_number(w))
                continue
            if w in lex.EN_NUMBER_WORDS:
                numbers.append(lex.EN_NUMBER_WORDS[w])
                continue
            if w in lex.EN_DIRECTION:
                directions.append(lex.EN_DIRECTION[w])
                continue
            if w in lex.EN_PREPOSITIONS:
                prep = w
                continue
            if w in lex.EN_FUNCTION or len(w) < 2:
                continue
            lemma = self.stem(w)
            content.append(lemma)
            roles.append((lemma, prep))
            if raw[0].isupper() and (i > 0 or raw[1:2].isupper()):
                entities.add(lemma)
        return _meaning("en", content, numbers, negations, entities, directions, roles)

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
            if (form, tag) in lex.KO_NEGATION:
                negations += 1
                continue
            if tag == "SN" or (tag in {"NR", "MM"} and form in lex.KO_NUMERALS):
                digits.append(_number(form) if tag == "SN" else lex.KO_NUMERALS[form])
                continue
            if digits:
                numbers.append(_korean_number(digits))
                digits = []
            if tag in _KO_ROLE:
                roles.extend((n, _KO_ROLE[tag]) for n in pending)
                pending = []
                continue
            if form in lex.KO_DIRECTION and tag in {"VA", "VV", "NNG", "MAG", "XR"}:
                directions.append(lex.KO_DIRECTION[form])
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
        return _meaning("ko", content, numbers, negations, entities, directions, roles)


def _meaning(
    lang: str,
    content: list[str],
    numbers: list[str],
    negations: int,
    entities: set[str],
    directions: list[tuple[str, int]],
    roles: list[tuple[str, str]],
) -> Meaning:
    return Meaning(
        lang,
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
