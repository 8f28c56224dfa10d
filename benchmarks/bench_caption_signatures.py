"""Caption signing in prepare (a caption's MinHash and its n-gram set): datasketch's MinHash
one caption at a time, as prepare did, against `near_dup.caption_signatures_many` (the same
affine32 arithmetic over a batch), on the generated captions of bench_vs_datatrove.py, in one
process. Checks that both give the same bytes, then prints microseconds a caption for each
(best of --repeat).

    python benchmarks/bench_caption_signatures.py --n 100000
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))


def one_at_a_time(texts: list[str], num_perm: int, ngram: int) -> list[tuple]:
    """What prepare did before: a copy of an empty datasketch MinHash updated per caption."""
    from datasketch import MinHash

    from mmcurate.filters.near_dup import MAX_EXACT_SHINGLES, shingles

    empty = MinHash(num_perm=num_perm, seed=1)
    out = []
    for text in texts:
        grams = shingles(text, ngram)
        m = empty.copy()
        m.update_batch(list(grams))
        values = sorted(int.from_bytes(hashlib.blake2b(g, digest_size=8).digest(), "little") for g in grams)
        n_grams = np.array(values, dtype="<u8").tobytes() if len(grams) <= MAX_EXACT_SHINGLES else None
        out.append((np.asarray(m.hashvalues, dtype="<u4").tobytes(), n_grams))
    return out


def batched(texts: list[str], num_perm: int, ngram: int) -> list[tuple]:
    from mmcurate.filters.near_dup import caption_signatures_many

    return caption_signatures_many(texts, num_perm, ngram)


def best_of(fn, texts, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn(texts, 128, 3)
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv=None) -> dict:
    from bench_vs_datatrove import make_corpus

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=100_000, help="captions (default: 100000)")
    p.add_argument("--repeat", type=int, default=3, help="timed passes of each; the best counts (default: 3)")
    args = p.parse_args(argv)
    texts, _ = make_corpus(args.n, 0, 0.1)
    check = texts[:5000]
    if one_at_a_time(check, 128, 3) != batched(check, 128, 3):
        raise SystemExit("the batched signatures differ from datasketch's")
    before, after = best_of(one_at_a_time, texts, args.repeat), best_of(batched, texts, args.repeat)
    result = {"captions": len(texts), "datasketch_us": round(before / len(texts) * 1e6, 1),
              "batched_us": round(after / len(texts) * 1e6, 1), "speedup": round(before / after, 2)}
    print(result)
    return result


if __name__ == "__main__":
    main()
