"""Letterbox and pillarbox bars and near-duplicate images, on real photos.

    python benchmarks/bench_letterbox.py [--images ../shared/data/flickr8k/images] [--json PATH]

Each photo is padded to a 256-px square on black, as img2dataset's `border` resize (and
mmcurate's default) writes it into shards, then JPEG-coded at quality 95. Under the default
near test (`image_hash: either`, `max_distance: 8`, colours within 15), counted with and without
hashing between the bars (`filters/letterbox.py`):

- *false pairs*: pairs of different photos, both padded, that the test calls near (what a
  second curation of a run's own shards drops wrongly);
- *copies found*: padded photos near their own unpadded original;
- *boxed originals*: unpadded photos the bar search trims at all (should be none);
- the bar search's time per picture (decoded already).
"""

from __future__ import annotations

import argparse
import glob
import io
import json
import os
import sys
import time

import numpy as np
from PIL import Image

from mmcurate.filters import near_dup
from mmcurate.filters.letterbox import content_box, without_bars

K, COLOUR = 8, 15.0


def padded(img: Image.Image, side: int = 256) -> Image.Image:
    scale = side / max(img.size)
    fitted = img.resize((round(img.width * scale), round(img.height * scale)), Image.Resampling.LANCZOS)
    square = Image.new("RGB", (side, side))
    square.paste(fitted, ((side - fitted.width) // 2, (side - fitted.height) // 2))
    buf = io.BytesIO()
    square.save(buf, "JPEG", quality=95)
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


def signature(img: Image.Image) -> tuple[int, int, bytes]:
    h = near_dup.image_hashes(img)
    return h["phash"], h["dhash"], near_dup.colour_signature(img)


def near(a: list, b: list) -> np.ndarray:
    """The default test between every row of a and every row of b: (len(a), len(b)) bools."""
    pa_, da, ca = (np.array([s[i] for s in a], dtype=np.uint64) if i < 2 else [s[i] for s in a] for i in range(3))
    pb, db, cb = (np.array([s[i] for s in b], dtype=np.uint64) if i < 2 else [s[i] for s in b] for i in range(3))
    hashes = (np.bitwise_count(pa_[:, None] ^ pb[None, :]) <= K) | (np.bitwise_count(da[:, None] ^ db[None, :]) <= K)
    (cma, has_a), (cmb, has_b) = near_dup.colour_matrix(ca), near_dup.colour_matrix(cb)
    colours = np.stack([near_dup.colour_near(cma[i], has_a[i], cmb, has_b, COLOUR) for i in range(len(a))])
    return hashes & colours


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--images", default=os.path.join(here, "..", "..", "shared", "data", "flickr8k", "images"))
    ap.add_argument("--json", help="also write the figures here")
    args = ap.parse_args(argv)
    paths = sorted(glob.glob(os.path.join(args.images, "*.jpg")))
    if not paths:
        print(f"no photos in {args.images}", file=sys.stderr)
        return 1
    rows = {"plain": [], "padded": [], "padded_trimmed": []}
    boxed, search_s, trimmed = 0, 0.0, 0
    for path in paths:
        photo = Image.open(path).convert("RGB")
        square = padded(photo)
        started = time.perf_counter()
        box = content_box(square)
        search_s += time.perf_counter() - started
        boxed += content_box(photo) is not None
        trimmed += box is not None
        rows["plain"].append(signature(photo))
        rows["padded"].append(signature(square))
        rows["padded_trimmed"].append(signature(without_bars(square)))
    n = len(paths)
    report = {"photos": n, "padded_with_bars_found": trimmed, "boxed_originals": boxed,
              "search_ms_per_picture": round(1000 * search_s / n, 3)}
    for name in ("padded", "padded_trimmed"):
        between = near(rows[name], rows[name])
        report[name] = {"false_pairs": int(np.triu(between, 1).sum()),
                        "copies_found": int(np.diag(near(rows[name], rows["plain"])).sum())}
    print(json.dumps(report, indent=1))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
