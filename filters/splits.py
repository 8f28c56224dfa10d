"""Train/val/test assignment from the sample key alone.

A key's split is a pure function of (key, seed, fractions): it does not depend on input
order, shard size, worker count or which other samples survive, so reruns and reshards
never move a sample between splits. The key's SHA-256 is read as a number in [0, 2**64)
and compared against the cumulative fractions, so each split gets its fraction of any
large set of keys.
"""

from __future__ import annotations

import hashlib

SPLIT_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789_-")


def parse_splits(spec: str) -> tuple[tuple[str, float], ...]:
    """`"train=0.98,val=0.01,test=0.01"` -> (("train", 0.98), ("val", 0.01), ("test", 0.01)).
    Fractions must be positive and add up to 1; names are lowercase words."""
    parts = [p.strip() for p in spec.split(",") if p.strip()]
    if not parts:
        raise ValueError("splits: expected NAME=FRACTION[,NAME=FRACTION...], e.g. train=0.98,val=0.01,test=0.01")
    splits = []
    for part in parts:
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep or not name or not set(name) <= SPLIT_NAME_CHARS:
            raise ValueError(f"splits: {part!r} is not NAME=FRACTION (names use a-z, 0-9, _ and -)")
        try:
            fraction = float(value)
        except ValueError:
            raise ValueError(f"splits: {part!r}: {value.strip()!r} is not a number") from None
        if not 0 < fraction <= 1:
            raise ValueError(f"splits: {part!r}: a fraction must be in (0, 1]")
        splits.append((name, fraction))
    names = [n for n, _ in splits]
    if len(set(names)) != len(names):
        raise ValueError(f"splits: a name appears twice in {spec!r}")
    total = sum(f for _, f in splits)
    if abs(total - 1) > 1e-9:
        raise ValueError(f"splits: fractions add up to {total:g}, not 1")
    return tuple(splits)


class SplitAssigner:
    """Callable key -> split name for one (spec, seed)."""

    def __init__(self, spec: str, seed: str = ""):
        self.splits = parse_splits(spec)
        self.seed = seed.encode("utf-8")
        bounds, cumulative = [], 0.0
        for _, fraction in self.splits:
            cumulative += fraction
            bounds.append(min(round(cumulative * 2**64), 2**64))
        bounds[-1] = 2**64  # rounding never leaves a key without a split
        self.bounds = bounds

    def __call__(self, key: str) -> str:
        digest = hashlib.sha256(self.seed + b"\0" + key.encode("utf-8", "surrogatepass")).digest()
        point = int.from_bytes(digest[:8], "big")
        for (name, _), bound in zip(self.splits, self.bounds):
            if point < bound:
                return name
        raise AssertionError("unreachable: the last bound is 2**64")
