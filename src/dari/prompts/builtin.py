"""The prompt versions shipped with dari: `defaults/NAME@VERSION.toml` in this package."""

from __future__ import annotations

from importlib import resources

from dari.errors import ConfigError
from dari.prompts.files import read_parts
from dari.prompts.parts import PromptVersion
from dari.prompts.refs import parse_ref


def builtin_versions() -> dict[str, PromptVersion]:
    """Every built-in version by `name@version`, read from the package's files on each call
    (callers keep the result: the registry once per instance)."""
    found: dict[str, PromptVersion] = {}
    for entry in resources.files("dari.prompts").joinpath("defaults").iterdir():
        if not entry.name.endswith(".toml"):
            continue
        where = f"the built-in prompt {entry.name}"
        ref = parse_ref(entry.name.removesuffix(".toml"))
        if ref.version is None:
            raise ConfigError(f"{where} has no @VERSION in its name", "reinstall dari")
        text = entry.read_text(encoding="utf-8")
        parts, description = read_parts(text, where, error=ConfigError)
        found[str(ref)] = PromptVersion(ref.name, ref.version, parts, "builtin", description)
    return found
