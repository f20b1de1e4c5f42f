"""The OpenAI-compatible endpoints, through TestClient and through the official `openai` client
against a real uvicorn server on loopback."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from dari.testing import FakeGenerator

KeyMaker = Callable[..., Any]


MESSAGES = [{"role": "user", "content": "When does the office open?"}]


def test_chat_completion_carries_citations_in_the_extension(
    make_key: KeyMaker, client: TestClient, fake_generator: FakeGenerator
):
    _, headers = make_key(client)
    fake_generator.enqueue("The office opens at 8 am [1].")
    r = client.post(
        "/v1/chat/completions", json={"model": "docs", "messages": MESSAGES}, headers=headers
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"]["content"].startswith("The office opens at 8 am")
    assert body["dari"]["citations"][0]["source"].endswith("office.txt")
    assert body["usage"]["total_tokens"] > 0


def test_earlier_turns_become_history(
    make_key: KeyMaker, client: TestClient, fake_generator: FakeGenerator
):
    _, headers = make_key(client)
    fake_generator.enqueue("It closes at 6 pm [1].")
    turns = [
        {"role": "system", "content": "ignored: dari's prompt is its own"},
        {"role": "user", "content": "When does the office open?"},
        {"role": "assistant", "content": "At 8 am [1]."},
        {"role": "user", "content": [{"type": "text", "text": "And when does it close?"}]},
    ]
    r = client.post(
        "/v1/chat/completions", json={"model": "docs", "messages": turns}, headers=headers
    )
    assert r.status_code == 200, r.text
    seen = fake_generator.seen[-1]
    assert any(m["content"] == "At 8 am [1]." for m in seen)


def test_the_last_message_must_be_a_question(make_key: KeyMaker, client: TestClient):
    _, headers = make_key(client)
    r = client.post(
        "/v1/chat/completions",
        headers=headers,
        json={"model": "docs", "messages": [{"role": "assistant", "content": "hi"}]},
    )
    assert r.status_code == 400 and "last message" in r.json()["error"]["message"]


def test_embeddings(make_key: KeyMaker, client: TestClient):
    _, headers = make_key(client)
    r = client.post("/v1/embeddings", json={"input": ["a", "b"], "model": "x"}, headers=headers)
    data = r.json()["data"]
    assert len(data) == 2 and len(data[0]["embedding"]) == 64
    assert client.post("/v1/embeddings", json={"input": []}, headers=headers).status_code == 400


def test_the_official_openai_client(
    make_key: KeyMaker, server: str, client: TestClient, fake_generator: FakeGenerator
):
    openai = pytest.importorskip("openai")
    _, headers = make_key(client)
    token = headers["Authorization"].split()[1]
    api = openai.OpenAI(base_url=f"{server}/v1", api_key=token, max_retries=0)
    assert [m.id for m in api.models.list().data] == ["docs"]
    fake_generator.enqueue("The office opens at 8 am [1].")
    done = api.chat.completions.create(model="docs", messages=MESSAGES)
    assert done.choices[0].message.content.startswith("The office opens at 8 am")
    assert done.model_extra["dari"]["citations"][0]["n"] == 1
    fake_generator.enqueue("The office opens at 8 am [1].")
    pieces, extension = [], None
    for chunk in api.chat.completions.create(model="docs", messages=MESSAGES, stream=True):
        if chunk.choices and chunk.choices[0].delta.content:
            pieces.append(chunk.choices[0].delta.content)
        extension = (chunk.model_extra or {}).get("dari", extension)
    assert "".join(pieces).startswith("The office opens at 8 am")
    assert extension is not None and extension["trace_id"]
    emb = api.embeddings.create(model="x", input="hello")
    assert len(emb.data[0].embedding) == 64
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{server}/v1", api_key="dari_bad_key", max_retries=0).models.list()
    with pytest.raises(openai.PermissionDeniedError):
        api.chat.completions.create(model="other", messages=MESSAGES)
    assert json.loads(json.dumps(done.model_dump()))["object"] == "chat.completion"
