"""Settings: defaults, dari.toml (via DARI_CONFIG), DARI_* overrides, and readable errors."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from dari.config import ChunkingSettings, Settings, load_settings
from dari.errors import ConfigError

WriteToml = Callable[[str], Path]


@pytest.fixture
def toml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> WriteToml:
    """Write a dari.toml and point DARI_CONFIG at it."""
    path = tmp_path / "dari.toml"
    monkeypatch.setenv("DARI_CONFIG", str(path))

    def write(text: str) -> Path:
        path.write_text(text, encoding="utf-8")
        return path

    return write


def config_error(fragment: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert fragment in info.value.message
    assert info.value.hint
    assert info.value.exit_code == 78
    return info.value


# --- defaults -------------------------------------------------------------------------------


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DARI_HOME")
    s = load_settings()
    assert s.home == Path("~/.dari")
    assert s.home_dir == Path.home() / ".dari"
    assert s.embedder.name == "e5"
    assert (s.chunking.chunk_tokens, s.chunking.chunk_overlap, s.chunking.section_tokens) == (
        128,
        24,
        384,
    )
    assert (s.retrieval.top_k, s.retrieval.candidates, s.retrieval.rrf_k) == (3, 40, 60)
    assert (s.retrieval.bm25_weight, s.retrieval.dense_weight) == (1.0, 1.0)
    assert (s.retrieval.min_coverage, s.retrieval.min_dense) == (0.25, None)
    assert (s.llm.backend, s.llm.model, s.llm.base_url) == ("llama", "default", "")
    assert s.llm.api_key.get_secret_value() == ""
    assert (s.llm.temperature, s.llm.top_p, s.llm.max_tokens, s.llm.seed) == (0.1, 0.9, 256, 7)
    assert s.ingest.text_fields == ("text", "contents", "content", "body")


def test_missing_config_file_means_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DARI_CONFIG", str(tmp_path / "nowhere" / "dari.toml"))
    assert load_settings().retrieval.top_k == 3


def test_dari_home_env(tmp_path: Path) -> None:
    assert load_settings().home == tmp_path / "home"  # set by the autouse fixture


# --- dari.toml ------------------------------------------------------------------------------


def test_toml_sets_nested_values(toml: WriteToml, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DARI_HOME")  # or it would win over the TOML's home
    toml(
        """
home = "/srv/dari"

[llm]
backend = "openai"
model = "qwen2.5"
base_url = "http://localhost:8000/v1"
api_key = "sk-toml"

[retrieval]
top_k = 5
dense_weight = 0.0

[chunking]
chunk_tokens = 64
chunk_overlap = 8

[ingest]
text_fields = ["body", "본문"]
"""
    )
    s = load_settings()
    assert s.home == Path("/srv/dari")
    assert (s.llm.backend, s.llm.model, s.llm.base_url) == (
        "openai",
        "qwen2.5",
        "http://localhost:8000/v1",
    )
    assert s.llm.api_key.get_secret_value() == "sk-toml"
    assert (s.retrieval.top_k, s.retrieval.dense_weight) == (5, 0.0)
    assert s.retrieval.candidates == 40  # untouched values keep their defaults
    assert (s.chunking.chunk_tokens, s.chunking.chunk_overlap) == (64, 8)
    assert s.chunking.section_tokens == 384
    assert s.ingest.text_fields == ("body", "본문")


def test_env_overrides_toml(toml: WriteToml, monkeypatch: pytest.MonkeyPatch) -> None:
    toml('[llm]\nmodel = "small"\ntemperature = 0.5\n')
    monkeypatch.setenv("DARI_LLM__MODEL", "ci")
    s = load_settings()
    assert s.llm.model == "ci"
    assert s.llm.temperature == 0.5  # the rest of the TOML table still applies


def test_env_sets_nested_values_without_toml(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DARI_RETRIEVAL__TOP_K", "7")
    monkeypatch.setenv("DARI_LLM__API_KEY", "sk-env")
    s = load_settings()
    assert s.retrieval.top_k == 7
    assert s.llm.api_key.get_secret_value() == "sk-env"


def test_arguments_override_env_and_toml(toml: WriteToml, monkeypatch: pytest.MonkeyPatch) -> None:
    toml("[retrieval]\ntop_k = 5\n")
    monkeypatch.setenv("DARI_RETRIEVAL__TOP_K", "7")
    assert load_settings(home=Path("/explicit")).home == Path("/explicit")
    assert Settings(retrieval={"top_k": 9}).retrieval.top_k == 9  # type: ignore[arg-type]


def test_api_key_is_not_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DARI_LLM__API_KEY", "sk-secret-value")
    s = load_settings()
    assert "sk-secret-value" not in repr(s)
    assert "sk-secret-value" not in s.model_dump_json()


# --- errors ---------------------------------------------------------------------------------


def test_invalid_env_value_names_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DARI_RETRIEVAL__TOP_K", "0")
    error = config_error("retrieval.top_k")
    assert error.message.startswith("invalid setting 'retrieval.top_k'")
    assert "DARI_" in error.hint and "dari.toml" in error.hint
    assert isinstance(error.__cause__, Exception)


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ('[retrieval]\ntop_k = "many"\n', "retrieval.top_k"),
        ('[embedder]\nname = "bert"\n', "embedder.name"),
        ("[llm]\ntemperature = 3.0\n", "llm.temperature"),
        ("[chunking]\nchunk_tokens = 8\n", "chunking.chunk_tokens"),
    ],
)
def test_invalid_toml_value_names_the_setting(toml: WriteToml, text: str, where: str) -> None:
    toml(text)
    config_error(f"'{where}'")


def test_malformed_toml(toml: WriteToml) -> None:
    toml("[llm\nmodel = \n")
    error = config_error("cannot read settings")
    assert "dari.toml" in error.hint


def test_unknown_top_level_key(toml: WriteToml) -> None:
    toml("colour = 'blue'\n")
    config_error("'colour'")


def test_misspelled_table_is_unknown_key(toml: WriteToml) -> None:
    toml("[retreival]\ntop_k = 5\n")
    config_error("'retreival'")


@pytest.mark.parametrize("text", ["[retrieval]\ntopk = 5\n", '[llm]\nmodl = "small"\n'])
def test_unknown_nested_key(toml: WriteToml, text: str) -> None:
    toml(text)
    with pytest.raises(ConfigError):
        load_settings()


def test_unknown_nested_env_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DARI_LLM__MODL", "small")
    with pytest.raises(ConfigError):
        load_settings()


def test_fulltext_in_postgres_needs_the_postgres_store(toml: WriteToml) -> None:
    toml('[store]\nfulltext = "postgres"\n')
    config_error('needs backend = "postgres"')


# --- nested models used on their own ---------------------------------------------------------


def test_chunking_bounds() -> None:
    assert ChunkingSettings(chunk_tokens=16).chunk_tokens == 16
    with pytest.raises(ValueError):
        ChunkingSettings(chunk_tokens=15)


@pytest.mark.parametrize("lang", ["en", "ko"])
def test_the_documented_defaults_are_the_real_ones(lang: str) -> None:
    import re
    import tomllib

    page = (Path(__file__).parents[1] / "docs" / lang / "configuration.md").read_text()
    block = re.search(r"```toml\n(.*?)```", page, re.S)
    assert block, "configuration.md has no toml block"
    documented = tomllib.loads(block.group(1))
    real = Settings().model_dump(mode="json", exclude={"home"})

    def same(doc: dict, actual: dict, where: str) -> None:
        for key, value in doc.items():  # keys left out of the page (secrets) are not compared
            if isinstance(value, dict):
                same(value, actual[key], f"{where}{key}.")
            else:
                assert actual[key] == value, f"{where}{key}"

    same({k: v for k, v in documented.items() if isinstance(v, dict)}, real, "")


def test_scratch_settings_never_reach_the_shared_engines(tmp_path: Path) -> None:
    shared = Settings(
        home=tmp_path / "home",
        store={"backend": "postgres", "postgres_url": "postgresql://db/dari"},  # type: ignore[arg-type]
        vectors={"backend": "qdrant", "url": "http://qdrant:6333"},  # type: ignore[arg-type]
        cache={"backend": "redis", "redis_url": "redis://r/1", "ttl_hours": 2},  # type: ignore[arg-type]
        retrieval={"top_k": 7},  # type: ignore[arg-type]
    )
    scratch = shared.scratch(tmp_path / "eval")
    assert scratch.home == tmp_path / "eval"
    assert (scratch.store.backend, scratch.vectors.backend) == ("sqlite", "numpy")
    assert (scratch.cache.backend, scratch.cache.ttl_hours) == ("sqlite", 2)
    assert scratch.retrieval.top_k == 7  # what is being measured stays as configured
    assert shared.store.backend == "postgres"  # the original is untouched
