"""The A/B split: prompt versions with whole-percent shares summing to 100, and a stable arm
for every key (a user or session id, else the question), so a user stays in one arm."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass

from dari.errors import InputError

_USAGE = "e.g. dari prompt split grounded@2=90 mine@1=10"


@dataclass(frozen=True)
class Split:
    arms: tuple[tuple[str, int], ...]  # (name@version, percent), in the order given

    def choose(self, key: str) -> str:
        """The arm of `key`: its hash picks a bucket 0-99 and the arms cover the buckets in
        order, so changing the shares moves only the keys in the buckets that change hands."""
        bucket = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") % 100
        for ref, share in self.arms:
            if bucket < share:
                return ref
            bucket -= share
        raise AssertionError("the shares of a split sum to 100")

    def share(self, ref: str) -> int:
        return dict(self.arms).get(ref, 0)

    def to_json(self) -> str:
        return json.dumps([list(arm) for arm in self.arms])

    @staticmethod
    def from_json(text: str) -> Split:
        return Split(tuple((str(ref), int(share)) for ref, share in json.loads(text)))


def parse_arms(args: Sequence[str]) -> list[tuple[str, int]]:
    """`["grounded@2=90", "mine@1=10"]` → [("grounded@2", 90), ("mine@1", 10)], checked: whole
    percents, each version once, two arms or more, summing to 100."""
    arms: list[tuple[str, int]] = []
    for arg in args:
        ref, _, share = arg.rpartition("=")
        if not ref or not share.strip().isdigit() or not 1 <= int(share) <= 100:
            raise InputError(f"'{arg}' is not VERSION=PERCENT, a whole percent from 1", _USAGE)
        arms.append((ref.strip(), int(share)))
    if len(arms) < 2:
        raise InputError("a split needs two versions or more", "for one: dari prompt set-default")
    if len({ref for ref, _ in arms}) < len(arms):
        raise InputError("a version appears twice in the split", _USAGE)
    total = sum(share for _, share in arms)
    if total != 100:
        raise InputError(f"the shares of the split sum to {total}, not 100", _USAGE)
    return arms
