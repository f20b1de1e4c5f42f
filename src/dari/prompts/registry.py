"""The prompt registry: which versions exist (built in and stored) and which one answers a
question. An A/B split, when set, wins; else the default that `dari prompt set-default` stored;
else the `llm.prompt` setting. The split and the default are read on every question, so a
change applies to running processes too.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import Any

from dari.errors import ConfigError, InputError
from dari.generate.prompt import PromptTemplate
from dari.index.store import Store
from dari.prompts.builtin import builtin_versions
from dari.prompts.files import read_parts
from dari.prompts.parts import PromptVersion
from dari.prompts.refs import DEFAULT_PROMPT, parse_ref
from dari.prompts.split import Split, parse_arms
from dari.prompts.store import PromptStore

_LIST = "dari prompt list shows them all"


class PromptRegistry:
    """Built-in versions (files in the package) and stored ones (your edits), by name@version."""

    def __init__(self, store: Store, setting: str = DEFAULT_PROMPT, pinned: bool = False) -> None:
        """`setting`: the `llm.prompt` setting, the default when none was set in the store;
        `pinned`: it answers every question, whatever default or split the store holds (an
        eval of one version must measure that version)."""
        self._stored = PromptStore(store)
        self._setting = setting
        self._pinned = pinned

    @cached_property
    def _builtin(self) -> dict[str, PromptVersion]:
        return builtin_versions()

    @cached_property
    def _builtin_names(self) -> frozenset[str]:
        return frozenset(v.name for v in self._builtin.values())

    def versions(self) -> list[PromptVersion]:
        """Every version, by name then number."""
        found = [*self._builtin.values(), *self._stored.versions()]
        return sorted(found, key=lambda v: (v.name, v.version))

    def get(self, text: str) -> PromptVersion:
        """The version `text` names: `name@version`, a bare name (its default version: the
        default's when the default has that name, else the latest) or an old `grounded-v2`."""
        ref = parse_ref(text)
        number = ref.version if ref.version is not None else self._default_number(ref.name)
        found = self._builtin.get(f"{ref.name}@{number}")
        if found is None and ref.name not in self._builtin_names:  # built-in names are dari's
            found = self._stored.get(ref.name, number)
        if found is None:
            known = [v.ref for v in self.versions()]
            listing = ", ".join(known[:12]) + (", …" if len(known) > 12 else "")
            raise ConfigError(f"unknown prompt '{text}' (known: {listing})", _LIST)
        return found

    def _default_number(self, name: str) -> int:
        chosen = self._stored.choice("default")
        ref = parse_ref(chosen) if chosen is not None else None
        if ref is not None and ref.name == name:
            return ref.version or 0
        if name in self._builtin_names:
            return max(v.version for v in self._builtin.values() if v.name == name)
        return self._stored.latest(name)

    def default(self) -> tuple[PromptVersion, str]:
        """The default version and what chose it: "set-default" (the store), "llm.prompt", or
        "pinned" (llm.pin_prompt)."""
        if self._pinned:
            return self.get(self._setting), "pinned"
        chosen = self._stored.choice("default")
        if chosen is not None:
            return self.get(chosen), "set-default"
        return self.get(self._setting), "llm.prompt"

    def split(self) -> Split | None:
        if self._pinned:
            return None
        stored = self._stored.choice("split")
        return Split.from_json(stored) if stored is not None else None

    def choose(self, key: str) -> PromptVersion:
        """The version that answers for `key` (a user or session id, else the question): its
        arm of the split when one is set, else the default. The same key, the same version."""
        split = self.split()
        return self.get(split.choose(key)) if split is not None else self.default()[0]

    def template(self, lang: str, key: str) -> PromptTemplate:
        """The template of `choose(key)` for a question in `lang`."""
        return self.choose(key).template(lang)

    def check(self) -> None:
        """Fail early, with a ConfigError, when the default or an arm of the split is unknown."""
        self.default()
        split = self.split()
        for ref, _ in split.arms if split else ():
            self.get(ref)

    def create(
        self, name: str, text: str, where: str, base: str | None = None, description: str = ""
    ) -> PromptVersion:
        """Save the parts in TOML `text` (parts it leaves out come from the version `base`) as
        `name`'s next version, or as exactly `name@N`; returns the saved version."""
        ref = parse_ref(name)
        if ref.name in self._builtin_names:
            raise InputError(
                f"'{ref.name}' is a built-in prompt name; its versions come with dari releases",
                f"give yours a name of its own: dari prompt create my-{ref.name} "
                f"--from {base or ref.name} --file F",
            )
        origin = self.get(base) if base else None
        parts, described = read_parts(text, where, origin.parts if origin else None)
        version = PromptVersion(
            ref.name,
            ref.version or 1,
            parts,
            "store",
            description or described,
            origin.ref if origin else "",
        )
        return self._stored.save(version) if ref.version else self._stored.add(version)

    def set_default(self, text: str | None) -> PromptVersion | None:
        """Store the default version (exact, even when given as a bare name); None clears it, and
        the `llm.prompt` setting applies again."""
        version = self.get(text) if text is not None else None
        self._stored.set_choice("default", version.ref if version else None)
        return version

    def set_split(self, args: Sequence[str]) -> Split:
        """Store an A/B split from `["grounded@2=90", "mine@1=10"]`, bare names made exact."""
        arms = tuple((self.get(ref).ref, share) for ref, share in parse_arms(args))
        if len({ref for ref, _ in arms}) < len(arms):
            raise InputError(
                f"the split names one version twice: {', '.join(r for r, _ in arms)}",
                "give each version once",
            )
        split = Split(arms)
        self._stored.set_choice("split", split.to_json())
        return split

    def clear_split(self) -> None:
        self._stored.set_choice("split", None)


def describe(v: PromptVersion, default: str = "", split: Split | None = None) -> dict[str, Any]:
    """A version as `dari prompt list --json` and GET /api/prompts list it (`created`: Unix
    time, None for built-ins)."""
    return {
        "prompt": v.ref,
        "source": v.source,
        "languages": list(v.langs),
        "created": v.created,
        "default": v.ref == default,
        "share": split.share(v.ref) if split else None,
        "based_on": v.based_on,
        "description": v.description,
    }
