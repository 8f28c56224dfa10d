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


def read_samples(fileobj: BinaryIO, members_per_sample: int = 3) -> Iterator[dict]:
    """The samples of a tar we wrote, in order, each `members_per_sample` consecutive members
    (image, json, txt). Samples are told apart by position, not key: a staging shard may still
    hold two rows with the same key (dedup has not run yet)."""
    with tarfile.open(fileobj=fileobj, mode="r|") as tar:
        sample: dict = {}
        for info in tar:
            key, _, ext = info.name.partition(".")
            sample["__key__"] = key
            sample[ext] = tar.extractfile(info).read()
            if len(sample) == members_per_sample + 1:
                yield sample
                sample = {}


def image_of(sample: dict) -> tuple[str, bytes]:
    ext = next(e for e in IMAGE_EXTS if e in sample)
    return ext, sample[ext]
