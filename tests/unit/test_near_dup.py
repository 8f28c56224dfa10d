"""Exactness of the near-duplicate primitives against brute force and datasketch."""

import random

import numpy as np
import pytest

from mmcurate.filters import near_dup


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


def test_each_pair_is_reported_from_exactly_one_bucket():
    items = planted_hashes(n=3000, planted=600, k=6, seed=5)
    bounds = near_dup.block_bounds(6)
    buckets = {}
    for key, h in items:
        for i, v in enumerate(near_dup.block_values(h, bounds)):
            buckets.setdefault((i, v), []).append((key, h))
    reported = [(a, b) for (block, _), m in buckets.items() for a, b, _ in near_dup.bucket_pairs(block, m, bounds, 6)]
    assert len(reported) == len(set(reported))


def test_caption_lsh_candidates_equal_datasketch():
    from datasketch import MinHashLSH

    rng = random.Random(3)
    words = "a the dog cat man woman red blue running on beach with ball near tree in park".split()
    captions = [" ".join(rng.choice(words) for _ in range(rng.randint(8, 16))) for _ in range(300)]
    captions += [c + " today" for c in captions[:80]] + [c.replace("dog", "puppy") for c in captions[80:140]]
    minhashes = {f"c{i:04d}": near_dup.caption_minhash(c) for i, c in enumerate(captions)}
    bands, rows = near_dup.lsh_params(0.8, 128)
    lsh = MinHashLSH(threshold=0.8, num_perm=128)
    for key, m in minhashes.items():
        lsh.insert(key, m)
    expected = {tuple(sorted((key, other))) for key, m in minhashes.items() for other in lsh.query(m) if other != key}
    got = {tuple(sorted(p)) for p in near_dup.lsh_candidate_pairs(((k, m.hashvalues) for k, m in minhashes.items()), bands, rows)}
    assert (lsh.b, lsh.r) == (bands, rows)
    assert got == expected and len(expected) >= 80


def test_components_union_find_equals_label_propagation():
    rng = random.Random(7)
    nodes = [f"n{i:04d}" for i in range(2000)]
    edges = [(rng.choice(nodes), rng.choice(nodes)) for _ in range(1500)]
    edges += [(nodes[i], nodes[i + 1]) for i in range(100, 160)]  # a long chain needs many rounds
    uf = near_dup.union_find_labels(nodes, edges)
    prop, rounds = near_dup.min_label_propagation(nodes, edges)
    assert uf == prop and rounds > 5
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
    assert uf == seen and uf["n0160"] == uf["n0100"]
