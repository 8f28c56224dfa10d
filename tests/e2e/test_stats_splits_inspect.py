"""Splits, distributions and the contact sheet on real runs of generated data."""

import json
from collections import Counter

import numpy as np
import pytest
from PIL import Image

from mmcurate.filters.histogram import histogram
from mmcurate.filters.splits import SplitAssigner
from mmcurate.pipelines.demo import generate
from mmcurate.pipelines.inspect import SheetLayout
from tests.util import manifest, run_cli, samples, stats

SPLITS = "train=0.6,val=0.25,test=0.15"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The same input twice: scored, 16 rows per shard, staging kept; unscored, 7 rows per shard."""
    pytest.importorskip("clip")
    root = tmp_path_factory.mktemp("splits")
    generate(str(root / "in"), samples=60, seed=7)
    a, b = root / "a", root / "b"
    assert run_cli("run", root / "in", "-o", a, "--workers", "2", "--shard-size", "16", "--splits", SPLITS,
                   "--clip-model", "tiny", "--keep-staging", "--set", "image.resize_mode=center_crop", "--no-progress") == 0
    assert run_cli("run", root / "in", "-o", b, "--workers", "2", "--shard-size", "7", "--splits", SPLITS, "--no-progress") == 0
    return a, b


def test_splits_are_per_key_and_survive_resharding(runs):
    a, b = runs
    split_a = {r["key"]: r["split"] for r in manifest(a)}
    split_b = {r["key"]: r["split"] for r in manifest(b)}
    assert len(stats(a)["shards"]) == 4 and len(stats(b)["shards"]) == 9
    assert split_a == split_b and len(split_a) == 60
    assign = SplitAssigner(SPLITS)
    assert all(split == assign(key) for key, split in split_a.items())
    # recorded in the sample json too, and counted per split in stats.json
    read_back = {s["__key__"]: json.loads(s["json"])["split"] for s in samples(a)}
    assert read_back == {k: v for k, v in split_a.items() if k in read_back} and len(read_back) == stats(a)["kept"]
    kept = Counter(r["split"] for r in manifest(a) if r["status"] == "kept")
    assert stats(a)["splits"] == dict(sorted(kept.items())) and set(kept) == {"train", "val", "test"}


def test_distributions_equal_histograms_of_the_manifests(runs):
    a, _ = runs
    rows = manifest(a)
    kept = [r for r in rows if r["status"] == "kept"]
    dists = stats(a)["distributions"]
    assert set(dists) == {"caption_chars", "caption_words", "original_width", "original_height", "image_bytes", "clip_score", "clip_score_scored"}
    expected = {
        "caption_chars": [len(r["caption"]) for r in kept],
        "original_width": [r["original_width"] for r in kept],
        "clip_score": [r["clip_score"] for r in kept],
        "clip_score_scored": [r["clip_score"] for r in rows if r["clip_score"] is not None],
    }
    for name, values in expected.items():
        assert dists[name]["counts"] == histogram(name, values)["counts"], name
        assert dists[name]["count"] == len(values) and dists[name]["max"] == pytest.approx(max(values))
    # the scored-only histogram holds the dropped low scorers as well
    assert dists["clip_score_scored"]["count"] == stats(a)["kept"] + stats(a)["dropped"]["clip.below_threshold"]
    assert np.isclose(dists["clip_score"]["mean"], np.mean(expected["clip_score"]))


def test_contact_sheet_of_kept_samples_has_the_asked_tiles(runs, tmp_path):
    a, _ = runs
    sheet = tmp_path / "sheet.png"
    assert run_cli("inspect", a, "-o", sheet, "--n", "10", "--cols", "4", "--tile", "128") == 0
    tw, th = SheetLayout(tile=128).tile_size
    with Image.open(sheet) as img:
        assert img.size == (4 * tw, 3 * th)
        pixels = np.asarray(img.convert("RGB"))
    # ten tiles carry a picture (not the plain background), the two after them are empty
    pad = SheetLayout().pad
    def painted(i):
        x, y = (i % 4) * tw + pad, (i // 4) * th + pad
        return pixels[y: y + 128, x: x + 128].std() > 5
    assert [painted(i) for i in range(12)] == [True] * 10 + [False] * 2


def test_inspect_selects_by_reason_and_where(runs, tmp_path, capsys):
    a, _ = runs
    rows = manifest(a)
    low = [r for r in rows if r["clip_score"] is not None and r["clip_score"] < 0.5]
    assert run_cli("inspect", a, "-o", tmp_path / "low.png", "--where", "clip_score < 0.5", "--status", "all", "--n", "100") == 0
    assert f"{len(low)} of {len(low)} matching samples" in capsys.readouterr().out
    # dropped duplicates are drawn from the kept staging shards: all of them with their picture
    dups = [r for r in rows if r["reason"] == "duplicate.exact_image"]
    assert dups and run_cli("inspect", a, "-o", tmp_path / "dups.png", "--reason", "duplicate.exact_image") == 0
    out = capsys.readouterr().out
    assert f"{len(dups)} of {len(dups)} matching samples" in out and "(0 without media)" in out
    assert run_cli("inspect", a, "-o", tmp_path / "x.png", "--where", "nope > 1") == 1
    assert "no such column" in capsys.readouterr().err
    assert run_cli("inspect", a, "-o", tmp_path / "x.png", "--reason", "text.too_long") == 1
    assert "no samples" in capsys.readouterr().err
