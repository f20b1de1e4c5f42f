"""Answer eval runs started on the server (`dari eval answers` over one of its collections, with
its own store, embedder and LLM), listed beside retrieval runs, and two of them compared as
`dari eval compare` does; reports behind an admin key or a signed link."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.server.conftest import finished

from dari.app import Dari
from dari.eval import answer_report
from dari.eval.answers import AnswerEval
from dari.eval.golden import load_golden
from dari.server.answerruns import HEADLINE
from dari.testing import FakeGenerator

KeyMaker = Callable[..., Any]
ITEMS = [
    {
        "id": "refund",
        "question": "How long do I have to request a refund?",
        "answer": "Within 30 days of purchase.",
        "gold_ids": ["refunds.md"],
        "tags": ["billing"],
    },
    {"id": "office", "question": "When does the office open?", "answer": "At 8 am."},
    {
        "id": "leave",
        "question": "연차 휴가는 며칠인가요?",
        "answer": "연차 휴가는 1년에 15일입니다.",
        "gold_ids": ["leave"],
    },
    {"id": "mercury", "question": "What is the boiling point of mercury?", "unanswerable": True},
]
GOOD = [
    "Customers can request a refund within 30 days of purchase [1].",
    "The office opens at 8 am [1].",
    "정규직 직원의 연차 휴가는 1년에 15일입니다 [1].",
]
WORSE = [
    "Refunds take a year and need a form from the head office [1].",
    "Parking is free on Sundays [1].",
    "휴가는 없습니다 [1].",
]


@pytest.fixture
def root(client: TestClient, make_key: KeyMaker) -> dict[str, str]:
    headers: dict[str, str] = make_key(client, "admin", collections=("*",), acl=None)[1]
    return headers


@pytest.fixture
def golden(tmp_path: Path) -> Path:
    """Four items over the `docs` collection, and a broken line 2."""
    path = tmp_path / "golden.jsonl"
    lines = [json.dumps(i, ensure_ascii=False) for i in ITEMS]
    lines.insert(1, '{"question": "cut short')
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _run(
    client: TestClient,
    headers: dict[str, str],
    fake: FakeGenerator,
    golden: Path,
    answers: list[str],
    **extra: Any,
) -> dict[str, Any]:
    for text in answers:
        fake.enqueue(text)
    body = {"golden": str(golden), "collection": "docs", **extra}
    started = client.post("/api/evals/answers", json=body, headers=headers)
    assert started.status_code == 202, started.text
    return finished(client, headers, started.json()["id"])


def test_an_answer_run_is_scored_listed_and_its_report_opens(
    client: TestClient,
    root: dict[str, str],
    fake_generator: FakeGenerator,
    golden: Path,
    app_dari: Dari,
):
    old = app_dari.home / "evals" / "20200101-000000-abcdef"  # a retrieval run, from before kinds
    old.mkdir(parents=True)
    record = {"id": old.name, "status": "failed", "dataset": "/data/scifact", "configs": "bm25"}
    (old / "run.json").write_text(json.dumps(record | {"split": "test", "started": 1.0}))

    for text in GOOD:
        fake_generator.enqueue(text)
    body = {"golden": str(golden), "collection": "docs", "top_k": 3}
    started = client.post("/api/evals/answers", json=body, headers=root)
    assert started.status_code == 202, started.text
    begun = started.json()
    assert (begun["kind"], begun["status"], begun["collection"]) == ("answers", "running", "docs")
    assert begun["golden"] == str(golden) and begun["skipped"] == 1 and begun["top_k"] == 3

    run = finished(client, root, begun["id"])
    assert run["status"] == "done", run
    report = run["report"]
    assert report["kind"] == "answers" and report["run"]["items"] == 4
    [skipped] = report["run"]["skipped"]
    assert skipped["line"] == 2 and skipped["reason"].startswith("not JSON")
    assert report["run"]["retrieval"]["top_k"] == 3
    items = {i["id"]: i for i in report["items"]}
    assert items["refund"]["metrics"]["citation_recall"] == 1.0
    assert items["mercury"]["outcome"] == "abstained"
    assert app_dari.store.trace(items["office"]["trace_id"]) is not None  # the server's store

    folder = app_dari.home / "evals" / run["id"]
    assert json.loads((folder / "run.json").read_text())["kind"] == "answers"
    files = {p.name for p in (folder / "answers").iterdir()}
    assert files >= {"run.json", "items.jsonl", "report.json", "report.html"}  # as the CLI's
    assert json.loads((folder / "answers" / "report.json").read_text()) == report

    listed = client.get("/api/evals", headers=root).json()
    assert [(r["id"], r["kind"]) for r in listed] == [
        (run["id"], "answers"),
        (old.name, "retrieval"),
    ]
    summary = listed[0]["summary"]
    assert summary["golden"] == "golden.jsonl" and summary["collection"] == "docs"
    assert summary["items"] == 4 and summary["skipped"] == 1
    assert list(summary["metrics"]) == list(HEADLINE)
    assert summary["metrics"]["token_f1"] == report["metrics"]["token_f1"]
    assert "report" not in listed[0]

    link = listed[0]["report_url"]
    page = client.get(link)  # no key: the signed link opens it
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "Answer eval: docs" in page.text and page.text.count("<svg") >= 2
    assert "sandbox" in page.headers["content-security-policy"]
    assert client.get(f"/api/evals/{run['id']}/report.html", headers=root).text == page.text
    assert client.get(f"/api/evals/{run['id']}/report.html").status_code == 401
    assert client.get(link.replace("sig=", "sig=0")).status_code == 401


def test_two_answer_runs_compare(
    client: TestClient,
    root: dict[str, str],
    fake_generator: FakeGenerator,
    golden: Path,
    app_dari: Dari,
):
    a = _run(client, root, fake_generator, golden, GOOD)
    b = _run(client, root, fake_generator, golden, WORSE)
    assert a["status"] == b["status"] == "done"

    compared = client.post("/api/evals/compare", json={"a": a["id"], "b": b["id"]}, headers=root)
    assert compared.status_code == 200, compared.text
    data = compared.json()
    assert (data["kind"], data["a"], data["b"], data["paired_items"]) == (
        "compare",
        a["id"],
        b["id"],
        4,
    )
    f1 = data["metrics"]["token_f1"]
    assert f1["n"] == 3 and f1["delta"] < 0 and f1["b"] < f1["a"]
    assert f1["ci95"][0] <= f1["delta"] <= f1["ci95"][1]
    assert data["metrics"]["faithfulness"]["delta"] < 0
    assert data["worse"]["token_f1"]

    folder = app_dari.home / "evals" / f"compare-{a['id']}-{b['id']}"
    on_disk = json.loads((folder / "compare.json").read_text())
    assert on_disk == {k: v for k, v in data.items() if k != "report_url"}
    page = client.get(data["report_url"])  # no key: the signed link
    assert page.status_code == 200 and "<svg" in page.text
    assert "sandbox" in page.headers["content-security-policy"]
    name = folder.name
    assert client.get(f"/api/evals/{name}/compare.html", headers=root).text == page.text
    assert client.get(f"/api/evals/{name}/compare.html").status_code == 401
    assert client.get(data["report_url"].replace("sig=", "sig=0")).status_code == 401
    wrong = data["report_url"].replace(name, f"compare-{b['id']}-{a['id']}")
    assert client.get(wrong).status_code == 401  # signed for that one comparison
    assert client.get("/api/evals/compare-nope/compare.html", headers=root).status_code == 404
    assert [r["id"] for r in client.get("/api/evals", headers=root).json()] == [b["id"], a["id"]]

    swapped = client.post("/api/evals/compare", json={"a": b["id"], "b": a["id"]}, headers=root)
    assert swapped.json()["metrics"]["token_f1"]["delta"] == -f1["delta"]


def test_only_two_finished_answer_runs_compare(
    client: TestClient,
    root: dict[str, str],
    fake_generator: FakeGenerator,
    golden: Path,
    app_dari: Dari,
):
    done = _run(client, root, fake_generator, golden, GOOD)["id"]
    evals = app_dari.home / "evals"
    for run_id, kind, status in (
        ("20200101-000000-aaaaaa", "retrieval", "done"),
        ("20200101-000000-bbbbbb", "answers", "failed"),
        ("20200101-000000-cccccc", "answers", "running"),  # interrupted
    ):
        (evals / run_id).mkdir()
        record = {"id": run_id, "kind": kind, "status": status, "started": 1.0}
        (evals / run_id / "run.json").write_text(json.dumps(record))
    cases = [
        ({"a": done, "b": done}, 400, f"both runs are {done}"),
        ({"a": done, "b": "20990101-000000-abcdef"}, 404, "no eval run '20990101-000000-abcdef'"),
        ({"a": "../../etc", "b": done}, 404, "no eval run '../../etc'"),
        ({"a": "20200101-000000-aaaaaa", "b": done}, 400, "is a retrieval run"),
        ({"a": done, "b": "20200101-000000-bbbbbb"}, 400, "did not finish"),
        ({"a": done, "b": "20200101-000000-cccccc"}, 400, "did not finish"),
    ]
    for body, code, message in cases:
        refused = client.post("/api/evals/compare", json=body, headers=root)
        assert refused.status_code == code, refused.text
        assert message in refused.json()["error"]["message"]
        assert refused.json()["error"]["hint"]
    assert client.post("/api/evals/compare", json={"a": done}, headers=root).status_code == 422
    assert not list(evals.glob("compare-*"))


def test_bad_answer_requests_say_what_is_wrong_and_start_nothing(
    client: TestClient,
    root: dict[str, str],
    fake_generator: FakeGenerator,
    golden: Path,
    tmp_path: Path,
):
    missing = tmp_path / "nope.jsonl"
    latin = tmp_path / "latin1.jsonl"
    latin.write_bytes('{"question": "café?", "answer": "é"}\n'.encode("latin-1"))
    bad = tmp_path / "bad.jsonl"
    bad.write_text('not json\n{"question": "no answer"}\n{"answer": "no question"}\n\n{"x"\n')
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n")
    ok = {"golden": str(golden), "collection": "docs"}
    cases = [
        (ok | {"collection": "nope"}, 404, "unknown collection 'nope'"),
        (ok | {"golden": str(missing)}, 404, f"golden set not found: {missing}"),
        (ok | {"golden": str(tmp_path)}, 400, f"the golden set {tmp_path} is a folder"),
        (ok | {"golden": str(latin)}, 400, f"the golden set {latin} is not UTF-8"),
        (ok | {"golden": "golden.jsonl"}, 400, "'golden.jsonl' is not absolute"),
        (ok | {"golden": str(bad)}, 400, f"no usable line in the golden set {bad}: all 4 are bad"),
        (ok | {"golden": str(empty)}, 400, f"the golden set {empty} has no items"),
        (ok | {"prompt": "nope@9"}, 404, "unknown prompt 'nope@9'"),
        (ok | {"model": str(tmp_path / "no.gguf")}, 400, "cannot be served"),
    ]
    for body, code, message in cases:
        refused = client.post("/api/evals/answers", json=body, headers=root)
        assert refused.status_code == code, (body, refused.text)
        assert message in refused.json()["error"]["message"], refused.text
        assert refused.json()["error"]["hint"]
    reasons = client.post("/api/evals/answers", json=ok | {"golden": str(bad)}, headers=root)
    assert "line 1: not JSON" in reasons.json()["error"]["message"]
    assert "line 2: missing field 'answer'" in reasons.json()["error"]["message"]
    assert reasons.json()["error"]["message"].endswith(", …)")  # 4 bad, the first 3 shown
    for body in (ok | {"top_k": 0}, ok | {"samples": 2}, {"golden": str(golden)}):
        assert client.post("/api/evals/answers", json=body, headers=root).status_code == 422
    assert client.get("/api/evals", headers=root).json() == []  # nothing was started or kept
    assert _run(client, root, fake_generator, golden, GOOD)["status"] == "done"  # none reserved


@pytest.fixture
def held(monkeypatch: pytest.MonkeyPatch) -> Iterator[threading.Event]:
    """Answer runs wait for the event before answering: a run stays `running` until it is set."""
    go = threading.Event()
    real = AnswerEval.run

    def waiting(self: AnswerEval, *args: Any, **kwargs: Any) -> Any:
        assert go.wait(30), "the test never let the run go on"
        return real(self, *args, **kwargs)

    monkeypatch.setattr(AnswerEval, "run", waiting)
    yield go
    go.set()


def test_one_run_at_a_time_of_either_kind(
    client: TestClient,
    root: dict[str, str],
    fake_generator: FakeGenerator,
    golden: Path,
    held: threading.Event,
):
    body = {"golden": str(golden), "collection": "docs"}
    first = client.post("/api/evals/answers", json=body, headers=root)
    assert first.status_code == 202
    run_id = first.json()["id"]
    for path, other in (
        ("/api/evals/answers", body),
        ("/api/evals/retrieval", {"dataset": str(golden.parent)}),
    ):
        busy = client.post(path, json=other, headers=root)
        assert busy.status_code == 409, busy.text
        assert f"eval run {run_id} is still running" in busy.json()["error"]["message"]
        assert "one run at a time" in busy.json()["error"]["message"]
    pair = {"a": run_id, "b": "20200101-000000-aaaaaa"}
    compared = client.post("/api/evals/compare", json=pair, headers=root)
    assert compared.status_code == 409 and run_id in compared.json()["error"]["message"]
    for text in GOOD:
        fake_generator.enqueue(text)
    held.set()
    assert finished(client, root, run_id)["status"] == "done"


def test_answer_evals_need_an_admin_key(
    client: TestClient, make_key: KeyMaker, golden: Path, app_dari: Dari
):
    _, user = make_key(client)
    asked = {"golden": str(golden), "collection": "docs"}
    ids = {"a": "20200101-000000-aaaaaa", "b": "20200101-000000-bbbbbb"}
    for path, body in (("/api/evals/answers", asked), ("/api/evals/compare", ids)):
        refused = client.post(path, json=body, headers=user)
        assert refused.status_code == 403, path
        assert refused.json()["error"]["message"] == "this needs an admin key"
        assert client.post(path, json=body).status_code == 401
    assert not (app_dari.home / "evals").exists()


def test_an_interrupted_answer_run_says_how_to_finish_it(
    client: TestClient,
    root: dict[str, str],
    fake_generator: FakeGenerator,
    golden: Path,
    app_dari: Dari,
):
    run = _run(client, root, fake_generator, golden, GOOD[:1], limit=1)
    assert run["report"]["run"]["items"] == 1
    folder = app_dari.home / "evals" / run["id"]
    record = json.loads((folder / "run.json").read_text())
    record |= {"status": "running", "limit": None, "finished": None}  # the server stopped
    (folder / "run.json").write_text(json.dumps(record))

    [listed] = client.get("/api/evals", headers=root).json()
    assert listed["status"] == "failed" and listed["error"].startswith("interrupted")
    assert listed["report_url"] is None
    output = folder / "answers"
    assert listed["hint"].endswith(
        f"dari eval answers --golden {golden} --collection docs --output {output}"
    )

    for text in GOOD[1:]:  # what that command does: only the items not yet answered
        fake_generator.enqueue(text)
    asked = len(fake_generator.seen)
    resumed = AnswerEval(app_dari, "docs").run(load_golden(golden), output)
    data = answer_report.write(resumed, output)
    assert resumed.resumed == 1 and data["run"]["items"] == 4
    assert len(fake_generator.seen) == asked + 2  # office and leave; mercury abstains unasked
