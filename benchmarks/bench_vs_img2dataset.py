#!/usr/bin/env python
"""mmcurate vs img2dataset on the same URL list, served from loopback.

    python benchmarks/bench_vs_img2dataset.py [--samples 10000] [--workdir benchmarks/_work] [--repeat 1]

1. generates N photo-like JPEGs (pipelines/demo.photo + demo.vary; each side uniform in 256..1024 px,
   JPEG quality 80..94, deterministic per index) with captions, on all cores, cached in the
   workdir under a hash of photo()'s source (a rerun, or a rerun with a larger N, only makes
   what is missing; a changed generator makes a new cache);
2. serves them from a ThreadingHTTPServer (HTTP/1.0, Content-Length, sendfile) running in
   its own process on 127.0.0.1, so it takes no GIL from the measured tools;
3. writes WORKDIR/urls.parquet (columns url, caption);
4. times each tool as a whole command (subprocess, wall clock from spawn to exit) into a
   fresh output folder: img2dataset (processes_count=2, thread_count=32, border 256,
   webdataset, 1000 per shard) and `mmcurate run ... --workers 2` with the same settings;
   with --repeat K the tools alternate K times and the medians are reported;
5. checks that both wrote N samples (their stats files and a count of the tars' images),
   prints samples/s and the ratio mmcurate/img2dataset, and writes WORKDIR/results-*.json.

Exit status: 0 when every run succeeded and wrote N samples, 1 otherwise.
Only meaningful on a quiet machine: the load average is printed and recorded.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import glob
import http.server
import json
import multiprocessing as mp
import os
import platform
import random
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tarfile
import time
import urllib.request

# For both tools' subprocesses. NO_ALBUMENTATIONS_UPDATE: img2dataset imports albumentations,
# which otherwise asks PyPI for its latest version (2 s timeout) in every one of its processes.
ENV_OVERRIDES = {"no_proxy": "127.0.0.1,localhost", "NO_PROXY": "127.0.0.1,localhost", "NO_ALBUMENTATIONS_UPDATE": "1", "PYTHONWARNINGS": "ignore"}
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATASET_VERSION = 3  # bump when _make_one changes (a change to demo.photo or demo.vary is detected by hash)


# -- 1. the images ---------------------------------------------------------------------
def _make_one(job: tuple[int, int, int, int, str]) -> tuple[int, str, int, int, int]:
    """Image number i -> (i, caption, width, height, bytes); deterministic in (seed, i) only,
    so the set for N is a prefix of the set for any larger N."""
    i, seed, lo, hi, folder = job
    from mmcurate.pipelines.demo import photo, vary

    rng = random.Random(f"mmcurate-bench/{seed}/{i}")
    size = (rng.randint(lo, hi), rng.randint(lo, hi))
    img, caption = photo(rng, size)
    img = vary(img, rng, amplitude=30)  # distinct to a perceptual hash, as most distinct photos are
    path = os.path.join(folder, f"{i:07d}.jpg")
    tmp = path + ".part"
    img.save(tmp, "JPEG", quality=rng.randrange(80, 95))
    os.replace(tmp, path)
    return i, caption, size[0], size[1], os.path.getsize(path)


def _generator_hash() -> str:
    """Short hash of demo.photo's source: a change to the generator makes a new image cache."""
    import hashlib
    import inspect

    from mmcurate.pipelines.demo import photo, vary

    return hashlib.sha256((inspect.getsource(photo) + inspect.getsource(vary)).encode()).hexdigest()[:8]


def make_dataset(workdir: str, n: int, seed: int, lo: int, hi: int, procs: int) -> tuple[str, list[dict]]:
    folder = os.path.join(workdir, f"images-v{DATASET_VERSION}-{_generator_hash()}-s{seed}-{lo}-{hi}")
    index_path = os.path.join(folder, "index.json")
    os.makedirs(folder, exist_ok=True)
    index: dict[int, dict] = {}
    if os.path.exists(index_path):
        with open(index_path, encoding="utf-8") as f:
            index = {int(k): v for k, v in json.load(f).items()}
    missing = [i for i in range(n) if i not in index or not os.path.exists(os.path.join(folder, f"{i:07d}.jpg"))]
    if missing:
        print(f"generating {len(missing)} images in {folder} ({procs} processes) ...", flush=True)
        t0 = time.perf_counter()
        jobs = [(i, seed, lo, hi, folder) for i in missing]
        with mp.get_context("fork").Pool(procs) as pool:
            for k, (i, caption, w, h, nbytes) in enumerate(pool.imap_unordered(_make_one, jobs, chunksize=16), 1):
                index[i] = {"caption": caption, "width": w, "height": h, "bytes": nbytes}
                if k % 1000 == 0 or k == len(jobs):
                    print(f"  {k}/{len(jobs)} images, {time.perf_counter() - t0:.0f}s", flush=True)
                if k % 2000 == 0:  # checkpoint, so an interrupted generation resumes
                    _write_json(index_path, {str(key): v for key, v in sorted(index.items())})
        _write_json(index_path, {str(key): v for key, v in sorted(index.items())})
    else:
        print(f"using {n} cached images in {folder}", flush=True)
    return folder, [index[i] | {"file": f"{i:07d}.jpg"} for i in range(n)]


def warm_page_cache(folder: str, items: list[dict]) -> None:
    for it in items:
        with open(os.path.join(folder, it["file"]), "rb") as f:
            while f.read(1 << 20):
                pass


# -- 2. the server -----------------------------------------------------------------------
class _Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # no per-request logging
        pass

    def copyfile(self, source, outputfile):
        # headers are already flushed (end_headers); the body goes out by sendfile(2)
        self.connection.sendfile(source)


class _Server(http.server.ThreadingHTTPServer):
    request_queue_size = 1024  # default 5: bursts of 64 connects would hit SYN retries (1 s)
    daemon_threads = True


def _serve(folder: str, conn) -> None:
    server = _Server(("127.0.0.1", 0), functools.partial(_Handler, directory=folder))
    conn.send(server.server_address[1])
    conn.close()
    server.serve_forever(poll_interval=0.5)


class FileServer:
    """A ThreadingHTTPServer in a separate process (its own GIL)."""

    def __init__(self, folder: str):
        parent, child = mp.get_context("fork").Pipe()
        self.proc = mp.get_context("fork").Process(target=_serve, args=(folder, child), daemon=True, name="bench-http")
        self.proc.start()
        if not parent.poll(30):
            raise RuntimeError("HTTP server did not start")
        self.port = parent.recv()
        self.base = f"http://127.0.0.1:{self.port}"

    def cpu_seconds(self) -> float:
        """user+sys CPU of the server process so far (from /proc; 0 where unavailable)."""
        try:
            with open(f"/proc/{self.proc.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except OSError:
            return 0.0

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.join(5)


# -- 3. the URL list ---------------------------------------------------------------------
def write_url_list(path: str, base: str, items: list[dict]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"url": [f"{base}/{it['file']}" for it in items], "caption": [it["caption"] for it in items]})
    pq.write_table(table, path)


# -- 4. the tools ------------------------------------------------------------------------
def _tool(name: str) -> str:
    """The console script beside this interpreter (the venv's), else on PATH."""
    here = os.path.join(os.path.dirname(sys.executable), name)
    found = here if os.access(here, os.X_OK) else shutil.which(name)
    if not found:
        raise SystemExit(f"{name} not found beside {sys.executable} nor on PATH")
    return found


def img2dataset_cmd(urls: str, out: str, args) -> list[str]:
    return [
        _tool("img2dataset"),
        f"--url_list={urls}",
        f"--output_folder={out}",
        "--input_format=parquet",
        "--url_col=url",
        "--caption_col=caption",
        "--output_format=webdataset",
        f"--processes_count={args.workers}",
        f"--thread_count={args.i2d_threads}",
        "--resize_mode=border",
        f"--image_size={args.image_size}",
        f"--number_sample_per_shard={args.shard_size}",
        "--distributor=multiprocessing",
        "--enable_wandb=False",
        # not incremental_mode=overwrite: img2dataset 1.47 makes OUT/_tmp first and then
        # deletes OUT with it (FileNotFoundError .../_tmp/0.feather); OUT is removed beforehand
        "--timeout=10",
        "--retries=0",
    ]


def mmcurate_cmd(urls: str, out: str, args) -> list[str]:
    return [
        _tool("mmcurate"), "run", urls, "-o", out,
        "--format", "table",
        "--resize-mode", "border",
        "--image-size", str(args.image_size),
        "--shard-size", str(args.shard_size),
        "--workers", str(args.workers),
        "--allow-private-hosts",
        "--no-progress",
        "--dedup", args.mmcurate_dedup,
    ]


def count_tar_images(folder: str) -> tuple[int, int]:
    """(image members, tar files) over folder/*.tar."""
    n, tars = 0, sorted(glob.glob(os.path.join(folder, "*.tar")))
    for path in tars:
        with tarfile.open(path, "r|") as tf:
            n += sum(1 for m in tf if m.isfile() and m.name.rsplit(".", 1)[-1].lower() in ("jpg", "jpeg", "png", "webp"))
    return n, len(tars)


def first_image_size(folder: str):
    from PIL import Image
    import io

    for path in sorted(glob.glob(os.path.join(folder, "*.tar"))):
        with tarfile.open(path, "r|") as tf:
            for m in tf:
                if m.isfile() and m.name.lower().endswith(".jpg"):
                    return Image.open(io.BytesIO(tf.extractfile(m).read())).size
    return None


def read_i2d_stats(out: str) -> dict:
    total = {"count": 0, "successes": 0, "failed_to_download": 0, "failed_to_resize": 0}
    errors: dict[str, int] = {}
    files = sorted(glob.glob(os.path.join(out, "*_stats.json")))
    for path in files:
        with open(path, encoding="utf-8") as f:
            s = json.load(f)
        for k in total:
            total[k] += int(s.get(k, 0))
        for msg, c in (s.get("status_dict") or {}).items():
            errors[msg] = errors.get(msg, 0) + c
    return {"samples": total["successes"], "inputs": total["count"], "stats_files": len(files), **total, "status": errors}


def near_dups(run: dict) -> int:
    """Rows mmcurate's near-dup removal (its default, `--mmcurate-dedup near`) rightly dropped."""
    return run.get("stats", {}).get("dropped", {}).get("duplicate.near_image", 0)


def read_mmcurate_stats(out: str) -> dict:
    path = os.path.join(out, "stats.json")
    if not os.path.exists(path):
        return {"samples": 0, "inputs": 0, "stats_files": 0}
    with open(path, encoding="utf-8") as f:
        s = json.load(f)
    return {"samples": s.get("samples", s.get("kept", 0)), "inputs": s.get("inputs", 0), "stats_files": 1,
            "dropped": s.get("dropped", {}), "failed": s.get("failed", {}), "identity_ok": s.get("identity_ok"),
            "internal_wall_time_s": s.get("wall_time_s")}


def _kill_tree(proc: subprocess.Popen) -> None:
    """Kill the tool and its worker processes (it was started in its own session)."""
    import signal

    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:
        proc.kill()
    proc.wait()


def run_tool(name: str, cmd: list[str], out: str, log_dir: str, tag: str, n: int, server: FileServer, env: dict, timeout: float) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    log = os.path.join(log_dir, f"{tag}.log")
    server_cpu0 = server.cpu_seconds()
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(log, "wb") as logf:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, cwd=log_dir,
                                start_new_session=True)
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_tree(proc)
            rc = "timeout"
        except KeyboardInterrupt:  # its own session gets no ^C: take it down with us
            _kill_tree(proc)
            raise
        wall = time.perf_counter() - t0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    stats = read_i2d_stats(out) if name == "img2dataset" else read_mmcurate_stats(out)
    images, tars = count_tar_images(out if name == "img2dataset" else os.path.join(out, "shards"))
    size = first_image_size(out if name == "img2dataset" else os.path.join(out, "shards"))
    result = {
        "tool": name, "tag": tag, "rc": rc, "wall_s": round(wall, 3),
        # CPU of the tool's process tree (reaped descendants), and of the HTTP server meanwhile
        "cpu_s": round(cpu, 2),
        "server_cpu_s": round(server.cpu_seconds() - server_cpu0, 2),
        "samples": stats["samples"], "tar_images": images, "tars": tars, "first_image_size": list(size) if size else None,
        "samples_per_s": round(stats["samples"] / wall, 2), "rows_per_s": round(n / wall, 2),
        "samples_per_cpu_s": round(stats["samples"] / max(1e-9, cpu), 2),
        "stats": stats, "log": log, "cmd": cmd,
    }
    if rc != 0:
        with open(log, encoding="utf-8", errors="replace") as f:
            result["log_tail"] = f.read()[-2000:]
    return result


# -- machine -----------------------------------------------------------------------------
def machine_info() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = None
    try:
        with open("/proc/meminfo") as f:
            mem = round(int(f.readline().split()[1]) / 2**20, 1)
    except (OSError, ValueError, IndexError):
        pass
    versions = {}
    from importlib import metadata

    for pkg in ("mmcurate", "img2dataset", "apache-beam", "pillow", "opencv-python-headless", "opencv-python", "urllib3", "pyarrow", "numpy"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    try:
        from PIL import features

        versions["pillow_libjpeg_turbo"] = bool(features.check_feature("libjpeg_turbo"))
    except Exception:
        pass
    return {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "host": socket.gethostname(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "mem_gib": mem,
        "loadavg": [round(x, 2) for x in os.getloadavg()],
        "os": platform.platform(),
        "python": platform.python_version(),
        "versions": versions,
    }


def _write_json(path: str, obj) -> None:
    tmp = path + ".part"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=1)
    os.replace(tmp, path)


def _median(values):
    return statistics.median(values) if values else 0.0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--samples", type=int, default=10_000, help="number of images/URLs (default 10000)")
    p.add_argument("--workdir", default=os.path.join(REPO, "benchmarks", "_work"), help="images cache, URL list, outputs, logs, results (default benchmarks/_work)")
    p.add_argument("--repeat", type=int, default=1, help="run each tool K times, alternating; report medians (default 1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--min-side", type=int, default=256)
    p.add_argument("--max-side", type=int, default=1024)
    p.add_argument("--gen-procs", type=int, default=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count())
    p.add_argument("--workers", type=int, default=2, help="img2dataset processes_count and mmcurate --workers (default 2)")
    p.add_argument("--i2d-threads", type=int, default=32, help="img2dataset thread_count (default 32)")
    p.add_argument("--image-size", type=int, default=256)
    p.add_argument("--shard-size", type=int, default=1000)
    p.add_argument("--only", choices=["img2dataset", "mmcurate"], help="time one tool only")
    p.add_argument("--no-warmup", action="store_true", help="skip the untimed warm-up run of each tool on a few rows")
    p.add_argument("--timeout", type=float, default=3600, help="seconds one tool run may take before it is killed (default 3600)")
    p.add_argument("--keep-outputs", action="store_true", help="keep the tools' output folders after the run")
    p.add_argument("--mmcurate-dedup", choices=["near", "exact", "none"], default="near",
                   help="mmcurate's dedup mode (default near, its default: it also computes perceptual hashes and MinHashes, which img2dataset does not)")
    args = p.parse_args(argv)

    workdir = os.path.abspath(args.workdir)
    os.makedirs(workdir, exist_ok=True)
    logs = os.path.join(workdir, "logs")
    os.makedirs(logs, exist_ok=True)
    machine = machine_info()
    print(f"machine: {machine['cpu']}, {machine['cores']} cores ({machine['usable_cores']} usable), {machine['mem_gib']} GiB, "
          f"load average {machine['loadavg']}, {machine['date']}")
    print("versions: " + ", ".join(f"{k} {v}" for k, v in machine["versions"].items()))
    if machine["loadavg"][0] > 0.5:
        print(f"WARNING: load average {machine['loadavg'][0]} at start: other work is running, the timings will not be meaningful")

    folder, items = make_dataset(workdir, args.samples, args.seed, args.min_side, args.max_side, max(1, args.gen_procs))
    total_bytes = sum(it["bytes"] for it in items)
    mpix = sum(it["width"] * it["height"] for it in items) / 1e6
    print(f"dataset: {len(items)} JPEGs, {total_bytes / 2**20:.1f} MiB, {mpix / max(1, len(items)):.2f} Mpixel on average")
    warm_page_cache(folder, items)

    server = FileServer(folder)
    env = dict(os.environ, **ENV_OVERRIDES)
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        env.pop(var, None)
    try:
        with urllib.request.urlopen(f"{server.base}/{items[0]['file']}", timeout=10) as r:
            body = r.read()
            assert len(body) == items[0]["bytes"] == int(r.headers["Content-Length"]), "server sent a wrong body"
        print(f"serving {folder} at {server.base} (pid {server.proc.pid})")
        urls = os.path.join(workdir, "urls.parquet")
        write_url_list(urls, server.base, items)

        tools = [t for t in ("img2dataset", "mmcurate") if args.only in (None, t)]
        cmds = {"img2dataset": img2dataset_cmd, "mmcurate": mmcurate_cmd}
        outs = {t: os.path.join(workdir, f"out-{t}") for t in tools}

        if not args.no_warmup:  # imports, .pyc files, first connections; also fails fast on a broken setup
            k = min(len(items), 100)
            wurls = os.path.join(workdir, "urls-warmup.parquet")
            write_url_list(wurls, server.base, items[:k])
            for t in tools:
                r = run_tool(t, cmds[t](wurls, outs[t], args), outs[t], logs, f"warmup-{t}", k, server, env, args.timeout)
                print(f"warm-up {t}: {k} rows, rc {r['rc']}, {r['samples']} samples, {r['wall_s']:.1f}s")
                if r["rc"] != 0 or r["samples"] != k - near_dups(r):
                    print(f"PROBLEM: the warm-up of {t} did not write all {k} samples (rc {r['rc']}); log {r['log']}")
                    print("  " + r.get("log_tail", "").replace("\n", "\n  "))
                    print("stopping before the timed runs (use --no-warmup to time them anyway)")
                    return 1

        runs: list[dict] = []
        for rep in range(args.repeat):
            order = tools if rep % 2 == 0 else tools[::-1]
            for t in order:
                print(f"run {rep + 1}/{args.repeat}: {t} on {args.samples} URLs ...", flush=True)
                r = run_tool(t, cmds[t](urls, outs[t], args), outs[t], logs, f"{t}-r{rep + 1}", args.samples, server, env, args.timeout)
                r["repeat"] = rep + 1
                runs.append(r)
                print(f"  rc {r['rc']}, {r['wall_s']:.2f}s wall, {r['cpu_s']:.1f}s CPU (+{r['server_cpu_s']:.1f}s server), "
                      f"{r['samples']} samples ({r['tar_images']} images in {r['tars']} tars), {r['samples_per_s']:.1f} samples/s", flush=True)
                if r["rc"] != 0:
                    print("  " + r.get("log_tail", "").replace("\n", "\n  "))
        if not args.keep_outputs:
            for out in outs.values():
                shutil.rmtree(out, ignore_errors=True)
    finally:
        server.stop()

    # -- report ----------------------------------------------------------------------------
    summary = {}
    problems = []
    for t in tools:
        rs = [r for r in runs if r["tool"] == t]
        walls = [r["wall_s"] for r in rs]
        med = _median(walls)
        samples = [r["samples"] for r in rs]
        summary[t] = {
            "runs": len(rs), "wall_s": walls, "median_wall_s": round(med, 3),
            "median_cpu_s": round(_median([r["cpu_s"] for r in rs]), 2),
            "samples": samples,
            "median_samples_per_s": round(_median([r["samples_per_s"] for r in rs]), 2),
            "median_rows_per_s": round(_median([r["rows_per_s"] for r in rs]), 2),
            "median_samples_per_cpu_s": round(_median([r["samples_per_cpu_s"] for r in rs]), 2),
        }
        for r in rs:
            if r["rc"] != 0:
                problems.append(f"{r['tag']}: exit status {r['rc']} (log {r['log']})")
            if r["samples"] != args.samples - near_dups(r):
                problems.append(f"{r['tag']}: stats say {r['samples']} samples, expected {args.samples} ({r['stats']})")
            if r["tar_images"] != r["samples"]:
                problems.append(f"{r['tag']}: the tars hold {r['tar_images']} images, expected {args.samples}")
            if r["first_image_size"] and r["first_image_size"] != [args.image_size, args.image_size]:
                problems.append(f"{r['tag']}: first image is {r['first_image_size']}, expected {args.image_size}x{args.image_size}")

    print()
    print(f"== mmcurate vs img2dataset: {args.samples} URLs ({args.min_side}-{args.max_side} px JPEGs, {total_bytes / 2**20:.0f} MiB) "
          f"from 127.0.0.1, border {args.image_size}, {args.shard_size}/shard, {args.workers} processes, "
          f"{args.repeat} run(s) each, medians ==")
    machine["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    print(f"machine: {machine['cpu']}, {machine['cores']} cores, load average at start {machine['loadavg']}, "
          f"at end {machine['loadavg_end']}, {machine['date']}")
    print(f"{'tool':<12} {'wall s':>8} {'CPU s':>8} {'samples':>8} {'samples/s':>10} {'rows/s':>8} {'samples/CPU-s':>14}")
    for t, s in summary.items():
        print(f"{t:<12} {s['median_wall_s']:>8.2f} {s['median_cpu_s']:>8.1f} {int(_median(s['samples'])):>8d} "
              f"{s['median_samples_per_s']:>10.1f} {s['median_rows_per_s']:>8.1f} {s['median_samples_per_cpu_s']:>14.1f}")
    ratio = cpu_ratio = None
    if len(summary) == 2 and summary["img2dataset"]["median_samples_per_s"]:
        ratio = round(summary["mmcurate"]["median_samples_per_s"] / summary["img2dataset"]["median_samples_per_s"], 3)
        print(f"ratio mmcurate/img2dataset (samples/s): {ratio:.2f}x")
        if summary["img2dataset"]["median_samples_per_cpu_s"]:
            cpu_ratio = round(summary["mmcurate"]["median_samples_per_cpu_s"] / summary["img2dataset"]["median_samples_per_cpu_s"], 3)
            print(f"ratio mmcurate/img2dataset (samples per CPU-second, less sensitive to other load): {cpu_ratio:.2f}x")
    for msg in problems:
        print(f"PROBLEM: {msg}")
    if not problems:
        print(f"sanity: every run exited 0 and wrote all {args.samples} samples at {args.image_size}x{args.image_size}")

    results = {
        "benchmark": "bench_vs_img2dataset", "machine": machine,
        "params": {k: v for k, v in vars(args).items()} | {"workdir": workdir, "dataset": folder, "dataset_bytes": total_bytes,
                                                            "dataset_mpixels": round(mpix, 2)},
        "env_overrides": ENV_OVERRIDES, "summary": summary, "ratio_mmcurate_over_img2dataset": ratio,
        "cpu_ratio_mmcurate_over_img2dataset": cpu_ratio, "problems": problems, "runs": runs,
    }
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = os.path.join(workdir, f"results-{stamp}.json")
    _write_json(path, results)
    print(f"results: {path}")
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main())
