"""The score stage over a hand-made staging shard: a corrupt staged image fails alone
(`clip.decode_error`), a sample the model cannot run fails alone (`clip.inference_error`,
found by splitting its batch), and dedup-dropped rows are never scored."""

import numpy as np
import pytest

pytest.importorskip("clip")

import apache_beam as beam  # noqa: E402
from apache_beam.testing.test_pipeline import TestPipeline  # noqa: E402
from apache_beam.testing.util import assert_that, equal_to  # noqa: E402

from mmcurate.pipelines import fileio  # noqa: E402
from mmcurate.pipelines.prepare import staging_paths  # noqa: E402
from mmcurate.pipelines.tario import SampleTarWriter  # noqa: E402
from mmcurate.filters.clip_score import ClipScorer  # noqa: E402
from mmcurate.pipelines.clip_model import load_clip  # noqa: E402
from mmcurate.pipelines.score import Score, ScoreBatch, score_isolating_failures  # noqa: E402
from mmcurate.schemas.config import ClipConfig  # noqa: E402
from mmcurate.schemas.record import empty_row, rows_to_table  # noqa: E402
from tests.clip_util import save_random_tiny  # noqa: E402
from tests.util import jpeg  # noqa: E402


def test_failures_are_per_sample(tmp_path):
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
        # batches: [a, b] -> b fails to decode; [e]: d has no caption, so nothing to score
        # against, and is not sent (finalize keeps it with a null score)
        assert_that(outcome, equal_to([("a", True, ""), ("b", False, "clip.decode_error"), ("e", True, "")]))


class PickyScorer:
    """A real scorer that fails like a model can: on a poisoned caption anywhere in the call,
    or (like an out-of-memory) on calls of more than `max_images` images. Records call sizes."""

    def __init__(self, scorer, max_images=10**9):
        self.scorer, self.max_images, self.calls = scorer, max_images, []
        self.embedding_dim = scorer.embedding_dim

    def score(self, images, captions, embeddings=False):
        self.calls.append(len(images))
        if "POISON" in captions:
            raise RuntimeError("poisoned caption")
        if len(images) > self.max_images:
            raise RuntimeError("CUDA out of memory (pretend)")
        return self.scorer.score(images, captions, embeddings=embeddings)


def picky_batch():
    """16 samples; sample 3 is a video clip of 3 frames (its caption once per frame)."""
    frames = [3 if i == 3 else 1 for i in range(16)]
    images, captions = [], []
    for i, n in enumerate(frames):
        images += [jpeg(64, 64, seed=100 * i + f) for f in range(n)]
        captions += [f"caption {i}"] * n
    batch = ScoreBatch("s", list(range(16)), [f"k{i}" for i in range(16)], images, captions, frames)
    return batch, [0, *np.cumsum(frames).tolist()]


@pytest.fixture(scope="module")
def tiny_scorer(tmp_path_factory):
    return ClipScorer.create(load_clip(save_random_tiny(tmp_path_factory.mktemp("m") / "tiny.pt")), device="cpu")


def test_a_failing_sample_is_isolated_by_splitting_the_batch(tiny_scorer):
    batch, starts = picky_batch()
    clean = score_isolating_failures(tiny_scorer, batch, starts, 0, 16, True)
    batch.captions[starts[9]] = "POISON"
    model = PickyScorer(tiny_scorer)
    scores, errors, reasons, image_emb, text_emb = score_isolating_failures(model, batch, starts, 0, 16, True)
    assert reasons == ["clip.inference_error" if i == 9 else "" for i in range(16)]
    assert errors[9] == "RuntimeError: poisoned caption" and errors.count("") == 15
    assert scores[9] is None
    np.testing.assert_allclose([s for i, s in enumerate(scores) if i != 9], [s for i, s in enumerate(clean[0]) if i != 9], atol=1e-3)
    assert image_emb.shape == text_emb.shape == (16, tiny_scorer.embedding_dim)
    assert not image_emb[9].any() and not text_emb[9].any() and image_emb[8].any()
    # 18 images in 16 samples: halves 0-7 (10 images, clean) and 8-15, then 8-11, 8-9, 9
    assert model.calls == [18, 10, 8, 4, 2, 1, 1, 2, 4]


def test_an_out_of_memory_batch_is_scored_in_parts(tiny_scorer):
    batch, starts = picky_batch()
    clean = score_isolating_failures(tiny_scorer, batch, starts, 0, 16, False)
    model = PickyScorer(tiny_scorer, max_images=5)
    scores, errors, reasons, image_emb, _ = score_isolating_failures(model, batch, starts, 0, 16, False)
    assert reasons == [""] * 16 and errors == [""] * 16 and image_emb is None
    np.testing.assert_allclose(scores, clean[0], atol=1e-3)
    assert sum(n for n in model.calls if n <= 5) == 18  # the calls that fit cover every image once


def test_a_sample_that_always_fails_alone_keeps_its_video_frames_together(tiny_scorer):
    batch, starts = picky_batch()
    batch.captions[starts[3] + 1] = "POISON"  # the middle frame of the video clip
    model = PickyScorer(tiny_scorer)
    _, _, reasons, _, _ = score_isolating_failures(model, batch, starts, 0, 16, False)
    assert reasons == ["clip.inference_error" if i == 3 else "" for i in range(16)]
    assert 3 in model.calls  # the clip's three frames were tried together
