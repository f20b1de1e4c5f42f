"""The audit log: append-only, hash-chained, and free of the personal data it is about."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from dari.errors import StoreError
from dari.guards.audit import AuditLog, StoreAuditLog
from dari.index.store import Store
from dari.types import Action, Span, Stage, Verdict

V = Verdict(
    "pii", Stage.INPUT, True, Action.REDACT, 1.0, "phone:kr", "phone x1", (Span("phone", 5, 18),)
)


def test_lines_chain_and_verify(tmp_path: Path):
    log = AuditLog(tmp_path / "audit" / "audit.jsonl")
    log.append("t1", "hr", [V, V])
    log.append("t2", "hr", [V])
    assert log.verify() == (3, None)
    records = list(log.records())
    assert [r["trace"] for r in records] == ["t1", "t1", "t2"]
    assert records[0]["spans"] == [{"kind": "phone", "start": 5, "end": 18}]


def test_an_edited_line_breaks_the_chain_there(tmp_path: Path):
    log = AuditLog(tmp_path / "audit.jsonl")
    for i in range(4):
        log.append(f"t{i}", "c", [V])
    lines = log.path.read_text().splitlines()
    row = json.loads(lines[1])
    row["action"] = "allow"
    lines[1] = json.dumps(row, sort_keys=True, ensure_ascii=False)
    log.path.write_text("\n".join(lines) + "\n")
    assert log.verify() == (3, 3)  # line 2 was changed: line 3's link no longer matches


def test_deleting_a_line_is_detected(tmp_path: Path):
    log = AuditLog(tmp_path / "audit.jsonl")
    for i in range(3):
        log.append(f"t{i}", "c", [V])
    lines = log.path.read_text().splitlines()
    log.path.write_text("\n".join([lines[0], lines[2]]) + "\n")
    assert log.verify()[1] == 2


def test_no_raw_text_is_written(tmp_path: Path):
    log = AuditLog(tmp_path / "audit.jsonl")
    log.append("t", "c", [V])
    (record,) = [json.loads(line) for line in log.path.read_text().splitlines()]
    # the verdict's fields (kinds and offsets, never the text) and the chain's, nothing else
    verdict = {f.name for f in dataclasses.fields(Verdict)}
    assert set(record) == verdict | {"ts", "trace", "collection", "prev"}
    assert record["spans"] == [{"kind": "phone", "start": 5, "end": 18}]


# --- the same chain in a PostgreSQL store (store.backend = "postgres") -----------------------


@pytest.fixture
def pg_store(postgres_url: str) -> Iterator[Store]:
    from dari.db.postgres import PostgresDatabase

    store = Store(PostgresDatabase(postgres_url, pool_size=4))
    yield store
    store.close()


def test_replicas_append_to_one_chain_in_the_store(pg_store: Store, postgres_url: str) -> None:
    from dari.db.postgres import PostgresDatabase

    other = Store(PostgresDatabase(postgres_url, pool_size=4))  # a second replica
    logs = [StoreAuditLog(pg_store), StoreAuditLog(other)]
    try:
        with ThreadPoolExecutor(4) as pool:  # appends from both at once take turns
            list(pool.map(lambda i: logs[i % 2].append(f"t{i}", "hr", [V, V]), range(20)))
        assert logs[0].verify() == (40, None)
        assert sorted({r["trace"] for r in logs[1].records()}) == sorted(f"t{i}" for i in range(20))
        assert "PostgreSQL at 127.0.0.1" in logs[0].where
    finally:
        other.close()


def test_the_store_refuses_to_edit_or_delete_audit_lines(pg_store: Store) -> None:
    log = StoreAuditLog(pg_store)
    for i in range(3):
        log.append(f"t{i}", "c", [V])
    for sql in ("UPDATE audit SET line = '{}'", "DELETE FROM audit WHERE seq = 2"):
        with pytest.raises(StoreError, match="append-only"), pg_store.transaction() as db:
            db.execute(sql)
    with pg_store.transaction() as db:  # someone with the rights to switch the trigger off
        db.execute("ALTER TABLE audit DISABLE TRIGGER audit_append_only")
        (line,) = db.execute("SELECT line FROM audit WHERE seq = 2").fetchone()
        row = json.loads(line) | {"action": "allow"}
        db.execute("UPDATE audit SET line = ? WHERE seq = 2", (json.dumps(row, sort_keys=True),))
    assert log.verify() == (3, 3)  # line 2 was changed: line 3's link no longer matches


def test_dari_audits_into_the_store_when_it_is_postgres(tmp_path: Path, postgres_url: str) -> None:
    from dari.app import Dari
    from dari.config import Settings

    settings = Settings(
        home=tmp_path / "home",
        store={"backend": "postgres", "postgres_url": postgres_url},  # type: ignore[arg-type]
    )
    dari = Dari(settings)
    try:
        assert isinstance(dari.audit, StoreAuditLog)
        dari.audit.append("t", "c", [V])
        assert [r["trace"] for r in dari.audit.records()] == ["t"]
        assert not (tmp_path / "home" / "audit").exists()
    finally:
        dari.close()
