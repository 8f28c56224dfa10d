"""filters/video.py: probe figures and rejections, frame-exact cuts (copy and re-encode),
their audio, sampled frames, determinism, and embedded subtitle cues.

The test videos (tests/video_media.py) are 25 fps, 160x120, a keyframe every 25 frames (so
at every whole second), with B-frames, and frame i showing i as a bit pattern."""

import io
import math

import av
import numpy as np
import pytest
from PIL import Image

from mmcurate.filters.video import VideoRejected, cut, probe
from mmcurate.schemas.config import VideoConfig
from tests.video_media import audio_only_mp4, broken_subtitles, broken_video, frame_index, make_video, with_cover

FPS = 25
CUES = [(0.5, 1.25, "Hello {\\i1}there{\\i0}"), (2.0, 3.04, "Second\\Nline")]  # ASS markup, as muxed


def config(**kw) -> VideoConfig:
    return VideoConfig(**{"min_side": 32, **kw})


@pytest.fixture(scope="module")
def mp4():
    return make_video(seconds=6, fps=FPS)


@pytest.fixture(scope="module")
def info(mp4):
    return probe(mp4, config())


def reason(src, **cfg) -> str:
    with pytest.raises(VideoRejected) as e:
        probe(src, config(**cfg))
    return e.value.verdict.reason


def decoded(data: bytes):
    """(times, frame indices) of the clip's video, and (first time, seconds) of its audio or None."""
    with av.open(io.BytesIO(data)) as c:
        frames = [(f.time, frame_index(f)) for f in c.decode(video=0)]
        c.seek(0)
        audio = list(c.decode(audio=0)) if c.streams.audio else []
    sound = (audio[0].time, sum(f.samples for f in audio) / audio[0].sample_rate) if audio else None
    return [t for t, _ in frames], [i for _, i in frames], sound


def in_range(start: float, end: float) -> list[int]:
    """The frames a cut must hold: shown at t with start <= t < end, a quarter frame of slack."""
    return [i for i in range(6 * FPS) if start - 0.25 / FPS <= i / FPS < end - 0.25 / FPS]


def check_clip(r, start, end, method):
    times, indices, _ = decoded(r.data)
    want = in_range(start, end)
    assert r.method == method
    assert indices == want  # first frame: ceil(start * fps); every frame, once, in order
    assert indices[0] == math.ceil(start * FPS)
    assert r.frames == len(want)
    assert times == pytest.approx([k / FPS for k in range(len(want))], abs=1e-6)  # the clip starts at 0
    assert r.duration == pytest.approx(len(want) / FPS, abs=1e-3)
    assert r.start == pytest.approx(want[0] / FPS, abs=1e-9) and r.end == pytest.approx(r.start + r.duration)
    assert (r.codec, r.width, r.height, r.fps) == ("h264", 160, 120, FPS)


# --- the test media itself ----------------------------------------------------------------

def test_generated_frames_read_back_their_index(mp4):
    _, indices, _ = decoded(mp4)
    assert indices == list(range(6 * FPS))


# --- probe -------------------------------------------------------------------------------

def test_probe_reads_the_figures(info):
    assert info.duration == pytest.approx(6.0, abs=1e-6)
    assert info.fps == FPS
    assert (info.width, info.height, info.codec, info.has_audio) == (160, 120, "h264", True)
    assert info.keyframes == pytest.approx([0, 1, 2, 3, 4, 5], abs=1e-9)  # every gop=25 frames
    assert info.frame_times == pytest.approx([i / FPS for i in range(6 * FPS)], abs=1e-9)
    assert info.cues is None  # no subtitle stream


def test_probe_of_a_path_and_without_audio(tmp_path):
    path = tmp_path / "v.mkv"
    make_video(path, seconds=2, container="matroska", audio=False)
    got = probe(str(path), config())
    assert (got.has_audio, got.duration, len(got.frame_times)) == (False, pytest.approx(2.0), 50)


def test_probe_rejections(mp4):
    assert reason(broken_video()) == "video.decode_error"
    assert reason(b"") == "video.decode_error"
    assert reason(mp4[: len(mp4) // 2]) == "video.decode_error"  # moov at the end: cut off
    assert reason("/no/such/video.mp4") == "video.decode_error"
    assert reason(audio_only_mp4()) == "video.no_video_stream"
    assert reason(mp4, min_side=121) == "video.too_small"
    assert reason(mp4, min_duration=6.5) == "video.too_short"
    assert reason(mp4, max_duration=5.5) == "video.too_long"
    assert reason(mp4, min_fps=30) == "video.bad_fps"
    assert reason(mp4, max_fps=24) == "video.bad_fps"
    probe(mp4, config(min_side=120, min_duration=6, max_duration=6, min_fps=25, max_fps=25))  # bounds inclusive


def test_decode_error_carries_the_exception_text():
    with pytest.raises(VideoRejected) as e:
        probe(broken_video(), config())
    assert "InvalidDataError" in e.value.verdict.detail


# --- cut ---------------------------------------------------------------------------------

@pytest.mark.parametrize("start,end", [(1.03, 2.55), (0.5, 1.5), (2.22, 4.7), (0.0, 0.5), (1.0, 2.5)])
def test_cut_off_keyframes_reencodes_exactly_the_frames_in_range(mp4, info, start, end):
    check_clip(cut(mp4, info, start, end, config()), start, end, "reencode")


@pytest.mark.parametrize("start,end", [(1.0, 3.0), (0.0, 2.0), (2.0, 3.0), (0.999, 3.001)])
def test_cut_on_keyframes_copies_exactly_the_frames_in_range(mp4, info, start, end):
    check_clip(cut(mp4, info, start, end, config()), start, end, "copy")


def test_cut_to_the_end_of_the_video(mp4, info):
    check_clip(cut(mp4, info, 4.0, 99.0, config()), 4.0, 99.0, "copy")  # no keyframe after: still whole GOPs
    check_clip(cut(mp4, info, 4.5, 6.0, config()), 4.5, 6.0, "reencode")


def test_reencode_always_forces_reencoding(mp4, info):
    check_clip(cut(mp4, info, 1.0, 3.0, config(reencode="always")), 1.0, 3.0, "reencode")


def test_open_gops_fall_back_to_reencoding_where_a_copy_would_lose_frames():
    """With open GOPs the frames shown just before a keyframe are decoded after it: a copy of
    [1, 2) would end 3 frames short, so it is re-encoded; a copy to the end loses nothing."""
    src = make_video(seconds=4, open_gop=True)
    info = probe(src, config())
    assert info.keyframes == [0.0, 1.0, 2.0, 3.0]  # so every cut below is tried as a copy first
    check_clip(cut(src, info, 1.0, 2.0, config()), 1.0, 2.0, "reencode")
    check_clip(cut(src, info, 0.0, 1.0, config()), 0.0, 1.0, "reencode")
    check_clip(cut(src, info, 1.0, 4.0, config()), 1.0, 4.0, "copy")


def test_a_matroska_source_is_copied_into_mp4():
    mkv = make_video(seconds=3, container="matroska")
    r = cut(mkv, probe(mkv, config()), 1.0, 2.0, config())
    check_clip(r, 1.0, 2.0, "copy")
    assert r.data[4:8] == b"ftyp"


@pytest.mark.parametrize("start,end,method", [(1.0, 3.0, "copy"), (1.03, 2.55, "reencode"), (0.0, 2.0, "copy")])
def test_the_clip_audio_spans_the_clip(mp4, info, start, end, method):
    r = cut(mp4, info, start, end, config())
    assert r.method == method
    _, _, (first, seconds) = decoded(r.data)
    assert first == pytest.approx(0, abs=0.05)
    assert seconds == pytest.approx(r.duration, abs=0.05)


def test_no_audio_in_the_source_none_in_the_clip():
    silent = make_video(seconds=3, audio=False)
    info = probe(silent, config())
    for start in (1.0, 1.1):  # copy, reencode
        assert decoded(cut(silent, info, start, 2.0, config()).data)[2] is None


@pytest.mark.parametrize("start,end,n,expected", [
    (1.0, 3.0, 3, [33, 50, 66]),  # copy: at 1.333, 2.0, 2.667 s -> the frame shown then
    (1.0, 3.0, 5, [30, 40, 50, 60, 70]),
    (1.03, 2.55, 3, [32, 45, 57]),  # reencode: frames 26..63 (1.04 s, 38 frames): at 1.293, 1.8, 2.307 s
    (2.0, 2.08, 3, [50, 51, 51]),  # two frames: at 2.013, 2.04, 2.067 s
])
def test_frame_jpegs_are_the_frames_at_the_sample_times(mp4, info, start, end, n, expected):
    r = cut(mp4, info, start, end, config(frames=n))
    assert [frame_index(j) for j in r.frame_jpegs] == expected
    assert all(j[:2] == b"\xff\xd8" for j in r.frame_jpegs)


@pytest.mark.parametrize("start,end,method", [(1.0, 3.0, "copy"), (1.03, 2.55, "reencode")])
def test_cuts_are_byte_identical_across_calls(mp4, info, start, end, method):
    a, b = cut(mp4, info, start, end, config()), cut(mp4, info, start, end, config())
    assert a.method == method and a.data == b.data and a.frame_jpegs == b.frame_jpegs


def test_cut_errors(mp4, info):
    with pytest.raises(VideoRejected) as e:
        cut(mp4, info, 7.0, 8.0, config())  # past the end: no frame
    assert e.value.verdict.reason == "video.cut_error"
    with pytest.raises(VideoRejected) as e:
        cut(broken_video(), info, 1.0, 2.0, config())
    assert e.value.verdict.reason == "video.cut_error"


# --- embedded subtitles --------------------------------------------------------------------

@pytest.mark.parametrize("container,codec", [("mp4", "mov_text"), ("matroska", "subrip"), ("matroska", "ass"),
                                             ("matroska", "webvtt")])
def test_subtitle_stream_cues_are_read_back(container, codec):
    video = make_video(seconds=4, container=container, audio=False, subtitles=CUES, subtitle_codec=codec)
    cues = probe(video, config()).cues
    assert [c.text for c in cues] == ["Hello there", "Second line"]
    assert [(c.start, c.end) for c in cues] == [pytest.approx((s, e), abs=1e-3) for s, e, _ in CUES]


@pytest.mark.parametrize("container", ["mp4", "matroska"])
def test_undecodable_subtitles_are_bad_subtitles(container):
    with pytest.raises(VideoRejected) as e:
        probe(broken_subtitles(container), config())
    assert e.value.verdict.reason == "video.bad_subtitles"
    assert "0.200 s" in e.value.verdict.detail  # which cue


def test_a_subtitle_stream_not_asked_for_is_not_read():
    """A sidecar .srt (or given spans) cuts the video: its own broken stream must not fail it."""
    info = probe(broken_subtitles("matroska"), config(), subtitles=False)
    assert info.cues is None and info.skipped_cues == () and info.duration == pytest.approx(1.0, abs=0.05)


@pytest.mark.parametrize("container", ["mp4", "matroska"])
def test_an_undecodable_cue_among_readable_ones_is_left_out_and_named(container):
    video = make_video(seconds=3.0, container=container, audio=False, subtitles=[(0.2, 0.8, "BROKEN"), (1.2, 2.0, "fine")])
    info = probe(video.replace(b"BROKEN", b"\xff\xfe\xc3\x28\xa0\xa1"), config())
    assert [(c.text, c.follows_skipped) for c in info.cues] == [("fine", True)]
    assert len(info.skipped_cues) == 1 and info.skipped_cues[0].startswith("cue at 0.200 s: ")


def test_max_height_scales_down_and_reencodes_even_on_keyframes(mp4, info):
    r = cut(mp4, info, 1.0, 3.0, config(max_height=60))  # keyframes: would be a copy at full size
    assert (r.method, r.width, r.height, r.frames) == ("reencode", 80, 60, 50)
    with av.open(io.BytesIO(r.data)) as c:
        assert (c.streams.video[0].width, c.streams.video[0].height) == (80, 60)
        assert sum(1 for _ in c.decode(video=0)) == 50
    # the sample frames (KEY.jpg, CLIP scoring) are stored at the clip's size too
    assert [Image.open(io.BytesIO(j)).size for j in r.frame_jpegs] == [(80, 60)] * len(r.frame_jpegs) != []
    assert cut(mp4, info, 1.0, 3.0, config(max_height=240)).method == "copy"  # never scaled up


def test_fps_keeps_the_first_frame_of_each_slot_at_its_source_time(mp4, info):
    r = cut(mp4, info, 1.0, 3.0, config(fps=8))  # on keyframes: would be a copy at the source rate
    times, indices, sound = decoded(r.data)
    # 25 fps: the first frame at or after each 1/8 s from frame 25 (frame 25 + ceil(25 k / 8)); 16 slots in 2 s
    assert indices == [25, 29, 32, 35, 38, 41, 44, 47, 50, 54, 57, 60, 63, 66, 69, 72]
    assert times == pytest.approx([(i - 25) / FPS for i in indices], abs=1e-6)  # source times kept
    assert (r.method, r.frames, r.fps, r.duration) == ("reencode", 16, 8.0, pytest.approx(2.0))
    assert sound[1] == pytest.approx(2.0, abs=0.05)  # the audio is the whole span (in whole AAC frames)
    assert [frame_index(Image.open(io.BytesIO(j))) for j in r.frame_jpegs] == [32, 50, 66]  # sample frames are clip frames
    assert cut(mp4, info, 1.0, 3.0, config(fps=30)).method == "copy"  # never more frames than the source


# --- awkward sources ----------------------------------------------------------------------

@pytest.mark.parametrize("start,end,first,n,jpegs", [
    (1.04, 3.04, 25, 50, [33, 50, 66]),  # on keyframes, but AVI is never copied
    (1.03, 2.55, 25, 38, [31, 44, 56]),
    (0.0, 2.0, 0, 49, [8, 24, 41]),  # frame i is labelled (i + 1) / 25 s: the 49 labelled before 2 s
])
def test_avi_h264_with_b_frames_is_cut_in_presentation_order(start, end, first, n, jpegs):
    """AVI stores no presentation times: h264 frames come out of the decoder labelled in decode
    order (1, 3, 4, 2, ...). Clips hold each frame once, in order, and nothing is copied."""
    avi = make_video(seconds=4, fps=FPS, container="avi")
    info = probe(avi, config())
    assert info.container == "avi" and info.frame_times[:2] == pytest.approx([0.04, 0.08])
    r = cut(avi, info, start, end, config())
    assert decoded(r.data)[1] == list(range(first, first + n))
    assert (r.method, r.frames) == ("reencode", n)
    assert [frame_index(j) for j in r.frame_jpegs] == jpegs


def test_the_whole_of_an_avi_holds_every_frame():
    avi = make_video(seconds=3, fps=FPS, container="avi")
    info = probe(avi, config())
    assert info.duration == pytest.approx(3.04)  # the last frame's end, past the declared 3 s
    assert decoded(cut(avi, info, 0.0, info.duration, config()).data)[1] == list(range(75))


def _silent_spans(data: bytes) -> list[tuple[float, float]]:
    """(start, end) seconds of the clip's audio where the tone is absent (16 ms blocks)."""
    with av.open(io.BytesIO(data)) as c:
        pcm = np.concatenate([f.to_ndarray()[0] for f in c.decode(audio=0)])
    block = 256
    quiet = np.abs(pcm[: len(pcm) // block * block].reshape(-1, block)).max(axis=1) < 0.01
    spans, at = [], None
    for i, q in enumerate(np.r_[quiet, False]):
        if q and at is None:
            at = i
        elif not q and at is not None:
            spans.append((at * block / 16_000, i * block / 16_000))
            at = None
    return spans


def test_an_audio_packet_that_does_not_decode_becomes_silence_in_sync():
    """The ffmpeg CLI skips such a packet; the clip keeps its audio length (what follows stays in
    sync) and reports the silence put in its place. Packet 20 is 1.216-1.28 s of the source."""
    cfg = config(reencode="always")
    good, bad = make_video(seconds=4, fps=FPS), make_video(seconds=4, fps=FPS, broken_audio=(0, 20))
    clips = [cut(src, probe(src, cfg), 1.0, 3.0, cfg) for src in (good, bad)]
    assert [c.audio_gap for c in clips] == [0.0, pytest.approx(0.064, abs=1e-3)]
    assert decoded(clips[1].data)[1] == decoded(clips[0].data)[1] == list(range(25, 75))
    assert decoded(clips[1].data)[2][1] == pytest.approx(decoded(clips[0].data)[2][1], abs=1e-9)
    gaps = [s for s in _silent_spans(clips[1].data) if s[1] < 1.9]  # (the end of the tone aside)
    assert gaps == [(pytest.approx(0.208, abs=0.02), pytest.approx(0.288, abs=0.02))]
    assert [s for s in _silent_spans(clips[0].data) if s[1] < 1.9] == []
    # a packet before the clip's audio starts costs nothing
    assert cut(bad, probe(bad, cfg), 0.0, 1.0, cfg).audio_gap == 0.0


def test_an_avi_timed_in_ticks_is_cut_at_its_frame_rate():
    """Declared 50 fps with a frame every other tick: the frames' own spacing gives 25 fps, so
    clips are not played at double speed against their audio."""
    avi = make_video(seconds=4, fps=FPS, container="avi", ticks=2)
    info = probe(avi, config())
    assert info.fps == 25.0
    r = cut(avi, info, 1.0, 3.0, config())
    times, indices, (_, seconds) = decoded(r.data)
    assert indices == list(range(24, 74)) and (r.frames, r.duration, r.fps) == (50, pytest.approx(2.0), 25.0)
    assert times == pytest.approx([k / FPS for k in range(50)], abs=1e-6)
    assert seconds == pytest.approx(2.0, abs=0.05)
    assert [frame_index(j) for j in r.frame_jpegs] == [32, 49, 65]


@pytest.mark.parametrize("start,end,method,first,n,duration,jpegs", [
    (1.0, 3.0, "reencode", 25, 38, 2.0, [33, 49, 54]),  # frames 25..49, the pause, then 50..62
    (0.0, 2.48, "copy", 0, 50, 2.48, [10, 31, 49]),  # frame 49 shows for 0.52 s
])
def test_a_variable_frame_rate_keeps_its_frame_times_and_its_audio_in_sync(start, end, method, first, n, duration, jpegs):
    """Frame 49 is held 12 frames longer (0.48 s), the tone runs on: a clip across the pause
    keeps it, lasts as long as its span of the source, and its audio as long."""
    src = make_video(seconds=4, fps=FPS, pause=(49, 12))
    info = probe(src, config())
    assert info.fps == 25.0  # the median spacing, not the average over the pause
    r = cut(src, info, start, end, config())
    times, indices, (_, seconds) = decoded(r.data)
    shown = [(i + (12 if i > 49 else 0)) / FPS for i in indices]  # source times
    assert (r.method, indices) == (method, list(range(first, first + n)))
    assert times == pytest.approx([t - shown[0] for t in shown], abs=1e-6)
    assert r.duration == pytest.approx(duration) and seconds == pytest.approx(duration, abs=0.05)
    assert r.fps == pytest.approx(n / duration, rel=1e-3)
    assert [frame_index(j) for j in r.frame_jpegs] == jpegs


def test_pcm_audio_with_unnamed_channels_is_encoded():
    """PCM in AVI has no channel layout ("1 channels"), which the AAC encoder refuses; the
    clip gets the standard layout for its channel count."""
    avi = make_video(seconds=3, fps=FPS, container="avi", audio_codec="pcm_s16le")
    with av.open(io.BytesIO(avi)) as c:
        assert c.streams.audio[0].codec_context.layout.name == "1 channels"
    r = cut(avi, probe(avi, config()), 1.0, 2.0, config())
    with av.open(io.BytesIO(r.data)) as c:
        assert (c.streams.audio[0].codec_context.name, c.streams.audio[0].codec_context.layout.name) == ("aac", "mono")
    assert decoded(r.data)[2][1] == pytest.approx(r.duration, abs=0.05)


@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_a_rotated_video_is_stored_upright(rotation):
    """A phone's display matrix: the clip's pixels (and its sampled frames) are turned as a
    player shows them, not left for the loader to turn, so the video is never copied."""
    src = make_video(seconds=3, fps=FPS, rotation=rotation)
    info = probe(src, config())
    assert (info.rotation, info.width, info.height) == (rotation, *((120, 160) if rotation in (90, 270) else (160, 120)))
    r = cut(src, info, 1.0, 2.0, config())  # on keyframes: a copy if it were unrotated
    assert (r.method, r.width, r.height) == ("reencode", info.width, info.height)
    back = -rotation // 90  # turning the stored pixels back shows the numbered frames
    with av.open(io.BytesIO(r.data)) as c:
        frames = [np.rot90(f.to_ndarray(format="rgb24"), back) for f in c.decode(video=0)]
    assert [frame_index(Image.fromarray(np.ascontiguousarray(f))) for f in frames] == list(range(25, 50))
    jpegs = [np.asarray(Image.open(io.BytesIO(j))) for j in r.frame_jpegs]
    assert all(j.shape[:2] == (info.height, info.width) for j in jpegs)
    assert [frame_index(Image.fromarray(np.ascontiguousarray(np.rot90(j, back)))) for j in jpegs] == [29, 37, 46]


def test_a_cover_picture_stream_ahead_of_the_film_is_not_the_video():
    src = with_cover(make_video(seconds=3, fps=FPS))
    with av.open(io.BytesIO(src)) as c:
        assert [s.codec_context.name for s in c.streams.video] == ["mjpeg", "h264"]
    info = probe(src, config())
    assert (info.codec, info.width, len(info.frame_times)) == ("h264", 160, 75)
    # (the remux shifted the film by its B-frame delay: keyframes at 0.064 + whole seconds)
    for start, end, method in ((info.keyframes[1], info.keyframes[2], "copy"), (1.1, 2.0, "reencode")):
        r = cut(src, info, start, end, config())
        shown = [i for i, t in enumerate(info.frame_times) if start - 0.01 <= t < end - 0.01]
        assert r.method == method and decoded(r.data)[1] == shown
        assert decoded(r.data)[2][1] == pytest.approx(r.duration, abs=0.05)


@pytest.mark.parametrize("damage, gap", [({"late": {20: 0.03, 40: 0.008}}, 0.0), ({"drop": (20,)}, 0.064)])
def test_clip_audio_counts_a_jump_only_when_the_next_frame_keeps_it(damage, gap):
    """Vorbis in ogg labels frames at a change of block size late, then early: no silence for
    those. A packet really missing leaves its 64 ms of silence."""
    from mmcurate.filters.video import _Audio
    from tests import audio_media

    with av.open(io.BytesIO(audio_media.remuxed(seconds=2.0, **damage))) as src, av.open(io.BytesIO(), "w", format="mp4") as out:
        sound = _Audio(out, src.streams.audio[0], (0.0, 2.0))
        for frame in src.decode(audio=0):
            sound.add(frame)
        sound.encode()
    assert sound.gap == pytest.approx(gap, abs=1e-9)


@pytest.mark.parametrize("span, clip, missing", [
    ((1.0, 3.0), (0.0, 3.0), 1.0),  # the soundtrack starts a second late
    ((0.0, 2.0), (0.0, 3.0), 1.0),  # ... ends a second early
    ((0.0, 1.2), (1.0, 2.0), 0.8),  # ... ends inside the clip
    ((0.0, 2.0), (0.0, 2.0), 0.0),  # ... covers the clip
])
def test_a_soundtrack_shorter_than_the_clip_counts_as_audio_gap_whether_copied_or_reencoded(span, clip, missing):
    """The tone covers `span` of a 3-s video. Copied and re-encoded clips count the same seconds
    without audio (to an AAC frame: the encoder's priming and padding decode as audio too); a
    re-encoded clip's audio lasts as long as its video, silence standing in."""
    src = make_video(seconds=3, fps=FPS, audio_span=span)
    clips = {m: cut(src, probe(src, config()), *clip, config(reencode=m, max_audio_gap=5)) for m in ("auto", "always")}
    assert [c.method for c in clips.values()] == ["copy", "reencode"]
    assert clips["auto"].audio_gap == pytest.approx(missing, abs=0.065)
    assert clips["always"].audio_gap == pytest.approx(clips["auto"].audio_gap, abs=1e-3)
    _, _, (first, seconds) = decoded(clips["always"].data)
    assert first == pytest.approx(0, abs=1e-3) and seconds == pytest.approx(clip[1] - clip[0], abs=0.065)
    silent = sum(b - a for a, b in _silent_spans(clips["always"].data) if b - a > 0.1)
    assert silent == pytest.approx(missing, abs=0.1)


def test_a_clip_with_more_audio_gap_than_allowed_is_dropped_with_the_seconds():
    src = make_video(seconds=3, fps=FPS, audio_span=(0.0, 2.0))
    for method in ("auto", "always"):
        with pytest.raises(VideoRejected) as e:
            cut(src, probe(src, config()), 0.0, 3.0, config(reencode=method))
        verdict = e.value.verdict
        assert verdict.reason == "video.audio_gap"
        assert verdict.detail == "0.952 s of the clip's 3.000 s have no source audio; video.max_audio_gap is 0.25 s"
    assert cut(src, probe(src, config()), 0.0, 2.0, config()).audio_gap == 0.0  # the clip the audio covers is kept


def test_a_soundtrack_that_never_decodes_is_all_gap():
    src = make_video(seconds=3, fps=FPS, broken_audio=range(100))
    for method in ("auto", "always"):
        assert cut(src, probe(src, config()), 0.0, 2.0, config(reencode=method, max_audio_gap=5)).audio_gap == pytest.approx(2.0)
        assert reason_of_cut(src, 0.0, 2.0, reencode=method) == "video.audio_gap"


def reason_of_cut(src, start, end, **cfg) -> str:
    with pytest.raises(VideoRejected) as e:
        cut(src, probe(src, config()), start, end, config(**cfg))
    return e.value.verdict.reason


@pytest.mark.parametrize("spans, expected", [
    ([(0.02, 1.0), (1.0, 2.0)], 0.0),  # a start 20 ms late: within the edge
    ([(0.05, 1.0), (1.0, 2.0)], 0.05),  # 50 ms late: counted
    ([(-0.06, 0.5), (0.6, 2.0)], 0.1),  # a hole inside; audio before the clip is no help
    ([(0.0, 0.5), (0.5005, 1.97)], 0.0),  # a hole below 1 ms; an end 30 ms early
    ([(0.0, 1.5), (0.4, 0.9), (1.2, 1.9)], 0.1),  # overlapping spans; a 100-ms early end
    ([(2.5, 3.0)], 2.0),
    ([], 2.0),
])
def test_uncovered_seconds(spans, expected):
    from mmcurate.filters.video import uncovered

    assert uncovered(spans, 2.0, edge=0.04) == pytest.approx(expected, abs=1e-9)
