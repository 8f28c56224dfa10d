"""Scene cuts, for videos without subtitles (video.uncued=scenes).

The measure is PySceneDetect's ContentDetector, with its default threshold (27): frames in
OpenCV's 8-bit HSV (hue 0..179, saturation and value 0..255), and a frame's score is the mean
over pixels of |change| in hue, saturation and value since the frame before, averaged over the
three. A frame scoring at least the threshold starts a new scene, unless the scene so far is
shorter than video.min_clip (so a burst of quick cuts does not make slivers), or the picture
before it comes back within FLASH_S (a camera flash, a white frame: not a new scene).
Frames are compared scaled down to about 256 px wide, as PySceneDetect does by default.

Why not PySceneDetect itself: 0.7 requires opencv-python, OpenCV's GUI build, which needs
libGL (absent from slim worker images) and clashes with the opencv-python-headless that
img2dataset installs; and it reads the video through its own decoder. This decodes with the
PyAV that cuts the clips, scales with swscale, and converts to HSV in numpy (the same bytes as
OpenCV's `cvtColor(RGB2HSV)`, tested).
"""

from __future__ import annotations

import numpy as np
from av.video.reformatter import Interpolation, VideoReformatter

# the cutting module's readers: what opens a source, picks its video stream and times its frames
from mmcurate.filters.video import _ERRORS, Source, VideoInfo, _describe, _open, _presented, _reject, _video_stream

DETECTION_WIDTH = 256  # frames are compared at about this width (never upscaled)
FLASH_S = 0.2  # a cut whose picture before it comes back within this long was a flash, not a cut
_SHIFT = 12  # OpenCV's fixed-point RGB->HSV: divisions by table lookups, 12 fractional bits
_SDIV = np.array([0] + [round((255 << _SHIFT) / i) for i in range(1, 256)], dtype=np.int32)
_HDIV = np.array([0] + [round((180 << _SHIFT) / (6 * i)) for i in range(1, 256)], dtype=np.int32)
_HALF = 1 << (_SHIFT - 1)


def hsv(rgb: np.ndarray) -> np.ndarray:
    """uint8 RGB (..., 3) -> uint8 HSV as OpenCV's 8-bit RGB2HSV gives it (hue 0..179)."""
    r, g, b = (rgb[..., i].astype(np.int32) for i in range(3))  # (products stay below 2**29)
    v = np.maximum(np.maximum(r, g), b)
    diff = v - np.minimum(np.minimum(r, g), b)
    s = (diff * _SDIV[v] + _HALF) >> _SHIFT
    h = np.where(v == r, g - b, np.where(v == g, b - r + 2 * diff, r - g + 4 * diff))
    h = (h * _HDIV[diff] + _HALF) >> _SHIFT
    h = np.where(h < 0, h + 180, h)
    return np.stack([h, s, v], axis=-1).astype(np.uint8)


def content_score(before: np.ndarray, after: np.ndarray) -> float:
    """ContentDetector's frame score between two HSV frames: the mean |change| of H, S and V."""
    # (the three channels have as many values each: their mean of means is the mean of all)
    return float(np.abs(after.astype(np.int16) - before.astype(np.int16)).mean())


def scene_cuts(src: Source, info: VideoInfo, threshold: float, min_scene: float) -> list[float]:
    """Times (seconds, as in info.frame_times) of the frames that start a new scene."""
    cuts: list[float] = []
    scale = VideoReformatter()  # one for all frames: it keeps its swscale context (10x faster than frame.reformat)
    try:
        with _open(src) as container:
            video = _video_stream(container)
            video.thread_type = "AUTO"
            before, scene_start, pending = None, None, None  # pending: (a cut's time, the picture before it)
            for frame, t in _presented(container.decode(video), info.fps):
                t -= info.origin
                if before is None:  # the size of the stored frames (before any display rotation)
                    width = min(frame.width, DETECTION_WIDTH)
                    height = max(2, round(frame.height * width / frame.width))
                    scene_start = t
                pixels = hsv(scale.reformat(frame, width, height, "rgb24", interpolation=Interpolation.AREA).to_ndarray())
                if pending is not None:
                    if content_score(pending[1], pixels) < threshold:  # the picture came back: a flash
                        pending, before = None, pixels
                        continue
                    if t - pending[0] > FLASH_S:
                        cuts.append(pending[0])
                        scene_start, pending = pending[0], None
                if pending is None and before is not None and t - scene_start >= min_scene and content_score(before, pixels) >= threshold:
                    pending = (t, before)
                before = pixels
            if pending is not None:
                cuts.append(pending[0])
    except _ERRORS as e:
        raise _reject("video.decode_error", f"finding scene cuts: {_describe(e)}") from None
    return cuts
