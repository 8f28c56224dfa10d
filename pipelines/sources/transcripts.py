"""Texts keyed by the media they describe: speech transcripts and video caption manifests.

Formats (told apart by name, then by content):
  - Sphinx `transcription` files: `<s> text </s> (utterance-id)` per line;
  - LibriSpeech `*.trans.txt`: `utterance-id text` per line;
  - CSV/TSV/JSONL tables with a media column (video, video_id, audio, file, path, filename,
    id, key, utterance_id) and a text column (caption, text, transcript, sentence, description);
  - MSR-VTT's JSON (`{"sentences": [{"video_id", "caption"}, ...]}`);
  - MSVD's annotation CSV (VideoID, Start, End, ..., Description: file `VideoID_Start_End.avi`).
Media is matched by its file name without the extension (`video9149.mp4` ~ `video9149`).
A line that cannot be parsed is an `input.bad_row` entry with its line number; a file that
cannot be read on (missing, a broken gzip, a CSV field past the csv module's limit, e.g. after
an unbalanced quote) ends in one `input.unreadable` entry naming the file, after the entries
read before it.
"""

from __future__ import annotations

import csv
import io
import json
import posixpath
import re
from dataclasses import dataclass
from typing import Any, Iterator, Optional

from mmcurate.filters.keys import make_key
from mmcurate.pipelines import fileio
from mmcurate.pipelines.sources.base import ReadTask, as_checked_text
from mmcurate.schemas.record import SourceRow, Verdict

ID_COLUMNS = ("video", "video_id", "videoid", "audio", "file", "path", "filename", "file_name", "utterance_id", "id", "key")
TEXT_COLUMNS = ("caption", "text", "transcript", "transcription", "sentence", "description")
_SPHINX = re.compile(r"^\s*(?:<s>)?\s*(.*?)\s*(?:</s>)?\s*\(([^()]+)\)\s*$")


@dataclass
class Entry:
    line: int
    media_id: str  # the media's file name without extension; "" for a bad line
    text: str
    error: str = ""
    reason: str = "input.bad_row"  # for an error: input.unreadable when the file itself failed


def is_transcripts_name(name: str) -> bool:
    """Files a media folder treats as transcripts/caption manifests (not sidecars)."""
    low = name.lower().rsplit("/", 1)[-1]
    return low == "transcription" or low.endswith((".transcription", ".trans.txt", ".jsonl", ".csv", ".tsv")) or low.endswith(".json")


def media_id(ref: str) -> str:
    """`dir/video9149.mp4` -> `video9149`: how entries find their media."""
    base = posixpath.basename(str(ref).strip().replace("\\", "/"))
    return base.rsplit(".", 1)[0] if "." in base else base


def entries(path: str) -> Iterator[Entry]:
    """The file's entries; a read error ends them with one bad entry instead of raising."""
    last = 0
    try:
        for e in _entries(path):
            last = e.line
            yield e
    except (OSError, EOFError, UnicodeError, csv.Error) as exc:
        yield Entry(last + 1, "", "", f"cannot read {path} after line {last}: {type(exc).__name__}: {exc}"[:500], "input.unreadable")


def _entries(path: str) -> Iterator[Entry]:
    low = path.lower()
    if low.endswith(".json"):
        yield from _msrvtt(path)
        return
    with fileio.open_read(path, compressed=True) as raw:
        # bytes that are not UTF-8 stay recognisable (surrogates): their text is dropped as
        # text.invalid_utf8 in prepare, not kept with U+FFFD in their place
        text = io.TextIOWrapper(raw, encoding="utf-8", errors="surrogateescape", newline="")
        stem = low[:-3] if low.endswith(".gz") else low
        if stem.endswith((".jsonl", ".ndjson")):
            yield from _jsonl(text)
        elif stem.endswith((".csv", ".tsv")):
            yield from _table(text, "\t" if stem.endswith(".tsv") else ",")
        elif stem.endswith(".trans.txt"):
            yield from _librispeech(text)
        else:
            yield from _sphinx(text)


def _sphinx(lines) -> Iterator[Entry]:
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        m = _SPHINX.match(line)
        yield Entry(n, media_id(m.group(2)), m.group(1)) if m else Entry(n, "", "", f"line {n}: expected '<s> text </s> (id)'")


def _librispeech(lines) -> Iterator[Entry]:
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        ident, _, text = line.strip().partition(" ")
        yield Entry(n, media_id(ident), text) if text else Entry(n, "", "", f"line {n}: expected 'utterance-id text'")


def _pick(record: dict, names: tuple[str, ...]) -> Any:
    """The value of the first of these columns (in any case) that has one, as stored."""
    lowered = {str(k).lower(): k for k in record}
    for name in names:
        if name in lowered and record[lowered[name]] not in (None, ""):
            return record[lowered[name]]
    return None


def _record_entry(n: int, record) -> Entry:
    if not isinstance(record, dict):
        return Entry(n, "", "", f"line {n}: not an object")
    ident, text = _pick(record, ID_COLUMNS), _pick(record, TEXT_COLUMNS)
    if text is None and {str(k).lower() for k in record} & set(TEXT_COLUMNS):
        text = ""  # an empty transcript is this media's text, dropped as text.empty (not a bad line)
    if text is not None and not isinstance(text, str):  # a number or a list in a json line: not str()-ed into text
        return Entry(n, "", "", f"line {n}: its text is {type(text).__name__} {repr(text)[:60]}, not a string")
    ident = None if ident is None else str(ident)  # (ids may be numbers)
    start, end = _pick(record, ("start",)), _pick(record, ("end",))
    if ident is not None and start is not None and end is not None:  # MSVD: VideoID_Start_End.avi
        ident = f"{ident}_{start}_{end}"
    if ident is None or text is None:
        return Entry(n, "", "", f"line {n}: needs a media column ({', '.join(ID_COLUMNS[:4])}…) and a text column ({', '.join(TEXT_COLUMNS[:3])}…)")
    return Entry(n, media_id(ident), text)


def _jsonl(lines) -> Iterator[Entry]:
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            yield _record_entry(n, json.loads(line))
        except ValueError as e:
            yield Entry(n, "", "", f"line {n}: {e}")


def _table(lines, delimiter: str) -> Iterator[Entry]:
    """Strict CSV: a line with a stray quote is one bad line, and a quote left open at the end
    of the file ends it (`entries`: input.unreadable) rather than swallowing the lines after
    it into one text."""
    reader = csv.reader(lines, delimiter=delimiter, strict=True)
    header = next(reader, None)
    while header:
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            if "expected after" not in str(e):
                raise  # a quote opened above and never closed (the end of the file, or csv's field limit, is reached)
            yield Entry(reader.line_num, "", "", f"line {reader.line_num}: {e}")
            continue
        if len(values) != len(header):
            yield Entry(reader.line_num, "", "", f"line {reader.line_num}: {len(values)} fields, header has {len(header)}")
        else:
            yield _record_entry(reader.line_num, dict(zip(header, values)))


def _msrvtt(path: str) -> Iterator[Entry]:
    try:
        doc = json.loads(fileio.read_bytes(path))
    except ValueError as e:
        yield Entry(1, "", "", f"not JSON: {e}")
        return
    items = doc.get("sentences") if isinstance(doc, dict) else doc
    if not isinstance(items, list):
        yield Entry(1, "", "", "expected MSR-VTT's {\"sentences\": [...]} or a list of objects")
        return
    for n, record in enumerate(items, 1):
        yield _record_entry(n, record)


def captions_by_id(paths: list[str]) -> tuple[dict[str, list[str]], list[Entry]]:
    """All texts of the manifests, per media id in file order; and the bad entries."""
    texts: dict[str, list[str]] = {}
    bad = []
    for path in paths:
        for e in entries(path):
            if e.error:
                e.media_id = path
                bad.append(e)
            else:
                texts.setdefault(e.media_id, []).append(e.text)
    return texts, bad


def read(task: ReadTask, _cfg=None) -> Iterator[SourceRow]:
    """`--format transcripts` (or a `text=` input): one text-role row per entry."""
    for i, e in enumerate(entries(task.locator)):
        where = f"{task.locator}:{e.line}"
        if e.error:
            yield SourceRow(f"bad_{task.task:05d}_{i:09d}", (task.task, i), where, role="text", verdict=Verdict.reject(e.reason, e.error))
        else:
            yield SourceRow(make_key(e.media_id), (task.task, i), where, caption=e.text, captions=[as_checked_text(e.text)], role="text")
