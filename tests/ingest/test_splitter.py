"""Parent-child splitter: sizes, overlap, headers, long strings and Korean sentence boundaries."""

from __future__ import annotations

from itertools import pairwise

import pytest

from dari.config import ChunkingSettings
from dari.errors import ConfigError
from dari.index.analyzer import Analyzer
from dari.ingest.splitter import ParentChildSplitter
from dari.text import estimate_tokens
from dari.types import Block, Chunk, Document, Split

EN = " ".join(f"Sentence number {i} is here." for i in range(40))  # 6 tokens per sentence
KO = (
    "정규직 직원의 연차 휴가는 일년에 십오일입니다. 삼년 이상 근속하면 이년마다 하루씩 "
    "늘어납니다. 병가는 연간 최대 십일까지 유급으로 쓸 수 있습니다. 병가를 쓰려면 진단서가 "
    "필요합니다. 휴가 신청은 인사팀에 합니다. 신청서는 사내 포털에서 내려받을 수 있습니다. "
    "승인은 보통 이틀 안에 이루어집니다."
)


def splitter(
    analyzer: Analyzer, chunk: int = 16, overlap: int = 8, section: int = 40
) -> ParentChildSplitter:
    settings = ChunkingSettings(chunk_tokens=chunk, chunk_overlap=overlap, section_tokens=section)
    return ParentChildSplitter(settings, analyzer)


def doc(*blocks: Block, title: str = "", lang: str = "en") -> Document:
    return Document("x.md", title, blocks, "md", "hash", lang=lang)


def body(chunk: Chunk, header: str) -> str:
    """A child's text without its header line."""
    if header:
        first, _, rest = chunk.text.partition("\n")
        assert first == header
        return rest
    return chunk.text


def split_en(analyzer: Analyzer, **sizes: int) -> Split:
    return splitter(analyzer, **sizes).split("d1", doc(Block(EN)))


# --- sizes ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("chunk", "overlap", "section"), [(16, 8, 40), (16, 0, 32), (32, 12, 64)])
def test_children_fit_chunk_tokens(
    analyzer: Analyzer, chunk: int, overlap: int, section: int
) -> None:
    sp = split_en(analyzer, chunk=chunk, overlap=overlap, section=section)
    assert len(sp.chunks) > 3
    for c in sp.chunks:
        assert estimate_tokens(c.text) <= chunk


def test_children_fit_chunk_tokens_besides_the_header(analyzer: Analyzer) -> None:
    d = doc(Block(EN, heading="Install"), title="A rather long guide title")
    sp = splitter(analyzer).split("d1", d)
    header = "A rather long guide title > Install"
    for c in sp.chunks:
        assert estimate_tokens(body(c, header)) <= 16


def test_sections_fit_section_tokens(analyzer: Analyzer) -> None:
    sp = split_en(analyzer, chunk=16, overlap=8, section=40)
    assert len(sp.sections) > 1
    for s in sp.sections:
        assert estimate_tokens(s.text) <= 40


def test_sections_cover_the_text_in_order_without_overlap(analyzer: Analyzer) -> None:
    sp = split_en(analyzer)
    assert " ".join(s.text for s in sp.sections).split() == EN.split()
    assert [s.ordinal for s in sp.sections] == list(range(len(sp.sections)))
    assert [s.id for s in sp.sections] == [f"d1:s{i}" for i in range(len(sp.sections))]


def test_short_text_is_one_section_and_one_child(analyzer: Analyzer) -> None:
    sp = splitter(analyzer).split("d1", doc(Block("Just one line.")))
    assert [s.text for s in sp.sections] == ["Just one line."]
    assert [c.text for c in sp.chunks] == ["Just one line."]


def test_blank_block_gives_nothing(analyzer: Analyzer) -> None:
    sp = splitter(analyzer).split("d1", doc(Block("  \n\n "), Block("Real text.")))
    assert [s.text for s in sp.sections] == ["Real text."]
    assert len(sp.chunks) == 1


# --- overlap --------------------------------------------------------------------------------


def test_overlap_carried_between_neighbouring_children(analyzer: Analyzer) -> None:
    sp = split_en(analyzer, chunk=16, overlap=8, section=400)
    assert len(sp.sections) == 1
    texts = [c.text for c in sp.chunks]
    assert len(texts) > 3
    for prev, nxt in pairwise(texts):
        last = prev.rsplit(". ", 1)[-1]  # the last sentence of the previous child
        assert nxt.startswith(last), (prev, nxt)
        assert estimate_tokens(last) <= 8


def test_no_overlap_when_zero(analyzer: Analyzer) -> None:
    sp = split_en(analyzer, chunk=16, overlap=0, section=400)
    joined = " ".join(c.text for c in sp.chunks)
    assert joined.split() == EN.split()


def test_overlap_does_not_cross_sections(analyzer: Analyzer) -> None:
    sp = split_en(analyzer, chunk=16, overlap=8, section=40)
    by_section: dict[str, list[str]] = {}
    for c in sp.chunks:
        by_section.setdefault(c.section_id, []).append(c.text)
    sections = {s.id: s.text for s in sp.sections}
    for sid, texts in by_section.items():
        assert sections[sid].startswith(texts[0])  # first child of a section carries nothing


def test_overlap_not_smaller_than_chunk_is_config_error(analyzer: Analyzer) -> None:
    for overlap in (16, 20):
        with pytest.raises(ConfigError) as info:
            splitter(analyzer, chunk=16, overlap=overlap)
        assert "chunk_overlap" in info.value.message
        assert info.value.hint


# --- parents --------------------------------------------------------------------------------


def test_child_points_to_its_section(analyzer: Analyzer) -> None:
    d = doc(Block(EN, heading="Part one"), Block("Another block. With text.", heading="Two"))
    sp = splitter(analyzer).split("d1", d)
    sections = {s.id: s for s in sp.sections}
    for c in sp.chunks:
        assert c.doc_id == "d1"
        section = sections[c.section_id]
        assert body(c, section.heading) in section.text
    assert [c.ordinal for c in sp.chunks] == list(range(len(sp.chunks)))
    assert [c.id for c in sp.chunks] == [f"d1:c{i}" for i in range(len(sp.chunks))]
    assert {c.section_id for c in sp.chunks} == set(sections)


def test_section_keeps_heading_and_page(analyzer: Analyzer) -> None:
    sp = splitter(analyzer).split("d1", doc(Block("Page text.", heading="Intro", page=3)))
    assert (sp.sections[0].heading, sp.sections[0].page) == ("Intro", 3)


def test_chunks_carry_document_language(analyzer: Analyzer) -> None:
    sp = splitter(analyzer).split("d1", doc(Block(KO), lang="ko"))
    assert {c.lang for c in sp.chunks} == {"ko"}


# --- header ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("title", "heading", "header"),
    [
        ("Guide", "Install", "Guide > Install"),
        ("Guide", "Guide > Install", "Guide > Install"),  # heading path already holds the title
        ("Guide", "", "Guide"),
        ("", "Install", "Install"),
    ],
)
def test_header_line_prefixed(analyzer: Analyzer, title: str, heading: str, header: str) -> None:
    sp = splitter(analyzer).split("d1", doc(Block("Body text.", heading=heading), title=title))
    assert [c.text for c in sp.chunks] == [f"{header}\nBody text."]
    assert sp.sections[0].text == "Body text."  # the parent has no header line


def test_no_header_without_title_or_heading(analyzer: Analyzer) -> None:
    sp = splitter(analyzer).split("d1", doc(Block("Body text.")))
    assert sp.chunks[0].text == "Body text."


# --- long strings ---------------------------------------------------------------------------


def test_long_unspaced_korean_is_cut(analyzer: Analyzer) -> None:
    text = "가나다라마바사아자차" * 100  # 1000 syllables, no spaces, no punctuation
    sp = splitter(analyzer).split("d1", doc(Block(text), lang="ko"))
    assert len(sp.chunks) > 10
    for c in sp.chunks:
        assert estimate_tokens(c.text) <= 16
    assert "".join(c.text for c in sp.chunks) == text  # full-size pieces: none carried over


def test_long_url_is_cut_without_loss(analyzer: Analyzer) -> None:
    url = "https://example.com/" + "/".join(f"p{i}" for i in range(300))
    sp = splitter(analyzer, overlap=0).split("d1", doc(Block(url)))
    assert len(sp.chunks) > 5
    assert "".join(c.text for c in sp.chunks) == url


def test_long_url_children_fit_chunk_tokens(analyzer: Analyzer) -> None:
    url = "https://example.com/" + "/".join(f"p{i}" for i in range(300))
    sp = splitter(analyzer).split("d1", doc(Block(f"See {url} now.")))
    assert max(estimate_tokens(c.text) for c in sp.chunks) <= 16


def test_long_sentence_is_cut_into_word_runs(analyzer: Analyzer) -> None:
    sentence = " ".join(f"word{i}" for i in range(100)) + "."
    sp = splitter(analyzer, chunk=16, overlap=0).split("d1", doc(Block(sentence)))
    assert len(sp.chunks) > 5
    assert " ".join(c.text for c in sp.chunks).split() == sentence.split()
    for c in sp.chunks:
        assert estimate_tokens(c.text) <= 16


def test_long_unspaced_latin_letters_are_cut(analyzer: Analyzer) -> None:
    text = "ACGT" * 2500
    sp = splitter(analyzer).split("d1", doc(Block(text)))
    assert max(len(c.text) for c in sp.chunks) < 1000


# --- Korean ---------------------------------------------------------------------------------


def sentence_run(text: str, sentences: list[str]) -> list[int]:
    """Indexes of the consecutive whole sentences that make up `text` (fails otherwise)."""
    start = next(i for i, s in enumerate(sentences) if text.startswith(s))
    run, rest = [], text
    for i in range(start, len(sentences)):
        if not rest:
            break
        assert rest.startswith(sentences[i]), (text, sentences[i])
        run.append(i)
        rest = rest[len(sentences[i]) :].lstrip()
    assert not rest
    return run


def test_korean_split_at_sentence_boundaries(analyzer: Analyzer) -> None:
    sentences = [s.strip() for s in analyzer.sentences(KO, "ko")]
    assert len(sentences) == 7
    assert all(s.endswith("다.") for s in sentences)
    split = splitter(analyzer, chunk=32, overlap=14, section=64)
    sp = split.split("d1", doc(Block(KO), lang="ko"))
    assert len(sp.chunks) >= 3
    covered: set[int] = set()
    for c in sp.chunks:
        assert estimate_tokens(c.text) <= 32
        covered.update(sentence_run(c.text, sentences))
    for s in sp.sections:
        sentence_run(s.text, sentences)
    assert covered == set(range(7))


def test_korean_children_overlap_by_a_sentence(analyzer: Analyzer) -> None:
    sp = splitter(analyzer, chunk=40, overlap=16, section=400).split(
        "d1", doc(Block(KO), lang="ko")
    )
    texts = [c.text for c in sp.chunks]
    assert len(texts) >= 3
    for prev, nxt in pairwise(texts):
        last = prev.rsplit("다. ", 1)[-1]
        assert nxt.startswith(last)
