"""Personal data in text: find it by pattern, keep what a checksum or nearby label confirms, redact.

Each kind is a regular expression for the candidate and a check that decides: a checksum where the
format has one (Luhn for cards, mod-97 for IBAN, the resident registration number's digit), the
number's own rules (a birth date inside an RRN, IPv4 octets), or a label nearby ("계좌", "account",
"여권", "passport") for formats that are otherwise just digits. Korean names come from Kiwi's
proper-noun tags plus a surname and a title or label next to them.

Matches carry offsets and a rule name; callers log those, never the matched text.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from stdnum import bitcoin, iban, luhn
from stdnum.kr import rrn as kr_rrn

from dari.guards.normalise import fold

# Placeholders written by redact(): language-neutral, so a redacted question still reads.
LABELS = {
    "email": "[EMAIL]",
    "phone": "[PHONE]",
    "rrn": "[RRN]",
    "passport": "[PASSPORT]",
    "card": "[CARD]",
    "account": "[ACCOUNT]",
    "ip": "[IP]",
    "driver_license": "[DRIVER_LICENSE]",
    "iban": "[IBAN]",
    "ssn": "[SSN]",
    "birth_date": "[BIRTH_DATE]",
    "crypto": "[CRYPTO_WALLET]",
    "name": "[NAME]",
}
STRUCTURED = tuple(k for k in LABELS if k != "name")
CONTEXT_CHARS = 24  # how far before a number a label such as "계좌번호:" may stand


@dataclass(frozen=True)
class PIIMatch:
    kind: str  # a key of LABELS
    start: int
    end: int
    rule: str  # which check confirmed it, e.g. "card:luhn", "account:label"
    score: float  # 1.0 checksum-confirmed; lower for pattern + label

    def value(self, text: str) -> str:
        return text[self.start : self.end]


def _digits(s: str) -> str:
    return re.sub(r"\D", "", s)


# Digits in disguise, one character for one so offsets hold: OCR's look-alike letters inside a
# token that is mostly digits ("O1O-l234-5G78"), and numbers spelt in Hangul syllables
# ("공일공-일이삼사-오육칠팔").
_OCR = str.maketrans("OolIiZzSGgB", "00111225698")
_OCR_TOKEN = re.compile(r"[0-9A-Za-z](?:[0-9A-Za-z*]|-(?=[0-9A-Za-z*])){7,}")
_HANGUL_DIGITS = str.maketrans("공영일이삼사오육칠팔구", "00123456789")
_HANGUL_NUMBER = re.compile(r"[공영일이삼사오육칠팔구]{2,4}(?:-[공영일이삼사오육칠팔구]{2,6}){2,3}")


def _undisguised(text: str) -> str:
    def ocr(m: re.Match[str]) -> str:
        token = m.group(0)
        alnum = [c for c in token if c.isalnum()]
        digits = sum(c.isdigit() for c in alnum)
        return token.translate(_OCR) if digits >= 4 and digits / len(alnum) >= 0.6 else token

    text = _OCR_TOKEN.sub(ocr, text)
    return _HANGUL_NUMBER.sub(lambda m: m.group(0).translate(_HANGUL_DIGITS), text)


def _label_before(text: str, start: int, labels: re.Pattern[str]) -> bool:
    """A label shortly before `start`, or heading its column when it stands in a table."""
    if labels.search(text[max(0, start - CONTEXT_CHARS) : start]):
        return True
    return _column_label(text, start, labels)


TABLE_ROWS = 50  # how many rows above a cell its column's header may stand


def _column_label(text: str, start: int, labels: re.Pattern[str]) -> bool:
    """Whether a row above, in the same '|' table, has a label in the cell's column."""
    row = text.rfind("\n", 0, start) + 1
    end = text.find("\n", start)
    if "|" not in text[row : end if end >= 0 else len(text)]:
        return False
    column = text.count("|", row, start)
    for _ in range(TABLE_ROWS):
        if row == 0:
            return False
        above = text.rfind("\n", 0, row - 1) + 1
        cells = text[above : row - 1].split("|")
        if len(cells) < 2:
            return False
        if column < len(cells) and labels.search(cells[column]):
            return True
        row = above
    return False


# --- candidates -----------------------------------------------------------------------------------
_D = r"[0-9]"
_SEP = r"[ ]?-?[ ]?"
# Boundaries are ASCII: Korean particles attach straight to a number ("010-1234-5678로"), and a
# sentence may end right after one ("call 905-674-3793.").
_B = r"(?<![0-9A-Za-z_-])"
_E = r"(?![0-9A-Za-z_]|[.-][0-9])"
_EMAIL = re.compile(r"(?<![\w.+*-])[\w.+*-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
# Spelt-out addresses: "kim[at]mail[dot]com", "kim 골뱅이 mail 닷 com".
_AT = r"\s*(?:\[at\]|\(at\)|\(a\)|\{at\}|\bat\b|골뱅이)\s*"
_DOT = r"\s*(?:\[dot\]|\(dot\)|\{dot\}|\bdot\b|닷|\.)\s*"
_EMAIL_SPELT = re.compile(
    rf"(?<![\w.+-])[A-Za-z0-9._+-]+{_AT}[A-Za-z0-9-]+(?:{_DOT}[A-Za-z0-9-]+)*{_DOT}(?:com|net|org|kr|io|co|me|edu|gov)\b",
    re.I,
)
# A resident (or foreigner) registration number: YYMMDD, sex/century digit 1-8, six more; digits
# may be spaced out or partly masked with '*' (still personal data).
_RRN = re.compile(rf"{_B}({_D}(?:[ ]?{_D}){{5}}){_SEP}([1-8*](?:[ ]?[0-9*]){{6}}){_E}")
_CARD = re.compile(rf"{_B}(?:\d[ -]?){{11,18}}\d{_E}")
_GROUPED_CARD = re.compile(rf"{_B}\d{{4}}[ -][\d*]{{4}}[ -][\d*]{{4}}[ -][\d*]{{4}}{_E}")
_IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![0-9A-Za-z_/]|\.\d)")
_IPV6 = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:/])")
# Country, check digits, then groups of four, printed with or without a space between groups.
_IBAN = re.compile(
    r"(?<![0-9A-Za-z])[A-Za-z]{2}\d{2}(?:[ ]?[A-Za-z0-9]{4}){2,7}(?:[ ]?[A-Za-z0-9]{1,3})?"
    r"(?![0-9A-Za-z])"
)
# Cryptocurrency wallets: Bitcoin (base58 or bech32, checked by stdnum) and Ethereum (0x + 40 hex).
_CRYPTO = re.compile(
    r"(?<![0-9A-Za-z])(?:[13][1-9A-HJ-NP-Za-km-z]{25,34}|bc1[02-9ac-hj-np-z]{11,71}"
    r"|0x[0-9a-fA-F]{40})(?![0-9A-Za-z])"
)
_SSN = re.compile(rf"{_B}(\d{{3}})-(\d{{2}})-(\d{{4}}){_E}")
_KR_LICENSE = re.compile(rf"{_B}\d{{2}}-\d{{2}}-\d{{6}}-\d{{2}}{_E}")
# Other licences are only numbers (US states: 7 to 13 characters, a letter first in some).
_LICENSE = re.compile(rf"{_B}[A-Z]{{0,2}}\d[\d-]{{4,16}}\d{_E}")
_LICENSE_LABEL = re.compile(r"driver|driving|licen[cs]e\s*(?:no\b|number|#)|\bDL\b|면허", re.I)
_PHONE = re.compile(
    rf"(?<![0-9A-Za-z_+.-])"
    rf"(?:\+\d{{1,3}}[ .-]?\(?0?\)?[ .-]?\d{{1,5}}|\(0?\d{{1,4}}\)[ .-]?\d{{2,5}}|\d{{2,5}})"
    rf"(?:[ .-][\d*X]{{2,8}}){{1,4}}(?:\s?(?:x|ext\.?)\s?\d{{1,5}})?{_E}"
    rf"|{_B}\d{{7,12}}{_E}"
    rf"|(?<![0-9A-Za-z_+])\+\d{{9,14}}{_E}"
)
_KR_MOBILE = re.compile(r"^(?:\+?82[ -]?)?0?1[016789][ .-]?\d{3,4}[ .-]?\d{4}$")
_KR_MASKED_MOBILE = re.compile(r"^01[016789][ .-][\dX*]{3,4}[ .-][\dX*]{4}$")
_KR_MASKED_LANDLINE = re.compile(r"^0(?:2|[3-6][1-5]|70)[ .-][\dX*]{3,4}[ .-][\dX*]{4}$")
_KR_LANDLINE = re.compile(r"^(?:\+?82[ -]?)?0?(?:2|[3-6][1-5]|70)[ .-]?\d{3,4}[ .-]?\d{4}$")
_PASSPORT = re.compile(rf"{_B}(?:[A-Z]{{1,2}}\d{{7,8}}|[A-Z]\d{{3}}[A-Z]\d{{4}}|\d{{9}}){_E}")
_LABELLED_PASSPORT = re.compile(rf"{_B}(?=[A-Z0-9]*\d[A-Z0-9]*\d[A-Z0-9]*\d)[A-Z0-9]{{8,9}}{_E}")
_KR_PASSPORT = re.compile(rf"{_B}[MSRODG]\d{{8}}{_E}")  # the Korean booklet format
_ACCOUNT = re.compile(rf"{_B}[\d*]{{2,6}}(?:-[\d*]{{2,7}}){{1,3}}{_E}|{_B}\d{{10,14}}{_E}")
_BIRTH = re.compile(
    r"(?<!\d)(?:19|20)\d{2}(?:년\s*\d{1,2}월\s*\d{1,2}일|[./-]\d{1,2}[./-]\d{1,2})(?!\d)"
    r"|(?<!\d)\d{1,2}/\d{1,2}/(?:19|20)\d{2}(?!\d)"
)

_ACCOUNT_LABEL = re.compile(
    r"계좌|통장|입금|송금|이체|은행|뱅크|농협|국민|신한|우리|하나|기업|카카오|토스|새마을|우체국"
    r"|account|acct|bank|routing|iban|swift|transfer|wire",
    re.I,
)
_PASSPORT_LABEL = re.compile(r"여권|passport", re.I)
_PHONE_LABEL = re.compile(
    r"전화|연락처|휴대폰|핸드폰|휴대전화|tel|phone|mobile|cell|fax|call|contact|desk|whatsapp"
    r"|\bsms\b|text(?:ed)? me|messages? to|answering at|reach (?:me|us|him|her) at|registered",
    re.I,
)
# A kind written after the number, as address blocks do ("416 60 039 office", "…-Fax").
_PHONE_LABEL_AFTER = re.compile(r"^\s?[-(]?\s?(?:office|mobile|cell|fax|home|work|desk)\b", re.I)
_BIRTH_LABEL = re.compile(r"생년월일|생일|출생|태어|birth|born|dob", re.I)
_RRN_LABEL = re.compile(r"주민|외국인등록|등록번호|rrn|resident", re.I)
_CARD_LABEL = re.compile(r"카드|card|visa|master|amex|\bcc\b|credit|debit", re.I)
_VERSION_LABEL = re.compile(
    r"(?:\bv|버전|version|ver\.?|build|빌드|릴리즈|java|framework)\s*:?\s*$", re.I
)
# Korean company hotlines (1588-xxxx…) and toll-free numbers are published, not personal.
_HOTLINE = re.compile(r"^(?:15|16|18)\d{2}-\d{4}$|^0[78]0-")


# --- checks ---------------------------------------------------------------------------------------
def _rrn(text: str, m: re.Match[str]) -> tuple[str, float] | None:
    front, back = _digits(m.group(1)), m.group(2).replace(" ", "")
    month, day = int(front[2:4]), int(front[4:6])
    if not (1 <= month <= 12 and 1 <= day <= 31):
        return None
    if "*" not in back and kr_rrn.is_valid(front + back):
        return "rrn:checksum", 1.0
    # Numbers issued since October 2020 carry no check digit, and masked ones cannot be checked:
    # a hyphenated YYMMDD-N###### is the format itself, a bare 13-digit run needs a label.
    if "-" in m.group(0) or _label_before(text, m.start(), _RRN_LABEL):
        return "rrn:format", 0.8
    return None


def _card(text: str, m: re.Match[str]) -> tuple[str, float] | None:
    digits = _digits(m.group(0))
    card_label = _label_before(text, m.start(), _CARD_LABEL)
    if not card_label and _label_before(text, m.start(), _ACCOUNT_LABEL):
        return None  # an account number that happens to pass Luhn ("계좌번호: 267-910123-45678")
    if _years(m.group(0)):
        return None
    if 13 <= len(digits) <= 19 and luhn.is_valid(digits) and digits[0] in "12345689":
        return "card:luhn", 1.0
    if 12 <= len(digits) <= 19 and card_label:  # Maestro has 12; a labelled number is a card
        return "card:label", 0.8
    return None


def _grouped_card(text: str, m: re.Match[str]) -> tuple[str, float] | None:
    """Four groups of four: a card when masked ("9430-12**-****-5678") or labelled as one."""
    if "*" in m.group(0):
        return "card:masked", 0.7
    return ("card:label", 0.8) if _label_before(text, m.start(), _CARD_LABEL) else None


def _ipv4(text: str, m: re.Match[str]) -> tuple[str, float] | None:
    parts = m.group(0).split(".")
    if not all(0 <= int(p) <= 255 and (p == "0" or not p.startswith("0")) for p in parts):
        return None
    # Not a person's address: networks ("10.0.0.0/8", "…​.0"), masks, loopback, "any", and
    # four-part version numbers ("v4.2.1.3892", "버전: 4.8.1.0").
    if parts[-1] in ("0", "255") or parts[0] in ("0", "127", "255"):
        return None
    if _label_before(text, m.start(), _VERSION_LABEL):
        return None
    return "ip:v4", 1.0


def _ipv6(text: str, m: re.Match[str]) -> tuple[str, float] | None:
    try:
        ipaddress.IPv6Address(m.group(0))
    except ValueError:
        return None
    return "ip:v6", 1.0


def _iban(text: str, m: re.Match[str]) -> tuple[str, float] | None:
    if iban.is_valid(m.group(0)):
        return "iban:mod97", 1.0
    # The IBAN's shape (country, two check digits, then mostly digits) after a bank label: a
    # mistyped or invented one is still somebody's account number as written.
    compact = m.group(0).replace(" ", "")
    shaped = 15 <= len(compact) <= 34 and sum(c.isdigit() for c in compact) >= len(compact) / 2
    labelled = _label_before(text, m.start(), _ACCOUNT_LABEL)
    return ("iban:label", 0.7) if shaped and labelled else None


def _crypto(text: str, m: re.Match[str]) -> tuple[str, float] | None:
    s = m.group(0)
    if s.startswith("0x"):
        return "crypto:ethereum", 0.9
    return ("crypto:bitcoin", 1.0) if bitcoin.is_valid(s) else None


def _ssn(text: str, m: re.Match[str]) -> tuple[str, float] | None:
    area, group, serial = m.groups()
    if area in ("000", "666") or area.startswith("9") or group == "00" or serial == "0000":
        return None
    return "ssn:format", 0.9


def _phone(text: str, m: re.Match[str]) -> tuple[str, float] | None:
    s = m.group(0)
    if _HOTLINE.match(s):
        return None
    labelled = _label_before(text, m.start(), _PHONE_LABEL) or bool(
        _PHONE_LABEL_AFTER.match(text[m.end() : m.end() + 12])
    )
    if (s.isdigit() and s[0] != "0" and not labelled) or _years(s):
        return None  # a bare run of digits needs its label
    if _KR_MOBILE.match(s) or _KR_LANDLINE.match(s):
        return "phone:kr", 1.0
    if _KR_MASKED_MOBILE.match(s) or (_KR_MASKED_LANDLINE.match(s) and len(_digits(s)) >= 5):
        return "phone:kr-masked", 0.8
    if re.search(r"[*X]", s):
        return None
    digits = _digits(s)
    if not 7 <= len(digits) <= 15 or _looks_like_date(s):
        return None
    if s.startswith("+") or s.startswith("("):
        return "phone:intl", 0.9
    if labelled:
        return "phone:label", 0.9
    s = re.sub(r"\s?(?:x|ext\.?)\s?\d{1,5}$", "", s)  # an extension ("x4587") is not the number
    digits = _digits(s)
    groups = re.split(r"[ .-]", s)
    # Unlabelled digit groups: the shapes phone numbers take (3-3-4, 3-4-4, 0 + area code…), not
    # 3-2-4 (an SSN) or document numbers with a short last group.
    sizes = [len(g) for g in groups]
    if len(digits) >= 9 and len(groups) == 3 and sizes[2] == 4 and sizes[1] in (3, 4):
        return "phone:shape", 0.6
    if len(digits) >= 9 and digits[0] == "0":  # a trunk prefix: national numbers in Europe, Korea
        return "phone:shape", 0.6
    return None


def _years(s: str) -> bool:
    """A run of years, as table headings write them ("2018 2019 2020")."""
    groups = re.split(r"[ .-]+", s.strip())
    return len(groups) > 1 and all(re.fullmatch(r"(?:19|20)\d\d", g) for g in groups)


def _looks_like_date(s: str) -> bool:
    return bool(re.match(r"(?:19|20)\d{2}[ ./-]\d{1,2}[ ./-]\d{1,2}(?!\d)", s))


def _account(text: str, m: re.Match[str]) -> tuple[str, float] | None:
    if _HOTLINE.match(m.group(0)) or _looks_like_date(m.group(0)):
        return None
    return ("account:label", 0.8) if _label_before(text, m.start(), _ACCOUNT_LABEL) else None


def _passport(text: str, m: re.Match[str]) -> tuple[str, float] | None:
    if _label_before(text, m.start(), _PASSPORT_LABEL):
        return "passport:label", 0.8
    return ("passport:kr", 0.7) if _KR_PASSPORT.fullmatch(m.group(0)) else None


def _labelled(label: re.Pattern[str], rule: str, score: float) -> Callable[..., tuple | None]:
    def check(text: str, m: re.Match[str]) -> tuple[str, float] | None:
        return (rule, score) if _label_before(text, m.start(), label) else None

    return check


def _license(text: str, m: re.Match[str]) -> tuple[str, float] | None:
    return "driver_license:kr", 0.9


# Order matters: an earlier kind claims its span first (a card number is not also a phone).
_RULES: tuple[tuple[str, re.Pattern[str], Callable[..., tuple[str, float] | None]], ...] = (
    ("email", _EMAIL, lambda text, m: ("email:format", 1.0)),
    ("email", _EMAIL_SPELT, lambda text, m: ("email:spelt", 0.8)),
    ("crypto", _CRYPTO, _crypto),
    ("ip", _IPV4, _ipv4),
    ("ip", _IPV6, _ipv6),
    ("iban", _IBAN, _iban),
    ("driver_license", _KR_LICENSE, _license),
    ("driver_license", _LICENSE, _labelled(_LICENSE_LABEL, "driver_license:label", 0.8)),
    ("rrn", _RRN, _rrn),
    ("card", _CARD, _card),
    ("card", _GROUPED_CARD, _grouped_card),
    ("ssn", _SSN, _ssn),
    ("passport", _PASSPORT, _passport),
    ("passport", _LABELLED_PASSPORT, _labelled(_PASSPORT_LABEL, "passport:label", 0.8)),
    ("birth_date", _BIRTH, _labelled(_BIRTH_LABEL, "birth_date:label", 0.8)),
    ("account", _ACCOUNT, _account),
    ("phone", _PHONE, _phone),
)


def find_pii(text: str, kinds: Iterable[str] | None = None) -> list[PIIMatch]:
    """Every confirmed personal-data span in `text`, in order, without overlaps."""
    wanted = set(kinds) if kinds is not None else set(STRUCTURED)
    # "０１０" and "раrk@" are matched as what they imitate, then what is left also with its
    # digits undisguised ("O1O-l234-5G78"); offsets are the same in every view
    folded = fold(text)
    taken: list[PIIMatch] = []
    for view in dict.fromkeys((folded, _undisguised(folded))):
        for kind, pattern, check in _RULES:
            if kind not in wanted:
                continue
            for m in pattern.finditer(view):
                if any(m.start() < t.end and t.start < m.end() for t in taken):
                    continue
                found = check(view, m)
                if found:
                    taken.append(PIIMatch(kind, m.start(), m.end(), found[0], found[1]))
    return sorted(taken, key=lambda t: t.start)


def redact(text: str, matches: Sequence[PIIMatch]) -> str:
    """`text` with every match replaced by its placeholder, e.g. "[PHONE]"."""
    out, pos = [], 0
    for m in sorted(matches, key=lambda m: m.start):
        if m.start < pos:
            continue
        out += [text[pos : m.start], LABELS[m.kind]]
        pos = m.end
    out.append(text[pos:])
    return "".join(out)


def fingerprint(match: PIIMatch, text: str) -> str:
    """What two mentions of the same value share (digits, or lower-cased text): to tell whether an
    answer repeats the question's own data or brings new data."""
    value = match.value(text)
    digits = _digits(value)
    return f"{match.kind}:{digits if len(digits) >= 6 else value.lower()}"
