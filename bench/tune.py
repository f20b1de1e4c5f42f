"""What `dari tune` costs and what it buys, on the CI model (SmolLM2-135M-Instruct) and 2 CPU cores.

1. Rows: SFT and DPO rows built from HaluEval QA (`dari tune examples`: dari's prompt, the
   knowledge as source [1], right answer as target / right vs hallucinated as the pair, 10 % of
   rows whose source lacks the answer → "I don't know").
2. SFT and DPO runs through the CLI (`dari tune sft|dpo --json`), each in its own process so its
   peak memory is its own: s/step, tokens/s, peak RSS, held-out loss before → after.
3. `dari tune eval`: base vs tuned answers on the held-out rows (greedy, llama.cpp with the
   adapter GGUF), token F1 / ROUGE-L / abstention / prefers-chosen deltas with 95 % intervals.

Prints JSON and writes docs/benchmarks/tune/report.json.

    python bench/tune.py [--rows 240] [--sft-steps 50] [--dpo-steps 30] [--eval-n 24]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import DATA, ROOT, machine, need_data

DARI = [sys.executable, "-m", "dari.cli.main"]


def dari(*args: str) -> dict:
    t = time.perf_counter()
    done = subprocess.run([*DARI, *args, "--json"], capture_output=True, text=True, check=False)
    if done.returncode not in (0, 1):  # 1: tune eval flagged the tuned model (still a result)
        sys.exit(f"dari {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    out = json.loads(done.stdout)
    out["_wall_s"] = round(time.perf_counter() - t, 1)
    out["_exit"] = done.returncode
    return out


def train(method: str, data: Path, run: Path, steps: int, lr: float) -> dict:
    m = dari(
        "tune", method, "--data", str(data), "--base", "ci", "--output", str(run),
        "--max-steps", str(steps), "--lr", str(lr), "--force",
    )  # fmt: skip
    before, after = m["held_out"]["before"], m["held_out"]["after"]
    return {
        "rows": m["data"],
        "steps": m["steps"],
        "batch_size": m["recipe"]["train"]["batch_size"],
        "learning_rate": lr,
        "precision": m["precision"],
        "s_per_step": round(m["train_seconds"] / max(1, m["steps"]), 2),
        "tokens_per_s": m["tokens_per_s"],
        "train_seconds": m["train_seconds"],
        "wall_seconds": m["_wall_s"],
        "peak_rss_mb": m["peak_rss_mb"],
        "held_out_before": before,
        "held_out_after": after,
        "adapter_gguf_mb": round((run / m["adapter_gguf"]).stat().st_size / 1e6, 1),
    }


def compare(run: Path, out: Path, n: int) -> dict:
    c = dari("tune", "eval", str(run), "--output", str(out), "-n", str(n))
    return {
        "items": c["paired_items"],
        "flagged": c["failed"],
        "metrics": c["metrics"],
        "wall_seconds": c["_wall_s"],
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=240)
    ap.add_argument("--sft-steps", type=int, default=50)
    ap.add_argument("--dpo-steps", type=int, default=30)
    ap.add_argument("--sft-lr", type=float, default=2e-4)
    ap.add_argument("--dpo-lr", type=float, default=5e-4)
    ap.add_argument("--eval-n", type=int, default=24)
    args = ap.parse_args()
    need_data("hallucination", "halueval_qa_generation.jsonl")
    report: dict = {"machine": machine(), "model": "ci (SmolLM2-135M-Instruct Q4_1)"}
    with tempfile.TemporaryDirectory(prefix="dari-bench-tune-") as tmp:
        work = Path(tmp)
        for method, steps, lr in (
            ("sft", args.sft_steps, args.sft_lr),
            ("dpo", args.dpo_steps, args.dpo_lr),
        ):
            rows = work / f"{method}.jsonl"
            subprocess.run(
                [*DARI, "tune", "examples", "--set", "halueval", "--data-dir", str(DATA),
                 "--format", method, "-n", str(args.rows), "--output", str(rows)],
                check=True, capture_output=True,
            )  # fmt: skip
            run = work / f"run-{method}"
            report[method] = train(method, rows, run, steps, lr)
            report[method]["vs_base"] = compare(run, work / f"eval-{method}", args.eval_n)
            print(json.dumps({method: report[method]}, indent=1), file=sys.stderr)
    out = ROOT / "docs" / "benchmarks" / "tune"
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
