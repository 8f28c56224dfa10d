"""Fixed-bin histograms of per-sample measures, mergeable by adding counts.

Each shard histograms its own rows with the same bins, so the run's distribution is the
sum of the shards' and no step ever holds every value. Values outside the range are
counted in `below`/`above` (and in count, min, max and mean), never dropped.
"""

from __future__ import annotations

import numpy as np

# name -> (first edge, last edge, bins, unit)
BINS: dict[str, tuple[float, float, int, str]] = {
    "caption_chars": (0, 400, 40, "characters"),
    "caption_words": (0, 80, 40, "words"),
    "original_width": (0, 4096, 32, "pixels"),
    "original_height": (0, 4096, 32, "pixels"),
    "image_bytes": (0, 262_144, 32, "bytes"),
    "clip_score": (-1.0, 1.0, 100, "cosine"),  # kept samples
    "clip_score_scored": (-1.0, 1.0, 100, "cosine"),  # every scored sample, kept or dropped by score
    "duration_s": (0, 60, 60, "seconds"),
}


def edges(name: str) -> list[float]:
    lo, hi, bins, _ = BINS[name]
    return [round(float(e), 6) for e in np.linspace(lo, hi, bins + 1)]


def histogram(name: str, values) -> dict:
    """The histogram of `values` (None and NaN skipped) in BINS[name]'s bins."""
    v = np.asarray([x for x in values if x is not None], dtype=np.float64)
    v = v[~np.isnan(v)]
    lo, hi, bins, unit = BINS[name]
    inside = v[(v >= lo) & (v <= hi)]
    counts, _ = np.histogram(inside, bins=bins, range=(lo, hi))
    return {
        "unit": unit,
        "edges": edges(name),
        "counts": counts.astype(int).tolist(),
        "below": int((v < lo).sum()),
        "above": int((v > hi).sum()),
        "count": int(v.size),
        "sum": float(v.sum()),
        "min": float(v.min()) if v.size else None,
        "max": float(v.max()) if v.size else None,
    }


def merge(parts: list[dict]) -> dict:
    """Sum histograms of one measure (same bins); adds `mean`."""
    total = dict(parts[0], counts=list(parts[0]["counts"]))
    for h in parts[1:]:
        total["counts"] = [a + b for a, b in zip(total["counts"], h["counts"])]
        for k in ("below", "above", "count", "sum"):
            total[k] += h[k]
        total["min"] = _pick(min, total["min"], h["min"])
        total["max"] = _pick(max, total["max"], h["max"])
    total["mean"] = total["sum"] / total["count"] if total["count"] else None
    return total


def merge_named(parts: list[dict]) -> dict:
    """Sum {measure: histogram} dicts (a measure may be missing from some parts)."""
    names = sorted({name for part in parts for name in part})
    return {name: merge([p[name] for p in parts if name in p]) for name in names}


def quantile(h: dict, q: float):
    """Approximate q-quantile from the bins (linear inside a bin); None when empty."""
    if not h["count"]:
        return None
    target = q * h["count"]
    seen = h["below"]
    if target <= seen:
        return h["min"]
    for lo, hi, n in zip(h["edges"], h["edges"][1:], h["counts"]):
        if n and seen + n >= target:
            return max(h["min"], min(h["max"], lo + (hi - lo) * (target - seen) / n))
        seen += n
    return h["max"]


def _pick(fn, a, b):
    return b if a is None else a if b is None else fn(a, b)
