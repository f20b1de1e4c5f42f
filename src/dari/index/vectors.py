"""Exact dense search over a collection's chunk vectors, memory-mapped from disk.

The matrix is derived from the SQLite store and stamped with the collection's generation; a
stale or missing file is rebuilt from the store (atomically: write, then rename).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from dari.index.store import Store


class NumpyVectorIndex:
    """Brute-force cosine search: exact, ~10 ms at 100k × 512 on two cores."""

    def __init__(
        self,
        ids: list[str],
        acl_groups: np.ndarray,
        groups: list[frozenset[str]],
        matrix: np.ndarray,
    ) -> None:
        self.ids = ids
        self._acl_groups = acl_groups
        self._groups = groups
        self._matrix = matrix

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def open(cls, store: Store, collection: str, folder: Path, generation: int) -> NumpyVectorIndex:
        meta_path, npy_path = folder / "vectors.json", folder / "vectors.npy"
        if meta_path.exists() and npy_path.exists():
            meta = json.loads(meta_path.read_text())
            if meta.get("generation") == generation:
                matrix = np.load(npy_path, mmap_mode="r")
                groups = [frozenset(g) for g in meta["groups"]]
                return cls(
                    meta["ids"], np.asarray(meta["acl_groups"], dtype=np.int32), groups, matrix
                )
        return cls.build(store, collection, folder, generation)

    @classmethod
    def build(
        cls, store: Store, collection: str, folder: Path, generation: int
    ) -> NumpyVectorIndex:
        ids, acls, matrix = store.ready_vectors(collection)
        group_of: dict[frozenset[str], int] = {}
        acl_groups = np.array(
            [group_of.setdefault(frozenset(a), len(group_of)) for a in acls], dtype=np.int32
        )
        groups = list(group_of)
        folder.mkdir(parents=True, exist_ok=True)
        tmp_npy, tmp_meta = folder / "vectors.npy.tmp", folder / "vectors.json.tmp"
        with open(tmp_npy, "wb") as f:
            np.save(f, matrix)
        meta = {
            "generation": generation,
            "ids": ids,
            "acl_groups": acl_groups.tolist(),
            "groups": [sorted(g) for g in groups],
        }
        tmp_meta.write_text(json.dumps(meta))
        os.replace(tmp_npy, folder / "vectors.npy")
        os.replace(tmp_meta, folder / "vectors.json")  # written last: it carries the stamp
        return cls(ids, acl_groups, groups, matrix)

    def search(
        self, query: np.ndarray, k: int, acl: list[str] | None = None
    ) -> list[tuple[str, float]]:
        if len(self.ids) == 0:
            return []
        scores = np.asarray(self._matrix @ query.astype(np.float32).ravel())
        if acl is not None:
            allowed_groups = [i for i, g in enumerate(self._groups) if not g or g & set(acl)]
            mask = np.isin(self._acl_groups, allowed_groups)
            scores = np.where(mask, scores, -np.inf)
        k = min(k, len(scores))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top])]
        return [(self.ids[i], float(scores[i])) for i in top if np.isfinite(scores[i])]
