"""`folder`: images with sidecar captions (`a.jpg` + `a.txt`, or `a.json` with `caption`)."""

from __future__ import annotations

import json
from typing import Iterator, NamedTuple, Optional, Sequence

from mmcurate.filters.keys import make_key, stem_of
from mmcurate.pipelines import fileio
from mmcurate.pipelines.sources.base import IMAGE_EXTS, ReadTask, caption_texts, ext_of
from mmcurate.pipelines.sources.transcripts import TEXT_COLUMNS
from mmcurate.schemas.record import SourceRow, Verdict, error_text

SIDECAR_EXTS = ("txt", "json")


def plan(root: str, first_task: int, shard_size: int, exclude: Sequence[str] = ()) -> tuple[list[ReadTask], int]:
    """Group the folder's files by stem (not those in `exclude`: the run's own output) and cut
    the groups into shard-sized tasks. Returns the tasks and the number of files that are
    neither images nor sidecars."""
    groups: dict[str, dict[str, list[str]]] = {}
    ignored = 0
    root = root.rstrip("/")
    for path in fileio.list_files(root, exclude):
        rel = path[len(root) + 1 :]
        ext = ext_of(rel)
        if ext in IMAGE_EXTS or ext in SIDECAR_EXTS:
            groups.setdefault(stem_of(rel), {}).setdefault(ext, []).append(rel)
        else:
            ignored += 1
    stems = sorted(groups)
    tasks = []
    for start in range(0, len(stems), shard_size):
        chunk = [(s, groups[s]) for s in stems[start : start + shard_size]]
        tasks.append(ReadTask(first_task + len(tasks), "folder", root, payload=chunk, is_shard=True))
    return tasks, ignored


def read(task: ReadTask, _cfg=None) -> Iterator[SourceRow]:
    root = task.locator
    i = 0
    for stem, files in task.payload:
        images = [f for ext in IMAGE_EXTS for f in files.get(ext, [])]
        sidecar = read_sidecar(root, files)
        if not images:
            name = (files.get("txt") or files.get("json"))[0]
            yield SourceRow(make_key(stem), (task.task, i), fileio.join(root, name), verdict=Verdict.reject("input.missing_image"))
            i += 1
            continue
        for image in images:  # a.jpg and a.png share a key: the second becomes input.duplicate_key
            path = fileio.join(root, image)
            row = SourceRow(make_key(stem), (task.task, i), path, media=path, caption_bytes=sidecar.caption_bytes,
                            captions=list(sidecar.captions), extra=dict(sidecar.extra))
            if not sidecar.verdict.kept:
                row.verdict = sidecar.verdict
            yield row  # no sidecar: prepare drops it as input.missing_caption unless text is not required
            i += 1


class Sidecar(NamedTuple):
    caption_bytes: Optional[bytes]  # one caption, checked (UTF-8) and cleaned in prepare
    captions: list[str]  # or several: `a.json` with a list as its `caption`
    extra: dict  # the json's other fields
    verdict: Verdict

    @property
    def has_text(self) -> bool:
        return self.caption_bytes is not None or bool(self.captions)


def read_sidecar(root: str, files: dict) -> Sidecar:
    """A stem's caption from `a.txt`, or `a.json`'s `caption` (else `text`, `transcript`, ...:
    transcripts.TEXT_COLUMNS; its other fields: extra). A
    sidecar that cannot be read (a dangling link, an I/O error) fails this stem's rows as
    input.unreadable; the stems after it are read on."""
    name = (files.get("txt") or files.get("json") or [None])[0]
    try:
        data = fileio.read_bytes(fileio.join(root, name)) if name else None
    except OSError as e:  # (Beam's BeamIOError for gs:// and s3:// is one too)
        return Sidecar(None, [], {}, Verdict.reject("input.unreadable", error_text(e, 300)))
    if files.get("txt"):
        return Sidecar(data, [], {}, Verdict.keep())
    if files.get("json"):
        try:
            doc = json.loads(data)
        except ValueError as e:
            return Sidecar(None, [], {}, Verdict.reject("input.bad_row", f"sidecar json: {e}"))
        if not isinstance(doc, dict):
            return Sidecar(None, [], {}, Verdict.reject("input.bad_row", "sidecar json is not an object"))
        field = next((f for f in TEXT_COLUMNS if doc.get(f) is not None), "caption")  # named as in transcript tables
        texts, verdict = caption_texts(doc.pop(field, None), f"the sidecar json's {field}")
        if len(texts) == 1:  # (surrogatepass: a "\udcxx" escape becomes bytes that fail as text.invalid_utf8)
            return Sidecar(texts[0].encode("utf-8", "surrogatepass"), [], doc, verdict)
        return Sidecar(None, texts, doc, verdict)
    return Sidecar(None, [], {}, Verdict.keep())
