"""A replica's own BM25 index, kept in step with a store that other processes write to.

With a shared store (PostgreSQL) each dari process may hold its own tantivy index under its
DARI_HOME. The store logs which documents each generation touched (`Store.changes_since`); when
the collection's generation moves, the index deletes those documents and adds back the ones still
`ready` — so it converges whoever wrote, however often, and running the same step twice changes
nothing. A stamp next to the index says which collection (its creation time) and generation it
holds; an index of an earlier collection of the same name, or older than the log, is rebuilt.
Processes sharing one DARI_HOME take turns through a file lock, and the second finds the work done.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from dari.errors import StoreError
from dari.filelock import file_turn
from dari.index.bm25 import TantivyIndex
from dari.index.store import Store

log = logging.getLogger(__name__)
STAMP = "stamp.json"


def _read(path: Path) -> tuple[float, int] | None:
    try:
        data = json.loads(path.read_text())
        return float(data["created_at"]), int(data["generation"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write(path: Path, created_at: float, generation: int) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"created_at": created_at, "generation": generation}))
    os.replace(tmp, path)


def sync(index: TantivyIndex, store: Store, collection: str, folder: Path) -> int:
    """Bring `index` (stored in `folder`) in step with the store; returns the generation it now
    holds. A writer held by another process leaves the index as it is, to be synced next time."""
    stamp = folder / STAMP
    with file_turn(folder / ".sync.lock"):
        created, generation = store.created_at(collection), store.generation(collection)
        held = _read(stamp)
        if held == (created, generation):
            return generation
        changed = None
        if held is not None and held[0] == created and held[1] <= generation:
            changed = store.changes_since(collection, held[1])
        try:
            if changed is None:  # rebuilt whole
                index.clear()
                index.add(store.chunks_for_docs(store.ready_doc_ids(collection)))
            else:
                index.delete_documents(changed)
                ready = store.ready_among(changed)
                index.add(store.chunks_for_docs([d for d in changed if d in ready]))
            index.commit()
        except StoreError as exc:  # another process is writing it: it will be synced next time
            log.warning("BM25 index of %s not synced this time: %s", collection, exc.message)
            return held[1] if held else -1
        _write(stamp, created, generation)
        return generation
