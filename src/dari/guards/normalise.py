"""What the guards look at instead of the raw text: disguises undone.

`fold` keeps one character per character (so offsets found in the folded text are offsets in the
original): full-width forms become ASCII, Cyrillic and Greek look-alikes become Latin, zero-width
and other invisible format characters become spaces. `views` adds what an encoded payload says:
Base64, URL-encoded and hex-escaped stretches decoded, so "aWdub3JlIGFsbCBwcmV2aW91cw==" is read
as "ignore all previous".
"""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata
import urllib.parse

# Look-alikes that NFKC leaves alone (Cyrillic, Greek) mapped to the Latin letter they imitate;
# dashes and the minus sign to '-'.
_CONFUSABLES = str.maketrans(
    "АВЕКМНОРСТХЅІЈаеорсухіјԁѕӏΑΒΕΖΗΙΚΜΝΟΡΤΥΧαοιν·‐‑‒–—−",
    "ABEKMHOPCTXSIJaeopcyxijdslABEZHIKMNOPTYXaoiv-------",
)
_INVISIBLE = re.compile(
    "[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180e\u200b-\u200f"
    "\u202a-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0]"
)
_BASE64 = re.compile(r"(?<![A-Za-z0-9+/=])[A-Za-z0-9+/]{16,}={0,2}(?![A-Za-z0-9+/=])")
# A token with 3+ escapes; bounded runs keep the scan linear on long texts without any '%'.
_URLENC = re.compile(r"(?:[^\s%]{0,64}%[0-9A-Fa-f]{2}){3,}[^\s%]{0,64}")
SCAN_CHARS = 20_000  # payloads are looked for in the first and last SCAN_CHARS of a text
_HEXESC = re.compile(
    r"(?:\\x[0-9A-Fa-f]{2}){4,}|(?<![0-9A-Fa-f])(?:[0-9A-Fa-f]{2}){12,}(?![0-9A-Fa-f])"
)
MAX_DECODED = 8  # encoded stretches decoded per text: a payload needs one, a flood gets no more


_OTHER = re.compile("[^\x00-\x7f\uac00-\ud7a3]")  # neither ASCII nor a Hangul syllable


def _nfkc_one(m: re.Match[str]) -> str:
    folded = unicodedata.normalize("NFKC", m.group(0))
    return folded if len(folded) == 1 else m.group(0)


def fold(text: str) -> str:
    """`text` with look-alike and invisible characters replaced, one for one."""
    return _OTHER.sub(_nfkc_one, _INVISIBLE.sub(" ", text)).translate(_CONFUSABLES)


def _printable(raw: bytes) -> str | None:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    shown = sum(ch.isprintable() or ch.isspace() for ch in text)
    return text if text and shown / len(text) > 0.9 and re.search(r"\w{3}", text) else None


def decoded(text: str) -> list[str]:
    """The readable payloads hidden in `text` as Base64, %-escapes or hex."""
    if len(text) > 2 * SCAN_CHARS:
        text = text[:SCAN_CHARS] + " " + text[-SCAN_CHARS:]
    found: list[str] = []
    for m in _BASE64.finditer(text):
        chunk = m.group(0)
        try:
            raw = base64.b64decode(chunk + "=" * (-len(chunk) % 4), validate=True)
        except (binascii.Error, ValueError):
            continue
        if (plain := _printable(raw)) is not None:
            found.append(plain)
        if len(found) >= MAX_DECODED:
            return found
    for m in _URLENC.finditer(text):
        found.append(urllib.parse.unquote(m.group(0)))
    for m in _HEXESC.finditer(text):
        digits = m.group(0).replace("\\x", "")
        if (plain := _printable(bytes.fromhex(digits))) is not None:
            found.append(plain)
    return found[:MAX_DECODED]


def views(text: str) -> list[str]:
    """The folded text (invisible characters dropped, not spaced), then each decoded payload:
    what a detector should score."""
    folded = fold(_INVISIBLE.sub("", text))
    return [folded] + [fold(p) for p in decoded(folded)]
