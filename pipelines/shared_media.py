"""One load for the table rows that cut spans from the same file.

A table of segments (GigaSpeech, People's Speech: one row per utterance, with `--clips-col
begin_time,end_time`; a video table flattened to a row a caption) names each long recording
once per segment. Loading the file for every row costs a whole decode per segment (an hour
of audio with 1,000 segments was decoded 1,000 times), or for a remote video a whole
download per segment. chunks.py stages a file's rows together and prepare takes a shard's
rows file by file; here the rows of a staging shard that name the same file share one load:
an audio file's fetch and decode, a remote video's download to the spool (or one refusal: a
file that fails drops each of its rows with the same verdict). The file's last row releases
it (a spooled video is deleted then).

The bytes are the same as a load per row (the same PCM is cut at the same samples, the same
video file is cut). Memory stays bounded: a decoded file is kept for its later rows while it
is the only one kept or the files kept come to at most KEEP_BYTES; past that a file serves
the rows waiting on it and is loaded again for later ones. Spooled videos are not counted:
a video shard names about video.videos_per_shard (32) files, about as many as a download per
row would put on disk at once (2 x fetch.threads rows in flight).
"""

from __future__ import annotations

import collections
import threading
from typing import Any, Callable, Optional, Union

from mmcurate.pipelines import fileio
from mmcurate.schemas.record import SourceRow, Verdict

KEEP_BYTES = 1 << 30  # decoded PCM kept for later rows, per shard being prepared


def cuts_spans(src: SourceRow) -> bool:
    """A row that cuts spans a table gives from a file named by its locator."""
    return src.clips is not None and bool(src.clips) and bool(src.media) and not src.member and src.verdict.kept


def cuts_spans_of_remote_file(src: SourceRow) -> bool:
    """Such a row whose file is downloaded (a local one is opened in place)."""
    return cuts_spans(src) and fileio.is_remote(src.media)


class _Entry:
    def __init__(self):
        self.lock = threading.Lock()
        self.loaded = False
        self.value: Any = None  # what load gave, or the Verdict that refused the file
        self.size = 0  # bytes counted against keep_bytes


class SharedLoads:
    """Per staging shard: locator -> what its rows load from the file, for the rows of `rows`
    that `wanted` picks. Thread-safe; each row calls `done` once when finished with it.

    size(value): its bytes held in memory, counted against keep_bytes (0: not counted, never
    dropped early). release(value): called when the file's last row is done (for values of
    size 0 only: a value dropped early over budget is left to the garbage collector)."""

    def __init__(self, rows: list[SourceRow], wanted: Callable[[SourceRow], bool] = cuts_spans, keep_bytes: int = KEEP_BYTES,
                 size: Callable[[Any], int] = lambda value: 0, release: Optional[Callable[[Any], None]] = None):
        self.wanted, self.keep_bytes, self.size, self.release = wanted, keep_bytes, size, release
        self.named = collections.Counter(src.media for src in rows if wanted(src))
        self.uses = self.named.copy()  # rows yet to finish with each file
        self.kept_bytes = 0
        self.entries: dict[str, _Entry] = {}
        self.lock = threading.Lock()
        self.loads = 0  # files loaded (or refused) for sharing rows (tests read it)

    def shared(self, src: SourceRow) -> bool:
        """Worth sharing: another row of the shard names the same file."""
        return self.wanted(src) and self.named[src.media] > 1

    def get(self, src: SourceRow, load: Callable[[], Any], refused: tuple) -> Union[Any, Verdict]:
        """What load gives for the row's file, or the verdict of the `refused` exception (one
        with .verdict) that it raised; loaded once for the rows that share it. A row that
        does not share calls load itself (and releases what it got). Other exceptions are
        not kept: each row meets its own."""
        if not self.shared(src):
            try:
                return load()
            except refused as e:
                return e.verdict
        with self.lock:
            entry = self.entries.setdefault(src.media, _Entry())
        with entry.lock:
            if not entry.loaded:
                try:
                    entry.value = load()
                except refused as e:
                    entry.value = e.verdict
                entry.loaded = True
                self._account(src.media, entry)
            return entry.value

    def _account(self, media: str, entry: _Entry) -> None:
        size = 0 if isinstance(entry.value, Verdict) else self.size(entry.value)
        with self.lock:
            self.loads += 1
            if size and self.kept_bytes and self.kept_bytes + size > self.keep_bytes:
                # over budget: the rows now waiting get it, later rows load it again (one
                # file alone is always kept: it is in memory while it is cut anyway)
                if self.entries.get(media) is entry:
                    del self.entries[media]
            else:
                self.kept_bytes += size
                entry.size = size

    def done(self, src: SourceRow) -> None:
        """A row is finished with its file: the file's last row releases it."""
        if not self.wanted(src):
            return
        with self.lock:
            self.uses[src.media] -= 1
            if self.uses[src.media] > 0:
                return
            del self.uses[src.media]
            entry = self.entries.pop(src.media, None)
            if entry is None:
                return
            self.kept_bytes -= entry.size
        self._release(entry)

    def close(self) -> None:
        """Release what is still held (a shard that stopped before all its rows were done)."""
        with self.lock:
            entries, self.entries, self.uses, self.kept_bytes = list(self.entries.values()), {}, collections.Counter(), 0
        for entry in entries:
            self._release(entry)

    def _release(self, entry: _Entry) -> None:
        if self.release is not None and entry.loaded and not isinstance(entry.value, Verdict):
            self.release(entry.value)
