"""Writing WebDataset tars with the standard library.

Byte-for-byte what webdataset's `TarWriter(mtime=0, user="", group="", mode=0o444,
format=PAX)` writes, without importing webdataset, which imports torch when it is installed
(about two seconds in every worker process)."""

from __future__ import annotations

import tarfile
import tempfile
from typing import BinaryIO, Iterator, Sequence

IMAGE_EXTS = ("jpg", "png", "webp")


class SampleTarWriter:
    """Streams samples (`{"__key__": k, ext: bytes, ...}`) into a tar: members named `k.ext`,
    in sorted extension order so a sample's members are adjacent, with fixed mtime, owner and
    mode so the same samples always give the same bytes. `offset` is the tar's length so far:
    where the next sample starts."""

    def __init__(self, fileobj: BinaryIO):
        self.out, self.offset = fileobj, 0

    def write(self, sample: dict) -> None:
        self._put(encode_sample(sample))

    def append(self, encoded: BinaryIO) -> None:
        """Samples already encoded (encode_sample's bytes, one after another), copied as they are."""
        while chunk := encoded.read(1 << 20):
            self._put(chunk)

    def close(self) -> None:
        """The end-of-archive blocks, then zeros up to a whole record, as tarfile writes them."""
        end = self.offset + 2 * tarfile.BLOCKSIZE
        self._put(bytes(end - self.offset + (-end) % tarfile.RECORDSIZE))

    def _put(self, data: bytes) -> None:
        self.out.write(data)
        self.offset += len(data)


def encode_sample(sample: dict) -> bytes:
    """A sample's tar members, header and padded data each, exactly as tarfile's PAX writer
    lays them out (a PAX header first where a name needs it)."""
    key, parts = sample["__key__"], []
    for ext in sorted(k for k in sample if k != "__key__"):
        data = sample[ext]
        info = tarfile.TarInfo(f"{key}.{ext}")
        info.size, info.mtime, info.mode, info.uname, info.gname = len(data), 0, 0o444, "", ""
        parts += [info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape"), data, bytes(-len(data) % tarfile.BLOCKSIZE)]
    return b"".join(parts)


class GroupedTarWriter:
    """Samples written in any order come out grouped: all of the first group, then all of the
    second, ... in `groups` order (within a group, in the order written), so a reader of one
    group reads only its byte range. The first group streams straight to the output; the others
    wait in temporary files (in memory up to `spool_bytes` each, then on disk).
    close() -> {group: {"offset", "bytes", "nsamples"}} for the groups that got samples."""

    def __init__(self, fileobj: BinaryIO, groups: Sequence[str], spool_bytes: int = 64 << 20):
        self.tar, self.first = SampleTarWriter(fileobj), groups[0]
        self.spools = {g: tempfile.SpooledTemporaryFile(max_size=spool_bytes) for g in groups[1:]}
        self.counts = dict.fromkeys(groups, 0)

    def write(self, sample: dict, group: str) -> None:
        if group == self.first:
            self.tar.write(sample)
        else:
            self.spools[group].write(encode_sample(sample))
        self.counts[group] += 1

    def close(self) -> dict[str, dict]:
        ranges = {}
        for group, n in self.counts.items():
            start = self.tar.offset if group != self.first else 0
            if group != self.first:
                spool = self.spools.pop(group)
                spool.seek(0)
                self.tar.append(spool)
                spool.close()
            if n:
                ranges[group] = {"offset": start, "bytes": self.tar.offset - start, "nsamples": n}
        self.tar.close()
        return ranges


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
