"""Loaders: every format with Korean and English text, and every bad input as an IngestError."""

from __future__ import annotations

import csv
import io
import json
import random
import unicodedata
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from dari.config import IngestSettings
from dari.errors import IngestError
from dari.ingest.loaders import SUPPORTED_SUFFIXES, is_sidecar, load_path
from dari.text import sha256_text
from dari.types import Document

KO = "리눅스에 설치하는 방법을 설명합니다. 똠방각하는 CP949에만 있는 글자입니다."
EN = "This guide explains how to install dari on Linux."


def write(path: Path, content: str | bytes, encoding: str = "utf-8") -> Path:
    path.write_bytes(content.encode(encoding) if isinstance(content, str) else content)
    return path


def load(path: Path, acl: tuple[str, ...] = (), **settings: object) -> list[Document]:
    return load_path(path, IngestSettings(**settings), acl)  # type: ignore[arg-type]


def load_one(path: Path, **settings: object) -> Document:
    documents = load(path, **settings)
    assert len(documents) == 1
    return documents[0]


def refused(path: Path, fragment: str, **settings: object) -> IngestError:
    """Loading `path` raises an IngestError naming the file, with `fragment` and a hint."""
    with pytest.raises(IngestError) as info:
        load(path, **settings)
    error = info.value
    assert fragment in error.message
    assert path.name in error.message
    assert error.hint.strip()
    assert "\n" not in error.message
    return error


# --- dispatch, sidecars ---------------------------------------------------------------------


def test_supported_suffixes() -> None:
    assert {".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".docx", ".csv", ".jsonl"} == (
        SUPPORTED_SUFFIXES
    )


def test_unsupported_suffix_is_named_with_the_supported_ones(tmp_path: Path) -> None:
    error = refused(write(tmp_path / "slides.pptx", b"PK\x03\x04"), "'.pptx'")
    assert ".docx" in error.hint and ".jsonl" in error.hint
    refused(write(tmp_path / "README", "text"), "no suffix")


def test_suffix_is_case_insensitive(tmp_path: Path) -> None:
    assert load_one(write(tmp_path / "NOTES.TXT", EN)).format == "txt"
    assert load_one(write(tmp_path / "Guide.MarkDown", f"# Guide\n\n{EN}")).format == "md"


def test_sidecar_files_are_not_documents(tmp_path: Path) -> None:
    sidecar = write(tmp_path / "a.txt.meta.json", '{"acl": ["x"]}')
    assert is_sidecar(sidecar)
    assert is_sidecar(Path("B.PDF.META.JSON"))
    assert not is_sidecar(tmp_path / "a.txt")
    assert not is_sidecar(Path("meta.json"))
    refused(sidecar, "sidecar")


def test_sidecar_adds_acl_title_and_metadata(tmp_path: Path) -> None:
    path = write(tmp_path / "policy.txt", KO)
    sidecar = {"acl": ["hr", "all", "hr"], "title": "인사 규정", "metadata": {"dept": "HR", "v": 2}}
    write(tmp_path / "policy.txt.meta.json", json.dumps(sidecar, ensure_ascii=False))
    doc = load(path, acl=("staff", "all"))[0]
    assert doc.acl == ("all", "hr", "staff")
    assert doc.title == "인사 규정"
    assert doc.metadata["dept"] == "HR" and doc.metadata["v"] == "2"
    assert doc.metadata["encoding"] == "utf-8"


def test_sidecar_applies_acl_but_not_title_to_rows(tmp_path: Path) -> None:
    path = write(tmp_path / "faq.jsonl", '{"text": "one"}\n{"text": "two"}\n')
    write(tmp_path / "faq.jsonl.meta.json", '{"acl": ["support"], "title": "FAQ"}')
    docs = load(path)
    assert [d.acl for d in docs] == [("support",), ("support",)]
    assert [d.title for d in docs] == ["faq.jsonl row 1", "faq.jsonl row 2"]


@pytest.mark.parametrize(
    "content, fragment",
    [
        ("{not json", "malformed sidecar"),
        ('["hr"]', "not an object"),
        ('{"acl": "hr"}', '"acl" must be a list'),
        ('{"title": 3}', '"title" must be a string'),
        ('{"metadata": {"a": [1]}}', '"metadata" must be'),
        ('{"acls": ["hr"]}', "unknown key(s) acls"),
    ],
)
def test_malformed_sidecar_is_named(tmp_path: Path, content: str, fragment: str) -> None:
    path = write(tmp_path / "a.txt", EN)
    write(tmp_path / "a.txt.meta.json", content)
    error = refused(path, fragment)
    assert "a.txt.meta.json" in error.message


# --- files that cannot be loaded --------------------------------------------------------------


def test_missing_file_disappeared(tmp_path: Path) -> None:
    refused(tmp_path / "gone.txt", "file disappeared")


def test_file_deleted_between_stat_and_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path / "racy.md", EN)

    def vanish(self: Path) -> bytes:
        raise FileNotFoundError(2, "No such file or directory", str(self))

    monkeypatch.setattr(Path, "read_bytes", vanish)
    refused(path, "file disappeared")


def test_directory_is_not_a_file(tmp_path: Path) -> None:
    (tmp_path / "folder.txt").mkdir()
    refused(tmp_path / "folder.txt", "not a regular file")


@pytest.mark.parametrize("name", ["a.txt", "a.md", "a.html", "a.pdf", "a.docx", "a.csv"])
def test_empty_file(tmp_path: Path, name: str) -> None:
    refused(write(tmp_path / name, b""), "empty")


@pytest.mark.parametrize("name", ["a.txt", "a.md", "a.html", "a.jsonl", "a.csv"])
def test_whitespace_only_file(tmp_path: Path, name: str) -> None:
    refused(write(tmp_path / name, " \n\t\r\n  \n"), "empty")


def test_oversized_file_is_refused_before_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path / "big.txt", "x" * 3 * 1024 * 1024)

    def must_not_read(self: Path) -> bytes:
        raise AssertionError("read an oversized file")

    monkeypatch.setattr(Path, "read_bytes", must_not_read)
    error = refused(path, "3.0 MB, over the 2 MB limit", max_file_mb=2)
    assert "ingest.max_file_mb" in error.hint and "DARI_INGEST__MAX_FILE_MB" in error.hint


@pytest.mark.parametrize(
    "name, content, reason",
    [
        ("photo.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(64), "NUL bytes"),
        ("notes.md", bytes(range(1, 32)) * 40, "control characters"),
        ("blob.txt", bytes(b or 1 for b in random.Random(7).randbytes(4000)), "encoding"),
    ],
)
def test_binary_renamed_as_text(tmp_path: Path, name: str, content: bytes, reason: str) -> None:
    error = refused(write(tmp_path / name, content), "looks binary, not text")
    assert reason in error.message


# --- txt ------------------------------------------------------------------------------------


def test_txt_utf8_korean_and_english(tmp_path: Path) -> None:
    path = write(tmp_path / "guide.txt", f"{KO}\n\n{EN}\n")
    doc = load_one(path)
    assert doc.source == str(path)
    assert doc.title == "guide"
    assert doc.format == "txt"
    assert doc.text == f"{KO}\n\n{EN}"
    assert len(doc.blocks) == 1 and doc.blocks[0].heading == "" and doc.blocks[0].page is None
    assert doc.lang == "ko"
    assert doc.content_hash == sha256_text(doc.text)
    assert doc.acl == ()
    assert doc.metadata["encoding"] == "utf-8"
    assert doc.metadata["size_bytes"] == str(path.stat().st_size)
    mtime = datetime.fromisoformat(doc.metadata["mtime"])
    assert mtime.utcoffset() == UTC.utcoffset(None)
    assert load_one(write(tmp_path / "en.txt", EN)).lang == "en"


@pytest.mark.parametrize("encoding", ["cp949", "euc-kr"])
def test_txt_legacy_korean_round_trips(tmp_path: Path, encoding: str) -> None:
    text = "가나다 한글 문서입니다. 설치 방법을 안내합니다."
    doc = load_one(write(tmp_path / "legacy.txt", text, encoding))
    assert doc.text == text
    assert doc.metadata["encoding"] == "cp949"
    assert doc.lang == "ko"


def test_txt_cp949_only_syllables(tmp_path: Path) -> None:
    doc = load_one(write(tmp_path / "cp949.txt", KO, "cp949"))  # 똠 is not in EUC-KR
    assert doc.text == KO


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16"])
def test_txt_with_bom(tmp_path: Path, encoding: str) -> None:
    doc = load_one(write(tmp_path / "bom.txt", KO, encoding))
    assert doc.text == KO
    assert doc.metadata["encoding"] == encoding


def test_txt_other_legacy_encoding_is_detected(tmp_path: Path) -> None:
    text = "Привет! Это руководство объясняет, как установить программу на Linux. " * 3
    doc = load_one(write(tmp_path / "ru.txt", text, "cp1251"))
    assert doc.text == text.strip()


def test_text_is_normalised(tmp_path: Path) -> None:
    nfd = unicodedata.normalize("NFD", "한글 문서")  # as macOS writes names and some text
    raw = f"{nfd}   \r\nline two\t\r\n\r\n\r\n\r\n\r\n\r\nafter five blank lines  \r\n\r\n\r\n"
    doc = load_one(write(tmp_path / "messy.txt", raw))
    assert doc.text == "한글 문서\nline two\n\n\nafter five blank lines"


def test_content_hash_is_of_text_not_bytes(tmp_path: Path) -> None:
    utf8 = load_one(write(tmp_path / "a.txt", f"{KO}\n{EN}\n"))
    cp949 = load_one(write(tmp_path / "b.txt", f"{KO}\r\n{EN}\r\n", "cp949"))
    assert utf8.content_hash == cp949.content_hash
    other = load_one(write(tmp_path / "c.txt", f"{KO}\n{EN}!\n"))
    assert other.content_hash != utf8.content_hash


# --- markdown -------------------------------------------------------------------------------

MARKDOWN = """\
---
title: "설치 가이드"
tags: [install]
---

Intro before any heading.

# Guide

Welcome. 환영합니다.

## Install

Run the installer.

### Linux

```bash
# this is a comment, not a heading
pip install dari
```

### 윈도우

Use WSL. WSL을 사용하세요.

## Configure ##

Edit dari.toml.

Setext heading
--------------

Under a setext heading.
"""


def test_markdown_sections_and_heading_paths(tmp_path: Path) -> None:
    doc = load_one(write(tmp_path / "guide.md", MARKDOWN))
    assert doc.format == "md"
    assert doc.title == "설치 가이드"  # front matter wins over the first "# "
    assert "tags:" not in doc.text and "---" not in doc.text
    assert [b.heading for b in doc.blocks] == [
        "",
        "Guide",
        "Guide > Install",
        "Guide > Install > Linux",
        "Guide > Install > 윈도우",
        "Guide > Configure",
        "Guide > Setext heading",
    ]
    linux = doc.blocks[3].text
    assert linux.startswith("Linux\n\n```bash\n# this is a comment, not a heading\n")
    assert linux.endswith("pip install dari\n```")
    assert doc.blocks[4].text == "윈도우\n\nUse WSL. WSL을 사용하세요."
    assert doc.blocks[6].text == "Setext heading\n\nUnder a setext heading."
    assert doc.content_hash == sha256_text(doc.text)


def test_markdown_title_from_first_h1_else_stem(tmp_path: Path) -> None:
    text = "Some intro.\n\n## Not a title\n\ntext\n\n# 제목\n\n본문입니다.\n"
    doc = load_one(write(tmp_path / "notes.md", text))
    assert doc.title == "제목"
    assert load_one(write(tmp_path / "plain.markdown", "## Only h2\n\ntext")).title == "plain"


def test_markdown_unclosed_fence_and_hashtags(tmp_path: Path) -> None:
    text = "#hashtag is text\n\n~~~\n# inside\n"
    doc = load_one(write(tmp_path / "odd.md", text))
    assert [b.heading for b in doc.blocks] == [""]
    assert doc.text == "#hashtag is text\n\n~~~\n# inside"


def test_markdown_cp949(tmp_path: Path) -> None:
    doc = load_one(write(tmp_path / "ko.md", f"# 안내\n\n{KO}\n", "cp949"))
    assert doc.title == "안내"
    assert doc.blocks[0].text == f"안내\n\n{KO}"
    assert doc.metadata["encoding"] == "cp949"


def test_markdown_with_only_front_matter_is_empty(tmp_path: Path) -> None:
    refused(write(tmp_path / "fm.md", "---\ntitle: x\n---\n\n"), "empty")


# --- html -----------------------------------------------------------------------------------

HTML = """<!doctype html>
<html><head><title> 설치 안내 | Dari </title><style>body { color: red }</style></head>
<body>
<header><a href="/">Home</a> SITE HEADER</header>
<nav><ul><li>NAV LINK</li></ul></nav>
<script>var SCRIPT_TEXT = 1;</script>
<noscript>NOSCRIPT TEXT</noscript>
<main>
  <h1>Guide</h1>
  <p>Welcome to   <b>dari</b>.
     환영합니다.</p>
  <div hidden>HIDDEN ATTR</div>
  <p style="color: red; DISPLAY : none">DISPLAY NONE</p>
  <span style="visibility:hidden">VISIBILITY HIDDEN</span>
  <div aria-hidden="true">ARIA HIDDEN</div>
  <h2>Install</h2>
  <ul><li>First step</li><li>두 번째 단계</li></ul>
  <h3>Linux</h3>
  <pre>pip install dari
  dari ingest ./docs</pre>
  <table><tr><th>OS</th><th>지원</th></tr><tr><td>Linux</td><td>예</td></tr></table>
  <!-- a comment -->
  <h2>설정</h2>
  <p>First line<br>second line</p>
  <form><input type="text" value="FORM VALUE"><button>FORM BUTTON</button></form>
</main>
<aside>ASIDE TEXT</aside>
<footer>SITE FOOTER</footer>
</body></html>
"""


def test_html_sections_without_boilerplate(tmp_path: Path) -> None:
    doc = load_one(write(tmp_path / "guide.html", HTML))
    assert doc.format == "html"
    assert doc.title == "설치 안내 | Dari"
    for hidden in (
        "SITE HEADER",
        "NAV LINK",
        "SCRIPT_TEXT",
        "NOSCRIPT",
        "HIDDEN ATTR",
        "DISPLAY NONE",
        "VISIBILITY HIDDEN",
        "ARIA HIDDEN",
        "FORM",
        "ASIDE",
        "SITE FOOTER",
        "color: red",
        "a comment",
    ):
        assert hidden not in doc.text
    assert [b.heading for b in doc.blocks] == [
        "Guide",
        "Guide > Install",
        "Guide > Install > Linux",
        "Guide > 설정",
    ]
    assert doc.blocks[0].text == "Guide\n\nWelcome to dari. 환영합니다."
    assert doc.blocks[1].text == "Install\n\n- First step\n- 두 번째 단계"
    assert doc.blocks[2].text == (
        "Linux\n\npip install dari\n  dari ingest ./docs\n\nOS | 지원\nLinux | 예"
    )
    assert doc.blocks[3].text == "설정\n\nFirst line\nsecond line"
    assert doc.metadata["encoding"] == "utf-8"


def test_html_title_from_h1_else_stem(tmp_path: Path) -> None:
    doc = load_one(write(tmp_path / "page.htm", "<header><h1>제목</h1></header><p>본문</p>"))
    assert doc.title == "제목"
    assert doc.text == "본문"
    assert load_one(write(tmp_path / "bare.htm", "<p>just text</p>")).title == "bare"


def test_html_declared_euc_kr(tmp_path: Path) -> None:
    page = '<html><head><meta charset="euc-kr"></head><body><h1>안내</h1><p>한글 본문</p></body>'
    doc = load_one(write(tmp_path / "ko.html", page, "cp949"))
    assert doc.title == "안내"
    assert doc.text == "안내\n\n한글 본문"
    assert doc.metadata["encoding"] == "cp949"
    assert doc.lang == "ko"


def test_html_with_only_boilerplate_is_empty(tmp_path: Path) -> None:
    page = "<html><head><title>T</title></head><body><nav>menu</nav><script>x</script></body>"
    refused(write(tmp_path / "shell.html", page), "empty")


# --- pdf ------------------------------------------------------------------------------------


def box_font(path: Path, text: str) -> Path:
    """A TrueType font whose glyphs are boxes for the characters of `text`: enough for a PDF with
    a real text layer in Hangul, with no font files on the machine."""
    from fontTools.fontBuilder import FontBuilder
    from fontTools.pens.ttGlyphPen import TTGlyphPen

    names = {char: f"u{ord(char):04X}" for char in sorted(set(text))}
    order = [".notdef", *names.values()]
    pen = TTGlyphPen(None)
    pen.moveTo((50, 0))
    pen.lineTo((50, 700))
    pen.lineTo((550, 700))
    pen.lineTo((550, 0))
    pen.closePath()
    box = pen.glyph()
    builder = FontBuilder(1000, isTTF=True)
    builder.setupGlyphOrder(order)
    builder.setupCharacterMap({ord(char): name for char, name in names.items()})
    builder.setupGlyf({name: box for name in order})
    builder.setupHorizontalMetrics({name: (600, 50) for name in order})
    builder.setupHorizontalHeader(ascent=800, descent=-200)
    builder.setupNameTable({"familyName": "Boxes", "styleName": "Regular"})
    builder.setupOS2(sTypoAscender=800, usWinAscent=800, usWinDescent=200)
    builder.setupPost()
    builder.save(str(path))
    return path


def make_pdf(tmp_path: Path, pages: list[str], title: str = "") -> bytes:
    """A PDF with one page per string ("" = a page with a drawing and no text)."""
    from fpdf import FPDF

    pdf = FPDF()
    if title:
        pdf.set_title(title)
    pdf.add_font("Boxes", fname=str(box_font(tmp_path / "boxes.ttf", "".join(pages) + " ")))
    pdf.set_font("Boxes", size=12)
    for text in pages:
        pdf.add_page()
        if text:
            pdf.multi_cell(w=0, text=text)
        else:
            pdf.rect(20, 20, 100, 100, style="F")
    return bytes(pdf.output())


def encrypt(data: bytes, user_password: str) -> bytes:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
    writer.encrypt(user_password=user_password, owner_password="owner", algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_pdf_pages_korean_and_english(tmp_path: Path) -> None:
    pages = ["설치 안내: 리눅스에 설치합니다.", "Page two: configure dari."]
    path = write(tmp_path / "manual.pdf", make_pdf(tmp_path, pages, title="사용 설명서"))
    doc = load_one(path)
    assert doc.format == "pdf"
    assert doc.title == "사용 설명서"
    assert [(b.page, b.text) for b in doc.blocks] == [(1, pages[0]), (2, pages[1])]
    assert doc.content_hash == sha256_text(doc.text)
    assert "encoding" not in doc.metadata


def test_pdf_skips_pages_without_text_but_keeps_numbers(tmp_path: Path) -> None:
    path = write(tmp_path / "scan-mix.pdf", make_pdf(tmp_path, ["first page", "", "third page"]))
    doc = load_one(path)
    assert [b.page for b in doc.blocks] == [1, 3]
    assert doc.title == "scan-mix"


def test_pdf_with_empty_user_password_opens(tmp_path: Path) -> None:
    data = encrypt(make_pdf(tmp_path, ["공개 문서 open text"]), user_password="")
    assert load_one(write(tmp_path / "owner-only.pdf", data)).text == "공개 문서 open text"


def test_pdf_encrypted(tmp_path: Path) -> None:
    data = encrypt(make_pdf(tmp_path, ["secret"]), user_password="secret")
    error = refused(write(tmp_path / "locked.pdf", data), "encrypted PDF")
    assert "password" in error.hint


def test_pdf_without_text_layer(tmp_path: Path) -> None:
    path = write(tmp_path / "scan.pdf", make_pdf(tmp_path, ["", ""]))
    error = refused(path, "no text layer")
    assert "OCR" in error.hint


@pytest.mark.parametrize(
    "content",
    [b"%PDF-1.7\n" + b"garbage " * 20, b"%PDF-1.4\n%%EOF\n", "half"],
)
def test_pdf_corrupt(tmp_path: Path, content: bytes | str) -> None:
    if content == "half":
        whole = make_pdf(tmp_path, ["some text"])
        content = whole[: len(whole) // 2]
    refused(write(tmp_path / "broken.pdf", content), "corrupt or unreadable PDF")


# --- docx -----------------------------------------------------------------------------------


def make_docx(path: Path) -> Path:
    import docx

    document = docx.Document()
    document.add_paragraph("before any heading")
    document.add_heading("사용 설명서", 0)
    document.add_heading("설치", 1)
    document.add_paragraph("설치 방법을 안내합니다.")
    document.add_paragraph("")
    document.add_heading("Linux", 2)
    document.add_paragraph("Run pip install dari.")
    table = document.add_table(rows=2, cols=3)
    for (row, col), text in {(0, 0): "OS", (0, 1): "지원", (0, 2): "비고"}.items():
        table.cell(row, col).text = text
    table.cell(1, 0).merge(table.cell(1, 1)).text = "Linux 예"
    table.cell(1, 2).text = "권장"
    document.add_heading("Configure", 1)
    document.add_paragraph("Edit dari.toml.")
    document.save(str(path))
    return path


def test_docx_headings_and_tables(tmp_path: Path) -> None:
    doc = load_one(make_docx(tmp_path / "manual.docx"))
    assert doc.format == "docx"
    assert doc.title == "사용 설명서"
    assert [b.heading for b in doc.blocks] == [
        "",
        "사용 설명서 > 설치",
        "사용 설명서 > 설치 > Linux",
        "사용 설명서 > Configure",
    ]
    assert doc.blocks[0].text == "before any heading"
    assert doc.blocks[1].text == "설치\n\n설치 방법을 안내합니다."
    assert doc.blocks[2].text == "Linux\n\nRun pip install dari.\nOS | 지원 | 비고\nLinux 예 | 권장"
    assert doc.content_hash == sha256_text(doc.text)
    assert doc.lang == "ko"


def test_docx_title_falls_back_to_stem(tmp_path: Path) -> None:
    import docx

    document = docx.Document()
    document.add_paragraph("Plain English paragraph.")
    document.save(str(tmp_path / "memo.docx"))
    doc = load_one(tmp_path / "memo.docx")
    assert (doc.title, doc.text, doc.lang) == ("memo", "Plain English paragraph.", "en")


def test_docx_corrupt(tmp_path: Path) -> None:
    error = refused(write(tmp_path / "fake.docx", b"this is not a zip file"), "corrupt")
    assert ".docx" in error.message
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("hello.txt", "no word document in here")
    refused(write(tmp_path / "zip.docx", buffer.getvalue()), "corrupt or unreadable .docx")


# --- csv ------------------------------------------------------------------------------------

LONG = "x" * 300


def test_csv_one_document_per_row(tmp_path: Path) -> None:
    rows = [
        "id,title,text,lang_hint,notes",
        f'a1,설치,"{KO}",ko,{LONG}',
        "a2,Empty,,en,skipped",
        f'a3,,"{EN}\r\nSecond line.",en,',
    ]
    path = write(tmp_path / "faq.csv", "\r\n".join(rows) + "\r\n")
    first, third = load(path)
    assert first.source == f"{path}#1"
    assert first.format == "csv"
    assert first.title == "설치"
    assert first.text == KO
    assert first.lang == "ko"
    assert first.metadata["id"] == "a1"
    assert first.metadata["lang_hint"] == "ko"
    assert "notes" not in first.metadata  # longer than 200 characters
    assert "title" not in first.metadata and "text" not in first.metadata
    assert first.metadata["encoding"] == "utf-8"
    assert "mtime" in first.metadata and "size_bytes" in first.metadata
    assert third.source == f"{path}#3"
    assert third.title == "faq.csv row 3"
    assert third.text == f"{EN}\nSecond line."
    assert third.content_hash == sha256_text(third.text)


def test_csv_cp949_semicolons_and_row_numbers_as_ids(tmp_path: Path) -> None:
    content = f"제목;content\n안내;{KO}\n\nSecond;{EN}\n"
    first, second = load(write(tmp_path / "ko.csv", content, "cp949"))
    assert first.text == KO and first.metadata["제목"] == "안내"
    assert first.metadata["encoding"] == "cp949"
    assert (first.metadata["id"], second.metadata["id"]) == ("1", "2")
    assert second.source.endswith("ko.csv#2")


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_csv_delimiters_and_quoting(tmp_path: Path, delimiter: str) -> None:
    text = '그는 "안녕, 세상; 반가워|\t" 라고 말했다. He said "hi, there".'
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter)
    writer.writerows([["id", "text", "title"], ["r1", text, "인용"], ["r2", EN, "plain"]])
    first, second = load(write(tmp_path / "quoted.csv", buffer.getvalue()))
    assert (first.text, first.title, first.metadata["id"]) == (text, "인용", "r1")
    assert (second.text, second.title) == (EN, "plain")


def test_csv_first_text_field_wins_and_settings_choose(tmp_path: Path) -> None:
    path = write(tmp_path / "two.csv", "body,text,doc_id\nfrom body,from text,D-7\n")
    doc = load_one(path)
    assert doc.text == "from text"
    assert doc.metadata["id"] == "D-7"
    assert doc.metadata["body"] == "from body"
    assert load_one(path, text_fields=("body", "text")).text == "from body"
    assert load_one(path, id_field="body").metadata["id"] == "from body"


def test_csv_long_field(tmp_path: Path) -> None:
    big = "가" * 200_000  # over the csv module's default 128 KiB field limit
    assert load_one(write(tmp_path / "big.csv", f'text\n"{big}"\n')).text == big


def test_csv_without_text_column(tmp_path: Path) -> None:
    path = write(tmp_path / "nums.csv", "name,value\na,1\n")
    error = refused(path, "no text column")
    assert "columns found: name, value" in error.message
    assert "ingest.text_fields" in error.hint


def test_csv_missing_id_field(tmp_path: Path) -> None:
    path = write(tmp_path / "ids.csv", "text\nhello\n")
    error = refused(path, "no column 'key' (ingest.id_field)", id_field="key")
    assert "columns found: text" in error.message


def test_csv_with_all_rows_empty(tmp_path: Path) -> None:
    error = refused(write(tmp_path / "blank.csv", "id,text\n1,\n2,  \n"), "none of its 2 rows")
    assert "ingest.text_fields" in error.hint


def test_csv_with_header_only(tmp_path: Path) -> None:
    refused(write(tmp_path / "header.csv", "id,text\n"), "no data rows")


# --- jsonl ----------------------------------------------------------------------------------


def test_jsonl_one_document_per_row(tmp_path: Path) -> None:
    lines = [
        json.dumps(
            {"_id": "k1", "title": "한국어", "text": KO, "score": 3, "ok": True}, ensure_ascii=False
        ),
        "",
        json.dumps({"content": EN, "tags": ["a"], "nested": {"a": 1}, "none": None}),
        json.dumps({"text": ""}),
    ]
    path = write(tmp_path / "docs.jsonl", "\n".join(lines) + "\n")
    first, second = load(path)
    assert (first.source, first.title, first.text, first.lang) == (f"{path}#1", "한국어", KO, "ko")
    assert first.format == "jsonl"
    assert first.metadata["id"] == "k1"
    assert first.metadata["score"] == "3" and first.metadata["ok"] == "true"
    assert "_id" not in first.metadata
    assert (second.source, second.title, second.text) == (f"{path}#2", "docs.jsonl row 2", EN)
    assert second.metadata["id"] == "2"
    assert not {"tags", "nested", "none"} & set(second.metadata)


def test_jsonl_malformed_line(tmp_path: Path) -> None:
    path = write(tmp_path / "bad.jsonl", '{"text": "ok"}\n\n{"text": "broken",\n')
    error = refused(path, "line 3 is not valid JSON")
    assert "column" in error.message


def test_jsonl_line_that_is_not_an_object(tmp_path: Path) -> None:
    refused(write(tmp_path / "list.jsonl", '{"text": "ok"}\n["text"]\n'), "line 2 is a JSON list")


def test_jsonl_without_text_field(tmp_path: Path) -> None:
    path = write(tmp_path / "keys.jsonl", '{"question": "q", "answer": "a"}\n')
    error = refused(path, "no text column on line 1")
    assert "columns found: question, answer" in error.message
    assert "ingest.text_fields" in error.hint
    assert load_one(path, text_fields=("answer",)).text == "a"


def test_jsonl_with_all_rows_empty(tmp_path: Path) -> None:
    refused(write(tmp_path / "e.jsonl", '{"text": ""}\n{"text": null}\n'), "none of its 2 rows")
