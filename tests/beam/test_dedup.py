import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from mmcurate.pipelines.dedup import ExactDedup
from mmcurate.schemas.config import DedupConfig


def rec(shard, row, key, sha, cap=""):
    return {"shard": shard, "order": (0, row), "key": key, "sha256": sha, "caption_sha256": cap}


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
    ("s1", ((0, 3), "input.duplicate_key", "a")),
    ("s0", ((0, 0), "duplicate.exact_image", "a")),
    ("s1", ((0, 2), "duplicate.exact_image", "a")),
]


def test_exact_image_and_duplicate_keys():
    with TestPipeline() as p:
        out = p | beam.Create(RECORDS) | ExactDedup(DedupConfig())
        assert_that(out, equal_to(EXACT))


def test_exact_caption_is_opt_in_and_skips_empty_captions():
    with TestPipeline() as p:
        out = p | beam.Create(RECORDS) | ExactDedup(DedupConfig(exact_caption=True))
        assert_that(
            out,
            equal_to(EXACT + [
                ("s2", ((0, 6), "duplicate.exact_caption", "a")),
                # b is gone, so d's caption (c1) has no survivor to duplicate: d stays;
                # e and g have no caption hash and are never grouped together
            ]),
        )


def test_mode_none_only_resolves_duplicate_keys():
    with TestPipeline() as p:
        out = p | beam.Create(RECORDS) | ExactDedup(DedupConfig(mode="none"))
        assert_that(out, equal_to([("s1", ((0, 3), "input.duplicate_key", "a"))]))
