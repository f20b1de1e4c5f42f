"""Admin endpoints of the native API: the answer cache's entries (with provenance, cleared, dying
with the document they cite), prompt versions, and 403 for every key that is not an admin's."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.conftest import STORE_BACKENDS

from dari.config import Settings
from dari.testing import FakeGenerator


@pytest.fixture(params=STORE_BACKENDS)
def store_backend(request: pytest.FixtureRequest) -> str:
    """This module's tests run on SQLite and on PostgreSQL."""
    return str(request.param)


KeyMaker = Callable[..., Any]
PARKING = b"# Parking\n\nStaff park in lot B behind the warehouse, from 7 am.\n"
PARK_Q = {"question": "Where do staff park?", "collection": "docs"}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """The answer cache on (tests/conftest.py turns it off), with thresholds the fake
    embedder reaches."""
    return Settings(
        home=tmp_path / "home",
        cache={"similarity": {"en": 0.5}, "max_unmatched": 1},  # type: ignore[arg-type]
    )


@pytest.fixture
def root(client: TestClient, make_key: KeyMaker) -> dict[str, str]:
    headers: dict[str, str] = make_key(client, "admin", acl=None)[1]
    return headers


def _cached_parking_answer(
    client: TestClient, root: dict[str, str], fake_generator: FakeGenerator
) -> dict[str, Any]:
    up = client.post(
        "/api/collections/docs/documents", files={"file": ("parking.md", PARKING)}, headers=root
    )
    assert up.json()["added"] == 1, up.text
    fake_generator.enqueue("Staff park in lot B [1].")
    answer: dict[str, Any] = client.post("/api/query", json=PARK_Q, headers=root).json()
    assert answer["cache"]["stored"], answer["cache"]
    return answer


def test_cache_entries_show_their_provenance_and_can_be_cleared(
    client: TestClient, root: dict[str, str], fake_generator: FakeGenerator
):
    answer = _cached_parking_answer(client, root, fake_generator)
    entries = client.get("/api/cache/entries", params={"collection": "docs"}, headers=root).json()
    assert len(entries) == 1
    entry = entries[0]
    assert entry["question"] == PARK_Q["question"] and entry["trace_id"] == answer["trace_id"]
    assert entry["citations"][0]["source"].endswith("parking.md")
    one = client.get(f"/api/cache/entries/{entry['id']}", headers=root).json()
    assert one["answer"].startswith("Staff park in lot B")
    by_trace = client.get("/api/cache/entries", params={"trace": answer["trace_id"]}, headers=root)
    assert [e["id"] for e in by_trace.json()] == [entry["id"]]
    assert (
        client.get("/api/cache/entries", params={"collection": "other"}, headers=root).json() == []
    )
    assert client.get("/api/cache/entries/nope", headers=root).status_code == 404
    expired = client.delete("/api/cache", params={"expired": True}, headers=root).json()
    assert expired == {"removed": 0}
    assert client.delete("/api/cache", params={"stale": True}, headers=root).json() == {
        "removed": 0
    }
    assert client.delete("/api/cache", params={"collection": "docs"}, headers=root).json() == {
        "removed": 1
    }
    assert client.get("/api/cache/entries", headers=root).json() == []


def test_one_cache_entry_can_be_deleted(
    client: TestClient, root: dict[str, str], fake_generator: FakeGenerator
):
    _cached_parking_answer(client, root, fake_generator)
    (entry,) = client.get("/api/cache/entries", headers=root).json()
    assert client.delete(f"/api/cache/entries/{entry['id']}", headers=root).json() == {"removed": 1}
    assert client.delete(f"/api/cache/entries/{entry['id']}", headers=root).status_code == 404


def test_deleting_a_document_kills_the_answers_that_cite_it(
    client: TestClient, root: dict[str, str], fake_generator: FakeGenerator
):
    _cached_parking_answer(client, root, fake_generator)
    assert client.get("/api/cache/entries", headers=root).json()
    gone = client.delete("/api/collections/docs/documents/parking.md", headers=root)
    assert gone.status_code == 200, gone.text
    assert client.get("/api/cache/entries", headers=root).json() == []
    fake_generator.enqueue("I don't know.")
    again = client.post("/api/query", json=PARK_Q, headers=root).json()
    assert again["cache"]["lookup"] != "exact"  # asked the model, not the dead entry
    assert not any(c["source"].endswith("parking.md") for c in again["citations"])


def test_prompt_versions_are_listed_shown_and_chosen(
    client: TestClient, root: dict[str, str], make_key: KeyMaker
):
    _, user = make_key(client)
    listing = client.get("/api/prompts", headers=user).json()
    refs = [v["prompt"] for v in listing["versions"]]
    assert {"grounded@1", "grounded@2"} <= set(refs) and listing["split"] == {}
    assert [v["prompt"] for v in listing["versions"] if v["default"]] == [listing["default"]]
    shown = client.get("/api/prompts/grounded@1", headers=user).json()
    assert shown["prompt"] == "grounded@1" and {"en", "ko"} <= set(shown["parts"])
    only_en = client.get("/api/prompts/grounded@1", params={"lang": "en"}, headers=user).json()
    assert list(only_en["parts"]) == ["en"]
    assert client.get("/api/prompts/nope@3", headers=user).status_code == 404
    assert (
        client.get("/api/prompts/grounded@1", params={"lang": "xx"}, headers=user).status_code
        == 404
    )

    chosen = client.post("/api/prompts/default", json={"ref": "grounded@1"}, headers=root).json()
    assert chosen == {"default": "grounded@1", "from": "set-default", "split_wins": False}
    assert client.get("/api/prompts", headers=user).json()["default"] == "grounded@1"
    back = client.post("/api/prompts/default", json={"ref": None}, headers=root).json()
    assert back["from"] == "llm.prompt"
    unknown = client.post("/api/prompts/default", json={"ref": "nope@1"}, headers=root)
    assert unknown.status_code == 404

    arms = {"grounded@2": 90, "grounded@1": 10}
    split = client.post("/api/prompts/split", json={"arms": arms}, headers=root).json()
    assert split == {"split": arms}
    shares = {
        v["prompt"]: v["share"] for v in client.get("/api/prompts", headers=user).json()["versions"]
    }
    assert shares["grounded@1"] == 10 and shares["grounded@2"] == 90
    bad = client.post(
        "/api/prompts/split", json={"arms": {"grounded@2": 50, "grounded@1": 10}}, headers=root
    )
    assert bad.status_code == 400 and "sum to 60" in bad.json()["error"]["message"]
    both = client.post("/api/prompts/split", json={"arms": arms, "clear": True}, headers=root)
    assert both.status_code == 400
    cleared = client.post("/api/prompts/split", json={"clear": True}, headers=root).json()
    assert cleared == {"split": {}}


ADMIN_ONLY = [
    ("post", "/api/collections", {"json": {"name": "new"}}),
    ("post", "/api/collections/docs/documents", {"files": {"file": ("a.md", PARKING)}}),
    ("delete", "/api/collections/docs/documents/a.md", {}),
    ("post", "/api/collections/docs/reingest", {}),
    ("get", "/api/cache/entries", {}),
    ("get", "/api/cache/entries?collection=other", {}),
    ("get", "/api/cache/entries/x", {}),
    ("delete", "/api/cache/entries/x", {}),
    ("delete", "/api/cache", {}),
    ("post", "/api/prompts/default", {"json": {"ref": "grounded@1"}}),
    ("post", "/api/prompts/split", {"json": {"clear": True}}),
]


@pytest.mark.parametrize(("method", "url", "kwargs"), ADMIN_ONLY)
def test_a_user_key_gets_403_on_every_admin_endpoint(
    client: TestClient, make_key: KeyMaker, method: str, url: str, kwargs: dict[str, Any]
):
    _, user = make_key(client, collections=("*",), acl=("hr",))
    r = getattr(client, method)(url, headers=user, **kwargs)
    assert r.status_code == 403, (url, r.text)
    assert r.json()["error"]["type"] == "forbidden"
    assert client.request(method.upper(), url, **kwargs).status_code == 401  # and no key: 401
