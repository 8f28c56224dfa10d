"""Which staging chunk each row of a read task goes to.

A chunk is `size` rows of the task, in table order. With spans a row (input.clips_col: a
segments table, a video table flattened to a row a clip) a file's rows are kept together,
so that one load of the file serves them all (shared_media.py: one decode of a recording
with 1,000 segments, one download of a video with 100 clip rows): a chunk ends at a change
of file once it holds its size, and a file's run is cut at FILE_RUN_CHUNKS x size rows.

A table need not be sorted by file for that: `plan_file_chunks` reads the task once to count
each file's rows, and lays the files out in the order they first appear, each file's rows
together, as a table sorted that way would be chunked. (A table sorted by file gets the same
chunks either way.) Only the rows' order within the task decides the layout, so it never
depends on scheduling, and the same table gives the same shards.
"""

from __future__ import annotations

import logging
from typing import Hashable, Iterable, Optional

log = logging.getLogger(__name__)

FILE_RUN_CHUNKS = 8
# Files counted per read task before the plan gives up (at 1M: about 150 MB of plan, and the
# names themselves): a table of more distinct files is chunked in its own order (sort it).
MAX_PLANNED_FILES = 1_000_000


class Chunks:
    """The chunk of each row, in order: `size` rows a chunk; with files_whole a file's
    consecutive rows (the same non-None media) stay in one chunk, up to FILE_RUN_CHUNKS x size."""

    def __init__(self, size: int, files_whole: bool, first_chunk: int = 0):
        self.size, self.files_whole = size, files_whole
        self.chunk, self.rows, self.media = first_chunk, 0, None

    def of(self, media: Optional[str]) -> int:
        same_file = self.files_whole and media is not None and media == self.media
        if self.rows >= self.size and not (same_file and self.rows < FILE_RUN_CHUNKS * self.size):
            self.chunk, self.rows = self.chunk + 1, 0
        self.rows, self.media = self.rows + 1, media
        return self.chunk

    def run(self, media: Optional[str], count: int) -> list[tuple[int, int]]:
        """`count` consecutive rows of `media`: [(chunk, rows in it), ...], as `of` would give row by row."""
        out = []
        while count > 0:
            chunk = self.of(media)
            limit = FILE_RUN_CHUNKS * self.size if self.files_whole and media is not None else self.size
            more = min(count - 1, max(limit - self.rows, 0))
            self.rows += more
            out.append((chunk, 1 + more))
            count -= 1 + more
        return out


class FileChunks:
    """The chunks of a task whose rows were counted by file (plan_file_chunks): `of(media)`
    gives the chunk of that file's next row. A row beyond what was counted (the table changed
    between the two reads) goes to chunks after the planned ones, in table order."""

    def __init__(self, size: int, counts: dict[Hashable, int]):
        layout = Chunks(size, files_whole=True)
        # media -> its runs [(chunk, rows)], last first (popped as its rows come)
        self.runs = {media: layout.run(None if isinstance(media, _Single) else media, n)[::-1] for media, n in counts.items()}
        self.single = 0  # rows without a file, in order
        self.extra = Chunks(size, files_whole=True, first_chunk=layout.chunk + 1 if counts else 0)

    def of(self, media: Optional[str]) -> int:
        key = media if media is not None else _Single(self.single)
        if media is None:
            self.single += 1
        runs = self.runs.get(key)
        if not runs:
            return self.extra.of(media)
        chunk, left = runs[-1]
        if left == 1:
            runs.pop()
        else:
            runs[-1] = (chunk, left - 1)
        return chunk


class _Single(int):
    """A row without a file: a place of its own in the layout (never joined to another)."""


def plan_file_chunks(size: int, media_of_rows: Iterable[Optional[str]], where: str = "") -> Optional[FileChunks]:
    """FileChunks for a task whose rows name `media_of_rows` (one read of the task), or None
    when the read fails (the task is read again in order and fails as it does then) or names
    more than MAX_PLANNED_FILES files (chunked in table order: logged, as it costs loads)."""
    counts: dict[Hashable, int] = {}  # in the order the files first appear
    singles = 0
    try:
        for media in media_of_rows:
            if media is None:
                counts[_Single(singles)] = 1
                singles += 1
            else:
                counts[media] = counts.get(media, 0) + 1
            if len(counts) > MAX_PLANNED_FILES:
                log.warning("%s names more than %s files: its rows are staged in table order, so a file whose rows are "
                            "not consecutive is loaded once for each run of them (sort the table by file)", where or "a table", f"{MAX_PLANNED_FILES:,}")
                return None
    except Exception:
        return None
    return FileChunks(size, counts)
