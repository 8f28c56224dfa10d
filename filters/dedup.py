"""Pure dedup logic: pick one deterministic survivor per group of equal records."""

from __future__ import annotations

from typing import Callable, Iterable


def by_input_order(record: dict):
    return tuple(record["order"])


def by_key_then_order(record: dict):
    return (record["key"], tuple(record["order"]))


def split_group(records: Iterable[dict], rank: Callable[[dict], tuple]) -> tuple[dict, list[dict]]:
    """(survivor, the others): the survivor has the smallest rank, so the choice depends only
    on the records, never on the order a runner delivered them in."""
    ordered = sorted(records, key=rank)
    return ordered[0], ordered[1:]
