"""Subtitle cues (SRT, WebVTT) and the clips a video is cut into: from its cues, at spans a
table gives (`--clips-col`), or in fixed windows.

Our own rather than a dependency: the PyPI parsers (pysrt, webvtt-py) are unmaintained or
would add a dependency for ~150 lines, and a malformed file must name its line, since that
is the detail recorded with the drop reason.
"""

from __future__ import annotations

import html
import json
import math
import re
from dataclasses import dataclass, replace

_EPS = 1e-6


@dataclass(frozen=True)
class Cue:
    start: float  # seconds
    end: float
    text: str | None  # None: a span a table gives with a null caption
    follows_skipped: bool = False  # a malformed cue came just before it: never merged with the cue before


@dataclass(frozen=True)
class Clip:
    start: float
    end: float
    text: str | None
    too_short: bool = False  # planned but shorter than min_clip: the caller records it as a dropped row
    outside: bool = False  # a given span wholly outside the video: recorded as a dropped row


class SubtitleError(ValueError):
    """Malformed subtitles; the message names the line number (1-based) and the cause,
    e.g. 'line 7: bad timestamp "00:00:1,0"'."""


MAX_SKIPPED_SHOWN = 5  # the first errors of skipped cues a clip's json names


# --- parsing ---------------------------------------------------------------------------

# [-][H+:]MM:SS(,|.)m{1,3}; the fraction is decimal (",5" is 500 ms). Hours optional only in VTT.
_TS = re.compile(r"(-?)(?:(\d+):)?(\d\d):(\d\d)[,.](\d{1,3})")
_TIMING = re.compile(r"\s*(\S+)\s*-->\s*(\S+)(?:\s.*)?")  # anything after the end: hints, settings


def _lines(data: bytes | str) -> list[str]:
    if isinstance(data, (bytes, bytearray)):
        try:
            data = bytes(data).decode("utf-8")
        except UnicodeDecodeError:
            data = bytes(data).decode("cp1252", "replace")  # old SRT files; 5 bytes are undefined there
    return data.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n").split("\n")


def _blocks(lines: list[str], first: int = 0):
    """Yield (line number of the block's first line, its lines) for runs of non-blank lines."""
    block: list[str] = []
    for i in range(first, len(lines) + 1):
        if i < len(lines) and lines[i].strip():
            block.append(lines[i])
        elif block:
            yield i - len(block) + 1, block
            block = []


def _time(token: str, n: int, hours_optional: bool) -> float:
    m = _TS.fullmatch(token)
    if not m or (m[2] is None and not hours_optional) or int(m[3]) > 59 or int(m[4]) > 59:
        raise SubtitleError(f'line {n}: bad timestamp "{token}"')
    if m[1]:
        raise SubtitleError(f'line {n}: negative time "{token}"')
    return int(m[2] or 0) * 3600 + int(m[3]) * 60 + int(m[4]) + int(m[5].ljust(3, "0")) / 1000


def _timing(line: str, n: int, hours_optional: bool) -> tuple[float, float]:
    m = _TIMING.fullmatch(line)
    if not m:
        raise SubtitleError(f'line {n}: expected "start --> end", got "{line.strip()[:80]}"')
    start, end = _time(m[1], n, hours_optional), _time(m[2], n, hours_optional)
    if end < start:
        raise SubtitleError(f"line {n}: end {m[2]} before start {m[1]}")
    return start, end


def _cue(n: int, block: list[str], skip_first: bool, hours_optional: bool) -> Cue | None:
    """A cue from a block: an optional first line (index or identifier), timing, text.
    None when its text is empty after markup is stripped."""
    at = 1 if skip_first else 0
    if at >= len(block):
        raise SubtitleError(f"line {n}: cue has no timing line")
    start, end = _timing(block[at], n + at, hours_optional)
    text = cue_text("\n".join(block[at + 1:]))
    return Cue(start, end, text) if text else None


def _sorted(cues: list[Cue | None]) -> list[Cue]:
    return sorted((c for c in cues if c is not None), key=lambda c: (c.start, c.end))


def read_cues(outcomes, skipped: list[str] | None) -> list[Cue]:
    """Sorted cues from the outcomes of reading each cue (a Cue, None for one without text,
    a list of cues, or the SubtitleError that reading it raised; see `attempt`). A malformed
    cue raises, or with a `skipped` list is left out, its error appended and the next cue
    marked follows_skipped (the clip planner does not merge across the hole): the file then
    fails only when no cue at all is readable. Players such as ffmpeg skip a malformed cue too."""
    cues, follows = [], False
    for found in outcomes:
        if isinstance(found, SubtitleError):
            if skipped is None:
                raise found
            skipped.append(str(found))
            follows = True
            continue
        for cue in [] if found is None else [found] if isinstance(found, Cue) else found:
            cues.append(replace(cue, follows_skipped=True) if follows else cue)
            follows = False
    if skipped and not cues:
        more = f" (and {len(skipped) - 1} more malformed cues; none is readable)" if len(skipped) > 1 else ""
        raise SubtitleError(skipped[0] + more)
    return _sorted(cues)


def attempt(read, *args):
    """read(*args), or the SubtitleError it raised (an outcome for read_cues)."""
    try:
        return read(*args)
    except SubtitleError as e:
        return e


def _continues_text(block: list[str]) -> bool:
    """An SRT block that is more text of the cue before it (a blank line inside a cue's text,
    which players such as ffmpeg's demuxer read through): neither of its first two lines is
    a timing line, and it does not start with a cue number."""
    head = block[:2]
    return not any("-->" in line for line in head) and not block[0].strip().isdigit()


def parse_srt(data: bytes | str, skipped: list[str] | None = None) -> list[Cue]:
    """Cues of an SRT file, sorted by (start, end); [] for an empty file. A blank line inside
    a cue's text does not end the cue; a numbered block without a timing line is an error.
    `skipped`: see read_cues."""
    merged: list[tuple[int, list[str]]] = []
    for n, block in _blocks(_lines(data)):
        if merged and _continues_text(block):
            merged[-1][1].extend(block)
        else:
            merged.append((n, list(block)))
    return read_cues((attempt(_cue, n, block, block[0].strip().isdigit(), False) for n, block in merged), skipped)


def parse_vtt(data: bytes | str, skipped: list[str] | None = None) -> list[Cue]:
    """Cues of a WebVTT file, sorted by (start, end); NOTE, STYLE and REGION blocks are skipped.
    [] for an empty (or whitespace-only) file, as for SRT. A missing header always raises;
    a malformed cue as `skipped` says (read_cues)."""
    lines = _lines(data)
    if not any(line.strip() for line in lines):
        return []
    if not re.fullmatch(r"WEBVTT(?:[ \t].*)?", lines[0]):
        raise SubtitleError("line 1: missing WEBVTT header")
    header_end = next((i for i, line in enumerate(lines) if not line.strip()), len(lines))
    outcomes = (attempt(_cue, n, block, "-->" not in block[0], True) for n, block in _blocks(lines, header_end)
                if not re.match(r"(?:NOTE|STYLE|REGION)(?:\s|$)", block[0]))
    return read_cues(outcomes, skipped)


def parse_subtitles(data: bytes | str, ext: str, skipped: list[str] | None = None) -> list[Cue]:
    """parse_srt or parse_vtt by file extension ("srt" / "vtt", case-insensitive, leading dot ok)."""
    kind = ext.lower().lstrip(".")
    if kind == "srt":
        return parse_srt(data, skipped)
    if kind == "vtt":
        return parse_vtt(data, skipped)
    raise SubtitleError(f'unknown subtitle format "{ext}"')


_ASS_BLOCK = re.compile(r"(\{\\[^}]*\})")  # {\an8}, {\i1}, {\p1}...
_ASS_DRAWING = re.compile(r"\\p(\d+)")  # {\p1} starts vector drawing commands, {\p0} ends them
_TAG = re.compile(r"</?(?:[A-Za-z][^<>]*|\d[\d:.]*)>")  # <i>, <font ...>, <c.x>, <v Name>, <00:00:01.500>


def cue_text(raw: str) -> str:
    """Plain text of a cue: markup stripped, lines joined by a space, whitespace collapsed,
    HTML entities unescaped."""
    kept, drawing = [], False
    for part in _ASS_BLOCK.split(raw):
        if _ASS_BLOCK.fullmatch(part):
            for level in _ASS_DRAWING.findall(part):
                drawing = int(level) > 0
        elif not drawing:
            kept.append(part)
    text = re.sub(r"\\[Nnh]", " ", "".join(kept))  # ASS hard line breaks and spaces
    return " ".join(html.unescape(_TAG.sub("", text)).split())


# --- clip planning ---------------------------------------------------------------------

def _outside(cue: Cue, duration: float) -> bool:
    return cue.start >= duration or cue.end <= 0


def cues_outside(cues: list[Cue], duration: float) -> int:
    """How many cues lie wholly outside media of `duration` seconds (plan_clips leaves them
    out): subtitles longer than the file, as a download cut short leaves them."""
    return sum(_outside(c, duration) for c in cues)


def plan_clips(cues: list[Cue], duration: float, *, merge_gap: float, min_clip: float,
               max_clip: float, padding: float) -> list[Clip]:
    """Clips to cut from a video of `duration` seconds, in time order: cues clamped to the
    video, merged when the gap to the group so far is under `merge_gap` (unless a malformed
    cue was skipped in that gap: its words are in no text) or they overlap,
    padded (clamped, never overlapping the previous clip), split into ceil(len / max_clip)
    equal parts when longer than `max_clip` (every part carries the whole text: cue timing
    gives no finer alignment), and marked too_short when shorter than `min_clip`."""
    if max_clip <= 0:
        raise ValueError("max_clip must be > 0")
    groups: list[list] = []  # [start, end, texts]
    for c in sorted(cues, key=lambda c: (c.start, c.end)):
        if _outside(c, duration):
            continue
        start, end = max(c.start, 0.0), min(c.end, duration)
        if groups and (start < groups[-1][1] or (start - groups[-1][1] < merge_gap and not c.follows_skipped)):
            groups[-1][1] = max(groups[-1][1], end)
            groups[-1][2].append(c.text)
        else:
            groups.append([start, end, [c.text]])

    clips: list[Clip] = []
    prev_end = 0.0
    for start, end, texts in groups:
        start = max(start - padding, 0.0, prev_end)
        end = max(min(end + padding, duration), start)
        prev_end = end
        text = " ".join(t for t in texts if t)
        n = math.ceil((end - start) / max_clip - _EPS) if end - start > max_clip + _EPS else 1
        for i in range(n):
            a = start + (end - start) * i / n
            b = end if i == n - 1 else start + (end - start) * (i + 1) / n
            clips.append(Clip(a, b, text, too_short=b - a < min_clip - _EPS))
    return clips


# --- clip spans a table gives (--clips-col) -------------------------------------------------

_CLOCK = re.compile(r"(?:(\d+):)?(\d+):(\d+(?:\.\d*)?)")  # [H:]MM:SS[.fff]


def span_seconds(value) -> float:
    """A time of a given span: seconds (a number, or text such as "12.5") or a clock time
    "H:MM:SS.fff" / "MM:SS.fff" (as video2dataset's and HowTo100M's spans are written)."""
    if isinstance(value, str):
        clock = _CLOCK.fullmatch(value.strip())
        if clock:
            hours, minutes, seconds = clock.groups()
            t = int(hours or 0) * 3600 + int(minutes) * 60 + float(seconds)
        else:
            try:
                t = float(value)
            except ValueError:
                raise ValueError(f"{value!r} is not a time (seconds, or H:MM:SS.fff)") from None
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        t = float(value)
    else:
        raise ValueError(f"{value!r} is not a time (seconds, or H:MM:SS.fff)")
    if not math.isfinite(t) or t < 0:
        raise ValueError(f"{value!r} is not a time >= 0")
    return t


def clip_spans(value) -> list[tuple[float, float]]:
    """(start, end) seconds from a table cell: a list of [start, end] pairs, or one pair, or
    either as JSON text (a csv cell). A ValueError names the span that is wrong."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise ValueError(f"{value[:80]!r} is not a JSON list of [start, end] spans") from None
    if isinstance(value, (list, tuple)) and len(value) == 2 and not any(isinstance(v, (list, tuple)) for v in value):
        value = [value]  # one pair
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"{value!r} is not a list of [start, end] spans")
    spans = []
    for i, pair in enumerate(value):
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise ValueError(f"span {i}: {pair!r} is not a [start, end] pair")
        try:
            start, end = span_seconds(pair[0]), span_seconds(pair[1])
        except ValueError as e:
            raise ValueError(f"span {i}: {e}") from None
        if end <= start:
            raise ValueError(f"span {i}: it ends at {end:g} s, not after its start at {start:g} s")
        spans.append((start, end))
    return spans


def given_clips(spans: list[Cue], duration: float, min_clip: float) -> list[Clip]:
    """One clip per given span, in the given order (clip i is span i), cut as given: clamped
    to the video but not merged, padded or split (they are the dataset's own clips); `outside`
    when a span lies wholly outside the video, too_short when shorter than `min_clip`."""
    clips = []
    for span in spans:
        start, end = max(span.start, 0.0), min(span.end, duration)
        if start >= end:
            clips.append(Clip(span.start, span.end, span.text, outside=True))
        else:
            clips.append(Clip(start, end, span.text, too_short=end - start < min_clip - _EPS))
    return clips


def fixed_windows(duration: float, window: float, min_clip: float) -> list[Clip]:
    """Consecutive windows [0, w), [w, 2w), ... the last ending at `duration` (too_short when
    shorter than `min_clip`); no text. [] when duration <= 0."""
    if window <= 0:
        raise ValueError("window must be > 0")
    if duration <= 0:
        return []
    n = max(1, math.ceil(duration / window - _EPS))
    clips = []
    for i in range(n):
        a, b = i * window, duration if i == n - 1 else (i + 1) * window
        clips.append(Clip(a, b, "", too_short=b - a < min_clip - _EPS))
    return clips


def scene_clips(cuts: list[float], duration: float, min_clip: float, max_clip: float) -> list[Clip]:
    """The scenes between cut times, [0, c1), [c1, c2), ... [cn, duration), each split into
    equal parts when longer than `max_clip` and too_short when shorter than `min_clip`; no text."""
    bounds = [0.0] + [c for c in cuts if 0.0 < c < duration] + [duration]
    scenes = [Cue(a, b, "") for a, b in zip(bounds, bounds[1:])]
    return plan_clips(scenes, duration, merge_gap=0.0, min_clip=min_clip, max_clip=max_clip, padding=0.0)
