"""Accounting: per-shard and run-level counts, and the identity every run must satisfy:
inputs == kept + sum(dropped) + sum(failed), in total and per stage."""

from __future__ import annotations

import json
from collections import Counter
from typing import Iterable

from mmcurate.filters import histogram
from mmcurate.schemas.reasons import DROPPED, FAILED, KEPT, STAGES


def account(rows: Iterable[dict]) -> dict:
    rows = list(rows)
    dropped = Counter(r["reason"] for r in rows if r["status"] == DROPPED)
    failed = Counter(r["reason"] for r in rows if r["status"] == FAILED)
    stages = {}
    remaining = len(rows)
    for stage in STAGES:
        s_dropped = Counter(r["reason"] for r in rows if r["status"] == DROPPED and r["stage"] == stage)
        s_failed = Counter(r["reason"] for r in rows if r["status"] == FAILED and r["stage"] == stage)
        kept = remaining - sum(s_dropped.values()) - sum(s_failed.values())
        stages[stage] = {"inputs": remaining, "kept": kept, "dropped": dict(sorted(s_dropped.items())), "failed": dict(sorted(s_failed.items()))}
        remaining = kept
    return {
        "inputs": len(rows),
        "kept": sum(1 for r in rows if r["status"] == KEPT),
        "dropped": dict(sorted(dropped.items())),
        "failed": dict(sorted(failed.items())),
        "stages": stages,
        "splits": dict(sorted(Counter(r.get("split") or "" for r in rows if r["status"] == KEPT).items())),
        "languages": dict(sorted(Counter(r["caption_language"] for r in rows if r["status"] == KEPT and r.get("caption_language")).items())),
        "distributions": distributions(rows),
    } | lost_cues(rows)


LOST_CUES = ("skipped_cues", "cues_outside")  # malformed; wholly outside the file


def lost_cues(rows: list[dict]) -> dict:
    """Subtitle cues that became no clip: malformed ones left out (`skipped_cues`) and ones
    wholly outside their file (`cues_outside`), counted once per video or audio file (its
    first clip's row names them): {"skipped_cues": {"files": n, "cues": m}, ...}, each only
    when there are any."""
    found = {}
    for r in rows:
        media = r.get("media") or ""
        if not any(f'"{name}"' in media for name in LOST_CUES):
            continue
        doc = json.loads(media)
        if doc.get("clip") != 0:
            continue
        for name in LOST_CUES:
            if doc.get(name):
                files, cues = found.get(name, (0, 0))
                found[name] = (files + 1, cues + doc[name])
    return {name: {"files": files, "cues": cues} for name, (files, cues) in sorted(found.items())}


def distributions(rows: list[dict]) -> dict:
    """Histograms (filters/histogram.py) of the kept samples' measures; a measure no row has
    (no CLIP score when not scoring) is left out."""
    kept = [r for r in rows if r["status"] == KEPT]
    captions = [r["caption"] for r in kept if r.get("caption")]
    values = {
        "caption_chars": [len(c) for c in captions],
        "caption_words": [len(c.split()) for c in captions],
        "original_width": [r.get("original_width") for r in kept],
        "original_height": [r.get("original_height") for r in kept],
        "image_bytes": [r.get("image_bytes") for r in kept],
        "clip_score": [r.get("clip_score") for r in kept],
        "clip_score_scored": [r.get("clip_score") for r in rows],
        "duration_s": [r.get("duration_s") for r in kept],
    }
    return {name: histogram.histogram(name, v) for name, v in values.items() if any(x is not None for x in v)}


def merge(parts: Iterable[dict]) -> dict:
    """Sum per-shard accounts into one (same shape as `account`)."""
    total = {"inputs": 0, "kept": 0, "dropped": Counter(), "failed": Counter(), "stages": {}, "splits": Counter(), "languages": Counter()}
    dists = []
    for part in parts:
        total["splits"].update(part.get("splits", {}))
        total["languages"].update(part.get("languages", {}))
        dists.append(part.get("distributions", {}))
        total["inputs"] += part["inputs"]
        total["kept"] += part["kept"]
        total["dropped"].update(part["dropped"])
        total["failed"].update(part["failed"])
        for name in LOST_CUES:
            if name in part:
                total.setdefault(name, Counter()).update(part[name])
        for stage, s in part["stages"].items():
            t = total["stages"].setdefault(stage, {"inputs": 0, "kept": 0, "dropped": Counter(), "failed": Counter()})
            t["inputs"] += s["inputs"]
            t["kept"] += s["kept"]
            t["dropped"].update(s["dropped"])
            t["failed"].update(s["failed"])
    total["dropped"] = dict(sorted(total["dropped"].items()))
    total["failed"] = dict(sorted(total["failed"].items()))
    total["splits"] = dict(sorted(total["splits"].items()))
    total["languages"] = dict(sorted(total["languages"].items()))
    total["distributions"] = histogram.merge_named(dists)
    for name in LOST_CUES:
        if name in total:
            total[name] = dict(sorted(total[name].items()))
    for s in total["stages"].values():
        s["dropped"] = dict(sorted(s["dropped"].items()))
        s["failed"] = dict(sorted(s["failed"].items()))
    return total


def identity_errors(stats: dict, where: str = "run") -> list[str]:
    """Breaches of the accounting identity (empty when the books balance)."""
    errors = []
    for name, s in [(where, stats)] + [(f"{where}/{k}", v) for k, v in stats.get("stages", {}).items()]:
        total = s["kept"] + sum(s["dropped"].values()) + sum(s["failed"].values())
        if total != s["inputs"]:
            errors.append(f"{name}: inputs {s['inputs']} != kept {s['kept']} + dropped {sum(s['dropped'].values())} + failed {sum(s['failed'].values())}")
    return errors
