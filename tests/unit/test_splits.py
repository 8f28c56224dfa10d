"""Split assignment: a pure function of the key, with the configured fractions."""

from collections import Counter

import pytest

from mmcurate.filters.splits import SplitAssigner, parse_splits
from mmcurate.schemas.config import ConfigError, RunConfig


def test_parse_splits_and_its_errors():
    assert parse_splits("train=0.98, val=0.01,test=0.01") == (("train", 0.98), ("val", 0.01), ("test", 0.01))
    assert parse_splits("all=1") == (("all", 1.0),)
    for bad, why in [("", "expected NAME=FRACTION"), ("train=0.5,val=0.4", "add up to 0.9"), ("train", "not NAME=FRACTION"),
                     ("Train=1", "not NAME=FRACTION"), ("a=x", "'x' is not a number"), ("a=0,b=1", r"in \(0, 1\]"), ("a=0.5,a=0.5", "twice")]:
        with pytest.raises(ValueError, match=why):
            parse_splits(bad)
    with pytest.raises(ConfigError, match="output.splits: fractions add up to 1.1"):
        RunConfig.load(None, ["output.splits=train=0.6,val=0.5"]).validate()


def test_fractions_hold_over_many_keys_and_the_seed_redraws():
    keys = [f"photo_{i:06d}" for i in range(40_000)]
    assign = SplitAssigner("train=0.8,val=0.15,test=0.05")
    counts = Counter(map(assign, keys))
    for name, fraction in (("train", 0.8), ("val", 0.15), ("test", 0.05)):
        sd = (len(keys) * fraction * (1 - fraction)) ** 0.5
        assert abs(counts[name] - len(keys) * fraction) < 4 * sd, (name, counts)
    # a pure function of (key, seed, spec): a new assigner agrees key by key, whatever the order
    again = SplitAssigner("train=0.8,val=0.15,test=0.05")
    assert [again(k) for k in reversed(keys)] == [assign(k) for k in reversed(keys)]
    reseeded = SplitAssigner("train=0.8,val=0.15,test=0.05", seed="v2")
    moved = sum(assign(k) != reseeded(k) for k in keys)
    assert 0.25 * len(keys) < moved < 0.40 * len(keys)  # independent draws: 1 - (0.64+0.0225+0.0025) = 0.335


def test_growing_a_split_only_moves_keys_into_it():
    keys = [f"k{i}" for i in range(5000)]
    small = SplitAssigner("val=0.05,train=0.95")
    large = SplitAssigner("val=0.10,train=0.90")
    assert all(large(k) == "val" for k in keys if small(k) == "val")


def test_clips_of_one_file_are_split_by_the_files_key():
    """A subtitled audio file's clips share its split as a video's do; an uncut file whose own
    name ends in _NNNN keeps its whole key (only clip rows say `clip` in their media)."""
    from mmcurate.pipelines.finalize import split_key

    clip = {"modality": "audio", "key": "talk_0003", "media": '{"clip": 3, "start": 1.0}'}
    uncut = {"modality": "audio", "key": "take_0001", "media": '{"duration": 2.0}'}
    video = {"modality": "video", "key": "film_0012", "media": '{"clip": 12}'}
    image = {"modality": "image", "key": "img_0001", "media": None}
    assert [split_key(r) for r in (clip, uncut, video, image)] == ["talk", "take_0001", "film", "img_0001"]
