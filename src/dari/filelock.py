"""Turns among processes on one machine (or one shared volume): an exclusive flock on a file."""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def file_turn(path: Path) -> Iterator[None]:
    """Wait for an exclusive lock on `path` (made if missing), hold it for the block. The kernel
    releases it if the process dies holding it, so a killed process never blocks the others."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
