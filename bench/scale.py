"""Scale-out on one machine: 1, 2 and 4 `dari serve` replicas on loopback, one store, one cache.

For each replica count, on a fresh store: the replicas start (tests/server/replicas.py), each is
warmed (its embedder loaded by one upload and one question, not measured), then over a client-side
round robin (request i to replica i mod n), at a fixed concurrency and a fixed number of requests:
- ingest: docs/en and docs/ko (a snapshot, one file per upload) into one collection: files/s;
- retrieval-only: questions the collection cannot answer (bench/server.py's UNANSWERABLE, each
  asked once, so no replica has its embedding memoised), abstained after retrieval, no LLM;
- cache hits: one question whose answer is in the answer cache, asked again and again.
While each phase runs, the CPU time of every process is read from /proc: the replicas, Redis,
PostgreSQL (server and backends) and this load generator, as cores in use, to say where the time
goes. Every non-200 answer or failed request is an error; the script exits 1 if there was any.

    python bench/scale.py [--store shared-home,postgres] [--redis] [--replicas 1,2,4]
                          [--concurrency 8] [--hits 600] [--ingest-concurrency 4]

--store shared-home: the replicas share one DARI_HOME (SQLite WAL, tantivy, numpy vectors);
postgres: store.backend = "postgres" on a throwaway PostgreSQL (dari.db.local_postgres), a home
per replica; postgres-all: BM25 (store.fulltext), the vectors (pgvector) and the answer cache in
that PostgreSQL too. --redis: a redis-server on a free port holds the answer cache (unless
postgres-all) and the rate limits (else the cache is SQLite: shared with a shared home, one per
replica otherwise). The rate limit is
raised for the run (one key sends every request).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from _common import OUT, ROOT, machine, pct

from server import HIT, QUESTIONS, UNANSWERABLE, figures_of

sys.path.insert(0, str(ROOT))
from tests.server.replicas import RedisServer, Replicas, create_key, dari_env

REPORT = ROOT / "docs" / "benchmarks" / "scale"
COLLECTION = "docs"
TICK = os.sysconf("SC_CLK_TCK")
# bench/server.py's questions that docs/en cannot answer, less "Do … migrate in winter?": docs/ko
# retrieves well enough for those to reach the LLM, and this phase is about retrieval alone.
RETRIEVAL = [q for q in UNANSWERABLE if " migrate " not in q]
Row = tuple[float, int, dict[str, Any]]  # (seconds, HTTP status, body) as bench/server.py has it


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--store", default="shared-home", help="shared-home, postgres, postgres-all, or a list"
    )
    ap.add_argument("--redis", action="store_true", help="answer cache and rate limits in Redis")
    ap.add_argument("--replicas", default="1,2,4")
    ap.add_argument("--concurrency", type=int, default=8, help="clients asking questions")
    ap.add_argument("--ingest-concurrency", type=int, default=4, help="clients uploading")
    ap.add_argument("--hits", type=int, default=600, help="cache-hit requests per run")
    args = ap.parse_args()
    stores = [s.strip() for s in args.store.split(",") if s.strip()]
    counts = [int(n) for n in args.replicas.split(",")]
    started = time.perf_counter()
    report: dict[str, Any] = {
        "machine": machine(),
        "settings": {
            "model": "ci",
            "endpoints": "POST /api/collections/docs/documents, POST /api/query (non-streamed)",
            "balancing": "client-side round robin: request i to replica i mod n",
            "concurrency": args.concurrency,
            "ingest_concurrency": args.ingest_concurrency,
            "retrieval_requests": len(RETRIEVAL),
            "hit_requests": args.hits,
            "redis": args.redis,
            "note": "replicas, Redis, PostgreSQL and the load generator share the machine's cores",
        },
        "stores": {},
    }
    with tempfile.TemporaryDirectory(prefix="dari-bench-scale-") as tmp:
        root = Path(tmp)
        corpus = snapshot(root / "corpus")
        report["settings"]["corpus"] = {
            "files": len(corpus),
            "bytes": sum(p.stat().st_size for p in corpus),
        }
        for store in stores:
            with backends(store, args.redis, root / store) as infra:
                runs = {}
                for n in counts:
                    runs[f"replicas_{n}"] = run(infra, n, corpus, args, root / store / f"n{n}")
                    print(
                        f"{store} x{n}: {json.dumps(brief(runs[f'replicas_{n}']))}", file=sys.stderr
                    )
                report["stores"][store] = runs | {"scaling": scaling(runs, counts)}
    report["errors_total"] = sum(
        phase["errors"]
        for runs in report["stores"].values()
        for name, r in runs.items()
        if name.startswith("replicas_")
        for phase in (r["ingest"], r["retrieval_only"], r["cache_hits"])
    )
    report["seconds"] = round(time.perf_counter() - started, 1)
    REPORT.mkdir(parents=True, exist_ok=True)
    text = json.dumps(report, ensure_ascii=False, indent=2)
    (REPORT / "report.json").write_text(text + "\n")
    print(text)
    if report["errors_total"]:
        sys.exit(f"{report['errors_total']} requests failed: see the report")


def snapshot(folder: Path) -> list[Path]:
    """docs/en and docs/ko copied (the docs change as people write), named en-… and ko-…: one
    upload folder holds them all, and the two languages share file names."""
    folder.mkdir(parents=True)
    files = []
    for lang in ("en", "ko"):
        for src in sorted((ROOT / "docs" / lang).glob("*.md")):
            files.append(Path(shutil.copy(src, folder / f"{lang}-{src.name}")))
    return files


# -- the servers the replicas share --------------------------------------------------------------
@dataclass
class Infra:
    store: str
    redis: RedisServer | None
    postgres: Any = None  # dari.db.local_postgres.LocalPostgres
    pids: dict[str, Callable[[], list[int]]] = field(default_factory=dict)  # shared processes


@contextmanager
def backends(store: str, redis: bool, folder: Path) -> Iterator[Infra]:
    if store not in ("shared-home", "postgres", "postgres-all"):
        sys.exit(f"--store: shared-home, postgres or postgres-all, not {store}")
    with ExitStack() as stack:
        infra = Infra(store, None)
        if redis:
            infra.redis = stack.enter_context(RedisServer(folder / "redis"))
            infra.pids["redis"] = lambda: (
                [infra.redis.pid] if infra.redis and infra.redis.pid else []
            )
        if store.startswith("postgres"):
            from dari.db.local_postgres import temporary

            infra.postgres = stack.enter_context(temporary("dari-bench-pg-"))
            infra.pids["postgres"] = lambda: _family(_postmaster(infra.postgres.data))
        yield infra


def _postmaster(data: Path) -> int | None:
    try:
        return int((data / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _family(pid: int | None) -> list[int]:
    """A process and its children (PostgreSQL's backends)."""
    if pid is None:
        return []
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                children.append(int(entry.name))
    return [pid, *children]


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process, its waited-for children included (finished backends)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(f) for f in fields[11:15]) / TICK  # utime stime cutime cstime


# -- one run: n replicas on a fresh store --------------------------------------------------------
def run(infra: Infra, n: int, corpus: list[Path], args: argparse.Namespace, folder: Path) -> Any:
    settings = {"DARI_SERVER__RATE_PER_MINUTE": "100000000", "DARI_SERVER__BURST": "1000000"}
    if infra.redis is not None:
        infra.redis.stop()
        infra.redis.start()  # empty: no cache entries of the run before
        url = infra.redis.url
        settings |= {"DARI_CACHE__BACKEND": "redis", "DARI_CACHE__REDIS_URL": url}
        settings |= {"DARI_SERVER__REDIS_URL": url}
    databases = ExitStack()  # a fresh one per run, so each replica count starts empty
    if infra.store.startswith("postgres"):
        settings |= {
            "DARI_STORE__BACKEND": "postgres",
            "DARI_STORE__POSTGRES_URL": databases.enter_context(infra.postgres.fresh_database()),
        }
        if infra.store == "postgres-all":  # BM25, vectors and the answer cache there too
            settings |= {"DARI_STORE__FULLTEXT": "postgres", "DARI_VECTORS__BACKEND": "pgvector"}
            settings |= {"DARI_CACHE__BACKEND": "postgres"}
        homes = [folder / f"home-{i}" for i in range(n)]
    else:
        homes = [folder / "home"] * n
    envs = [dari_env(h, **settings) for h in homes]
    token = create_key(envs[0], "admin", "bench")
    t = time.perf_counter()
    with databases, Replicas(envs, folder / "logs") as replicas:
        startup = time.perf_counter() - t
        pids = {"replicas": lambda: [r.proc.pid for r in replicas.replicas if r.proc]}
        pids |= infra.pids
        out: dict[str, Any] = {"replicas": n, "startup_s": round(startup, 2)}
        out["loadavg_at_start"] = [round(x, 2) for x in os.getloadavg()]
        out["warm_s"] = round(asyncio.run(warm(replicas.urls, token)), 2)
        out["ingest"] = measured(
            pids, lambda: asyncio.run(ingest(replicas.urls, token, corpus, args.ingest_concurrency))
        )
        out["retrieval_only"] = measured(
            pids, lambda: asyncio.run(load(replicas.urls, token, RETRIEVAL, args.concurrency))
        )
        out["prime"] = asyncio.run(prime(replicas.urls, token))
        hits = [out["prime"]["question"]] * args.hits
        out["cache_hits"] = measured(
            pids, lambda: asyncio.run(load(replicas.urls, token, hits, args.concurrency))
        )
        out["rss_mb"] = [rss_mb(r.proc.pid) for r in replicas.replicas if r.proc]
    logs = OUT / "scale" / f"{infra.store}-{n}"  # the replicas' logs, to look into errors
    shutil.rmtree(logs, ignore_errors=True)
    shutil.copytree(folder / "logs", logs)
    return out


def measured(pids: dict[str, Callable[[], list[int]]], phase: Callable[[], dict[str, Any]]) -> Any:
    """A phase's figures with the cores each kind of process used while it ran, and the cores
    the whole machine was busy: the difference is other work on the machine (noise)."""
    groups = {name: find() for name, find in pids.items()}
    before = {name: {p: cpu_seconds(p) for p in ps} for name, ps in groups.items()}
    mine, busy, t = time.process_time(), machine_busy(), time.perf_counter()
    figures = phase()
    wall = time.perf_counter() - t
    machine_cores = (machine_busy() - busy) / wall
    cores = {
        name: round(sum(cpu_seconds(p) - before[name].get(p, 0.0) for p in find()) / wall, 2)
        for name, find in pids.items()
    }
    cores["load_generator"] = round((time.process_time() - mine) / wall, 2)
    total = sum(cores.values())
    if len(groups["replicas"]) > 1:
        cores["per_replica"] = [  # type: ignore[assignment]
            round((cpu_seconds(p) - before["replicas"][p]) / wall, 2) for p in groups["replicas"]
        ]
    figures["cpu_cores"] = cores | {
        "total": round(total, 2),
        "other_processes": round(max(0.0, machine_cores - total), 2),
        "of": os.cpu_count(),
    }
    return figures


def machine_busy() -> float:
    """Seconds of CPU the whole machine has spent busy (all cores), from /proc/stat."""
    fields = [int(f) for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / TICK  # less idle and iowait


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


# -- the load ------------------------------------------------------------------------------------
def _client(token: str, concurrency: int) -> httpx.AsyncClient:
    limits = httpx.Limits(
        max_connections=concurrency * 4, max_keepalive_connections=concurrency * 4
    )
    return httpx.AsyncClient(
        headers={"Authorization": f"Bearer {token}"}, timeout=600, limits=limits
    )


async def ask(client: httpx.AsyncClient, url: str, question: str) -> Row:
    t = time.perf_counter()
    try:
        r = await client.post(
            f"{url}/api/query", json={"question": question, "collection": COLLECTION}
        )
        return time.perf_counter() - t, r.status_code, _body(r)
    except httpx.HTTPError as exc:
        return time.perf_counter() - t, 0, {"error": repr(exc)}


async def upload(client: httpx.AsyncClient, url: str, path: Path) -> Row:
    t = time.perf_counter()
    try:
        r = await client.post(
            f"{url}/api/collections/{COLLECTION}/documents",
            files=[("file", (path.name, path.read_bytes()))],
        )
        body = _body(r)
        if r.status_code == 200 and body.get("failed"):
            return time.perf_counter() - t, 422, body  # a file dari could not ingest
        return time.perf_counter() - t, r.status_code, body
    except httpx.HTTPError as exc:
        return time.perf_counter() - t, 0, {"error": repr(exc)}


def _body(r: httpx.Response) -> dict[str, Any]:
    """The JSON body, or the start of a body that is not JSON (an unhandled error's)."""
    if r.headers.get("content-type", "").startswith("application/json"):
        body: dict[str, Any] = r.json()
        return body
    return {"text": r.text[:500], "replica": str(r.url).rsplit("/api", 1)[0]}


async def _round_robin(
    urls: Sequence[str], items: Sequence[Any], concurrency: int, one: Callable[[str, Any], Any]
) -> tuple[list[Row], float]:
    """Every item once, item i to replica i mod n, from `concurrency` clients; (rows, seconds)."""
    counter = itertools.count()
    rows: list[Row] = []

    async def worker() -> None:
        while (i := next(counter)) < len(items):
            rows.append(await one(urls[i % len(urls)], items[i]))

    t = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return rows, time.perf_counter() - t


async def ingest(urls: Sequence[str], token: str, corpus: list[Path], concurrency: int) -> Any:
    async with _client(token, concurrency) as client:
        rows, wall = await _round_robin(
            urls, corpus, concurrency, lambda u, p: upload(client, u, p)
        )
    ok = [b for _, s, b in rows if s == 200]
    ms = [seconds * 1000 for seconds, s, _ in rows if s == 200]
    errors = [(s, b) for _, s, b in rows if s != 200]
    chunks = sum(f["chunks"] for b in ok for f in b["files"])
    return {
        "files": len(rows),
        "chunks": chunks,
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
        "wall_s": round(wall, 2),
        "files_per_s": round(len(ok) / wall, 2),
        "chunks_per_s": round(chunks / wall, 1),
        "latency_ms": {f"p{q}": round(pct(ms, q), 1) for q in (50, 95, 99)},
    }


async def load(urls: Sequence[str], token: str, questions: Sequence[str], concurrency: int) -> Any:
    async with _client(token, concurrency) as client:
        rows, wall = await _round_robin(
            urls, questions, concurrency, lambda u, q: ask(client, u, q)
        )
    return figures_of(rows, wall)


async def warm(urls: Sequence[str], token: str) -> float:
    """Each replica's embedder and retrieval loaded (an upload to another collection and two
    questions), so that no phase measures a model load."""
    t = time.perf_counter()
    async with _client(token, 1) as client:
        r = await client.post(f"{urls[0]}/api/collections", json={"name": COLLECTION})
        r.raise_for_status()
        r = await client.post(f"{urls[0]}/api/collections", json={"name": "warm"})
        r.raise_for_status()
        for i, url in enumerate(urls):
            part = ("file", (f"warm-{i}.md", f"# Warm {i}\n\nLamps glow at dusk.\n".encode()))
            r = await client.post(f"{url}/api/collections/warm/documents", files=[part])
            r.raise_for_status()
            for q in ("How tall do baobabs grow?", "How old do tortoises get?"):
                r = await client.post(
                    f"{url}/api/query", json={"question": q, "collection": "warm"}
                )
                r.raise_for_status()
    return time.perf_counter() - t


async def prime(urls: Sequence[str], token: str) -> dict[str, Any]:
    """A question whose answer is cached: HIT, else the first of QUESTIONS the CI model answers;
    an answer a guard kept out of the cache is approved, as an operator would. Then checked to be
    a hit through every replica (one cache for all, or one per replica that each replica fills)."""
    t = time.perf_counter()
    async with _client(token, 1) as client:
        for question in [HIT, *QUESTIONS[:8]]:
            _, status, body = await ask(client, urls[0], question)
            if status == 200 and body["outcome"] == "answered":
                break
        else:
            sys.exit(f"the CI model answered none of the questions to cache: {body}")
        stored = []
        for url in urls:
            _, status, answer = await ask(client, url, question)
            if (answer.get("cache") or {}).get("lookup") not in ("exact", "semantic"):
                approval = {"trace_id": answer["trace_id"], "approve": True}
                (await client.post(f"{url}/api/feedback", json=approval)).raise_for_status()
                stored.append(url)
        for url in urls:
            _, status, again = await ask(client, url, question)
            if (again.get("cache") or {}).get("lookup") not in ("exact", "semantic"):
                sys.exit(
                    f"{question!r} was not served from the cache by {url}: {again.get('cache')}"
                )
    return {
        "question": question,
        "approved_through": len(stored),
        "seconds": round(time.perf_counter() - t, 2),
    }


# -- summaries -----------------------------------------------------------------------------------
def brief(run: dict[str, Any]) -> dict[str, Any]:
    return {
        "ingest_files_per_s": run["ingest"]["files_per_s"],
        "retrieval_rps": run["retrieval_only"]["requests_per_s"],
        "retrieval_p95_ms": run["retrieval_only"]["latency_ms"]["p95"],
        "hits_rps": run["cache_hits"]["requests_per_s"],
        "hits_p95_ms": run["cache_hits"]["latency_ms"]["p95"],
    }


def scaling(runs: dict[str, Any], counts: list[int]) -> dict[str, Any]:
    """Each figure against one replica's (or the fewest measured), and where the CPU went."""
    base = runs[f"replicas_{min(counts)}"]
    out: dict[str, Any] = {}
    for n in counts:
        r = runs[f"replicas_{n}"]
        out[f"replicas_{n}"] = {
            "ingest_x": _ratio(r["ingest"]["files_per_s"], base["ingest"]["files_per_s"]),
            "retrieval_x": _ratio(
                r["retrieval_only"]["requests_per_s"], base["retrieval_only"]["requests_per_s"]
            ),
            "hits_x": _ratio(
                r["cache_hits"]["requests_per_s"], base["cache_hits"]["requests_per_s"]
            ),
            "busiest": {
                phase: _busiest(r[phase]["cpu_cores"])
                for phase in ("ingest", "retrieval_only", "cache_hits")
            },
        }
    return out


def _ratio(a: float, b: float) -> float:
    return round(a / b, 2) if b else float("nan")


def _busiest(cores: dict[str, Any]) -> str:
    """'replicas 1.71 of 2 cores (ours 1.9, others 0.05)': the kind of process busiest."""
    skip = ("per_replica", "total", "other_processes", "of")
    kinds = {k: v for k, v in cores.items() if k not in skip}
    name = max(kinds, key=lambda k: kinds[k])
    others = cores["other_processes"]
    return f"{name} {kinds[name]} of {cores['of']} cores (ours {cores['total']}, others {others})"


if __name__ == "__main__":
    main()
