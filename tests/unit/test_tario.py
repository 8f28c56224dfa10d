import io

import pytest
from webdataset import TarWriter

from mmcurate.pipelines.tario import GroupedTarWriter, SampleTarWriter, read_samples

SAMPLES = [
    {"__key__": "a_1", "jpg": b"\xff\xd8" + b"x" * 700, "txt": "a caption".encode(), "json": b'{"k": 1}'},
    {"__key__": "caf_-0123456789", "png": b"\x89PNG" + b"y" * 5000, "txt": "ünïcode".encode(), "json": b"{}"},
    {"__key__": "k" * 120, "jpg": b"z", "txt": b"", "json": b"{}"},  # a long key needs a PAX header
]


def write(writer_cls, **kw):
    buf = io.BytesIO()
    w = writer_cls(buf, **kw)
    for s in SAMPLES:
        w.write(dict(s))
    w.close()
    return buf.getvalue()


def test_stdlib_writer_is_byte_identical_to_webdatasets():
    ours = write(SampleTarWriter)
    theirs = write(TarWriter, user="", group="", mode=0o444, mtime=0, encoder=False, format="PAX_FORMAT")
    assert ours == theirs and len(ours) % 10240 == 0


def keys_in(data: bytes) -> list[str]:
    return [s["__key__"] for s in read_samples(io.BytesIO(data))]


@pytest.mark.parametrize("spool_bytes", [1 << 20, 1000])  # 1000: the held-back groups go to disk
def test_grouped_writer_puts_each_group_in_one_byte_range(spool_bytes):
    groups = ["train", "val", "test"]
    labels = ["val", "train", "test", "train", "val", "train", "train", "test", "train", "val", "train", "train"]
    written = [(dict(SAMPLES[i % 3], __key__=f"s{i:02d}"), label) for i, label in enumerate(labels)]
    buf = io.BytesIO()
    writer = GroupedTarWriter(buf, groups, spool_bytes=spool_bytes)
    for sample, label in written:
        writer.write(dict(sample), label)
    ranges = writer.close()
    data = buf.getvalue()

    by_group = {g: [s["__key__"] for s, label in written if label == g] for g in groups}
    assert keys_in(data) == by_group["train"] + by_group["val"] + by_group["test"]
    plain = io.BytesIO()  # the same bytes as the plain writer given the samples in group order
    plain_writer = SampleTarWriter(plain)
    for g in groups:
        for sample, label in written:
            if label == g:
                plain_writer.write(dict(sample))
    plain_writer.close()
    assert data == plain.getvalue()
    assert [(g, r["nsamples"]) for g, r in ranges.items()] == [("train", 7), ("val", 3), ("test", 2)]
    assert ranges["train"]["offset"] == 0
    assert ranges["val"]["offset"] == ranges["train"]["bytes"]
    assert ranges["test"]["offset"] == ranges["val"]["offset"] + ranges["val"]["bytes"]
    for g, r in ranges.items():  # each range, ended with two zero blocks, is a tar of its group alone
        assert keys_in(data[r["offset"]: r["offset"] + r["bytes"]] + bytes(1024)) == by_group[g]


def test_a_group_without_samples_has_no_range():
    buf = io.BytesIO()
    writer = GroupedTarWriter(buf, ["train", "val"])
    writer.write(dict(SAMPLES[0]), "val")
    ranges = writer.close()
    assert list(ranges) == ["val"] and ranges["val"]["offset"] == 0 and ranges["val"]["nsamples"] == 1
    assert keys_in(buf.getvalue()) == ["a_1"] and len(buf.getvalue()) % 10240 == 0
