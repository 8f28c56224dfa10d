"""Staging chunks of a read task (pipelines/chunks.py): `size` rows a chunk in table order;
with spans a row, a file's rows together, whether or not the table is sorted by file."""

from __future__ import annotations

import random

import pytest

from mmcurate.pipelines import chunks as chunks_module
from mmcurate.pipelines.chunks import FILE_RUN_CHUNKS, Chunks, plan_file_chunks
from mmcurate.pipelines.prepare import _grouped_by_file
from mmcurate.schemas.record import SourceRow


def test_a_files_consecutive_rows_stay_in_one_staging_chunk():
    """With spans a row (files_whole) a chunk ends at a change of file once it holds its
    size, so one load serves a file's rows; a run of one file is cut at FILE_RUN_CHUNKS x
    size. Without, chunks are `size` rows whatever the files (as n // size)."""
    media = ["a"] * 5 + ["b"] * 2 + [None, None, None] + ["c"] * 20
    plain = Chunks(2, files_whole=False)
    assert [plain.of(m) for m in media] == [n // 2 for n in range(len(media))]
    whole = Chunks(2, files_whole=True)
    # a's 5 rows; b's 2; two rows without a file; the third, then c's rows up to 16 in all; c's last 5
    assert [whole.of(m) for m in media] == [0] * 5 + [1] * 2 + [2, 2] + [3] * 16 + [4] * 5


@pytest.mark.parametrize("files_whole", [True, False])
def test_a_run_of_rows_is_chunked_as_row_by_row(files_whole):
    """Chunks.run (a file's count at once, as the plan lays files out) equals `of` row by row."""
    rng = random.Random(5)
    for size in (1, 2, 3, 7):
        runs = [(rng.choice(["a", "b", "c", None]), rng.randint(1, 40)) for _ in range(60)]
        by_row, by_run = Chunks(size, files_whole), Chunks(size, files_whole)
        expected = [by_row.of(m) for m, n in runs for _ in range(n)]
        got = [chunk for m, n in runs for chunk, rows in by_run.run(m, n) for _ in range(rows)]
        assert got == expected


def _plan(size, media):
    plan = plan_file_chunks(size, media)
    return [plan.of(m) for m in media]


def test_interleaved_files_are_laid_out_as_if_sorted_by_first_appearance():
    """A segments table whose files interleave: each file's rows share a chunk, the files in
    the order they first appear, as the table sorted that way would be chunked."""
    media = ["a", "b", "a", "c", "b", "a", None, "c", "a", "b"]
    assert _plan(2, media) == [0, 1, 0, 2, 1, 0, 3, 2, 0, 1]  # a x4 | b x3 | c x2, then the row without a file
    first = {m: i for i, m in reversed(list(enumerate(media)))}
    ordered = sorted(media, key=lambda m: first[m])
    sorted_chunks = Chunks(2, files_whole=True)
    by_file = {}
    for m in ordered:
        by_file.setdefault(m, set()).add(sorted_chunks.of(m))
    assert {m: {c} for m, c in zip(media, _plan(2, media))} == by_file


def test_a_sorted_table_gets_the_chunks_it_got_in_table_order():
    rng = random.Random(9)
    runs = [(f"f{i}", rng.randint(1, 30)) for i in range(40)]
    runs[7:7] = [(None, 1), (None, 1)]  # two rows without a file, between two files
    media = [f for f, n in runs for _ in range(n)]
    streamed = Chunks(4, files_whole=True)
    assert _plan(4, media) == [streamed.of(m) for m in media]


def test_a_files_long_run_is_still_cut_at_file_run_chunks():
    media = ["long", "x"] * (FILE_RUN_CHUNKS * 2 + 3)  # each 19 rows, size 2: 16 in one chunk, 3 in the next
    got = _plan(2, media)
    assert got[0::2] == [0] * 16 + [1] * 3 and got[1::2] == [2] * 16 + [3] * 3


def test_rows_beyond_the_count_go_after_the_planned_chunks():
    """The table changed between the two reads: a row not counted goes to new chunks, in order."""
    plan = plan_file_chunks(2, ["a", "a", "b"])
    assert [plan.of(m) for m in ["a", "b", "a", "a", "c", "b"]] == [0, 1, 0, 2, 2, 3]


def test_no_plan_when_the_count_fails_or_names_too_many_files(monkeypatch, caplog):
    def broken():
        yield "a"
        raise OSError("connection reset")

    assert plan_file_chunks(2, broken()) is None  # read again in order, where the error is a counted row
    monkeypatch.setattr(chunks_module, "MAX_PLANNED_FILES", 3)
    assert plan_file_chunks(2, ["a", "b", "a", "c"]) is not None
    assert plan_file_chunks(2, ["a", "b", "c", "d"], where="clips.parquet") is None
    assert "clips.parquet names more than 3 files: its rows are staged in table order" in caplog.text


def test_a_shard_prepares_each_files_rows_together():
    """Within a staging shard a file's rows are prepared one after another (one file loaded
    at a time), where its first row is; rows without a file keep their place."""
    media = ["a", "b", None, "a", "c", "b", "a"]
    rows = [SourceRow(f"k{i}", (0, i), "segments.tsv", media=m) for i, m in enumerate(media)]
    assert [r.key for r in _grouped_by_file(rows)] == ["k0", "k3", "k6", "k1", "k5", "k2", "k4"]
