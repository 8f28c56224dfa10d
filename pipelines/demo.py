"""`mmcurate demo`: a small generated dataset with known defects, run through the pipeline.

The images are photo-like (smooth gradients, soft shapes, sensor noise) so JPEG sizes and
decode costs resemble real photos; the captions describe what was drawn. A few defects are
planted so the accounting has something to show: a truncated JPEG, a zero-byte file, text
with an image extension, exact duplicates, smaller recompressed copies (near duplicates), a missing caption, an empty caption, and captions
that describe another picture (the shipped tiny CLIP scores those below the threshold).
"""

from __future__ import annotations

import os
import random

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

COLORS = {
    "red": (200, 40, 40), "green": (40, 160, 60), "blue": (40, 70, 200), "yellow": (230, 210, 40),
    "orange": (240, 140, 30), "purple": (130, 50, 160), "white": (240, 240, 240), "black": (20, 20, 20),
}
SHAPES = ("circle", "square", "triangle")
SCENES = {"sky": ((120, 170, 230), (220, 235, 250)), "sunset": ((250, 140, 60), (80, 40, 90)), "field": ((90, 160, 70), (200, 220, 120)), "night": ((10, 15, 40), (50, 60, 100))}
POSITIONS = ("on the left", "on the right", "in the middle")

# defect name -> expected (status, reason) in the run's accounting
DEFECTS = {
    "broken_truncated": ("failed", "image.truncated"),
    "broken_zero_bytes": ("failed", "image.empty_file"),
    "broken_not_an_image": ("failed", "image.unidentified"),
    "no_caption": ("dropped", "input.missing_caption"),
    "empty_caption": ("dropped", "text.empty"),
}


def photo(rng: random.Random, size: tuple[int, int]) -> tuple[Image.Image, str]:
    w, h = size
    scene = rng.choice(list(SCENES))
    top, bottom = np.array(SCENES[scene][0], float), np.array(SCENES[scene][1], float)
    t = np.linspace(0, 1, h)[:, None, None]
    column = (top * (1 - t) + bottom * t).astype(np.uint8)  # one column, broadcast across the width
    img = Image.fromarray(np.ascontiguousarray(np.broadcast_to(column, (h, w, 3))))
    draw = ImageDraw.Draw(img)
    color = rng.choice(list(COLORS))
    shape = rng.choice(SHAPES)
    pos = rng.choice(POSITIONS)
    # Placed relative to the central min(w, h) square, so a CLIP-style centre crop (resize the
    # short side, crop the middle) always sees the shape; for square images this is the same as
    # placing it at a quarter, a half or three quarters of the width.
    m = min(w, h)
    cx = w / 2 + {"on the left": -0.25, "on the right": 0.25, "in the middle": 0.0}[pos] * m + rng.uniform(-0.05, 0.05) * m
    cy = h / 2 + rng.uniform(-0.15, 0.15) * m
    r = m * rng.uniform(0.12, 0.25)
    box = (cx - r, cy - r, cx + r, cy + r)
    if shape == "circle":
        draw.ellipse(box, fill=COLORS[color])
    elif shape == "square":
        draw.rectangle(box, fill=COLORS[color])
    else:
        draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=COLORS[color])
    img = img.filter(ImageFilter.GaussianBlur(radius=rng.uniform(0.5, 1.5)))
    noise = np.random.default_rng(rng.randrange(2**32)).standard_normal((h, w, 3), dtype=np.float32)
    img = Image.fromarray(np.clip(np.asarray(img, np.float32) + 6 * noise, 0, 255).astype(np.uint8))
    caption = f"a {color} {shape} {pos} of a {scene} scene"
    return img, caption


def vary(img: Image.Image, rng: random.Random, amplitude: float = 8) -> Image.Image:
    """Faint large-scale light and shade (±`amplitude` levels), different in every picture. Pictures
    drawn from the same scene and shape are near-duplicates to a perceptual hash (to the eye,
    too); the shading spreads their hashes apart while leaving what the captions describe
    alone (the tiny CLIP still scores them as before)."""
    field = np.random.default_rng(rng.randrange(2**32)).uniform(-amplitude, amplitude, (6, 6)).astype(np.float32)
    shade = np.asarray(Image.fromarray(field, mode="F").resize(img.size, Image.Resampling.BICUBIC))
    return Image.fromarray(np.clip(np.asarray(img, np.float32) + shade[:, :, None], 0, 255).astype(np.uint8))


DISTINCT_PICTURES = 2000  # demos up to this many pictures have no unplanted near-duplicates


class _HashIndex:
    """pHash and dHash of the pictures drawn so far: the demo's only near-duplicates are the
    planted ones, so a new picture must differ from every earlier one by more than
    `MIN_DISTANCE` bits in both hashes (the default near-dup threshold is 8)."""

    MIN_DISTANCE = 10

    def __init__(self, capacity: int):
        self.hashes = np.zeros((max(1, capacity), 2), dtype=np.uint64)
        self.n = 0

    def add_if_far(self, img: Image.Image) -> bool:
        from mmcurate.filters.near_dup import image_hashes

        h = image_hashes(img)
        new = np.array([h["phash"], h["dhash"]], dtype=np.uint64)
        if self.n and (np.bitwise_count(self.hashes[: self.n] ^ new) <= self.MIN_DISTANCE).any(axis=1).any():
            return False
        if self.n < len(self.hashes):
            self.hashes[self.n] = new
            self.n += 1
        return True


def generate(folder: str, samples: int = 200, seed: int = 0, progress: bool = False) -> dict:
    """Write `samples` image/caption pairs (defects included) into `folder`; return what to
    expect: {"inputs": n, "duplicates": n, "defects": {name: (status, reason)}}."""
    os.makedirs(folder, exist_ok=True)
    rng = random.Random(seed)
    n_defects = len(DEFECTS) if samples >= 20 else 0
    n_dupes = max(1, samples // 50) if samples >= 20 else 0
    n_near = n_dupes
    n_good = samples - n_defects - n_dupes - n_near
    it = range(n_good)
    if progress:
        from mmcurate.pipelines.progress import bar

        it = bar(it, desc="demo images", unit="img")
    first_jpeg = None
    seen = _HashIndex(n_good)
    # The generated domain holds only so many pictures 10 bits apart: past a few thousand,
    # redrawing would cost ever more tries, so big demos keep their natural near-duplicates.
    tries = 50 if n_good <= DISTINCT_PICTURES else 1
    for i in it:
        size = (rng.randrange(256, 640), rng.randrange(256, 640))
        for _ in range(tries):  # redraw the rare picture that hashes close to an earlier one
            img, caption = photo(rng, size)
            img = vary(img, rng)
            if tries == 1 or seen.add_if_far(img):
                break
        path = os.path.join(folder, f"photo_{i:06d}.jpg")
        img.save(path, quality=rng.randrange(80, 95))
        first_jpeg = first_jpeg or path
        with open(os.path.join(folder, f"photo_{i:06d}.txt"), "w", encoding="utf-8") as f:
            f.write(caption)
    n_mismatched = n_good // 25 if samples >= 20 else 0
    other = random.Random(seed + 1)
    for i in range(n_good - n_mismatched, n_good):  # captions that describe another picture
        path = os.path.join(folder, f"photo_{i:06d}.txt")
        with open(path, encoding="utf-8") as f:
            true_words = f.read().split()
        while True:
            wrong = photo(other, (64, 64))[1]
            if wrong.split()[1] != true_words[1] and wrong.split()[2] != true_words[2]:
                break
        with open(path, "w", encoding="utf-8") as f:
            f.write(wrong)
    for d in range(n_dupes):  # byte-identical copies of earlier photos, under new names
        src = os.path.join(folder, f"photo_{d:06d}")
        dst = os.path.join(folder, f"zcopy_{d:06d}")
        with open(src + ".jpg", "rb") as f, open(dst + ".jpg", "wb") as g:
            g.write(f.read())
        with open(src + ".txt", "rb") as f, open(dst + ".txt", "wb") as g:
            g.write(f.read())
    for d in range(n_near):  # smaller, recompressed copies: near-duplicates, not exact ones
        src = os.path.join(folder, f"photo_{n_dupes + d:06d}")
        dst = os.path.join(folder, f"znear_{d:06d}")
        with Image.open(src + ".jpg") as im:
            im.resize((im.width * 3 // 4, im.height * 3 // 4), Image.Resampling.BICUBIC).save(dst + ".jpg", quality=60)
        with open(src + ".txt", "rb") as f, open(dst + ".txt", "wb") as g:
            g.write(f.read())
    if n_defects:
        with open(first_jpeg, "rb") as f:
            good = f.read()
        defects = {
            "broken_truncated": good[: len(good) // 2],
            "broken_zero_bytes": b"",
            "broken_not_an_image": b"this is a text file with a .jpg name\n",
            "no_caption": good,
            "empty_caption": good,
        }
        for name, data in defects.items():
            with open(os.path.join(folder, f"{name}.jpg"), "wb") as f:
                f.write(data)
            if name != "no_caption":
                with open(os.path.join(folder, f"{name}.txt"), "w", encoding="utf-8") as f:
                    f.write("" if name == "empty_caption" else f"a caption for {name}")
    return {"inputs": samples, "duplicates": n_dupes, "near_duplicates": n_near, "mismatched_captions": n_mismatched, "defects": DEFECTS if n_defects else {}}
