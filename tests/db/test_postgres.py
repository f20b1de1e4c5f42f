"""The PostgreSQL engine against a real server: statement translation, errors that name the
server, recovery after a restart without reopening, and migrations that take turns."""

from __future__ import annotations

import threading

import pytest
from tests.conftest import free_port

from dari.db.local_postgres import LocalPostgres
from dari.db.postgres import PostgresDatabase, describe, translate
from dari.db.schema import MIGRATIONS, migrate
from dari.errors import BackendError, StoreError
from dari.index.store import Store

pytest.importorskip("psycopg", reason="the postgres extra is not installed")


def test_translate_parameters_outside_quotes() -> None:
    assert translate("SELECT a FROM t WHERE b = ? AND c = ?") == (
        "SELECT a FROM t WHERE b = %s AND c = %s"
    )
    assert translate("SELECT ':x ? %' || 'it''s ?', :name, body::jsonb") == (
        "SELECT ':x ? %' || 'it''s ?', %(name)s, body::jsonb"
    )
    assert translate("SELECT 1 WHERE a LIKE ?") == "SELECT 1 WHERE a LIKE %s"
    assert translate("SELECT 5 % 2 WHERE a = ?") == "SELECT 5 %% 2 WHERE a = %s"
    assert translate("SELECT 5 % 2", with_args=False) == "SELECT 5 % 2"


def test_describe_never_shows_the_password() -> None:
    where = describe("postgresql://dari:s3cret@db.internal:6543/prod")
    assert where == "db.internal:6543/prod"
    assert "s3cret" not in where


def test_percent_and_json_helpers_on_a_real_server(postgres_url: str) -> None:
    db = PostgresDatabase(postgres_url, pool_size=2)
    try:
        assert db.rows("SELECT 7 % 3") == [(1,)]
        assert db.rows("SELECT 7 % ?::int", (4,)) == [(3,)]
        body = '{"query": "연차 휴가는?", "tags": ["hr", "eng"]}'
        assert db.rows(f"SELECT {db.json_text('?::text', 'query')}", (body,)) == [("연차 휴가는?",)]
        has = db.json_array_has_any("?::text", 2)
        assert db.rows(f"SELECT {has}", ('["hr", "eng"]', "x", "eng")) == [(True,)]
        assert db.rows(f"SELECT {has}", ('["hr"]', "x", "y")) == [(False,)]
    finally:
        db.close()


def test_a_failed_statement_is_a_store_error_and_rolls_back(postgres_url: str) -> None:
    store = Store(PostgresDatabase(postgres_url, pool_size=2))
    try:
        store.ensure_collection("docs", "fake", 4)
        with (
            pytest.raises(StoreError, match="refused a statement") as err,
            store.transaction() as db,
        ):
            db.execute("UPDATE collections SET generation = 99 WHERE name = 'docs'")
            db.execute("INSERT INTO sections VALUES ('s', 'no-doc', 0, 't', '', NULL, '')")
        assert "PostgreSQL at 127.0.0.1" in err.value.message
        assert store.generation("docs") == 0  # nothing half-written
    finally:
        store.close()


def test_migrations_are_recorded_once_and_rerun_as_a_no_op(postgres_url: str) -> None:
    db = PostgresDatabase(postgres_url, pool_size=2)
    try:
        assert migrate(db) == [m.version for m in MIGRATIONS]
        assert migrate(db) == []
        versions = db.rows("SELECT version FROM schema_migrations ORDER BY version")
        assert [v for (v,) in versions] == [m.version for m in MIGRATIONS]
    finally:
        db.close()


def test_processes_starting_at_once_migrate_once(postgres_url: str) -> None:
    """Four openers race on an empty database: the advisory lock makes them take turns."""
    applied: list[list[int]] = []
    errors: list[BaseException] = []

    def open_one() -> None:
        try:
            db = PostgresDatabase(postgres_url, pool_size=1)
            applied.append(migrate(db))
            db.close()
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(v for versions in applied for v in versions) == [m.version for m in MIGRATIONS]


def test_prompt_versions_are_immutable_on_postgres(postgres_url: str) -> None:
    store = Store(PostgresDatabase(postgres_url, pool_size=2))
    try:
        with store.transaction() as db:
            db.execute(
                "INSERT INTO prompt_versions VALUES ('p', 1, '{}', 'sha', '', '', 0)",
            )
        with pytest.raises(StoreError, match="immutable"), store.transaction() as db:
            db.execute("UPDATE prompt_versions SET parts = 'x'")
        with pytest.raises(StoreError, match="immutable"), store.transaction() as db:
            db.execute("DELETE FROM prompt_versions")
        assert store.rows("SELECT parts FROM prompt_versions") == [("{}",)]
    finally:
        store.close()


def test_a_server_that_is_down_is_a_backend_error_then_recovers(
    own_postgres: LocalPostgres,
) -> None:
    store = Store(PostgresDatabase(own_postgres.url, pool_size=2, timeout_s=2))
    try:
        store.ensure_collection("docs", "fake", 4)
        own_postgres.stop()
        with pytest.raises(BackendError) as err:
            store.collection("docs")
        assert f"PostgreSQL at 127.0.0.1:{own_postgres.port}/postgres is unreachable" in (
            err.value.message
        )
        assert "retry" in err.value.hint
        assert err.value.http_status == 503
        own_postgres.start()
        assert store.collection("docs").name == "docs"  # the same object, reconnected
    finally:
        store.close()


def test_a_server_that_never_answers_fails_at_open_with_a_clear_error() -> None:
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"
    with pytest.raises(BackendError, match="is unreachable"):
        PostgresDatabase(url, pool_size=1, timeout_s=1)


def test_an_empty_url_says_which_setting_to_fill() -> None:
    with pytest.raises(StoreError) as err:
        PostgresDatabase("")
    assert "DARI_STORE__POSTGRES_URL" in err.value.hint
