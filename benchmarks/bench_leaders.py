"""Leader clustering (the dedup stage's per-component step) on one core: members per second
for one large connected component of synthetic pHash/dHash pairs around random centres.

    python benchmarks/bench_leaders.py [--members 20000 100000] [--k 8]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from mmcurate.filters.near_dup import LeaderIndex, Nearness, greedy_leaders  # noqa: E402
from tests.unit.test_near_dup_leaders import members  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--members", type=int, nargs="+", default=[20000, 100000])
    p.add_argument("--k", type=int, default=8)
    args = p.parse_args()
    for n in args.members:
        ms = members(n, seed=1, mirror=False)
        t = time.perf_counter()
        near = Nearness(ms, "image", "either", args.k, False, 0.8, 128)
        lead = greedy_leaders(n, near, LeaderIndex(near, 0.8, 128))
        dt = time.perf_counter() - t
        print(f"{n} members: {int((lead == np.arange(n)).sum())} survivors, {dt:.1f} s, {n / dt:.0f} members/s")


if __name__ == "__main__":
    main()
