"""`flickr` (Flickr8k/30k `captions.txt`, CSV `image,caption`) and `coco` (COCO captions
JSON). One sample per image: KEY.txt gets the first usable caption, KEY.json all of them."""

from __future__ import annotations

import csv
import io
import json
from typing import Iterator

from mmcurate.filters.keys import make_key, stem_of
from mmcurate.pipelines import fileio
from mmcurate.pipelines.sources.base import ReadTask, as_checked_text, caption_texts
from mmcurate.schemas.record import SourceRow, Verdict


def read_flickr(task: ReadTask, _cfg=None) -> Iterator[SourceRow]:
    root = task.options["images"]
    captions: dict[str, list[str]] = {}
    with fileio.open_read(task.locator, compressed=True) as raw:
        reader = csv.reader(io.TextIOWrapper(raw, encoding="utf-8", errors="surrogateescape", newline=""))
        header = [h.strip().lower() for h in next(reader, [])]
        if "image" not in header or "caption" not in header:
            raise ValueError(f"{task.locator}: expected a CSV header with 'image' and 'caption'")
        ci, ti = header.index("image"), header.index("caption")
        bad = []
        for values in reader:
            if len(values) <= max(ci, ti):
                bad.append(reader.line_num)
                continue
            captions.setdefault(values[ci].strip(), []).append(as_checked_text(values[ti]))  # (not U+FFFD text)
    i = 0
    for line in bad:
        yield SourceRow(f"badrow_{task.task:05d}_{line:09d}", (task.task, i), f"{task.locator}:{line}", verdict=Verdict.reject("input.bad_row", "too few fields"))
        i += 1
    for image, texts in captions.items():
        path = fileio.join(root, image)
        yield SourceRow(make_key(stem_of(image)), (task.task, i), path, media=path, captions=texts)
        i += 1


def read_coco(task: ReadTask, _cfg=None) -> Iterator[SourceRow]:
    root = task.options["images"]
    doc = json.loads(fileio.read_bytes(task.locator))
    images = doc.get("images")
    annotations = doc.get("annotations")
    if not isinstance(images, list) or not isinstance(annotations, list):
        raise ValueError(f"{task.locator}: not COCO captions JSON (needs 'images' and 'annotations' lists)")
    by_image: dict = {}
    not_text: dict = {}  # image id -> the first of its captions that is not text
    i = 0
    for n, ann in enumerate(annotations):  # an annotation no image can claim is a row of its own
        if not isinstance(ann, dict) or "image_id" not in ann:
            yield SourceRow(f"badrow_{task.task:05d}_{n:09d}", (task.task, i), f"{task.locator}#annotations[{n}]",
                            verdict=Verdict.reject("input.bad_row", f"annotation {n} is not an object with an image_id: {repr(ann)[:80]}"))
            i += 1
            continue
        texts, verdict = caption_texts(ann.get("caption"), f"annotation {n}'s caption")
        by_image.setdefault(ann["image_id"], []).extend(texts)
        if not verdict.kept:
            not_text.setdefault(ann["image_id"], verdict)
    known = set()
    for n, img in enumerate(images):
        if not isinstance(img, dict):
            yield SourceRow(f"badrow_{task.task:05d}_{len(annotations) + n:09d}", (task.task, i), f"{task.locator}#images[{n}]",
                            verdict=Verdict.reject("input.bad_row", f"image {n} is not an object: {repr(img)[:80]}"))
            i += 1
            continue
        name = str(img.get("file_name", ""))
        known.add(img.get("id"))
        path = fileio.join(root, name)
        extra = {k: v for k, v in img.items() if k != "file_name"}
        texts = by_image.get(img.get("id"), [])
        row = SourceRow(make_key(stem_of(name) or f"id_{img.get('id')}"), (task.task, i), path, media=path, captions=texts, extra=extra)
        if not name:
            row.verdict = Verdict.reject("input.missing_url")
        elif not texts:  # (captions that were not text: say so rather than "missing")
            row.verdict = not_text.get(img.get("id")) or Verdict.reject("input.missing_caption")
        yield row
        i += 1
    for image_id in sorted((k for k in by_image if k not in known), key=str):
        yield SourceRow(make_key(f"id_{image_id}"), (task.task, i), f"{task.locator}#image_id={image_id}", verdict=Verdict.reject("input.missing_image"), captions=by_image[image_id])
        i += 1
