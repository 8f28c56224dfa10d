"""Stage 4, finalize: per staging shard, join the dedup decisions, write the final shard
(its samples grouped by split, each split's byte range recorded for the index).

Shard numbers come from the sorted staging ids (input order), so numbering has no gaps and
never depends on which worker finished first. Files are published atomically; the per-shard
stats file is written last and marks the shard done.
"""

from __future__ import annotations

import io
import json

import apache_beam as beam
import numpy as np

from mmcurate.filters import quantile
from mmcurate.filters.splits import SplitAssigner
from mmcurate.pipelines import fileio
from mmcurate.pipelines.ledger import Ledger
from mmcurate.pipelines.prepare import staging_paths
from mmcurate.pipelines.tario import GroupedTarWriter, read_samples, without_frames
from mmcurate.pipelines.stats import account
from mmcurate.schemas.config import ClipConfig, OutputConfig
from mmcurate.schemas.reasons import KEPT
from mmcurate.schemas.record import Verdict, apply_verdict, rows_to_table, sample_json

SHARDS_DIR = "shards"
EMBEDDINGS_DIR = "embeddings"


def embeddings_path(score_dir: str, sid: str) -> str:
    """Where the score stage leaves a staging shard's embeddings."""
    return fileio.join(score_dir, f"{sid}.npz")


def shard_name(number: int) -> str:
    return f"{number:05d}"


def number_shards(ids: list[str]):
    for n, sid in enumerate(sorted(ids)):
        yield sid, n


def split_key(row: dict) -> str:
    """What decides a row's split: its key, but a clip's source file key, so the clips of one
    video or subtitled audio file never straddle train and val."""
    if row.get("modality") in ("audio", "video") and row.get("media") and "clip" in json.loads(row["media"]):
        return row["key"].rsplit("_", 1)[0]
    return row["key"]


class FinalizeShard(beam.DoFn):
    def __init__(self, staging_dir: str, out_dir: str, clip: ClipConfig, output: OutputConfig, score_dir: str = ""):
        self.staging_dir, self.out_dir, self.clip, self.score_dir = staging_dir, out_dir, clip, score_dir
        self.output = output

    def setup(self):
        self.split_of = SplitAssigner(self.output.splits, self.output.split_seed)

    def process(self, element, cutoff=None):
        sid, joined = element
        (number,) = joined["number"]
        decisions = {(t, r): (reason, dup_of, dist) for batch in joined["decisions"] for t, r, reason, dup_of, dist in batch}
        scores = {r.ord: r for results in joined.get("scores", []) for r in results}
        src = staging_paths(self.staging_dir, sid)
        rows = fileio.read_parquet(src["parquet"]).to_pylist()
        name = shard_name(number)
        by_ord = {}
        for row in rows:
            row["shard"] = name
            row["split"] = self.split_of(split_key(row))
            decision = decisions.get((row["order_task"], row["order_row"]))
            if decision and row["status"] == KEPT:
                apply_verdict(row, Verdict.reject(decision[0], _decision_error(decision[0])), dup_of=decision[1], distance=decision[2])
            if row["status"] == KEPT and self.clip.model:
                self._apply_score(row, scores.get(row["ord"]), cutoff)
            if row["status"] == KEPT:
                by_ord[row["ord"]] = row
        base = fileio.join(self.out_dir, SHARDS_DIR, name)
        # Always rewritten (never a copy of the staging tar): every json gains its split here,
        # so changing output.splits needs no new prepare (and no new downloads).
        # Samples are grouped by split (in output.splits order, input order within a split), and
        # each split's byte range goes into the index, so a reader of one split reads only it.
        with fileio.atomic_writer(base + ".tar") as handle, fileio.open_read(src["tar"]) as f:
            writer = GroupedTarWriter(handle, [name for name, _ in self.split_of.splits])
            for ordinal, sample in enumerate(read_samples(f)):
                row = by_ord.get(ordinal)
                if row is not None:
                    sample = without_frames(sample)  # the scorer's frames stay in staging
                    sample["json"] = json.dumps(sample_json(row), sort_keys=True, ensure_ascii=False).encode("utf-8")
                    writer.write(sample, row["split"])
            split_ranges = writer.close()
        fileio.write_parquet(base + ".parquet", rows_to_table(rows))
        if self.clip.model and self.clip.embeddings:
            self._write_embeddings(sid, name, by_ord)
        stats = account(rows)
        stats.update(shard=name, tar=f"{SHARDS_DIR}/{name}.tar", samples=stats["kept"], bytes=fileio.size_of(base + ".tar"), staging=sid,
                     split_ranges=split_ranges)
        fileio.write_json(base + ".stats.json", stats)
        yield stats

    def _apply_score(self, row: dict, scored, cutoff) -> None:
        if scored is None and not row.get("caption"):  # no caption, no score (ReadForScoring): kept, clip_score null
            return
        if scored is None:  # a kept row with a caption must have been scored; never drop it silently
            apply_verdict(row, Verdict.reject("clip.inference_error", "no score came back for this sample"))
            return
        if scored.score is None:
            apply_verdict(row, Verdict.reject(scored.reason, scored.error))
            return
        row["clip_score"] = scored.score
        if not self.clip.filter:
            return
        if self.clip.top_fraction > 0:
            if not quantile.keeps(scored.score, row["key"], cutoff):
                apply_verdict(row, Verdict.reject("clip.below_threshold", f"not in the top {self.clip.top_fraction:g}"))
        elif scored.score < self.clip.threshold:
            apply_verdict(row, Verdict.reject("clip.below_threshold", f"{scored.score:.4f} < {self.clip.threshold:g}"))

    def _write_embeddings(self, sid: str, name: str, by_ord: dict) -> None:
        path = embeddings_path(self.score_dir, sid)
        if not fileio.exists(path):
            return
        data = np.load(io.BytesIO(fileio.read_bytes(path)))
        keep = np.isin(data["ord"], np.fromiter(by_ord, dtype=np.int64))
        ords = data["ord"][keep]
        buf = io.BytesIO()
        np.savez(buf, key=np.array([by_ord[int(o)]["key"] for o in ords]), image=data["image"][keep], text=data["text"][keep])
        fileio.write_bytes(fileio.join(self.out_dir, EMBEDDINGS_DIR, f"{name}.npz"), buf.getvalue())


class Finalize(beam.PTransform):
    """{"shards", "decisions"[, "scores"][, "cutoff"]} -> per-shard stats."""

    def __init__(self, staging_dir: str, out_dir: str, clip: ClipConfig, output: OutputConfig, score_dir: str = ""):
        super().__init__()
        self.staging_dir, self.out_dir, self.clip, self.score_dir = staging_dir, out_dir, clip, score_dir
        self.output = output

    def expand(self, inputs):
        scores, cutoff = inputs.get("scores"), inputs.get("cutoff")
        ledger = Ledger("finalize")  # no shard is written unless every shuffle's count balances
        numbered = ledger.to_list(inputs["shards"], "AllShardIds") | "NumberShards" >> beam.FlatMap(number_shards)
        tagged = {"number": numbered, "decisions": inputs["decisions"]}
        if scores is not None:
            tagged["scores"] = scores
        joined = ledger.gate(ledger.cogroup(tagged, "JoinDecisions"), "JoinChecked")
        side = {"cutoff": beam.pvalue.AsSingleton(cutoff)} if cutoff is not None else {}
        return joined | "WriteShards" >> beam.ParDo(FinalizeShard(self.staging_dir, self.out_dir, self.clip, self.output, self.score_dir), **side)


def _decision_error(reason: str) -> str:
    """What a dedup decision's row says in its `error` column: why a key is a duplicate."""
    if reason == "input.duplicate_key":
        return ("an earlier input row has this key: in a folder a key is a file's name without its extension, so a.jpg and "
                "a.png collide, as do files of one name in two input folders (give their parent folder instead: the "
                "subfolder names then prefix the keys)")
    return ""
