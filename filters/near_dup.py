"""Near-duplicate search primitives for the dedup stage (pure: no Beam, no I/O).

Issue 3's Beam stage groups records by the keys these functions produce; the functions here
are also the single-machine reference the tests compare against brute force.

- Perceptual hashes (64-bit pHash/dHash): every pair within Hamming distance <= k is found
  exactly by the pigeonhole principle. Cut the 64 bits into k+1 blocks: two hashes at distance
  <= k agree on at least one whole block. Group by (block index, block value), verify the
  distance inside each bucket. A pair is reported only from the FIRST block it agrees on, so
  no global de-duplication of pairs is needed.
- Captions: MinHash (datasketch) with LSH banding; band keys are byte-for-byte datasketch's,
  so candidates equal `MinHashLSH`'s for the same (bands, rows).
- Connected components: min-label propagation (what a distributed hash-to-min round does)
  and union-find, which must agree.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Hashable, Iterable, Sequence

import numpy as np

HASH_BITS = 64


# -- Hamming neighbours --------------------------------------------------------------------
def block_bounds(k: int, bits: int = HASH_BITS) -> list[tuple[int, int]]:
    """k+1 contiguous bit ranges covering `bits`, sizes differing by at most one."""
    n = k + 1
    if not 0 <= k < bits:
        raise ValueError(f"k must be in [0, {bits - 1}]")
    base, extra = divmod(bits, n)
    bounds, start = [], 0
    for i in range(n):
        end = start + base + (1 if i < extra else 0)
        bounds.append((start, end))
        start = end
    return bounds


def block_values(h: int, bounds: Sequence[tuple[int, int]]) -> list[int]:
    return [(h >> start) & ((1 << (end - start)) - 1) for start, end in bounds]


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


def bucket_pairs(block: int, members: Sequence[tuple[Hashable, int]], bounds, k: int) -> list[tuple[Hashable, Hashable, int]]:
    """Pairs within distance k among records sharing block `block`, keeping only those for
    which `block` is the first block they agree on. Vectorised over the bucket."""
    if len(members) < 2:
        return []
    keys = [m[0] for m in members]
    hs = np.array([m[1] for m in members], dtype=np.uint64)
    x = hs[:, None] ^ hs[None, :]
    dist = np.bitwise_count(x)
    ok = np.triu(dist <= k, 1)
    for start, end in bounds[:block]:  # agreeing on an earlier block: reported there instead
        mask = np.uint64(((1 << (end - start)) - 1) << start)
        ok &= (x & mask) != 0
    i, j = np.nonzero(ok)
    return [(keys[a], keys[b], int(dist[a, b])) for a, b in zip(i, j)]


def banded_pairs(items: Iterable[tuple[Hashable, int]], k: int) -> set[tuple[Hashable, Hashable]]:
    """Every pair of items within Hamming distance k (each pair once, keys as stored)."""
    bounds = block_bounds(k)
    buckets: dict[tuple[int, int], list] = defaultdict(list)
    for key, h in items:
        for i, v in enumerate(block_values(h, bounds)):
            buckets[(i, v)].append((key, h))
    pairs = set()
    for (block, _), members in buckets.items():
        pairs.update((a, b) for a, b, _ in bucket_pairs(block, members, bounds, k))
    return pairs


def brute_force_pairs(items: Sequence[tuple[Hashable, int]], k: int, chunk: int = 1024) -> set[tuple[Hashable, Hashable]]:
    keys = [key for key, _ in items]
    hs = np.array([h for _, h in items], dtype=np.uint64)
    pairs = set()
    for s in range(0, len(hs), chunk):
        dist = np.bitwise_count(hs[s : s + chunk, None] ^ hs[None, :])
        i, j = np.nonzero(dist <= k)
        pairs.update((keys[s + a], keys[b]) for a, b in zip(i, j) if s + a < b)
    return pairs


# -- caption MinHash LSH --------------------------------------------------------------------
_WORDS = re.compile(r"\w+", re.UNICODE)


def shingles(text: str, ngram: int = 3) -> set[bytes]:
    words = _WORDS.findall(text.casefold())
    if len(words) < ngram:
        return {" ".join(words).encode()} if words else set()
    return {" ".join(words[i : i + ngram]).encode() for i in range(len(words) - ngram + 1)}


def caption_minhash(text: str, num_perm: int = 128, ngram: int = 3, seed: int = 1):
    from datasketch import MinHash

    m = MinHash(num_perm=num_perm, seed=seed)
    m.update_batch(list(shingles(text, ngram)))
    return m


def lsh_params(threshold: float, num_perm: int) -> tuple[int, int]:
    """(bands, rows) minimising equal-weighted false positives and negatives, as datasketch."""
    from datasketch.lsh import _optimal_param

    return _optimal_param(threshold, num_perm, 0.5, 0.5)


def band_keys(hashvalues: np.ndarray, bands: int, rows: int) -> list[bytes]:
    """datasketch's bucket keys: each band's hash values, byte-swapped."""
    return [bytes(hashvalues[i * rows : (i + 1) * rows].byteswap().data) for i in range(bands)]


def lsh_candidate_pairs(items: Iterable[tuple[Hashable, np.ndarray]], bands: int, rows: int) -> set[tuple[Hashable, Hashable]]:
    buckets: dict[tuple[int, bytes], list] = defaultdict(list)
    for key, hv in items:
        for i, band in enumerate(band_keys(hv, bands, rows)):
            buckets[(i, band)].append(key)
    pairs = set()
    for members in buckets.values():
        ordered = sorted(members, key=repr)
        pairs.update((a, b) for n, a in enumerate(ordered) for b in ordered[n + 1 :])
    return pairs


# -- connected components -------------------------------------------------------------------
def union_find_labels(nodes: Iterable[Hashable], edges: Iterable[tuple[Hashable, Hashable]]) -> dict:
    """Each node -> the smallest node of its component."""
    parent = {n: n for n in nodes}

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in edges:
        ra, rb = find(a), find(b)
        if ra != rb:
            lo, hi = (ra, rb) if ra < rb else (rb, ra)
            parent[hi] = lo
    return {n: find(n) for n in parent}


def min_label_propagation(nodes: Iterable[Hashable], edges: Sequence[tuple[Hashable, Hashable]], max_rounds: int = 10_000) -> tuple[dict, int]:
    """Label propagation to the component minimum, in synchronous rounds until nothing
    changes (the shape of the distributed version); returns (labels, rounds)."""
    label = {n: n for n in nodes}
    for rounds in range(1, max_rounds + 1):
        changed = False
        new = dict(label)
        for a, b in edges:
            m = min(label[a], label[b])
            for x in (a, b):
                if m < new[x]:
                    new[x], changed = m, True
        label = new
        if not changed:
            return label, rounds
    raise RuntimeError("label propagation did not converge")
