"""Stage 1, prepare: input rows -> fetched, cleaned, re-encoded samples in staging shards.

Rows are grouped by staging shard (only small row records cross that shuffle); each shard is
then processed by one DoFn call with a bounded thread pool (downloads and image work overlap),
streamed into a staging tar, and described by a manifest with one row for every input row.
A `.done` marker written last makes the shard resumable: a rerun reads the manifest back,
unless the marker's fingerprint of the settings that shape a staging shard differs (a rerun
with another image size, or near-dup signatures newly asked for, redoes the shard).
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import itertools
import json
import threading
import traceback
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterable, Iterator, Optional

import apache_beam as beam
from apache_beam.metrics import Metrics

from mmcurate.filters.hashing import sha256_hex
from mmcurate.filters.audio import AUDIO_DECODE_VERSION, ProcessAudio
from mmcurate.filters.image import ImageRejected, ProcessImage
from mmcurate.filters.audio_hash import AUDIO_SIGNATURE
from mmcurate.filters.near_dup import CLIP_BITS, IMAGE_SIGNATURE, VIDEO_SIGNATURE, caption_signatures_many
from mmcurate.filters.video import CUTS_VERSION
from mmcurate.filters.text import CleanCaption, caption_sha256
from mmcurate.pipelines import fileio, media_prepare, sources
from mmcurate.pipelines.chunks import Chunks, plan_file_chunks
from mmcurate.pipelines.dedup import slim_table
from mmcurate.pipelines.fetch import Fetcher, FetchFailed
from mmcurate.pipelines.ledger import Ledger
from mmcurate.pipelines.shared_media import SharedLoads, cuts_spans, cuts_spans_of_remote_file
from mmcurate.pipelines.sources.base import ReadTask
from mmcurate.pipelines.sources.webdataset import iter_member_bytes
from mmcurate.pipelines.tario import SampleTarWriter, read_samples
from mmcurate.schemas.config import RunConfig
from mmcurate.schemas.reasons import FAILED, KEPT
from mmcurate.schemas.record import SourceRow, Verdict, apply_verdict, dataclass_dict, empty_row, error_text, rows_to_table, sample_json

SHARDS_TAG = "shards"
# A video's clips, and a subtitled audio file's, are rows (task, row * CLIP_SLOTS + clip): dedup
# tells rows apart by order. Every audio and video row is numbered so (an uncut file is clip 0).
# A row order has 40 bits (filters/near_dup.node_id): 2^15 clips per file, 2^25 files per input file.
CLIP_SLOTS = 1 << CLIP_BITS
MAX_VIDEO_ROWS = (1 << 40) // CLIP_SLOTS  # (audio and video)
_CLIPPED = ("audio", "video")
_MISSING = object()


def staging_id(task: int, chunk: int) -> str:
    return f"t{task:05d}-c{chunk:05d}"


def staging_fingerprint(cfg: RunConfig) -> bytes:
    """What a staging shard's content depends on besides its input rows: the input, text,
    image, audio and video settings, the shard size and which signatures prepare computes."""
    d = cfg.dedup
    shaping = {
        "input": dataclass_dict(cfg.input), "text": dataclass_dict(cfg.text), "image": dataclass_dict(cfg.image),
        "audio": _shaping_audio(cfg), "video": _shaping_video(cfg),
        "shard_size": cfg.output.shard_size,
        "signatures": [d.num_perm, d.ngram, d.mirror] if d.mode == "near" else None,
    }
    if d.mode == "near" and cfg.input.media_modality == "audio":  # staged before audio had a signature: redo
        shaping["audio_signature"] = AUDIO_SIGNATURE
    if cfg.input.media_modality == "audio":  # decoded by an older version (before damaged packets were skipped): redo
        shaping["audio_decode"] = AUDIO_DECODE_VERSION
    if cfg.input.clips_col:  # shards laid out before a file's rows were brought together (chunks.py): other rows, redo
        shaping["chunks"] = "files_grouped"
    if cfg.input.media_modality == "video":  # clips cut by an older version: redo
        shaping["video_cuts"] = CUTS_VERSION
    if d.mode == "near" and cfg.input.media_modality == "video":  # staged with the middle frame's hashes only: redo
        shaping["video_signature"] = VIDEO_SIGNATURE
    if d.mode == "near" and cfg.input.media_modality == "image":  # staged before images had a colour signature: redo
        shaping["image_signature"] = IMAGE_SIGNATURE
    return hashlib.sha256(json.dumps(shaping, sort_keys=True, default=str).encode()).hexdigest().encode()


def _shaping_audio(cfg: RunConfig) -> dict:
    """The audio settings, less those newer than image and video staging's fingerprints that
    only audio runs use (so adding them did not redo image or video staging)."""
    audio = dataclass_dict(cfg.audio)
    if cfg.input.media_modality != "audio":
        for name in ("max_gap", "merge_gap", "min_clip", "max_clip", "padding", "max_bytes", "max_source_duration"):
            audio.pop(name)
    return audio


def _shaping_video(cfg: RunConfig) -> dict:
    """The video settings that shape staged clips (not where spooled downloads go, not dedup)."""
    d = dataclass_dict(cfg.video)
    return {k: v for k, v in d.items() if k not in ("spool_dir", "dedup_within_video")}


def staging_paths(staging_dir: str, sid: str) -> dict[str, str]:
    return {ext: fileio.join(staging_dir, f"{sid}.{ext}") for ext in ("tar", "parquet", "done")}


class ReadRows(beam.DoFn):
    """One read task -> (staging shard id, SourceRow). An unreadable input file, or the part
    of one after it breaks, becomes one `input.unreadable` row: counted, never silent."""

    def __init__(self, cfg: RunConfig):
        self.cfg = cfg

    def process(self, task: ReadTask) -> Iterator[tuple[str, SourceRow]]:
        chunks = self._chunks(task)
        n = 0
        try:
            for row in sources.read(task, self.cfg):
                yield staging_id(task.task, 0 if task.is_shard else chunks.of(row.media)), row
                n += 1
        except Exception as e:
            detail = error_text(e, 500)
            row = SourceRow(f"unreadable_{task.task:05d}_{n:09d}", (task.task, n), task.locator, verdict=Verdict.reject("input.unreadable", detail))
            yield staging_id(task.task, 0 if task.is_shard else chunks.of(None)), row

    def _chunks(self, task: ReadTask):
        """Rows in table order, `size` a chunk; with spans a row, a file's rows together
        (chunks.py: the task is read once more first, to count each file's rows)."""
        size = self.cfg.input.rows_per_shard(self.cfg)
        if not self.cfg.input.clips_col or task.is_shard:
            return Chunks(size, files_whole=False)
        media = (row.media for row in sources.read(task, self.cfg))
        return plan_file_chunks(size, media, where=task.locator) or Chunks(size, files_whole=True)


class PrepareShard(beam.DoFn):
    """(staging id, rows) -> staging tar + manifest; emits a slim table of the kept rows for
    the dedup stage, and the shard id on the `shards` output."""

    def __init__(self, cfg: RunConfig, staging_dir: str):
        self.cfg = cfg
        self.staging_dir = staging_dir
        self.counters: dict[str, Any] = {}
        self.fingerprint = staging_fingerprint(cfg)

    def setup(self):
        self.fetcher = Fetcher(self.cfg.fetch)
        near = self.cfg.dedup.mode == "near"
        self.process_image = ProcessImage(self.cfg.image, hashes=near, mirror=near and self.cfg.dedup.mirror)
        self.caption_signature = near
        self.clean_caption = CleanCaption(self.cfg.text)
        self.modality = self.cfg.input.media_modality
        if self.modality == "audio":
            self.process_audio = ProcessAudio(self.cfg.audio, hashes=near)
        self.pool = ThreadPoolExecutor(self.cfg.fetch.threads, thread_name_prefix="mmcurate-prepare")
        # Downloads wait on the network and want many threads; image work wants a core. More
        # CPU-bound threads than cores only fight over the GIL (measured: ~20% more CPU).
        self.cpu_slots = threading.BoundedSemaphore(self.cfg.image.threads)
        self.shared_media = SharedLoads([])  # each shard's own: _prepared

    def teardown(self):
        pool = getattr(self, "pool", None)
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    def process(self, element: tuple[str, Iterable[SourceRow]]):
        sid, rows = element
        paths = staging_paths(self.staging_dir, sid)
        manifest = None
        rows = sorted(rows, key=lambda r: r.order)
        if self.cfg.input.clips_col:
            rows = _grouped_by_file(rows)
        if fileio.exists(paths["done"]) and fileio.read_bytes(paths["done"]) == self.fingerprint:
            manifest = fileio.read_parquet(paths["parquet"]).to_pylist()
            if self.cfg.output.retry_failed and any(row["status"] == FAILED for row in manifest):
                manifest = self._retry_failed(sid, rows, paths, manifest)
        if manifest is None:
            manifest = self._build(sid, rows, paths)
        yield beam.pvalue.TaggedOutput(SHARDS_TAG, sid)
        kept = [row for row in manifest if row["status"] == KEPT]
        if kept:
            yield slim_table(kept, self.cfg.dedup.ngram)

    def _build(self, sid: str, rows: list[SourceRow], paths: dict[str, str]) -> list[dict]:
        return self._write_staging(sid, paths, self._samples(self._prepared(rows)))

    def _retry_failed(self, sid: str, rows: list[SourceRow], paths: dict[str, str], old: list[dict]) -> list[dict]:
        """The staging shard again, with a new attempt for the input rows that failed (and any
        the old manifest lacks); the others keep their manifest rows and staged samples, so
        nothing that worked is fetched or decoded again. Same bytes as a first build in which
        the retried rows came out this way."""
        old_rows = collections.defaultdict(list)  # input position -> its manifest rows
        for row in old:
            old_rows[self._input_position(row)].append(row)
        redo = [src for src in rows if tuple(src.order) not in old_rows
                or any(row["status"] == FAILED for row in old_rows[tuple(src.order)])]
        redo_positions = {tuple(src.order) for src in redo}
        redone = itertools.groupby(self._samples(self._prepared(redo)), key=lambda result: self._input_position(result[0]))

        def results(old_samples):
            for src in rows:
                position = tuple(src.order)
                if position in redo_positions:
                    _, group = next(redone)
                    yield from group
                    continue
                for row in old_rows[position]:
                    yield row, (_sample_at(old_samples, row["ord"]) if row["status"] == KEPT else None)

        with fileio.open_read(paths["tar"]) as old_tar:
            return self._write_staging(sid, paths, results(enumerate(read_samples(old_tar))))

    def _input_position(self, row: dict) -> tuple[int, int]:
        """The input row a manifest row came from (a file's clips share their file's; a file
        past the row limit keeps its input position, see _prepare_row)."""
        clip_numbered = self.modality in _CLIPPED and row["reason"] != "input.too_many_rows"
        return row["order_task"], row["order_row"] // CLIP_SLOTS if clip_numbered else row["order_row"]

    def _samples(self, prepared: Iterable[tuple[dict, dict]]) -> Iterator[tuple[dict, Optional[dict]]]:
        """(manifest row, tar members) -> (manifest row, its staged sample, or None when not kept)."""
        for row, members in prepared:
            self._count(row)
            sample = None
            if row["status"] == KEPT:
                doc = json.dumps(sample_json(row), sort_keys=True, ensure_ascii=False).encode("utf-8")
                sample = {"__key__": row["key"], **members, "txt": row["caption"].encode("utf-8"), "json": doc}
            yield row, sample

    def _write_staging(self, sid: str, paths: dict[str, str], results: Iterable[tuple[dict, Optional[dict]]]) -> list[dict]:
        manifest, next_ord = [], 0
        with fileio.atomic_writer(paths["tar"]) as handle:
            writer = SampleTarWriter(handle)
            for row, sample in results:
                row["shard"] = sid
                if row["status"] == KEPT:
                    row["ord"], next_ord = next_ord, next_ord + 1
                    writer.write(sample)
                manifest.append(row)
            writer.close()
        self._sign_captions(manifest)
        fileio.write_parquet(paths["parquet"], rows_to_table(manifest))
        fileio.write_bytes(paths["done"], self.fingerprint)
        return manifest

    def _sign_captions(self, manifest: list[dict]) -> None:
        """The caption MinHashes and n-gram sets of the shard's kept rows, in one batch (3x
        faster than one at a time; not in KEY.json, so the tar is written first)."""
        if not self.caption_signature:
            return
        todo = [row for row in manifest if row["status"] == KEPT and row["caption"] and row.get("minhash") is None]
        d = self.cfg.dedup
        for row, signed in zip(todo, caption_signatures_many([row["caption"] for row in todo], d.num_perm, d.ngram)):
            row["minhash"], row["caption_shingles"] = signed

    def _prepared(self, rows: list[SourceRow]) -> Iterator[tuple[dict, dict]]:
        self.shared_media = self._shared_loads(rows)
        window = 2 * self.cfg.fetch.threads
        pending: collections.deque = collections.deque()
        try:
            for row, data in _with_tar_bytes(rows):
                pending.append(self.pool.submit(self._prepare_row, row, data))
                if len(pending) >= window:
                    yield from pending.popleft().result()
            while pending:
                yield from pending.popleft().result()
        finally:
            self.shared_media.close()

    def _shared_loads(self, rows: list[SourceRow]) -> SharedLoads:
        """Table rows cutting spans from one file load it once: an audio file's decode, a
        remote video's download (shared_media.py)."""
        if self.modality == "audio":
            return SharedLoads(rows, cuts_spans, size=lambda decoded: decoded.pcm.nbytes)
        if self.modality == "video":
            return SharedLoads(rows, cuts_spans_of_remote_file, release=media_prepare.remove_spooled)
        return SharedLoads([])

    def _prepare_row(self, src: SourceRow, data: Any) -> list[tuple[dict, dict]]:
        """One input row -> its manifest rows with their tar members ({} when not kept): one
        row, or one per planned clip for a video or a subtitled audio file."""
        row = empty_row()
        row.update(key=src.key, source=src.source, order_task=src.order[0], order_row=src.order[1], modality=self.modality)
        try:
            if self.modality in _CLIPPED and src.order[1] >= MAX_VIDEO_ROWS:
                what = "videos" if self.modality == "video" else "audio files"
                return [(apply_verdict(row, Verdict.reject("input.too_many_rows", f"row {src.order[1]}: at most {MAX_VIDEO_ROWS:,} {what} per input file")), {})]
            results = self._prepare_checked(src, row, data)
        except Exception as e:  # a bug, not bad input: fail the row loudly, keep the run going
            detail = error_text(e, 10_000, traceback.format_exc(limit=3)[-400:])
            results = [(apply_verdict(row, Verdict.reject("internal.error", detail)), {})]
        finally:
            self.shared_media.done(src)
        if self.modality in _CLIPPED:  # clips share their file's input position: give each its own
            if len(results) > CLIP_SLOTS:
                error = "video.cut_error" if self.modality == "video" else "audio.too_many_clips"
                results = [(apply_verdict(row, Verdict.reject(error, f"{len(results)} clips: at most {CLIP_SLOTS}")), {})]
            for i, (clip_row, _) in enumerate(results):
                clip_row["order_row"] = src.order[1] * CLIP_SLOTS + i
        return results

    def _prepare_checked(self, src: SourceRow, row: dict, data: Any) -> list[tuple[dict, dict]]:
        if src.extra:
            row["extra"] = json.dumps(src.extra, sort_keys=True, ensure_ascii=False, default=str)
        caption_verdict = self._caption(src, row)
        if not src.verdict.kept:  # the source knows first
            return [(apply_verdict(row, src.verdict), {})]
        if self.modality == "video":  # the caption matters only for a video without cues
            return media_prepare.video_rows(self, src, row, data, caption_verdict)
        if self.modality == "audio" and (src.subtitles or src.clips is not None):  # cut: each clip has its own text
            return media_prepare.cut_audio_rows(self, src, row, data)
        if not caption_verdict.kept:
            return [(apply_verdict(row, caption_verdict), {})]
        if self.modality == "audio":
            return media_prepare.audio_rows(self, src, row, data)
        try:
            data = self.media_bytes(src, data)
            with self.cpu_slots:
                row["sha256"] = sha256_hex(data)
                result = self.process_image(data)
        except (FetchFailed, ImageRejected) as e:
            return [(apply_verdict(row, e.verdict), {})]
        row.update(
            width=result.width,
            height=result.height,
            original_width=result.original_width,
            original_height=result.original_height,
            image_bytes=len(result.data),
            image_ext=result.ext,
        )
        if result.hashes:
            row.update(result.hashes)
        return [(row, {result.ext: result.data})]  # (its caption is signed with the shard's: _sign_captions)

    def media_bytes(self, src: SourceRow, data: Any) -> bytes:
        """The row's media: bytes already read from its tar, else fetched (FetchFailed)."""
        if data is _MISSING:
            raise FetchFailed("fetch.not_found", f"{src.member} not in {src.media}")
        if data is not None:
            return data
        return self.fetcher.fetch(src.media, max_bytes=self.cfg.audio.max_bytes if self.modality == "audio" else None)

    def _caption(self, src: SourceRow, row: dict) -> Verdict:
        """Clean the caption(s); with several (coco/flickr), the first usable one is KEY.txt.
        No text at all is fine when the run does not require text (input.require)."""
        if src.caption is None and src.caption_bytes is None and not src.captions:
            if not self.cfg.input.requires_text:
                return Verdict.keep()
            return Verdict.reject("input.missing_caption", f"no text for this {self.modality}; --require {self.modality} keeps it without one")
        if src.captions:
            cleaned = [self.clean_caption(c) for c in src.captions]
            good = [c for c in cleaned if c.verdict.kept]
            row["captions"] = [c.text for c in good]
            chosen = good[0] if good else cleaned[0]
        else:
            chosen = self.clean_caption(src.caption_bytes if src.caption_bytes is not None else src.caption)
            if chosen.verdict.kept:
                row["captions"] = [chosen.text]
        row.update(caption=chosen.text, **chosen.fields())
        if chosen.verdict.kept:
            row["caption_sha256"] = caption_sha256(chosen.text)
        elif chosen.verdict.reason == "text.empty" and not self.cfg.input.requires_text:
            return Verdict.keep()  # an empty text is no text, which this run allows
        return chosen.verdict

    def _count(self, row: dict) -> None:
        name = f"prepare.{row['status']}" + (f".{row['reason']}" if row["reason"] else "")
        counter = self.counters.get(name)
        if counter is None:
            counter = self.counters[name] = Metrics.counter("mmcurate", name)
        counter.inc()


def _grouped_by_file(rows: list[SourceRow]) -> list[SourceRow]:
    """A shard's rows (in order) with each file's rows brought together where its first row
    is: one file at a time is loaded and cut (shared_media.py), not several held at once."""
    first: dict[str, int] = {}
    for i, row in enumerate(rows):
        if row.media is not None:
            first.setdefault(row.media, i)
    placed = sorted(enumerate(rows), key=lambda ir: first[ir[1].media] if ir[1].media is not None else ir[0])  # (stable)
    return [row for _, row in placed]


def _sample_at(samples: Iterator[tuple[int, dict]], ordinal: int) -> dict:
    """The staged sample at this ordinal, from (ordinal, sample) pairs read in order."""
    for at, sample in samples:
        if at == ordinal:
            return sample
    raise ValueError(f"staging tar ends before sample {ordinal}: it does not match its manifest")


def _with_tar_bytes(rows: list[SourceRow]) -> Iterator[tuple[SourceRow, Any]]:
    """Pair each row with its bytes when they live in a tar (one streaming pass per tar);
    other rows get None and are fetched by the worker threads."""
    tars = {r.media for r in rows if r.member and r.verdict.kept}
    if not tars:
        yield from ((r, None) for r in rows)
        return
    streams = {t: iter_member_bytes(t, {r.member for r in rows if r.media == t and r.member}) for t in tars}
    buffered: dict[tuple[str, str], bytes] = {}
    for r in rows:
        if not (r.member and r.verdict.kept):
            yield r, None
            continue
        wanted = (r.media, r.member)
        stream = streams[r.media]
        while wanted not in buffered and stream is not None:
            try:
                name, data = next(stream)
                buffered[(r.media, name)] = data
            except StopIteration:
                streams[r.media] = stream = None
            except Exception:  # a tar broken midway: its remaining members count as missing
                streams[r.media] = stream = None
        yield r, buffered.pop(wanted, _MISSING)


TEXT_SOURCE = "text_source"  # in a key-aligned sample's json: "text" (the text= input's piece) or its media role (its own text)


def align_pieces(element, required: set[str], media_role: str) -> Iterator[tuple[str, SourceRow]]:
    """(key, [(staging id, piece)]) from key-aligned inputs -> one row per key: the media
    piece with the text piece's captions (not when it has subtitles: they cut it and give each
    clip its text), in the media piece's staging shard. A key missing a
    required role is dropped as align.missing_ROLE; a second piece of a role as
    align.duplicate_piece; pieces the source already rejected pass through unchanged."""
    key, pieces = element
    first: dict[str, tuple[str, SourceRow]] = {}
    for sid, piece in sorted(pieces, key=lambda p: p[1].order):
        if piece.verdict.reason == "input.missing_caption":  # its text may be another input's piece
            piece = dataclasses.replace(piece, verdict=Verdict.keep())
        if not piece.verdict.kept:
            yield sid, piece
        elif piece.role in first:
            came_first = first[piece.role][1].source
            yield sid, dataclasses.replace(piece, verdict=Verdict.reject("align.duplicate_piece", f"{piece.role} of {key} came first from {came_first}"))
        else:
            first[piece.role] = (sid, piece)
    if not first:
        return
    sid, anchor = first.get(media_role) or min(first.values(), key=lambda p: p[1].order)
    merged = dataclasses.replace(anchor, extra=dict(anchor.extra))
    text = first.get("text")
    own_text = any(v is not None for v in (anchor.caption, anchor.caption_bytes, anchor.subtitles)) or bool(anchor.captions)
    # media cut at its subtitles takes each clip's text from their cues: a text= piece is not used
    joined = text is not None and text[1] is not anchor and anchor.subtitles is None
    if joined:
        merged.caption, merged.caption_bytes, merged.captions = text[1].caption, text[1].caption_bytes, list(text[1].captions)
        merged.extra.update({k: v for k, v in text[1].extra.items() if k not in merged.extra})
    if text is not None or own_text:  # which input's text the sample has (KEY.json)
        merged.extra[TEXT_SOURCE] = "text" if joined else anchor.role
    has_text = text is not None or own_text
    missing = [role for role in sorted(required) if role not in first and not (role == "text" and has_text)]
    if missing:
        merged.verdict = Verdict.reject(f"align.missing_{missing[0]}", f"{key} has {', '.join(sorted(first))}, no {', '.join(missing)}")
    yield sid, merged


class Prepare(beam.PTransform):
    """Read tasks -> slim tables of kept rows (main output) and staging shard ids (`shards`)."""

    def __init__(self, cfg: RunConfig, staging_dir: str, aligned: bool = False):
        super().__init__()
        self.cfg, self.staging_dir, self.aligned = cfg, staging_dir, aligned

    def expand(self, tasks):
        # every shuffle is counted; no staging shard is written unless all of them balance
        ledger = Ledger("prepare")
        spread = tasks | "SpreadTasks" >> beam.Reshuffle()
        ledger.count_in(tasks, "SpreadTasks")
        ledger.count_out(spread, "SpreadTasks")
        rows = spread | "ReadRows" >> beam.ParDo(ReadRows(self.cfg))
        if self.aligned:
            pieces = rows | "KeyPieces" >> beam.Map(lambda sid_row: (sid_row[1].key, sid_row))
            grouped = ledger.group(pieces, "GroupPieces")
            rows = grouped | "AlignPieces" >> beam.FlatMap(align_pieces, self.cfg.input.required(), self.cfg.input.media_modality)
        shards = ledger.gate(ledger.group(rows, "GroupByShard", unit="rows"), "ShardsChecked")
        return shards | "PrepareShard" >> beam.ParDo(PrepareShard(self.cfg, self.staging_dir)).with_outputs(SHARDS_TAG, main="kept")
