"""Input sources. `plan` runs on the launching machine and only lists files; `read` runs in
workers and turns one task into `SourceRow`s."""

from __future__ import annotations

import json
from typing import Iterator

from braceexpand import braceexpand

from mmcurate.pipelines import fileio
from mmcurate.pipelines.sources import captions, folder, media, table, transcripts, webdataset
from mmcurate.pipelines.sources.base import TABLE_SUFFIXES, TAR_SUFFIXES, InputError, ReadTask, image_root
from mmcurate.schemas.config import RunConfig
from mmcurate.schemas.record import SourceRow

_READERS = {
    "table": table.read,
    "folder": folder.read,
    "flickr": captions.read_flickr,
    "coco": captions.read_coco,
    "webdataset": webdataset.read,
    "audio": media.read,
    "video": media.read,
    "transcripts": transcripts.read,
}
ROLES = ("image", "audio", "video", "text")


def read(task: ReadTask, cfg: RunConfig) -> Iterator[SourceRow]:
    role = task.options.get("role", "")
    for row in _READERS[task.format](task, cfg.input):
        row.role = row.role or role
        yield row


def split_role(spec: str) -> tuple[str, str]:
    """`audio=clips/` -> ("audio", "clips/"); a plain input -> ("", spec)."""
    head, sep, rest = spec.partition("=")
    return (head, rest) if sep and head in ROLES else ("", spec)


def detect_format(path: str) -> str:
    low = path.lower().rstrip("/")
    if low.endswith(TAR_SUFFIXES) or "{" in low and ".tar" in low:
        return "webdataset"
    if fileio.is_dir(path):
        files = fileio.list_files(path)
        if files and all(f.lower().endswith(TAR_SUFFIXES) for f in files):
            return "webdataset"
        return "folder"
    if low.endswith(".json"):
        head = fileio.read_bytes(path, 4096).lstrip()
        if head.startswith(b"{"):
            try:
                doc = json.loads(fileio.read_bytes(path))
                if isinstance(doc, dict) and "images" in doc and "annotations" in doc:
                    return "coco"
            except ValueError:
                pass
        return "table"
    if low.endswith((".txt", ".csv")):
        first = fileio.read_bytes(path, 256).split(b"\n", 1)[0].strip().lower().replace(b" ", b"")
        if first.startswith(b"image,caption"):
            return "flickr"
    if low.endswith(TABLE_SUFFIXES):
        return "table"
    if low.endswith(("transcription", ".trans.txt")):
        return "transcripts"
    raise InputError(f"cannot tell the format of {path}: pass --format (table, folder, coco, flickr, webdataset, audio, video)")


def plan(inputs: list[str], cfg: RunConfig) -> tuple[str, list[ReadTask], int]:
    """Read tasks for all inputs, in input order. Returns (format, tasks, ignored files)."""
    if not inputs:
        raise InputError("no input given")
    roles = [split_role(spec)[0] for spec in inputs]
    if any(roles):
        return _plan_aligned(inputs, cfg)
    fmt = cfg.input.format
    if fmt == "auto":
        fmt = detect_format(_first_existing(inputs[0]))
    tasks: list[ReadTask] = []
    ignored = 0
    for spec in inputs:
        if fmt in ("folder", "audio", "video"):
            if not fileio.is_dir(spec):
                raise InputError(f"--format {fmt} needs a directory; {spec} is not one")
            if fmt == "folder":
                new, skipped = folder.plan(spec, len(tasks), cfg.output.shard_size)
            else:
                new, skipped = media.plan(spec, fmt, len(tasks), cfg.input.rows_per_shard(cfg))
            tasks += new
            ignored += skipped
            continue
        suffixes = {"table": TABLE_SUFFIXES, "webdataset": TAR_SUFFIXES}.get(fmt, (".txt", ".csv", ".json"))
        for path in _expand(spec, suffixes):
            options = {"images": image_root(path, cfg.input.images)} if fmt in ("coco", "flickr") else {}
            tasks.append(ReadTask(len(tasks), fmt, path, options=options))
    return fmt, tasks, ignored


def _plan_aligned(inputs: list[str], cfg: RunConfig) -> tuple[str, list[ReadTask], int]:
    """Inputs given as ROLE=PATH, joined by key in prepare (see prepare.align_pieces)."""
    specs = [split_role(spec) for spec in inputs]
    if not all(role for role, _ in specs):
        raise InputError("give every input a role (image=, audio=, video=, text=) or none of them")
    media_roles = sorted({role for role, _ in specs if role != "text"})
    if len(media_roles) != 1:
        raise InputError(f"key-aligned inputs need exactly one media role (image, audio or video); got {', '.join(media_roles) or 'none'}")
    (modality,) = media_roles
    tasks: list[ReadTask] = []
    ignored = 0
    for role, path in specs:
        if role == "text":
            fmt = "transcripts"
        elif role in ("audio", "video") and fileio.is_dir(path):
            fmt = role
        else:
            fmt = detect_format(_first_existing(path))
        sub = RunConfig.from_dict(cfg.to_dict())
        sub.input.format = fmt
        _, new, skipped = plan([path], sub)
        for task in new:
            task.task = len(tasks)
            task.options["role"] = role
            tasks.append(task)
        ignored += skipped
    if not cfg.input.require:
        cfg.input.require = ",".join(sorted({role for role, _ in specs}))
    cfg.input.format = modality if modality != "image" else cfg.input.format
    return "+".join(role for role, _ in specs), tasks, ignored


def _expand(spec: str, suffixes: tuple[str, ...]) -> list[str]:
    """A file, a folder (its files with the format's suffixes), a glob or a {a..b} brace range."""
    paths = []
    for item in braceexpand(spec) if "{" in spec else [spec]:
        if any(c in item for c in "*?["):
            found = fileio.glob(item)
            if not found:
                raise InputError(f"no files match {item}")
            paths += found
        elif fileio.is_dir(item):
            found = [p for p in fileio.list_files(item) if p.lower().endswith(suffixes)]
            if not found:
                raise InputError(f"no {'/'.join(suffixes)} files in {item}")
            paths += found
        elif fileio.exists(item):
            paths.append(item)
        else:
            raise InputError(f"input not found: {item}")
    return paths


def _first_existing(spec: str) -> str:
    first = next(iter(braceexpand(spec))) if "{" in spec else spec
    if not any(c in first for c in "*?[") and not fileio.exists(first) and not fileio.is_dir(first):
        raise InputError(f"input not found: {first}")
    return first if not any(c in first for c in "*?[") else (fileio.glob(first) or [first])[0]
