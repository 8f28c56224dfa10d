"""Accounting: per-shard and run-level counts, and the identity every run must satisfy:
inputs == kept + sum(dropped) + sum(failed), in total and per stage."""

from __future__ import annotations

from collections import Counter
from typing import Iterable

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
    }


def merge(parts: Iterable[dict]) -> dict:
    """Sum per-shard accounts into one (same shape as `account`)."""
    total = {"inputs": 0, "kept": 0, "dropped": Counter(), "failed": Counter(), "stages": {}}
    for part in parts:
        total["inputs"] += part["inputs"]
        total["kept"] += part["kept"]
        total["dropped"].update(part["dropped"])
        total["failed"].update(part["failed"])
        for stage, s in part["stages"].items():
            t = total["stages"].setdefault(stage, {"inputs": 0, "kept": 0, "dropped": Counter(), "failed": Counter()})
            t["inputs"] += s["inputs"]
            t["kept"] += s["kept"]
            t["dropped"].update(s["dropped"])
            t["failed"].update(s["failed"])
    total["dropped"] = dict(sorted(total["dropped"].items()))
    total["failed"] = dict(sorted(total["failed"].items()))
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
