"""Stage 3, score: CLIP similarity for every pair that survived prepare and dedup.

Per staging shard, the surviving samples are read from the staging tar in fixed batches
(the same batches on every run and runner, so scores are reproducible) and go through Beam's
RunInference with `ClipModelHandler`: the model loads once per worker process (or once per
machine with clip.share_across_processes), on CUDA when present. A sample whose image the
scorer cannot decode fails alone (`clip.decode_error`). A batch the model fails on is split
in halves until the failure is isolated: only samples that fail on their own are counted as
`clip.inference_error` (a bad input costs one sample; an out-of-memory on a large batch
costs none once the halves fit). Anything else that raises goes to RunInference's dead-letter
output, and that batch's samples fail with `clip.inference_error`.
Only scores cross the shuffle back to finalize; embeddings are written beside the staging shard.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from typing import Any, Optional

import apache_beam as beam
import numpy as np
from apache_beam.ml.inference.base import ModelHandler, RunInference

from mmcurate.filters import quantile
from mmcurate.pipelines import fileio
from mmcurate.pipelines.finalize import embeddings_path
from mmcurate.pipelines.ledger import Ledger
from mmcurate.pipelines.prepare import staging_paths
from mmcurate.pipelines.tario import frames_of, image_of, read_samples
from mmcurate.schemas.config import ClipConfig
from mmcurate.schemas.reasons import KEPT
from mmcurate.schemas.record import error_text, without_addresses

log = logging.getLogger(__name__)


@dataclass
class ScoreBatch:
    sid: str
    ords: list[int]
    keys: list[str]
    images: list[bytes]
    captions: list[str]
    frames: list[int]  # images per sample: 1, or a video clip's frames (scored as their mean)

    def __len__(self) -> int:  # RunInference counts examples with len()
        return len(self.ords)


@dataclass
class Scored:
    ord: int
    key: str
    score: Optional[float]
    reason: str = ""  # clip.decode_error | clip.inference_error when score is None
    error: str = ""


class ReadForScoring(beam.DoFn):
    """(staging id, {shard, decisions}) -> ScoreBatches of the shard's surviving samples."""

    def __init__(self, staging_dir: str, batch_size: int):
        self.staging_dir, self.batch_size = staging_dir, batch_size

    def process(self, element):
        sid, joined = element
        if not joined["shard"]:
            return
        dropped = {(t, r) for batch in joined["decisions"] for t, r, *_ in batch}
        paths = staging_paths(self.staging_dir, sid)
        table = fileio.read_parquet(paths["parquet"]).select(["key", "status", "ord", "caption", "order_task", "order_row"])
        wanted = {  # a sample without a caption (--require image, video or audio) has nothing to score against
            r["ord"]: r for r in table.to_pylist()
            if r["status"] == KEPT and r["caption"] and (r["order_task"], r["order_row"]) not in dropped
        }
        if not wanted:
            return
        batch = ScoreBatch(sid, [], [], [], [], [])
        with fileio.open_read(paths["tar"]) as f:
            for ordinal, sample in enumerate(read_samples(f)):
                row = wanted.get(ordinal)
                if row is None:
                    continue
                batch.ords.append(row["ord"])
                batch.keys.append(row["key"])
                frames = frames_of(sample) or [image_of(sample)[1]]
                batch.images.extend(frames)
                batch.captions.extend([row["caption"]] * len(frames))
                batch.frames.append(len(frames))
                if len(batch.ords) == self.batch_size:
                    yield batch
                    batch = ScoreBatch(sid, [], [], [], [], [])
        if batch.ords:
            yield batch


class ClipModelHandler(ModelHandler):
    """RunInference handler for clip-anytorch models; each element is one ScoreBatch."""

    def __init__(self, cfg: ClipConfig):
        super().__init__(large_model=cfg.share_across_processes)
        self.cfg = cfg

    def load_model(self):
        from mmcurate.filters.clip_score import ClipScorer
        from mmcurate.pipelines.clip_model import load_clip

        model = load_clip(self.cfg.model, self.cfg.weights_dir)
        cfg = self.cfg
        return ClipScorer.create(model, device=cfg.device, precision=cfg.precision, chunk_size=cfg.chunk_size,
                                 prep_threads=cfg.prep_threads, tokenize_workers=cfg.tokenize_workers, compile=cfg.compile,
                                 decoder=cfg.decoder, decode_threads=cfg.decode_threads, host_decode_share=cfg.host_decode_share)

    def run_inference(self, batch: ScoreBatch, model, inference_args: Optional[dict[str, Any]] = None):
        starts = np.concatenate([[0], np.cumsum(batch.frames)]).tolist()  # image offsets per sample
        scores, errors, reasons, image_emb, text_emb = score_isolating_failures(model, batch, starts, 0, len(batch.ords), self.cfg.embeddings)
        results = [Scored(*fields) for fields in zip(batch.ords, batch.keys, scores, reasons, errors)]
        emb = (batch.ords, image_emb, text_emb) if self.cfg.embeddings else None
        return [(batch.sid, results, emb)]

    def get_num_bytes(self, batch: ScoreBatch) -> int:
        return sum(len(b) for b in batch.images)

    def get_metrics_namespace(self) -> str:
        return "mmcurate.clip"


def _per_sample(out, frames: list[int], embeddings: bool):
    """Per-image results -> per-sample: a video clip's score is the mean over its frames (it
    fails if any frame does), its image embedding the normalised mean of its frames'."""
    if all(n == 1 for n in frames):
        return out.scores, out.errors, out.image_embeddings, out.text_embeddings
    scores, errors, image_emb, text_emb, at = [], [], [], [], 0
    for n in frames:
        part = out.scores[at:at + n]
        failed = [e for e in out.errors[at:at + n] if e]
        scores.append(None if failed or any(s is None for s in part) else float(np.mean(part)))
        errors.append(failed[0] if failed else "")
        if embeddings:
            mean = out.image_embeddings[at:at + n].astype(np.float32).mean(axis=0)
            image_emb.append((mean / max(float(np.linalg.norm(mean)), 1e-12)).astype(out.image_embeddings.dtype))
            text_emb.append(out.text_embeddings[at])
        at += n
    if embeddings:
        return scores, errors, np.stack(image_emb), np.stack(text_emb)
    return scores, errors, None, None


def score_isolating_failures(model, batch: ScoreBatch, starts: list[int], a: int, b: int, embeddings: bool):
    """Samples a..b of the batch -> (scores, errors, reasons, image embeddings, text embeddings),
    one entry per sample. When the model fails on them, each half is scored on its own, down to
    single samples: only a sample that fails alone gets `clip.inference_error` (zero embeddings)."""
    lo, hi = starts[a], starts[b]
    try:
        out = model.score(batch.images[lo:hi], batch.captions[lo:hi], embeddings=embeddings)
        scores, errors, image_emb, text_emb = _per_sample(out, batch.frames[a:b], embeddings)
        return scores, errors, ["" if s is not None else "clip.decode_error" for s in scores], image_emb, text_emb
    except Exception as e:
        error = error_text(e)
    if b - a == 1:
        empty = np.zeros((1, model.embedding_dim), dtype=np.float16) if embeddings else None
        return [None], [error], ["clip.inference_error"], empty, empty
    if b - a == len(batch.ords):
        log.warning("CLIP inference failed on a batch of %d samples of %s (%s); scoring it in halves to isolate the failure", b - a, batch.sid, error)
    mid = (a + b) // 2
    left = score_isolating_failures(model, batch, starts, a, mid, embeddings)
    right = score_isolating_failures(model, batch, starts, mid, b, embeddings)
    joined = [x + y for x, y in zip(left[:3], right[:3])]
    if not embeddings:
        return (*joined, None, None)
    return (*joined, np.concatenate([left[3], right[3]]), np.concatenate([left[4], right[4]]))


def _dead_letter(failed) -> tuple:
    batch, exc = failed
    # Beam hands over (type, repr, traceback lines) rather than the exception itself
    detail = (without_addresses(str(exc[1])) if isinstance(exc, tuple) and len(exc) > 1 else error_text(exc))[:300]
    return batch.sid, [Scored(o, k, None, "clip.inference_error", detail) for o, k in zip(batch.ords, batch.keys)], None


class WriteScores(beam.DoFn):
    """(sid, [(results, embeddings) per batch]) -> (sid, [Scored]); writes the shard's
    embeddings (when asked) beside the staging shard first."""

    def __init__(self, score_dir: str):
        self.score_dir = score_dir

    def process(self, element):
        sid, parts = element
        results = sorted((r for rs, _ in parts for r in rs), key=lambda r: r.ord)
        embs = [e for _, e in parts if e is not None]
        if embs:
            ords = np.concatenate([np.asarray(o, dtype=np.int64) for o, _, _ in embs])
            order = np.argsort(ords, kind="stable")
            buf = io.BytesIO()
            np.savez(buf, ord=ords[order], image=np.concatenate([i for _, i, _ in embs])[order], text=np.concatenate([t for _, _, t in embs])[order])
            fileio.write_bytes(embeddings_path(self.score_dir, sid), buf.getvalue())
        yield sid, results


class HistogramFn(beam.CombineFn):
    def create_accumulator(self):
        return np.zeros(quantile.BINS, dtype=np.int64)

    def add_input(self, acc, score):
        acc[quantile.bin_of(score)] += 1
        return acc

    def merge_accumulators(self, accs):
        accs = list(accs)
        total = accs[0]
        for a in accs[1:]:
            total = total + a
        return total

    def extract_output(self, acc):
        return acc


def top_fraction_cutoff(scored, fraction: float):
    """A singleton PCollection holding the exact Cutoff for the top `fraction` (or None); it
    comes only once the histogram's and the candidates' counts balance."""
    ledger = Ledger("clip cutoff")
    valid = scored | "ValidScores" >> beam.FlatMap(lambda kv: [(r.score, r.key) for r in kv[1] if r.score is not None])
    only_scores = valid | "ScoresOnly" >> beam.Map(lambda sk: sk[0])
    histogram = only_scores | "Histogram" >> beam.CombineGlobally(HistogramFn())
    ledger.count_in(only_scores, "Histogram", unit="scores")
    ledger.count_out(histogram, "Histogram", lambda h: int(h.sum()), unit="scores")
    target = histogram | "FindTarget" >> beam.Map(quantile.find_target, fraction)
    in_bin = valid | "InTargetBin" >> beam.Filter(lambda sk, t: t is not None and quantile.bin_of(sk[0]) == t.bin, beam.pvalue.AsSingleton(target))
    candidates = ledger.gate(ledger.to_list(in_bin, "Candidates"), "CandidatesChecked")
    return candidates | "ExactCutoff" >> beam.Map(lambda cands, t: quantile.exact_cutoff(cands, t) if t is not None else None, beam.pvalue.AsSingleton(target))


class Score(beam.PTransform):
    """(staging shard ids, dedup decisions) -> (sid, [Scored]) per scored shard."""

    def __init__(self, cfg: ClipConfig, staging_dir: str, score_dir: str):
        super().__init__()
        self.cfg, self.staging_dir, self.score_dir = cfg, staging_dir, score_dir

    def expand(self, inputs):
        shard_ids, decisions = inputs
        ledger = Ledger("score")  # scores are written only once every shuffle's count balances
        keyed = shard_ids | "KeyShards" >> beam.Map(lambda sid: (sid, None))
        joined = ledger.cogroup({"shard": keyed, "decisions": decisions}, "JoinForScoring")
        batches = joined | "ReadForScoring" >> beam.ParDo(ReadForScoring(self.staging_dir, self.cfg.batch_size))
        handler = ClipModelHandler(self.cfg).with_no_batching()
        inferred, dead = batches | "ClipInference" >> RunInference(handler).with_exception_handling()
        failed = dead.failed_inferences | "DeadLetter" >> beam.Map(_dead_letter)
        by_shard = (inferred, failed) | "AllScores" >> beam.Flatten() | "ScoresByShard" >> beam.Map(lambda t: (t[0], (t[1], t[2])))
        grouped = ledger.gate(ledger.group(by_shard, "GroupScores"), "ScoresChecked")
        return grouped | "WriteScores" >> beam.ParDo(WriteScores(self.score_dir))
