"""Eval runs started through the API: one at a time, in a background thread of the server, each
kept in DARI_HOME/evals/<id>/ as `run.json` (its state and `kind`) next to its reports.

- retrieval (`dari eval retrieval`): the run indexes its corpus under DARI_HOME/eval/, as the CLI
  does, with the server's own analyzer, embedder and LLM, and writes the files of
  `dari eval retrieval --output` into the run's folder (report.json, per_query.jsonl,
  report.html);
- answers (`dari eval answers`, see answerruns.py): a golden set answered over one of the
  server's collections, in the sub-folder `answers/` as `dari eval answers --output` writes it
  (its own run.json, items.jsonl, report.json, report.html). Two such runs compare into
  DARI_HOME/evals/compare-<a>-<b>/.

A report is opened in a browser tab through a signed link that expires, since a tab cannot send
an API key."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import importlib.util
import json
import logging
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dari.app import Dari
from dari.config import Settings
from dari.errors import Conflict, DariError, InputError, MissingExtra, NotFound
from dari.eval import report
from dari.eval.datasets import EvalSet, load_set
from dari.eval.retrieval import ConfigSpec, RetrievalEval, parse_configs
from dari.index.embedders import QueryMemo
from dari.server import answerruns
from dari.server.answerruns import AnswerRequest
from dari.types import FileResult

log = logging.getLogger("dari.server")

LINK_SECONDS = 3600  # how long a report link opens the report
_RUN_ID = r"\d{8}-\d{6}-[0-9a-f]{6}"
_ID = re.compile(f"^{_RUN_ID}$")
_COMPARISON = re.compile(f"^compare-{_RUN_ID}-{_RUN_ID}$")
ANSWERS = "answers"  # an answer run's kind, and its sub-folder of `dari eval answers` files
_SHOWN = ("ndcg@10", "recall@10", "mrr@10", "latency_ms_p50")  # per configuration, in lists


@dataclass(frozen=True)
class EvalRequest:
    dataset: Path  # a BEIR or QA folder on the server
    configs: str
    split: str = "test"
    limit: int | None = None


@dataclass(frozen=True)
class EvalRun:
    """One run's state, as run.json keeps it (written without `kind`: a retrieval run)."""

    id: str
    status: str  # running | done | failed
    started: float
    kind: str = "retrieval"  # retrieval | answers
    dataset: str = ""  # retrieval: the BEIR or QA folder, its configurations and split
    configs: str = ""
    split: str = ""
    golden: str = ""  # answers: the golden file, the collection, what the request chose
    collection: str = ""
    model: str = ""  # "": the server's
    prompt: str = ""  # "": the server's default
    top_k: int | None = None
    skipped: int = 0  # golden lines left out as unreadable
    limit: int | None = None
    finished: float | None = None
    error: str = ""
    hint: str = ""


class EvalRuns:
    """The runs under DARI_HOME/evals and the one running now, if any."""

    def __init__(self, dari: Dari, settings: Settings) -> None:
        self.root = settings.home_dir / "evals"
        self._dari = dari
        self._settings = settings
        self._lock = threading.Lock()
        self._running: str | None = None
        self._progress: dict[str, Any] = {}
        self._secret = secrets.token_bytes(32)  # per process: links die with a restart

    # -- starting and running ---------------------------------------------------------------
    def start(self, request: EvalRequest | AnswerRequest) -> EvalRun:
        """Check the request (for a retrieval run: configurations and eval set; for an answer
        run: golden file, collection, prompt and model; the plotting extra) and start the run
        in a thread; Conflict while another one runs."""
        run_id = time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]
        with self._lock:
            if self._running is not None:
                raise Conflict(
                    f"eval run {self._running} is still running: one run at a time",
                    f"wait for it to finish: GET /api/evals/{self._running}",
                )
            self._running, self._progress = run_id, {"stage": "loading"}
        try:
            if isinstance(request, AnswerRequest):
                run, task = self._answers(run_id, request)
            else:
                run, task = self._retrieval(run_id, request)
            self._save(run)
        except BaseException:
            self._finish()
            raise
        worker = threading.Thread(
            target=self._work, args=(run, task), name=f"dari-eval-{run_id}", daemon=True
        )
        worker.start()
        return run

    def _retrieval(self, run_id: str, request: EvalRequest) -> tuple[EvalRun, Callable[[], None]]:
        specs = parse_configs(request.configs)
        evalset = load_set(request.dataset, request.split, request.limit)
        _need_plots()
        run = EvalRun(
            run_id,
            "running",
            time.time(),
            dataset=str(request.dataset),
            configs=",".join(s.label for s in specs),
            split=request.split,
            limit=request.limit,
        )
        return run, lambda: self._retrieve(run, evalset, specs)

    def _retrieve(self, run: EvalRun, evalset: EvalSet, specs: list[ConfigSpec]) -> None:
        runner = RetrievalEval(self._settings, self._eval_dari())
        try:
            self.set_progress({"stage": "index", "done": 0, "total": 1})
            result = runner.run(evalset, specs, _IngestProgress(self), _QueryProgress(self))
            self.set_progress({"stage": "report"})
            report.write(result, self.root / run.id)
        finally:
            runner.close()

    def _answers(self, run_id: str, request: AnswerRequest) -> tuple[EvalRun, Callable[[], None]]:
        job = answerruns.prepare(self._dari, self._settings, request)
        _need_plots()
        run = EvalRun(
            run_id,
            "running",
            time.time(),
            kind=ANSWERS,
            golden=str(request.golden),
            collection=request.collection,
            model=request.model or "",
            prompt=request.prompt or "",
            top_k=request.top_k,
            skipped=len(job.golden.skipped),
            limit=request.limit,
        )
        return run, lambda: job.run(self.reports(run), _QueryProgress(self))

    def _work(self, run: EvalRun, task: Callable[[], None]) -> None:
        try:
            task()
            run = dataclasses.replace(run, status="done")
        except DariError as exc:
            run = dataclasses.replace(run, status="failed", error=exc.message, hint=exc.hint)
        except Exception as exc:  # a bug or a broken file: the run says so, the server goes on
            log.exception("eval run %s failed", run.id)
            run = dataclasses.replace(run, status="failed", error=f"{type(exc).__name__}: {exc}")
        finally:
            try:
                self._save(dataclasses.replace(run, finished=time.time()))
            finally:
                self._finish()  # whatever happened, the next run may start

    def _eval_dari(self) -> Dari:
        """A Dari over DARI_HOME/eval that borrows the server's analyzer, embedder and LLM."""
        settings = self._settings
        dari = Dari(settings.scratch(settings.home_dir / "eval"), settings.home_dir)
        dari.analyzer = self._dari.analyzer
        embedder = self._dari.embedder
        # Its own query memo, so the eval's queries do not push the users' out of the server's.
        dari.__dict__["embedder"] = (
            QueryMemo(embedder.inner) if isinstance(embedder, QueryMemo) else embedder
        )
        generator = self._dari.__dict__.get("generator")  # the locked one, loaded on first use
        if generator is not None:
            dari.__dict__["generator"] = generator
        return dari

    def set_progress(self, progress: dict[str, Any]) -> None:
        with self._lock:
            self._progress = progress

    def _finish(self) -> None:
        with self._lock:
            self._running, self._progress = None, {}

    # -- reading -----------------------------------------------------------------------------
    def runs(self, limit: int = 50) -> list[dict[str, Any]]:
        """Runs, newest first, with their summary figures."""
        if not self.root.is_dir():
            return []
        found = [self._read(p.name) for p in self.root.iterdir() if _ID.match(p.name)]
        runs = sorted((r for r in found if r is not None), key=lambda r: (r.started, r.id))
        return [self.view(run) for run in reversed(runs[-limit:])]

    def get(self, run_id: str) -> dict[str, Any]:
        """One run with its whole report.json when it is done."""
        run = self._read(run_id) if _ID.match(run_id) else None
        if run is None:
            raise NotFound(f"no eval run '{run_id}'", "list them: GET /api/evals")
        view = self.view(run)
        data = self._report(run)
        return view | {"report": data}

    def view(self, run: EvalRun) -> dict[str, Any]:
        """A run as the API shows it: its state, progress while running, summary when done."""
        with self._lock:
            running, progress = self._running, dict(self._progress)
        if run.status == "running" and run.id != running:
            run = dataclasses.replace(
                run,
                status="failed",
                error="interrupted: the server stopped before the run finished",
                hint=self._restart_hint(run),
            )
        out: dict[str, Any] = dataclasses.asdict(run)
        out["progress"] = progress if run.status == "running" else None
        data = self._report(run)
        if data is None:
            out["summary"] = None
        else:
            out["summary"] = answerruns.summary(data) if run.kind == ANSWERS else _summary(data)
        done = data is not None and (self.reports(run) / "report.html").is_file()
        out["report_url"] = self.link(run.id) if done else None
        return out

    def _restart_hint(self, run: EvalRun) -> str:
        if run.kind != ANSWERS:
            return "start it again"
        model, prompt = run.model or None, run.prompt or None
        asked = AnswerRequest(Path(run.golden), run.collection, model, prompt, run.top_k, run.limit)
        return answerruns.resume_hint(asked, self.reports(run))

    def reports(self, run: EvalRun) -> Path:
        """The folder of the run's report files."""
        folder = self.root / run.id
        return folder / ANSWERS if run.kind == ANSWERS else folder

    def report_html(self, run_id: str) -> Path:
        run = self._read(run_id) if _ID.match(run_id) else None
        path = self.reports(run) / "report.html" if run is not None else None
        if path is None or not path.is_file():
            raise NotFound(f"eval run '{run_id}' has no HTML report", "list runs: GET /api/evals")
        return path

    # -- comparisons -------------------------------------------------------------------------
    def compare(self, run_a: str, run_b: str) -> dict[str, Any]:
        """Answer run B against answer run A (both done) as `dari eval compare` does, written
        to DARI_HOME/evals/compare-<a>-<b>/; compare.json with a `report_url`."""
        if run_a == run_b:
            raise InputError(f"both runs are {run_a}", "compare two different answer runs")
        a, b = self._comparable(run_a), self._comparable(run_b)
        _need_plots()
        name = f"compare-{run_a}-{run_b}"
        data = answerruns.compare(self.reports(a), self.reports(b), (a.id, b.id), self.root / name)
        return data | {"report_url": self.link(name, "compare.html")}

    def _comparable(self, run_id: str) -> EvalRun:
        run = self._read(run_id) if _ID.match(run_id) else None
        if run is None:
            raise NotFound(f"no eval run '{run_id}'", "list them: GET /api/evals")
        if run.kind != ANSWERS:
            raise InputError(
                f"eval run {run_id} is a {run.kind} run", "only answer runs compare: pick two"
            )
        if run.status != "done":
            with self._lock:
                running = run.id == self._running
            if running:
                raise Conflict(
                    f"eval run {run_id} is still running",
                    f"wait for it to finish: GET /api/evals/{run_id}",
                )
            raise InputError(
                f"eval run {run_id} did not finish: it has no report to compare",
                "compare runs that are done: GET /api/evals lists them",
            )
        return run

    def compare_html(self, name: str) -> Path:
        path = self.root / name / "compare.html"
        if not _COMPARISON.match(name) or not path.is_file():
            raise NotFound(
                f"no comparison '{name}'", "compare two answer runs: POST /api/evals/compare"
            )
        return path

    # -- report links ------------------------------------------------------------------------
    def link(self, name: str, page: str = "report.html") -> str:
        """A link to a run's report (or a comparison's page) that opens it without a key."""
        expires = int(time.time()) + LINK_SECONDS
        return f"/api/evals/{name}/{page}?exp={expires}&sig={self._sign(name, expires)}"

    def link_ok(self, name: str, expires: int, signature: str) -> bool:
        """The link was made by this server for this run (or comparison) and has not expired."""
        fresh = expires >= time.time()
        return fresh and hmac.compare_digest(signature, self._sign(name, expires))

    def _sign(self, name: str, expires: int) -> str:
        message = f"{name}:{expires}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()[:32]

    # -- files -------------------------------------------------------------------------------
    def _save(self, run: EvalRun) -> None:
        folder = self.root / run.id
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / "run.json.tmp"
        tmp.write_text(json.dumps(dataclasses.asdict(run), indent=2, ensure_ascii=False) + "\n")
        tmp.replace(folder / "run.json")

    def _read(self, run_id: str) -> EvalRun | None:
        try:
            raw = json.loads((self.root / run_id / "run.json").read_text(encoding="utf-8"))
            fields = {f.name for f in dataclasses.fields(EvalRun)}
            return EvalRun(**{k: v for k, v in raw.items() if k in fields})
        except (OSError, ValueError, TypeError):
            return None  # not a run, or one written by hand

    def _report(self, run: EvalRun) -> dict[str, Any] | None:
        if run.status != "done":
            return None
        try:
            data: dict[str, Any] = json.loads((self.reports(run) / "report.json").read_text())
        except (OSError, ValueError):
            return None
        return data


def _need_plots() -> None:
    if importlib.util.find_spec("matplotlib") is None:  # the reports' plots
        raise MissingExtra("matplotlib", "eval")


def _summary(data: dict[str, Any]) -> dict[str, Any]:
    """The figures a list of runs shows: the set, and the main metrics per configuration."""
    ds = data.get("dataset", {})
    return {
        "dataset": ds.get("name"),
        "queries": ds.get("queries"),
        "documents": ds.get("documents"),
        "baseline": data.get("baseline"),
        "configs": {
            label: {k: row[k] for k in _SHOWN if k in row}
            for label, row in data.get("configs", {}).items()
        },
    }


class _IngestProgress:
    """The corpus being indexed (files: a JSONL corpus is one)."""

    def __init__(self, runs: EvalRuns) -> None:
        self._runs = runs
        self._done = self._total = 0

    def start(self, total: int) -> None:
        self._done, self._total = 0, total
        self._runs.set_progress({"stage": "index", "done": 0, "total": total})

    def advance(self, result: FileResult) -> None:
        self._done += 1
        self._runs.set_progress({"stage": "index", "done": self._done, "total": self._total})


class _QueryProgress:
    """Queries ranked, per configuration."""

    def __init__(self, runs: EvalRuns) -> None:
        self._runs = runs
        self._label, self._done, self._total = "", 0, 0

    def start(self, label: str, total: int) -> None:
        self._label, self._done, self._total = label, 0, total
        self._runs.set_progress({"stage": label, "done": 0, "total": total})

    def advance(self) -> None:
        self._done += 1
        progress = {"stage": self._label, "done": self._done, "total": self._total}
        self._runs.set_progress(progress)
