"""`flickr` (Flickr8k/30k `captions.txt`, CSV `image,caption`) and `coco` (COCO captions
JSON). One sample per image: KEY.txt gets the first usable caption, KEY.json all of them."""

from __future__ import annotations

import csv
import io
import json
from typing import Iterator

from mmcurate.filters.keys import make_key, stem_of
from mmcurate.pipelines import fileio
from mmcurate.pipelines.sources.base import ReadTask
from mmcurate.schemas.record import SourceRow, Verdict


def read_flickr(task: ReadTask, _cfg=None) -> Iterator[SourceRow]:
    root = task.options["images"]
    captions: dict[str, list[str]] = {}
    with fileio.open_read(task.locator, compressed=True) as raw:
        reader = csv.reader(io.TextIOWrapper(raw, encoding="utf-8", errors="replace", newline=""))
        header = [h.strip().lower() for h in next(reader, [])]
        if "image" not in header or "caption" not in header:
            raise ValueError(f"{task.locator}: expected a CSV header with 'image' and 'caption'")
        ci, ti = header.index("image"), header.index("caption")
        bad = []
        for values in reader:
            if len(values) <= max(ci, ti):
                bad.append(reader.line_num)
                continue
            captions.setdefault(values[ci].strip(), []).append(values[ti])
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
    for ann in annotations:
        if isinstance(ann, dict) and "image_id" in ann:
            by_image.setdefault(ann["image_id"], []).append(str(ann.get("caption", "")))
    i = 0
    known = set()
    for img in images:
        name = str(img.get("file_name", ""))
        known.add(img.get("id"))
        path = fileio.join(root, name)
        extra = {k: v for k, v in img.items() if k != "file_name"}
        texts = by_image.get(img.get("id"), [])
        row = SourceRow(make_key(stem_of(name) or f"id_{img.get('id')}"), (task.task, i), path, media=path, captions=texts, extra=extra)
        if not name:
            row.verdict = Verdict.reject("input.missing_url")
        elif not texts:
            row.verdict = Verdict.reject("input.missing_caption")
        yield row
        i += 1
    for image_id in sorted((k for k in by_image if k not in known), key=str):
        yield SourceRow(make_key(f"id_{image_id}"), (task.task, i), f"{task.locator}#image_id={image_id}", verdict=Verdict.reject("input.missing_image"), captions=by_image[image_id])
        i += 1
