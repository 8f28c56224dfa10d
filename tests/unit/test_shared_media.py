"""SharedLoads: table rows cutting spans from one file share one load (a decode, a download;
or one refusal), loaded once however many threads ask, released by the file's last row, and
kept for later rows only within its memory budget."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from mmcurate.filters.audio import AudioRejected, DecodedAudio
from mmcurate.filters.subtitles import Cue
from mmcurate.pipelines.shared_media import SharedLoads
from mmcurate.schemas.record import SourceRow, Verdict

REFUSED = (AudioRejected,)


def _pcm_bytes(value) -> int:
    return value.pcm.nbytes


def _row(i: int, media: str, clips=((0.0, 1.0),), member=None) -> SourceRow:
    return SourceRow(f"k{i}", (0, i), f"t.tsv:{i}", media=media, member=member,
                     clips=None if clips is None else [Cue(s, e, "") for s, e in clips])


def _decoded(seconds: float = 1.0) -> DecodedAudio:
    return DecodedAudio(np.zeros(int(16000 * seconds), np.int16), 16000, 1, 16000, 1, "pcm_s16le", 256000, 0.0)


class _Loads:
    """Counts loads per file; a file named bad.wav is refused."""

    def __init__(self, delay: float = 0.0):
        self.count: dict[str, int] = {}
        self.lock = threading.Lock()
        self.delay = delay

    def loader(self, media: str):
        def load():
            with self.lock:
                self.count[media] = self.count.get(media, 0) + 1
            time.sleep(self.delay)
            if media == "bad.wav":
                raise AudioRejected(Verdict.reject("audio.decode_error", "Invalid data found when processing input"))
            return _decoded()
        return load


def _run(shared: SharedLoads, rows: list[SourceRow], loads: _Loads) -> list:
    got = []
    for src in rows:
        got.append(shared.get(src, loads.loader(src.media), REFUSED))
        shared.done(src)
    return got


def test_rows_of_one_file_decode_it_once_and_a_refusal_is_shared():
    rows = [_row(0, "a.wav"), _row(1, "a.wav"), _row(2, "bad.wav"), _row(3, "b.wav"), _row(4, "a.wav"), _row(5, "bad.wav")]
    shared, loads = SharedLoads(rows, size=_pcm_bytes), _Loads()
    got = _run(shared, rows, loads)
    assert loads.count == {"a.wav": 1, "bad.wav": 1, "b.wav": 1}
    assert got[0] is got[1] is got[4] and isinstance(got[0], DecodedAudio) and isinstance(got[3], DecodedAudio)
    assert got[2] == got[5] == Verdict.reject("audio.decode_error", "Invalid data found when processing input")
    assert shared.entries == {} and shared.kept_bytes == 0 and not shared.uses  # all released by their last rows
    assert shared.loads == 2  # b.wav, named once, is decoded for its row alone and not kept


def test_a_file_is_released_by_its_last_row():
    rows = [_row(0, "a.wav"), _row(1, "a.wav"), _row(2, "b.wav"), _row(3, "b.wav")]
    shared, loads = SharedLoads(rows, size=_pcm_bytes), _Loads()
    shared.get(rows[0], loads.loader("a.wav"), REFUSED)
    shared.done(rows[0])
    assert set(shared.entries) == {"a.wav"} and shared.kept_bytes == 32000
    shared.get(rows[1], loads.loader("a.wav"), REFUSED)
    shared.done(rows[1])
    assert shared.entries == {} and shared.kept_bytes == 0


def test_rows_not_sharing_are_decoded_each_time():
    """Rows without spans (one sample a file), from a tar, or already refused by the source."""
    rows = [_row(0, "a.wav", clips=None), _row(1, "a.wav", clips=None), _row(2, "t.tar", member="x.wav"), _row(3, "t.tar", member="x.wav"),
            _row(4, "c.wav"), _row(5, "c.wav")]
    rows[5].verdict = rows[4].verdict = Verdict.reject("input.bad_row", "x")
    shared, loads = SharedLoads(rows, size=_pcm_bytes), _Loads()
    _run(shared, rows, loads)
    assert loads.count == {"a.wav": 2, "t.tar": 2, "c.wav": 2} and shared.loads == 0


def test_over_the_memory_budget_a_file_is_decoded_again_for_later_rows():
    rows = [_row(0, "a.wav"), _row(1, "b.wav"), _row(2, "a.wav"), _row(3, "b.wav")]
    shared, loads = SharedLoads(rows, keep_bytes=40000, size=_pcm_bytes), _Loads()  # room for one second of 16 kHz mono (32 KB), not two
    _run(shared, rows, loads)
    assert loads.count == {"a.wav": 1, "b.wav": 2}
    assert shared.entries == {} and shared.kept_bytes == 0


def test_one_file_alone_is_kept_whatever_its_size():
    rows = [_row(0, "a.wav"), _row(1, "a.wav"), _row(2, "a.wav"), _row(3, "b.wav"), _row(4, "b.wav")]
    shared, loads = SharedLoads(rows, keep_bytes=1000, size=_pcm_bytes), _Loads()  # less than one file's 32 KB
    _run(shared, rows, loads)
    assert loads.count == {"a.wav": 1, "b.wav": 1}
    assert shared.entries == {} and shared.kept_bytes == 0


def test_threads_asking_at_once_wait_for_one_decode():
    rows = [_row(i, "a.wav") for i in range(16)]
    shared, loads = SharedLoads(rows, size=_pcm_bytes), _Loads(delay=0.2)

    def one(src):
        try:
            return shared.get(src, loads.loader(src.media), REFUSED)
        finally:
            shared.done(src)

    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(one, rows))
    assert loads.count == {"a.wav": 1} and all(g is got[0] for g in got)
    assert shared.entries == {} and shared.kept_bytes == 0


def test_a_released_value_goes_when_its_last_row_is_done_and_close_releases_the_rest():
    """Spooled videos: release (deleting the file) runs once per file, at its last row's done;
    close releases what a shard that stopped early still holds; refusals release nothing."""
    rows = [_row(0, "a.mp4"), _row(1, "bad.wav"), _row(2, "a.mp4"), _row(3, "bad.wav"), _row(4, "c.mp4"), _row(5, "c.mp4")]
    released = []
    shared, loads = SharedLoads(rows, release=released.append), _Loads()
    for src in rows[:4]:
        shared.get(src, loads.loader(src.media), REFUSED)
        if src is not rows[2]:
            shared.done(src)
            assert released == []
    shared.done(rows[2])
    assert released[0].pcm.nbytes == 32000 and len(released) == 1  # a.mp4's load; bad.wav's verdict is not released
    shared.get(rows[4], loads.loader("c.mp4"), REFUSED)
    shared.close()
    assert len(released) == 2 and shared.entries == {}
    assert loads.count == {"a.mp4": 1, "bad.wav": 1, "c.mp4": 1}

