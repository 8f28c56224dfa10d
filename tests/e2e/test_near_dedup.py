"""Near-duplicate removal end to end: planted variants are dropped with their reason, the
survivor by policy, the distance recorded; clusters.parquet and stats agree; `--dedup exact`
turns it off."""

import io

import numpy as np
import pyarrow.parquet as pq
from PIL import Image, ImageEnhance

from tests.util import by_key, recoloured, run_cli, stats, write


def picture(seed: int, w: int = 400, h: int = 300) -> Image.Image:
    field = np.random.default_rng(seed).integers(0, 255, (8, 8, 3), dtype=np.uint8)
    return Image.fromarray(field).resize((w, h), Image.Resampling.BICUBIC)


def save(img: Image.Image, fmt: str = "JPEG", **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def folder(tmp_path):
    d = tmp_path / "in"
    for i in range(10):
        write(d / f"b{i:02d}.jpg", save(picture(i), quality=92))
        write(d / f"b{i:02d}.txt", f"picture number {i} with its own words")
    write(d / "b00_small.jpg", save(picture(0).resize((200, 150), Image.Resampling.BICUBIC), quality=70))
    write(d / "b01_png.png", save(Image.open(d / "b01.jpg"), "PNG"))
    write(d / "b02_bright.jpg", save(ImageEnhance.Brightness(Image.open(d / "b02.jpg")).enhance(1.1), quality=92))
    write(d / "zdup_03.jpg", (d / "b03.jpg").read_bytes())
    for name in ("b00_small", "b01_png", "b02_bright", "zdup_03"):
        write(d / f"{name}.txt", f"a caption for {name}")
    return d


def test_planted_variants_are_dropped_with_reason_survivor_and_distance(tmp_path):
    src, out = folder(tmp_path), tmp_path / "out"
    assert run_cli("run", src, "-o", out, "--workers", "1", "--no-progress") == 0
    rows = by_key(out)
    dropped = {k: (r["reason"], r["dup_of"]) for k, r in rows.items() if r["status"] == "dropped"}
    assert dropped == {
        "b00_small": ("duplicate.near_image", "b00"),  # fewer pixels than the original
        "b01_png": ("duplicate.near_image", "b01"),  # same pixels: the smaller key survives
        "b02_bright": ("duplicate.near_image", "b02"),
        "zdup_03": ("duplicate.exact_image", "b03"),
    }
    for key in ("b00_small", "b01_png", "b02_bright"):
        assert 0 <= rows[key]["dup_distance"] <= 8
    assert rows["zdup_03"]["dup_distance"] is None
    assert all(r["phash"] is not None and r["dhash"] is not None for r in rows.values())
    clusters = pq.read_table(out / "dedup" / "clusters.parquet").to_pylist()
    assert [(c["key"], c["survivor"], c["reason"], c["size"]) for c in clusters] == [
        ("b00", "b00", "", 2), ("b00_small", "b00", "duplicate.near_image", 2),
        ("b01", "b01", "", 2), ("b01_png", "b01", "duplicate.near_image", 2),
        ("b02", "b02", "", 2), ("b02_bright", "b02", "duplicate.near_image", 2),
    ]
    assert [c["distance"] for c in clusters if c["reason"]] == [rows[k]["dup_distance"] for k in ("b00_small", "b01_png", "b02_bright")]
    s = stats(out)
    assert s["kept"] == 10 and s["dropped"] == {"duplicate.near_image": 3, "duplicate.exact_image": 1}
    assert s["dedup"]["clusters"] == 3 and s["dedup"]["clustered_samples"] == 6
    counters = s["dedup"]["counters"]  # pHash and dHash each find the pairs within k
    assert 3 <= counters["image_edges"] <= 6 and counters["oversized_buckets"] == 0 and counters["largest_bucket"] >= 2
    assert run_cli("validate", out) == 0


def test_blank_pictures_of_many_sizes_are_folded_and_dropped_for_the_largest(tmp_path):
    """Twelve white pictures of different sizes hash and colour identically: the search takes
    one (each of pHash's and dHash's searches folds the other 11), and the largest survives."""
    d, out = tmp_path / "in", tmp_path / "out"
    for i in range(12):
        write(d / f"blank{i:02d}.png", save(Image.new("RGB", (100 + 20 * i, 80 + 10 * i), "white"), "PNG"))
        write(d / f"blank{i:02d}.txt", f"an empty white picture, number {i}")
    for i in range(2):
        write(d / f"photo{i}.jpg", save(picture(i), quality=90))
        write(d / f"photo{i}.txt", f"a photo number {i}")
    assert run_cli("run", d, "-o", out, "--workers", "1", "--no-progress") == 0
    rows = by_key(out)
    dropped = {k: (r["reason"], r["dup_of"], r["dup_distance"]) for k, r in rows.items() if r["status"] == "dropped"}
    assert dropped == {f"blank{i:02d}": ("duplicate.near_image", "blank11", 0.0) for i in range(11)}
    s = stats(out)
    assert s["kept"] == 3 and s["dedup"]["counters"]["identical_folded"] == 2 * 11
    clusters = pq.read_table(out / "dedup" / "clusters.parquet").to_pylist()
    assert len(clusters) == 12 and {(c["survivor"], c["size"]) for c in clusters} == {("blank11", 12)}


def test_dedup_exact_keeps_near_duplicates_and_writes_no_clusters(tmp_path):
    src, out = folder(tmp_path), tmp_path / "out"
    assert run_cli("run", src, "-o", out, "--workers", "1", "--no-progress", "--dedup", "near") == 0
    assert (out / "dedup" / "clusters.parquet").exists()
    assert run_cli("run", src, "-o", out, "--workers", "1", "--no-progress", "--dedup", "exact") == 0  # rerun into the same folder
    s = stats(out)
    assert s["kept"] == 13 and s["dropped"] == {"duplicate.exact_image": 1} and "dedup" not in s
    assert not (out / "dedup" / "clusters.parquet").exists()


def test_staging_is_reused_only_when_its_settings_match(tmp_path):
    """A rerun reuses finished staging shards, but not ones prepared without the signatures
    the new run needs (they would silently never cluster)."""
    src, out = folder(tmp_path), tmp_path / "out"
    common = ["-o", out, "--workers", "1", "--no-progress", "--keep-staging"]
    assert run_cli("run", src, *common, "--dedup", "exact") == 0
    (manifest,) = (out / "_staging" / "prepare").glob("*.parquet")
    first = manifest.stat().st_mtime_ns
    assert run_cli("run", src, *common, "--dedup", "exact") == 0
    assert manifest.stat().st_mtime_ns == first  # same settings: resumed, not redone
    assert run_cli("run", src, *common, "--dedup", "near") == 0
    assert manifest.stat().st_mtime_ns != first  # signatures needed now: redone
    assert stats(out)["dropped"] == {"duplicate.near_image": 3, "duplicate.exact_image": 1}


def test_colour_tells_apart_pictures_whose_grey_levels_match(tmp_path):
    """Flat swatches hash identically and a recoloured picture nearly so: only the true copy
    (the red swatch, smaller and re-encoded) is dropped. With dedup.max_colour_distance 0
    (colours ignored) the swatches and the recoloured picture are dropped too."""
    d = tmp_path / "in"
    swatches = {"blue": (30, 60, 200), "red": (220, 30, 30), "white": (250, 250, 250)}
    for name, rgb in swatches.items():
        write(d / f"{name}.png", save(Image.new("RGB", (256, 256), rgb), "PNG"))
    write(d / "red_small.jpg", save(Image.new("RGB", (200, 200), swatches["red"]), quality=80))
    write(d / "b05.jpg", save(picture(5), quality=92))
    write(d / "b05_recoloured.jpg", save(recoloured(picture(5)), quality=92))
    for name in (*swatches, "red_small", "b05", "b05_recoloured"):
        write(d / f"{name}.txt", f"a caption for {name}")
    out = tmp_path / "out"
    assert run_cli("run", d, "-o", out, "--workers", "1", "--no-progress") == 0
    rows = by_key(out)
    assert {k: (r["reason"], r["dup_of"]) for k, r in rows.items() if r["status"] != "kept"} == {"red_small": ("duplicate.near_image", "red")}
    assert all(len(r["colour"]) == 12 for r in rows.values())
    out_off = tmp_path / "out_off"
    assert run_cli("run", d, "-o", out_off, "--workers", "1", "--no-progress", "--set", "dedup.max_colour_distance=0") == 0
    dropped = {k: (r["reason"], r["dup_of"]) for k, r in by_key(out_off).items() if r["status"] != "kept"}
    assert dropped == {  # same pixel count: the smallest key survives
        "red": ("duplicate.near_image", "blue"), "white": ("duplicate.near_image", "blue"), "red_small": ("duplicate.near_image", "blue"),
        "b05_recoloured": ("duplicate.near_image", "b05"),
    }


def test_near_duplicate_captions_are_dropped_for_their_survivor(tmp_path):
    """--duplicates caption through prepare: the captions are signed in a batch per staging
    shard (caption_signatures_many), equal to datasketch's MinHash of their word 3-grams."""
    from datasketch import MinHash

    from mmcurate.filters.near_dup import shingles

    d = tmp_path / "in"
    base = "a brown dog runs along the sandy beach chasing a red ball near the water"
    captions = {"c00": base, "c01": base + " today", "c02": "two children build a tall sandcastle under a blue umbrella",
                "c03": "A brown dog runs along the sandy beach, chasing a red ball near the water!", "c04": "",
                "c05": "a cat"}
    for i, (key, caption) in enumerate(captions.items()):
        write(d / f"{key}.jpg", save(picture(100 + i), quality=92))
        write(d / f"{key}.txt", caption)
    out = tmp_path / "out"
    assert run_cli("run", d, "-o", out, "--workers", "1", "--no-progress", "--duplicates", "caption", "--require", "image",
                   "--keep-staging", "--set", "output.splits=train=1.0") == 0
    rows = by_key(out)
    dropped = {k: (r["reason"], r["dup_of"], r["dup_distance"] and round(r["dup_distance"], 6)) for k, r in rows.items() if r["status"] == "dropped"}
    # c01: 13 of its 14 word 3-grams are c00's (Jaccard 13/14); c03: the same 3-grams (case and punctuation fold)
    assert dropped == {"c01": ("duplicate.near_caption", "c00", round(1 - 13 / 14, 6)), "c03": ("duplicate.near_caption", "c00", 0.0)}
    assert stats(out)["kept"] == 4 and rows["c04"]["status"] == "kept"  # (an empty text is no text: --require image keeps it)
    staged = [r for f in sorted((out / "_staging" / "prepare").glob("*.parquet")) for r in pq.read_table(f).to_pylist()]
    assert sorted(r["key"] for r in staged) == sorted(captions)
    for r in staged:
        if not captions[r["key"]]:
            assert r["minhash"] is None  # no caption: nothing to sign
            continue
        m = MinHash(num_perm=128, seed=1)
        m.update_batch(list(shingles(r["caption"])))
        assert r["minhash"] == np.asarray(m.hashvalues, dtype="<u4").tobytes(), r["key"]
