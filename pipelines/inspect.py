"""`mmcurate inspect OUT -o sheet.png`: a contact sheet of samples with their captions, scores
and drop reasons, chosen by manifest conditions (`--where`, `--reason`, `--split`)."""

from __future__ import annotations

import io
import math
import textwrap
from dataclasses import dataclass
from typing import Optional

from PIL import Image, ImageDraw, ImageFont

from mmcurate.pipelines import fileio, samples

BACKGROUND = (250, 250, 250)
INK = (20, 20, 20)
MUTED = (110, 110, 110)
DROPPED_INK = (170, 30, 30)


@dataclass
class SheetLayout:
    tile: int = 224  # thumbnail box, pixels
    cols: int = 0  # 0: about square
    text_lines: int = 5
    font_size: int = 12
    pad: int = 8

    def grid(self, n: int) -> tuple[int, int]:
        cols = self.cols or max(1, math.ceil(math.sqrt(n)))
        return cols, max(1, math.ceil(n / cols))

    @property
    def tile_size(self) -> tuple[int, int]:
        line = self.font_size + 3
        return self.tile + 2 * self.pad, self.tile + 2 * self.pad + self.text_lines * line


def contact_sheet(rows: list[dict], media: list[Optional[dict]], layout: SheetLayout = SheetLayout()) -> Image.Image:
    cols, nrows = layout.grid(len(rows))
    tw, th = layout.tile_size
    sheet = Image.new("RGB", (cols * tw, nrows * th), BACKGROUND)
    font = ImageFont.load_default(size=layout.font_size)
    for i, (row, sample) in enumerate(zip(rows, media)):
        x, y = (i % cols) * tw, (i // cols) * th
        _draw_tile(sheet, font, layout, x, y, row, sample)
    return sheet


def _draw_tile(sheet: Image.Image, font, layout: SheetLayout, x: int, y: int, row: dict, sample: Optional[dict]) -> None:
    draw = ImageDraw.Draw(sheet)
    box = layout.tile
    picture = _picture(sample)
    if picture is not None:
        picture.thumbnail((box, box))
        sheet.paste(picture, (x + layout.pad + (box - picture.width) // 2, y + layout.pad + (box - picture.height) // 2))
    else:
        draw.rectangle([x + layout.pad, y + layout.pad, x + layout.pad + box, y + layout.pad + box], outline=MUTED)
        why = "dropped before staging: no media" if row.get("ord") is None else "media not kept (rerun with --keep-staging)"
        draw.multiline_text((x + 2 * layout.pad, y + box // 2), "\n".join(textwrap.wrap(why, 30)), fill=MUTED, font=font)
    line_h = layout.font_size + 3
    ty = y + box + 2 * layout.pad
    head = row["key"]
    if row.get("clip_score") is not None:
        head += f"  score {row['clip_score']:.3f}"
    lines = [(head, MUTED)]
    if row["status"] != "kept":
        lines.append((f"{row['status']}: {row['reason']}", DROPPED_INK))
    if row.get("dup_of"):
        distance = f" at {row['dup_distance']:g}" if row.get("dup_distance") is not None else ""
        lines.append((f"duplicate of {row['dup_of']}{distance}", DROPPED_INK))
    width_chars = max(10, int(box / (layout.font_size * 0.55)))
    caption = textwrap.wrap(row.get("caption") or "(no caption)", width_chars) or [""]
    room = layout.text_lines - len(lines)
    if len(caption) > room:
        caption = caption[: room - 1] + [caption[room - 1][: width_chars - 1] + "…"]
    lines += [(c, INK) for c in caption]
    for k, (text, colour) in enumerate(lines[: layout.text_lines]):
        draw.text((x + layout.pad, ty + k * line_h), text, fill=colour, font=font)


def _picture(sample: Optional[dict]) -> Optional[Image.Image]:
    """The tile's picture: the image, a video clip's middle frame, or an audio waveform."""
    return samples.picture(sample)


def inspect(out_dir: str, sheet_path: str, n: int = 25, where: str = "", reason: str = "", split: str = "",
            status: str = "", seed: Optional[int] = None, layout: SheetLayout = SheetLayout()) -> dict:
    """Write the contact sheet; returns what it shows: tiles, matches, grid and pixel size."""
    status = status or ("all" if reason else "kept")
    rows, matched = samples.select(samples.matching_rows(out_dir, where, reason, split, status), n, seed)
    if not rows:
        raise LookupError(f"no samples in {out_dir} match (status={status}{', reason=' + reason if reason else ''}{', split=' + split if split else ''}{', where: ' + where if where else ''})")
    found = samples.media(out_dir, rows)
    sheet = contact_sheet(rows, found, layout)
    buf = io.BytesIO()
    sheet.save(buf, "PNG")
    fileio.write_bytes(sheet_path, buf.getvalue())
    cols, nrows = layout.grid(len(rows))
    return {"tiles": len(rows), "matched": matched, "with_media": sum(m is not None for m in found),
            "grid": [cols, nrows], "size": list(sheet.size)}
