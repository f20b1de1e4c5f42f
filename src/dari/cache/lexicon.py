"""Word lists of the meaning checks (dari.cache.meaning): negations, comparative words with
their axis and direction, numerals, and function words. Kept as plain text, easy to read and
extend; parsed when the module is imported (cheap: no models, no files)."""

from __future__ import annotations


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


def _axes(text: str) -> dict[str, tuple[str, int]]:
    """ "more:amount:1 less:amount:-1" -> {"more": ("amount", 1), "less": ("amount", -1)}"""
    out = {}
    for item in text.split():
        word, axis, sign = item.split(":")
        out[word] = (axis, int(sign))
    return out


def _pairs(text: str) -> dict[str, str]:
    return dict(item.split(":") for item in text.split())


def _tagged(text: str) -> frozenset[tuple[str, str]]:
    return frozenset((form, tag) for form, tag in (item.split(":") for item in text.split()))


# English: words that flip a statement.
EN_NEGATION = _words(
    "aren't can't cannot cant couldn't didn't doesn't don't except excluding fail failed "
    "fails hadn't hasn't haven't isn't mustn't neither never no nobody none nor not nothing "
    "shouldn't unable wasn't weren't without won't wouldn't"
)

# Comparative and degree words as word:axis:sign (which way; 2 = superlative).
EN_DIRECTION = _axes(
    "more:amount:1 less:amount:-1 fewer:amount:-1 most:amount:2 least:amount:-2 "
    "higher:height:1 lower:height:-1 highest:height:2 lowest:height:-2 bigger:size:1 "
    "larger:size:1 smaller:size:-1 biggest:size:2 largest:size:2 smallest:size:-2 "
    "before:time:-1 after:time:1 earlier:time:-1 later:time:1 first:order:-1 last:order:1 "
    "older:age:1 younger:age:-1 oldest:age:2 youngest:age:-2 newer:age:-1 newest:age:-2 "
    "better:quality:1 worse:quality:-1 best:quality:2 worst:quality:-2 faster:speed:1 "
    "slower:speed:-1 fastest:speed:2 slowest:speed:-2 longer:length:1 shorter:length:-1 "
    "longest:length:2 shortest:length:-2 increase:change:1 decrease:change:-1 rise:change:1 "
    "fall:change:-1 above:height:1 below:height:-1 over:height:1 under:height:-1 "
    "maximum:amount:2 minimum:amount:-2 max:amount:2 min:amount:-2 cheaper:price:-1 "
    "cheapest:price:-2 expensive:price:1"
)

EN_NUMBER_WORDS = _pairs(
    "zero:0 one:1 two:2 three:3 four:4 five:5 six:6 seven:7 eight:8 nine:9 ten:10 eleven:11 "
    "twelve:12 thirteen:13 fourteen:14 fifteen:15 sixteen:16 seventeen:17 eighteen:18 "
    "nineteen:19 twenty:20 thirty:30 forty:40 fifty:50 hundred:100 thousand:1000 "
    "million:1000000 billion:1000000000 once:1 twice:2 half:0.5 first:1st second:2nd "
    "third:3rd fourth:4th fifth:5th"
)

# Function words: no content of their own (negations and comparatives are kept apart).
EN_FUNCTION = _words(
    "'s a about again all also am an and another any are as at be been being both but by can "
    "could did do does doing done down each either even every for from get got had has have "
    "having he her here him his how i if in into is it its just know let many may me might "
    "mine much must my of off on one's only onto or other our out own please s same shall she "
    "should so some still such t tell than that the their them then there these they this "
    "those to too up upon us very was we were what when where whether which who whom whose "
    "why will with would yet you your"
)

# Prepositions give the words after them a role ("from Seoul to Busan").
EN_PREPOSITIONS = _words(
    "about against among at between by for from in into of on onto per than through to toward "
    "towards upon versus via vs with"
)

# Korean negating morphemes as form:tag: 안, 못, -지 않-, 없-, 아니-, 말-; prefixes 불/비/무/미.
KO_NEGATION = _tagged(
    "말:VX 못:MAG 못하:VX 무:XPN 미:XPN 불:XPN 비:XPN 아니:VCN 안:MAG 않:VX 없:VA"
)

KO_NUMERALS = _pairs(
    "하나:1 한:1 둘:2 두:2 셋:3 세:3 석:3 넷:4 네:4 다섯:5 여섯:6 일곱:7 여덟:8 "
    "아홉:9 열:10 스물:20 스무:20 서른:30 마흔:40 쉰:50 백:100 천:1000 만:10000 "
    "일:1 이:2 삼:3 사:4 오:5 육:6 칠:7 팔:8 구:9 십:10 첫:1st 첫째:1st 둘째:2nd "
    "셋째:3rd"
)

KO_DIRECTION = _axes(
    "많:amount:1 적:amount:-1 높:height:1 낮:height:-1 크:size:1 작:size:-1 "
    "이전:time:-1 이후:time:1 전:time:-1 후:time:1 먼저:time:-1 나중:time:1 "
    "빠르:speed:1 느리:speed:-1 길:length:1 짧:length:-1 늘:change:1 "
    "줄:change:-1 증가:change:1 감소:change:-1 오르:change:1 내리:change:-1 "
    "최대:amount:2 최소:amount:-2 최고:quality:2 최저:height:-2 이상:bound:1 "
    "이하:bound:-1 초과:bound:1 미만:bound:-1 비싸:price:1 싸:price:-1 "
    "저렴:price:-1 좋:quality:1 나쁘:quality:-1 새롭:age:-1 오래되:age:1"
)
