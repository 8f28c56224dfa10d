"""Finding samples in a finished output: manifest rows by condition, and their media.

Kept samples are read from the final shards. Samples dropped after prepare (duplicates,
low CLIP scores) still have their media in the staging shards when the run kept them
(`--keep-staging`); samples dropped in prepare never had any.
"""

from __future__ import annotations

import hashlib
import heapq
from typing import Iterator, Optional

import pyarrow.compute as pc

from mmcurate.pipelines import fileio
from mmcurate.pipelines.finalize import SHARDS_DIR
from mmcurate.pipelines.prepare import staging_paths
from mmcurate.pipelines.tario import IMAGE_EXTS, read_samples
from mmcurate.pipelines.where import parse
from mmcurate.schemas.reasons import KEPT
from mmcurate.schemas.record import MANIFEST_SCHEMA

STAGING_PREPARE = ("_staging", "prepare")


def media_modality(out_dir: str) -> str:
    """What a finished run's samples hold (image, audio or video), from its config.yaml
    (`schemas.config.saved_media_modality`); "image" without one."""
    from mmcurate.schemas.config import saved_media_modality

    path = fileio.join(out_dir, "config.yaml")
    return saved_media_modality(fileio.read_bytes(path)) if fileio.exists(path) else "image"


def manifest_paths(out_dir: str) -> list[str]:
    paths = sorted(p for p in fileio.list_files(fileio.join(out_dir, SHARDS_DIR)) if p.endswith(".parquet"))
    if not paths and not fileio.exists(fileio.join(out_dir, "stats.json")):
        raise FileNotFoundError(f"{out_dir} has no shards/*.parquet: is it the output folder of a finished run?")
    return paths


def matching_rows(out_dir: str, where: str = "", reason: str = "", split: str = "", status: str = "") -> Iterator[dict]:
    """Manifest rows meeting every given condition, in shard order."""
    condition = pc.scalar(True)
    if where:
        condition = condition & parse(where, MANIFEST_SCHEMA)
    for column, value in (("reason", reason), ("split", split), ("status", status)):
        if value and value != "all":
            condition = condition & (pc.field(column) == value)
    for path in manifest_paths(out_dir):
        table = fileio.read_parquet(path)
        yield from table.filter(condition).drop_columns([c for c in _HEAVY if c in table.column_names]).to_pylist()


_HEAVY = ["minhash", "phash", "dhash", "phash_mirror", "dhash_mirror", "colour", "frame_hashes", "frame_hashes_mirror", "frame_colours", "caption_shingles"]


def select(rows: Iterator[dict], n: int, seed: Optional[int] = None) -> tuple[list[dict], int]:
    """(up to n rows, how many matched). Without a seed, the first n; with one, n rows drawn
    uniformly by hashing (seed, key), streaming (the same n for the same seed)."""
    chosen: list = []
    total = 0
    for total, row in enumerate(rows, 1):
        if seed is None:
            if len(chosen) < n:
                chosen.append(row)
            continue
        rank = -int.from_bytes(hashlib.sha256(f"{seed}\0{row['key']}\0{row['order_task']}\0{row['order_row']}".encode()).digest()[:8], "big")
        item = (rank, total, row)
        if len(chosen) < n:
            heapq.heappush(chosen, item)
        elif rank > chosen[0][0]:
            heapq.heapreplace(chosen, item)
    if seed is not None:
        chosen = [row for _, _, row in sorted(chosen, key=lambda t: (-t[0], t[1]))]
    return chosen, total


def media(out_dir: str, rows: list[dict]) -> list[Optional[dict]]:
    """Each row's sample (`{"__key__", "jpg"/"png"/"webp", "json", "txt"}`), or None where no
    media exists any more. Each shard is read once."""
    found: dict[int, dict] = {}
    kept = [(i, r) for i, r in enumerate(rows) if r["status"] == KEPT]
    staged = [(i, r) for i, r in enumerate(rows) if r["status"] != KEPT and r.get("ord") is not None]
    for shard, group in _by(kept, "shard").items():
        wanted = {r["key"]: i for i, r in group}
        for sample in _samples(fileio.join(out_dir, SHARDS_DIR, f"{shard}.tar")):
            if sample["__key__"] in wanted:
                found[wanted.pop(sample["__key__"])] = sample
                if not wanted:  # stop reading: the rest of a remote shard is not downloaded
                    break
    staging = fileio.join(out_dir, *STAGING_PREPARE)
    for shard, group in _by(staged, "shard").items():
        sid = _staging_id(out_dir, shard)
        if sid is None:
            continue
        wanted = {r["ord"]: i for i, r in group}
        for ordinal, sample in enumerate(_samples(staging_paths(staging, sid)["tar"])):
            if ordinal in wanted:
                found[wanted.pop(ordinal)] = sample
                if not wanted:
                    break
    return [found.get(i) for i in range(len(rows))]


def _by(items, column):
    groups: dict = {}
    for i, row in items:
        groups.setdefault(row[column], []).append((i, row))
    return groups


def _samples(tar_path: str) -> Iterator[dict]:
    if not fileio.exists(tar_path):
        return
    with fileio.open_read(tar_path) as f:
        yield from read_samples(f)


def _staging_id(out_dir: str, shard: str) -> Optional[str]:
    stats = fileio.join(out_dir, SHARDS_DIR, f"{shard}.stats.json")
    return fileio.read_json(stats).get("staging") if fileio.exists(stats) else None


AUDIO_MEMBERS = ("flac", "wav", "mp3")


def picture(sample: Optional[dict]):
    """A PIL picture of a sample: its image, a video clip's middle frame (KEY.jpg), or an
    audio sample's waveform; None when there is nothing to draw."""
    import io

    from PIL import Image

    if sample is None:
        return None
    for ext in IMAGE_EXTS:
        if ext in sample:
            try:
                return Image.open(io.BytesIO(sample[ext])).convert("RGB")
            except Exception:
                return None
    audio = next((sample[e] for e in AUDIO_MEMBERS if e in sample), None)
    return waveform(audio) if audio is not None else None


def waveform(data: bytes, width: int = 448, height: int = 224):
    """Min/max envelope of the first channel, drawn on white (None if it does not decode)."""
    import io

    import av
    import numpy as np
    from PIL import Image, ImageDraw

    try:
        with av.open(io.BytesIO(data)) as c:
            chunks = [_first_channel(f) for f in c.decode(audio=0)]
    except Exception:
        return None
    pcm = np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(1, np.float32)
    peak = max(float(np.abs(pcm).max()), 1e-9)
    img = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(img)
    for x, part in enumerate(np.array_split(pcm / peak, width)):
        if len(part):
            mid = height / 2
            draw.line([(x, mid - part.max() * mid * 0.95), (x, mid - part.min() * mid * 0.95)], fill=(40, 90, 160))
    return img


def _first_channel(frame):
    samples = frame.to_ndarray()  # planar: (channels, n); packed: (1, n * channels)
    return samples[0] if frame.format.is_planar else samples[0, :: len(frame.layout.channels)]
