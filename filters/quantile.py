"""An exact, deterministic top-k cut over scores too many for one machine.

Pass 1 sums a fixed 65,536-bin histogram of the scores (a commutative sum, so any runner
partitioning gives the same result) and finds the bin holding the k-th best score. Pass 2
collects only that bin's (score, key) pairs and sorts them. Ranking is by score, then key, so
ties are broken the same way every time and exactly k samples are kept."""

from __future__ import annotations

import math
from typing import Iterable, NamedTuple, Optional

import numpy as np

BINS = 1 << 16


def bin_of(score: float) -> int:
    return min(BINS - 1, max(0, int((score + 1.0) * 0.5 * BINS)))


class Target(NamedTuple):
    bin: int  # the bin holding the k-th best score
    rank_in_bin: int  # its rank (1-based) among that bin's scores, best first
    k: int
    n: int


class Cutoff(NamedTuple):
    score: float
    key: str


def keep_count(fraction: float, n: int) -> int:
    return min(n, math.ceil(fraction * n - 1e-9))


def find_target(hist: np.ndarray, fraction: float) -> Optional[Target]:
    n = int(hist.sum())
    k = keep_count(fraction, n)
    if k <= 0:
        return None
    above = 0
    for b in range(BINS - 1, -1, -1):
        c = int(hist[b])
        if above + c >= k:
            return Target(b, k - above, k, n)
        above += c
    raise AssertionError("histogram count mismatch")


def exact_cutoff(candidates: Iterable[tuple[float, str]], target: Target) -> Cutoff:
    ranked = sorted(candidates, key=lambda sk: (-sk[0], sk[1]))
    score, key = ranked[target.rank_in_bin - 1]
    return Cutoff(score, key)


def keeps(score: float, key: str, cutoff: Optional[Cutoff]) -> bool:
    """True when (score, key) ranks at or above the cutoff; with no cutoff nothing is kept."""
    if cutoff is None:
        return False
    return score > cutoff.score or (score == cutoff.score and key <= cutoff.key)
