"""Real photos: ../shared/data/flickr8k (skipped when ../shared is absent)."""

import json
import os

import pytest

from tests.util import run_cli, samples, stats


@pytest.mark.shared
def test_flickr8k_keeps_all_1000_photos_with_their_5_captions(shared_data, tmp_path):
    root = os.path.join(shared_data, "flickr8k")
    out = tmp_path / "out"
    assert run_cli("run", os.path.join(root, "captions.txt"), "--format", "flickr", "--images", os.path.join(root, "images"), "-o", out, "--no-progress", "--shard-size", "250") == 0
    s = stats(out)
    assert s["inputs"] == 1000 and s["kept"] == 1000, (s["dropped"], s["failed"])
    got = samples(out)
    assert len(got) == 1000
    for sample in got:
        doc = json.loads(sample["json"])
        assert len(doc["captions"]) == 5 and doc["caption"] == doc["captions"][0] == sample["txt"].decode()
        assert max(doc["original_width"], doc["original_height"]) == 500 or min(doc["original_width"], doc["original_height"]) > 100
    assert run_cli("validate", out) == 0
    # curated again from its own shards: the photos are padded to squares now (border resize),
    # and the near-duplicate test looks between the bars, so no photo is a duplicate of another
    again = tmp_path / "again"
    assert run_cli("run", str(out / "shards" / "{00000..00003}.tar"), "--format", "webdataset", "-o", again, "--no-progress") == 0
    assert (stats(again)["kept"], stats(again)["dropped"]) == (1000, {})


# the photos with one caption the shipped language model labels other than English (short
# captions: "snowy" reads as Polish); benchmarks/bench_language.py measures the whole set
ONE_CAPTION_NOT_ENGLISH = [
    "1057210460_09c6f4c6c1", "108899015_bf36131a57", "1234293791_6566284bcd", "1287073593_f3d2a62455",
    "1397923690_d3bf1f799e", "1536597926_c2e1bc2379", "171488318_fb26af58e2", "179829865_095b040377",
    "189721896_1ffe76d89e", "2056041678_d6b5b39b26", "2056042552_f59e338533", "2083778090_3aecaa11cc",
]


@pytest.mark.shared
def test_flickr8k_in_english_only_keeps_every_photo_and_its_english_captions(shared_data, tmp_path):
    root = os.path.join(shared_data, "flickr8k")
    with open(os.path.join(root, "captions.txt"), encoding="utf-8") as f:
        header, *lines = f.read().splitlines()
    names = sorted({line.split(".jpg,")[0] for line in lines})
    chosen = set(ONE_CAPTION_NOT_ENGLISH) | set([n for n in names if n not in ONE_CAPTION_NOT_ENGLISH][:8])
    subset = tmp_path / "captions.txt"
    subset.write_text("\n".join([header] + [line for line in lines if line.split(".jpg,")[0] in chosen]) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    assert run_cli("run", subset, "--format", "flickr", "--images", os.path.join(root, "images"), "-o", out,
                   "--no-progress", "--workers", "1", "--languages", "en") == 0
    s = stats(out)
    assert (s["inputs"], s["kept"], s["dropped"], s["failed"], s["languages"]) == (20, 20, {}, {}, {"en": 20})
    docs = {x["__key__"]: json.loads(x["json"]) for x in samples(out)}
    assert {k: len(d["captions"]) for k, d in docs.items()} == {n: 4 if n in ONE_CAPTION_NOT_ENGLISH else 5 for n in chosen}
    assert all(d["caption"] == d["captions"][0] and d["caption_language"] == "en" for d in docs.values())
