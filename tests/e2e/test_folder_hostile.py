"""A folder source full of hostile and unusual inputs: every row gets its exact reason, the
run completes, unusual-but-valid images are kept, and the output validates."""

import json
import os

import pytest
from PIL import Image

from tests.util import by_key, encode, image, jpeg, png_bomb, png_declaring, run_cli, samples, stats, write


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    src = tmp_path_factory.mktemp("folder")
    good = jpeg(400, 300, seed=1)
    exif = Image.Exif()
    exif[0x0112] = 6
    palette = image(300, 200, seed=5).convert("P")
    files = {
        "ok_plain.jpg": good, "ok_plain.txt": "a plain photo",
        "truncated.jpg": good[: len(good) // 2], "truncated.txt": "half a photo",
        "zero.jpg": b"", "zero.txt": "nothing",
        "notimage.jpg": b"GIF? no: plain text", "notimage.txt": "text bytes",
        "declares_huge.png": png_declaring(100_000, 100_000), "declares_huge.txt": "a header bomb",
        "bomb.png": png_bomb(32000), "bomb.txt": "a real gigapixel png",
        "badutf8.jpg": jpeg(300, 300, seed=2), "badutf8.txt": b"caf\xe9 latin-1 bytes",
        "emptycap.jpg": jpeg(300, 300, seed=3), "emptycap.txt": "   ",
        "hugecap.jpg": jpeg(300, 300, seed=4), "hugecap.txt": "word " * 200_000,
        "nosidecar.jpg": jpeg(300, 300, seed=6),
        "dupkey.jpg": jpeg(300, 300, seed=7), "dupkey.png": encode(image(300, 300, seed=8), "PNG"), "dupkey.txt": "two files one key",
        "orphan.txt": "a caption with no image",
        "tiny.jpg": jpeg(20, 20, seed=9), "tiny.txt": "too small",
        "plain_copy.jpg": good, "plain_copy.txt": "the same bytes again",
        "cmyk.jpg": encode(image(300, 200, seed=10).convert("CMYK"), "JPEG"), "cmyk.txt": "a cmyk jpeg",
        "palette.png": encode(palette, "PNG", transparency=0), "palette.txt": "a palette png with transparency",
        "rgba.png": encode(image(300, 200, seed=11).convert("RGBA"), "PNG"), "rgba.txt": "an rgba png",
        "photo.webp": encode(image(300, 200, seed=12), "WEBP"), "photo.txt": "a webp",
        "rotated.jpg": encode(image(400, 200, seed=13), "JPEG", exif=exif.tobytes()), "rotated.txt": "rotated by exif",
        "my.photo.v2.jpg": jpeg(300, 200, seed=14), "my.photo.v2.txt": "dots in the name",
        "café_ünï.jpg": jpeg(300, 200, seed=15), "café_ünï.txt": "non-ascii name",
        "sub/nested.jpg": jpeg(300, 200, seed=16), "sub/nested.json": json.dumps({"caption": "from json", "license": "cc-by"}),
        "README.md": "not a sample",
    }
    for name, data in files.items():
        write(str(src / name), data)
    write(str(src / "dangling.jpg"), jpeg(300, 200, seed=17))
    os.symlink(src / "gone" / "dangling.txt", src / "dangling.txt")  # listed, cannot be read: only its own row fails
    out = tmp_path_factory.mktemp("out") / "out"
    assert run_cli("run", src, "-o", out, "--workers", "1", "--no-progress", "--shard-size", "7") == 0
    return str(out)


EXPECTED = {
    "ok_plain": ("kept", ""),
    "truncated": ("failed", "image.truncated"),
    "zero": ("failed", "image.empty_file"),
    "notimage": ("failed", "image.unidentified"),
    "declares_huge": ("dropped", "image.too_many_pixels"),
    "bomb": ("dropped", "image.too_many_pixels"),
    "badutf8": ("dropped", "text.invalid_utf8"),
    "emptycap": ("dropped", "text.empty"),
    "hugecap": ("dropped", "text.too_long"),
    "nosidecar": ("dropped", "input.missing_caption"),
    "orphan": ("dropped", "input.missing_image"),
    "tiny": ("dropped", "image.too_small"),
    "plain_copy": ("dropped", "duplicate.exact_image"),  # ok_plain is the smaller key
    "cmyk": ("kept", ""), "palette": ("kept", ""), "rgba": ("kept", ""), "photo": ("kept", ""), "rotated": ("kept", ""),
    "sub_nested": ("kept", ""),
    "dangling": ("failed", "input.unreadable"),
}


def test_every_row_has_its_exact_status_and_reason(run):
    rows = by_key(run)
    for key, expected in EXPECTED.items():
        assert (rows[key]["status"], rows[key]["reason"]) == expected, key
    assert rows["plain_copy"]["dup_of"] == "ok_plain"
    dotted = [k for k in rows if k.startswith("my_photo_v2-")]
    accented = [k for k in rows if k.startswith("caf_")]
    assert len(dotted) == 1 and rows[dotted[0]]["status"] == "kept"
    assert len(accented) == 1 and rows[accented[0]]["status"] == "kept"


def test_duplicate_keys_keep_the_first_file(run):
    s = stats(run)
    assert s["dropped"]["input.duplicate_key"] == 1
    # dupkey.jpg sorts before dupkey.png, so the jpg is kept
    kept = [r for r in __import__("tests.util", fromlist=["manifest"]).manifest(run) if r["key"] == "dupkey"]
    assert sorted(r["status"] for r in kept) == ["dropped", "kept"]
    assert next(r for r in kept if r["status"] == "kept")["source"].endswith("dupkey.jpg")
    nosidecar = by_key(run)["nosidecar"]
    assert (nosidecar["reason"], nosidecar["error"]) == ("input.missing_caption", "no text for this image; --require image keeps it without one")
    dropped = next(r for r in kept if r["status"] == "dropped")
    assert dropped["reason"] == "input.duplicate_key" and dropped["error"].startswith("an earlier input row has this key: ")


def test_counts_and_identity(run):
    s = stats(run)
    assert s["inputs"] == 24  # 23 images + 1 orphan caption; README.md is not a sample
    assert s["ignored_files"] == 1
    assert s["kept"] == 10
    assert s["failed"] == {"image.empty_file": 1, "image.truncated": 1, "image.unidentified": 1, "input.unreadable": 1}
    assert s["dropped"] == {
        "duplicate.exact_image": 1, "image.too_many_pixels": 2, "image.too_small": 1, "input.duplicate_key": 1,
        "input.missing_caption": 1, "input.missing_image": 1, "text.empty": 1, "text.invalid_utf8": 1, "text.too_long": 1,
    }
    assert s["inputs"] == s["kept"] + sum(s["dropped"].values()) + sum(s["failed"].values())
    assert s["stages"]["prepare"]["inputs"] == 24 and s["stages"]["dedup"]["inputs"] == 12 and s["stages"]["dedup"]["kept"] == 10
    assert s["identity_ok"] is True
    assert len(s["shards"]) == 4  # 23 stems in folder chunks of 7


def test_kept_samples_read_back(run):
    got = {s["__key__"]: s for s in samples(run)}
    assert len(got) == 10
    for key, sample in got.items():
        assert set(sample) >= {"jpg", "txt", "json"}
        doc = json.loads(sample["json"])
        assert doc["key"] == key and doc["caption"] == sample["txt"].decode()
        img = Image.open(__import__("io").BytesIO(sample["jpg"]))
        assert img.size == (256, 256) and img.mode == "RGB"
    assert json.loads(got["sub_nested"]["json"])["license"] == "cc-by"
    assert json.loads(got["rotated"]["json"])["original_width"] == 200
    assert run_cli("validate", run) == 0


def test_the_summary_names_the_ignored_files(run, capsys):
    """README.md is no input: counted in stats.json, and now shown by `mmcurate stats` too."""
    capsys.readouterr()
    assert run_cli("stats", run) == 0
    out = capsys.readouterr().out
    assert "ignored files" in out and "1 in the input" in out
