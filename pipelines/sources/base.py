"""What every source shares: the read task, the file extensions, image-root resolution."""

from __future__ import annotations

import math
import os
import posixpath
from dataclasses import dataclass, field
from typing import Any

from mmcurate.pipelines import fileio
from mmcurate.schemas.record import Verdict

IMAGE_EXTS = ("jpg", "jpeg", "png", "webp", "bmp", "gif", "tif", "tiff")
TABLE_SUFFIXES = (".parquet", ".csv", ".tsv", ".jsonl", ".json.gz", ".jsonl.gz", ".csv.gz", ".tsv.gz", ".ndjson")
TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz")


class InputError(ValueError):
    """An input cannot be used at all (missing, unknown format); the run stops with its message."""


@dataclass
class ReadTask:
    """A unit of input reading. `task` numbers tasks in input order; it is part of every
    row's order and of the staging shard ids, so shard ids never depend on scheduling."""

    task: int
    format: str
    locator: str
    payload: Any = None  # source-specific (a folder chunk's file groups, the image root)
    options: dict = field(default_factory=dict)
    is_shard: bool = False  # planned as exactly one shard (folder chunks): never re-cut by row count


def ext_of(name: str) -> str:
    base = name.rsplit("/", 1)[-1]
    return base.rsplit(".", 1)[-1].lower() if "." in base else ""


def parent_of(path: str) -> str:
    return posixpath.dirname(path) if fileio.is_remote(path) else os.path.dirname(os.path.abspath(path))


def resolve(base_dir: str, ref: str) -> str:
    """A path or URL from an input file, made absolute against the file's folder."""
    if "://" in ref or os.path.isabs(ref):
        return ref
    return fileio.join(base_dir, ref)


def image_root(captions_file: str, explicit: str) -> str:
    """coco/flickr image root: --images, else images/ or Images/ beside the file, else its folder."""
    if explicit:
        return explicit
    here = parent_of(captions_file)
    for name in ("images", "Images"):
        candidate = fileio.join(here, name)
        if fileio.is_dir(candidate):
            return candidate
    return here


def is_unsafe_member(name: str) -> bool:
    """A tar member that would escape its root if extracted."""
    parts = name.replace("\\", "/").split("/")
    return name.startswith(("/", "\\")) or ".." in parts or (len(name) > 1 and name[1] == ":")


def caption_texts(value: Any, where: str) -> tuple[list[str], Verdict]:
    """The texts of a caption field (a table column, a sidecar json's `caption`): a string is
    one; a list of strings is several (the first usable becomes KEY.txt, as with COCO); null,
    NaN (pandas' missing value) and an empty list are none (input.missing_caption later).
    Anything else is not text and is not turned into text: a number, true/false or an object
    is input.bad_caption (`str()` would have kept "nan", "True" or "{'en': ...}" as captions)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return [], Verdict.keep()
    if isinstance(value, str):
        return [value], Verdict.keep()
    if isinstance(value, (list, tuple)) and all(v is None or isinstance(v, str) for v in value):
        return [v for v in value if v is not None], Verdict.keep()
    kinds = {bool: "true/false", int: "a number", float: "a number", dict: "an object", list: "a list with non-text items", tuple: "a list with non-text items"}
    kind = kinds.get(type(value), f"a {type(value).__name__}")
    return [], Verdict.reject("input.bad_caption", f"{where} is {kind}, not text: {repr(value)[:60]}")


def has_surrogates(text: str) -> bool:
    """Whether text read with errors="surrogateescape" held bytes that are not UTF-8."""
    return any("\udc80" <= ch <= "\udcff" for ch in text)


def as_checked_text(text: str):
    """Text as prepare should check it: its original bytes when they were not UTF-8 (prepare
    then drops it as text.invalid_utf8), else the text itself."""
    return text.encode("utf-8", "surrogateescape") if has_surrogates(text) else text
