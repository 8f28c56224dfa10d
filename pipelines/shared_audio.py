"""One decode for the table rows that cut the same audio file.

A table of segments (GigaSpeech, People's Speech: one row per utterance, with
`--clips-col begin_time,end_time`) names each long recording once per segment, in runs of
consecutive rows. Decoding the file for every row costs its whole decode per segment: an hour
of audio with 1,000 segments was decoded 1,000 times. Here the rows of a staging shard that
name the same file share one fetch and one decode (or one refusal: a file that fails to
decode drops each of its rows with the same verdict), released when its last row is cut.

The bytes are the same as a decode per row (the same PCM is cut at the same samples). Memory
stays bounded: a decoded file is kept for its later rows while it is the only one kept or the
files kept come to at most KEEP_BYTES; past that a file is decoded for the rows waiting on it
and again for later ones (a table whose rows jump between many files).
"""

from __future__ import annotations

import collections
import threading
from typing import Callable, Union

from mmcurate.filters.audio import DecodedAudio
from mmcurate.schemas.record import SourceRow, Verdict

KEEP_BYTES = 1 << 30  # decoded PCM kept for later rows, per shard being prepared


def shares_decode(src: SourceRow) -> bool:
    """A row that cuts spans a table gives from a file named by its locator."""
    return src.clips is not None and bool(src.clips) and bool(src.media) and not src.member and src.verdict.kept


class _Entry:
    def __init__(self):
        self.lock = threading.Lock()
        self.loaded = False
        self.value: Union[DecodedAudio, Verdict, None] = None
        self.size = 0  # PCM bytes counted against keep_bytes


class SharedDecodes:
    """Per staging shard: locator -> the decoded file (or the verdict that refused it), for
    the rows of `rows` that `shares_decode`. Thread-safe; each such row calls `done` once."""

    def __init__(self, rows: list[SourceRow], keep_bytes: int = KEEP_BYTES):
        self.named = collections.Counter(src.media for src in rows if shares_decode(src))
        self.uses = self.named.copy()  # rows yet to finish with each file
        self.keep_bytes = keep_bytes
        self.kept_bytes = 0
        self.entries: dict[str, _Entry] = {}
        self.lock = threading.Lock()
        self.decodes = 0  # files decoded (or refused): for tests and benchmarks

    def shared(self, src: SourceRow) -> bool:
        """Worth sharing: another row of the shard names the same file."""
        return shares_decode(src) and self.named[src.media] > 1

    def get(self, src: SourceRow, load: Callable[[], DecodedAudio], refused: tuple) -> Union[DecodedAudio, Verdict]:
        """The row's decoded file, or the verdict of the `refused` exception (one with
        .verdict) that loading raised; loaded once for the rows that share it. Other
        exceptions are not kept: each row meets its own."""
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
        size = entry.value.pcm.nbytes if isinstance(entry.value, DecodedAudio) else 0
        with self.lock:
            self.decodes += 1
            if self.kept_bytes and self.kept_bytes + size > self.keep_bytes:
                # over budget: the rows now waiting get it, later rows decode it again (one
                # file alone is always kept: it is in memory while it is cut anyway)
                if self.entries.get(media) is entry:
                    del self.entries[media]
            else:
                self.kept_bytes += size
                entry.size = size

    def done(self, src: SourceRow) -> None:
        """A sharing row is finished with its file: the file's last row releases it."""
        if not shares_decode(src):
            return
        with self.lock:
            self.uses[src.media] -= 1
            if self.uses[src.media] > 0:
                return
            del self.uses[src.media]
            entry = self.entries.pop(src.media, None)
            if entry is not None:
                self.kept_bytes -= entry.size
