"""Stage 2, dedup: global, over slim metadata tables only (never media bytes).

Exact kinds, applied in order, each over the survivors of the previous one:
  1. duplicate input keys (`input.duplicate_key`, the first in input order survives);
  2. identical original image bytes (`duplicate.exact_image`, the smallest key survives), or
     identical decoded audio (`duplicate.exact_audio`), or identical video clips (`duplicate.exact_video`);
  3. optionally identical normalised captions (`duplicate.exact_caption`);
then, with `dedup.mode: near`, perceptual-hash and MinHash near-duplicates (near_dedup.py); for
audio the hashes are the spectrogram picture's (filters/audio_hash.py), under `dedup.audio_hash`.
Each exact kind is one batched shuffle: tables are routed to partitions by a hash of the
value, and each partition sorts its rows and keeps the first of every run of equal values.
Output: decisions keyed by staging shard, [(order_task, order_row, reason, dup_of, distance)].
"""

from __future__ import annotations

import dataclasses
import json
from collections import defaultdict

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mmcurate.filters.near_dup import CLIP_BITS, audio_quality, caption_shingle_hashes
from mmcurate.pipelines.batches import partition_count, route_and_group, string_buckets
from mmcurate.pipelines.ledger import Ledger
from mmcurate.schemas.config import DedupConfig
from mmcurate.schemas.record import MANIFEST_SCHEMA

DROPPED_TAG = "dropped"
SLIM_COLUMNS = (
    "shard", "order_task", "order_row", "key", "sha256", "caption_sha256", "source_quality",
    "phash", "dhash", "phash_mirror", "dhash_mirror", "colour", "frame_hashes", "frame_hashes_mirror", "frame_colours", "minhash",
    "caption_shingles",
)
# what the exact steps read (the near stage reads near_dedup.near_columns)
EXACT_COLUMNS = ("shard", "order_task", "order_row", "key", "sha256", "caption_sha256")
# source_quality is not a manifest column: the survivor policy `resolution` keeps the largest
SLIM_SCHEMA = pa.schema([pa.field("source_quality", pa.int64()) if c == "source_quality" else MANIFEST_SCHEMA.field(c) for c in SLIM_COLUMNS])


def slim_table(rows: list[dict], ngram: int = 3) -> pa.Table:
    """What dedup needs of the kept rows of a staging shard: no media, no captions."""
    # (.get: manifests staged before a column existed lack it)
    slim = [{c: source_quality(r) if c == "source_quality" else r.get(c) for c in SLIM_COLUMNS} for r in rows]
    for s, r in zip(slim, rows):
        # staged before captions had n-gram sets: a missing set must mean "too long to store"
        # (filters/near_dup.caption_similarity), so it is made here from the caption
        if s["minhash"] is not None and "caption_shingles" not in r and r.get("caption"):
            s["caption_shingles"] = caption_shingle_hashes(r["caption"], ngram)
    return pa.Table.from_pylist(slim, schema=SLIM_SCHEMA)


def source_quality(row: dict) -> int:
    """How good a sample's source is (larger is better): original pixels for images and video
    clips; for audio the original sample rate, then lossless before lossy, then the bit rate."""
    if row.get("modality") == "audio" and row.get("media"):
        media = json.loads(row["media"])
        return audio_quality(media.get("original_sample_rate"), media.get("original_codec", ""), media.get("original_bit_rate"))
    return int(row.get("original_width") or 0) * int(row.get("original_height") or 0)


def decisions_by_shard(shards, orders_task, orders_row, reasons, dup_ofs, distances):
    """Group decision tuples by staging shard: one element per shard, not per row."""
    grouped = defaultdict(list)
    for sid, t, r, reason, dup_of, dist in zip(shards, orders_task, orders_row, reasons, dup_ofs, distances):
        grouped[sid].append((int(t), int(r), reason, dup_of, None if dist is None else float(dist)))
    return sorted(grouped.items())


class ResolveExact(beam.DoFn):
    """(partition, table) -> survivors table (main) and decisions (`dropped`): rows with an
    equal, non-empty `column` form a group; the smallest by `rank` survives."""

    def __init__(self, column: str, rank: tuple[str, ...], reason: str):
        self.column, self.rank, self.reason = column, rank, reason

    def process(self, element):
        _, table = element
        # rows without the value (no caption hash) are never grouped together
        grouped = pc.fill_null(pc.not_equal(table.column(self.column), ""), False).to_numpy(zero_copy_only=False)
        if not grouped.any():
            yield table
            return
        loose = table.filter(pa.array(~grouped))
        table = table.filter(pa.array(grouped)).sort_by([(self.column, "ascending")] + [(c, "ascending") for c in self.rank])
        values = np.array(table.column(self.column).to_pylist(), dtype=object)
        first = np.r_[True, values[1:] != values[:-1]]
        survivor_of = np.maximum.accumulate(np.where(first, np.arange(len(values)), 0))
        yield pa.concat_tables([loose, table.filter(pa.array(first))]) if loose.num_rows else table.filter(pa.array(first))
        dropped = np.flatnonzero(~first)
        if len(dropped):
            keys = table.column("key").to_numpy(zero_copy_only=False)
            cols = [table.column(c).to_numpy(zero_copy_only=False)[dropped] for c in ("shard", "order_task", "order_row")]
            for item in decisions_by_shard(*cols, [self.reason] * len(dropped), keys[survivor_of[dropped]], [None] * len(dropped)):
                yield beam.pvalue.TaggedOutput(DROPPED_TAG, item)


def exact_step(tables, parts, column: str, rank: tuple[str, ...], reason: str, label: str, ledger: Ledger):
    grouped = route_and_group(tables, lambda t, c=column: string_buckets(t.column(c).to_pylist()), parts, label, ledger)
    result = grouped | f"{label}Resolve" >> beam.ParDo(ResolveExact(column, rank, reason)).with_outputs(DROPPED_TAG, main="kept")
    return result.kept, result[DROPPED_TAG]


class Dedup(beam.PTransform):
    """Slim tables -> {"decisions": (sid, [decision])}, plus in near mode "clusters" (cluster
    row tables) and "stats" (what dedup/stats.json holds). `min_partitions`: the shuffles' least
    partition count, the worker count (`runner.worker_count`: a partition is one worker's work)."""

    def __init__(self, cfg: DedupConfig, out_dir: str = "", modality: str = "image", within_video: bool = False, min_partitions: int = 1):
        super().__init__()
        self.cfg, self.out_dir, self.modality, self.min_partitions = cfg, out_dir, modality, min_partitions
        # clips of one video or audio file (rows sharing row >> CLIP_BITS) are not near-duplicates of each other
        self.group_shift = CLIP_BITS if modality in ("audio", "video") and not within_video else 0

    def expand(self, tables):
        from mmcurate.pipelines.near_dedup import NearDedup, near_columns

        cfg = self.cfg
        parts = partition_count(tables, cfg.rows_per_partition, "Count", self.min_partitions)
        decisions = []
        ledger = Ledger("dedup")  # every shuffle's count: decisions leave only when they balance
        order = ("order_task", "order_row")
        # only what the stages read travels through the shuffles (no MinHash unless captions are compared)
        columns = list(EXACT_COLUMNS) + ([c for c in near_columns(cfg) if c not in EXACT_COLUMNS] if cfg.mode == "near" else [])
        kept = tables | "DedupColumns" >> beam.Map(lambda t: t.select(columns))
        kept, dropped = exact_step(kept, parts, "key", order, "input.duplicate_key", "DupKey", ledger)
        decisions.append(dropped)
        if cfg.mode != "none":
            kept, dropped = exact_step(kept, parts, "sha256", ("key",) + order, f"duplicate.exact_{self.modality}", "ExactImage", ledger)
            decisions.append(dropped)
            if cfg.exact_caption:
                kept, dropped = exact_step(kept, parts, "caption_sha256", ("key",) + order, "duplicate.exact_caption", "ExactCaption", ledger)
                decisions.append(dropped)
        out = {}
        if cfg.mode == "near":
            media_reason = "duplicate.near_image"  # images, and videos by their sampled frames
            if self.modality == "audio":  # the spectrogram picture's hashes: audio's own test, no mirror image
                cfg = dataclasses.replace(cfg, image_hash=cfg.audio_hash, mirror=False)
                media_reason = "duplicate.near_audio"
            near = kept | "Near" >> NearDedup(cfg, parts, self.out_dir, self.group_shift, media_reason, ledger)
            decisions.append(near["decisions"])
            out["clusters"], out["stats"] = near["clusters"], near["stats"]
        out["decisions"] = ledger.gate(decisions | "AllDecisions" >> beam.Flatten(), "DecisionsChecked")
        return out
