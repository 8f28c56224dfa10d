"""Near-duplicate accuracy corpus: flickr8k photos plus planted variants of each.

    python benchmarks/near_dup_corpus.py /tmp/nd_corpus [--photos N] [--seed 0]

Writes OUT_DIR/images/ (a `folder` input for `mmcurate run`: `<photo>__<variant>.<ext>` plus a
`.txt` sidecar with the photo's first caption) and OUT_DIR/truth.csv (`key,cluster,variant,params`;
keys are made exactly as the folder source makes them, the cluster is the photo's key, params
describe what was drawn, e.g. `x1.37`, `q45`, `cut 0.062x0.031`). Variants of each photo, all from the EXIF-upright
decoded original:

    orig     the original file, byte for byte
    scale    Lanczos resize by a factor uniform in 0.5-2.0
    jpeg     JPEG re-encode at quality 30-95
    crop     up to 10 % of the width and of the height cut off, split randomly between the sides
    tone     brightness and contrast each x(1 +- 0.15)
    overlay  a short watermark/date text (PIL's default font) in a corner, a few % of the area
    png      lossless PNG re-save
    mix      2-3 of the above applied together (never both jpeg and png)

With --recolour, each photo also gets a negative: `recolour`, the photo with every pixel's
chroma turned by 90-270 degrees around grey (YCbCr), its lightness kept, so its grey levels
and perceptual hashes barely change (a product photographed in another colour). It is a true
cluster of its own: dropping it for its photo is a wrong drop.

Pixel variants (scale, crop, tone, overlay, and mix without jpeg/png) are saved as JPEG quality 90.
Deterministic: each photo's variants come from its own generator seeded by (seed, photo index), so
the same arguments give byte-identical files whatever the number of processes.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import shutil
from multiprocessing import Pool

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFont

from mmcurate.filters.image import open_image
from mmcurate.filters.keys import make_key

FLICKR = "/work/shared/data/flickr8k"
VARIANTS = ("orig", "scale", "jpeg", "crop", "tone", "overlay", "png", "mix")
MIX_POOL = ("scale", "jpeg", "crop", "tone", "overlay", "png")
PIXEL_ORDER = ("crop", "scale", "tone", "overlay")  # order in which a mix applies its pixel steps
DEFAULT_QUALITY = 90


# -- transforms (rng: numpy Generator) -------------------------------------------------------
# Each returns (image, a short description of the parameters drawn, for truth.csv).
def scale(img, rng):
    f = rng.uniform(0.5, 2.0)
    return img.resize((max(1, round(img.width * f)), max(1, round(img.height * f))), Image.Resampling.LANCZOS), f"x{f:.2f}"


def crop(img, rng):
    w, h = img.size
    cw, ch = round(w * rng.uniform(0, 0.10)), round(h * rng.uniform(0, 0.10))  # total cut per axis
    left, top = int(rng.integers(0, cw + 1)), int(rng.integers(0, ch + 1))
    return img.crop((left, top, w - (cw - left), h - (ch - top))), f"cut {cw / w:.3f}x{ch / h:.3f}"


def tone(img, rng):
    b, c = rng.uniform(0.85, 1.15), rng.uniform(0.85, 1.15)
    return ImageEnhance.Contrast(ImageEnhance.Brightness(img).enhance(b)).enhance(c), f"b{b:.2f} c{c:.2f}"


def overlay(img, rng):
    """White text with a dark outline in a random corner, sized to the short side."""
    texts = (f"{rng.integers(2005, 2024)}-{rng.integers(1, 13):02d}-{rng.integers(1, 29):02d} {rng.integers(0, 24):02d}:{rng.integers(0, 60):02d}",
             f"(c) {rng.integers(2005, 2024)} photo",
             f"IMG_{rng.integers(0, 10000):04d}",
             "www.myphotos.com")
    text = texts[int(rng.integers(len(texts)))]
    img = img.copy()
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=max(10, round(min(img.size) * rng.uniform(0.045, 0.07))))
    l, t, r, b = draw.textbbox((0, 0), text, font=font, stroke_width=1)
    margin = round(min(img.size) * 0.03)
    corner = int(rng.integers(4))
    x = margin if corner % 2 == 0 else img.width - margin - (r - l)
    y = margin if corner < 2 else img.height - margin - (b - t)
    draw.text((x - l, y - t), text, font=font, fill=(255, 255, 255), stroke_width=1, stroke_fill=(0, 0, 0))
    return img, f"{(r - l) * (b - t) / (img.width * img.height):.1%} of area"


def recolour(img, rng):
    """Chroma (Cb, Cr) turned around grey by a random angle; luma (Y) untouched."""
    angle = rng.uniform(90, 270)
    ycc = np.asarray(img.convert("YCbCr"), dtype=np.float64).copy()
    cb, cr = ycc[..., 1] - 128, ycc[..., 2] - 128
    c, s = np.cos(np.deg2rad(angle)), np.sin(np.deg2rad(angle))
    ycc[..., 1], ycc[..., 2] = c * cb - s * cr + 128, s * cb + c * cr + 128
    out = Image.fromarray(np.clip(np.round(ycc), 0, 255).astype(np.uint8), "YCbCr").convert("RGB")
    return out, f"hue {angle:.0f}deg"


PIXEL = {"scale": scale, "crop": crop, "tone": tone, "overlay": overlay}


def encode(img, fmt: str, quality: int = DEFAULT_QUALITY) -> bytes:
    buf = io.BytesIO()
    if fmt == "png":
        img.save(buf, "PNG")
    else:
        img.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def variants(index: int, path: str, seed: int, with_recolour: bool = False) -> list[tuple[str, str, bytes, str]]:
    """One photo -> [(variant, ext, file bytes, parameters)]."""
    rng = np.random.default_rng([seed, index])
    with open(path, "rb") as f:
        raw = f.read()
    img = open_image(raw)
    out = [("orig", os.path.splitext(path)[1].lstrip(".").lower(), raw, "")]
    for name, fn in PIXEL.items():
        changed, params = fn(img, rng)
        out.append((name, "jpg", encode(changed, "jpg"), params))
    q = int(rng.integers(30, 96))
    out.append(("jpeg", "jpg", encode(img, "jpg", q), f"q{q}"))
    out.append(("png", "png", encode(img, "png"), ""))
    # mix: 2-3 distinct kinds, not jpeg and png together; pixel steps in a fixed order, then encode
    while True:
        kinds = set(rng.choice(MIX_POOL, size=int(rng.integers(2, 4)), replace=False).tolist())
        if not {"jpeg", "png"} <= kinds:
            break
    mixed, steps = img, []
    for name in PIXEL_ORDER:
        if name in kinds:
            mixed, params = PIXEL[name](mixed, rng)
            steps.append(f"{name} {params}")
    if "png" in kinds:
        out.append(("mix", "png", encode(mixed, "png"), "; ".join(steps + ["png"])))
    else:
        q = int(rng.integers(30, 96)) if "jpeg" in kinds else DEFAULT_QUALITY
        out.append(("mix", "jpg", encode(mixed, "jpg", q), "; ".join(steps + [f"jpeg q{q}"] * ("jpeg" in kinds))))
    if with_recolour:  # drawn last: the other variants stay byte-identical with and without it
        changed, params = recolour(img, rng)
        out.append(("recolour", "jpg", encode(changed, "jpg"), params))
    return out


def _write_photo(job):
    index, path, caption, images_dir, seed, with_recolour = job
    stem = os.path.splitext(os.path.basename(path))[0]
    rows = []
    for variant, ext, data, params in variants(index, path, seed, with_recolour):
        name = f"{stem}__{variant}"
        with open(os.path.join(images_dir, f"{name}.{ext}"), "wb") as f:
            f.write(data)
        with open(os.path.join(images_dir, f"{name}.txt"), "w", encoding="utf-8") as f:
            f.write(caption)
        cluster = make_key(name if variant == "recolour" else stem)  # a recoloured photo is a cluster of its own
        rows.append((make_key(name), cluster, variant, params))  # keys as pipelines/sources/folder.py makes them
    return rows


def first_captions(path: str) -> dict[str, str]:
    caps: dict[str, str] = {}
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            caps.setdefault(row["image"], row["caption"].strip())
    return caps


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out_dir", help="corpus folder: images/ and truth.csv are written inside")
    ap.add_argument("--photos", type=int, default=None, help="use the first N photos (sorted by name; default all)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--source", default=FLICKR, help="folder with images/ and captions.txt (default %(default)s)")
    ap.add_argument("--procs", type=int, default=2, help="worker processes (output does not depend on it)")
    ap.add_argument("--overwrite", action="store_true", help="replace an existing OUT_DIR/images")
    ap.add_argument("--recolour", action="store_true", help="also write a recoloured negative of each photo (see above)")
    args = ap.parse_args(argv)
    from tqdm import tqdm

    caps = first_captions(os.path.join(args.source, "captions.txt"))
    src = os.path.join(args.source, "images")
    photos = sorted(f for f in os.listdir(src) if f in caps)[: args.photos]
    images_dir = os.path.join(args.out_dir, "images")
    if os.path.exists(images_dir) and os.listdir(images_dir):
        if not args.overwrite:
            ap.error(f"{images_dir} is not empty (use --overwrite)")
        shutil.rmtree(images_dir)
    os.makedirs(images_dir, exist_ok=True)
    jobs = [(i, os.path.join(src, p), caps[p], images_dir, args.seed, args.recolour) for i, p in enumerate(photos)]
    with Pool(args.procs) as pool:
        rows = [r for rs in tqdm(pool.imap(_write_photo, jobs, chunksize=4), total=len(jobs), unit="photo") for r in rs]
    with open(os.path.join(args.out_dir, "truth.csv"), "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["key", "cluster", "variant", "params"])
        w.writerows(rows)
    print(f"{len(rows)} images from {len(photos)} photos -> {images_dir}, truth in {os.path.join(args.out_dir, 'truth.csv')}")


if __name__ == "__main__":
    main()
