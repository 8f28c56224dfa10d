"""`webdataset`: existing tar shards, for re-curation.

Reading a row only indexes the tar (captions and json are small and read inline); the image
bytes are streamed again, shard-locally, by the prepare stage, so no media crosses a shuffle.
"""

from __future__ import annotations

import json
import tarfile
import zlib
from typing import Iterator

from mmcurate.filters.keys import make_key
from mmcurate.pipelines import fileio
from mmcurate.pipelines.sources.base import IMAGE_EXTS, InputError, ReadTask, caption_texts, is_unsafe_member
from mmcurate.pipelines.sources.media import MEDIA_EXTS
from mmcurate.schemas.record import SourceRow, Verdict

TEXT_EXTS = ("txt", "caption", "text")
MEDIA_MODALITY = {ext: modality for modality, exts in MEDIA_EXTS.items() for ext in exts}
PEEK_SAMPLES = 20


def check_image_shards(path: str) -> None:
    """Refuse, in one line, shards whose first samples hold audio or video: re-curating them
    as image-text samples would drop the audio, or keep a video's middle frame alone. A shard
    that cannot be read is left to `read`, which counts it."""
    try:
        for n, (key, members) in enumerate(_groups(path)):
            media = next((m for m in members.values() if _media_ext(m.name)), None)
            if media is not None:
                modality = MEDIA_MODALITY[_media_ext(media.name)]
                raise InputError(f"{path} holds {modality} samples ({media.name}): --format webdataset re-curates image-text "
                                 f"shards only, and would lose the {modality}; curate it from its source files (--format {modality})")
            if n + 1 >= PEEK_SAMPLES:
                return
    except (tarfile.TarError, OSError, EOFError, zlib.error):
        return


def _media_ext(name: str) -> str:
    ext = split_member(name)[1].rsplit(".", 1)[-1]
    return ext if ext in MEDIA_MODALITY else ""


def split_member(name: str) -> tuple[str, str]:
    """WebDataset's rule: the key is everything before the first dot of the base name."""
    head, _, base = name.rpartition("/")
    stem, dot, ext = base.partition(".")
    return (f"{head}/{stem}" if head else stem), ext.lower()


def read(task: ReadTask, _cfg=None) -> Iterator[SourceRow]:
    i = 0
    for key, members in _groups(task.locator):
        where = f"{task.locator}:{key}"
        if any(is_unsafe_member(m.name) or not m.isfile() for m in members.values()):
            bad = next(m.name for m in members.values() if is_unsafe_member(m.name) or not m.isfile())
            yield SourceRow(make_key(key.lstrip("./") or "unsafe"), (task.task, i), where, verdict=Verdict.reject("input.unsafe_path", bad))
            i += 1
            continue
        image = next((members[e] for e in IMAGE_EXTS if e in members), None)
        row = SourceRow(make_key(key), (task.task, i), where)
        media = next((m.name for m in members.values() if _media_ext(m.name)), None)
        if media is not None:  # past the planner's peek: counted, never re-curated as a picture
            row.verdict = Verdict.reject("input.unsupported_media", f"{media}: audio and video samples are not re-curated from shards")
            yield row
            i += 1
            continue
        doc = members.get("json")
        if doc is not None and isinstance(doc.payload, dict):
            row.extra = {k: v for k, v in doc.payload.items() if k not in ("caption", "key", "__key__")}
        text = next((members[e] for e in TEXT_EXTS if e in members), None)
        if text is not None:
            row.caption_bytes = text.payload
        elif doc is not None and isinstance(doc.payload, dict):  # a json's caption: one text or several
            texts, row.verdict = caption_texts(doc.payload.get("caption"), f"{doc.name}'s caption")
            row.caption, row.captions = (texts[0], []) if len(texts) == 1 else (None, texts)
        if image is None:
            row.verdict = Verdict.reject("input.missing_image")
        else:  # without text, prepare drops it as input.missing_caption unless text is not required
            row.media, row.member = task.locator, image.name
        yield row
        i += 1


class _Member:
    def __init__(self, info: tarfile.TarInfo, payload=None):
        self.info, self.name, self.payload = info, info.name, payload

    def isfile(self) -> bool:
        return self.info.isfile()


def _groups(path: str) -> Iterator[tuple[str, dict[str, _Member]]]:
    """(key, {ext: member}) in tar order; a key's members are adjacent in a WebDataset tar."""
    current, members = None, {}
    with fileio.open_read(path, compressed=True) as f, tarfile.open(fileobj=f, mode="r|") as tar:
        for info in tar:
            if info.isdir():
                continue
            key, ext = split_member(info.name)
            ext = ext.rsplit(".", 1)[-1]  # `x.seg.jpg` is an image, whatever the middle part
            payload = None
            if info.isfile() and (ext in TEXT_EXTS or ext == "json") and info.size <= 16 * 1024 * 1024:
                payload = tar.extractfile(info).read()
                if ext == "json":
                    try:
                        payload = json.loads(payload)
                    except ValueError:
                        payload = None
            if key != current and members:
                yield current, members
                members = {}
            current = key
            members.setdefault(ext, _Member(info, payload))
    if members:
        yield current, members


def iter_member_bytes(path: str, wanted: set[str]) -> Iterator[tuple[str, bytes]]:
    """Stream a tar once, yielding (name, bytes) for the wanted members in tar order."""
    with fileio.open_read(path, compressed=True) as f, tarfile.open(fileobj=f, mode="r|") as tar:
        for info in tar:
            if info.name in wanted and info.isfile():
                yield info.name, tar.extractfile(info).read()
