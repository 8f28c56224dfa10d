"""Reading one split with mmcurate.loader: bytes read and wall time, with the index's split
byte ranges (read only the split's range of each shard) and without them (an older index:
every shard read whole and filtered).

    python benchmarks/bench_split_read.py --samples 5000 --workdir benchmarks/_work/split_read

It makes the demo's input (`pipelines/demo.generate`), runs `mmcurate run` on it at the
defaults (splits train=0.98,val=0.01,test=0.01, 1,000 input rows per shard) once and reuses
that output, writes a second index without the ranges beside it, then reads each split both
ways, undecoded (`modalities=()`: the shard I/O and tar parsing only), --repeat times, and
reports the median. Bytes read are the process's `rchar` delta from /proc/self/io (all reads,
page cache included), so Linux only.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

from mmcurate import loader as ld
from mmcurate.pipelines.demo import generate


def read_chars() -> int:
    with open("/proc/self/io") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("rchar:"))


def read_split(out: str, split: str) -> tuple[int, int, float]:
    """(samples, bytes read, seconds) of one pass over a split, nothing decoded."""
    start_bytes, start = read_chars(), time.perf_counter()
    n = sum(len(b["key"]) for b in ld.dataset(out, split=split, modalities=(), shuffle=0, batch_size=256))
    return n, read_chars() - start_bytes, time.perf_counter() - start


def without_ranges(out: str, dst: str) -> str:
    """A folder whose index lists the same shards (absolute paths) without split ranges."""
    os.makedirs(dst, exist_ok=True)
    index = json.load(open(os.path.join(out, ld.INDEX)))
    for shard in index["shardlist"]:
        shard["url"] = os.path.abspath(os.path.join(out, shard["url"]))
        shard.pop("splits", None)
    json.dump(index, open(os.path.join(dst, ld.INDEX), "w"))
    shutil.copy(os.path.join(out, "stats.json"), dst)
    return dst


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=5000)
    parser.add_argument("--workdir", default="benchmarks/_work/split_read")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    work = os.path.abspath(args.workdir)
    src, out = os.path.join(work, f"in-{args.samples}"), os.path.join(work, f"out-{args.samples}")
    if not os.path.exists(os.path.join(out, "stats.json")):
        shutil.rmtree(src, ignore_errors=True)
        generate(src, samples=args.samples, seed=0)
        cmd = [os.path.join(os.path.dirname(sys.executable), "mmcurate"), "run", src, "-o", out, "--workers", "2",
               "--shard-size", "1000", "--no-progress"]
        subprocess.run(cmd, check=True)
    legacy = without_ranges(out, os.path.join(work, f"legacy-{args.samples}"))
    stats = json.load(open(os.path.join(out, "stats.json")))
    total_bytes = sum(s["bytes"] for s in stats["shards"])
    print(f"{stats['kept']} kept samples in {len(stats['shards'])} shards, {total_bytes:,} bytes; per split {stats['splits']}")
    print(f"{'split':6} {'index':14} {'samples':>8} {'bytes read':>14} {'of all':>7} {'seconds':>8}")
    rows = []
    for split in ("val", "test", "train"):
        for label, folder in (("ranges", out), ("no ranges", legacy)):
            runs = [read_split(folder, split) for _ in range(args.repeat)]
            n = runs[0][0]
            assert all(r[0] == n for r in runs) and n == stats["splits"][split], (split, label, runs)
            read, seconds = statistics.median(r[1] for r in runs), statistics.median(r[2] for r in runs)
            rows.append({"split": split, "index": label, "samples": n, "bytes_read": read, "seconds": seconds})
            print(f"{split:6} {label:14} {n:8d} {read:14,.0f} {read / total_bytes:7.1%} {seconds:8.3f}")
    json.dump(rows, open(os.path.join(work, "results.json"), "w"), indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
