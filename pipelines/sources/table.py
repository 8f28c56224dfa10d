"""`table`: parquet / csv / tsv / jsonl (optionally gzipped), one row per sample, like
img2dataset's url lists (or audio/video paths with --audio-col/--video-col; a video's clip spans
with --clips-col). Columns other than the URL and caption are carried into KEY.json."""

from __future__ import annotations

import csv
import io
import json
import math
import re
from typing import Iterator

import pyarrow.parquet as pq

from mmcurate.filters.keys import make_key, position_key
from mmcurate.filters.subtitles import Cue, clip_spans
from mmcurate.pipelines import fileio
from mmcurate.pipelines.sources.base import InputError, ReadTask, as_checked_text, caption_texts, has_surrogates, parent_of, resolve
from mmcurate.schemas.config import InputConfig
from mmcurate.schemas.record import SourceRow, Verdict

csv.field_size_limit(64 * 1024 * 1024)


def read(task: ReadTask, cfg: InputConfig) -> Iterator[SourceRow]:
    base = parent_of(task.locator)
    for i, record in enumerate(_records(task.locator)):
        where = f"{task.locator}:{i + 1}"
        if isinstance(record, _BadRow):
            yield SourceRow(position_key(task.task, i), (task.task, i), where, verdict=Verdict.reject("input.bad_row", record.detail))
            continue
        url = record.pop(cfg.audio_col or cfg.video_col or cfg.url_col, None)
        spans = _spans_cell(record, cfg.clips_columns) if cfg.clips_col else None
        caption = record.pop(cfg.caption_col, None)
        texts, caption_verdict = caption_texts(caption, f"column {cfg.caption_col!r}")
        key = position_key(task.task, i)
        ident = record.get(cfg.key_col) if cfg.key_col else None
        if not _missing(ident):
            key = make_key(str(ident))
        row = SourceRow(key, (task.task, i), where, extra=_jsonable(record), verdict=caption_verdict)
        # text that was not valid UTF-8 (csv read with surrogateescape) goes as its bytes: text.invalid_utf8
        texts = [as_checked_text(t) for t in texts]
        if len(texts) == 1 and isinstance(texts[0], bytes):
            row.caption_bytes = texts[0]
        elif len(texts) == 1:
            row.caption = texts[0]
        else:
            row.captions = texts  # none, or several (a list column): the first usable one is KEY.txt
        if url in (None, "") or not isinstance(url, str):
            row.verdict = Verdict.reject("input.missing_url")
        else:
            row.media = resolve(base, url.strip())
            row.source = row.media
        if not _missing(spans) and row.verdict.kept:
            _give_clips(row, spans, caption, texts, cfg.clips_col)
        yield row


def _spans_cell(record: dict, names: list[str]):
    """The row's spans: the clips column's cell, or with "START,END" (Kinetics' time_start,
    time_end) the one span those two columns give."""
    if len(names) == 1:
        return record.pop(names[0], None)
    start, end = (record.pop(n, None) for n in names)
    return None if _missing(start) and _missing(end) else [start, end]


def _missing(value) -> bool:
    """No value in a cell: None, "" (csv) or NaN (pandas' missing value)."""
    return value is None or value == "" or (isinstance(value, float) and math.isnan(value))


def _give_clips(row: SourceRow, spans, caption, texts: list, column: str) -> None:
    """The row's clips from its spans: each span takes its own caption when the caption
    column holds a list of one per span (a null: that span has none), else the one caption
    (or none) they share."""
    try:
        times = clip_spans(spans)
    except ValueError as e:
        row.verdict = Verdict.reject("input.bad_row", f"column {column!r}: {e}")
        return
    if isinstance(caption, (list, tuple)) and len(caption) == len(times):  # (caption_texts drops the nulls)
        texts = [as_checked_text(t) if t is not None else None for t in caption]
    if any(isinstance(t, bytes) for t in texts):
        row.verdict = Verdict.reject("text.invalid_utf8", "a caption of the row")
        return
    if len(texts) > 1 and len(texts) != len(times):
        row.verdict = Verdict.reject("input.bad_row", f"{len(texts)} captions for {len(times)} spans in column {column!r}: give one caption, or one per span")
        return
    per_span = texts if len(texts) == len(times) else (texts or [None]) * len(times)  # None: input.missing_caption
    row.clips = [Cue(start, end, text) for (start, end), text in zip(times, per_span)]


def check_columns(path: str, cfg: InputConfig, captions: bool) -> None:
    """A table without the column its media (or, where captions are required, its caption) is
    read from fails the run now, in one line, rather than dropping every row as
    input.missing_url or input.missing_caption. Reads the header only (a jsonl: its first rows)."""
    try:
        have = _column_names(path)
    except Exception:  # an unreadable table: its read counts it (input.unreadable)
        return
    if have is None:
        return
    wanted = [(cfg.audio_col or cfg.video_col or cfg.url_col, "--audio-col" if cfg.audio_col else "--video-col" if cfg.video_col else "--url-col")]
    if captions:
        wanted.append((cfg.caption_col, "--caption-col"))
    for name, flag in wanted:
        if name not in have:
            shown = ", ".join(have[:20]) + (", ..." if len(have) > 20 else "") if have else "none"
            hint = "; its first row looks like data, not column names: add a header row" if _looks_like_data(have) else ""
            raise InputError(f"{path}: no column {name!r} (its columns: {shown}); name yours with {flag}{hint}")


_MEDIA_NAME = re.compile(r"://|^\.{0,2}/|\.(?:jpe?g|png|webp|gif|bmp|tiff?|mp4|webm|mkv|mov|avi|wav|flac|mp3|ogg|opus|m4a)$", re.IGNORECASE)


def _looks_like_data(names: list[str]) -> bool:
    """A header whose cells are URLs or media paths is a table's first row of data."""
    return any(_MEDIA_NAME.search(name.strip()) for name in names)


JSONL_ROWS_CHECKED = 1000


def _column_names(path: str):
    """The table's column names (a jsonl's: the keys of its first JSONL_ROWS_CHECKED rows), or
    None when there is nothing to check (an empty file)."""
    name = path.lower()
    stem = name[:-3] if name.endswith(".gz") else name
    if name.endswith(".parquet"):
        with fileio.open_read(path) as f:
            return pq.read_schema(f).names
    if stem.endswith((".jsonl", ".ndjson", ".json")):
        names: dict[str, None] = {}
        for i, record in enumerate(_records(path)):
            if i >= JSONL_ROWS_CHECKED:
                break
            if not isinstance(record, _BadRow):
                names.update(dict.fromkeys(map(str, record)))
        return list(names) or None
    with fileio.open_read(path, compressed=True) as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8", errors="surrogateescape", newline="")
        return next(csv.reader(text, delimiter="\t" if stem.endswith(".tsv") else ","), None) or None


class _BadRow:
    def __init__(self, detail: str):
        self.detail = detail


def _records(path: str) -> Iterator[dict]:
    name = path.lower()
    if name.endswith(".parquet"):
        with fileio.open_read(path) as f:
            pf = pq.ParquetFile(f)
            for batch in pf.iter_batches(batch_size=4096):
                yield from batch.to_pylist()
        return
    with fileio.open_read(path, compressed=True) as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8", errors="surrogateescape", newline="")
        stem = name[:-3] if name.endswith(".gz") else name
        if stem.endswith((".jsonl", ".ndjson", ".json")):
            for line_no, line in enumerate(text, 1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except ValueError as e:
                    yield _BadRow(f"line {line_no}: {e}")
                    continue
                yield obj if isinstance(obj, dict) else _BadRow(f"line {line_no}: not an object")
            return
        delimiter = "\t" if stem.endswith(".tsv") else ","
        reader = csv.reader(text, delimiter=delimiter)
        header = next(reader, None)
        if header is None:
            return
        for values in reader:
            if len(values) != len(header):
                yield _BadRow(f"line {reader.line_num}: {len(values)} fields, header has {len(header)}")
                continue
            yield dict(zip(header, values))


def _jsonable(record: dict) -> dict:
    out = {}
    for k, v in record.items():
        if isinstance(v, bytes):
            continue
        if isinstance(v, str) and has_surrogates(v):
            v = v.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        try:
            json.dumps(v)
        except (TypeError, ValueError):
            v = str(v)
        out[str(k)] = v
    return out
