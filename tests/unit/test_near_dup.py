"""Exactness of the near-duplicate primitives against brute force and datasketch."""

import hashlib
import io
import random
from unittest.mock import patch

import numpy as np
import pytest

from mmcurate.filters import near_dup
from tests.util import encode, recoloured


def planted_hashes(n=20_000, planted=3_000, k=8, seed=0):
    rng = random.Random(seed)
    items = [(f"r{i:05d}", rng.getrandbits(64)) for i in range(n - planted)]
    for j in range(planted):  # neighbours at distance 1..k+2 (some just past the boundary)
        _, h = items[rng.randrange(len(items))]
        for bit in rng.sample(range(64), rng.randint(1, k + 2)):
            h ^= 1 << bit
        items.append((f"p{j:05d}", h))
    return items


@pytest.mark.parametrize("k", [3, 8, 10])
def test_banded_search_equals_brute_force_on_20000_hashes(k):
    items = planted_hashes(k=k)
    expected = {tuple(sorted(p)) for p in near_dup.brute_force_pairs(items, k)}
    got = {tuple(sorted(p)) for p in near_dup.banded_pairs(items, k)}
    assert got == expected and len(expected) > 1000


def test_blocks_cover_all_bits_and_pigeonhole_holds():
    for k in range(0, 16):
        bounds = near_dup.block_bounds(k)
        assert len(bounds) == k + 1 and bounds[0][0] == 0 and bounds[-1][1] == 64
        assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
    rng = random.Random(1)
    for _ in range(2000):
        k = rng.randint(0, 12)
        a = rng.getrandbits(64)
        b = a
        for bit in rng.sample(range(64), k):
            b ^= 1 << bit
        bounds = near_dup.block_bounds(k)
        assert any(x == y for x, y in zip(near_dup.block_values(a, bounds), near_dup.block_values(b, bounds)))


def test_each_pair_is_reported_from_exactly_one_block():
    items = planted_hashes(n=3000, planted=600, k=6, seed=5)
    hashes = np.array([h for _, h in items], dtype=np.uint64)
    idx = np.arange(len(items), dtype=np.int64)
    bounds = near_dup.block_bounds(6)
    reported = []
    for block in range(7):
        a, b, d, _ = near_dup.block_group_pairs(idx, hashes, block, bounds, 6)
        reported += list(zip(a.tolist(), b.tolist()))
        assert all(int(x) == (int(hashes[i]) ^ int(hashes[j])).bit_count() for i, j, x in zip(a, b, d))
    assert len(reported) == len(set(reported)) > 400


def test_sub_blocks_split_the_other_bits():
    bounds = near_dup.block_bounds(8)
    for block in range(9):
        masks = near_dup.sub_block_masks(block, bounds, 8)
        start, end = bounds[block]
        top = ((1 << (end - start)) - 1) << start
        assert len(masks) == 9 and sum(int(m) for m in masks) + top == 2**64 - 1
        assert all(int(m) & top == 0 for m in masks)


def test_caption_band_candidates_equal_datasketch():
    from datasketch import MinHashLSH

    rng = random.Random(3)
    words = "a the dog cat man woman red blue running on beach with ball near tree in park".split()
    captions = [" ".join(rng.choice(words) for _ in range(rng.randint(8, 16))) for _ in range(300)]
    captions += [c + " today" for c in captions[:80]] + [c.replace("dog", "puppy") for c in captions[80:140]]
    from datasketch import MinHash

    minhashes = []
    for c in captions:
        m = MinHash(num_perm=128, seed=1)
        m.update_batch(list(near_dup.shingles(c)))
        minhashes.append(m)
    bands, rows = near_dup.lsh_params(0.8, 128)
    lsh = MinHashLSH(threshold=0.8, num_perm=128, weights=(0.05, 0.95))  # (recall-weighted bands: lsh_params)
    for i, m in enumerate(minhashes):
        lsh.insert(i, m)
    expected = {tuple(sorted((i, other))) for i, m in enumerate(minhashes) for other in lsh.query(m) if other != i}
    sigs = near_dup.signature_matrix([near_dup.caption_signature(c) for c in captions], 128)
    digests = near_dup.band_hashes(sigs, bands, rows)
    ids = np.arange(len(captions), dtype=np.int64)
    got = []
    for band in range(bands):
        a, b = near_dup.band_group_pairs(ids, digests[:, band])
        got += list(zip(a.tolist(), b.tolist()))
    assert (lsh.b, lsh.r) == (bands, rows)
    assert set(got) == expected and len(expected) >= 80
    assert len(got) > len(expected)  # near pairs share several bands: one pair from each
    a, b = near_dup.unique_pairs(np.array([x for x, _ in got]), np.array([y for _, y in got]))
    assert list(zip(a.tolist(), b.tolist())) == sorted(expected)


def test_components_scipy_equals_union_find_and_breadth_first_search():
    rng = random.Random(7)
    nodes = list(range(10_000, 12_000))
    edges = [(rng.choice(nodes), rng.choice(nodes)) for _ in range(1500)]
    edges += [(nodes[i], nodes[i + 1]) for i in range(100, 160)]  # a long chain
    edges = [e for e in edges if e[0] != e[1]]
    uf = near_dup.union_find_labels(nodes, edges)
    touched, labels = near_dup.component_labels(np.array([a for a, _ in edges]), np.array([b for _, b in edges]))
    assert {n: uf[n] for n in touched.tolist()} == dict(zip(touched.tolist(), labels.tolist()))
    adjacency = {n: set() for n in nodes}
    for a, b in edges:
        adjacency[a].add(b)
        adjacency[b].add(a)
    seen = {}
    for start in nodes:  # an independent reference: breadth-first components
        if start in seen:
            continue
        component, frontier = {start}, [start]
        while frontier:
            frontier = [m for n in frontier for m in adjacency[n] if m not in component]
            component.update(frontier)
        for n in component:
            seen[n] = min(component)
    assert uf == seen and uf[nodes[160]] == uf[nodes[100]]


def test_caption_shingle_sets_give_the_exact_jaccard_of_word_ngrams():
    rng = random.Random(5)
    words = "a the dog cat man woman red blue running on beach with ball near tree in park".split()
    captions = [" ".join(rng.choice(words) for _ in range(rng.randint(1, 20))) for _ in range(200)]
    captions += ["", "!!!", "A dog, RUNNING on the beach.", "a dog running on the beach"]
    blobs = [near_dup.caption_shingle_hashes(c) for c in captions]
    for c, blob in zip(captions, blobs):  # one sorted 64-bit value per distinct n-gram
        values = np.frombuffer(blob, dtype="<u8")
        assert len(values) == len(near_dup.shingles(c)) and np.all(np.diff(values) > 0)
        assert near_dup.caption_signatures_many([c]) == [(near_dup.caption_signature(c), blob)]  # (prepare's one pass)
    for i in range(len(captions)):
        for j in range(i, len(captions)):
            x, y = near_dup.shingles(captions[i]), near_dup.shingles(captions[j])
            want = len(x & y) / len(x | y) if x | y else 1.0
            assert near_dup.shingle_jaccard(blobs[i], blobs[j]) == want
    assert near_dup.shingle_jaccard(blobs[-2], blobs[-1]) == 1.0  # case and punctuation: the same n-grams
    long_caption = " ".join(f"w{i}" for i in range(near_dup.MAX_EXACT_SHINGLES + 3))  # 257 3-grams: not stored; one word less: 256, stored
    assert len(near_dup.caption_shingle_hashes(long_caption[: long_caption.rfind(" ")])) == 8 * near_dup.MAX_EXACT_SHINGLES
    assert near_dup.caption_shingle_hashes(long_caption) is None


def test_caption_similarity_is_exact_where_both_sets_exist_else_the_estimate():
    texts = ["a man rides a red bike down a steep hill in the rain today",
             "a man rides a red bike down a steep hill in the rain",
             "a woman walks a small dog along the river bank at dawn"]
    sigs = near_dup.signature_matrix([near_dup.caption_signature(t) for t in texts], 128)
    sets = [near_dup.caption_shingle_hashes(t) for t in texts]
    estimate = near_dup.estimated_jaccard(sigs[0], sigs)
    got = near_dup.caption_similarity(sigs[0], sigs, [sets[0]] * 3, [sets[0], None, sets[2]])
    assert got.tolist() == [1.0, estimate[1], 0.0]  # the middle one has no set: its estimate
    assert estimate[1] != 11 / 12  # (12 and 11 distinct 3-grams, 11 shared; the estimate differs)
    assert near_dup.caption_similarity(sigs[:1], sigs[1:2], sets[:1], sets[1:2]).tolist() == [11 / 12]


def test_identical_groups_keep_the_smallest_id_of_each_and_only_eligible_rows_fold():
    ids = np.array([50, 10, 30, 20, 40, 60, 70])
    h = np.array([1, 2, 1, 1, 2, 3, 1], dtype=np.uint64)
    colour = np.array([[1, 2], [1, 2], [1, 2], [9, 9], [1, 2], [1, 2], [1, 2]], dtype=np.uint8)
    keep, member, representative = near_dup.identical_groups(ids, [h, colour])
    assert keep.tolist() == [False, True, True, True, False, True, False]  # 30 leads 50 and 70; 10 leads 40
    assert sorted(zip(ids[member].tolist(), ids[representative].tolist())) == [(40, 10), (50, 30), (70, 30)]
    eligible = np.array([True, True, True, True, False, True, False])  # 40 and 70 are searched as they are
    keep, member, representative = near_dup.identical_groups(ids, [h], eligible)
    assert keep.tolist() == [False, True, False, True, True, True, True]
    assert sorted(zip(ids[member].tolist(), ids[representative].tolist())) == [(30, 20), (50, 20)]
    keep, member, _ = near_dup.identical_groups(ids[:1], [h[:1]])
    assert keep.tolist() == [True] and len(member) == 0


def test_signatures_are_deterministic_and_mirror_aware():
    from PIL import Image, ImageOps

    field = np.random.default_rng(0).integers(0, 255, (8, 8, 3), dtype=np.uint8)
    img = Image.fromarray(field).resize((400, 300), Image.Resampling.BICUBIC)
    h = near_dup.image_hashes(img, mirror=True)
    flipped = near_dup.image_hashes(ImageOps.mirror(img), mirror=True)
    assert h == near_dup.image_hashes(img, mirror=True) and 0 <= h["phash"] < 2**64
    assert (h["phash_mirror"], h["dhash_mirror"]) == (flipped["phash"], flipped["dhash"])
    assert near_dup.image_hashes(img)["phash_mirror"] is None
    sig = near_dup.caption_signature("a dog runs on the beach")
    assert len(sig) == 512 and sig == near_dup.caption_signature("A dog runs on the beach!")  # case and punctuation fold
    assert near_dup.survivor_rank("resolution", "b", 800 * 600) < near_dup.survivor_rank("resolution", "a", 400 * 300)
    assert near_dup.survivor_rank("resolution", "a", 100) < near_dup.survivor_rank("resolution", "b", 100)
    assert near_dup.survivor_rank("key", "a", 1) < near_dup.survivor_rank("key", "b", 800 * 600)


def test_signatures_equal_the_libraries_own():
    """The fast paths (copied empty MinHash, bits without the hex string) give exactly what
    datasketch and imagehash give."""
    import imagehash
    from datasketch import MinHash

    # batched (caption_signatures_many), one at a time, and across batch boundaries: captions
    # without words, with fewer words than an n-gram, repeated n-grams, non-Latin script
    rng = random.Random(11)
    words = "a the dog cat man woman red blue running on beach with ball near tree in park".split()
    texts = ["a dog runs on the beach", "two children build a sandcastle on a sunny beach", "x", "", "!!!", "the the the the",
             "猫が 窓辺で 眠る 午後", "a b"] + [" ".join(rng.choice(words) for _ in range(rng.randint(0, 30))) for _ in range(600)]
    want = []
    for text in texts:
        m = MinHash(num_perm=128, seed=1)
        m.update_batch(list(near_dup.shingles(text)))
        want.append(np.asarray(m.hashvalues, dtype="<u4").tobytes())
    assert [near_dup.caption_signature(t) for t in texts] == want
    texts.insert(5, " ".join(f"w{i}" for i in range(near_dup.MAX_EXACT_SHINGLES + 3)))  # too many n-grams for a stored set
    m = MinHash(num_perm=128, seed=1)
    m.update_batch(list(near_dup.shingles(texts[5])))
    want.insert(5, np.asarray(m.hashvalues, dtype="<u4").tobytes())
    # the n-gram sets: each n-gram's 8-byte blake2b, sorted (what older staging shards hold)
    sets = [None if len(near_dup.shingles(t)) > near_dup.MAX_EXACT_SHINGLES else np.array(sorted(
            int.from_bytes(hashlib.blake2b(g, digest_size=8).digest(), "little") for g in near_dup.shingles(t)), dtype="<u8").tobytes()
            for t in texts]
    with patch.object(near_dup, "_SIGNATURE_BATCH", 7):
        assert near_dup.caption_signatures_many(texts) == list(zip(want, sets))
    assert sets[5] is None and [near_dup.caption_shingle_hashes(t) for t in texts] == sets
    assert [s for s, _ in near_dup.caption_signatures_many(texts, num_perm=64, ngram=2)] == [
        np.asarray(_datasketch(near_dup.shingles(t, 2), 64).hashvalues, dtype="<u4").tobytes() for t in texts]
    rng = np.random.default_rng(0)
    for _ in range(50):
        h = imagehash.ImageHash(rng.integers(0, 2, (8, 8)).astype(bool))
        assert near_dup._bits(h) == int(str(h), 16)


def test_audio_quality_ranks_rate_then_lossless_then_bit_rate():
    assert near_dup.audio_quality(44100, "mp3") > near_dup.audio_quality(16000, "pcm_s16le") > near_dup.audio_quality(16000, "mp3")
    assert near_dup.audio_quality(44100, "mp3", 32_000) > near_dup.audio_quality(16000, "pcm_s16le", 256_000)
    assert near_dup.audio_quality(16000, "flac", 90_000) > near_dup.audio_quality(16000, "mp3", 320_000)
    assert near_dup.audio_quality(16000, "mp3", 128_000) > near_dup.audio_quality(16000, "mp3", 32_000) > near_dup.audio_quality(16000, "mp3")
    assert near_dup.audio_quality(16000, "mp3", 32_400) == near_dup.audio_quality(16000, "mp3", 32_000)  # in kbit/s
    assert near_dup.audio_quality(16000, "flac") == near_dup.audio_quality(16000, "pcm_s24le") > near_dup.audio_quality(8000, "flac")
    assert near_dup.audio_quality(None, "") == 0


# -- colour signatures ------------------------------------------------------------------------
def _solid(rgb, size=(64, 48)):
    from PIL import Image

    return Image.new("RGB", size, rgb)


def _field(seed=3, size=(320, 240)):
    """A smooth, colourful picture (an 8x8 random field scaled up)."""
    from PIL import Image

    cells = np.random.default_rng(seed).integers(0, 255, (8, 8, 3), dtype=np.uint8)
    return Image.fromarray(cells).resize(size, Image.Resampling.BICUBIC)


def test_colour_signature_is_the_cielab_mean_of_each_quarter():
    from PIL import Image

    img = Image.new("RGB", (40, 40))
    for (x, y), rgb in zip([(0, 0), (20, 0), (0, 20), (20, 20)], [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)]):
        img.paste(rgb, (x, y, x + 20, y + 20))
    # CIELAB (D65) of sRGB red, green, blue, white: (53.24, 80.09, 67.20), (87.73, -86.18, 83.18),
    # (32.30, 79.19, -107.86), (100, 0, 0); stored as L * 2.55, a + 128, b + 128
    assert list(near_dup.colour_signature(img)) == [136, 208, 195, 224, 42, 211, 82, 207, 20, 255, 128, 128]


def test_flat_pictures_hash_alike_but_their_colours_tell_them_apart():
    swatches = {name: _solid(rgb) for name, rgb in
                {"red": (220, 30, 30), "blue": (30, 60, 200), "white": (250, 250, 250), "black": (5, 5, 5), "grey": (128, 128, 128)}.items()}
    hashes = {name: near_dup.image_hashes(img) for name, img in swatches.items()}
    assert len({(h["phash"], h["dhash"]) for h in hashes.values()}) == 1  # grey levels cannot tell them apart
    colours, has = near_dup.colour_matrix([near_dup.colour_signature(img) for img in swatches.values()])
    assert has.all()
    a, b = np.triu_indices(len(swatches), 1)
    d = near_dup.colour_distance(colours[a], colours[b])
    assert d.min() > 20  # every pair is beyond the default 15 (grey is 22 from white, 26 from black)


def test_copies_keep_their_colours_and_a_recoloured_picture_does_not():
    from PIL import Image, ImageEnhance

    img = _field()
    copies = [
        img.resize((160, 120), Image.Resampling.LANCZOS),
        Image.open(io.BytesIO(encode(img, "JPEG", quality=40))),
        ImageEnhance.Contrast(ImageEnhance.Brightness(img).enhance(1.15)).enhance(0.85),
        img.crop((16, 12, 304, 228)),
    ]
    sig = np.frombuffer(near_dup.colour_signature(img), dtype=np.uint8)[None]
    near = [float(near_dup.colour_distance(sig, np.frombuffer(near_dup.colour_signature(c), dtype=np.uint8)[None])[0]) for c in copies]
    assert max(near) <= 15, near
    other = recoloured(img)
    hashes, re_hashes = near_dup.image_hashes(img), near_dup.image_hashes(other)
    assert (hashes["phash"] ^ re_hashes["phash"]).bit_count() <= 8  # a duplicate to the grey hashes
    far = near_dup.colour_distance(sig, np.frombuffer(near_dup.colour_signature(other), dtype=np.uint8)[None])[0]
    assert far > 30


def test_mirror_colour_is_the_mirror_images_signature_and_missing_signatures_always_pass():
    from PIL import ImageOps

    img = _field(seed=4)
    sig = np.frombuffer(near_dup.colour_signature(img), dtype=np.uint8)[None]
    assert near_dup.mirror_colour(sig).tobytes() == near_dup.colour_signature(ImageOps.mirror(img))
    colours, has = near_dup.colour_matrix([near_dup.colour_signature(img), None, near_dup.colour_signature(recoloured(img))])
    assert has.tolist() == [True, False, True] and not colours[1].any()
    near = near_dup.colour_near(colours[[0, 0, 1]], has[[0, 0, 1]], colours[[1, 2, 2]], has[[1, 2, 2]], 15.0)
    assert near.tolist() == [True, False, True]  # unsigned pairs pass; the recoloured one does not


@pytest.mark.parametrize("threshold", [0.5, 0.7, 0.8, 0.9])
def test_caption_prefixes_of_every_pair_at_or_above_the_threshold_share_a_hash(threshold):
    """Prefix filtering misses no pair: 600 captions made by swapping, dropping and adding
    words of a few bases, so that many pairs sit at the threshold (brute force over all)."""
    rng = random.Random(int(threshold * 100))
    vocab = [f"w{i}" for i in range(60)]
    bases = [[rng.choice(vocab) for _ in range(rng.randint(3, 30))] for _ in range(12)]
    sets = []
    for _ in range(600):
        words = list(rng.choice(bases))
        for _ in range(rng.randint(0, 3)):
            if words and rng.random() < 0.5:
                words.pop(rng.randrange(len(words)))
            else:
                words.insert(rng.randrange(len(words) + 1), rng.choice(vocab))
        sets.append(near_dup.caption_shingle_hashes(" ".join(words)))
    prefixes = [set(near_dup.caption_prefix(s, threshold).tolist()) for s in sets]
    near = missed = 0
    for i in range(len(sets)):
        for j in range(i + 1, len(sets)):
            if near_dup.shingle_jaccard(sets[i], sets[j]) >= threshold:
                near += 1
                missed += not (prefixes[i] & prefixes[j]) and bool(sets[i])
    assert near > 1000 and missed == 0
    n = 10  # 0.7 * 10 is 7.000000000000001 in floating point: the prefix still has 10 - 7 + 1 hashes
    ten = near_dup.caption_shingle_hashes(" ".join(vocab[: n + 2]))
    assert len(near_dup.caption_prefix(ten, 0.7)) == 4 and len(near_dup.caption_prefix(ten, 0.8)) == 3
    assert near_dup.caption_prefix(ten, 0.7).tolist() == sorted(np.frombuffer(ten, "<u8").tolist())[:4]


def test_only_sets_too_small_to_reach_a_long_caption_go_without_their_minhash():
    words = [f"w{i}" for i in range(300)]
    sets = [near_dup.caption_shingle_hashes(" ".join(words[: n + 2])) for n in (1, 205, 206, 256)] + [None, b""]
    assert near_dup.smallest_set_near_a_long_caption(0.8) == 206
    assert near_dup.needs_minhash(sets, 0.8).tolist() == [False, False, True, True, True, False]
    assert near_dup.needs_minhash(sets, 0.9).tolist() == [False, False, False, True, True, False]  # ceil(0.9 * 257) = 232


def _datasketch(grams, num_perm):
    from datasketch import MinHash

    m = MinHash(num_perm=num_perm, seed=1)
    m.update_batch(list(grams))
    return m
