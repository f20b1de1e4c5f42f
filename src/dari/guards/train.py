"""Train dari's guard classifiers from the public labelled data (`dari guard train`).

Logistic regression (scikit-learn, the `guard-train` extra; inference needs numpy only) over the
hashed n-grams of guards.features. Deterministic: fixed folds and solver, no sampling. The decision
threshold per language is chosen on out-of-fold scores of the *training* rows, for a target
false-positive rate on benign ones; the test split is only ever scored, never fitted or tuned on.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from dari.errors import MissingExtra
from dari.guards import features
from dari.guards.corpus import Example
from dari.guards.linear import LinearModel
from dari.guards.normalise import views
from dari.guards.stacked import StackedModel, forward

FOLDS = 5


def _matrix(texts: Sequence[str], progress: Callable[[int], None] | None = None) -> Any:
    from scipy import sparse

    rows, cols, vals = [], [], []
    for i, text in enumerate(texts):
        ids, tf = features.counts(views(text)[0])
        rows.append(np.full(len(ids), i))
        cols.append(ids)
        vals.append(tf)
        if progress:
            progress(1)
    return sparse.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(len(texts), features.DIM),
    )


def _idf(tf: Any) -> np.ndarray:
    df = np.bincount(tf.indices, minlength=features.DIM)
    return (np.log((1 + tf.shape[0]) / (1 + df)) + 1).astype(np.float32)


def _weighted(tf: Any, idf: np.ndarray) -> Any:
    from sklearn.preprocessing import normalize

    out = tf.multiply(idf).tocsr()
    return normalize(out)


def _thresholds(
    train: Sequence[Example],
    oof: np.ndarray,
    target_fpr: float | Mapping[str, float] | None,
    calibrate_on: Mapping[str, set[str]] | None,
) -> dict[str, float]:
    """Per-language decision thresholds from out-of-fold scores of the training rows."""
    y = np.array([e.label for e in train])
    langs = np.array([e.lang for e in train])
    sources = np.array([e.source for e in train])
    thresholds = {}
    for lang in sorted(set(langs)):
        mine = langs == lang
        if target_fpr is not None:
            rate = target_fpr if isinstance(target_fpr, float) else target_fpr[lang]
            benign = mine & (y == 0)
            if calibrate_on and lang in calibrate_on:
                benign &= np.isin(sources, sorted(calibrate_on[lang]))
            thresholds[lang] = float(np.quantile(oof[benign], 1 - rate))
        else:
            thresholds[lang] = _best_f1(oof[mine], y[mine])
    thresholds["default"] = max(thresholds.values())
    return thresholds


def train_linear(
    examples: Sequence[Example],
    *,
    c: float = 8.0,
    target_fpr: float | Mapping[str, float] | None = 0.01,
    calibrate_on: Mapping[str, set[str]] | None = None,
    embeddings: np.ndarray | None = None,
    card: dict[str, Any] | None = None,
    progress: Callable[[int], None] | None = None,
    oof_out: list[np.ndarray] | None = None,
) -> LinearModel:
    """Fit on the `train` rows of `examples`; thresholds per language at `target_fpr` (one rate,
    or one per language) on the out-of-fold scores of benign rows — only those from the sources
    in `calibrate_on[lang]` when given — or (None) where F1 is highest.

    `embeddings` (one unit-length row per example, the embedder named in `card`) adds a dense
    block learnt jointly with the n-grams."""
    try:
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import StratifiedKFold
    except ImportError as exc:
        raise MissingExtra("scikit-learn", "guard-train") from exc

    from scipy import sparse

    keep = np.array([e.split == "train" for e in examples])
    train = [e for e in examples if e.split == "train"]
    y = np.array([e.label for e in train])
    tf = _matrix([e.text for e in train], progress)
    idf = _idf(tf)
    x = _weighted(tf, idf)
    if embeddings is not None:
        x = sparse.hstack([x, sparse.csr_matrix(embeddings[keep])]).tocsr()

    def fit(rows: np.ndarray) -> Any:
        return LogisticRegression(C=c, max_iter=5000, solver="liblinear").fit(x[rows], y[rows])

    # Out-of-fold decisions: what the model would say about training rows it has not seen.
    oof = np.zeros(len(train))
    strata = np.array([f"{e.lang}{e.label}" for e in train])
    for fit_rows, held in StratifiedKFold(FOLDS, shuffle=True, random_state=7).split(x, strata):
        oof[held] = fit(fit_rows).decision_function(x[held])
    model = fit(np.arange(len(train)))
    if oof_out is not None:  # for a model stacked on this one
        oof_out.append(oof)
    thresholds = _thresholds(train, oof, target_fpr, calibrate_on)
    langs = np.array([e.lang for e in train])
    counts = {
        f"{lang}/{label}": int(((langs == lang) & (y == label)).sum())
        for lang in sorted(set(langs))
        for label in (0, 1)
    }
    coef = model.coef_[0].astype(np.float32)
    return LinearModel(
        weights=coef[: features.DIM],
        idf=idf,
        bias=float(model.intercept_[0]),
        thresholds=thresholds,
        card=(card or {})
        | {
            "c": c,
            "target_fpr": target_fpr,
            "calibrated_on": {k: sorted(v) for k, v in (calibrate_on or {}).items()},
            "train_rows": counts,
        },
        embedding_weights=coef[features.DIM :] if embeddings is not None else None,
    )


def train_stacked(
    examples: Sequence[Example],
    embeddings: np.ndarray,
    ngram: LinearModel,
    ngram_oof: np.ndarray,
    *,
    target_fpr: float | Mapping[str, float] = 0.01,
    calibrate_on: Mapping[str, set[str]] | None = None,
    card: dict[str, Any] | None = None,
) -> StackedModel:
    """A two-layer ReLU head over [embedding, n-gram score]: the n-gram score of a training row
    is its out-of-fold one (what the n-gram model says about rows it has not seen), so the head
    learns how far to trust it; one head per fold, thresholds from their out-of-fold scores."""
    from sklearn.model_selection import StratifiedKFold
    from sklearn.neural_network import MLPClassifier

    keep = np.array([e.split == "train" for e in examples])
    train = [e for e in examples if e.split == "train"]
    y = np.array([e.label for e in train])
    x = np.stack(
        [StackedModel.inputs(v, d) for v, d in zip(embeddings[keep], ngram_oof, strict=True)]
    )

    def fit(rows: np.ndarray) -> Any:
        net = MLPClassifier(
            hidden_layer_sizes=(512, 64),
            alpha=1e-3,
            max_iter=300,
            early_stopping=True,
            random_state=7,
        )
        return net.fit(x[rows], y[rows])

    def logit(net: Any, rows: np.ndarray) -> np.ndarray:
        return forward(list(zip(net.coefs_, net.intercepts_, strict=True)), x[rows])

    # The shipped model is the mean of the fold networks: one network refitted on every row stops
    # early at another point, and its scores drift off the scale of the out-of-fold ones the
    # threshold is chosen on (measured: 4 % of benign test prompts flagged at a 1 % target).
    oof = np.zeros(len(train))
    nets = []
    strata = np.array([f"{e.lang}{e.label}" for e in train])
    for fit_rows, held in StratifiedKFold(FOLDS, shuffle=True, random_state=7).split(x, strata):
        net = fit(fit_rows)
        oof[held] = logit(net, held)
        nets.append(
            tuple(
                (w.astype(np.float32), b.astype(np.float32))
                for w, b in zip(net.coefs_, net.intercepts_, strict=True)
            )
        )
    thresholds = _thresholds(train, oof, target_fpr, calibrate_on)
    about = {"hidden": [512, 64], "alpha": 1e-3, "target_fpr": target_fpr}
    about["calibrated_on"] = {k: sorted(v) for k, v in (calibrate_on or {}).items()}
    return StackedModel(ngram, tuple(nets), thresholds, (card or {}) | about)


def _best_f1(scores: np.ndarray, y: np.ndarray) -> float:
    order = np.argsort(-scores)
    tp = np.cumsum(y[order])
    f1 = 2 * tp / (np.arange(1, len(y) + 1) + y.sum())
    best = int(np.argmax(f1))
    return float(scores[order][best] - 1e-9)


EMBED_CHARS = 1000  # e5 reads 512 tokens at most; a prompt's opening says what it wants


def embed_cached(
    embed: Callable[[list[str]], np.ndarray],
    texts: Sequence[str],
    cache: Path,
    batch: int = 16,
    progress: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Query embeddings of `texts`, kept in a SQLite file by sha256 so a re-run (or an interrupted
    one) embeds only what is new."""
    cache.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(cache)
    try:
        db.execute("CREATE TABLE IF NOT EXISTS e(key TEXT PRIMARY KEY, vec BLOB NOT NULL)")
        keys = [hashlib.sha256(t[:EMBED_CHARS].encode()).hexdigest() for t in texts]
        have: dict[str, bytes] = {}
        for i in range(0, len(keys), 500):
            chunk = keys[i : i + 500]
            marks = ",".join("?" * len(chunk))
            have.update(db.execute(f"SELECT key, vec FROM e WHERE key IN ({marks})", chunk))
        missing = sorted({k: t for k, t in zip(keys, texts, strict=True) if k not in have}.items())
        if progress and have:
            progress(len(texts) - len(missing))
        for i in range(0, len(missing), batch):
            part = missing[i : i + batch]
            vecs = np.asarray(embed([t[:EMBED_CHARS] for _, t in part]), dtype=np.float32)
            rows = [(k, v.tobytes()) for (k, _), v in zip(part, vecs, strict=True)]
            db.executemany("INSERT OR REPLACE INTO e VALUES (?, ?)", rows)
            db.commit()
            have.update(rows)
            if progress:
                progress(len(part))
        return np.stack([np.frombuffer(have[k], dtype=np.float32) for k in keys])
    finally:
        db.close()


def _test_figures(
    model: LinearModel | StackedModel, examples: Sequence[Example], emb: np.ndarray | None
) -> dict[str, Any]:
    """Recall and false-positive rate per language on the test split, at the shipped thresholds."""
    out: dict[str, Any] = {}
    rows = [(i, e) for i, e in enumerate(examples) if e.split == "test"]
    for lang in sorted({e.lang for _, e in rows}):
        mine = [(i, e) for i, e in rows if e.lang == lang]
        hit = [
            model.decision(views(e.text)[0], emb[i] if emb is not None else None)
            > model.threshold(lang)
            for i, e in mine
        ]
        pos = [h for h, (_, e) in zip(hit, mine, strict=True) if e.label == 1]
        neg = [h for h, (_, e) in zip(hit, mine, strict=True) if e.label == 0]
        tp, fp = sum(pos), sum(neg)
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / len(pos) if pos else 0.0
        out[lang] = {
            "recall": round(recall, 4),
            "fpr": round(fp / len(neg), 4) if neg else None,
            "precision": round(precision, 4),
            "f1": round(2 * precision * recall / (precision + recall), 4) if tp else 0.0,
            "positives": len(pos),
            "negatives": len(neg),
        }
    return out


# Injection thresholds are set on benign *requests* (what users type), not on comments or
# documents: English on qualifire's benign prompts at 1 % flagged; Korean on the training half of
# KLUE-STS at 0.2 %, because the Korean benign rows are few and the cost of refusing ordinary
# Korean questions is the one users feel (bench/guards.py reports both languages' questions).
INJECTION_FPR = {"en": 0.01, "ko": 0.002}
INJECTION_CALIBRATION = {"en": {"qualifire"}, "ko": {"klue-sts"}}
# Sets only the neural head learns from. Ordinary English requests ("Write a poem…") teach it that
# an imperative is not an attack, which it can tell apart by the e5 embedding; the n-gram models
# (the head's n-gram input, and alone the context guard's detector) measured worse with them:
# harmful requests and payloads in documents share their form (bench/guards.py: English payloads
# found 60 % → 48 %).
HEAD_ONLY = frozenset({"halueval-general"})


class _Bar(Protocol):
    def start(self, label: str, total: int) -> None: ...
    def advance(self) -> None: ...


def train_all(
    data: Path, output: Path, cache_dir: Path, with_embeddings: bool = True, bar: _Bar | None = None
) -> dict[str, dict[str, Any]]:
    """Train and save the bundled guard models from `data`; returns their cards."""
    from dari.guards import corpus
    from dari.guards.factory import INJECTION, INJECTION_JOINT, INJECTION_STACKED, TOXICITY

    output.mkdir(parents=True, exist_ok=True)

    def tick(label: str, total: int) -> Callable[[int], None]:
        if bar is not None:
            bar.start(label, total)

        def advance(n: int) -> None:
            for _ in range(n if bar is not None else 0):
                bar.advance()  # type: ignore[union-attr]

        return advance

    cards: dict[str, dict[str, Any]] = {}
    everything = corpus.injection(data)
    injection = [e for e in everything if e.source not in HEAD_ONLY]
    sources = sorted({f"{e.source}/{e.split}" for e in injection})
    jobs: list[tuple[str, Sequence[Example], np.ndarray | None, Any, dict[str, Any]]] = [
        (
            INJECTION,
            injection,
            None,
            INJECTION_FPR,
            {"task": "prompt injection / jailbreak", "sources": sources},
        )
    ]
    if with_embeddings:
        from dari.index.embedders import E5Embedder

        e5 = E5Embedder()
        texts = [e.text for e in everything]
        emb_all = embed_cached(
            e5.embed_queries,
            texts,
            cache_dir / "e5-cache.sqlite",
            progress=tick("embed (e5)", len(texts)),
        )
        emb = emb_all[[e.source not in HEAD_ONLY for e in everything]]
        jobs.append(
            (
                INJECTION_JOINT,
                injection,
                emb,
                INJECTION_FPR,
                {"task": "prompt injection / jailbreak", "sources": sources, "embedder": e5.name},
            )
        )
    toxicity = corpus.toxicity(data)
    jobs.append(
        (
            TOXICITY,
            toxicity,
            None,
            0.05,  # best-F1 would flag ~45 % of ordinary Korean text (bench/guards.py)
            {
                "task": "toxicity (hate, insults, profanity), Korean",
                "sources": sorted({f"{e.source}/{e.split}" for e in toxicity}),
            },
        )
    )
    models: dict[str, LinearModel] = {}
    ngram_oof: list[np.ndarray] = []
    for name, examples, vectors, fpr, card in jobs:
        train_rows = sum(e.split == "train" for e in examples)
        model = train_linear(
            examples,
            target_fpr=fpr,
            calibrate_on=INJECTION_CALIBRATION if name != TOXICITY else None,
            embeddings=vectors,
            card={"name": name} | card,
            progress=tick(f"train {name}", train_rows),
            oof_out=ngram_oof if name == INJECTION else None,
        )
        model.card["test"] = _test_figures(model, examples, vectors)
        model.save(output / name)
        cards[name], models[name] = model.card, model
    if with_embeddings:
        tick(f"train {INJECTION_STACKED} (5 folds)", 1)
        # the n-gram input of a training row: out-of-fold where the n-gram model trained on it,
        # the model's own score on the head-only rows (it never saw them)
        oof = iter(ngram_oof[0])
        ngram = models[INJECTION]
        head_input = np.array(
            [
                ngram.decision(views(e.text)[0]) if e.source in HEAD_ONLY else next(oof)
                for e in everything
                if e.split == "train"
            ]
        )
        stacked = train_stacked(
            everything,
            emb_all,
            ngram,
            head_input,
            target_fpr=INJECTION_FPR,
            calibrate_on=INJECTION_CALIBRATION,
            card={
                "name": INJECTION_STACKED,
                "task": "prompt injection / jailbreak",
                "sources": sorted({f"{e.source}/{e.split}" for e in everything}),
                "embedder": e5.name,
                "ngram_model": INJECTION,
                # Served for English only: on Korean the joint linear model measured better
                # (TPR at 1 % FPR 1.00 vs 0.99, ordinary questions refused 0.9 % vs 6.1 %).
                "languages": ["en"],
            },
        )
        stacked.card["test"] = _test_figures(stacked, everything, emb_all)
        stacked.save(output / INJECTION_STACKED)
        cards[INJECTION_STACKED] = stacked.card
    return cards
