"""Letterbox and pillarbox bars: flat bands of one level on two opposite sides of a picture (a
wide film in a 4:3 frame, a portrait photo padded to a square by img2dataset's `border` mode,
which is mmcurate's default too). Near-duplicate hashes are taken of what lies between them:
two different portrait photos padded to squares share their bars, and dHash, which compares
neighbouring columns, saw those bars as 16 of its 64 bits alike (a false duplicate when a
run's own shards were curated again); a padded copy of a photo, for its part, hashes like
the photo.

No library found does this (PIL's `ImageOps.crop` trims a fixed margin, `Image.getbbox` only
exact zeros), hence these few lines. The test is strict, so that a picture is trimmed only when
it really is boxed: each bar is flat (JPEG noise aside), both bars of a pair have one level and
about one width, the picture starts along a straight edge across most of the row past at least
one of them, and at least a third of each side is left. A ball on a plain backdrop has no straight edge, so it is
never cropped to the ball.
"""

from __future__ import annotations

from collections import Counter
from typing import Optional, Sequence

import numpy as np

WORK_SIDE = 256  # bars are found on a grey copy box-reduced to about this size
FLAT_RANGE = 24  # grey levels a bar's row (or column) may span: JPEG ringing, not content
SAME_LEVEL = 10  # how far a bar's rows may stray from its outermost row's mean, and one bar from the other
MIN_BAR = 0.02  # a bar is at least this fraction of the side
MAX_UNEVEN = 0.25  # two opposite bars' widths differ by at most this fraction of the wider (or 2 px)
EDGE_SHARE = 0.5  # the picture's first rows past a bar differ from the bar in at least this share of pixels,
EDGE_DIFF = 12  # by more than this many grey levels
MIN_CONTENT = 1 / 3  # at least this fraction of each side is left, else nothing is trimmed


def content_box(img) -> Optional[tuple[int, int, int, int]]:
    """(left, top, right, bottom) of what lies between a picture's letterbox or pillarbox bars
    (or both), in the picture's pixels; None when it has none."""
    grey = img.convert("L")
    factor = max(1, min(grey.size) // WORK_SIDE)
    small = np.asarray(grey.reduce(factor) if factor > 1 else grey, dtype=np.int16)
    rows, cols = _bars(small), _bars(small.T)
    if rows is None and cols is None:
        return None
    h, w = small.shape
    top, bottom = rows or (0, 0)
    left, right = cols or (0, 0)
    sx, sy = img.width / w, img.height / h  # back to the picture's pixels, rounding into the picture
    return (int(np.ceil(left * sx)), int(np.ceil(top * sy)), int((w - right) * sx), int((h - bottom) * sy))


def without_bars(img):
    """The picture between its bars (itself when it has none)."""
    box = content_box(img)
    return img if box is None else img.crop(box)


def clip_without_bars(frames: Sequence) -> list:
    """A video clip's frames between the clip's bars: the box found on most of the frames that
    show bars (a dark frame shows none), the same for every frame, so that a copy's frames are
    cut alike; the frames as they are when none shows bars."""
    boxes = [box for box in map(content_box, frames) if box is not None]
    if not boxes:
        return list(frames)
    box = Counter(boxes).most_common(1)[0][0]
    return [frame.crop(box) for frame in frames]


def _bars(grey: np.ndarray) -> Optional[tuple[int, int]]:
    """(first, last) bar heights along axis 0 of a grey array, or None: no pair of bars."""
    n = grey.shape[0]
    first, level_a = _bar(grey)
    last, level_b = _bar(grey[::-1])
    if min(first, last) < max(2, MIN_BAR * n) or n - first - last < MIN_CONTENT * n:
        return None
    if abs(first - last) > max(2, MAX_UNEVEN * max(first, last)) or abs(level_a - level_b) > SAME_LEVEL:
        return None
    # One straight edge is enough: a photo's own dark sky or ground can lie along the other bar
    # (found on 40 of 1,000 padded flickr8k photos); a ball on a backdrop still has none.
    if not (_straight_edge(grey[first : first + 3], level_a) or _straight_edge(grey[::-1][last : last + 3], level_b)):
        return None
    return first, last


def _bar(grey: np.ndarray) -> tuple[int, float]:
    """How many leading rows are flat and of the first row's level, and that level."""
    means = grey.mean(axis=1)
    flat = (grey.max(axis=1) - grey.min(axis=1) <= FLAT_RANGE) & (np.abs(means - means[0]) <= SAME_LEVEL)
    count = int(np.argmin(flat)) if not flat.all() else len(flat)
    return count, float(means[0])


def _straight_edge(rows: np.ndarray, level: float) -> bool:
    """Whether one of the rows just past a bar differs from the bar's level across most of it."""
    return len(rows) > 0 and bool((np.abs(rows - level) > EDGE_DIFF).mean(axis=1).max() >= EDGE_SHARE)
