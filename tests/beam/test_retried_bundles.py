"""A runner may run a bundle again (a lost worker, a retried failure): each DoFn with side
effects must then write the same bytes and emit the same elements, so the committed result
neither duplicates nor loses samples. Runs PrepareShard and FinalizeShard twice on the same
element, as a retry would: once after the first attempt finished its files, once after it
died before its completion marker."""

from __future__ import annotations

import os
from collections import defaultdict

import apache_beam as beam
import pytest

from mmcurate.pipelines import sources
from mmcurate.pipelines.demo import generate
from mmcurate.pipelines.finalize import FinalizeShard
from mmcurate.pipelines.prepare import SHARDS_TAG, PrepareShard, ReadRows, staging_paths
from mmcurate.schemas.config import RunConfig


def outputs(dofn, element) -> list:
    """What one attempt emits: (tag, value) with tables compared by content."""
    out = []
    for item in dofn.process(element):
        tag, value = (item.tag, item.value) if isinstance(item, beam.pvalue.TaggedOutput) else ("main", item)
        out.append((tag, value.to_pylist() if hasattr(value, "to_pylist") else value))
    return out


def files(folder) -> dict[str, bytes]:
    return {name: open(os.path.join(folder, name), "rb").read() for name in sorted(os.listdir(folder)) if ".tmp-" not in name}


@pytest.fixture
def shard(tmp_path):
    generate(str(tmp_path / "in"), samples=40, seed=3)
    cfg = RunConfig.load(None, ["output.shard_size=100"]).validate()
    fmt, tasks, _ = sources.plan([str(tmp_path / "in")], cfg)
    cfg.input.format = fmt
    rows = defaultdict(list)
    read = ReadRows(cfg)
    for task in tasks:
        for sid, row in read.process(task):
            rows[sid].append(row)
    (sid, shard_rows), = rows.items()
    return cfg, sid, shard_rows, tmp_path


def test_prepare_attempts_write_the_same_bytes_and_emit_the_same_elements(shard):
    cfg, sid, rows, tmp = shard
    staging = str(tmp / "staging")
    os.makedirs(staging)
    prepare = PrepareShard(cfg, staging)
    prepare.setup()
    try:
        first = outputs(prepare, (sid, rows))
        written = files(staging)
        assert [tag for tag, _ in first] == [SHARDS_TAG, "main"] and len(first[1][1]) == 40 - 5  # the demo's 5 defects
        # retried after the first attempt completed: the marker makes it reuse the shard
        assert outputs(prepare, (sid, list(reversed(rows)))) == first and files(staging) == written
        # retried after the first attempt died before its marker: rebuilt, byte for byte
        os.remove(staging_paths(staging, sid)["done"])
        assert outputs(prepare, (sid, rows)) == first and files(staging) == written
    finally:
        prepare.teardown()


def test_finalize_attempts_write_the_same_bytes_and_emit_the_same_stats(shard):
    cfg, sid, rows, tmp = shard
    staging, out = str(tmp / "staging"), str(tmp / "out")
    os.makedirs(staging)
    prepare = PrepareShard(cfg, staging)
    prepare.setup()
    outputs(prepare, (sid, rows))
    prepare.teardown()
    finalize = FinalizeShard(staging, out, cfg.clip, cfg.output)
    finalize.setup()
    element = (sid, {"number": [0], "decisions": [[]]})
    first = list(finalize.process(element))
    written = files(os.path.join(out, "shards"))
    assert sorted(written) == ["00000.parquet", "00000.stats.json", "00000.tar"] and first[0]["kept"] == 35
    assert list(finalize.process(element)) == first and files(os.path.join(out, "shards")) == written


def test_video_clip_orders_fit_their_node_ids_and_a_video_past_the_limit_fails(tmp_path):
    """Clips get rows (row * CLIP_SLOTS + clip) inside node_id's 40 row bits: the last clip of
    the last video of task 0 sorts below task 1's first; a video past the limit fails alone."""
    from mmcurate.filters.near_dup import node_id
    from mmcurate.pipelines.prepare import CLIP_SLOTS, MAX_VIDEO_ROWS
    from mmcurate.schemas.record import SourceRow
    from tests import video_media as vm

    assert node_id(0, (MAX_VIDEO_ROWS - 1) * CLIP_SLOTS + CLIP_SLOTS - 1) < node_id(1, 0)
    video = tmp_path / "v.mp4"
    vm.make_video(video, seconds=2.0)
    cfg = RunConfig.load(None, ["input.format=video", "video.min_side=32", "dedup.mode=exact"]).validate()
    prepare = PrepareShard(cfg, str(tmp_path))
    prepare.setup()
    try:
        rows = [SourceRow("fits", (0, MAX_VIDEO_ROWS - 1), "list.csv:1", media=str(video), caption="a clip"),
                SourceRow("past", (0, MAX_VIDEO_ROWS), "list.csv:2", media=str(video), caption="a clip")]
        (fits,), (past,) = [[r for r, _ in prepare._prepare_row(src, None)] for src in rows]
    finally:
        prepare.teardown()
    assert (fits["reason"], fits["order_row"]) == ("", (MAX_VIDEO_ROWS - 1) * CLIP_SLOTS)
    assert (past["reason"], past["error"]) == ("input.too_many_rows", f"row {MAX_VIDEO_ROWS}: at most 33,554,432 videos per input file")
    # --retry-failed finds each manifest row's input row again, the clip-numbered and the failed one
    assert [prepare._input_position(r) for r in (fits, past)] == [(0, MAX_VIDEO_ROWS - 1), (0, MAX_VIDEO_ROWS)]


def test_staging_is_keyed_by_what_shapes_it():
    """A rerun with another spool folder or dedup setting reuses the staged clips; one that
    changes the clips (a smaller max height) does not."""
    from mmcurate.pipelines.prepare import staging_fingerprint

    def fingerprint(*sets):
        return staging_fingerprint(RunConfig.load(None, ["input.format=video", *sets]).validate())

    base = fingerprint()
    assert fingerprint("video.spool_dir=/mnt/ssd", "video.dedup_within_video=true", "dedup.clustering=connected") == base
    assert fingerprint("video.max_height=360") != base and fingerprint("video.max_bytes=1000") != base


def test_audio_staging_is_redone_when_its_signature_recipe_changes(monkeypatch):
    """Audio staged before it had a near-dup signature (or under another recipe) is prepared
    again; image staging does not depend on the audio recipe, nor audio staging without near-dup."""
    from mmcurate.pipelines import prepare

    def fingerprint(*sets):
        return prepare.staging_fingerprint(RunConfig.load(None, list(sets)).validate())

    audio, audio_exact, image = fingerprint("input.format=audio"), fingerprint("input.format=audio", "dedup.mode=exact"), fingerprint()
    monkeypatch.setattr(prepare, "AUDIO_SIGNATURE", "another-recipe")
    assert fingerprint("input.format=audio") != audio
    assert fingerprint("input.format=audio", "dedup.mode=exact") == audio_exact and fingerprint() == image
    assert fingerprint("input.format=audio", "dedup.audio_hash=either") == fingerprint("input.format=audio")  # a dedup setting only


def test_video_staging_is_redone_when_its_clip_signature_changes(monkeypatch):
    """Video staged with the middle frame's hashes only (or another clip signature) is
    prepared again in near mode; image and audio staging, and exact-mode video, are not."""
    from mmcurate.pipelines import prepare

    def fingerprint(*sets):
        return prepare.staging_fingerprint(RunConfig.load(None, list(sets)).validate())

    before = {s: fingerprint(*s) for s in [("input.format=video",), ("input.format=video", "dedup.mode=exact"), (), ("input.format=audio",)]}
    monkeypatch.setattr(prepare, "VIDEO_SIGNATURE", "another-signature")
    after = {s: fingerprint(*s) for s in before}
    assert [s for s in before if before[s] != after[s]] == [("input.format=video",)]


def test_image_staging_is_redone_when_its_signature_changes(monkeypatch):
    """Images staged without a colour signature (or under another image signature) are
    prepared again in near mode; exact-mode images, audio and video staging are not, and the
    colour threshold is a dedup setting only."""
    from mmcurate.pipelines import prepare

    def fingerprint(*sets):
        return prepare.staging_fingerprint(RunConfig.load(None, list(sets)).validate())

    before = {s: fingerprint(*s) for s in [(), ("dedup.mode=exact",), ("input.format=video",), ("input.format=audio",)]}
    monkeypatch.setattr(prepare, "IMAGE_SIGNATURE", "another-signature")
    after = {s: fingerprint(*s) for s in before}
    assert [s for s in before if before[s] != after[s]] == [()]
    assert fingerprint("dedup.max_colour_distance=5") == after[()]


def test_video_staging_is_redone_when_clips_are_cut_differently(monkeypatch):
    """A new cutting version (e.g. AVI frames timed by decoder order) redoes video staging in
    every dedup mode, and leaves image and audio staging alone."""
    from mmcurate.pipelines import prepare

    def fingerprint(*sets):
        return prepare.staging_fingerprint(RunConfig.load(None, list(sets)).validate())

    before = {s: fingerprint(*s) for s in [("input.format=video",), ("input.format=video", "dedup.mode=exact"), (), ("input.format=audio",)]}
    monkeypatch.setattr(prepare, "CUTS_VERSION", prepare.CUTS_VERSION + 1)
    after = {s: fingerprint(*s) for s in before}
    assert [s for s in before if before[s] != after[s]] == [("input.format=video",), ("input.format=video", "dedup.mode=exact")]


def test_audio_staging_is_redone_when_audio_is_decoded_differently(monkeypatch):
    """A new audio decoding version, or another audio.max_gap, redoes audio staging in every
    dedup mode and leaves image and video staging alone."""
    from mmcurate.pipelines import prepare

    def fingerprint(*sets):
        return prepare.staging_fingerprint(RunConfig.load(None, list(sets)).validate())

    runs = [("input.format=audio",), ("input.format=audio", "dedup.mode=exact"), (), ("input.format=video",)]
    before = {s: fingerprint(*s) for s in runs}
    assert [s for s in runs if fingerprint(*s, "audio.max_gap=1.0") != before[s]] == runs[:2]
    monkeypatch.setattr(prepare, "AUDIO_DECODE_VERSION", prepare.AUDIO_DECODE_VERSION + 1)
    assert [s for s in runs if fingerprint(*s) != before[s]] == runs[:2]
