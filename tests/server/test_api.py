"""The native API: answers with citations, traces and feedback, each behind the key's access."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.conftest import STORE_BACKENDS

from dari.testing import FakeGenerator


@pytest.fixture(params=STORE_BACKENDS)
def store_backend(request: pytest.FixtureRequest) -> str:
    """This module's tests run on SQLite and on PostgreSQL."""
    return str(request.param)


KeyMaker = Callable[..., Any]


Q = {"question": "When does the office open?", "collection": "docs"}


def test_health_and_readiness(client: TestClient):
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").status_code in (200, 503)


def test_no_key_wrong_key_and_revoked_key_are_401(make_key: KeyMaker, client: TestClient):
    r = client.post("/api/query", json=Q)
    assert r.status_code == 401 and r.json()["error"]["type"] == "unauthorized"
    assert "dari keys create" in r.json()["error"]["hint"]
    bad = client.post("/api/query", json=Q, headers={"Authorization": "Bearer dari_x_y"})
    assert bad.status_code == 401
    key, headers = make_key(client)
    client.app.state.keys.revoke(key.id)  # type: ignore[attr-defined]
    assert client.post("/api/query", json=Q, headers=headers).status_code == 401


def test_query_answers_with_citations_and_a_trace_only_its_key_reads(
    make_key: KeyMaker, client: TestClient, fake_generator: FakeGenerator
):
    _, alice = make_key(client)
    _, bob = make_key(client)
    _, root = make_key(client, "admin")
    fake_generator.enqueue("The office opens at 8 am [1].")
    r = client.post("/api/query", json=Q, headers=alice)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["answer"].startswith("The office opens at 8 am")
    assert body["citations"][0]["source"].endswith("office.txt")
    trace_id = body["trace_id"]
    assert client.get(f"/api/traces/{trace_id}", headers=alice).json()["id"] == trace_id
    assert client.get(f"/api/traces/{trace_id}", headers=bob).status_code == 404
    assert client.get(f"/api/traces/{trace_id}", headers=root).status_code == 200
    assert [t["id"] for t in client.get("/api/traces", headers=alice).json()] == [trace_id]
    assert client.get("/api/traces", headers=bob).json() == []


def test_a_key_cannot_reach_another_collection(make_key: KeyMaker, client: TestClient):
    _, headers = make_key(client, collections=("docs",))
    r = client.post("/api/query", json={**Q, "collection": "other"}, headers=headers)
    assert r.status_code == 403 and "may not use collection 'other'" in r.json()["error"]["message"]
    assert [c["name"] for c in client.get("/api/collections", headers=headers).json()] == ["docs"]
    models = client.get("/v1/models", headers=headers).json()["data"]
    assert [m["id"] for m in models] == ["docs"]
    missing = client.post(
        "/api/query",
        json={**Q, "collection": "nope"},
        headers=make_key(client, collections=("*",))[1],
    )
    assert missing.status_code == 404 and "unknown collection 'nope'" in missing.text


def test_document_acl_follows_the_key(
    make_key: KeyMaker, client: TestClient, fake_generator: FakeGenerator
):
    _, plain = make_key(client, acl=())
    _, hr = make_key(client, acl=("hr",))
    salary = {"question": "What is the CEO's salary?", "collection": "docs"}
    fake_generator.enqueue("The CEO's salary is 900 million won a year [1].")
    seen = client.post("/api/query", json=salary, headers=hr).json()
    assert any(c["source"].endswith("salaries.md") for c in seen["citations"])
    fake_generator.enqueue("The CEO's salary is 900 million won a year [1].")
    hidden = client.post("/api/query", json=salary, headers=plain).json()
    assert not any(c["source"].endswith("salaries.md") for c in hidden["citations"])


def test_admin_only_endpoints(make_key: KeyMaker, client: TestClient):
    _, user = make_key(client)
    _, root = make_key(client, "admin")
    assert client.get("/api/cache/stats", headers=user).status_code == 403
    assert client.get("/api/cache/stats", headers=root).status_code == 200
    assert client.get("/metrics", headers=user).status_code == 403
    metrics = client.get("/metrics", headers=root)
    assert metrics.status_code == 200 and "dari_http_requests" in metrics.text
    assert client.delete("/api/collections/other", headers=user).status_code == 403


def test_rate_limit_answers_429_with_retry_after(make_key: KeyMaker, client: TestClient):
    client.app.state.limits._burst = 2.0  # type: ignore[attr-defined]
    _, headers = make_key(client)
    codes = [client.get("/api/collections", headers=headers).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    r = client.get("/api/collections", headers=headers)
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1


def test_malformed_and_oversized_requests(make_key: KeyMaker, client: TestClient):
    _, headers = make_key(client)
    bad = client.post(
        "/api/query", content=b"{not json", headers={**headers, "content-type": "application/json"}
    )
    assert bad.status_code == 422 and bad.json()["error"]["type"] == "invalid_request"
    missing = client.post("/api/query", json={"collection": "docs"}, headers=headers)
    assert missing.status_code == 422 and "question" in missing.json()["error"]["message"]
    big = client.post("/api/query", json={**Q, "question": "x" * 300_000}, headers=headers)
    assert big.status_code == 413 and big.json()["error"]["type"] == "too_large"


def test_feedback_on_own_answers(
    make_key: KeyMaker, client: TestClient, fake_generator: FakeGenerator
):
    _, alice = make_key(client)
    _, bob = make_key(client)
    fake_generator.enqueue("The office opens at 8 am [1].")
    trace_id = client.post("/api/query", json=Q, headers=alice).json()["trace_id"]
    down = {"trace_id": trace_id, "thumb": "down", "comment": "틀렸어요"}
    r = client.post("/api/feedback", json=down, headers=alice)
    assert r.status_code == 200 and r.json()["negative"] is True
    assert client.post("/api/feedback", json=down, headers=bob).status_code == 404
    approve = client.post(
        "/api/feedback", json={"trace_id": trace_id, "approve": True}, headers=alice
    )
    assert approve.status_code == 403
    unknown = client.post("/api/feedback", json={"trace_id": "nope", "thumb": "up"}, headers=alice)
    assert unknown.status_code == 404 and "unknown trace id 'nope'" in unknown.text


def test_streamed_query_sends_tokens_then_the_answer(
    make_key: KeyMaker, client: TestClient, fake_generator: FakeGenerator
):
    _, headers = make_key(client)
    fake_generator.enqueue("The office opens at 8 am [1].")
    with client.stream("POST", "/api/query/stream", json=Q, headers=headers) as r:
        events = [line for line in r.iter_lines() if line.startswith("event:")]
        assert r.status_code == 200
    assert events[0] == "event: token" and events[-1] == "event: answer"


def test_openapi_describes_the_routes(client: TestClient):
    paths = client.get("/openapi.json").json()["paths"]
    for p in (
        "/api/query",
        "/api/feedback",
        "/api/traces/{trace_id}",
        "/v1/chat/completions",
        "/v1/embeddings",
        "/v1/models",
        "/healthz",
        "/metrics",
    ):
        assert p in paths


def test_sse_answer_event_has_citations(
    make_key: KeyMaker, client: TestClient, fake_generator: FakeGenerator
):
    _, headers = make_key(client)
    fake_generator.enqueue("The office opens at 8 am [1].")
    with client.stream("POST", "/api/query/stream", json=Q, headers=headers) as r:
        data = [line[6:] for line in r.iter_lines() if line.startswith("data: ")]
    final = json.loads(data[-1])
    assert final["citations"] and final["trace_id"]
