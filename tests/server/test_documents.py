"""Collections and documents over the native API: uploads streamed to disk and ingested, size
limits with nothing half-written, listings under the key's ACL tags, delete and re-ingest."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from tests.conftest import WITH_FULLTEXT
from tests.server.conftest import serving

from dari.app import Dari
from dari.server.app import create_app
from dari.server.uploads import safe_name
from dari.testing import FakeGenerator


@pytest.fixture(params=WITH_FULLTEXT)
def store_backend(request: pytest.FixtureRequest) -> str:
    """This module's tests run on SQLite and on PostgreSQL (BM25 in tantivy, or in PostgreSQL
    too)."""
    return str(request.param)


KeyMaker = Callable[..., Any]
DOCS = "/api/collections/docs/documents"
PARKING = b"# Parking\n\nStaff park in lot B behind the warehouse, from 7 am.\n"
PARK_Q = {"question": "Where do staff park?", "collection": "docs"}


def _uploads(dari: Dari) -> list[str]:
    """Every file under DARI_HOME/uploads, staging included, relative to it (not the lock file
    that writers take turns on)."""
    root = dari.home / "uploads"
    return sorted(
        str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and p.name != ".write.lock"
    )


def _names(client: TestClient, headers: dict[str, str], collection: str = "docs") -> set[str]:
    r = client.get(f"/api/collections/{collection}/documents", headers=headers)
    assert r.status_code == 200, r.text
    return {Path(d["path"]).name for d in r.json()}


def _multipart(parts: list[tuple[str, str | None, bytes]], boundary: str = "dari-b") -> bytes:
    """A multipart/form-data body by hand: (field, filename or None, bytes) per part."""
    out = b""
    for field, filename, data in parts:
        disposition = f'form-data; name="{field}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        out += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + data
        out += b"\r\n"
    return out + f"--{boundary}--\r\n".encode()


@pytest.fixture
def admin_headers(client: TestClient, make_key: KeyMaker) -> dict[str, str]:
    headers: dict[str, str] = make_key(client, "admin", acl=None)[1]  # reads every document
    return headers


@pytest.fixture
def small_client(app_dari: Dari) -> Iterator[TestClient]:
    """The app with server.max_upload_mb at about 1 KB."""
    s = app_dari.settings
    small = s.model_copy(update={"server": s.server.model_copy(update={"max_upload_mb": 0.001})})
    with TestClient(create_app(small, app_dari)) as c:
        yield c


def test_an_upload_ingests_the_good_file_and_reports_the_corrupt_one(
    client: TestClient,
    app_dari: Dari,
    admin_headers: dict[str, str],
    make_key: KeyMaker,
    fake_generator: FakeGenerator,
):
    files = [
        ("file", ("parking.md", PARKING, "text/markdown")),
        ("file", ("broken.pdf", b"%PDF-1.4 this is not really a pdf", "application/pdf")),
    ]
    r = client.post(DOCS, files=files, headers=admin_headers)
    assert r.status_code == 200, r.text
    report = r.json()
    assert (report["added"], report["failed"]) == (1, 1)
    by_name = {f["name"]: f for f in report["files"]}
    assert by_name["parking.md"]["status"] == "added" and by_name["parking.md"]["chunks"] >= 1
    assert by_name["broken.pdf"]["status"] == "failed" and by_name["broken.pdf"]["reason"]
    assert _uploads(app_dari) == ["docs/parking.md"]  # the failed file was not kept
    fake_generator.enqueue("Staff park in lot B [1].")
    answer = client.post("/api/query", json=PARK_Q, headers=make_key(client)[1]).json()
    assert any(c["source"].endswith("parking.md") for c in answer["citations"]), answer


def test_uploading_a_name_again_updates_it_and_reingest_follows_the_folder(
    client: TestClient, app_dari: Dari, admin_headers: dict[str, str]
):
    up = client.post(DOCS, files={"file": ("parking.md", PARKING)}, headers=admin_headers)
    assert up.json()["added"] == 1
    again = client.post(DOCS, files={"file": ("parking.md", PARKING)}, headers=admin_headers)
    assert again.json()["unchanged"] == 1
    changed = PARKING.replace(b"lot B", b"lot C")
    r = client.post(DOCS, files={"file": ("parking.md", changed)}, headers=admin_headers)
    assert r.json()["updated"] == 1
    assert (
        client.post("/api/collections/docs/reingest", headers=admin_headers).json()["unchanged"]
        == 1
    )
    (app_dari.home / "uploads" / "docs" / "parking.md").unlink()
    pruned = client.post("/api/collections/docs/reingest", headers=admin_headers).json()
    assert pruned["removed"] == 1 and "parking.md" not in _names(client, admin_headers)
    assert "salaries.md" in _names(client, admin_headers)  # files from elsewhere stay


def test_a_failed_update_puts_the_earlier_file_back(
    client: TestClient, app_dari: Dari, admin_headers: dict[str, str]
):
    client.post(DOCS, files={"file": ("parking.md", PARKING)}, headers=admin_headers)
    r = client.post(DOCS, files={"file": ("parking.md", b"")}, headers=admin_headers)
    assert r.json()["failed"] == 1 and "empty" in r.json()["files"][0]["reason"]
    assert (app_dari.home / "uploads" / "docs" / "parking.md").read_bytes() == PARKING
    assert "parking.md" in _names(client, admin_headers)


def test_unsupported_files_and_orphan_sidecars_fail_without_being_kept(
    client: TestClient, app_dari: Dari, admin_headers: dict[str, str]
):
    files = [
        ("file", ("tool.exe", b"MZ\x90\x00", "application/octet-stream")),
        ("file", ("ghost.md.meta.json", b'{"title": "Ghost"}', "application/json")),
    ]
    r = client.post(DOCS, files=files, headers=admin_headers)
    assert r.status_code == 200 and r.json()["failed"] == 2
    reasons = {f["name"]: f["reason"] for f in r.json()["files"]}
    assert "unsupported file type '.exe'" in reasons["tool.exe"]
    assert "without its document" in reasons["ghost.md.meta.json"]
    assert _uploads(app_dari) == []


def test_an_oversized_upload_is_413_and_nothing_is_kept(
    small_client: TestClient, app_dari: Dari, make_key: KeyMaker
):
    headers = make_key(small_client, "admin")[1]
    before = app_dari.store.collection("docs").documents
    big = b"# Big\n\n" + b"lorem ipsum " * 1000
    # With a Content-Length the request is refused before it is read.
    r = small_client.post(DOCS, files={"file": ("big.md", big)}, headers=headers)
    assert r.status_code == 413 and r.json()["error"]["type"] == "too_large"
    # Streamed (chunked, no length): the file is stopped while it is written, and the small
    # file before it in the same request is not ingested either.
    body = _multipart([("file", "small.md", b"# Small\n\nTiny.\n"), ("file", "big.md", big)])

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(body), 512):
            yield body[i : i + 512]

    r = small_client.post(
        DOCS,
        content=chunks(),
        headers={**headers, "content-type": "multipart/form-data; boundary=dari-b"},
    )
    assert r.status_code == 413, r.text
    assert "'big.md' is over the upload limit" in r.json()["error"]["message"]
    assert _uploads(app_dari) == []
    assert app_dari.store.collection("docs").documents == before


def test_file_names_are_sanitised(
    client: TestClient, app_dari: Dari, admin_headers: dict[str, str]
):
    r = client.post(DOCS, files={"file": ("../../evil.md", PARKING)}, headers=admin_headers)
    assert r.status_code == 200 and r.json()["files"][0]["name"] == "evil.md"
    assert _uploads(app_dari) == ["docs/evil.md"]
    assert not (app_dari.home / "evil.md").exists()
    assert safe_name("..\\..\\win.md") == "win.md"
    assert safe_name("/etc/.passwd.md") == "passwd.md"
    assert safe_name("a\x00b\n.md") == "ab.md"
    long = safe_name("x" * 500 + ".md")
    assert long.endswith(".md") and len(long) == 200


def test_listing_hides_documents_whose_tags_the_key_lacks(
    client: TestClient, make_key: KeyMaker, admin_headers: dict[str, str]
):
    _, plain = make_key(client, acl=())
    _, hr = make_key(client, acl=("hr",))
    assert "salaries.md" not in _names(client, plain)
    assert {"salaries.md", "office.txt"} <= _names(client, hr)
    assert "salaries.md" in _names(client, admin_headers)
    listed = client.get(DOCS, headers=hr).json()
    salaries = next(d for d in listed if d["path"].endswith("salaries.md"))
    assert salaries["acl"] == ["hr"] and salaries["chunks"] >= 1 and salaries["name"] is None
    assert salaries["format"] == "md" and salaries["title"]
    page = client.get(DOCS, params={"limit": 1, "offset": 1}, headers=plain).json()
    assert len(page) == 1 and page[0]["acl"] == []


def test_uploaded_tags_survive_reingest_and_can_be_cleared(
    client: TestClient,
    app_dari: Dari,
    make_key: KeyMaker,
    admin_headers: dict[str, str],
    fake_generator: FakeGenerator,
):
    _, plain = make_key(client, acl=())
    _, hr = make_key(client, acl=("hr",))
    files = {"file": ("parking.md", PARKING)}
    r = client.post(DOCS, files=files, data={"acl": "hr, ,board"}, headers=admin_headers)
    assert r.json()["added"] == 1
    assert "parking.md" not in _names(client, plain) and "parking.md" in _names(client, hr)
    client.post("/api/collections/docs/reingest", headers=admin_headers)
    assert "parking.md" not in _names(client, plain)  # the tags live in the sidecar
    fake_generator.enqueue("I don't know.")
    answer = client.post("/api/query", json=PARK_Q, headers=plain).json()
    assert not any(c["source"].endswith("parking.md") for c in answer["citations"])
    kept = client.post(DOCS, files=files, headers=admin_headers).json()  # no acl field: kept
    assert kept["unchanged"] == 1 and "parking.md" not in _names(client, plain)
    public = client.post(DOCS, files=files, data={"acl": ""}, headers=admin_headers).json()
    assert public["updated"] == 1 and "parking.md" in _names(client, plain)
    assert _uploads(app_dari) == ["docs/parking.md"]  # an empty sidecar is not kept


def test_an_uploaded_sidecar_goes_with_its_document(
    client: TestClient, app_dari: Dari, make_key: KeyMaker, admin_headers: dict[str, str]
):
    files = [
        ("file", ("parking.md", PARKING, "text/markdown")),
        ("file", ("parking.md.meta.json", b'{"title": "Parking rules", "acl": ["ops"]}', "")),
    ]
    r = client.post(DOCS, files=files, data={"acl": "hr"}, headers=admin_headers)
    assert r.json()["added"] == 1 and len(r.json()["files"]) == 1
    doc = next(d for d in client.get(DOCS, headers=admin_headers).json() if d["name"])
    assert doc["title"] == "Parking rules" and doc["acl"] == ["hr", "ops"]
    assert "parking.md" in _names(client, make_key(client, acl=("ops",))[1])
    # A sidecar alone updates the document it belongs to; a malformed one is put back.
    alone = {"file": ("parking.md.meta.json", b'{"title": "Car park", "acl": ["ops"]}')}
    assert client.post(DOCS, files=alone, headers=admin_headers).json()["updated"] == 1
    doc = next(d for d in client.get(DOCS, headers=admin_headers).json() if d["name"])
    assert doc["title"] == "Car park" and doc["acl"] == ["ops"]
    bad = {"file": ("parking.md.meta.json", b'{"colour": "red"}')}
    failed = client.post(DOCS, files=bad, headers=admin_headers).json()
    assert failed["failed"] == 1 and "unknown key(s) colour" in failed["files"][0]["reason"]
    sidecar = app_dari.home / "uploads" / "docs" / "parking.md.meta.json"
    assert b"Car park" in sidecar.read_bytes()


def test_delete_removes_a_document_from_the_indexes_and_the_disk(
    client: TestClient,
    app_dari: Dari,
    admin_headers: dict[str, str],
    make_key: KeyMaker,
    fake_generator: FakeGenerator,
):
    client.post(DOCS, files={"file": ("parking.md", PARKING)}, headers=admin_headers)
    r = client.delete(f"{DOCS}/parking.md", headers=admin_headers)
    assert r.status_code == 200 and r.json()["documents"] == 1
    assert _uploads(app_dari) == [] and "parking.md" not in _names(client, admin_headers)
    found = app_dari.retriever("docs").retrieve("Where do staff park? lot B warehouse", 10)
    assert found.ranked and not any(h.source.endswith("parking.md") for h in found.ranked)
    # A file ingested from elsewhere, by the path the listing shows (its leading slash is
    # lost in the URL); its file on disk is not touched.
    salaries = next(d["path"] for d in client.get(DOCS, headers=admin_headers).json() if d["acl"])
    assert client.delete(f"{DOCS}/{salaries}", headers=admin_headers).status_code == 200
    assert Path(salaries).exists() and "salaries.md" not in _names(client, admin_headers)
    missing = client.delete(f"{DOCS}/nope.md", headers=admin_headers)
    assert missing.status_code == 404 and "no file 'nope.md'" in missing.json()["error"]["message"]


def test_collections_are_created_once_with_a_valid_name(
    client: TestClient, admin_headers: dict[str, str]
):
    r = client.post("/api/collections", json={"name": "handbook"}, headers=admin_headers)
    assert r.status_code == 201 and r.json()["name"] == "handbook" and r.json()["chunks"] == 0
    again = client.post("/api/collections", json={"name": "handbook"}, headers=admin_headers)
    assert again.status_code == 409 and "exists" in again.json()["error"]["message"]
    bad = client.post("/api/collections", json={"name": "../x"}, headers=admin_headers)
    assert bad.status_code == 400
    up = client.post(
        "/api/collections/handbook/documents",
        files={"file": ("parking.md", PARKING)},
        headers=admin_headers,
    )
    assert up.json()["added"] == 1
    missing = client.post(
        "/api/collections/nope/documents", files={"file": ("a.md", PARKING)}, headers=admin_headers
    )
    assert missing.status_code == 404


def test_bad_upload_requests_are_400(client: TestClient, admin_headers: dict[str, str]):
    assert client.post(DOCS, json={"x": 1}, headers=admin_headers).status_code == 400
    garbage = {**admin_headers, "content-type": "multipart/form-data; boundary=b"}
    assert client.post(DOCS, content=b"--b\r\nnonsense", headers=garbage).status_code == 400
    only_acl = client.post(DOCS, files={"acl": (None, "hr")}, headers=admin_headers)
    assert only_acl.status_code == 400 and "no files" in only_acl.json()["error"]["message"]
    files = [("file", ("a.md", PARKING, "")), ("file", ("a.md", PARKING, ""))]
    assert client.post(DOCS, files=files, headers=admin_headers).status_code == 400
    typo = client.post(
        DOCS, files={"file": ("a.md", PARKING)}, data={"acls": "hr"}, headers=admin_headers
    )
    assert typo.status_code == 400 and "acls" in typo.json()["error"]["message"]


def test_a_key_for_one_collection_cannot_touch_another(client: TestClient, make_key: KeyMaker):
    _, docs_only = make_key(client, collections=("docs",))
    assert client.get("/api/collections/other/documents", headers=docs_only).status_code == 403
    assert client.get(DOCS, headers=docs_only).status_code == 200
    up = client.post(
        "/api/collections/other/documents", files={"file": ("a.md", PARKING)}, headers=docs_only
    )
    assert up.status_code == 403


@pytest.fixture
def live(small_client: TestClient) -> Iterator[str]:
    """The app with a ~1 KB upload limit under uvicorn on a free loopback port."""
    with serving(small_client.app) as url:
        yield url


def test_uploads_stream_through_a_real_server(
    live: str, small_client: TestClient, app_dari: Dari, make_key: KeyMaker
):
    headers = {
        **make_key(small_client, "admin")[1],
        "content-type": "multipart/form-data; boundary=dari-b",
    }
    small = _multipart([("file", "small.md", b"# Small\n\nTiny.\n")])
    ok = httpx.post(f"{live}{DOCS}", content=iter([small[:40], small[40:]]), headers=headers)
    assert ok.status_code == 200 and ok.json()["added"] == 1, ok.text
    big = _multipart([("file", "big.md", b"# Big\n\n" + b"lorem ipsum " * 300)])
    parts = [big[i : i + 256] for i in range(0, len(big), 256)]
    refused = httpx.post(f"{live}{DOCS}", content=iter(parts), headers=headers)
    assert refused.status_code == 413, refused.text
    assert _uploads(app_dari) == ["docs/small.md"]
