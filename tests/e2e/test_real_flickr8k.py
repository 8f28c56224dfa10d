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
