"""dari eval compare: paired deltas, items that got worse, gates, reports and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dari.cli.main import app
from dari.errors import InputError
from dari.eval import compare as cmp


def _item(i: int, faith: float | None, f1: float, tags: list[str], lang: str = "en") -> dict:
    return {
        "id": f"q{i}",
        "question": f"question {i}",
        "lang": lang,
        "tags": tags,
        "answer": "…",
        "outcome": "answered",
        "trace_id": f"t{i}",
        "metrics": {"faithfulness": faith, "token_f1": f1, "latency_ms": 100.0 + i},
    }


def _run(folder: Path, items: list[dict]) -> Path:
    folder.mkdir(parents=True)
    report = {"run": {}, "metrics": {}, "by_tag": {}, "by_lang": {}, "items": items}
    (folder / "report.json").write_text(json.dumps(report), encoding="utf-8")
    return folder


@pytest.fixture
def runs(tmp_path: Path) -> tuple[Path, Path]:
    a = [_item(i, 0.9, 0.5, ["fact"] if i % 2 else ["howto"], "ko" if i < 3 else "en")
         for i in range(20)]  # fmt: skip
    b = [
        _item(i, 0.9 - (0.3 if i < 5 else 0.0), 0.6, a[i]["tags"], a[i]["lang"]) for i in range(20)
    ]
    b[7]["metrics"]["faithfulness"] = None  # not scored in B: left out of the pair
    b.append(_item(99, 1.0, 1.0, []))  # only in B
    return _run(tmp_path / "a", a), _run(tmp_path / "b", b)


def test_deltas_pair_items_by_id_and_skip_nulls(runs: tuple[Path, Path]) -> None:
    c = cmp.compare(cmp.load_run(runs[0]), cmp.load_run(runs[1]))
    faith = c.deltas["faithfulness"]
    assert faith.n == 19
    assert faith.delta == pytest.approx(-0.3 * 5 / 19)
    assert faith.ci_low < faith.delta < faith.ci_high < 0
    f1 = c.deltas["token_f1"]
    assert f1.n == 20 and f1.delta == pytest.approx(0.1)
    assert c.paired == 20 and c.only_b == ("q99",)
    assert set(c.by_tag) == {"fact", "howto"}
    assert set(c.by_lang) == {"en", "ko"}


def test_worse_lists_the_largest_drops(runs: tuple[Path, Path]) -> None:
    c = cmp.compare(cmp.load_run(runs[0]), cmp.load_run(runs[1]))
    assert [w.id for w in c.worse["faithfulness"]] == ["q0", "q1", "q2", "q3", "q4"]
    assert c.worse["token_f1"] == []  # every item improved
    assert c.worse["latency_ms"] == []  # unchanged; lower is better there


def test_deltas_are_seeded() -> None:
    a = {"items": [_item(i, i / 10, 0.0, []) for i in range(10)]}
    b = {"items": [_item(i, (i % 3) / 3, 0.0, []) for i in range(10)]}
    assert cmp.compare(a, b).deltas == cmp.compare(a, b).deltas


@pytest.mark.parametrize(
    ("expr", "metric", "stat", "op", "value"),
    [
        ("faithfulness < -0.02", "faithfulness", "delta", "<", -0.02),
        ("faithfulness.ci_high<0", "faithfulness", "ci_high", "<", 0.0),
        (" token_f1.ci_low > .5 ", "token_f1", "ci_low", ">", 0.5),
    ],
)
def test_parse_gate(expr: str, metric: str, stat: str, op: str, value: float) -> None:
    g = cmp.parse_gate(expr, ["faithfulness", "token_f1"])
    assert (g.metric, g.stat, g.op, g.value) == (metric, stat, op, value)


@pytest.mark.parametrize("expr", ["faithfulness <= 0", "faithfulness", "< 0", "faithfulness < x"])
def test_malformed_gate_is_an_input_error(expr: str) -> None:
    with pytest.raises(InputError, match="cannot read the gate"):
        cmp.parse_gate(expr, ["faithfulness"])


def test_unknown_metric_in_a_gate() -> None:
    with pytest.raises(InputError, match="unknown metric 'faithfullness'") as err:
        cmp.parse_gate("faithfullness < 0", ["faithfulness"])
    assert "faithfulness" in err.value.hint


def test_load_run_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"no report\.json"):
        cmp.load_run(tmp_path)
    (tmp_path / "report.json").write_text('{"configs": {}}')
    with pytest.raises(InputError, match="no list of items"):
        cmp.load_run(tmp_path)


def test_cli_gate_fails_and_writes_reports(runs: tuple[Path, Path], tmp_path: Path) -> None:
    out = tmp_path / "cmp"
    result = CliRunner().invoke(
        app,
        ["eval", "compare", str(runs[0]), str(runs[1]), "--output", str(out),
         "--fail-if", "faithfulness < -0.02", "--fail-if", "token_f1 < 0"],
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    assert "gate failed: faithfulness < -0.02" in result.output
    data = json.loads((out / "compare.json").read_text())
    assert [g["failed"] for g in data["gates"]] == [True, False]
    assert data["failed"] is True
    page = (out / "compare.html").read_text()
    assert page.count("<svg") >= 3 and "q0" in page and "FAIL" in page


def test_cli_passing_gates_exit_zero(runs: tuple[Path, Path]) -> None:
    result = CliRunner().invoke(
        app, ["eval", "compare", str(runs[0]), str(runs[1]), "--fail-if", "token_f1.ci_low < 0"]
    )
    assert result.exit_code == 0, result.output


def test_cli_bad_gate_exits_64(runs: tuple[Path, Path]) -> None:
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "dari.cli.main", "eval", "compare", str(runs[0]), str(runs[1]),
         "--fail-if", "faithfulness ~ 0"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 64
    assert "cannot read the gate" in proc.stderr
