"""Peak memory of `mmcurate demo` as the sample count grows: bounded memory means the peak
barely moves from 10k to 50k samples (the issue's bar: ratio <= 1.3).

    python benchmarks/bench_memory.py --samples 10000 50000 --workdir benchmarks/_work/memory
    python benchmarks/bench_memory.py --samples 10000 50000 --set output.shard_size=2000

Each size runs `mmcurate demo -o OUT --samples N --workers 2` as a subprocess (generation,
prepare, near-dup dedup, tiny-CLIP scoring, finalize, stats), while a sampler reads the RSS of
the command and all its descendants from /proc every 0.2 s. It reports the peak of that sum
(what the machine had to hold at once), the largest single process's peak, and the wall time.
Linux only (reads /proc).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time


def children_of() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        tree.setdefault(ppid, []).append(int(pid))
    return tree


def rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_rss(root: int) -> tuple[int, int]:
    """(sum of RSS, largest RSS) in KiB over root and its descendants."""
    tree, stack, total, largest = children_of(), [root], 0, 0
    while stack:
        pid = stack.pop()
        rss = rss_kib(pid)
        total, largest = total + rss, max(largest, rss)
        stack += tree.get(pid, [])
    return total, largest


def measure(cmd: list[str]) -> dict:
    started = time.time()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = {"sum": 0, "largest": 0}
    done = threading.Event()

    def sample():
        while not done.wait(0.2):
            total, largest = tree_rss(proc.pid)
            peak["sum"], peak["largest"] = max(peak["sum"], total), max(peak["largest"], largest)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, err = proc.communicate()
    done.set()
    sampler.join()
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{err.decode()[-2000:]}")
    return {"wall_s": round(time.time() - started, 1), "peak_tree_rss_mib": round(peak["sum"] / 1024, 1),
            "peak_process_rss_mib": round(peak["largest"] / 1024, 1)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--samples", type=int, nargs="+", default=[10_000, 50_000])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--workdir", default="benchmarks/_work/memory")
    ap.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE", help="passed to mmcurate demo")
    a = ap.parse_args()
    mmcurate = shutil.which("mmcurate", path=os.path.dirname(sys.executable)) or "mmcurate"
    results = {}
    for n in a.samples:
        out = os.path.join(a.workdir, f"demo-{n}")
        shutil.rmtree(out, ignore_errors=True)
        sets = [x for item in a.set for x in ("--set", item)]
        results[n] = measure([mmcurate, "demo", "-o", out, "--samples", str(n), "--workers", str(a.workers), *sets])
        with open(os.path.join(out, "stats.json")) as f:
            s = json.load(f)
        results[n].update(inputs=s["inputs"], kept=s["kept"], shards=len(s["shards"]))
        print(json.dumps({n: results[n]}), flush=True)
    sizes = sorted(results)
    if len(sizes) >= 2:
        lo, hi = results[sizes[0]], results[sizes[-1]]
        print(f"peak tree RSS ratio {sizes[-1]}/{sizes[0]}: {hi['peak_tree_rss_mib'] / lo['peak_tree_rss_mib']:.3f}; "
              f"largest process: {hi['peak_process_rss_mib'] / lo['peak_process_rss_mib']:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
