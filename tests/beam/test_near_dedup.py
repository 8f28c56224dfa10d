"""Near-duplicate stage: the Beam transforms against exact references (brute force,
datasketch's MinHashLSH, union-find), survivor policy, reasons and determinism."""

import collections
import random

import apache_beam as beam
import numpy as np
import pyarrow.parquet as pq
import pytest
from apache_beam.testing.util import BeamAssertException, assert_that, equal_to
from datasketch import MinHash, MinHashLSH

from mmcurate.filters.near_dup import Nearness, brute_force_pairs, caption_shingle_hashes, caption_signature, lsh_params, shingles, union_find_labels
from mmcurate.pipelines.components import Components
from mmcurate.pipelines.dedup import Dedup, slim_table
from mmcurate.pipelines.near_dedup import CaptionCandidates, CaptionEdges, ImageEdges
from mmcurate.pipelines.runner import make_pipeline
from mmcurate.schemas.config import DedupConfig


def rec(row, key=None, phash=None, dhash=None, caption=None, w=100, h=100, task=0, colour=None, exact=True):
    """A slim record as prepare stages it; exact=False: without the caption's n-gram set (a
    caption too long for it, or staged by an earlier version): the MinHash estimate decides."""
    return {
        "shard": f"t{task:05d}-c{row // 100:05d}", "order_task": task, "order_row": row, "key": key or f"k{row:06d}",
        "sha256": f"sha{task}-{row}", "caption_sha256": "", "original_width": w, "original_height": h,
        "phash": phash, "dhash": dhash if dhash is not None else phash, "phash_mirror": None, "dhash_mirror": None,
        "colour": colour, "minhash": caption_signature(caption) if caption is not None else None,
        "caption_shingles": caption_shingle_hashes(caption) if caption is not None and exact else None,
    }


def lab_cells(*cells) -> bytes:
    """A colour signature from four (L, a, b) cells: top-left, top-right, bottom-left, bottom-right."""
    return bytes(v for L, a, b in cells for v in (round(L * 2.55), a + 128, b + 128))


GREY = lab_cells(*[(50, 0, 0)] * 4)
GREY_BRIGHTER = lab_cells(*[(60, 4, -3)] * 4)  # 7.2 from GREY: near
RED_BLUE = lab_cells((50, 60, 40), (50, 20, -60), (50, 60, 40), (50, 20, -60))  # red left, blue right
BLUE_RED = lab_cells((50, 20, -60), (50, 60, 40), (50, 20, -60), (50, 60, 40))  # RED_BLUE's mirror image


def tables(records, n=4):
    size = -(-len(records) // n)
    return [slim_table(records[i : i + size]) for i in range(0, len(records), size)]


def planted_hashes(n: int, k: int, seed: int = 0) -> list[int]:
    """Random 64-bit hashes; every 10th is a copy of a random other one with 0..k+2 bits
    flipped, so there are pairs just inside and just outside distance k."""
    rng = random.Random(seed)
    hs = [rng.getrandbits(64) for _ in range(n)]
    for i in range(0, n, 10):
        v = hs[rng.randrange(n)]
        for bit in rng.sample(range(64), rng.randint(0, k + 2)):
            v ^= 1 << bit
        hs[i] = v
    return hs


def edge_pairs(edges):
    return edges | beam.FlatMap(lambda e: [(int(a), int(b), int(d)) for a, b, d in zip(e["a"], e["b"], e["dist"])])


def collect(pcoll, path, label="Collect"):
    """Writes the PCollection's elements, sorted, to `path` (read back after the run)."""
    _ = pcoll | f"{label}List" >> beam.combiners.ToList() | f"{label}Write" >> beam.Map(lambda d: path.write_text(repr(sorted(d))))


def labels_of(edge_list, nodes) -> dict:
    """node -> smallest node of its component (singletons: itself)."""
    labels = dict(zip(nodes, nodes))
    labels.update(union_find_labels({x for e in edge_list for x in e[:2]}, [e[:2] for e in edge_list]))
    return labels


@pytest.mark.parametrize("k", [4, 10])
def test_banded_image_search_returns_exactly_the_brute_force_pairs(k):
    hs = planted_hashes(20_000, k)
    expected = brute_force_pairs(list(enumerate(hs)), k)
    assert len(expected) > 500  # the planted neighbours are there to be found
    want = sorted((a, b, (hs[a] ^ hs[b]).bit_count()) for a, b in expected)
    with make_pipeline(1) as p:
        parts = p | "Parts" >> beam.Create([3])
        got = edge_pairs(p | beam.Create(tables([rec(i, phash=h) for i, h in enumerate(hs)])) | ImageEdges(DedupConfig(max_distance=k, image_hash="phash"), parts))
        assert_that(got, equal_to(want))  # each pair exactly once, with its distance


def test_mirror_finds_flipped_copies_and_never_pairs_a_record_with_itself():
    a, b = rec(0, phash=0x0F0F0F0F0F0F0F0F), rec(1, phash=0xFFFF0000FFFF0000)
    a["phash_mirror"] = a["dhash_mirror"] = 0xFFFF0000FFFF0001  # b is a's mirror image, one bit off
    b["phash_mirror"] = b["dhash_mirror"] = 0x0F0F0F0F0F0F0F0E
    with make_pipeline(1) as p:
        parts = p | "Parts" >> beam.Create([2])
        got = edge_pairs(p | beam.Create([slim_table([a, b])]) | ImageEdges(DedupConfig(max_distance=4, mirror=True), parts))
        assert_that(got | beam.Distinct(), equal_to([(0, 1, 1)]))


def test_colours_split_pairs_that_grey_hashes_join_and_mirrors_match_flipped_colours():
    """Four images with the same hashes: a grey, a brighter grey (7.2 apart: near), a picture red
    on the left and blue on the right, and its mirror image. Without mirrors only the greys
    pair up; with them the red/blue pair too (the mirror's colours are flipped); an image
    without a colour signature (staged before them) pairs by its hashes alone; and with
    dedup.max_colour_distance 0 every pair is an edge, as before colours."""
    h = 0x0123456789ABCDEF
    recs = [rec(0, phash=h, colour=GREY), rec(1, phash=h, colour=GREY_BRIGHTER), rec(2, phash=h, colour=RED_BLUE), rec(3, phash=h, colour=BLUE_RED)]
    recs[2]["phash_mirror"] = recs[2]["dhash_mirror"] = recs[3]["phash_mirror"] = recs[3]["dhash_mirror"] = h
    runs = {"plain": (DedupConfig(max_distance=4), recs), "mirror": (DedupConfig(max_distance=4, mirror=True), recs),
            "uncoloured": (DedupConfig(max_distance=4), recs + [rec(4, phash=h)]), "off": (DedupConfig(max_distance=4, max_colour_distance=0), recs)}
    want = {"plain": [(0, 1, 0)], "mirror": [(0, 1, 0), (2, 3, 0)],
            "uncoloured": [(0, 1, 0), (0, 4, 0), (1, 4, 0), (2, 4, 0), (3, 4, 0)],
            "off": [(0, 1, 0), (0, 2, 0), (0, 3, 0), (1, 2, 0), (1, 3, 0), (2, 3, 0)]}
    for name, (cfg, records) in runs.items():
        with make_pipeline(1) as p:
            parts = p | "Parts" >> beam.Create([2])
            got = edge_pairs(p | beam.Create([slim_table(records)]) | ImageEdges(cfg, parts))
            assert_that(got | beam.Distinct(), equal_to(want[name]))
    for name, (cfg, records) in runs.items():  # leader clustering's test agrees
        near = Nearness(records, "image", "either", 4, cfg.mirror, 0.8, 128, max_colour_distance=cfg.max_colour_distance)
        got = [(i, int(j), 0) for i in range(len(records)) for j in np.flatnonzero(near(i, np.arange(len(records)))) if i < j]
        assert got == want[name], name


def test_video_clips_must_match_in_colour_at_most_frame_positions():
    """Five clips whose three frames hash alike, told apart by their frames' colours: a clip
    is near another when most positions match in colour too. Clip 3's mirror image has clip
    4's colours. The frame searches and leader clustering's test give the same pairs."""
    A, B, C = 0x9F3A5C7E12B4D680, 0x0123456789ABCDEF, 0xF0F0F0F00F0F0F0F
    flat = [A, A, B, B, C, C]
    frame_colours = [(GREY, GREY, GREY), (GREY, RED_BLUE, GREY), (RED_BLUE, GREY, RED_BLUE), (BLUE_RED,) * 3, (RED_BLUE,) * 3]
    recs = []
    for i, colours in enumerate(frame_colours):
        r = rec(i, phash=B, colour=colours[1])
        r.update(frame_hashes=flat, frame_colours=b"".join(colours))
        recs.append(r)
    recs[3].update(phash_mirror=B, dhash_mirror=B, frame_hashes_mirror=flat)
    want = {False: [(0, 1, 0), (2, 4, 0)], True: [(0, 1, 0), (2, 3, 0), (2, 4, 0), (3, 4, 0)]}
    for mirror in (False, True):
        cfg = DedupConfig(max_distance=4, mirror=mirror)
        with make_pipeline(1) as p:
            parts = p | "Parts" >> beam.Create([2])
            got = edge_pairs(p | beam.Create([slim_table(recs)]) | ImageEdges(cfg, parts))
            assert_that(got | beam.Distinct(), equal_to(want[mirror]))
        near = Nearness(recs, "image", "either", 4, mirror, 0.8, 128, max_colour_distance=cfg.max_colour_distance)
        assert [(i, int(j), 0) for i in range(5) for j in np.flatnonzero(near(i, np.arange(5))) if i < j] == want[mirror], mirror


@pytest.mark.parametrize("image_hash,mirror", [("phash", False), ("dhash", True), ("both", True), ("either", True), ("either", False)])
def test_leader_nearness_is_exactly_the_edge_test(tmp_path, image_hash, mirror):
    """Leader clustering asks `Nearness` whether two members are near: it must say yes for
    exactly the pairs the edge search links (hash kinds, `both`/`either`, mirrors, colours)."""
    rng, paint = random.Random(5), random.Random(7)
    ph, dh = planted_hashes(400, 6, seed=1), planted_hashes(400, 6, seed=1)
    recs = []
    for i in range(400):
        d = dh[i] ^ (1 << rng.randrange(64)) if i % 3 else dh[i]  # dHash sometimes a bit off pHash's neighbours
        r = rec(i, phash=ph[i], dhash=d, colour=paint.choices([GREY, GREY_BRIGHTER, RED_BLUE, BLUE_RED, None], weights=[4, 3, 1, 1, 1])[0])
        if mirror and i % 4 == 0:  # a few records' mirrors are near another record
            other = rng.randrange(400)
            r["phash_mirror"], r["dhash_mirror"] = ph[other] ^ (1 << rng.randrange(64)), dh[other]
        recs.append(r)
    cfg = DedupConfig(max_distance=6, image_hash=image_hash, mirror=mirror)
    found = tmp_path / "edges.txt"
    with make_pipeline(1) as p:
        parts = p | "Parts" >> beam.Create([2])
        edges = edge_pairs(p | beam.Create(tables(recs)) | ImageEdges(cfg, parts))
        pairs = edges | "Pairs" >> beam.Map(lambda e: (e[0], e[1])) | beam.Distinct() | beam.combiners.ToList()
        _ = pairs | "Write" >> beam.Map(lambda d: found.write_text(repr(sorted(d))))
    want = eval(found.read_text())
    assert len(want) > 20
    near = Nearness(recs, "image", image_hash, 6, mirror, 0.8, 128, max_colour_distance=cfg.max_colour_distance)
    got = [(i, int(j)) for i in range(400) for j in np.flatnonzero(near(i, np.arange(400))) if i < j]
    assert got == want
    uncoloured = Nearness(recs, "image", image_hash, 6, mirror, 0.8, 128)  # colours ignored
    by_hash = [(i, int(j)) for i in range(400) for j in np.flatnonzero(uncoloured(i, np.arange(400))) if i < j]
    assert set(want) < set(by_hash)  # the colours split some pairs


def test_an_oversized_bucket_is_counted_and_still_searched_exactly():
    """300 identical hashes (blank images): one bucket per block, all above max_bucket."""
    cfg = DedupConfig(max_distance=8, image_hash="phash", max_bucket=100)
    p = make_pipeline(1)
    parts = p | "Parts" >> beam.Create([2])
    edges = p | beam.Create(tables([rec(i, phash=BASE) for i in range(300)])) | ImageEdges(cfg, parts)
    assert_that(edge_pairs(edges) | beam.Distinct() | beam.combiners.Count.Globally(), equal_to([300 * 299 // 2]))
    result = p.run()
    result.wait_until_finish()
    counters = {c.key.metric.name: c.committed for c in result.metrics().query()["counters"]}
    assert counters["dedup.oversized_buckets"] == 9 and counters["dedup.image_edges"] == 300 * 299 // 2
    (size,) = {d.committed.max for d in result.metrics().query()["distributions"] if d.key.metric.name == "dedup.bucket_size"}
    assert size == 300


WHITE = lab_cells(*[(100, 0, 0)] * 4)


def test_identical_items_are_searched_once_and_joined_by_a_star(tmp_path):
    """300 blank white pictures, 50 red-and-blue ones with the same hash (far in colour) and 20
    grey ones 3 bits away: each identical group becomes a star from its smallest row, and one
    search edge joins the white and grey groups; the red-and-blue group stays apart."""
    white, red_blue, grey = range(300), range(300, 350), range(350, 370)
    recs = [rec(i, phash=BASE, colour=WHITE) for i in white] + [rec(i, phash=BASE, colour=RED_BLUE) for i in red_blue]
    recs += [rec(i, phash=BASE ^ 0b111, colour=lab_cells(*[(96, 2, -2)] * 4)) for i in grey]
    random.Random(3).shuffle(recs)  # (the smallest row leads wherever it is)
    cfg = DedupConfig(max_distance=8, image_hash="phash")
    p = make_pipeline(1)
    parts = p | "Parts" >> beam.Create([2])
    collect(edge_pairs(p | beam.Create(tables(recs)) | ImageEdges(cfg, parts, fold_identical=True)), tmp_path / "edges.txt")
    result = p.run()
    result.wait_until_finish()
    stars = [(g[0], i, 0) for g in (white, red_blue, grey) for i in g[1:]]
    assert eval((tmp_path / "edges.txt").read_text()) == sorted(stars + [(0, 350, 3)])
    counters = {c.key.metric.name: c.committed for c in result.metrics().query()["counters"]}
    assert counters["dedup.identical_folded"] == 299 + 49 + 19 and counters["dedup.image_edges"] == 368


def identical_heavy_records(n: int, seed: int, mirror: bool) -> list[dict]:
    """Records drawn from a few hash templates, so that many are identical, some near (a bit
    or two off) and colours sometimes split them; some mirrors are symmetric (equal to the
    record's own hashes), a few near another template."""
    rng = random.Random(seed)
    templates = planted_hashes(40, 6, seed)
    palette = [GREY, GREY_BRIGHTER, RED_BLUE, BLUE_RED, WHITE, None]
    recs = []
    for i in range(n):
        t = rng.randrange(len(templates))
        ph = templates[t] ^ (0 if rng.random() < 0.7 else 1 << rng.randrange(64))
        dh = ph if rng.random() < 0.8 else ph ^ (0b11 << rng.randrange(62))
        r = rec(i, phash=ph, dhash=dh, colour=rng.choice(palette) if rng.random() < 0.4 else palette[t % 5])
        if mirror and rng.random() < 0.3:
            symmetric = rng.random() < 0.97
            r["phash_mirror"] = ph if symmetric else templates[rng.randrange(len(templates))]
            r["dhash_mirror"] = dh if symmetric else r["phash_mirror"]
        recs.append(r)
    return recs


@pytest.mark.parametrize("image_hash,mirror", [("phash", False), ("either", False), ("both", False), ("either", True), ("both", True)])
def test_folding_identical_items_keeps_every_component(tmp_path, image_hash, mirror):
    """The folded search (stars for identical items) links exactly the same components as the
    full search, with far fewer edges: hash kinds, colours, mirrors (symmetric ones included)."""
    recs = identical_heavy_records(1500, seed=11, mirror=mirror)
    cfg = DedupConfig(max_distance=4, image_hash=image_hash, mirror=mirror)
    with make_pipeline(1) as p:
        parts = p | "Parts" >> beam.Create([3])
        src = p | beam.Create(tables(recs, 5))
        for fold in (False, True):
            edges = src | f"Edges{fold}" >> ImageEdges(cfg, parts, fold_identical=fold)
            collect(edges | f"Pairs{fold}" >> beam.FlatMap(lambda e: list(zip(e["a"].tolist(), e["b"].tolist()))), tmp_path / f"{fold}.txt", f"C{fold}")
    full, folded = (eval((tmp_path / f"{fold}.txt").read_text()) for fold in (False, True))
    nodes = list(range(len(recs)))
    assert labels_of(folded, nodes) == labels_of(full, nodes)
    components = collections.Counter(labels_of(full, nodes).values())
    assert len(components) > 10 and sorted(components.values())[-10] > 20
    assert len(set(folded)) * 3 < len(set(full))


def test_mirror_images_link_records_that_folding_must_keep_apart():
    """a and b have one mirror image (M), x's picture is M: x is near both through their
    mirrors, so a mirror image is never folded into another record's. r's mirror has r's own
    hashes but not its colours (red left, blue right): it still pairs r with y (blue left)."""
    m_hash, r_hash = BASE ^ (0xFFFF << 8), BASE ^ (0xFFFF << 40)
    recs = [rec(0, "a", phash=BASE), rec(1, "b", phash=~BASE & (2**64 - 1)), rec(2, "x", phash=m_hash),
            rec(3, "r", phash=r_hash, colour=RED_BLUE), rec(4, "y", phash=r_hash, colour=BLUE_RED)]
    for r in recs[:2]:
        r["phash_mirror"] = r["dhash_mirror"] = m_hash
    recs[3]["phash_mirror"] = recs[3]["dhash_mirror"] = r_hash
    cfg = DedupConfig(max_distance=4, mirror=True)
    for fold in (False, True):
        with make_pipeline(1) as p:
            parts = p | "Parts" >> beam.Create([1])
            pairs = edge_pairs(p | beam.Create([slim_table(recs)]) | ImageEdges(cfg, parts, fold_identical=fold)) | beam.Map(lambda e: (e[0], e[1])) | beam.Distinct()
            assert_that(pairs, equal_to([(0, 2), (1, 2), (3, 4)]))


CAPTION_WORDS = "a dog cat man woman child runs jumps sits on in the grass park beach snow red blue ball frisbee near water".split()


def captions(n: int, seed: int = 0) -> list[str]:
    """Templated captions: families of small edits of a base caption, so there are pairs on
    both sides of the threshold."""
    rng = random.Random(seed)
    out = []
    while len(out) < n:
        base = [rng.choice(CAPTION_WORDS) for _ in range(rng.randint(8, 14))]
        for _ in range(rng.randint(1, 4)):
            words = list(base)
            for _ in range(rng.randint(0, 2)):
                words[rng.randrange(len(words))] = rng.choice(CAPTION_WORDS)
            out.append(" ".join(words))
    return out[:n]


def more_than(n: int):
    def check(actual):
        if not (len(actual) == 1 and actual[0] > n):
            raise BeamAssertException(f"expected one count above {n}, got {actual}")
    return check


def test_caption_candidates_equal_datasketch_minhash_lsh_and_edges_are_verified():
    """Candidates are datasketch MinHashLSH's (recall-weighted bands; a pair sharing several
    bands comes from each, and is verified once); an edge is a candidate
    whose exact Jaccard of word 3-gram sets reaches the threshold, or, for records staged
    without their n-gram sets, whose MinHash estimate does."""
    texts = captions(1500)
    cfg = DedupConfig(duplicates="caption")
    bands, rows = lsh_params(cfg.caption_threshold, cfg.num_perm)
    lsh = MinHashLSH(threshold=cfg.caption_threshold, num_perm=cfg.num_perm, weights=(0.05, 0.95))
    assert (lsh.b, lsh.r) == (bands, rows) == (16, 8)
    hashes = {}
    for i, t in enumerate(texts):
        m = MinHash(num_perm=cfg.num_perm, hashvalues=np.frombuffer(caption_signature(t), dtype="<u4"), scheme="affine32")
        hashes[i] = m
        lsh.insert(i, m)
    candidates = {(min(i, j), max(i, j)) for i in hashes for j in lsh.query(hashes[i]) if i != j}

    def exact(a, b):
        x, y = shingles(texts[a]), shingles(texts[b])
        return len(x & y) / len(x | y)

    verified = sorted((a, b, round(1 - exact(a, b), 5)) for a, b in candidates if exact(a, b) >= cfg.caption_threshold)
    estimated = sorted((a, b, round(1 - hashes[a].jaccard(hashes[b]), 5)) for a, b in candidates if hashes[a].jaccard(hashes[b]) >= cfg.caption_threshold)
    assert len(candidates) > len(verified) > 100 and len(estimated) > 100
    assert {e[:2] for e in verified} != {e[:2] for e in estimated}  # the estimate errs on this corpus
    with make_pipeline(1) as p:
        parts = p | "Parts" >> beam.Create([3])
        for exact_sets, want in ((True, verified), (False, estimated)):
            src = p | f"Src{exact_sets}" >> beam.Create(tables([rec(i, caption=t, exact=exact_sets) for i, t in enumerate(texts)]))
            got = src | f"Candidates{exact_sets}" >> CaptionCandidates(cfg, parts) | f"Pairs{exact_sets}" >> beam.FlatMap(lambda e: list(zip(e["a"].tolist(), e["b"].tolist())))
            assert_that(got | f"Once{exact_sets}" >> beam.Distinct(), equal_to(sorted(candidates)), label=f"candidates{exact_sets}")
            assert_that(got | f"Count{exact_sets}" >> beam.combiners.Count.Globally(), more_than(len(candidates)), label=f"repeats{exact_sets}")
            edges = src | f"Edges{exact_sets}" >> CaptionEdges(cfg, parts) | f"Rows{exact_sets}" >> beam.FlatMap(
                lambda e: [(int(a), int(b), round(float(d), 5)) for a, b, d in zip(e["a"], e["b"], e["dist"])])
            assert_that(edges, equal_to(want), label=f"edges{exact_sets}")


def test_identical_captions_are_candidates_once_through_a_star(tmp_path):
    """400 copies of a stock caption among 600 varied ones: each copy is a candidate with the
    smallest copy only (verified: distance 0), and the components equal the full search's,
    from a fiftieth of its edges."""
    texts = captions(600, seed=2)
    stock = [i for i in range(1000) if i % 5 < 2]  # 400 rows, interleaved with the others
    varied = iter(texts)
    recs = [rec(i, caption="stock photo of a happy family" if i in stock else next(varied)) for i in range(1000)]
    cfg = DedupConfig(duplicates="caption")
    with make_pipeline(1) as p:
        parts = p | "Parts" >> beam.Create([3])
        src = p | beam.Create(tables(recs))
        for fold in (False, True):
            edges = src | f"Edges{fold}" >> CaptionEdges(cfg, parts, fold_identical=fold)
            pairs = edges | f"Pairs{fold}" >> beam.FlatMap(lambda e: [(int(a), int(b), round(float(d), 5)) for a, b, d in zip(e["a"], e["b"], e["dist"])])
            collect(pairs, tmp_path / f"{fold}.txt", f"C{fold}")
    full, folded = (eval((tmp_path / f"{fold}.txt").read_text()) for fold in (False, True))
    assert len(full) == 400 * 399 // 2 + len([e for e in full if e[0] not in stock])
    assert [e for e in folded if e[0] in stock] == [(0, i, 0.0) for i in stock[1:]]
    assert set(folded) <= set(full) and len(folded) * 50 < len(full)  # (some varied captions repeat too)
    assert labels_of(folded, range(1000)) == labels_of(full, range(1000))


def test_captions_with_one_minhash_but_different_ngrams_are_not_folded_together():
    """Rows 0, 1 and 2 share one MinHash signature; 1 and 2 have one caption, 0 another
    (a collision of all 128 values: improbable, so made here). Folding 1 into 0 by the
    signature alone would lose the edge 1-2, as 0 is near neither."""
    same = caption_signature("a cat sleeps on a warm windowsill in the afternoon sun")
    recs = [rec(i, caption=t) for i, t in enumerate(["two boys play football on a muddy field after school",
                                                     "a cat sleeps on a warm windowsill in the afternoon sun",
                                                     "a cat sleeps on a warm windowsill in the afternoon sun"])]
    for r in recs:
        r["minhash"] = same
    cfg = DedupConfig(duplicates="caption")
    with make_pipeline(1) as p:
        parts = p | "Parts" >> beam.Create([2])
        src = p | beam.Create(tables(recs, n=1))
        for fold in (False, True):
            edges = src | f"Edges{fold}" >> CaptionEdges(cfg, parts, fold_identical=fold)
            rows = edges | f"Rows{fold}" >> beam.FlatMap(lambda e: [(int(a), int(b), float(d)) for a, b, d in zip(e["a"], e["b"], e["dist"])])
            assert_that(rows, equal_to([(1, 2, 0.0)]), label=f"edges{fold}")


def random_graph(seed: int = 0):
    """Small components, a long chain (many propagation rounds) and a star."""
    rng = random.Random(seed)
    nodes = rng.sample(range(1, 10**9), 3000)
    edges = [(rng.choice(nodes), rng.choice(nodes)) for _ in range(1200)]
    chain = nodes[:300]
    edges += list(zip(chain, chain[1:]))
    edges += [(nodes[400], x) for x in nodes[401:450]]
    return [(min(a, b), max(a, b)) for a, b in edges if a != b]


@pytest.mark.parametrize("local_max_edges,max_rounds", [(10**6, 4), (0, 2), (0, 40)])
def test_components_equal_union_find_on_both_paths(local_max_edges, max_rounds):
    edges = random_graph()
    nodes = {x for e in edges for x in e}
    want = sorted(union_find_labels(nodes, edges).items())
    a = np.array([e[0] for e in edges], dtype=np.int64)
    b = np.array([e[1] for e in edges], dtype=np.int64)
    batches = [{"a": a[i : i + 300], "b": b[i : i + 300], "dist": np.zeros(len(a[i : i + 300]), np.float32)} for i in range(0, len(a), 300)]
    cfg = DedupConfig(local_max_edges=local_max_edges, max_rounds=max_rounds)
    with make_pipeline(1) as p:
        parts = p | "Parts" >> beam.Create([4])
        labels = p | beam.Create(batches) | Components(cfg, parts)
        got = labels | beam.FlatMap(lambda kv: list(zip(kv[1][0].tolist(), kv[1][1].tolist())))
        assert_that(got, equal_to(want))


def decisions_of(out):
    return out["decisions"] | beam.FlatMap(lambda kv: [(kv[0], r, reason, dup_of, d) for _, r, reason, dup_of, d in kv[1]])


BASE = 0x9F3A5C7E12B4D680


SURVIVOR_RECORDS = [
    rec(0, "big", phash=BASE, w=800, h=600),
    rec(1, "small", phash=BASE ^ 0b111, w=400, h=300),  # 3 bits from big
    rec(2, "also_big", phash=BASE ^ (0b11 << 40), w=800, h=600),  # ties big on pixels: the smaller key wins
    rec(3, "chain", phash=BASE ^ 0b111 ^ (0xFF << 20), w=100, h=100),  # 8 bits from small, 11 from big, 13 from also_big
    rec(4, "alone", phash=~BASE & (2**64 - 1), w=50, h=50),
]


@pytest.mark.parametrize("clustering", ["leader", "connected"])
def test_survivor_policy_reasons_and_distances(tmp_path, clustering):
    """`chain` is near only `small`, which is dropped: under leader clustering it survives
    (near no survivor); connected components drop it for also_big, 13 bits away."""
    cfg = DedupConfig(max_distance=8, clustering=clustering)
    chained = clustering == "connected"
    with make_pipeline(1) as p:
        out = p | beam.Create([slim_table(SURVIVOR_RECORDS)]) | Dedup(cfg, str(tmp_path))
        assert_that(decisions_of(out), equal_to([
            ("t00000-c00000", 0, "duplicate.near_image", "also_big", 2.0),
            ("t00000-c00000", 1, "duplicate.near_image", "also_big", 5.0),
        ] + ([("t00000-c00000", 3, "duplicate.near_image", "also_big", 13.0)] if chained else [])))
    clusters = pq.read_table(tmp_path / "dedup" / "clusters.parquet").to_pylist()
    size = 4 if chained else 3
    assert [(c["key"], c["cluster"], c["survivor"], c["reason"], c["size"]) for c in clusters] == [
        ("also_big", 0, "also_big", "", size), ("big", 0, "also_big", "duplicate.near_image", size),
    ] + ([("chain", 0, "also_big", "duplicate.near_image", 4)] if chained else []) + [
        ("small", 0, "also_big", "duplicate.near_image", size),
    ]


def test_a_chain_keeps_every_other_link_under_leader_clustering(tmp_path):
    """n00 - n01 - ... - n29, each 2 fresh bits from the next (so 2·|i - j| bits apart), k = 2:
    leaders n00, n02, ... each drop the link after them; connected components drop 29 of 30."""
    hashes, h = [], BASE
    for i in range(30):
        hashes.append(h)
        h ^= 0b11 << (2 * i)
    recs = [rec(i, f"n{i:02d}", phash=v) for i, v in enumerate(hashes)]
    results = {}
    for clustering in ("leader", "connected"):
        found = tmp_path / f"{clustering}.txt"
        with make_pipeline(1) as p:
            out = p | beam.Create([slim_table(recs)]) | Dedup(DedupConfig(max_distance=2, clustering=clustering, survivor="key"), str(tmp_path / clustering))
            collect(decisions_of(out), found)
        results[clustering] = eval(found.read_text())
    assert [(row, dup_of, dist) for _, row, _, dup_of, dist in results["leader"]] == [(i, f"n{i - 1:02d}", 2.0) for i in range(1, 30, 2)]
    assert [(row, dup_of) for _, row, _, dup_of, _ in results["connected"]] == [(i, "n00") for i in range(1, 30)]
    clusters = pq.read_table(tmp_path / "leader" / "dedup" / "clusters.parquet").to_pylist()
    assert len(clusters) == 30 and {c["size"] for c in clusters} == {2}
    assert [c["cluster"] for c in clusters if c["reason"] == ""] == list(range(0, 30, 2))


def test_duplicates_criterion_image_caption_both_either():
    recs = [
        rec(0, "a", phash=BASE, caption="a brown dog runs across the green grass in the park"),
        rec(1, "b", phash=BASE ^ 1, caption="a brown dog runs across the green grass in the park"),  # image and caption
        rec(2, "c", phash=BASE ^ 3, caption="two children build a sandcastle on a sunny beach"),  # image only
        rec(3, "d", phash=~BASE & (2**64 - 1), caption="a brown dog runs across the green grass in the park today"),  # caption only
    ]
    expect = {
        "image": {1: "duplicate.near_image", 2: "duplicate.near_image"},
        "caption": {1: "duplicate.near_caption", 3: "duplicate.near_caption"},
        "both": {1: "duplicate.near_image"},
        "either": {1: "duplicate.near_image", 2: "duplicate.near_image", 3: "duplicate.near_caption"},
    }
    for mode, want in expect.items():
        with make_pipeline(1) as p:
            out = p | beam.Create([slim_table(recs)]) | Dedup(DedupConfig(duplicates=mode, caption_threshold=0.7))
            got = decisions_of(out) | beam.Map(lambda d: (d[1], d[2], d[3]))
            assert_that(got, equal_to([(r, reason, "a") for r, reason in want.items()]))


def synthetic_records(n: int, seed: int = 1):
    rng = random.Random(seed)
    hs = planted_hashes(n, 10, seed)
    return [rec(i, phash=h, w=rng.choice([100, 200, 300]), h=100, task=i % 3) for i, h in enumerate(hs)]


def test_identical_decisions_and_cluster_files_across_runner_modes_and_partitions(tmp_path):
    records = synthetic_records(6000)
    outputs = []
    for workers, per_part in [(1, 250_000), (2, 250_000), (2, 500), (2, 1700)]:
        out_dir = tmp_path / f"w{workers}-{per_part}"
        with make_pipeline(workers) as p:
            out = p | beam.Create(tables(records, 7)) | Dedup(DedupConfig(rows_per_partition=per_part), str(out_dir), min_partitions=workers)
            collect(decisions_of(out), out_dir / "decisions.txt")
        outputs.append(((out_dir / "decisions.txt").read_text(), (out_dir / "dedup" / "clusters.parquet").read_bytes()))
    assert outputs[0][0].count("near_image") > 300
    assert outputs[0] == outputs[1] == outputs[2] == outputs[3]


@pytest.mark.parametrize("clustering", ["leader", "connected"])
def test_folded_search_gives_the_same_decisions_and_clusters(tmp_path, monkeypatch, clustering):
    """300 blank pictures of many sizes among planted near-duplicates: the largest blank one
    survives and drops the other 299, and every decision and cluster row equals the full
    search's."""
    from mmcurate.pipelines import near_dedup

    records = synthetic_records(3000, seed=4)
    for i in range(0, 3000, 10):
        records[i].update(phash=BASE, dhash=BASE, colour=WHITE, original_width=100 + i)
    outputs = {}
    for fold in (True, False):
        class NearDedup(near_dedup.NearDedup):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, **kwargs)
                self.fold_identical = self.fold_identical and fold
        monkeypatch.setattr(near_dedup, "NearDedup", NearDedup)
        out_dir = tmp_path / str(fold)
        p = make_pipeline(2)
        out = p | beam.Create(tables(records, 5)) | Dedup(DedupConfig(clustering=clustering), str(out_dir))
        collect(decisions_of(out), out_dir / "decisions.txt")
        result = p.run()
        result.wait_until_finish()
        folded = sum(c.committed for c in result.metrics().query()["counters"] if c.key.metric.name == "dedup.identical_folded")
        assert folded == (2 * 299 if fold else 0)  # (either: pHash's search and dHash's)
        outputs[fold] = ((out_dir / "decisions.txt").read_text(), (out_dir / "dedup" / "clusters.parquet").read_bytes())
    assert outputs[True] == outputs[False]
    blank = [d for d in eval(outputs[True][0]) if d[3] == "k002990"]
    assert len(blank) == 299 and {d[1] for d in blank} == set(range(0, 2990, 10)) and {d[4] for d in blank} == {0.0}


@pytest.mark.parametrize("within_video", [False, True])
def test_clips_of_one_video_are_not_near_duplicates_of_each_other(tmp_path, within_video):
    """Video 0's three clips look alike (a static scene), and video 1's clip looks like them:
    by default only the clip of the other video is dropped; with video.dedup_within_video the
    sibling clips go too."""
    from mmcurate.filters.near_dup import CLIP_BITS

    def clip(video, i, key):
        r = rec(0, key, phash=BASE ^ i)
        r["order_row"], r["sha256"] = (video << CLIP_BITS) | i, key
        return r

    recs = [clip(0, 0, "v0_0000"), clip(0, 1, "v0_0001"), clip(0, 2, "v0_0002"), clip(1, 0, "v1_0000")]
    with make_pipeline(1) as p:
        out = p | beam.Create([slim_table(recs)]) | Dedup(DedupConfig(survivor="key"), str(tmp_path), "video", within_video)
        got = decisions_of(out) | beam.Map(lambda d: (d[1], d[2], d[3]))
        siblings = [(1, "duplicate.near_image", "v0_0000"), (2, "duplicate.near_image", "v0_0000")] if within_video else []
        assert_that(got, equal_to(siblings + [(1 << CLIP_BITS, "duplicate.near_image", "v0_0000")]))


def _video_rec(video: int, frames, mirrored=None):
    """A clip of its own video whose middle frame is what the search sees; frame_hashes as
    prepare stores them ([phash, dhash] per frame; dHash = pHash here)."""
    from mmcurate.filters.near_dup import CLIP_BITS

    r = rec(0, f"v{video}_0000", phash=frames[len(frames) // 2])
    r["order_row"], r["sha256"] = video << CLIP_BITS, f"v{video}"
    r["frame_hashes"] = [h for f in frames for h in (f, f)]
    if mirrored is not None:
        r["phash_mirror"] = r["dhash_mirror"] = mirrored[len(mirrored) // 2]
        r["frame_hashes_mirror"] = [h for f in mirrored for h in (f, f)]
    return r


OTHER, THIRD = 0x0123456789ABCDEF, 0xF0F0F0F00F0F0F0F  # far from BASE and from each other


@pytest.mark.parametrize("clustering", ["leader", "connected"])
def test_video_clips_sharing_only_their_middle_frame_are_not_near_duplicates(tmp_path, clustering):
    """v0 and v1 pass through the same (black) middle frame but differ before and after it;
    v2 is v0 with its last frame 20 bits off (a copy a few frames late in fast motion); v4's
    middle frame is far from v0's but its other two frames are v0's: a duplicate, found by the
    search over its outer frames; v3 was staged without frame hashes: its middle frame alone
    decides, as before."""
    recs = [_video_rec(0, (BASE, 0, THIRD)), _video_rec(1, (THIRD, 0, BASE)), _video_rec(2, (BASE ^ 0b111, 0, THIRD ^ 0xFFFFF)),
            _video_rec(4, (BASE, OTHER, THIRD ^ 1))]
    with make_pipeline(1) as p:
        parts = p | "Parts" >> beam.Create([2])
        edges = edge_pairs(p | "Edges" >> beam.Create([slim_table(recs)]) | ImageEdges(DedupConfig(image_hash="phash"), parts))  # (either: found by both)
        assert_that(edges, equal_to([(0, 2 << 15, 3), (0, 4 << 15, 1)]), label="edges")  # most frames are within 3 and 1 bits
        out = p | "Tables" >> beam.Create([slim_table(recs)]) | Dedup(DedupConfig(survivor="key", clustering=clustering), str(tmp_path), "video")
        got = decisions_of(out) | beam.Map(lambda d: (d[1], d[2], d[3], d[4]))
        assert_that(got, equal_to([(2 << 15, "duplicate.near_image", "v0_0000", 3.0), (4 << 15, "duplicate.near_image", "v0_0000", 1.0)]), label="decisions")

    old = _video_rec(3, (0,))
    old["frame_hashes"] = None
    with make_pipeline(1) as p:
        parts = p | "Parts" >> beam.Create([2])
        edges = edge_pairs(p | beam.Create(tables(recs + [old], 2)) | ImageEdges(DedupConfig(image_hash="phash"), parts))
        # v3 meets each clip by the middle frame (0); v4's middle frame is far from it
        assert_that(edges, equal_to([(0, 2 << 15, 3), (0, 4 << 15, 1), (0, 3 << 15, 0), (1 << 15, 3 << 15, 0), (2 << 15, 3 << 15, 0)]))


def test_a_mirrored_video_copy_matches_through_its_mirror_frames(tmp_path):
    """v1's mirror frames are v0's frames; v2's mirror middle frame is v0's, its other mirror
    frames are not."""
    recs = [_video_rec(0, (BASE, OTHER, THIRD)), _video_rec(1, (THIRD, 7, OTHER), mirrored=(BASE, OTHER, THIRD)),
            _video_rec(2, (OTHER, 0x3C3C3C3C3C3C3C3C, THIRD), mirrored=(OTHER, OTHER, BASE))]
    recs[2]["sha256"] = "v2"
    with make_pipeline(1) as p:
        parts = p | "Parts" >> beam.Create([2])
        edges = edge_pairs(p | "Edges" >> beam.Create([slim_table(recs)]) | ImageEdges(DedupConfig(image_hash="phash", mirror=True), parts))
        assert_that(edges, equal_to([(0, 1 << 15, 0)]), label="edges")
        out = p | "Tables" >> beam.Create([slim_table(recs)]) | Dedup(DedupConfig(survivor="key", mirror=True), str(tmp_path), "video")
        assert_that(decisions_of(out) | beam.Map(lambda d: (d[1], d[2], d[3])), equal_to([(1 << 15, "duplicate.near_image", "v0_0000")]), label="decisions")


@pytest.mark.parametrize("duplicates, shuffle", [("image", "Blocks"), ("caption", "Bands")])
def test_a_near_stage_shuffle_that_loses_records_stops_the_run(monkeypatch, duplicates, shuffle):
    """The block and band shuffles count their records like the row shuffles: a group that
    comes out one batch short fails the run, named, instead of leaving near-duplicates unfound."""
    group_by_key = beam.GroupByKey

    class LosesABatchPerGroup(beam.PTransform):  # only where keys are tuples: the near stage's
        def expand(self, pcoll):
            # (a group left with no batch goes too: a lost element leaves no empty group behind)
            return pcoll | group_by_key() | beam.FlatMapTuple(lambda k, vs: [(k, list(vs)[:-1])] if isinstance(k, tuple) and len(list(vs)) > 1
                                                             else [] if isinstance(k, tuple) else [(k, vs)])

    monkeypatch.setattr(beam, "GroupByKey", LosesABatchPerGroup)
    records = synthetic_records(200)
    for i, r in enumerate(records):
        r["minhash"] = caption_signature(f"caption number {i} of a test set")
    p = make_pipeline(1)
    _ = p | beam.Create(tables(records, 2)) | Dedup(DedupConfig(duplicates=duplicates))
    with pytest.raises(Exception, match=rf"dedup: shuffle {shuffle}: [\d,]+ rows fewer came out than went in"):
        p.run().wait_until_finish()


def test_signature_joins_carry_a_minhash_only_where_an_estimate_may_need_it():
    """A set of fewer than 206 n-grams cannot reach 0.8 against a caption of more than 256
    (which has no stored set), so such captions travel without their MinHash; long captions,
    and those with big enough sets, keep theirs, and their pairs are estimated as before."""
    from mmcurate.filters.near_dup import estimated_jaccard, signature_matrix, smallest_set_near_a_long_caption
    from mmcurate.filters.near_dup import caption_similarity
    from mmcurate.pipelines.near_dedup import signatures_by_node

    assert smallest_set_near_a_long_caption(0.8) == 206
    words = [f"w{i}" for i in range(400)]
    short = "a man rides a red bike down a steep hill"
    captions = [short, short + " today", " ".join(words[:208]), " ".join(words[:300]), " ".join(words[1:301])]
    records = [rec(i, caption=c) for i, c in enumerate(captions)]
    assert [r["caption_shingles"] is None for r in records] == [False, False, False, True, True]  # 206 3-grams: a set, and a MinHash
    ((_, (ids, sigs, exact)),) = signatures_by_node(slim_table(records), 1, 128, 0.8)
    assert [s is None for s in sigs] == [True, True, False, False, False]
    full = signature_matrix([r["minhash"] for r in records], 128)
    assert all(np.array_equal(sigs[i], full[i]) for i in (2, 3, 4))

    a, b = np.array([0, 0, 2, 3]), np.array([1, 3, 3, 4])
    got = caption_similarity(sigs[a], sigs[b], exact[a], exact[b])
    from mmcurate.filters.near_dup import shingle_jaccard

    assert got.tolist() == [shingle_jaccard(exact[0], exact[1]), 0.0,  # short against long: cannot reach 0.8
                            estimated_jaccard(full[2], full[3]), estimated_jaccard(full[3], full[4])]


def test_member_records_carry_a_minhash_only_where_an_estimate_may_need_it():
    from mmcurate.pipelines.near_dedup import member_records, near_columns

    words = [f"w{i}" for i in range(400)]
    captions = ["a man rides a red bike down a steep hill", " ".join(words[:208]), " ".join(words[:300]), None]
    records = [rec(i, caption=c, phash=i) for i, c in enumerate(captions)]
    for duplicates in ("caption", "either"):
        cfg = DedupConfig(duplicates=duplicates)
        got = member_records(slim_table(records), cfg)
        assert got.column_names == near_columns(cfg)
        assert got.column("minhash").to_pylist() == [None, records[1]["minhash"], records[2]["minhash"], None]
        assert got.column("caption_shingles").to_pylist() == [r["caption_shingles"] for r in records]
    assert "minhash" not in member_records(slim_table(records), DedupConfig(duplicates="image")).column_names


def test_a_manifest_staged_before_n_gram_sets_gets_them_from_its_caption():
    row = rec(0, caption="a man rides a red bike down a steep hill")
    stale = {k: v for k, v in row.items() if k != "caption_shingles"} | {"caption": "a man rides a red bike down a steep hill"}
    assert slim_table([stale]).column("caption_shingles").to_pylist() == [row["caption_shingles"]]
    assert slim_table([row | {"caption_shingles": None}]).column("caption_shingles").to_pylist() == [None]  # stored as none: kept
