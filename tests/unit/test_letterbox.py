"""Letterbox and pillarbox bars (filters/letterbox.py): found where a picture is padded, never
in a picture that is not, and the near-duplicate hashes are taken between them."""

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw

from mmcurate.filters.image import ProcessImage
from mmcurate.filters.letterbox import content_box, without_bars
from mmcurate.schemas.config import ImageConfig
from tests.util import encode, image


def padded(img: Image.Image, side: int = 256, fill=(0, 0, 0), jpeg: bool = True) -> tuple[Image.Image, tuple]:
    """img2dataset's `border` resize: the picture fitted into a square and centred on `fill`;
    returns it (JPEG-coded, as in a shard) and the box the picture lies in."""
    scale = side / max(img.size)
    fitted = img.resize((round(img.width * scale), round(img.height * scale)), Image.Resampling.LANCZOS)
    square = Image.new("RGB", (side, side), fill)
    at = ((side - fitted.width) // 2, (side - fitted.height) // 2)
    square.paste(fitted, at)
    if jpeg:
        square = Image.open(io.BytesIO(encode(square, "JPEG", quality=90))).convert("RGB")
    return square, (at[0], at[1], at[0] + fitted.width, at[1] + fitted.height)


@pytest.mark.parametrize("fill", [(0, 0, 0), (255, 255, 255)])
@pytest.mark.parametrize("w,h", [(480, 320), (320, 480), (640, 360)])
def test_the_bars_of_padded_pictures_are_found_within_two_pixels(w, h, fill):
    for seed in range(8):
        square, want = padded(image(w, h, seed=seed), fill=fill)
        got = content_box(square)
        assert got is not None and all(abs(a - b) <= 2 for a, b in zip(got, want)), (seed, got, want)



def test_bars_are_found_where_the_picture_is_as_dark_as_one_of_them():
    """A night sky along the top bar (dark, a few lights: not flat, but no straight edge either):
    the straight edge past the bottom bar is enough."""
    for seed in range(4):
        picture = image(480, 320, seed=seed)
        sky = np.full((60, 480, 3), 6, dtype=np.uint8)
        sky[:, np.random.default_rng(seed).choice(480, 60, replace=False)] = 120  # a street's lights
        picture.paste(Image.fromarray(sky), (0, 0))
        square, want = padded(picture)
        got = content_box(square)
        assert got is not None and all(abs(a - b) <= 2 for a, b in zip(got, want)), (seed, got, want)

def test_pictures_without_bars_are_left_whole():
    for seed in range(20):
        assert content_box(image(400, 300, seed=seed)) is None
    assert content_box(Image.new("RGB", (300, 200), (0, 0, 0))) is None  # all flat: nothing between bars
    ball = Image.new("RGB", (300, 300), (200, 200, 200))
    ImageDraw.Draw(ball).ellipse((100, 100, 200, 200), fill=(255, 0, 0))
    assert content_box(ball) is None  # a ball on a backdrop: no straight edge, not cropped to the ball
    one_side = Image.new("RGB", (300, 300), (0, 0, 0))
    one_side.paste(image(300, 250, seed=1), (0, 50))  # a bar on one side only
    assert content_box(one_side) is None
    uneven = Image.new("RGB", (300, 300), (0, 0, 0))
    uneven.paste(image(300, 200, seed=2), (0, 20))  # bars of 20 and 80 rows
    assert content_box(uneven) is None
    thin = Image.new("RGB", (300, 300), (0, 0, 0))
    thin.paste(image(300, 60, seed=3), (0, 120))  # 20 % of the side left: too little to trust
    assert content_box(thin) is None


def test_near_duplicate_hashes_are_taken_between_the_bars():
    """A padded copy hashes like its picture; two pictures padded alike no longer hash alike."""
    process = ProcessImage(ImageConfig(resize_mode="no"), hashes=True)

    def hashes(img):
        return process(encode(img, "PNG")).hashes

    def bits(a, b, kind):
        return (a[kind] ^ b[kind]).bit_count()

    picture = image(320, 480, seed=4)
    plain, boxed = hashes(picture), hashes(padded(picture, jpeg=False)[0])
    assert bits(plain, boxed, "phash") <= 4 and bits(plain, boxed, "dhash") <= 4
    assert without_bars(picture) is picture
    other = hashes(padded(image(320, 480, seed=5), jpeg=False)[0])
    assert bits(boxed, other, "dhash") > 8 and bits(boxed, other, "phash") > 8


def test_a_clips_frames_are_cut_alike_even_where_a_dark_frame_shows_no_bars():
    from mmcurate.filters.letterbox import clip_without_bars

    frames = [padded(image(480, 320, seed=s))[0] for s in (6, 7)]
    dark = Image.new("RGB", (256, 256), (0, 0, 0))
    dark.paste(Image.new("RGB", (256, 171), (3, 3, 3)), (0, 42))  # a fade to black: no edge to see
    assert content_box(dark) is None
    cut = clip_without_bars(frames[:1] + [dark] + frames[1:])
    box = content_box(frames[0])
    assert box is not None and [f.size for f in cut] == [(box[2] - box[0], box[3] - box[1])] * 3
    plain = [image(320, 240, seed=8), image(320, 240, seed=9)]
    assert clip_without_bars(plain) == plain
