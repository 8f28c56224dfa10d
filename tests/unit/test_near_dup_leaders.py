"""Leader clustering (filters/near_dup.greedy_leaders): the indexed search gives the same
leaders as comparing each member with every leader, and the groups have the promised shape."""

import random

import numpy as np
import pytest

from mmcurate.filters.near_dup import LeaderIndex, Nearness, caption_shingle_hashes, caption_signature, greedy_leaders, needs_minhash


def members(n: int, seed: int, mirror: bool, captions: bool = False) -> list[dict]:
    """n members around a few centres, each a few bits off its centre, so that groups overlap
    and chain: the order in which leaders are found matters."""
    rng = random.Random(seed)
    centres = [rng.getrandbits(64) for _ in range(max(1, n // 25))]
    texts = ["a brown dog runs across the green grass in the park", "two children build a sandcastle on a sunny beach"]
    out = []
    for i in range(n):
        p = rng.choice(centres)
        for bit in rng.sample(range(64), rng.randint(0, 9)):
            p ^= 1 << bit
        d = p ^ (1 << rng.randrange(64)) if i % 3 else p
        m = {"phash": p, "dhash": d, "phash_mirror": None, "dhash_mirror": None, "minhash": None}
        if mirror and i % 5 == 0:
            m["phash_mirror"], m["dhash_mirror"] = rng.choice(centres), rng.choice(centres)
        if i % 7 == 0:  # some members have no image hashes at all
            m["phash"] = m["dhash"] = None
        if captions:
            m["minhash"] = caption_signature(rng.choice(texts) + ("" if i % 2 else " today")) if i % 4 else None
        out.append(m)
    return out


@pytest.mark.parametrize("image_hash", ["phash", "dhash", "both", "either"])
@pytest.mark.parametrize("mirror", [False, True])
def test_indexed_leaders_equal_comparing_with_every_leader(image_hash, mirror):
    ms = members(600, seed=3, mirror=mirror)
    near = Nearness(ms, "image", image_hash, 6, mirror, 0.8, 128)
    brute = greedy_leaders(len(ms), near)
    indexed = greedy_leaders(len(ms), near, LeaderIndex(near, 0.8, 128))
    assert np.array_equal(brute, indexed)
    leaders = np.flatnonzero(brute == np.arange(len(ms)))
    assert 10 < len(leaders) < len(ms) - 100  # groups formed, and more than one
    # every member is near its leader; no two leaders are near each other
    assert all(near(i, np.array([brute[i]]))[0] for i in range(len(ms)) if brute[i] != i)
    assert not any(near(a, leaders[leaders > a]).any() for a in leaders)


@pytest.mark.parametrize("duplicates,image_hash,mirror", [("image", "phash", False), ("image", "both", True), ("image", "either", True),
                                                       ("caption", "either", False), ("both", "either", False), ("either", "dhash", True)])
def test_identical_members_follow_the_first_one_and_give_the_same_leaders(duplicates, image_hash, mirror):
    """Members repeated many times (blank pictures, stock captions), some without the hashes or
    caption the test reads (copies that are not near each other): the shortcut gives the same
    leaders without asking the test about the copies."""
    rng = random.Random(8)
    base = members(150, seed=5, mirror=mirror, captions=True)
    ms = [dict(rng.choice(base)) for _ in range(900)]
    near = Nearness(ms, duplicates, image_hash, 6, mirror, 0.7, 128)
    same_as = near.same_as()
    assert (same_as < np.arange(len(ms))).sum() > 300
    calls = []

    def counted(i, js):
        calls.append(i)
        return near(i, js)

    want = greedy_leaders(len(ms), near, LeaderIndex(near, 0.7, 128))
    got = greedy_leaders(len(ms), counted, LeaderIndex(near, 0.7, 128), same_as)
    folded = set(np.flatnonzero(same_as < np.arange(len(ms))).tolist())
    assert np.array_equal(got, want) and calls and folded.isdisjoint(calls)  # never asked about a copy
    apart = [(i, j) for i in range(200) for j in range(i + 1, 200) if ms[i] == ms[j] and not near(i, np.array([j]))[0]]
    assert apart and all(same_as[j] != i for i, j in apart)  # (no hashes or caption: identical, yet not near)


@pytest.mark.parametrize("duplicates", ["caption", "both", "either"])
def test_caption_leaders_group_equal_captions(duplicates):
    ms = members(200, seed=4, mirror=False, captions=True)
    near = Nearness(ms, duplicates, "either", 6, False, 0.7, 128)
    lead = greedy_leaders(len(ms), near, LeaderIndex(near, 0.7, 128))
    assert all(near(i, np.array([lead[i]]))[0] for i in range(len(ms)) if lead[i] != i)
    if duplicates == "caption":  # 2 texts, each also with " today" (Jaccard 8/9): 2 leaders, plus each member without a caption
        assert int((lead == np.arange(len(ms))).sum()) == 2 + sum(m["minhash"] is None for m in ms)


def test_caption_nearness_reads_the_exact_ngram_sets_where_members_have_them():
    """Three members with one MinHash signature (estimate 1.0) whose captions differ: with
    their n-gram sets, only the two equal captions are near, and only they are one copy for
    `same_as`; without the sets, the estimate makes all three one group."""
    same = caption_signature("a cat sleeps on a warm windowsill in the afternoon sun")
    texts = ["a cat sleeps on a warm windowsill in the afternoon sun", "two boys play football on a muddy field after school",
             "a cat sleeps on a warm windowsill in the afternoon sun"]
    ms = [{"phash": None, "dhash": None, "phash_mirror": None, "dhash_mirror": None, "minhash": same,
           "caption_shingles": caption_shingle_hashes(t)} for t in texts]
    near = Nearness(ms, "caption", "phash", 8, False, 0.8, 128)
    assert near(0, np.array([1, 2])).tolist() == [False, True] and near(1, np.array([2])).tolist() == [False]
    assert near.same_as().tolist() == [0, 1, 0]
    assert greedy_leaders(3, near, LeaderIndex(near, 0.8, 128), near.same_as()).tolist() == [0, 1, 0]
    for m in ms:
        m["caption_shingles"] = None
    near = Nearness(ms, "caption", "phash", 8, False, 0.8, 128)
    assert near(0, np.array([1, 2])).tolist() == [True, True] and near.same_as().tolist() == [0, 0, 0]
    assert greedy_leaders(3, near, LeaderIndex(near, 0.8, 128), near.same_as()).tolist() == [0, 0, 0]


def test_a_leader_takes_the_members_near_it_before_later_leaders_do():
    base = 0x0123456789ABCDEF
    ms = [{"phash": h, "dhash": h, "phash_mirror": None, "dhash_mirror": None, "minhash": None}
          for h in (base, base ^ 0b1111, base ^ 0b11, base ^ (0b1111 << 8), base ^ 0b11 ^ (0b1111 << 8))]
    # k = 4: 1 and 2 are near 0; 3 is near 0; 4 is 6 from 0, 2 from 3... but 3 is no leader
    near = Nearness(ms, "image", "phash", 4, False, 0.8, 128)
    assert greedy_leaders(5, near, LeaderIndex(near, 0.8, 128)).tolist() == [0, 0, 0, 0, 4]


def caption_members(seed: int, threshold: float) -> list[dict]:
    """Captions around a few bases (words dropped, added), many pairs near `threshold`; a fifth
    of them long (more than 256 3-grams: no n-gram set, the estimate decides). Each member's
    MinHash only where `needs_minhash` says so, as the near stage sends them."""
    rng = random.Random(seed)
    vocab = [f"w{i}" for i in range(50)]
    bases = [[rng.choice(vocab) for _ in range(rng.randint(4, 24))] for _ in range(6)]
    bases += [[f"long{b}_{i}" for i in range(300)] for b in range(2)]
    out = []
    for i in range(400):
        words = list(rng.choice(bases))
        for _ in range(rng.randint(0, 2)):
            words.insert(rng.randrange(len(words) + 1), rng.choice(vocab))
        text = " ".join(words)
        m = {"phash": None, "dhash": None, "phash_mirror": None, "dhash_mirror": None,
             "minhash": caption_signature(text), "caption_shingles": caption_shingle_hashes(text)}
        out.append(m)
    return out


@pytest.mark.parametrize("threshold", [0.7, 0.8])
def test_captions_without_their_minhash_get_the_same_leaders_by_their_ngram_prefixes(threshold):
    """The near stage drops the MinHash of captions whose sets are too small to need it: the
    leader index then finds them by the prefixes of their n-gram sets. Leaders equal comparing
    each member with every leader, and equal the leaders with every MinHash present."""
    full = caption_members(11, threshold)
    need = needs_minhash([m["caption_shingles"] for m in full], threshold)
    trimmed = [dict(m, minhash=m["minhash"] if n else None) for m, n in zip(full, need)]
    assert 0 < need.sum() < len(full) - 200  # the long captions keep theirs
    want = greedy_leaders(len(full), Nearness(full, "caption", "phash", 8, False, threshold, 128))
    near = Nearness(trimmed, "caption", "phash", 8, False, threshold, 128)
    assert np.array_equal(greedy_leaders(len(trimmed), near), want)
    assert np.array_equal(greedy_leaders(len(trimmed), near, LeaderIndex(near, threshold, 128), near.same_as()), want)
    joined = want != np.arange(len(want))
    assert (joined & ~need).sum() > 100 and (joined & need).sum() > 50  # short captions joined, and long ones
    leaders = np.flatnonzero(~joined)
    assert not any(near(a, leaders[leaders > a]).any() for a in leaders)


def test_a_caption_with_an_empty_ngram_set_is_near_only_another_empty_one():
    texts = ["!!!", "...", "a dog runs"]
    ms = [{"phash": None, "dhash": None, "phash_mirror": None, "dhash_mirror": None, "minhash": None,
           "caption_shingles": caption_shingle_hashes(t)} for t in texts]
    near = Nearness(ms, "caption", "phash", 8, False, 0.8, 128)
    assert ms[0]["caption_shingles"] == b"" and near(0, np.array([1, 2])).tolist() == [True, False]
    assert greedy_leaders(3, near, LeaderIndex(near, 0.8, 128)).tolist() == [0, 0, 2]
