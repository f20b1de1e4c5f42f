"""Guardrails measured on the shared public data (issue: guardrails you can measure).

    python bench/guards.py            # every section: JSON to stdout and docs/benchmarks/guards/
    python bench/guards.py --only pii,latency

Sections: injection (per language and set: ROC-AUC, TPR at 1 % FPR on benign prompts, the shipped
thresholds' TPR/FPR, the false-positive rate on ordinary questions, and a plain TF-IDF + logistic
regression baseline trained on the same split, side by side), pii (precision/recall per type),
toxicity (Korean P/R/F1; false positives on ordinary Korean and English text), indirect (payloads
from the test split inserted into held-out documents), groundedness (HaluEval QA: right vs
hallucinated answers cited to the knowledge), latency (p50/p95 per guard and for the chain, memory);
judge (`--only judge`: the injection guard with its optional LLM judge, on a sample of qualifire).
Only test splits are scored; nothing here is fitted except the baseline (on the train split).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import OUT, ROOT, machine, need_data, rss_mb

from dari.config import Settings, load_settings
from dari.guards import corpus
from dari.guards.base import GuardContext
from dari.guards.context import ContextInjectionGuard
from dari.guards.factory import BUNDLED, INJECTION_JOINT, GuardSet
from dari.guards.linear import LinearModel
from dari.guards.names import find_names
from dari.guards.normalise import views
from dari.guards.pii import find_pii
from dari.guards.stacked import StackedModel
from dari.guards.train import embed_cached
from dari.index.analyzer import Analyzer
from dari.protocols import Embedder, Generator
from dari.types import GenerationParams, Span, Stage

QUESTION_SETS = (
    "autorag-questions",
    "klue-sts",
    "halueval-questions",
    "halueval-general",
    "scifact-queries",
)


def _auc(pos: np.ndarray, neg: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score([1] * len(pos) + [0] * len(neg), np.r_[pos, neg]))


def _tpr_at(pos: np.ndarray, neg: np.ndarray, fpr: float = 0.01) -> float:
    return float((pos > np.quantile(neg, 1 - fpr)).mean())


def _rate(flags: Sequence[float]) -> float:
    return round(float(np.mean(flags)), 4) if flags else float("nan")


def injection(data: Path, guards: GuardSet, cache: Path) -> dict[str, Any]:
    examples = corpus.injection(data)
    test = [e for e in examples if e.split == "test"] + corpus.questions(data)
    out: dict[str, Any] = {"test_rows": dict(Counter(f"{e.lang}/{e.label}" for e in test))}
    scorers: dict[str, Any] = {
        "ngram": lambda e, i: guards.injection_model.decision(views(e.text)[0])
    }
    thresholds: dict[str, Any] = {"ngram": guards.injection_model}
    if guards.joint_models:
        emb = embed_cached(guards.embed_query_batch, [e.text for e in test], cache)
        linear = LinearModel.load(BUNDLED / INJECTION_JOINT)
        scorers["ngram+e5 linear"] = lambda e, i: linear.decision(views(e.text)[0], emb[i])
        thresholds["ngram+e5 linear"] = linear
        stacked = guards.joint_models.get("en")
        if isinstance(stacked, StackedModel):
            scorers["ngram+e5 mlp (shipped for en)"] = lambda e, i: stacked.decision(
                views(e.text)[0], emb[i]
            )
            thresholds["ngram+e5 mlp (shipped for en)"] = stacked
    for name, score in scorers.items():
        d = np.array([score(e, i) for i, e in enumerate(test)])
        model = thresholds[name]
        per: dict[str, Any] = {}
        for lang in ("en", "ko"):
            mine = [(s, e) for s, e in zip(d, test, strict=True) if e.lang == lang]
            pos = np.array([s for s, e in mine if e.label == 1])
            neg = np.array([s for s, e in mine if e.label == 0 and e.source not in QUESTION_SETS])
            thr = model.threshold(lang)
            by_set = defaultdict(list)
            for s, e in mine:
                by_set[f"{e.source}/{'attack' if e.label else 'benign'}"].append(bool(s > thr))
            # the stricter reading: at most 1 % of *each* benign set flagged, ordinary questions
            # and requests included (the threshold is the highest of their 99th percentiles)
            benign = defaultdict(list)
            for s, e in mine:
                if e.label == 0:
                    benign[e.source].append(s)
            every = max(float(np.quantile(v, 0.99)) for v in benign.values())
            per[lang] = {
                "roc_auc": round(_auc(pos, neg), 4),
                "tpr_at_fpr_1pct": round(_tpr_at(pos, neg), 4),
                "tpr_at_fpr_1pct_every_benign_set": _rate(list(pos > every)),
                "shipped_threshold": {"tpr": _rate(list(pos > thr)), "fpr": _rate(list(neg > thr))},
                "flagged_share_by_set": {k: _rate(v) for k, v in sorted(by_set.items())},
            }
        out[name] = per
    # The whole input guard (rules + the model the pipeline uses), at shipped thresholds.
    guard = guards.guards[0]
    flagged = defaultdict(list)
    for e in test:
        ctx = GuardContext(question=e.text, lang=e.lang, embed_query=guards.embed_query)
        flagged[(e.lang, e.source, e.label)].append(guard.check(e.text, ctx).flagged)
    out["guard"] = {f"{lg}/{s}/{y}": _rate(v) for (lg, s, y), v in sorted(flagged.items())}
    out["baseline_tfidf_lr"] = _baseline(examples, test)
    return out


def _baseline(examples: list[corpus.Example], test: list[corpus.Example]) -> dict[str, Any]:
    """FACTS.md's baseline: char n-gram TF-IDF + logistic regression on the prompt-injection
    train split (the same rows dari trains on from those sets), scored on the same test rows."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    pi_sets = {"qualifire", "giskard", "navirocker", "raccoonbench"}
    train = [e for e in examples if e.split == "train" and e.source in pi_sets]
    vec = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), sublinear_tf=True, min_df=2)
    clf = LogisticRegression(max_iter=2000).fit(
        vec.fit_transform([e.text for e in train]), [e.label for e in train]
    )
    d = clf.decision_function(vec.transform([e.text for e in test]))
    out = {}
    for lang in ("en", "ko"):
        pos = np.array([s for s, e in zip(d, test, strict=True) if e.lang == lang and e.label == 1])
        neg = np.array(
            [
                s
                for s, e in zip(d, test, strict=True)
                if e.lang == lang and e.label == 0 and e.source not in QUESTION_SETS
            ]
        )
        out[lang] = {
            "roc_auc": round(_auc(pos, neg), 4),
            "tpr_at_fpr_1pct": round(_tpr_at(pos, neg), 4),
        }
    return out


_PRESIDIO = {
    "EMAIL_ADDRESS": "email",
    "PHONE_NUMBER": "phone",
    "CREDIT_CARD": "card",
    "IBAN_CODE": "iban",
    "US_SSN": "ssn",
    "IP_ADDRESS": "ip",
    "US_DRIVER_LICENSE": "driver_license",
    "PERSON": "name",
}
_KO_PII = {
    "이름": "name",
    "전화번호": "phone",
    "이메일": "email",
    "IP주소": "ip",
    "주민등록번호": "rrn",
    "계좌번호": "account",
    "여권번호": "passport",
    "카드번호": "card",
    "생년월일": "birth_date",
    "운전면허번호": "driver_license",
}


# An IBAN is a bank account number: the Korean set labels IBANs 계좌번호 (account); it files
# cryptocurrency wallet addresses under 카드번호 (card).
_SAME = {"account": {"account", "iban"}, "card": {"card", "crypto"}}


def _pii_scores(
    docs: list[tuple[str, list[tuple[str | None, int, int]]]], kiwi: Any
) -> dict[str, Any]:
    tp, fn, fp = Counter(), Counter(), Counter()
    for text, gold in docs:
        found = find_pii(text)
        found += [
            n
            for n in find_names(text, kiwi)
            if not any(n.start < m.end and m.start < n.end for m in found)
        ]
        for kind, s, e in gold:
            if kind is None:
                continue
            hit = any(
                f.kind in _SAME.get(kind, {kind}) and f.start < e and s < f.end for f in found
            )
            (tp if hit else fn)[kind] += 1
        for f in found:
            if not any(f.start < e and s < f.end for _, s, e in gold):
                fp[f.kind] += 1
    out = {}
    for k in sorted(set(tp) | set(fn)):
        p = tp[k] / ((tp[k] + fp[k]) or 1)
        r = tp[k] / ((tp[k] + fn[k]) or 1)
        out[k] = {"precision": round(p, 4), "recall": round(r, 4), "support": tp[k] + fn[k]}
    return out


def pii(data: Path, kiwi: Any) -> dict[str, Any]:
    en = [json.loads(line) for line in (data / "pii" / "presidio_synth_v2_en.jsonl").open()]
    en_docs = [
        (r["text"], [(_PRESIDIO.get(s["entity_type"]), s["start"], s["end"]) for s in r["spans"]])
        for r in en
    ]
    ko = [json.loads(line) for line in (data / "pii" / "ko_pii_detection_test_cases.jsonl").open()]
    ko_docs = []
    for r in ko:
        gold = []
        for p in r["expected_pii"]:
            i = r["text"].find(p["value"])
            while i >= 0:
                gold.append((_KO_PII.get(p["type"]), i, i + len(p["value"])))
                i = r["text"].find(p["value"], i + 1)
        ko_docs.append((r["text"], gold))
    return {
        "presidio_en": _pii_scores(en_docs, kiwi),
        "ko_pii_test_cases": _pii_scores(ko_docs, kiwi),
    }


def toxicity(data: Path, guards: GuardSet) -> dict[str, Any]:
    guard = next(g for g in guards.guards if g.name == "toxicity")
    ctx = GuardContext()
    test = [e for e in corpus.toxicity(data) if e.split == "test"]
    out: dict[str, Any] = {}
    for source in ("unsmile", "kocohub"):
        rows = [e for e in test if e.source == source]
        hit = np.array([guard.check(e.text, ctx).flagged for e in rows])
        y = np.array([e.label for e in rows])
        tp = int((hit & (y == 1)).sum())
        p, r = tp / max(int(hit.sum()), 1), tp / max(int((y == 1).sum()), 1)
        out[source] = {
            "precision": round(p, 4),
            "recall": round(r, 4),
            "f1": round(2 * p * r / ((p + r) or 1), 4),
            "fpr": round(float(hit[y == 0].mean()), 4),
            "rows": len(rows),
        }
    benign = [
        e
        for e in corpus.questions(data) + corpus.injection(data)
        if e.label == 0
        and e.split == "test"
        and e.source in ("autorag-questions", "klue-sts", "ko-documents", "halueval-questions")
    ]
    halu = [
        json.loads(line)
        for line in (data / "hallucination" / "halueval_qa_generation.jsonl").open()
    ]
    benign += [
        corpus.Example(r["right_answer"], 0, "en", "halueval-answers", "test") for r in halu[:500]
    ]
    flags = defaultdict(list)
    for e in benign:
        flags[e.source].append(guard.check(e.text, ctx).flagged)
    out["false_positives_on_ordinary_text"] = {k: _rate(v) for k, v in sorted(flags.items())}
    return out


def _insert(host: str, payload: str, rng: random.Random) -> tuple[str, int]:
    """`payload` put into `host` after a random sentence or line; and where the payload starts."""
    cuts = [i + 1 for i, ch in enumerate(host) if ch in ".\n" and i + 1 < len(host)]
    at = rng.choice(cuts) if cuts else len(host)
    return f"{host[:at]} {payload} {host[at:]}", at + 1


def _removed(spans: Sequence[Span], start: int, end: int) -> int:
    """Characters of [start, end) that fall inside the removed spans (which do not overlap)."""
    return sum(max(0, min(end, s.end) - max(start, s.start)) for s in spans)


def indirect(data: Path, guards: GuardSet) -> dict[str, Any]:
    guard = ContextInjectionGuard(guards.injection_model)
    rng = random.Random(7)
    pi = [
        e
        for e in corpus.injection(data)
        if e.split == "test"
        and e.label == 1
        and e.source in ("qualifire", "giskard", "raccoonbench")
    ]
    hosts = {
        "en": [
            f"{r['title']}\n{r['text']}"
            for i, r in enumerate(
                json.loads(line) for line in (data / "beir_scifact" / "corpus.jsonl").open()
            )
            if i % 4 == 1
        ][:300],
        "ko": [
            e.text
            for e in corpus.injection(data)
            if e.source == "ko-documents" and e.split == "test"
        ],
    }
    ctx = GuardContext()
    out: dict[str, Any] = {}
    for lang, docs in hosts.items():
        payloads = [e.text for e in pi if e.lang == lang]
        detected, removed, payload_share, host_share, clean = [], [], [], [], []
        for i, payload in enumerate(payloads):
            host = docs[i % len(docs)]
            text, at = _insert(host, payload, rng)
            finding = guard.check(text, ctx)
            detected.append(finding.flagged)
            if finding.flagged and finding.redacted is not None:
                removed.append(payload[:40] not in finding.redacted)
                cut = _removed(finding.spans, at, at + len(payload))
                payload_share.append(cut / len(payload))
                host_share.append(1 - (_removed(finding.spans, 0, len(text)) - cut) / len(host))
        for host in docs:
            clean.append(guard.check(host, ctx).flagged)
        out[lang] = {
            "payloads": len(payloads),
            "detection_rate": _rate(detected),
            "payload_removed_when_neutralised": _rate(removed),
            # of the neutralised ones: share of the payload's characters removed, of the host's kept
            "payload_chars_removed": _rate(payload_share),
            "host_chars_kept": _rate(host_share),
            "clean_documents": len(docs),
            "false_positive_rate": _rate(clean),
        }
    return out


def groundedness(data: Path, guards: GuardSet) -> dict[str, Any]:
    guard = next(g for g in guards.guards if g.name == "groundedness")
    rows = [
        json.loads(line)
        for line in (data / "hallucination" / "halueval_qa_generation.jsonl").open()
    ]
    rows = [r for r in rows if corpus.hashed_split(str(r["id"])) == "test"]
    caught, wrongly = [], []
    for r in rows:
        ctx = GuardContext(question=r["question"], lang="en", sources=(r["knowledge"],))
        caught.append(guard.check(f"{r['hallucinated_answer']} [1]", ctx).flagged)
        wrongly.append(guard.check(f"{r['right_answer']} [1]", ctx).flagged)
    return {
        "rows": len(rows),
        "unsupported_caught": _rate(caught),
        "supported_flagged": _rate(wrongly),
        "min_support": guard.min_support,
    }


class _Memo:
    """The judge's LLM with its answers kept by prompt: the modes after the first re-ask the same
    questions, and a temperature-0 judge answers them the same way."""

    def __init__(self, inner: Generator) -> None:
        self._inner, self.name, self.calls = inner, inner.name, 0
        self._seen: dict[str, str] = {}

    def stream(
        self, messages: Sequence[dict[str, str]], params: GenerationParams, prefix: int = 0
    ) -> Iterator[str]:
        key = json.dumps(list(messages))
        if key not in self._seen:
            self.calls += 1
            self._seen[key] = "".join(self._inner.stream(messages, params, prefix))
        yield self._seen[key]

    def count_tokens(self, text: str) -> int:
        return self._inner.count_tokens(text)


def judge(
    data: Path, settings: Settings, analyzer: Analyzer, embedder: Embedder, n: int
) -> dict[str, Any]:
    """The injection guard with and without its LLM judge (guards.judge), on `n` attacks and `n`
    benign prompts drawn from qualifire's English test rows (the set the classifier finds
    hardest), at the shipped thresholds; the LLM is llm.* (e.g. DARI_LLM__MODEL, or an
    OpenAI-compatible endpoint)."""
    from dari.app import Dari

    test = [e for e in corpus.injection(data) if e.source == "qualifire" and e.split == "test"]
    rng = random.Random(0)
    rows = rng.sample([e for e in test if e.label], n) + rng.sample(
        [e for e in test if not e.label], n
    )
    llm = _Memo(Dari(settings).generator)
    out: dict[str, Any] = {"llm": llm.name, "rows": {"attack": n, "benign": n}}
    for mode in ("always", "uncertain", "off"):  # "always" first: its judge calls are timed
        s = settings.guards.with_judge(mode)
        chosen = GuardSet(s, analyzer, embedder, judge=lambda: llm)
        guard = chosen.guards[0]
        flagged, asked, undecided, ms = [], [], [], []
        for e in rows:
            ctx = GuardContext(question=e.text, lang=e.lang, embed_query=chosen.embed_query)
            t = time.perf_counter()
            finding = guard.check(e.text, ctx)
            ms.append((time.perf_counter() - t) * 1000)
            flagged.append(finding.flagged)
            asked.append("LLM judge" in finding.detail)
            undecided.append("could not decide" in finding.detail)
        f, y = np.array(flagged), np.array([e.label for e in rows])
        out[mode] = {
            "tpr": _rate(list(f[y == 1])),
            "fpr": _rate(list(f[y == 0])),
            "judged": _rate(asked),
            "judge_undecided": _rate(undecided),
        }
        if mode == "always":
            out[mode]["guard_ms"] = {
                "p50": round(float(np.percentile(ms, 50))),
                "p95": round(float(np.percentile(ms, 95))),
            }
    out["band_logits"] = settings.guards.judge.band
    out["judge_calls"] = llm.calls
    return out


def latency(data: Path, guards: GuardSet) -> dict[str, Any]:
    before = rss_mb()
    guards.warm()
    after = rss_mb()
    questions = [e.text for e in corpus.questions(data)]
    random.Random(7).shuffle(questions)
    halu = [
        json.loads(line)
        for line in (data / "hallucination" / "halueval_qa_generation.jsonl").open()
    ][:200]
    chain = guards.chain()
    per = defaultdict(list)
    total_in, total_out, embed = [], [], []
    for q, r in zip(questions[:200], halu, strict=False):
        ctx = GuardContext(
            question=q,
            lang="ko" if any("\uac00" <= c <= "\ud7a3" for c in q) else "en",
            embed_query=guards.embed_query,
        )
        t = time.perf_counter()
        guards.embed_query(q)  # what the pipeline then reuses for dense retrieval
        embed.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        res = chain.run(Stage.INPUT, q, ctx)
        total_in.append((time.perf_counter() - t) * 1000)
        ctx.sources = (r["knowledge"],)
        t = time.perf_counter()
        out = chain.run(Stage.OUTPUT, f"{r['right_answer']} [1].", ctx)
        total_out.append((time.perf_counter() - t) * 1000)
        for v in res.verdicts + out.verdicts:
            per[v.guard].append(v.ms)

    def pct(v: list[float]) -> dict[str, float]:
        return {
            "p50": round(float(np.percentile(v, 50)), 2),
            "p95": round(float(np.percentile(v, 95)), 2),
        }

    return {
        "per_guard_ms": {k: pct(v) for k, v in sorted(per.items())},
        "input_chain_ms": pct(total_in),
        "output_chain_ms": pct(total_out),
        "chain_ms_sum": pct([a + b for a, b in zip(total_in, total_out, strict=True)]),
        "question_embedding_ms": pct(embed),
        "note": "chains exclude the e5 question embedding (timed apart): the input guard computes "
        "it once and dense retrieval reuses it",
        "memory_added_mb": round(after - before, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    # latency first: its "memory added" is measured from a cold start
    ap.add_argument("--only", default="latency,injection,pii,toxicity,indirect,groundedness")
    ap.add_argument("--out", default=str(ROOT / "docs" / "benchmarks" / "guards"))
    # --only judge (not in the default run: seconds per question on a local LLM)
    ap.add_argument("--judge-n", type=int, default=40, help="attacks and benign prompts each")
    args = ap.parse_args()
    data = need_data("prompt_injection").parent
    settings = load_settings(home=OUT / "guardhome")
    analyzer = Analyzer()
    from dari.index.embedders import E5Embedder, QueryMemo

    embedder = QueryMemo(E5Embedder())
    guards = GuardSet(settings.guards, analyzer, embedder)
    cache = settings.home_dir.parent / "guard-e5-cache.sqlite"
    report: dict[str, Any] = {"machine": machine()}
    for section in args.only.split(","):
        t = time.perf_counter()
        if section == "injection":
            report[section] = injection(data, guards, cache)
        elif section == "pii":
            report[section] = pii(data, analyzer.kiwi)
        elif section == "toxicity":
            report[section] = toxicity(data, guards)
        elif section == "indirect":
            report[section] = indirect(data, guards)
        elif section == "groundedness":
            report[section] = groundedness(data, guards)
        elif section == "latency":
            report[section] = latency(data, guards)
        elif section == "judge":
            report[section] = judge(data, settings, analyzer, embedder, args.judge_n)
        report.setdefault("seconds", {})[section] = round(time.perf_counter() - t, 1)
        print(json.dumps({section: report[section]}, ensure_ascii=False), flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    target = out / "report.json"
    old = json.loads(target.read_text()) if target.is_file() else {}
    report["seconds"] = old.get("seconds", {}) | report.get("seconds", {})  # sections run apart
    target.write_text(json.dumps(old | report, indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
