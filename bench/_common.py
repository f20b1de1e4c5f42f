"""Helpers shared by the benchmark scripts: data paths, percentiles, JSON output."""

from __future__ import annotations

import json
import os
import resource
import statistics
import sys
from pathlib import Path
from typing import Any

from rich.progress import Progress

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("DARI_SHARED_DATA", ROOT.parent / "shared" / "data"))
OUT = ROOT / "bench" / "out"


def need_data(*parts: str) -> Path:
    path = DATA.joinpath(*parts)
    if not path.exists():
        sys.exit(
            f"benchmark data not found: {path} (set DARI_SHARED_DATA to the shared data folder)"
        )
    return path


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    i = min(len(s) - 1, max(0, round(q / 100 * (len(s) - 1))))
    return s[i]


def summary(values: list[float]) -> dict[str, float]:
    return {
        "p50": round(pct(values, 50), 3),
        "p95": round(pct(values, 95), 3),
        "mean": round(statistics.fmean(values), 3) if values else float("nan"),
    }


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mb() -> float:
    """Current resident memory (Linux), for "memory added" figures."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def emit(name: str, figures: dict[str, Any]) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    text = json.dumps(figures, ensure_ascii=False, indent=2)
    (OUT / f"{name}.json").write_text(text)
    print(text)


def machine() -> dict[str, Any]:
    """What makes these numbers noisy: cores, load when the run started, BLAS thread settings."""
    env = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
    return {
        "cpus": os.cpu_count(),
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
        "thread_env": {k: os.environ[k] for k in env if k in os.environ},
    }


class Advance:
    """Moves a rich task one step per file, as dari's ingest progress protocol asks."""

    def __init__(self, bar: Progress, task: Any) -> None:
        self._bar, self._task = bar, task

    def start(self, total: int) -> None:
        self._bar.update(self._task, total=total)

    def advance(self, _result: object) -> None:
        self._bar.advance(self._task)
