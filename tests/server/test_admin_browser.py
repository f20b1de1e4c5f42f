"""The operator page in a real browser: Playwright driving Debian's chromium (never a downloaded
one) against the app under uvicorn on loopback. An admin uploads files and watches the progress
and the per-file report, reads a trace's timings and guard verdicts, the feedback, runs an eval
and opens its report, runs two answer evals and compares them; a user's key is told the page
needs an admin key."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, ConsoleMessage, Page, expect
from tests.server.conftest import NEEDS_CHROMIUM, fits, screenshot

from dari.app import Dari
from dari.testing import FakeGenerator

PARKING = b"# Parking\n\nStaff park in lot B behind the warehouse, from 7 am.\n"
QUESTION = "When does the office open?"
COMPLAINT = "It also closes at 6 pm, say so."

pytestmark = [
    NEEDS_CHROMIUM,
    pytest.mark.slow,  # about 10 s with the browser's start
]

KeyMaker = Callable[..., Any]


PROBLEMS: list[str] = []


@pytest.fixture(autouse=True)
def _no_script_errors() -> Iterator[None]:
    """Every test fails on an uncaught script error or a CSP violation in a page."""
    PROBLEMS.clear()
    yield
    assert not PROBLEMS, PROBLEMS


def _watch(page: Page) -> Page:
    def console(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:  # e.g. a style the policy refused
            PROBLEMS.append(f"{page.url}: {message.text}")

    page.on("pageerror", lambda exc: PROBLEMS.append(f"{page.url}: {exc}"))
    page.on("console", console)
    return page


def _page(browser: Browser, server: str, path: str = "/admin", width: int = 1280) -> Page:
    context = browser.new_context(locale="en-US", viewport={"width": width, "height": 900})
    page = _watch(context.new_page())
    page.goto(server + path)
    return page


@pytest.fixture
def beir(tmp_path: Path) -> Path:
    folder = tmp_path / "mini-beir"
    (folder / "qrels").mkdir(parents=True)
    docs = [
        {"_id": "parking", "title": "Parking", "text": "The garage opens at 7 am for all staff."},
        {"_id": "refund", "title": "Refunds", "text": "Customers may request a refund in 30 days."},
    ]
    (folder / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    (folder / "queries.jsonl").write_text(
        json.dumps({"_id": "q1", "text": "When does the garage open?"})
        + "\n"
        + json.dumps({"_id": "q2", "text": "refund window"})
        + "\n"
    )
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\tparking\t1\n")
    return folder


def test_an_operator_manages_documents_and_reads_traces_feedback_and_evals(
    browser: Browser,
    server: str,
    client: TestClient,
    make_key: KeyMaker,
    app_dari: Dari,
    fake_generator: FakeGenerator,
    beir: Path,
):
    _, root = make_key(client, "admin", collections=("*",), acl=None)
    fake_generator.enqueue("The office opens at 8 am [1].")
    asked = client.post(
        "/api/query", json={"question": QUESTION, "collection": "docs"}, headers=root
    )
    trace_id = asked.json()["trace_id"]
    body = {"trace_id": trace_id, "thumb": "down", "comment": COMPLAINT}
    assert client.post("/api/feedback", json=body, headers=root).status_code == 200

    page = _page(browser, server)
    expect(page.locator("#keybox")).to_be_visible()  # auth is on: the page asks for a key
    expect(page.locator("#tabs")).to_be_hidden()
    page.locator("#key").fill(root["Authorization"].split()[1])
    page.locator("#keybox button").click()
    expect(page.locator("#tabs")).to_be_visible()
    expect(page.locator("#keybox")).to_be_hidden()
    expect(page.locator("#collections tbody button.link")).to_have_text(["docs", "other"])

    # Collections and documents: upload with progress, the per-file report, delete.
    page.locator("#collections button.link", has_text="docs").click()
    expect(page.locator("#pickedname")).to_have_text("docs")
    expect(page.locator("#documents tbody tr")).to_have_count(4)
    page.locator("#files").set_input_files(
        [
            {"name": "parking.md", "mimeType": "text/markdown", "buffer": PARKING},
            {"name": "notes.xyz", "mimeType": "application/octet-stream", "buffer": b"?"},
        ]
    )
    page.locator("#upload button").click()
    expect(page.locator("#progresstext")).to_have_text("100 % · Done")
    expect(page.locator("#progress")).to_have_attribute("value", "100")
    expect(page.locator("#uploadsummary")).to_contain_text("added 1")
    expect(page.locator("#uploadsummary")).to_contain_text("failed 1")
    failed = page.locator("#uploadfiles tr.status-failed")
    expect(failed).to_contain_text("notes.xyz")
    expect(failed).to_contain_text("unsupported file type '.xyz'")
    expect(failed).to_contain_text("supported: ")
    expect(page.locator("#uploadfiles tr.status-added")).to_contain_text("parking.md")
    parking = page.locator("#documents tbody tr", has_text="parking.md")
    expect(parking).to_have_count(1)
    expect(parking).to_contain_text("Parking")
    screenshot(page, "admin-upload.png")
    page.once("dialog", lambda dialog: dialog.accept())
    parking.locator("button").click()
    expect(page.locator("#status")).to_have_text("Removed: parking.md")
    expect(page.locator("#documents tbody tr", has_text="parking.md")).to_have_count(0)

    # Traces: the question asked through the API, with its timings, verdicts and sources.
    page.locator("#tabs button[data-tab=traces]").click()
    row = page.locator("#traces tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text(QUESTION)
    expect(row).to_contain_text("answered")
    row.locator("button.link").click()
    expect(page.locator("#tr-question")).to_have_text(QUESTION)
    expect(page.locator("#tr-meta")).to_contain_text(trace_id)
    expect(page.locator("#tr-meta")).to_contain_text("prompt grounded@2")
    expect(page.locator("#tr-answer")).to_have_text("The office opens at 8 am [1].")
    steps = page.locator("#tr-timings .step")
    expect(steps.filter(has_text="total")).to_have_count(1)
    expect(steps.filter(has_text="retrieve.bm25")).to_have_class("step sub")
    labels = page.locator("#tr-timings .label").all_text_contents()
    assert labels.index("retrieve") + 1 == labels.index("retrieve.bm25"), labels  # under it
    expect(steps.filter(has_text="guard.context")).to_have_class("step")  # no "guard" step
    widths = page.eval_on_selector_all(
        "#tr-timings .fill", "els => els.map(e => e.getBoundingClientRect().width)"
    )
    assert max(widths) > 5 * min(widths) > 0, widths  # bars scaled to the slowest step
    verdicts = page.locator("#tr-verdicts tbody tr")
    expect(verdicts.filter(has_text="injection").first).to_contain_text("allow")
    expect(verdicts.filter(has_text="pii_leak")).to_have_count(1)
    expect(page.locator("#tr-sources li")).to_contain_text(["[1] office"])
    screenshot(page, "admin-trace.png")

    # Feedback: the figures and the entry made through the API.
    page.locator("#tabs button[data-tab=feedback]").click()
    entry = page.locator("#fb-entries tbody tr")
    expect(entry).to_have_count(1)
    expect(entry).to_contain_text(COMPLAINT)
    expect(entry).to_contain_text(QUESTION)
    expect(entry).to_contain_text(trace_id[:8])
    expect(page.locator("#fb-figures")).to_contain_text("Answers traced1")
    expect(page.locator("#fb-collections tbody tr")).to_have_text(["docs010.0 %"])
    expect(page.locator("#fb-disliked tbody tr")).to_contain_text(QUESTION)

    # Evals: start one, watch it finish, open its report in a new tab.
    page.locator("#tabs button[data-tab=evals]").click()
    expect(page.locator("#noevals")).to_be_visible()
    page.locator("#ev-dataset").fill(str(beir / "missing"))
    page.locator("#evalform button").click()
    expect(page.locator("#status")).to_contain_text(f"eval set not found: {beir / 'missing'}")
    page.locator("#ev-dataset").fill(str(beir))
    page.locator("#ev-configs").fill("bm25,dense")
    page.locator("#evalform button").click()
    expect(page.locator("#status")).to_contain_text("Eval run started: ")
    run = page.locator("#evals tbody tr")
    expect(run.locator("a", has_text="Open report")).to_be_visible(timeout=30_000)
    expect(run).to_contain_text("mini-beir")
    expect(run).to_contain_text("bm25: 1.000 · 1.000")
    with page.context.expect_page() as opened:
        run.locator("a").click()
    report = _watch(opened.value)
    report.wait_for_load_state()
    expect(report.locator("h1")).to_have_text("Retrieval eval: mini-beir")
    expect(report.locator("svg")).to_have_count(3)
    screenshot(report, "admin-eval-report.png")
    report.close()

    page.locator("#tabs button[data-tab=cache]").click()
    expect(page.locator("#cache-figures")).to_contain_text("Size on disk")

    page.locator("#lang").click()
    expect(page.locator("#tabs button[data-tab=traces]")).to_have_text("트레이스")
    expect(page.locator("#cache-figures")).to_contain_text("디스크 크기")
    page.locator("#tabs button[data-tab=traces]").click()
    expect(page.locator("#traces tbody tr")).to_contain_text("답변함")


def test_a_user_key_is_told_the_page_needs_an_admin_key(
    browser: Browser, server: str, client: TestClient, make_key: KeyMaker
):
    _, user = make_key(client)
    page = _page(browser, server, "/")  # the chat page keeps the key; /admin reads it there
    page.locator("#key").fill(user["Authorization"].split()[1])
    page.locator("#keybox button").click()
    expect(page.locator("#collection option")).to_have_text(["docs"])
    page.goto(server + "/admin")
    expect(page.locator("#needadmin h2")).to_have_text("This page needs an admin key")
    expect(page.locator("#needadmin")).to_be_visible()
    expect(page.locator("#tabs")).to_be_hidden()
    expect(page.locator("#tab-collections")).to_be_hidden()
    expect(page.locator("#keybox")).to_be_visible()  # to enter another key
    expect(page.locator("#status")).to_be_hidden()
    screenshot(page, "admin-needs-admin-key.png")


def test_a_phone_in_korean_without_horizontal_scroll(
    browser: Browser,
    server: str,
    client: TestClient,
    make_key: KeyMaker,
    fake_generator: FakeGenerator,
):
    _, root = make_key(client, "admin", collections=("*",), acl=None)
    fake_generator.enqueue("The office opens at 8 am [1].")
    body = {"question": QUESTION, "collection": "docs"}
    assert client.post("/api/query", json=body, headers=root).status_code == 200
    context = browser.new_context(locale="ko-KR", viewport={"width": 375, "height": 800})
    page = _watch(context.new_page())
    page.goto(server + "/admin")
    expect(page.locator("#keybox .hint")).to_contain_text("관리자 API 키가 필요합니다")
    page.locator("#key").fill(root["Authorization"].split()[1])
    page.locator("#keybox button").click()
    page.locator("#collections button.link", has_text="docs").click()
    expect(page.locator("#documents tbody tr")).to_have_count(4)
    assert fits(page), "the documents scroll the page sideways at 375 px"
    page.locator("#tabs button[data-tab=traces]").click()
    page.locator("#traces button.link").click()
    expect(page.locator("#tr-timings .step")).not_to_have_count(0)
    assert fits(page), "the trace scrolls the page sideways at 375 px"
    screenshot(page, "admin-375px-ko.png")


def test_an_operator_runs_two_answer_evals_and_compares_them(
    browser: Browser,
    server: str,
    client: TestClient,
    make_key: KeyMaker,
    fake_generator: FakeGenerator,
    tmp_path: Path,
):
    _, root = make_key(client, "admin", collections=("*",), acl=None)
    golden = tmp_path / "golden.jsonl"
    rows = [
        {"id": "refund", "question": "How long do I have to request a refund?",
         "answer": "Within 30 days of purchase."},
        {"id": "office", "question": "When does the office open?", "answer": "At 8 am."},
    ]  # fmt: skip
    golden.write_text("".join(json.dumps(r) + "\n" for r in rows) + "not json\n")
    page = _page(browser, server)
    page.locator("#key").fill(root["Authorization"].split()[1])
    page.locator("#keybox button").click()
    page.locator("#tabs button[data-tab=evals]").click()
    page.locator("input[name=evkind][value=answers]").check()
    expect(page.locator("#answerform")).to_be_visible()
    expect(page.locator("#evalform")).to_be_hidden()
    expect(page.locator("#ea-collection option")).to_have_text(["docs", "other"])
    page.locator("#ea-collection").select_option("docs")
    page.locator("#ea-golden").fill(str(tmp_path / "missing.jsonl"))
    page.locator("#answerform button").click()
    expect(page.locator("#status")).to_contain_text(f"golden set not found: {tmp_path}")

    runs = page.locator("#evals tbody tr")
    for answers in (
        ["Customers can request a refund within 30 days of purchase [1].",
         "The office opens at 8 am [1]."],
        ["Refunds take a year and need a form [1].", "Parking is free on Sundays [1]."],
    ):  # fmt: skip
        for text in answers:
            fake_generator.enqueue(text)
        page.locator("#ea-golden").fill(str(golden))
        page.locator("#answerform button").click()
        expect(page.locator("#status")).to_contain_text("Eval run started: ")
        expect(runs.first.locator("a", has_text="Open report")).to_be_visible(timeout=30_000)
    newest = runs.first
    expect(newest).to_contain_text("answers")
    expect(newest).to_contain_text("golden.jsonl")
    expect(newest).to_contain_text("collection docs")
    expect(newest).to_contain_text("token_f1: ")
    expect(newest).to_contain_text("faithfulness: ")
    expect(newest).to_contain_text("items 2 · skipped lines 1")

    expect(page.locator("#comparebtn")).to_be_disabled()
    for box in page.locator("#evals input[type=checkbox]").all():
        box.check()
    page.locator("#comparebtn").click()
    expect(page.locator("#comparison")).to_be_visible()
    expect(page.locator("#cmp-meta")).to_contain_text("2 paired items")
    expect(page.locator("#cmp-deltas tr", has_text="token_f1")).to_have_class("delta-worse")
    screenshot(page, "admin-answer-compare.png")
    with page.context.expect_page() as opened:
        page.locator("#cmp-open").click()
    report = _watch(opened.value)
    report.wait_for_load_state()
    expect(report.locator("h1")).to_contain_text("Answer eval: B = ")
    report.close()
