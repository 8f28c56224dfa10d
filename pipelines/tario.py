"""Writing WebDataset tars with the standard library.

Byte-for-byte what webdataset's `TarWriter(mtime=0, user="", group="", mode=0o444,
format=PAX)` writes, without importing webdataset, which imports torch when it is installed
(about two seconds in every worker process)."""

from __future__ import annotations

import io
import tarfile
from typing import BinaryIO, Iterator

IMAGE_EXTS = ("jpg", "png", "webp")


class SampleTarWriter:
    """Streams samples (`{"__key__": k, ext: bytes, ...}`) into a tar: members named `k.ext`,
    in sorted extension order so a sample's members are adjacent, with fixed mtime, owner and
    mode so the same samples always give the same bytes."""

    def __init__(self, fileobj: BinaryIO):
        self.tar = tarfile.open(fileobj=fileobj, mode="w|", format=tarfile.PAX_FORMAT)

    def write(self, sample: dict) -> None:
        key = sample["__key__"]
        for ext in sorted(k for k in sample if k != "__key__"):
            data = sample[ext]
            info = tarfile.TarInfo(f"{key}.{ext}")
            info.size, info.mtime, info.mode, info.uname, info.gname = len(data), 0, 0o444, "", ""
            self.tar.addfile(info, io.BytesIO(data))

    def close(self) -> None:
        self.tar.close()


def read_samples(fileobj: BinaryIO) -> Iterator[dict]:
    """The samples of a tar we wrote, in order. A sample's members are adjacent; a new one
    starts where the key changes or an extension repeats (a staging shard may still hold two
    rows with the same key: dedup has not run yet), so samples may have any set of members
    (image, json, txt; mp4, jpg, frame jpgs; flac)."""
    with tarfile.open(fileobj=fileobj, mode="r|") as tar:
        sample: dict = {}
        for info in tar:
            key, _, ext = info.name.partition(".")
            if sample and (sample["__key__"] != key or ext in sample):
                yield sample
                sample = {}
            sample["__key__"] = key
            sample[ext] = tar.extractfile(info).read()
        if sample:
            yield sample


def image_of(sample: dict) -> tuple[str, bytes]:
    """The sample's picture: the image, or a video clip's middle frame. ("", b"") for audio."""
    ext = next((e for e in IMAGE_EXTS if e in sample), "")
    return ext, sample.get(ext, b"")


FRAME_PREFIX = "frame"  # staging only: KEY.frame0.jpg … the frames a video clip is scored on


def frames_of(sample: dict) -> list[bytes]:
    """A staged video clip's scoring frames in order; [] for other samples."""
    names = sorted((e for e in sample if e.startswith(FRAME_PREFIX)), key=lambda e: int(e[len(FRAME_PREFIX):].split(".")[0]))
    return [sample[e] for e in names]


def without_frames(sample: dict) -> dict:
    return {e: v for e, v in sample.items() if not e.startswith(FRAME_PREFIX)}
