"""Exact dedup over slim tables: duplicate keys, identical image bytes, optional captions;
batched into partitions, so the tests also split the input over several tables and force
several partitions."""

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from mmcurate.pipelines.dedup import Dedup, slim_table
from mmcurate.schemas.config import DedupConfig


def rec(shard, row, key, sha, cap=""):
    return {
        "shard": shard, "order_task": 0, "order_row": row, "key": key, "sha256": sha, "caption_sha256": cap,
        "original_width": 100, "original_height": 100, "phash": None, "dhash": None, "phash_mirror": None,
        "dhash_mirror": None, "minhash": None,
    }


RECORDS = [
    rec("s0", 0, "b", "h1", "c1"),
    rec("s0", 1, "a", "h1", "c2"),  # same image as b: a (smaller key) survives
    rec("s1", 2, "c", "h1", "c3"),
    rec("s1", 3, "a", "h9", "c4"),  # same key as row 1: the first in input order survives
    rec("s1", 4, "d", "h2", "c1"),  # same caption as b, different image
    rec("s1", 5, "e", "h3", ""),
    rec("s2", 6, "f", "h4", "c2"),  # same caption as a
    rec("s2", 7, "g", "h5", ""),
]

EXACT = [
    ("s1", 3, "input.duplicate_key", "a"),
    ("s0", 0, "duplicate.exact_image", "a"),
    ("s1", 2, "duplicate.exact_image", "a"),
]


def flat(out):
    return out["decisions"] | beam.FlatMap(lambda kv: [(kv[0], r, reason, dup_of) for _, r, reason, dup_of, _ in kv[1]])


def run(cfg, tables=None, min_partitions=1):
    tables = tables or [slim_table(RECORDS[:3]), slim_table(RECORDS[3:])]
    p = TestPipeline()
    out = flat(p | beam.Create(tables) | Dedup(cfg, min_partitions=min_partitions))
    return p, out


@pytest.mark.parametrize("rows_per_partition", [1, 3, 1000])
def test_exact_image_and_duplicate_keys(rows_per_partition):
    p, out = run(DedupConfig(mode="exact", rows_per_partition=rows_per_partition))
    assert_that(out, equal_to(EXACT))
    p.run().wait_until_finish()


def test_exact_caption_is_opt_in_and_skips_empty_captions():
    p, out = run(DedupConfig(mode="exact", exact_caption=True, rows_per_partition=2))
    # b is gone, so d's caption (c1) has no survivor to duplicate: d stays; e and g have no
    # caption hash and are never grouped together
    assert_that(out, equal_to(EXACT + [("s2", 6, "duplicate.exact_caption", "a")]))
    p.run().wait_until_finish()


def test_mode_none_only_resolves_duplicate_keys():
    p, out = run(DedupConfig(mode="none"))
    assert_that(out, equal_to([("s1", 3, "input.duplicate_key", "a")]))
    p.run().wait_until_finish()


@pytest.mark.parametrize("rows_per_partition", [1, 1000])
def test_near_mode_sees_only_the_exact_survivors(rows_per_partition):
    """Copies of one image share its hashes: the exact steps drop them, and the near stage,
    which gets the survivors' whole rows back by node, must not see them again (a second
    decision each, near_image for `a`). `h` is a near copy of a (1 bit off): its only drop."""
    records = [dict(r) for r in RECORDS] + [rec("s2", 8, "h", "h6", "")]
    hashes = {"h1": 0x0F0F_0F0F_0F0F_0F0F, "h9": 0x1234_5678_9ABC_DEF0, "h2": 0xFFFF_0000_FFFF_0000, "h3": 0x0000_FFFF_0000_FFFF,
              "h4": 0x5555_AAAA_5555_AAAA, "h5": 0x3C3C_C3C3_3C3C_C3C3, "h6": 0x0F0F_0F0F_0F0F_0F0E}
    for r in records:
        r["phash"] = r["dhash"] = hashes[r["sha256"]]
    p, out = run(DedupConfig(rows_per_partition=rows_per_partition), [slim_table(records[:4]), slim_table(records[4:])])
    assert_that(out, equal_to(EXACT + [("s2", 8, "duplicate.near_image", "a")]))
    p.run().wait_until_finish()


@pytest.mark.parametrize(
    "rows, rows_per_partition, min_partitions, want",
    [(5, 1000, 1, 1), (5, 1000, 2, 2), (5, 1000, 8, 5), (5, 2, 1, 3), (5, 2, 2, 3), (5, 2, 4, 4), (0, 1000, 2, 1)],
)
def test_partition_count_has_a_floor_of_min_partitions_and_at_most_one_per_row(rows, rows_per_partition, min_partitions, want):
    import pyarrow as pa

    from mmcurate.pipelines.batches import partition_count

    with TestPipeline() as p:
        tables = p | beam.Create([pa.table({"x": list(range(rows))})])
        assert_that(partition_count(tables, rows_per_partition, "Count", min_partitions), equal_to([want]))


@pytest.mark.parametrize("min_partitions", [1, 2, 5])
def test_min_partitions_does_not_change_the_decisions(min_partitions):
    p, out = run(DedupConfig(mode="exact", exact_caption=True), min_partitions=min_partitions)
    assert_that(out, equal_to(EXACT + [("s2", 6, "duplicate.exact_caption", "a")]))
    p.run().wait_until_finish()


def test_a_shuffle_that_loses_rows_stops_the_run(monkeypatch):
    """Rows that go into a dedup shuffle and do not come out fail the run with the shuffle's
    name, instead of leaving their duplicates unfound."""
    from mmcurate.pipelines import batches

    class LosesOnePartition(batches.RouteTables):
        def process(self, table, parts):
            yield from list(super().process(table, parts))[1:]

    monkeypatch.setattr(batches, "RouteTables", LosesOnePartition)
    p, _ = run(DedupConfig(mode="exact", rows_per_partition=1))
    with pytest.raises(Exception, match=r"dedup: shuffle DupKey: \d+ rows fewer came out than went in"):
        p.run().wait_until_finish()


