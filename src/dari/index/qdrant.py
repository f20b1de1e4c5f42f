"""Dense search in Qdrant, for collections too large for the exact in-memory index or shared by
several dari processes: a Qdrant server (`vectors.url`), or qdrant-client's local mode (a folder;
the same API, exact search, for tests and single machines).

One Qdrant collection per dari collection (`vectors.prefix` + name), one point per chunk (its id a
UUID5 of the chunk id), the document's ACL tags and metadata tokens in the payload so that ACL and
metadata filters run inside Qdrant's search, before the top k. SQLite stays the source of truth:
when the collection's generation moves, the points are brought in step with it by difference
(new chunks added, removed ones deleted, changed tags rewritten), never by a full reload.
"""

from __future__ import annotations

import contextlib
import json
import uuid
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dari.errors import BackendError, MissingExtra
from dari.index.store import Store

BATCH = 256
_NS = uuid.UUID("6f0c1d52-3c1e-4f57-9a0e-5d2b8f4a7c11")  # namespace of dari's point ids
Tags = tuple[tuple[str, ...], tuple[str, ...]]


def point_id(chunk_id: str) -> str:
    return str(uuid.uuid5(_NS, chunk_id))


def connect(url: str, api_key: str, path: Path, timeout_s: float = 10.0) -> Any:
    """A client for the server at `url`, or local mode in the folder `path` when url is ""."""
    try:
        from qdrant_client import QdrantClient
    except ImportError as exc:
        raise MissingExtra("qdrant-client", "qdrant") from exc
    if url:
        return QdrantClient(url=url, api_key=api_key or None, timeout=int(timeout_s))
    path.mkdir(parents=True, exist_ok=True)
    return QdrantClient(path=str(path))


def drop(client: Any, name: str) -> None:
    """Remove a Qdrant collection (when its dari collection is deleted); absent is fine."""
    with _calls(name):
        if client.collection_exists(name):
            client.delete_collection(name)


class QdrantVectorIndex:
    """The same searches as NumpyVectorIndex (`search`, `vectors_of`, `len`), served by Qdrant."""

    def __init__(self, client: Any, name: str, where: str) -> None:
        self._client = client
        self.name = name
        self._where = where  # the server's URL or the local folder, for error messages
        self._exists: bool | None = None  # known after a sync, else asked once

    def _present(self) -> bool:
        """Whether the Qdrant collection exists (an empty dari collection makes none). Asked
        once per index object: the app opens a new one whenever the collection changes."""
        if self._exists is None:
            self._exists = bool(self._client.collection_exists(self.name))
        return self._exists

    @classmethod
    def open(
        cls,
        client: Any,
        store: Store,
        collection: str,
        prefix: str,
        stamp: Path,
        generation: int,
        where: str,
    ) -> QdrantVectorIndex:
        """The index of `collection`, synced with the store unless `stamp` (a small file next
        to the collection's other derived indexes) says it already is at `generation`."""
        index = cls(client, prefix + collection, where)
        try:
            seen = json.loads(stamp.read_text()) if stamp.exists() else {}
        except (OSError, ValueError):
            seen = {}
        if seen.get("generation") != generation or seen.get("name") != index.name:
            index.sync(store, collection)
            stamp.parent.mkdir(parents=True, exist_ok=True)
            stamp.write_text(json.dumps({"generation": generation, "name": index.name}))
        return index

    def sync(self, store: Store, collection: str) -> dict[str, int]:
        """Bring the points in step with the store's ready chunks; returns what changed."""
        ids, tags, matrix = store.ready_vectors(collection)
        with _calls(self._where):
            self._exists = self._ensure(matrix.shape[1] if len(ids) else 0)
            if not self._exists:
                return {"added": 0, "deleted": 0, "retagged": 0}
            present = self._payloads()
            wanted = {cid: (i, tags[i]) for i, cid in enumerate(ids)}
            add = [i for cid, (i, _) in wanted.items() if cid not in present]
            retag = [cid for cid, (_, t) in wanted.items() if cid in present and present[cid] != t]
            gone = [cid for cid in present if cid not in wanted]
            for start in range(0, len(add), BATCH):
                self._upsert([ids[i] for i in add[start : start + BATCH]], matrix, wanted)
            for cid in retag:
                acl, meta = wanted[cid][1]
                payload = {"acl": list(acl), "meta": list(meta)}
                self._client.set_payload(self.name, payload=payload, points=[point_id(cid)])
            for start in range(0, len(gone), BATCH):
                batch = [point_id(c) for c in gone[start : start + BATCH]]
                self._client.delete(self.name, points_selector=batch)
        return {"added": len(add), "deleted": len(gone), "retagged": len(retag)}

    def __len__(self) -> int:
        with _calls(self._where):
            if not self._present():
                return 0
            return int(self._client.count(self.name, exact=True).count)

    def search(
        self,
        query: np.ndarray,
        k: int,
        acl: Sequence[str] | None = None,
        where: Sequence[str] = (),
    ) -> list[tuple[str, float]]:
        """Top k chunk ids by cosine similarity among those the ACL tags may read and whose
        document has every `key=value` token in `where` (the filter runs inside Qdrant)."""
        from qdrant_client import models as qm

        must: list[Any] = [
            qm.FieldCondition(key="meta", match=qm.MatchValue(value=t)) for t in where
        ]
        if acl is not None:  # readable: no ACL tags, or one of the reader's
            public = qm.IsEmptyCondition(is_empty=qm.PayloadField(key="acl"))
            should: list[Any] = [public]
            if acl:
                should.append(qm.FieldCondition(key="acl", match=qm.MatchAny(any=list(acl))))
            must.append(qm.Filter(should=should))
        vector = np.asarray(query, dtype=np.float32).ravel().tolist()
        with _calls(self._where):
            if not self._present():
                return []
            found = self._client.query_points(
                self.name,
                query=vector,
                limit=k,
                query_filter=qm.Filter(must=must) if must else None,
                with_payload=["chunk_id"],
            ).points
        return [(str(p.payload["chunk_id"]), float(p.score)) for p in found]

    def vectors_of(self, ids: Sequence[str]) -> np.ndarray:
        """The stored (unit) vectors of these chunk ids, one row each; zeros for unknown ids."""
        with _calls(self._where):
            if not ids or not self._present():
                return np.zeros((len(ids), 0), np.float32)
            points = self._client.retrieve(
                self.name,
                ids=[point_id(c) for c in ids],
                with_vectors=True,
                with_payload=["chunk_id"],
            )
        by_id = {str(p.payload["chunk_id"]): p.vector for p in points}
        dim = len(next(iter(by_id.values()))) if by_id else 0
        out = np.zeros((len(ids), dim), np.float32)
        for j, cid in enumerate(ids):
            if cid in by_id:
                out[j] = by_id[cid]
        return out

    # -- helpers --------------------------------------------------------------------------------
    def _ensure(self, dim: int) -> bool:
        """Create the Qdrant collection for `dim`-d vectors; one made for another size (the
        embedder changed) is dropped and made again. Returns whether it exists now."""
        from qdrant_client import models as qm

        if self._client.collection_exists(self.name):
            info = self._client.get_collection(self.name)
            size = info.config.params.vectors.size
            if dim and size != dim:
                self._client.delete_collection(self.name)
            else:
                return True
        if not dim:
            return False
        self._client.create_collection(
            self.name, vectors_config=qm.VectorParams(size=dim, distance=qm.Distance.COSINE)
        )
        with warnings.catch_warnings():  # local mode says it ignores them; a server uses them
            warnings.simplefilter("ignore", UserWarning)
            for field in ("acl", "meta", "chunk_id"):
                self._client.create_payload_index(self.name, field, qm.PayloadSchemaType.KEYWORD)
        return True

    def _payloads(self) -> dict[str, Tags]:
        """Every point's chunk id and tags, read page by page (no vectors)."""
        out: dict[str, Tags] = {}
        offset = None
        while True:
            points, offset = self._client.scroll(
                self.name, limit=1024, offset=offset, with_payload=True, with_vectors=False
            )
            for p in points:
                pl = p.payload or {}
                out[str(pl.get("chunk_id"))] = (tuple(pl.get("acl", ())), tuple(pl.get("meta", ())))
            if offset is None:
                return out

    def _upsert(self, chunk_ids: list[str], matrix: np.ndarray, wanted: dict[str, Any]) -> None:
        from qdrant_client import models as qm

        points = []
        for cid in chunk_ids:
            i, (acl, meta) = wanted[cid]
            payload = {"chunk_id": cid, "acl": list(acl), "meta": list(meta)}
            points.append(
                qm.PointStruct(id=point_id(cid), vector=matrix[i].tolist(), payload=payload)
            )
        self._client.upsert(self.name, points=points, wait=True)


@contextlib.contextmanager
def _calls(where: str) -> Iterator[None]:
    """Qdrant's connection and server errors become one BackendError naming the server."""
    try:
        yield
    except BackendError:
        raise
    except Exception as exc:
        if not _is_qdrant_error(exc):
            raise
        raise BackendError(
            f"Qdrant at {where} failed: {str(exc).strip()[:300]}",
            "check that the Qdrant server is up and vectors.url / vectors.api_key are right",
        ) from exc


def _is_qdrant_error(exc: BaseException) -> bool:
    module = type(exc).__module__
    return module.startswith(("qdrant_client", "httpx", "httpcore", "grpc")) or isinstance(
        exc, ConnectionError | TimeoutError
    )
