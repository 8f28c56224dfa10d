"""The records that flow between stages, and the Arrow schema of the per-shard manifests."""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from typing import Any, Optional

import pyarrow as pa

from mmcurate.schemas.reasons import KEPT, REASONS, stage_of, status_of


@dataclass(frozen=True)
class Verdict:
    """What a filter says about a sample: keep it, or drop/fail it with a stable reason."""

    reason: Optional[str] = None  # None means keep
    detail: str = ""

    @property
    def kept(self) -> bool:
        return self.reason is None

    @staticmethod
    def keep() -> "Verdict":
        return _KEEP

    @staticmethod
    def reject(reason: str, detail: str = "") -> "Verdict":
        if reason not in REASONS:
            raise ValueError(f"unknown reason {reason!r}: add it to schemas/reasons.py")
        return Verdict(reason, detail)


_KEEP = Verdict()

_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def error_text(e: BaseException, limit: int = 300, extra: str = "") -> str:
    """An exception as manifest text, "Type: message[ | extra]", cut to limit characters and
    without object addresses (PIL names its BytesIO "... at 0x7f..."), so reruns write the same bytes."""
    text = f"{type(e).__name__}: {e}".replace(": '<none>'", "")  # PyAV's name for bytes in memory
    return without_addresses(text + (f" | {extra}" if extra else ""))[:limit]


def without_addresses(text: str) -> str:
    """Text with object addresses (" at 0x7f...") taken out."""
    return _ADDRESS.sub("", text)


class Rejected(Exception):
    """A filter's refusal of one sample, carrying its verdict (reason and detail)."""

    def __init__(self, verdict: Verdict):
        super().__init__(verdict.reason)
        self.verdict = verdict


@dataclass
class SourceRow:
    """One input row, as a source reads it: where the media is and what text goes with it.

    `order` is the row's position in the input (task index, row index); it decides shard
    membership and the survivor among duplicate keys.
    """

    key: str
    order: tuple[int, int]
    source: str  # human-readable input locator (a path, a URL, `file.csv:17`, `a.tar:x.jpg`)
    media: Optional[str] = None  # path or URL of the media; for tar-backed rows, the tar
    member: Optional[str] = None  # member name inside `media` when the media is in a tar
    caption: Optional[str] = None
    caption_bytes: Optional[bytes] = None  # raw sidecar bytes, decoded (and checked) in prepare
    captions: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    subtitles: Optional[str] = None  # video or audio: path of a sidecar .srt/.vtt, parsed in prepare
    clips: Optional[list] = None  # video or audio: Cues a table gives (--clips-col), cut one clip each
    role: str = ""  # key-aligned inputs: what this input contributes (image, audio, video, text)
    verdict: Verdict = field(default_factory=Verdict.keep)  # set when the source already knows


# Columns of shards/NNNNN.parquet (one row per input row) and of the staging manifests.
MANIFEST_SCHEMA = pa.schema(
    [
        ("key", pa.string()),
        ("status", pa.string()),  # kept | dropped | failed
        ("reason", pa.string()),  # "" when kept
        ("stage", pa.string()),  # the stage that dropped/failed the row, "" when kept
        ("error", pa.string()),  # detail for failures (exception text, HTTP status)
        ("dup_of", pa.string()),
        ("dup_distance", pa.float32()),  # near-duplicates: distance to `dup_of` (see the reason)
        ("source", pa.string()),
        ("caption", pa.string()),
        ("captions", pa.list_(pa.string())),
        ("sha256", pa.string()),  # of the original media bytes
        ("caption_sha256", pa.string()),  # of the normalised caption
        ("caption_language", pa.string()),  # detected (filters/language.py); "" when the caption was not checked
        ("caption_language_score", pa.float32()),  # the model's probability for it
        ("width", pa.int32()),
        ("height", pa.int32()),
        ("original_width", pa.int32()),
        ("original_height", pa.int32()),
        ("image_bytes", pa.int64()),  # size of the stored (re-encoded) image
        ("image_ext", pa.string()),
        ("modality", pa.string()),  # image | audio | video: what the sample's media is
        ("duration_s", pa.float32()),  # audio and video: of the stored media
        ("media", pa.string()),  # JSON of the modality's fields for KEY.json (rates, channels, start/end, fps, codec)
        ("clip_score", pa.float32()),  # null when not scored
        # near-dup signatures (dedup.mode near): 64-bit image hashes and the caption's MinHash
        ("phash", pa.uint64()),
        ("dhash", pa.uint64()),
        ("phash_mirror", pa.uint64()),
        ("dhash_mirror", pa.uint64()),
        ("colour", pa.binary()),  # images: mean CIELAB colour of a 2x2 grid (filters/near_dup.colour_signature)
        # video clips: [phash, dhash] of each sampled frame in time order (filters/near_dup.frame_hashes)
        ("frame_hashes", pa.list_(pa.uint64())),
        ("frame_hashes_mirror", pa.list_(pa.uint64())),
        ("frame_colours", pa.binary()),  # video clips: each sampled frame's colour signature, concatenated
        ("minhash", pa.binary()),  # num_perm little-endian uint32 values
        ("caption_shingles", pa.binary()),  # the caption's word n-grams as sorted uint64 hashes (exact Jaccard)
        ("extra", pa.string()),  # JSON of the input's additional columns
        ("order_task", pa.int64()),
        ("order_row", pa.int64()),
        ("ord", pa.int64()),  # position in the staging shard
        ("shard", pa.string()),  # final shard name (NNNNN); staging shard id in staging
        ("split", pa.string()),  # train/val/test… from the key's hash (output.splits); set in finalize
    ]
)

# columns that manifests written by earlier versions lack (readers take them as null)
LATER_COLUMNS = frozenset({"frame_hashes", "frame_hashes_mirror", "caption_language", "caption_language_score", "colour", "frame_colours",
                           "caption_shingles"})
_NULL_COLUMNS = {f.name for f in MANIFEST_SCHEMA if pa.types.is_integer(f.type) or pa.types.is_floating(f.type) or pa.types.is_binary(f.type)} | {"frame_hashes", "frame_hashes_mirror"}


def empty_row() -> dict[str, Any]:
    row: dict[str, Any] = {}
    for f in MANIFEST_SCHEMA:
        if f.name in _NULL_COLUMNS:
            row[f.name] = None
        elif pa.types.is_list(f.type):
            row[f.name] = []
        else:
            row[f.name] = ""
    row["status"] = KEPT
    return row


def apply_verdict(row: dict[str, Any], verdict: Verdict, dup_of: str = "", distance: Optional[float] = None) -> dict[str, Any]:
    """Mark a manifest row dropped/failed by `verdict` (no-op for a keep verdict)."""
    if verdict.kept:
        return row
    row["status"] = status_of(verdict.reason)
    row["reason"] = verdict.reason
    row["stage"] = stage_of(verdict.reason)
    row["error"] = verdict.detail
    row["dup_of"] = dup_of
    row["dup_distance"] = distance
    return row


def rows_to_table(rows: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=MANIFEST_SCHEMA)


def sample_json(row: dict[str, Any]) -> dict[str, Any]:
    """The KEY.json written beside each kept sample."""
    doc = {
        "key": row["key"],
        "caption": row["caption"],
        "captions": list(row["captions"] or []),
        "source": row["source"],
        "sha256": row["sha256"],
    }
    if row.get("modality") in ("", None, "image"):
        doc.update(width=row["width"], height=row["height"], original_width=row["original_width"], original_height=row["original_height"])
    else:
        doc["modality"] = row["modality"]
        doc.update(json.loads(row["media"]) if row.get("media") else {})
    if row.get("split"):
        doc["split"] = row["split"]
    if row.get("caption_language"):
        doc["caption_language"] = row["caption_language"]
        doc["caption_language_score"] = round(float(row["caption_language_score"]), 4)
    if row.get("clip_score") is not None:
        doc["clip_score"] = round(float(row["clip_score"]), 6)
    extra = json.loads(row["extra"]) if row["extra"] else {}
    for k, v in extra.items():
        doc.setdefault(k, v)
    return doc


def dataclass_dict(obj) -> dict[str, Any]:
    return dataclasses.asdict(obj)
