"""Two real `dari serve` replicas over one store, one answer cache and one rate-limit budget behave
as one service: an upload through one is answered through the other, the rate limit and the cache
are global, re-ingest invalidates everywhere, a replica killed mid-request costs the client a retry
and nothing else, and Redis or PostgreSQL going away gives clear 503s and then recovery, without
restarting dari.

The cache and the rate limits are in two redis-servers (both shared by the replicas) so that each
can be taken away on its own: without its cache dari still answers, without its rate-limit store
it refuses (503 + Retry-After) rather than serve unlimited.

The store is a parameter: "shared-home" (one DARI_HOME: SQLite WAL, tantivy, numpy) and
"postgres" (store.backend = "postgres", a DARI_HOME per replica, one shared uploads folder), the
latter skipped without the postgres extra.
"""

from __future__ import annotations

import importlib.util
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.server.replicas import (
    RedisServer,
    ReplicaClient,
    Replicas,
    create_key,
    dari_env,
)

from dari.db.local_postgres import LocalPostgres

pytestmark = [pytest.mark.integration, pytest.mark.slow]

STORES = ["shared-home", "postgres"]
BURST, PER_MINUTE = 60, 1200  # small enough to spend in a test, large enough for the others
PARKING = "# Parking\n\nStaff park in garage B. The garage B parking fee is 4 dollars per day.\n"
PARKING_CHANGED = (
    "# Parking\n\nStaff park in garage C since May. The garage C parking fee is 6 dollars a day.\n"
)
QUESTION = "Where do staff park?"  # the CI model answers it, citing parking.md


def postgres_missing() -> str:
    """Why the PostgreSQL store cannot be used here, or "" when it can."""
    for module in ("psycopg", "psycopg_pool"):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed: pip install 'dari[postgres]'"
    return ""


@dataclass
class Cluster:
    store: str  # one of STORES
    replicas: Replicas
    admin: str  # an admin key's token
    user: str  # a user key's token, spent by the rate-limit test only
    cache_redis: RedisServer
    limits_redis: RedisServer
    postgres: LocalPostgres | None  # the server to restart, with the "postgres" store
    http: httpx.Client  # with the admin key, for requests to one chosen replica

    @property
    def urls(self) -> list[str]:
        return self.replicas.urls


@pytest.fixture(scope="module", params=STORES)
def cluster(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp(f"replicas-{request.param}")
    postgres: LocalPostgres | None = None
    if request.param == "postgres":
        missing = postgres_missing()
        if missing:
            pytest.skip(missing)
        postgres = request.getfixturevalue("postgres_server")
    with (
        RedisServer(root / "redis-cache") as cache_redis,
        RedisServer(root / "redis-limits") as limits_redis,
        _database(postgres) as database,
    ):
        settings = {
            "DARI_CACHE__BACKEND": "redis",
            "DARI_CACHE__REDIS_URL": cache_redis.url,
            "DARI_SERVER__REDIS_URL": limits_redis.url,
            "DARI_SERVER__RATE_PER_MINUTE": str(PER_MINUTE),
            "DARI_SERVER__BURST": str(BURST),
        }
        homes = [root / "home", root / "home"]
        if postgres is not None:
            settings |= {
                "DARI_STORE__BACKEND": "postgres",
                "DARI_STORE__POSTGRES_URL": database,
                "DARI_STORE__POOL_SIZE": "4",
                "DARI_SERVER__UPLOADS_DIR": str(root / "uploads"),  # a shared volume
            }
            homes = [root / "home-a", root / "home-b"]  # nothing else shared but the servers
        envs = [dari_env(home, **settings) for home in homes]
        admin, user = create_key(envs[0], "admin"), create_key(envs[0], "user", "budget")
        with Replicas(envs, root / "logs") as replicas:
            if postgres is not None:  # a replica that ignored the setting would use SQLite
                assert not any((h / "dari.db").exists() for h in homes), "store.backend ignored"
            with httpx.Client(headers=_auth(admin), timeout=120) as http:
                yield Cluster(
                    request.param, replicas, admin, user, cache_redis, limits_redis, postgres, http
                )


@contextmanager
def _database(server: LocalPostgres | None) -> Iterator[str]:
    """A fresh database on the session's PostgreSQL for this module ("" without a server)."""
    if server is None:
        yield ""
        return
    with server.fresh_database() as url:
        yield url


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _collection(c: Cluster, url: str, files: dict[str, str]) -> str:
    """A new collection, created and filled through the replica at `url`; its name."""
    name = f"c{uuid.uuid4().hex[:8]}"
    assert c.http.post(f"{url}/api/collections", json={"name": name}).status_code == 201
    _upload(c, url, name, files)
    return name


def _upload(c: Cluster, url: str, collection: str, files: dict[str, str]) -> dict[str, Any]:
    parts = [("file", (n, text.encode())) for n, text in files.items()]
    r = c.http.post(f"{url}/api/collections/{collection}/documents", files=parts)
    assert r.status_code == 200, r.text
    report: dict[str, Any] = r.json()
    assert report["failed"] == 0, report
    return report


def _ask(c: Cluster, url: str, collection: str, question: str = QUESTION) -> dict[str, Any]:
    r = c.http.post(f"{url}/api/query", json={"question": question, "collection": collection})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def _cache(c: Cluster, url: str, answer: dict[str, Any]) -> None:
    """Make sure `answer` is in the cache: a guard may have kept it out (the 135M model's answers
    often warn), and then an operator's approval stores it, as bench/server.py does."""
    assert answer["outcome"] == "answered", answer
    if not answer["cache"]["stored"]:
        approval = {"trace_id": answer["trace_id"], "approve": True}
        r = c.http.post(f"{url}/api/feedback", json=approval)
        assert r.status_code == 200, r.text


def _until(check: Callable[[], bool], what: str, seconds: float = 20.0) -> None:
    """Poll `check` (every 0.25 s: within the admin key's rate limit) until true."""
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"{what}: not within {seconds:g} s"
        time.sleep(0.25)  # polling, bounded by the deadline


def _serves(c: Cluster, url: str) -> Callable[[], bool]:
    """Whether the replica at `url` serves a request with a key (store and rate limits work)."""
    return lambda: c.http.get(f"{url}/api/collections").status_code == 200


def _uses_its_cache(c: Cluster, url: str, collection: str) -> Callable[[], bool]:
    """Whether the replica at `url` looks questions up in the answer cache again."""
    return lambda: _ask(c, url, collection)["cache"]["lookup"] != "bypass"


def _sizes(c: Cluster, url: str) -> dict[str, tuple[int, int, int]]:
    r = c.http.get(f"{url}/api/collections")
    assert r.status_code == 200, r.text
    return {x["name"]: (x["files"], x["documents"], x["chunks"]) for x in r.json()}


def test_an_upload_through_one_replica_is_answered_through_another(cluster: Cluster):
    a, b = cluster.urls
    name = _collection(cluster, a, {"parking.md": PARKING})

    listed = cluster.http.get(f"{b}/api/collections/{name}/documents").json()
    assert [Path(d["path"]).name for d in listed] == ["parking.md"]
    answer = _ask(cluster, b, name)
    assert answer["outcome"] == "answered", answer
    assert [Path(c["source"]).name for c in answer["citations"]] == ["parking.md"], answer
    trace = cluster.http.get(f"{a}/api/traces/{answer['trace_id']}")  # traces are shared too
    assert trace.status_code == 200 and trace.json()["collection"] == name


def test_uploads_through_both_replicas_at_once_into_one_collection(cluster: Cluster):
    a, b = cluster.urls
    name = _collection(cluster, a, {"start.md": "# Start\n\nThe first page.\n"})
    files = {f"note-{i}.md": f"# Note {i}\n\nNote {i} is about topic {i * 7}.\n" for i in range(12)}

    def send(item: tuple[int, str]) -> dict[str, Any]:
        i, file = item
        return _upload(cluster, (a, b)[i % 2], name, {file: files[file]})

    with ThreadPoolExecutor(4) as pool:  # the replicas take turns at the shared indexes
        reports = list(pool.map(send, enumerate(files)))
    assert [r["added"] for r in reports] == [1] * len(files)
    for url in (a, b):
        assert _sizes(cluster, url)[name][0] == len(files) + 1


def test_uploaded_files_are_managed_through_any_replica(cluster: Cluster):
    """Uploads live in the shared uploads folder (server.uploads_dir when homes are separate):
    every replica lists, re-ingests and deletes them under the same paths."""
    a, b = cluster.urls
    name = _collection(cluster, a, {"parking.md": PARKING})

    again = cluster.http.post(f"{b}/api/collections/{name}/reingest")
    assert again.status_code == 200, again.text
    assert (again.json()["unchanged"], again.json()["removed"]) == (1, 0), again.json()
    listed = cluster.http.get(f"{b}/api/collections/{name}/documents").json()
    assert [d["name"] for d in listed] == ["parking.md"]
    gone = cluster.http.delete(f"{b}/api/collections/{name}/documents/parking.md")
    assert gone.status_code == 200, gone.text
    assert cluster.http.get(f"{a}/api/collections/{name}/documents").json() == []


def test_the_rate_limit_is_one_budget_across_replicas(cluster: Cluster):
    client = ReplicaClient(cluster.urls, cluster.user)  # each request to the next replica
    started = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: client.get("/api/collections"), range(3 * BURST)))
    seconds = time.perf_counter() - started
    client.close()

    statuses = [r.status_code for r in answers]
    assert set(statuses) == {200, 429}, statuses
    # A bucket of BURST refilled at PER_MINUTE, shared: two budgets would let through up to twice
    allowed = statuses.count(200)
    assert BURST <= allowed <= BURST + PER_MINUTE / 60 * seconds + 1, (allowed, seconds)
    refused = [r for r in answers if r.status_code == 429]
    assert {str(r.url).rsplit("/api", 1)[0] for r in refused} == set(cluster.urls)
    for r in refused:
        assert int(r.headers["Retry-After"]) >= 1
        assert r.json()["error"]["type"] == "rate_limited"


def test_the_cache_is_shared_and_reingest_invalidates_it_everywhere(cluster: Cluster):
    a, b = cluster.urls
    name = _collection(cluster, a, {"parking.md": PARKING})
    first = _ask(cluster, a, name)
    _cache(cluster, a, first)

    hit = _ask(cluster, b, name)
    assert hit["cache"]["lookup"] == "exact", hit["cache"]
    assert hit["cache"]["created_by"] == first["trace_id"]
    assert hit["answer"] == first["answer"]
    entry = hit["cache"]["entry"]
    assert cluster.http.get(f"{b}/api/cache/entries/{entry}").status_code == 200

    report = _upload(cluster, a, name, {"parking.md": PARKING_CHANGED})  # re-ingest through A
    assert report["updated"] == 1, report
    assert cluster.http.get(f"{b}/api/cache/entries/{entry}").status_code == 404
    after = _ask(cluster, b, name)
    assert after["cache"]["lookup"] == "miss", after["cache"]
    assert "generate" in after["timings_ms"] or after["outcome"] == "abstained"


def test_a_replica_killed_mid_request_costs_the_client_a_retry_and_nothing_else(cluster: Cluster):
    a, b = cluster.urls
    name = _collection(cluster, a, {"parking.md": PARKING, "office.md": "# Office\n\nOpen 8-18.\n"})
    before = _sizes(cluster, b)
    client = ReplicaClient(cluster.urls, cluster.admin)
    killed: list[str] = []

    def kill_a(url: str) -> None:  # the response has started: A is working on the question
        if url == a:
            cluster.replicas[0].kill()
            killed.append(url)

    try:
        url, status, events = client.events(
            "/api/query/stream", {"question": QUESTION, "collection": name}, 0, kill_a
        )
    finally:
        client.close()
    assert killed == [a] and not cluster.replicas[0].alive
    assert [u for u, _ in client.failures] == [a], client.failures
    assert (url, status) == (b, 200)
    kind, answer = events[-1]
    assert kind == "answer" and answer["outcome"] in ("answered", "abstained"), events[-1]

    assert _sizes(cluster, b) == before  # nothing in the store was lost with A
    cluster.replicas.restart(0)
    assert _sizes(cluster, a) == before
    assert _ask(cluster, a, name)["trace_id"]


def test_without_its_cache_redis_dari_answers_and_then_uses_it_again(cluster: Cluster):
    a, b = cluster.urls
    name = _collection(cluster, a, {"parking.md": PARKING})
    cluster.cache_redis.stop()
    try:
        for url in (a, b):
            answer = _ask(cluster, url, name)
            assert answer["cache"]["lookup"] == "bypass", answer["cache"]
            assert "the cache failed" in answer["cache"]["reason"]
        stats = cluster.http.get(f"{a}/api/cache/stats")  # what needs the cache says so
        assert stats.status_code == 503 and int(stats.headers["Retry-After"]) >= 1
    finally:
        cluster.cache_redis.start()  # the same port, empty

    for url in (a, b):
        _until(_uses_its_cache(cluster, url, name), f"the cache of {url}")
    first = _ask(cluster, a, name)
    _cache(cluster, a, first)
    assert _ask(cluster, b, name)["cache"]["lookup"] == "exact"


def test_without_its_rate_limit_redis_dari_refuses_with_503_and_then_recovers(cluster: Cluster):
    cluster.limits_redis.stop()
    try:
        for url in cluster.urls:
            r = cluster.http.get(f"{url}/api/collections")
            assert r.status_code == 503, r.text
            assert int(r.headers["Retry-After"]) >= 1
            assert "rate-limit store" in r.json()["error"]["message"]
            assert cluster.http.get(f"{url}/healthz").status_code == 200
    finally:
        cluster.limits_redis.start()

    for url in cluster.urls:
        _until(_serves(cluster, url), url)


def test_a_postgresql_restart_gives_503s_and_then_recovery(cluster: Cluster):
    if cluster.postgres is None:
        pytest.skip("the shared-home store has no server to restart")
    cluster.postgres.stop("fast")
    try:
        for url in cluster.urls:
            r = cluster.http.get(f"{url}/api/collections")
            assert r.status_code == 503, r.text
            assert int(r.headers["Retry-After"]) >= 1
            assert cluster.http.get(f"{url}/readyz").status_code == 503
    finally:
        cluster.postgres.start()

    for url in cluster.urls:
        _until(_serves(cluster, url), url)
