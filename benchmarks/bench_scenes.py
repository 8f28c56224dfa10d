"""Scene cuts (video.uncued=scenes) on real clips: where they fall, next to the ffmpeg CLI's
scene filter (`select='gt(scene,0.3)'`, when ffmpeg is on PATH), and how fast they are found.

  python benchmarks/bench_scenes.py [VIDEO ...]    # default: ../shared/data/video/*
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import sys
import time

from mmcurate.filters.scenes import scene_cuts
from mmcurate.filters.video import probe
from mmcurate.schemas.config import VideoConfig

SHARED = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "video")


def ffmpeg_cuts(path: str) -> list[float]:
    done = subprocess.run(["ffmpeg", "-hide_banner", "-i", path, "-vf", "select='gt(scene,0.3)',showinfo", "-f", "null", "-"],
                          capture_output=True, text=True)
    return [round(float(t), 3) for t in re.findall(r"pts_time:([0-9.]+)", done.stderr)]


def main() -> None:
    paths = sys.argv[1:] or sorted(glob.glob(os.path.join(SHARED, "*.mp4")) + glob.glob(os.path.join(SHARED, "*.avi")))
    cfg = VideoConfig()
    frames = seconds = 0.0
    for path in paths:
        info = probe(path, cfg)
        start = time.perf_counter()
        cuts = scene_cuts(path, info, cfg.scene_threshold, cfg.min_clip)
        took = time.perf_counter() - start
        frames, seconds = frames + len(info.frame_times), seconds + took
        theirs = ffmpeg_cuts(path) if shutil.which("ffmpeg") else "(no ffmpeg)"
        print(f"{os.path.basename(path)}: {info.width}x{info.height}, {len(info.frame_times)} frames, {took:.2f} s; "
              f"cuts {[round(c, 3) for c in cuts]}; ffmpeg scene>0.3: {theirs}")
    print(f"{frames:.0f} frames in {seconds:.2f} s: {1000 * seconds / max(frames, 1):.2f} ms per frame")


if __name__ == "__main__":
    main()
