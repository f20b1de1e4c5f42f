"""Prompt references: `name@version`, a bare `name` (its default version), the old `name-vN`."""

from __future__ import annotations

import re
from dataclasses import dataclass

from dari.errors import ConfigError

DEFAULT_PROMPT = "grounded@2"
# The version names dari used before the registry; settings and scripts may still hold them.
LEGACY = {"grounded-v1": "grounded@1", "grounded-v2": "grounded@2"}
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
_REF = re.compile(r"^(?P<name>[^@\s]+)(?:@(?P<version>[0-9]+))?$")


@dataclass(frozen=True)
class Ref:
    """A parsed reference; `version` None means the name's default version."""

    name: str
    version: int | None = None

    def __str__(self) -> str:
        return self.name if self.version is None else f"{self.name}@{self.version}"


def parse_ref(text: str) -> Ref:
    """`grounded@2` → Ref("grounded", 2); `grounded` → Ref("grounded"); `grounded-v2` too."""
    text = LEGACY.get(text.strip(), text.strip())
    found = _REF.match(text)
    version = int(found["version"]) if found and found["version"] else None
    if found is None or version == 0:
        raise ConfigError(
            f"'{text}' is not a prompt reference",
            "write NAME@VERSION (grounded@2, versions count from 1) or NAME for its default",
        )
    return Ref(check_name(found["name"]), version)


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise ConfigError(
            f"invalid prompt name '{name}'",
            "use 1-64 lower-case letters, digits, '.', '_' or '-', starting with a letter or digit",
        )
    return name
