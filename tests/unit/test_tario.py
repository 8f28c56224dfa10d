import io

from webdataset import TarWriter

from mmcurate.pipelines.tario import SampleTarWriter

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
