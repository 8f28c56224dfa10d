"""Input sources. `plan` runs on the launching machine and only lists files; `read` runs in
workers and turns one task into `SourceRow`s."""

from __future__ import annotations

import csv
import json
import re
from collections import Counter
from typing import Iterator, Sequence

from braceexpand import braceexpand

from mmcurate.pipelines import fileio
from mmcurate.pipelines.sources import captions, folder, media, table, transcripts, webdataset
from mmcurate.pipelines.sources.base import IMAGE_EXTS, TABLE_SUFFIXES, TAR_SUFFIXES, InputError, ReadTask, ext_of, image_root
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
        return _folder_format(fileio.list_files(path))
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
    ext = ext_of(low)
    kind = next((m for m, exts in media.MEDIA_EXTS.items() if ext in exts), "image" if ext in IMAGE_EXTS else "")
    if kind:  # inputs are folders, tables, shards and caption files, never one media file
        raise InputError(f"{path} is one {kind} file: give the folder that holds it (--format {'folder' if kind == 'image' else kind}), "
                         "or a table that lists files (--url-col, --audio-col or --video-col)")
    raise InputError(f"cannot tell the format of {path}: pass --format (table, folder, coco, flickr, webdataset, audio, video)")


def _folder_format(files: list[str]) -> str:
    """A folder's format by what it holds: images (with sidecars) are `folder`; else tar
    shards `webdataset`, else audio or video files their own formats."""
    exts = Counter(ext_of(f) for f in files)
    if any(exts[e] for e in IMAGE_EXTS):
        return "folder"
    if any(f.lower().endswith(TAR_SUFFIXES) for f in files):
        return "webdataset"
    for modality in ("audio", "video"):
        if any(exts[e] for e in media.MEDIA_EXTS[modality]):
            return modality
    return "folder"


def _nothing_found(spec: str, fmt: str) -> InputError:
    """No inputs in a folder: say what it holds, and which --format would read it."""
    files = fileio.list_files(spec) if fileio.is_dir(spec) else []
    if not files:
        return InputError(f"no inputs: {spec} is empty")
    exts = Counter(ext_of(f) or "(no extension)" for f in files)
    held = ", ".join(f"{n} .{e}" if not e.startswith("(") else f"{n} {e}" for e, n in exts.most_common(6))
    hint = _folder_format(files)
    advice = f"; its files look like --format {hint}" if hint != fmt and hint != "folder" else ""
    return InputError(f"no inputs for --format {fmt} in {spec} (it holds {held}){advice}")


def plan(inputs: list[str], cfg: RunConfig, exclude: Sequence[str] = (), aligned: bool = False) -> tuple[str, list[ReadTask], int]:
    """Read tasks for all inputs, in input order (a folder's files under `exclude`, the run's
    own output, are left out). Returns (format, tasks, ignored files). An input that gives
    nothing to read fails here, in one line, as does a table without its columns."""
    if not inputs:
        raise InputError("no input given")
    roles = [split_role(spec)[0] for spec in inputs]
    if any(roles):
        return _plan_aligned(inputs, cfg, exclude)
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
                new, skipped = folder.plan(spec, len(tasks), cfg.output.shard_size, exclude)
            else:
                new, skipped = media.plan(spec, fmt, len(tasks), cfg.input.rows_per_shard(cfg), exclude, cfg.text.wanted_languages())
            if not new:
                raise _nothing_found(spec, fmt)
            tasks += new
            ignored += skipped
            continue
        suffixes = {"table": TABLE_SUFFIXES, "webdataset": TAR_SUFFIXES}.get(fmt, (".txt", ".csv", ".json"))
        paths = _expand(spec, suffixes)
        if fmt == "table":
            table.check_columns(paths[0], cfg.input, captions=not aligned and cfg.input.requires_text)
        if fmt == "webdataset":
            webdataset.check_image_shards(paths[0])
        if fmt == "transcripts" and not aligned:
            raise InputError(f"{spec} is a transcripts file: it gives the text of a key-aligned run, "
                             f"e.g. mmcurate run audio=FOLDER text={spec} -o OUT (or video=FOLDER)")
        for path in paths:
            options = {"images": _image_folder(path, fmt, cfg.input.images)} if fmt in ("coco", "flickr") else {}
            tasks.append(ReadTask(len(tasks), fmt, path, options=options))
    return fmt, tasks, ignored


IMAGES_CHECKED = 20


def _image_folder(captions_file: str, fmt: str, explicit: str) -> str:
    """The coco/flickr image folder, checked: it exists, and holds one of the first
    IMAGES_CHECKED images the file names (else every row would fail as fetch.not_found)."""
    root = image_root(captions_file, explicit)
    if not fileio.is_dir(root):
        raise InputError(f"images folder not found: {root}" + (" (--images)" if explicit else ""))
    names = _first_images(captions_file, fmt)
    if names and not any(fileio.exists(fileio.join(root, name)) for name in names):
        raise InputError(f"none of the first {len(names)} images {captions_file} names (such as {names[0]}) is in {root}: "
                         + ("is --images right?" if explicit else "pass the folder that holds them with --images"))
    return root


def _first_images(captions_file: str, fmt: str) -> list[str]:
    """The first IMAGES_CHECKED image names of a flickr or coco file ([] when it cannot tell)."""
    try:
        if fmt == "coco":
            images = json.loads(fileio.read_bytes(captions_file)).get("images") or []
            return [str(i["file_name"]) for i in images[:IMAGES_CHECKED] if isinstance(i, dict) and i.get("file_name")]
        head = fileio.read_bytes(captions_file, 1 << 16).decode("utf-8", "replace").splitlines()[: IMAGES_CHECKED + 1]
        rows = list(csv.reader(head))
        column = [h.strip().lower() for h in rows[0]].index("image")
        return [r[column].strip() for r in rows[1:] if len(r) > column and r[column].strip()]
    except (ValueError, KeyError, IndexError, AttributeError, OSError):
        return []  # the read counts what is wrong with the file


def _plan_aligned(inputs: list[str], cfg: RunConfig, exclude: Sequence[str]) -> tuple[str, list[ReadTask], int]:
    """Inputs given as ROLE=PATH, joined by key in prepare (see prepare.align_pieces)."""
    specs = [split_role(spec) for spec in inputs]
    unknown = [spec for (role, _), spec in zip(specs, inputs) if not role and re.fullmatch(r"[A-Za-z_]+=.+", spec)]
    if unknown:
        raise InputError(f"unknown role {unknown[0].split('=', 1)[0]}= in {unknown[0]}: the roles are {', '.join(r + '=' for r in ROLES)}")
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
        _, new, skipped = plan([path], sub, exclude, aligned=True)
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
