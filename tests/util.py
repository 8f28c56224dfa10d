"""Shared test helpers: generated media, running the CLI, reading outputs back."""

from __future__ import annotations

import glob
import io
import json
import os
import struct
import zlib

import numpy as np
import pyarrow.parquet as pq
from PIL import Image

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_DATA = os.path.normpath(os.path.join(REPO, "..", "shared", "data"))


def image(w: int = 320, h: int = 240, seed: int = 0, mode: str = "RGB") -> Image.Image:
    """A smooth random image (compresses like a photo, unique per seed)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 255, (4, 4, 3), dtype=np.uint8)
    img = Image.fromarray(small).resize((w, h), Image.Resampling.BICUBIC)
    return img.convert(mode) if mode != "RGB" else img


def jpeg(w: int = 320, h: int = 240, seed: int = 0, **save) -> bytes:
    buf = io.BytesIO()
    image(w, h, seed).save(buf, "JPEG", quality=save.pop("quality", 90), **save)
    return buf.getvalue()


def encode(img: Image.Image, fmt: str, **save) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **save)
    return buf.getvalue()


def recoloured(img: Image.Image, degrees: float = 180) -> Image.Image:
    """The picture with its chroma (Cb, Cr) turned around grey; luma, what the perceptual
    hashes see, kept: another colour of the same picture."""
    ycc = np.asarray(img.convert("YCbCr"), dtype=np.float64).copy()
    cb, cr = ycc[..., 1] - 128, ycc[..., 2] - 128
    c, s = np.cos(np.deg2rad(degrees)), np.sin(np.deg2rad(degrees))
    ycc[..., 1], ycc[..., 2] = c * cb - s * cr + 128, s * cb + c * cr + 128
    return Image.fromarray(np.clip(np.round(ycc), 0, 255).astype(np.uint8), "YCbCr").convert("RGB")


def png_declaring(w: int, h: int, idat: bytes = b"") -> bytes:
    """A PNG whose header declares w x h pixels (for decompression-bomb tests)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat or zlib.compress(b"\0" * 1024)) + chunk(b"IEND", b"")


def png_bomb(side: int = 32000) -> bytes:
    """A valid PNG of side x side black pixels (side a multiple of 64): a few MB on disk,
    gigapixels decoded. Deflate blocks ending in a full flush can be repeated, so it is built
    in well under a second without ever holding the decoded image."""
    rows = 64
    chunk = b"\0" * ((side * 3 + 1) * rows)
    comp = zlib.compressobj(9)
    first = comp.compress(chunk) + comp.flush(zlib.Z_FULL_FLUSH)
    tail = comp.flush()[:-4]  # the final empty block, without the checksum
    adler = 1
    for _ in range(side // rows):
        adler = zlib.adler32(chunk, adler)
    stream = first[:2] + first[2:] * (side // rows) + tail + struct.pack(">I", adler)
    return png_declaring(side, side, stream)


def write(path: str, data: bytes | str) -> str:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "wb") as f:
        f.write(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def run_cli(*args: str) -> int:
    from mmcurate.pipelines.cli import main

    return main([str(a) for a in args])


def manifest(out: str) -> list[dict]:
    """All manifest rows of a run, in shard order."""
    rows = []
    for path in sorted(glob.glob(os.path.join(out, "shards", "*.parquet"))):
        rows += pq.read_table(path).to_pylist()
    return rows


def by_key(out: str) -> dict[str, dict]:
    return {r["key"]: r for r in manifest(out)}


def stats(out: str) -> dict:
    with open(os.path.join(out, "stats.json"), encoding="utf-8") as f:
        return json.load(f)


def samples(out: str) -> list[dict]:
    """Samples read back with webdataset (raw bytes per member)."""
    import webdataset as wds

    tars = sorted(glob.glob(os.path.join(out, "shards", "*.tar")))
    return list(wds.WebDataset(tars, shardshuffle=False, empty_check=False))


def shard_bytes(out: str) -> dict[str, bytes]:
    result = {}
    for path in sorted(glob.glob(os.path.join(out, "shards", "*.tar"))):
        with open(path, "rb") as f:
            result[os.path.basename(path)] = f.read()
    return result


def upload_tree(s3, local: str, bucket: str, prefix: str) -> str:
    """Copy a local folder to s3://bucket/prefix on the `s3_server` fixture's server (bucket
    created if needed); returns the URL."""
    if bucket not in [b["Name"] for b in s3.client.list_buckets()["Buckets"]]:
        s3.client.create_bucket(Bucket=bucket)
    for root, _, files in os.walk(local):
        for name in files:
            path = os.path.join(root, name)
            s3.client.upload_file(path, bucket, f"{prefix}/{os.path.relpath(path, local)}")
    return f"s3://{bucket}/{prefix}"
