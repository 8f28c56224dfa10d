import pytest
from PIL import Image

from mmcurate.filters.image import ImageRejected, ProcessImage, open_image
from mmcurate.schemas.config import ImageConfig
from tests.util import encode, image, jpeg, png_bomb, png_declaring


def process(data, **cfg):
    return ProcessImage(ImageConfig(**cfg))(data)


def reason(data, **cfg):
    with pytest.raises(ImageRejected) as e:
        process(data, **cfg)
    return e.value.verdict.reason


def test_hostile_bytes_get_their_own_reasons():
    good = jpeg(400, 300)
    assert reason(good[: len(good) // 2]) == "image.truncated"
    assert reason(b"") == "image.empty_file"
    assert reason(b"<html>not an image</html>") == "image.unidentified"
    assert reason(png_declaring(100_000, 100_000)) == "image.too_many_pixels"
    assert reason(png_bomb(32000)) == "image.too_many_pixels"


def test_pixel_cap_is_checked_on_the_header_before_decoding():
    # 20000 x 10000 = 200 Mpx declared; the IDAT is tiny and broken: a decode would fail
    # differently, so this reason proves nothing was decoded.
    assert reason(png_declaring(20000, 10000, idat=b"garbage")) == "image.too_many_pixels"
    assert reason(jpeg(400, 300), max_pixels=400 * 300 - 1) == "image.too_many_pixels"
    assert process(jpeg(400, 300), max_pixels=400 * 300).original_width == 400


def test_size_and_aspect_checks():
    assert reason(jpeg(40, 20), min_side=32) == "image.too_small"
    assert reason(jpeg(700, 100), max_aspect_ratio=6.0) == "image.aspect_ratio"
    assert process(jpeg(600, 100), max_aspect_ratio=6.0).original_width == 600


@pytest.mark.parametrize(
    "mode,size,expected",
    [
        ("border", (400, 200), (256, 256)),
        ("border", (1024, 768), (256, 256)),
        ("keep_ratio", (400, 200), (512, 256)),
        ("keep_ratio", (1000, 751), (341, 256)),
        ("center_crop", (400, 200), (256, 256)),
        ("center_crop", (1023, 1024), (256, 256)),
        ("no", (400, 200), (400, 200)),
    ],
)
def test_resize_modes(mode, size, expected):
    r = process(jpeg(*size), resize_mode=mode, image_size=256)
    assert (r.width, r.height) == expected
    assert (r.original_width, r.original_height) == size
    assert Image.open(__import__("io").BytesIO(r.data)).size == expected


def test_border_pads_with_white_and_keeps_content_centred():
    r = process(encode(Image.new("RGB", (400, 200), (0, 0, 255)), "PNG"), resize_mode="border", image_size=256)
    img = open_image(r.data)
    assert min(img.getpixel((128, 5))) > 240  # white band on top
    assert img.getpixel((128, 128))[2] > 200 and img.getpixel((128, 128))[0] < 60  # blue centre


def test_resize_only_if_bigger_leaves_small_images_alone():
    r = process(jpeg(200, 100), resize_mode="border", image_size=256, resize_only_if_bigger=True)
    assert (r.width, r.height) == (200, 100)


def test_unusual_images_are_kept_as_rgb():
    rgba = image(300, 200).convert("RGBA")
    rgba.putpixel((0, 0), (10, 20, 30, 0))
    palette = image(300, 200).convert("P")
    palette.info["transparency"] = palette.getpixel((0, 0))
    cmyk = encode(image(300, 200).convert("CMYK"), "JPEG")
    for data in (encode(rgba, "PNG"), encode(palette, "PNG", transparency=palette.getpixel((0, 0))), cmyk, encode(image(300, 200), "WEBP"), encode(image(300, 200).convert("L"), "PNG")):
        r = process(data, resize_mode="no")
        out = open_image(r.data)
        assert out.mode == "RGB" and out.size == (300, 200)
    corner = open_image(process(encode(rgba, "PNG"), resize_mode="no", format="png").data).getpixel((0, 0))
    assert corner == (255, 255, 255)  # transparency composited onto white


def test_exif_orientation_is_applied_and_recorded():
    img = image(400, 200)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise for display
    data = encode(img, "JPEG", exif=exif.tobytes())
    r = process(data, resize_mode="no")
    assert (r.original_width, r.original_height) == (200, 400)
    assert (r.width, r.height) == (200, 400)


def test_output_format_and_determinism():
    data = jpeg(800, 600, seed=3)
    a, b = process(data), process(data)
    assert a.data == b.data and a.ext == "jpg" and a.data[:2] == b"\xff\xd8"
    assert process(data, format="png").data[:4] == b"\x89PNG"
    assert process(data, format="webp").data[8:12] == b"WEBP"
    assert len(process(data, quality=30).data) < len(process(data, quality=95).data)
