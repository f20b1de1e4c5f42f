"""Real `dari serve` processes for the scale-out tests and bench/scale.py: replicas over one store
and one Redis, a redis-server that can be stopped and started again on its port, and a client that
tries the next replica when one does not answer. No pytest here, so the benchmark can use it too.

Replicas share what the environment tells them to: one DARI_HOME (SQLite in WAL mode, tantivy and
numpy files that several processes on one machine may open), or `store.backend = "postgres"` and a
home each. Every wait is a bounded polling loop that also notices a process that died.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import httpx

from dari.testing import free_port

DARI = Path(sys.executable).parent / "dari"
READY_S = 120.0  # a cold start on a busy 2-core machine, models not loaded yet (they load lazily)


def dari_env(home: Path, **settings: str) -> dict[str, str]:
    """The environment of a dari process: this one's without any DARI_* variable, then its own
    DARI_HOME, nobody's dari.toml, the CI model with short answers, and `settings` (DARI_* names:
    `DARI_CACHE__BACKEND="redis"`)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DARI_")}
    return env | {
        "DARI_HOME": str(home),
        "DARI_CONFIG": str(home.parent / "no-dari.toml"),
        "DARI_LLM__MODEL": "ci",
        "DARI_LLM__MAX_TOKENS": "48",
        "PYTHONUNBUFFERED": "1",
        **settings,
    }


def cli(env: Mapping[str, str], *argv: str) -> Any:
    """`dari ARGV --json` in a process of its own; its JSON output, or RuntimeError with stderr."""
    done = subprocess.run(
        [str(DARI), *argv, "--json"],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"dari {' '.join(argv)} failed ({done.returncode}): {done.stderr[-2000:]}"
        )
    return json.loads(done.stdout)


def create_key(env: Mapping[str, str], role: str = "admin", name: str = "replicas") -> str:
    """A new API key's token, made with the CLI as an operator would. Keys live in the store, so
    every replica of that store accepts it."""
    return str(cli(env, "keys", "create", "--role", role, "--name", name)["token"])


def _poll(ready: Callable[[], bool], seconds: float, what: str, every: float = 0.05) -> None:
    """Call `ready` until it is true; TimeoutError after `seconds`."""
    deadline = time.monotonic() + seconds
    while not ready():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {seconds:g} s")
        time.sleep(every)  # polling, bounded by the deadline


class RedisServer(AbstractContextManager["RedisServer"]):
    """redis-server on a loopback port, without persistence. `stop()` then `start()` is a restart
    on the same port, its data lost (as a cache's may be)."""

    def __init__(self, folder: Path, port: int | None = None) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not on PATH (apt-get install redis-server)")
        self._binary, self._folder = binary, folder
        self.port = port or free_port()
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def start(self, seconds: float = 10.0) -> RedisServer:
        import redis

        self._folder.mkdir(parents=True, exist_ok=True)
        self._proc = proc = subprocess.Popen(
            [self._binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--daemonize", "no", "--dir", str(self._folder)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)

        def up() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"redis-server on port {self.port} exited ({proc.returncode})")
            try:
                return bool(client.ping())
            except redis.ConnectionError:
                return False

        try:
            _poll(up, seconds, f"redis-server on port {self.port}")
        finally:
            client.close()
        return self

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            self._proc.wait(timeout=10)
            self._proc = None

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Replica:
    """One `dari serve` process on a port of its own, logging to `log`."""

    def __init__(self, env: Mapping[str, str], log: Path, port: int | None = None) -> None:
        self.env, self.log = dict(env), log
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Replica:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [str(DARI), "serve", "--host", "127.0.0.1", "--port", str(self.port)],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        return self

    def wait_ready(self, seconds: float = READY_S) -> None:
        """Until /readyz answers 200; RuntimeError with the log's tail if the process exits."""

        def ready() -> bool:
            if self.proc is None or self.proc.poll() is not None:
                raise RuntimeError(f"dari serve on port {self.port} exited:\n{self.tail()}")
            try:
                return httpx.get(self.url + "/readyz", timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        _poll(ready, seconds, f"dari serve on port {self.port}", every=0.1)

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: no shutdown, no cleanup, as a crash or an OOM kill would end it."""
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()

    def tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""


class Replicas(AbstractContextManager["Replicas"]):
    """Replicas started together (one environment each: the same home, or one each), ready when
    every /readyz says so."""

    def __init__(self, envs: Sequence[Mapping[str, str]], logs: Path) -> None:
        logs.mkdir(parents=True, exist_ok=True)
        self.replicas = [Replica(env, logs / f"replica-{i}.log") for i, env in enumerate(envs)]

    def __enter__(self) -> Replicas:
        try:
            for r in self.replicas:
                r.start()
            for r in self.replicas:
                r.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __getitem__(self, i: int) -> Replica:
        return self.replicas[i]

    def __len__(self) -> int:
        return len(self.replicas)

    @property
    def urls(self) -> list[str]:
        return [r.url for r in self.replicas]

    def restart(self, i: int) -> None:
        """Replica `i` again on its port (after a kill), ready."""
        self.replicas[i].stop()
        self.replicas[i].start().wait_ready()

    def stop(self) -> None:
        for r in self.replicas:
            r.stop()


class ReplicaClient:
    """A client of several replicas: each request goes to the next one in turn, and when one does
    not answer (refused, reset, cut off mid-answer, timed out) the same request goes to the next,
    until each was tried once. HTTP answers, errors included, are returned as they came: a 429 or
    a 503 is the service speaking. Every replica that failed is recorded in `failures`.

    Retrying is safe for what dari's API does: questions only read (and record a trace), and an
    upload of the same files again is an incremental ingest that finds them unchanged."""

    def __init__(self, urls: Sequence[str], token: str = "", timeout: float = 120.0) -> None:
        self.urls = list(urls)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(headers=headers, timeout=timeout)
        self._turn = itertools.count()
        self._lock = threading.Lock()
        self.failures: list[tuple[str, str]] = []  # (replica URL, error)

    def close(self) -> None:
        self._http.close()

    def _order(self, first: int | None) -> list[str]:
        with self._lock:
            start = next(self._turn) if first is None else first
        n = len(self.urls)
        return [self.urls[(start + k) % n] for k in range(n)]

    def _failed(self, url: str, exc: httpx.TransportError) -> None:
        with self._lock:
            self.failures.append((url, f"{type(exc).__name__}: {exc}"))

    def request(
        self, method: str, path: str, first: int | None = None, **kw: Any
    ) -> httpx.Response:
        """`method path` on the replicas in turn (from replica `first` when given)."""
        last: httpx.TransportError | None = None
        for url in self._order(first):
            try:
                return self._http.request(method, url + path, **kw)
            except httpx.TransportError as exc:
                self._failed(url, exc)
                last = exc
        raise ConnectionError(f"no replica answered {method} {path}") from last

    def get(self, path: str, first: int | None = None, **kw: Any) -> httpx.Response:
        return self.request("GET", path, first, **kw)

    def post(self, path: str, first: int | None = None, **kw: Any) -> httpx.Response:
        return self.request("POST", path, first, **kw)

    def events(
        self,
        path: str,
        body: Mapping[str, Any],
        first: int | None = None,
        on_open: Callable[[str], None] | None = None,
    ) -> tuple[str, int, list[tuple[str, Any]]]:
        """A server-sent-events request (POST /api/query/stream): (the URL of the replica that
        answered, its status, the events). A stream cut off before its last event is retried
        whole on the next replica, its tokens discarded. `on_open(url)` runs once the response
        has started: the request is then in the replica's hands."""
        last: httpx.TransportError | None = None
        for url in self._order(first):
            try:
                with self._http.stream("POST", url + path, json=dict(body)) as response:
                    if on_open is not None:
                        on_open(url)
                    if response.status_code != 200:
                        response.read()
                        return url, response.status_code, [("error", response.json())]
                    got = list(_sse(response.iter_lines()))
                if got and got[-1][0] in ("answer", "error"):
                    return url, 200, got
                raise httpx.RemoteProtocolError("the stream ended before its last event")
            except httpx.TransportError as exc:
                self._failed(url, exc)
                last = exc
        raise ConnectionError(f"no replica answered POST {path}") from last


def _sse(lines: Iterator[str]) -> Iterator[tuple[str, Any]]:
    event = ""
    for line in lines:
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: "):
            yield event, json.loads(line[6:])
