"""Accuracy of video near-duplicate removal through `mmcurate run`, by how many sampled frames
must match (video.frames: 1 = the middle frame alone; 3, the default: 2 of 3; 5: 3 of 5).

    python benchmarks/bench_video_near_dup.py [--extra DIR ...] [--frames 1 3 5] [--colour-distance D]
                                              [--workdir benchmarks/_work/video_near_dup]

Corpus: every real video in ../shared/data/video (and in each --extra folder, e.g. opencv-doc's
examples/data: `apt-get download opencv-doc`) cut into 3-second segments, each its own file
and its own truth cluster, with copies made from the source frames:

  small   half size, 15 fps, x264 crf 32 (a re-upload)
  crf40   same size and rate, crf 40
  late    starting 3 frames (0.12 s) later
  bright  brightness +15 %
  crop    5 % cut from each side, scaled back

and a `fade` of each segment: its middle 0.6 s black (a fade between scenes), a clip of its
own (counted apart: it is not a copy, and it should not join other faded clips).

Each setting runs the whole pipeline (`dedup.survivor=key`, originals named to sort first),
then replays its test on every pair of clips from the manifests' hashes (the search is exact,
so these are its edges). Reported: the share of each copy kind near its own original
(recall); near pairs of different segments, split into the same source video (often the same
static shot: ambiguous) and other sources (false), and by whether faded clips are in them; and
what the pipeline dropped (for its own cluster, or for another: a same-source neighbour
reached first). Generated files are kept and reused.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import subprocess
import sys
import time
from collections import Counter

import numpy as np
import pyarrow.parquet as pq
from PIL import Image, ImageEnhance

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from mmcurate.filters.near_dup import Nearness  # noqa: E402
from mmcurate.schemas.config import DedupConfig  # noqa: E402
from tests import video_media as vm  # noqa: E402  (decode, pick frames by time, encode)

SHARED = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "video")
SEGMENT, FPS = 3.0, 25
KINDS = ("small", "crf40", "late", "bright", "crop")


def even(img: np.ndarray) -> np.ndarray:
    h, w = img.shape[:2]
    return img[: h // 2 * 2, : w // 2 * 2]


def resized(frames, scale):
    h, w = frames[0].shape[:2]
    size = (int(w * scale) // 2 * 2, int(h * scale) // 2 * 2)
    return [np.asarray(Image.fromarray(f).resize(size, Image.Resampling.BILINEAR)) for f in frames]


def variants(frames_of, start: float) -> dict[str, tuple[list[np.ndarray], int, int]]:
    """name -> (frames, fps, crf) of one segment and its copies."""
    at = lambda t0, fps: [even(f) for f in frames_of(start + t0 + np.arange(0, SEGMENT, 1 / fps))]  # noqa: E731
    base = at(0, FPS)
    h, w = base[0].shape[:2]
    dy, dx = int(h * 0.05), int(w * 0.05)
    fade = list(base)
    middle = len(fade) // 2
    for i in range(middle - round(0.3 * FPS), middle + round(0.3 * FPS)):
        fade[i] = np.zeros_like(fade[i])
    return {
        "0orig": (base, FPS, 18),
        "small": (resized(at(0, 15), 0.5), 15, 32),
        "crf40": (base, FPS, 40),
        "late": (at(3 / FPS, FPS), FPS, 18),
        "bright": ([np.asarray(ImageEnhance.Brightness(Image.fromarray(f)).enhance(1.15)) for f in base], FPS, 18),
        "crop": ([np.asarray(Image.fromarray(f[dy : h - dy, dx : w - dx]).resize((w, h), Image.Resampling.BILINEAR)) for f in base], FPS, 18),
        "fade": (fade, FPS, 18),
    }


def build_corpus(sources: list[str], folder: str) -> int:
    os.makedirs(folder, exist_ok=True)
    segments = 0
    for path in sources:
        name = os.path.splitext(os.path.basename(path))[0].replace("_", "-")
        frames = vm.decoded_frames(path)
        duration = frames[-1][0] - frames[0][0]
        for s in range(int((duration - 3 / FPS) // SEGMENT)):
            segments += 1
            if os.path.exists(os.path.join(folder, f"{name}-{s:02d}_fade.mp4")):
                continue
            for kind, (pics, fps, crf) in variants(lambda ts: vm.frames_at(frames, ts), s * SEGMENT).items():
                vm.encode_frames(os.path.join(folder, f"{name}-{s:02d}_{kind}.mp4"), pics, fps, crf)
    return segments


def run(corpus: str, out: str, frames: int, colour_distance: float) -> float:
    cmd = [sys.executable, "-m", "mmcurate", "run", corpus, "--format", "video", "--require", "video", "-o", out, "--workers", "2",
           "--no-progress", "--set", "output.splits=train=1.0", "--set", "dedup.survivor=key", "--set", f"video.frames={frames}",
           "--set", f"dedup.max_colour_distance={colour_distance}"]
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t


def clip_table(out: str) -> list[dict]:
    cols = ["key", "reason", "dup_of", "phash", "dhash", "colour", "frame_hashes", "frame_colours"]
    rows = [r for path in glob.glob(os.path.join(out, "shards", "*.parquet")) for r in pq.read_table(path, columns=cols).to_pylist()]
    for r in rows:  # KEY_kind_0000: cluster (source-segment), kind, source
        r["cluster"], r["kind"] = r["key"].rsplit("_", 2)[:2]
        r["source"] = r["cluster"].rsplit("-", 1)[0]
    return sorted(rows, key=lambda r: r["key"])


def near_matrix(rows: list[dict], colour_distance: float, k: int = 8) -> np.ndarray:
    """The pipeline's test for every pair (its searches are exact, so this is its edge set; the
    same `Nearness` leader clustering uses): clips with comparable frames by the distance most
    frames are within, in grey levels and colour, others by the middle frames (either hash)."""
    test = Nearness(rows, "image", "either", k, False, 0.8, 128, max_colour_distance=colour_distance)
    near = np.array([test(i, np.arange(len(rows))) for i in range(len(rows))])
    np.fill_diagonal(near, False)
    return near


def score(out: str, colour_distance: float) -> dict:
    rows = clip_table(out)
    near = near_matrix(rows, colour_distance)
    index = {r["key"]: i for i, r in enumerate(rows)}
    recall = {}
    for kind in KINDS:
        pairs = [(index[r["key"]], index[r["key"].replace(f"_{kind}_", "_0orig_")]) for r in rows if r["kind"] == kind]
        recall[kind] = round(float(np.mean([near[i, j] for i, j in pairs])), 3)
    upper = np.triu(near, 1)
    i, j = np.nonzero(upper)
    pair_kinds = Counter()
    for a, b in zip(i.tolist(), j.tolist()):
        ra, rb = rows[a], rows[b]
        if ra["cluster"] == rb["cluster"]:
            continue  # a segment and its copies (or its fade)
        fades = (ra["kind"] == "fade") + (rb["kind"] == "fade")
        where = "same source" if ra["source"] == rb["source"] else "other sources"
        pair_kinds[f"{where}, {('no', 'one', 'both')[fades]} faded"] += 1
    cross = sum(1 for a in range(len(rows)) for b in range(a + 1, len(rows)) if rows[a]["source"] != rows[b]["source"])
    drops = Counter("kept" if not r["reason"] else "own cluster" if r["reason"] == "duplicate.near_image" and rows[index[r["dup_of"]]]["cluster"] == r["cluster"]
                    else "another cluster" if r["reason"] == "duplicate.near_image" else r["reason"] for r in rows)
    return {"clips": len(rows), "recall": recall, "near_pairs_between_segments": dict(sorted(pair_kinds.items())),
            "pairs_across_sources": cross, "pipeline": dict(drops)}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--extra", nargs="*", default=[], help="more folders of videos (.avi, .mp4, .mkv)")
    p.add_argument("--frames", type=int, nargs="+", default=[1, 3, 5])
    p.add_argument("--colour-distance", type=float, default=DedupConfig().max_colour_distance,
                   help="dedup.max_colour_distance for the runs and the replay (default %(default)s; 0: colours ignored)")
    p.add_argument("--workdir", default=os.path.join(os.path.dirname(__file__), "_work", "video_near_dup"))
    args = p.parse_args()
    sources = sorted(glob.glob(os.path.join(SHARED, "*.mp4")) + glob.glob(os.path.join(SHARED, "*.avi")))
    for folder in args.extra:
        sources += sorted(f for f in glob.glob(os.path.join(folder, "*")) if f.endswith((".avi", ".mp4", ".mkv")))
    if not sources:
        sys.exit(f"no videos: {SHARED} is absent and no --extra folder was given")
    corpus = os.path.join(args.workdir, "corpus")
    segments = build_corpus(sources, corpus)
    print(f"{len(sources)} source videos, {segments} segments, {len(os.listdir(corpus))} files")
    results = {}
    for frames in args.frames:
        out = os.path.join(args.workdir, f"out-frames{frames}")
        subprocess.run(["rm", "-rf", out], check=True)
        wall = run(corpus, out, frames, args.colour_distance)
        results[frames] = dict(score(out, args.colour_distance), wall_s=round(wall, 1))
        r = results[frames]
        print(f"video.frames={frames}: {wall:.1f} s; recall (copy near its original): {r['recall']}")
        print(f"  near pairs of different segments: {r['near_pairs_between_segments'] or 'none'} (of {r['pairs_across_sources']} pairs across sources)")
        print(f"  pipeline: {r['pipeline']}")
    with open(os.path.join(args.workdir, "results.json"), "w") as f:
        json.dump({"segments": segments, "max_colour_distance": args.colour_distance, "sources": [os.path.basename(s) for s in sources], "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
