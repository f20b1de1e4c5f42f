"""Operator endpoints: feedback as `dari feedback list/report` shows it, and retrieval eval runs
started on the server (one at a time, reports under DARI_HOME/evals/<id>/, HTML report behind
an admin key or a signed link, with a CSP that lets no script run)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.conftest import STORE_BACKENDS
from tests.server.conftest import finished

from dari.app import Dari
from dari.errors import InputError
from dari.eval.retrieval import RetrievalEval
from dari.feedback.report import report
from dari.testing import FakeGenerator


@pytest.fixture(params=STORE_BACKENDS)
def store_backend(request: pytest.FixtureRequest) -> str:
    """This module's tests run on SQLite and on PostgreSQL."""
    return str(request.param)


KeyMaker = Callable[..., Any]
DOCS = [
    {"_id": "leave", "title": "Leave policy", "text": "직원의 연차 휴가는 1년에 15일입니다."},
    {"_id": "refund", "title": "Refunds", "text": "Customers may request a refund within 30 days."},
    {"_id": "parking", "title": "Parking", "text": "The garage opens at 7 am for all staff."},
]
QUERIES = [
    ("q1", "휴가 며칠", "leave"),
    ("q2", "When does the garage open?", "parking"),
    ("q3", "refund window", "refund"),
]


@pytest.fixture
def root(client: TestClient, make_key: KeyMaker) -> dict[str, str]:
    headers: dict[str, str] = make_key(client, "admin", collections=("*",), acl=None)[1]
    return headers


@pytest.fixture
def beir(tmp_path: Path) -> Path:
    """A tiny BEIR folder: corpus.jsonl, queries.jsonl, qrels/test.tsv."""
    folder = tmp_path / "mini-beir"
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text(
        "".join(json.dumps(d, ensure_ascii=False) + "\n" for d in DOCS), encoding="utf-8"
    )
    (folder / "queries.jsonl").write_text(
        "".join(
            json.dumps({"_id": q, "text": t}, ensure_ascii=False) + "\n" for q, t, _ in QUERIES
        ),
        encoding="utf-8",
    )
    qrels = "".join(f"{q}\t{d}\t1\n" for q, _, d in QUERIES)
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + qrels)
    return folder


def _ask(client: TestClient, headers: dict[str, str], fake: FakeGenerator, q: str) -> str:
    fake.enqueue("The office opens at 8 am [1].")
    body = {"question": q, "collection": "docs"}
    answer = client.post("/api/query", json=body, headers=headers)
    assert answer.status_code == 200, answer.text
    trace_id: str = answer.json()["trace_id"]
    return trace_id


# -- feedback ------------------------------------------------------------------------------------
def test_feedback_entries_and_report_as_the_cli_shows_them(
    client: TestClient, root: dict[str, str], fake_generator: FakeGenerator, app_dari: Dari
):
    first = _ask(client, root, fake_generator, "When does the office open?")
    second = _ask(client, root, fake_generator, "Is the office open at 7 am?")
    for body in (
        {"trace_id": first, "thumb": "up"},
        {"trace_id": second, "thumb": "down", "comment": "It opens at 8, not 7."},
        {"trace_id": second, "signal": "copy"},
    ):
        assert client.post("/api/feedback", json=body, headers=root).status_code == 200

    entries = client.get("/api/feedback", headers=root).json()
    assert [(e["trace_id"], e["kind"]) for e in entries] == [
        (second, "copy"),
        (second, "down"),
        (first, "up"),
    ]
    down = entries[1]
    assert down["comment"] == "It opens at 8, not 7." and down["negative"] and not down["positive"]
    assert down["question"] == "Is the office open at 7 am?" and down["collection"] == "docs"
    assert len(client.get("/api/feedback?limit=1", headers=root).json()) == 1
    only = client.get("/api/feedback", params={"trace": first}, headers=root).json()
    assert [e["kind"] for e in only] == ["up"]
    assert client.get("/api/feedback?collection=other", headers=root).json() == []

    figures = client.get("/api/feedback/report", headers=root).json()
    assert figures == json.loads(json.dumps(report(app_dari.feedback_store).to_dict()))
    assert figures["traces"] == 2 and figures["with_feedback"] == 2
    assert figures["signals"]["copy"] == 1
    assert figures["by_collection"] == [{"name": "docs", "up": 1, "down": 1, "share": 0.5}]
    assert figures["most_disliked"][0]["question"] == "Is the office open at 7 am?"
    assert client.get("/api/feedback/report?collection=other", headers=root).json()["traces"] == 0


def test_feedback_reading_needs_an_admin_key(client: TestClient, make_key: KeyMaker):
    _, user = make_key(client)
    for path in ("/api/feedback", "/api/feedback/report", "/api/evals"):
        refused = client.get(path, headers=user)
        assert refused.status_code == 403, path
        assert refused.json()["error"]["message"] == "this needs an admin key"
    assert client.get("/api/feedback").status_code == 401


# -- eval runs -----------------------------------------------------------------------------------
def test_an_eval_run_writes_its_report_and_lists_it(
    client: TestClient, root: dict[str, str], beir: Path, app_dari: Dari
):
    started = client.post(
        "/api/evals/retrieval", json={"dataset": str(beir), "limit": 3}, headers=root
    )
    assert started.status_code == 202, started.text
    run_id = started.json()["id"]
    assert started.json()["status"] == "running"
    assert started.json()["configs"] == "bm25,dense,hybrid"

    run = finished(client, root, run_id)
    assert run["status"] == "done", run
    assert run["error"] == "" and run["finished"] >= run["started"]
    assert set(run["report"]["configs"]) == {"bm25", "dense", "hybrid"}
    assert run["report"]["dataset"]["queries"] == 3 and run["report"]["dataset"]["documents"] == 3
    assert run["report"]["configs"]["bm25"]["ndcg@10"] == 1.0
    folder = app_dari.home / "evals" / run_id
    assert {p.name for p in folder.iterdir()} >= {"run.json", "report.json", "report.html"}
    assert json.loads((folder / "report.json").read_text()) == run["report"]
    assert (app_dari.home / "eval" / "dari.db").is_file()  # indexed apart from the collections
    assert "mini-beir" not in str(client.get("/api/collections", headers=root).json())

    [listed] = client.get("/api/evals", headers=root).json()
    assert listed["id"] == run_id and listed["status"] == "done" and "report" not in listed
    assert listed["summary"]["dataset"] == "mini-beir" and listed["summary"]["queries"] == 3
    assert listed["summary"]["configs"]["bm25"]["ndcg@10"] == 1.0
    assert set(listed["summary"]["configs"]["dense"]) == {
        "ndcg@10",
        "recall@10",
        "mrr@10",
        "latency_ms_p50",
    }

    page = client.get(f"/api/evals/{run_id}/report.html", headers=root)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.text.count("<svg") == 3 and "mini-beir" in page.text
    csp = page.headers["content-security-policy"]
    assert "script-src" not in csp and "default-src 'none'" in csp and "sandbox" in csp
    assert "style-src 'unsafe-inline'" in csp
    assert client.get(f"/api/evals/{run_id}/report.html").status_code == 401

    link = listed["report_url"]  # what a browser tab opens, without a key
    assert client.get(link).text == page.text
    assert client.get(link.replace("sig=", "sig=0")).status_code == 401
    other = client.post("/api/evals/retrieval", json={"dataset": str(beir)}, headers=root).json()
    assert finished(client, root, other["id"])["status"] == "done"
    assert client.get(link.replace(run_id, other["id"])).status_code == 401  # one run's link
    assert [r["id"] for r in client.get("/api/evals", headers=root).json()] == [
        other["id"],
        run_id,
    ]


def test_an_expired_report_link_is_refused(
    client: TestClient, root: dict[str, str], beir: Path, monkeypatch: pytest.MonkeyPatch
):
    run_id = client.post("/api/evals/retrieval", json={"dataset": str(beir)}, headers=root)
    run = finished(client, root, run_id.json()["id"])
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 2 * 3600)
    refused = client.get(run["report_url"])
    assert refused.status_code == 401
    assert "expired" in refused.json()["error"]["message"]


@pytest.fixture
def held(monkeypatch: pytest.MonkeyPatch) -> Iterator[threading.Event]:
    """Eval runs wait for the event before ranking: a run stays `running` until it is set."""
    go = threading.Event()
    real = RetrievalEval.run

    def waiting(self: RetrievalEval, *args: Any, **kwargs: Any) -> Any:
        assert go.wait(30), "the test never let the run go on"
        return real(self, *args, **kwargs)

    monkeypatch.setattr(RetrievalEval, "run", waiting)
    yield go
    go.set()


def test_one_run_at_a_time(
    client: TestClient, root: dict[str, str], beir: Path, held: threading.Event
):
    first = client.post("/api/evals/retrieval", json={"dataset": str(beir)}, headers=root)
    assert first.status_code == 202
    run_id = first.json()["id"]
    running = client.get("/api/evals", headers=root).json()[0]
    assert running["status"] == "running" and running["progress"]["stage"] == "index"
    assert running["summary"] is None and running["report_url"] is None
    busy = client.post("/api/evals/retrieval", json={"dataset": str(beir)}, headers=root)
    assert busy.status_code == 409
    assert run_id in busy.json()["error"]["message"]
    held.set()
    assert finished(client, root, run_id)["status"] == "done"
    again = client.post("/api/evals/retrieval", json={"dataset": str(beir)}, headers=root)
    assert again.status_code == 202
    assert finished(client, root, again.json()["id"])["status"] == "done"


def test_bad_requests_say_what_is_wrong_and_start_nothing(
    client: TestClient, root: dict[str, str], beir: Path, tmp_path: Path
):
    missing = tmp_path / "no-such-set"
    cases = [
        ({"dataset": str(missing)}, str(missing)),
        ({"dataset": "relative/set"}, "'relative/set' is not absolute"),
        ({"dataset": str(beir), "configs": "bm25,magic"}, "unknown retrieval configuration"),
        ({"dataset": str(beir), "split": "dev"}, "no qrels for split 'dev'"),
    ]
    for body, message in cases:
        refused = client.post("/api/evals/retrieval", json=body, headers=root)
        assert refused.status_code == 400, refused.text
        assert message in refused.json()["error"]["message"]
        assert refused.json()["error"]["hint"]
    assert client.post("/api/evals/retrieval", json={}, headers=root).status_code == 422
    assert client.get("/api/evals", headers=root).json() == []  # nothing was started or kept
    started = client.post("/api/evals/retrieval", json={"dataset": str(beir)}, headers=root)
    assert started.status_code == 202  # and nothing was left reserved
    finished(client, root, started.json()["id"])
    assert client.get("/api/evals/20990101-000000-abcdef", headers=root).status_code == 404
    assert client.get("/api/evals/..%2F..%2Fetc", headers=root).status_code == 404
    assert client.get("/api/evals/nope/report.html", headers=root).status_code == 404


def test_a_failed_run_keeps_its_error_and_an_interrupted_one_says_so(
    client: TestClient,
    root: dict[str, str],
    beir: Path,
    app_dari: Dari,
    monkeypatch: pytest.MonkeyPatch,
):
    def broken(self: RetrievalEval, *args: Any, **kwargs: Any) -> Any:
        raise InputError("the corpus of mini-beir could not be indexed: bad row", "fix row 2")

    monkeypatch.setattr(RetrievalEval, "run", broken)
    run_id = client.post("/api/evals/retrieval", json={"dataset": str(beir)}, headers=root)
    failed = finished(client, root, run_id.json()["id"])
    assert failed["status"] == "failed" and failed["finished"]
    assert failed["error"] == "the corpus of mini-beir could not be indexed: bad row"
    assert failed["hint"] == "fix row 2"
    assert failed["report"] is None and failed["report_url"] is None

    stale = app_dari.home / "evals" / "20200101-000000-abcdef"
    stale.mkdir(parents=True)
    record = {"id": stale.name, "status": "running", "dataset": str(beir), "configs": "bm25"}
    record |= {"split": "test", "limit": None, "started": 1577836800.0}
    (stale / "run.json").write_text(json.dumps(record))
    (app_dari.home / "evals" / "20200101-000000-notarun").mkdir()  # not a run: left out
    runs = client.get("/api/evals", headers=root).json()
    assert [r["status"] for r in runs] == ["failed", "failed"]
    assert runs[1]["id"] == stale.name and runs[1]["error"].startswith("interrupted")


def test_traces_list_when_each_was_made(
    client: TestClient, root: dict[str, str], fake_generator: FakeGenerator
):
    before = time.time()
    trace_id = _ask(client, root, fake_generator, "When does the office open?")
    [listed] = client.get("/api/traces", headers=root).json()
    assert listed["id"] == trace_id and before <= listed["created_at"] <= time.time()
