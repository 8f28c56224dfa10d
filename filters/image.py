"""Safe image decoding, checks, resizing and re-encoding (img2dataset's resize modes).

Pillow rather than OpenCV: `Image.open` reads only the header, so the pixel-count guard runs
before any pixel is decoded, and JPEG `draft()` decodes straight at 1/2, 1/4 or 1/8 scale
(the DCT does the downscaling), which is where most of our speed over img2dataset comes from.
"""

from __future__ import annotations

import io
import math
import warnings
from dataclasses import dataclass
from typing import Optional, Union

from PIL import Image, ImageOps, UnidentifiedImageError

from mmcurate.filters.letterbox import without_bars
from mmcurate.filters.near_dup import colour_signature, image_hashes
from mmcurate.schemas.config import ImageConfig
from mmcurate.schemas.record import Rejected, Verdict, error_text

warnings.simplefilter("ignore", Image.DecompressionBombWarning)

_ORIENTATION = 0x0112
_SWAPS_AXES = {5, 6, 7, 8}
_PIL_FORMAT = {"jpg": "JPEG", "png": "PNG", "webp": "WEBP"}
WHITE = (255, 255, 255)
_FILTERS = {  # area = box averaging, OpenCV's INTER_AREA (img2dataset's downscale default)
    "area": Image.Resampling.BOX, "nearest": Image.Resampling.NEAREST, "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC, "lanczos": Image.Resampling.LANCZOS,
}


@dataclass
class ImageResult:
    data: bytes
    ext: str
    width: int
    height: int
    original_width: int
    original_height: int
    hashes: Optional[dict] = None  # perceptual hashes and colour signature of the decoded image, when asked for


class ImageRejected(Rejected):
    """An image refused with its verdict."""


@dataclass(frozen=True)
class ProcessImage:
    """Bytes in; an `ImageResult`, or `ImageRejected` carrying a verdict, out."""

    cfg: ImageConfig
    hashes: bool = False  # also compute pHash/dHash and the colour signature of the decoded, upright image (before resizing)
    mirror: bool = False  # ... and of its mirror image

    def __call__(self, data: bytes) -> ImageResult:
        if not data:
            raise ImageRejected(Verdict.reject("image.empty_file"))
        img = _open(data)
        raw_w, raw_h = img.size
        if raw_w * raw_h > self.cfg.max_pixels:
            raise ImageRejected(Verdict.reject("image.too_many_pixels", f"{raw_w}x{raw_h}"))
        orientation = _orientation(img)
        w, h = (raw_h, raw_w) if orientation in _SWAPS_AXES else (raw_w, raw_h)
        if min(w, h) < self.cfg.min_side:
            raise ImageRejected(Verdict.reject("image.too_small", f"{w}x{h}"))
        if max(w, h) / max(1, min(w, h)) > self.cfg.max_aspect_ratio:
            raise ImageRejected(Verdict.reject("image.aspect_ratio", f"{w}x{h}"))

        scale = self._scale(w, h)
        if img.format == "JPEG" and scale < 1:
            # Decode at the smallest DCT scale that still covers the target size.
            img.draft("RGB", (math.ceil(raw_w * scale), math.ceil(raw_h * scale)))
        _load(img)
        if orientation not in (None, 1):
            img = ImageOps.exif_transpose(img)
        img = to_rgb(img)
        hashes = None
        if self.hashes:  # of the picture between its letterbox or pillarbox bars, if it has them
            content = without_bars(img)
            hashes = dict(image_hashes(content, self.mirror), colour=colour_signature(content))
        img = self._resize(img, w, h)
        out = io.BytesIO()
        fmt = self.cfg.format
        if fmt == "png":
            img.save(out, "PNG", compress_level=max(0, min(9, round((100 - self.cfg.quality) / 11))))
        else:
            img.save(out, _PIL_FORMAT[fmt], quality=self.cfg.quality)
        return ImageResult(out.getvalue(), fmt, img.width, img.height, w, h, hashes)

    def _scale(self, w: int, h: int) -> float:
        """Final size / original size; 1.0 when the image is left at its size."""
        return 1.0 if self._skip(w, h) else self.cfg.image_size / self._side(w, h)

    def _side(self, w: int, h: int) -> int:
        return min(w, h) if self.cfg.resize_mode in ("keep_ratio", "center_crop") else max(w, h)

    def _skip(self, w: int, h: int) -> bool:
        mode = self.cfg.resize_mode
        return mode == "no" or (self.cfg.resize_only_if_bigger and self._side(w, h) <= self.cfg.image_size)

    def _resize(self, img: Image.Image, w: int, h: int) -> Image.Image:
        if self._skip(w, h):
            return img
        scale = self._scale(w, h)
        mode, size = self.cfg.resize_mode, self.cfg.image_size
        if scale != 1.0:
            new = (max(1, round(w * scale)), max(1, round(h * scale)))
            # the smaller side is pinned exactly; rounding must not leave it at size-1
            if mode in ("keep_ratio", "center_crop"):
                new = (size, new[1]) if w <= h else (new[0], size)
            else:
                new = (size, new[1]) if w >= h else (new[0], size)
            if new != img.size:
                resample = _FILTERS[self.cfg.downscale_filter if scale < 1 else self.cfg.upscale_filter]
                img = img.resize(new, resample)
        if mode == "center_crop" and (img.width > size or img.height > size):
            left, top = (img.width - size) // 2, (img.height - size) // 2
            img = img.crop((left, top, left + min(size, img.width), top + min(size, img.height)))
        elif mode == "border" and (img.width < size or img.height < size):
            canvas = Image.new("RGB", (max(size, img.width), max(size, img.height)), WHITE)
            canvas.paste(img, ((canvas.width - img.width) // 2, (canvas.height - img.height) // 2))
            img = canvas
        return img


def to_rgb(img: Image.Image) -> Image.Image:
    """RGB, compositing any transparency onto white (as img2dataset does)."""
    if img.mode == "RGB":
        return img
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        canvas = Image.new("RGB", rgba.size, WHITE)
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        return canvas
    if img.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        img = img.point(lambda v: v / 256) if img.mode != "F" else img
        img = img.convert("L")
    return img.convert("RGB")


def open_image(data: Union[bytes, bytearray]) -> Image.Image:
    """Decoded RGB image from bytes (for signatures and tests)."""
    img = _open(bytes(data))
    _load(img)
    return to_rgb(ImageOps.exif_transpose(img))


def _open(data: bytes) -> Image.Image:
    try:
        return Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as e:
        raise ImageRejected(Verdict.reject("image.too_many_pixels", str(e))) from None
    except UnidentifiedImageError:
        raise ImageRejected(Verdict.reject("image.unidentified")) from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise ImageRejected(Verdict.reject("image.decode_error", error_text(e, 10_000))) from None


def _load(img: Image.Image) -> None:
    try:
        img.load()
    except Image.DecompressionBombError as e:
        raise ImageRejected(Verdict.reject("image.too_many_pixels", str(e))) from None
    except (OSError, SyntaxError, ValueError, EOFError, MemoryError) as e:
        text = str(e)
        reason = "image.truncated" if "truncated" in text.lower() or isinstance(e, EOFError) else "image.decode_error"
        raise ImageRejected(Verdict.reject(reason, f"{type(e).__name__}: {text}")) from None


def _orientation(img: Image.Image):
    try:
        return img.getexif().get(_ORIENTATION)
    except Exception:  # a broken EXIF block must not lose an otherwise good image
        return None
