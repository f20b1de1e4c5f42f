"""Generation speed with the default model, dari side by side with plain llama-cpp-python.

Measures, on dari's own docs collection and real 3-source prompts:
- prompt-processing and generation tok/s of the same messages through bare llama.cpp and through
  dari's generator (KV cache cleared before each, alternating, medians) and their ratio;
- dari in process with the fixed prefix cached: time to first token, full answer time, and dari's
  own overhead (everything outside the model call);
- a cold `dari ask` process: wall time to the answer and its peak RSS.

    python bench/generation.py [--model default] [--reps 3]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import OUT, ROOT, emit, summary

from dari.app import Dari
from dari.config import Settings
from dari.generate.prompt import template_for
from dari.text import detect_lang
from dari.types import GenerationParams

QUESTIONS = [
    "What is the default chunk size?",
    "Which file formats can dari ingest?",
    "What happens if dari is killed during ingest?",
    "dari의 기본 임베딩 모델은 무엇인가요?",
    "수집 중에 dari가 강제 종료되면 어떻게 되나요?",
    "청크 크기의 기본값은 몇 토큰인가요?",
]


def timed_stream(pieces_iter) -> tuple[float, float, int]:
    """(seconds to first piece, total seconds, pieces) of a stream."""
    t0 = time.perf_counter()
    first = None
    n = 0
    for _ in pieces_iter:
        if first is None:
            first = time.perf_counter() - t0
        n += 1
    return first or 0.0, time.perf_counter() - t0, n


def side_by_side(dari: Dari, collection: str, reps: int) -> dict:
    gen = dari.generator
    llm = gen.llm  # type: ignore[attr-defined]
    params = GenerationParams(temperature=0.0, top_p=1.0, max_tokens=64, seed=1)
    rows = {"llama_cpp": {"pp": [], "tg": []}, "dari": {"pp": [], "tg": []}}
    prompt_tokens = []
    for q in QUESTIONS:
        hits = dari.pipeline(collection)._retriever.retrieve(q).hits
        messages = template_for(detect_lang(q)).messages(q, hits)
        for _ in range(reps):
            for who in ("llama_cpp", "dari"):
                llm.reset()
                if who == "llama_cpp":
                    stream = llm.create_chat_completion(
                        messages=messages,
                        stream=True,
                        temperature=0.0,
                        top_p=1.0,
                        max_tokens=64,
                        seed=1,
                    )
                    # count text pieces only, as dari's stream yields (no role/finish chunks)
                    content = (c for c in stream if c["choices"][0]["delta"].get("content"))
                    first, total, n = timed_stream(content)
                else:
                    first, total, n = timed_stream(gen.stream(messages, params, prefix=0))
                n_prompt = int(llm.n_tokens) - n
                rows[who]["pp"].append(n_prompt / first)
                rows[who]["tg"].append((n - 1) / max(1e-9, total - first))
        prompt_tokens.append(n_prompt)
    med = {w: {k: statistics.median(v) for k, v in r.items()} for w, r in rows.items()}
    return {
        "prompt_tokens": summary([float(x) for x in prompt_tokens]),
        "llama_cpp_tok_s": {k: round(v, 1) for k, v in med["llama_cpp"].items()},
        "dari_tok_s": {k: round(v, 1) for k, v in med["dari"].items()},
        "ratio_prompt": round(med["dari"]["pp"] / med["llama_cpp"]["pp"], 3),
        "ratio_generation": round(med["dari"]["tg"] / med["llama_cpp"]["tg"], 3),
    }


def warm_answers(dari: Dari, collection: str) -> dict:
    first, total, overhead, answers = [], [], [], []
    for q in QUESTIONS:
        a = dari.ask(q, collection)
        tm = a.trace.timings_ms
        if "generate" not in tm:
            continue
        first.append(tm["retrieve"] + tm["first_token"])
        total.append(tm["total"])
        overhead.append(tm["total"] - tm["generate"] - tm.get("load_model", 0))
        answers.append(
            {
                "q": q,
                "answer": a.text,
                "citations": [c.n for c in a.citations],
                "ms": round(tm["total"]),
            }
        )
    return {
        "first_token_ms": summary(first),
        "answer_ms": summary(total),
        "dari_overhead_ms": summary(overhead),
        "answers": answers,
    }


def cold_cli(home: Path, collection: str, model: str) -> dict:
    env = {**os.environ, "DARI_HOME": str(home), "DARI_LLM__MODEL": model}
    walls = []
    for q in (QUESTIONS[0], QUESTIONS[3]):
        t = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-m", "dari.cli.main", "ask", q, "-c", collection, "--json"],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        walls.append(time.perf_counter() - t)
        json.loads(out.stdout)
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"wall_s": [round(w, 2) for w in walls], "peak_rss_mb": round(rss)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="default")
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    home = OUT / "generation-home"
    dari = Dari(Settings(home=home, llm={"model": args.model}))
    collection = "dari-docs"
    if collection in dari.store.collection_names():
        dari.delete_collection(collection)  # it may have been embedded with another embedder
    dari.ingest([ROOT / "docs"], collection)
    figures = {"model": args.model, "cpu_count": os.cpu_count()}
    t = time.perf_counter()
    _ = dari.generator.llm  # type: ignore[attr-defined]
    figures["model_load_s"] = round(time.perf_counter() - t, 2)
    figures["side_by_side"] = side_by_side(dari, collection, args.reps)
    dari.generator.llm.reset()  # type: ignore[attr-defined]
    figures["warm_in_process"] = warm_answers(dari, collection)
    dari.close()
    figures["cold_cli"] = cold_cli(home, collection, args.model)
    emit("generation", figures)


if __name__ == "__main__":
    main()
