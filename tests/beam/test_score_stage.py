"""The score stage over a hand-made staging shard: a corrupt staged image fails alone
(`clip.decode_error`), a batch the model cannot run goes to the dead letter
(`clip.inference_error`), and dedup-dropped rows are never scored."""

import pytest

pytest.importorskip("clip")

import apache_beam as beam  # noqa: E402
from apache_beam.testing.test_pipeline import TestPipeline  # noqa: E402
from apache_beam.testing.util import assert_that, equal_to  # noqa: E402

from mmcurate.pipelines import fileio  # noqa: E402
from mmcurate.pipelines.prepare import staging_paths  # noqa: E402
from mmcurate.pipelines.tario import SampleTarWriter  # noqa: E402
from mmcurate.pipelines.score import Score  # noqa: E402
from mmcurate.schemas.config import ClipConfig  # noqa: E402
from mmcurate.schemas.record import empty_row, rows_to_table  # noqa: E402
from tests.clip_util import save_random_tiny  # noqa: E402
from tests.util import jpeg  # noqa: E402


def test_failures_are_per_sample_or_per_batch(tmp_path):
    staging = str(tmp_path / "staging")
    good = jpeg(96, 96, seed=1)
    members = [("a", good, "a caption"), ("b", good[:200], "corrupt image"), ("c", good, "dedup dropped"), ("d", good, None), ("e", good, "same batch as d")]
    rows = []
    paths = staging_paths(staging, "t00000-c00000")
    with fileio.atomic_writer(paths["tar"]) as handle:
        writer = SampleTarWriter(handle)
        for i, (key, data, caption) in enumerate(members):
            writer.write({"__key__": key, "jpg": data, "txt": (caption or "").encode(), "json": b"{}"})
            row = empty_row()
            row.update(key=key, caption=caption, ord=i, order_task=0, order_row=i, shard="t00000-c00000")
            rows.append(row)
        writer.close()
    fileio.write_parquet(paths["parquet"], rows_to_table(rows))
    cfg = ClipConfig(model=save_random_tiny(tmp_path / "tiny.pt"), batch_size=2)
    with TestPipeline() as p:
        shards = p | "Shards" >> beam.Create(["t00000-c00000"])
        decisions = p | "Decisions" >> beam.Create([("t00000-c00000", [(0, 2, "duplicate.exact_image", "a", None)])])
        scored = (shards, decisions) | Score(cfg, staging, str(tmp_path / "score"))
        outcome = scored | beam.FlatMap(lambda kv: [(r.key, r.score is not None, r.reason) for r in kv[1]])
        # batches: [a, b] -> b fails to decode; [d, e] -> d's missing caption breaks the batch
        assert_that(outcome, equal_to([("a", True, ""), ("b", False, "clip.decode_error"), ("d", False, "clip.inference_error"), ("e", False, "clip.inference_error")]))
