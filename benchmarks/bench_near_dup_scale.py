"""Scale of the dedup stage: N synthetic signatures through exact + near-dup dedup in Beam.

Signatures are generated inside the pipeline (chunks of 10,000 records): random 64-bit pHash
and dHash, of which `--dup-fraction` are copies of an earlier record with 0..6 bits flipped
in each hash (so there are real clusters to find), random colour signatures (a copy keeps its
original's), unique SHA-256s, keys and input positions, and 100..1000-pixel sides for the
survivor policy. `--identical N` plants N records with one signature, as a blank picture
saved at many sizes gives (web crawls hold millions). The run writes dedup/clusters.parquet.

Reports wall time, signatures/s and the peak resident memory of the whole process tree
(the runner and its worker processes, sampled from /proc every 0.2 s).

    python benchmarks/bench_near_dup_scale.py --n 1000000 --workers 2
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
import time

import numpy as np

CHUNK = 10_000


def chunk_table(index: int, n: int, dup_fraction: float, seed: int, identical: int = 0, colour: bool = True):
    import pyarrow as pa

    from mmcurate.filters.near_dup import COLOUR_BYTES
    from mmcurate.pipelines.dedup import SLIM_SCHEMA

    lo, hi = index * CHUNK, min(n, (index + 1) * CHUNK)
    rng = np.random.default_rng([seed, index])
    size = hi - lo
    colours = rng.integers(0, 256, (size, COLOUR_BYTES), dtype=np.uint8)
    ph = rng.integers(0, 2**63, size, dtype=np.int64).astype(np.uint64) * np.uint64(2) + rng.integers(0, 2, size).astype(np.uint64)
    dh = rng.integers(0, 2**63, size, dtype=np.int64).astype(np.uint64) * np.uint64(2) + rng.integers(0, 2, size).astype(np.uint64)
    dup = np.flatnonzero(rng.random(size) < dup_fraction)
    src = rng.integers(0, size, len(dup))  # copies of records in the same chunk, bits flipped
    for hashes in (ph, dh):
        flips = np.zeros(len(dup), dtype=np.uint64)
        for _ in range(6):
            on = rng.random(len(dup)) < 0.5
            flips ^= np.where(on, np.left_shift(np.uint64(1), rng.integers(0, 64, len(dup)).astype(np.uint64)), np.uint64(0))
        hashes[dup] = hashes[src] ^ flips
    colours[dup] = colours[src]
    rows = np.arange(lo, hi)
    if identical:  # every (n // identical)-th record: one blank picture, re-encoded
        same = rows % max(1, n // identical) == 0
        ph[same], dh[same], colours[same] = np.uint64(0x8000000000000000), np.uint64(0), np.tile(np.uint8([255, 128, 128]), 4)  # white
    columns = {
        "shard": [f"t00000-c{r // 1000:05d}" for r in rows],
        "order_task": np.zeros(size, dtype=np.int64),
        "order_row": rows.astype(np.int64),
        "key": [f"s{r:09d}" for r in rows],
        "sha256": [f"{r:064x}" for r in rows],
        "caption_sha256": [""] * size,
        "source_quality": rng.integers(100, 1000, size).astype(np.int64) * rng.integers(100, 1000, size).astype(np.int64),
        "phash": ph,
        "dhash": dh,
        "phash_mirror": pa.nulls(size, pa.uint64()),
        "dhash_mirror": pa.nulls(size, pa.uint64()),
        "frame_hashes": pa.nulls(size, pa.list_(pa.uint64())),
        "frame_hashes_mirror": pa.nulls(size, pa.list_(pa.uint64())),
        "minhash": pa.nulls(size, pa.binary()),
        "colour": [c.tobytes() for c in colours] if colour else pa.nulls(size, pa.binary()),
    }
    return pa.table({f.name: columns.get(f.name, pa.nulls(size, f.type)) for f in SLIM_SCHEMA}, schema=SLIM_SCHEMA)


class PeakRss:
    """Peak total RSS of this process and all its descendants."""

    def __init__(self):
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def _tree(self):
        children: dict[int, list[int]] = {}
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{pid}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(pid))
            except (OSError, IndexError, ValueError):
                pass
        todo, seen = [os.getpid()], []
        while todo:
            pid = todo.pop()
            seen.append(pid)
            todo += children.get(pid, [])
        return seen

    def _run(self):
        while not self._stop.wait(0.2):
            total = 0
            for pid in self._tree():
                try:
                    with open(f"/proc/{pid}/statm") as f:
                        total += int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
                except (OSError, IndexError, ValueError):
                    pass
            self.peak = max(self.peak, total)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1_000_000, help="number of signatures (default 1,000,000)")
    ap.add_argument("--workers", type=int, default=2, help="local worker processes (default 2)")
    ap.add_argument("--dup-fraction", type=float, default=0.2, help="share of planted near-duplicates (default 0.2)")
    ap.add_argument("--identical", type=int, default=0, metavar="N",
                    help="also plant N records with one identical signature (a blank picture at many sizes)")
    ap.add_argument("--no-colour", action="store_true", help="records without colour signatures (the colour check passes them all)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--set", action="append", default=[], metavar="dedup.FIELD=VALUE", help="override a dedup setting")
    ap.add_argument("--json", help="also write the figures here")
    args = ap.parse_args(argv)

    import apache_beam as beam

    from mmcurate.pipelines.dedup import Dedup
    from mmcurate.pipelines.runner import make_pipeline
    from mmcurate.schemas.config import RunConfig

    cfg = RunConfig.load(overrides=args.set).dedup
    out = tempfile.mkdtemp(prefix="mmcurate-nd-scale-")
    chunks = -(-args.n // CHUNK)
    started = time.time()
    with PeakRss() as rss:
        with make_pipeline(args.workers) as p:
            tables = (
                p
                | beam.Create(list(range(chunks)))
                | beam.Reshuffle()
                | beam.Map(chunk_table, n=args.n, dup_fraction=args.dup_fraction, seed=args.seed, identical=args.identical, colour=not args.no_colour)
            )
            _ = tables | Dedup(cfg, out, min_partitions=args.workers)
    wall = time.time() - started
    stats = json.load(open(os.path.join(out, "dedup", "stats.json")))
    result = {
        "signatures": args.n,
        "workers": args.workers,
        "wall_s": round(wall, 1),
        "signatures_per_s": round(args.n / wall),
        "peak_rss_mib": round(rss.peak / 2**20),
        "clusters": stats["clusters"],
        "dropped": stats["dropped"],
        "identical": args.identical,
        "colour": not args.no_colour,
        "dedup": {"image_hash": cfg.image_hash, "max_distance": cfg.max_distance, "rows_per_partition": cfg.rows_per_partition},
    }
    print(json.dumps(result, indent=1))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    return result


if __name__ == "__main__":
    main()
