"""Video probing and frame-accurate clip cutting, with PyAV.

`probe` reads a video's figures from its headers and one demux pass (packets, no decoding
beyond the first frame): duration, frame rate, size, the presentation time of every frame and
keyframe, and the cues of an embedded text subtitle stream.

`cut` makes one clip: exactly the source frames shown at t with start <= t < end, both bounds
taken a quarter frame early, so a time within a quarter frame of a frame's counts as that
frame's (cue times rounded to the millisecond still pick their frame).

- Stream copy when it is lossless and exact: the clip's first frame is a keyframe and the
  frame after its last one is a keyframe too (or the video ends there). Then the clip is
  whole GOPs, and its packets (and the audio packets in its span) are copied into a new MP4
  with timestamps shifted to 0: no generation loss, no encoding cost. Only h264 video with
  aac (or no) audio is copied, so every stored clip is h264/aac, and only when it is shown
  unrotated from a container with presentation times (not AVI); a copy that does not come
  out with exactly the expected frames (an open-GOP source) is redone by re-encoding.
- Otherwise re-encode: seek to the keyframe at or before the first frame, decode, keep the
  frames in range and encode them with libx264 at the source's size and at their source
  times (a variable frame rate stays variable, and in sync with the audio); the audio is
  decoded, trimmed to the clip's span to the sample, and encoded as AAC. A clip's span runs
  from its first frame to the next source frame.

The bytes are deterministic: bitexact muxing (no creation time or library versions) and
single-threaded x264, which also suits a pipeline that already runs a worker per core.
Times are seconds from the container's start time, which is what players show and what
subtitle cues use.
"""

from __future__ import annotations

import heapq
import io
import math
from collections import deque
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from fractions import Fraction
from typing import Optional, Union

import av
import numpy as np
from av.codec.context import Flags as CodecFlags
from av.container import Flags as ContainerFlags
from av.video.reformatter import VideoReformatter

from mmcurate.filters.subtitles import Cue, SubtitleError, attempt, cue_text, read_cues
from mmcurate.schemas.config import VideoConfig
from mmcurate.schemas.record import Rejected, Verdict

_ERRORS = (av.error.FFmpegError, OSError, ValueError, EOFError)  # what a bad file makes PyAV raise
_JPEG_QUALITY = 90
# staged clips cut by an older version are redone. 2: AVI frames in decoder order, audio gaps;
# 3: source frame times kept; 4: rotated videos upright; 5: the best video stream, not a cover;
# 6: no silence for vorbis's late-then-early time stamps; 7: soundtracks span the whole clip;
# 8: a clip says whether it has a soundtrack (has_audio); a malformed cue is left out, not the video;
# 9: clips name the cues past the video's end (cues_outside)
CUTS_VERSION = 9
_REORDER = 8  # how far out of order a decoder's frames may be labelled (see _presented)
_COPY_VIDEO, _COPY_AUDIO = "h264", "aac"  # stream copy keeps clips h264/aac
_AAC_RATES = frozenset(av.codec.Codec("aac", "w").audio_rates or ())
# the AAC layout for a channel count: sources may have unnamed channels (PCM in AVI: "1
# channels"), which the encoder refuses; more than 8 channels are mixed down to stereo
_AAC_LAYOUTS = {1: "mono", 2: "stereo", 3: "3.0", 4: "4.0", 5: "5.0", 6: "5.1", 7: "6.1", 8: "7.1"}

Source = Union[str, bytes]


class VideoRejected(Rejected):
    """A video refused with its verdict."""


@dataclass
class VideoInfo:
    duration: float  # seconds, of the video stream
    fps: float  # average frame rate
    width: int
    height: int
    codec: str  # e.g. "h264"
    has_audio: bool
    keyframes: list[float]  # presentation times (s) of keyframes, sorted
    frame_times: list[float]  # presentation times (s) of every frame, sorted
    cues: Optional[list[Cue]]  # of the first text subtitle stream; None without one
    origin: float = 0.0  # the container's start time in its own clock (times above are relative to it)
    container: str = ""  # the demuxer's format name ("avi": no presentation times, so never copied)
    rotation: int = 0  # degrees counterclockwise the frames are shown turned (0, 90, 180, 270); width and height are as shown
    skipped_cues: tuple[str, ...] = ()  # errors of the subtitle stream's cues that do not decode (left out)


@dataclass
class ClipResult:
    data: bytes  # an MP4: h264 video, aac audio when the source has audio
    start: float  # source time of the clip's first frame
    end: float  # start + duration
    duration: float  # frames / fps, read back from `data`
    frames: int
    method: str  # copy | reencode
    fps: float
    width: int
    height: int
    codec: str  # of the stored clip
    frame_jpegs: list[bytes]  # cfg.frames frames at (i + 0.5) / n of the clip, decoded from the source, at the clip's size
    audio_gap: float = 0.0  # seconds of the clip with no source audio (see _Audio), silence in their place


# --- probing ------------------------------------------------------------------------------

def probe(src: Source, cfg: VideoConfig, subtitles: bool = True) -> VideoInfo:
    """A video's figures, or VideoRejected when it fails a check in `cfg` or cannot be read.
    `subtitles=False`: its subtitle stream is not read (cues None), as when a sidecar file or
    given spans cut it, so that stream cannot fail it."""
    try:
        with _open(src) as container:
            return _probe(container, cfg, subtitles)
    except _ERRORS as e:
        raise _reject("video.decode_error", _describe(e)) from None


def _probe(container, cfg: VideoConfig, read_subtitles: bool) -> VideoInfo:
    if not container.streams.video:
        raise _reject("video.no_video_stream")
    video = _video_stream(container)
    width, height = video.codec_context.width, video.codec_context.height
    if min(width, height) < cfg.min_side:
        raise _reject("video.too_small", f"{width}x{height}")
    rate = _rate(video)
    if rate is None or not cfg.min_fps <= rate <= cfg.max_fps:
        raise _reject("video.bad_fps", f"{float(rate):g} fps" if rate else "unknown frame rate")
    declared = float(video.duration * video.time_base) if video.duration else None
    if declared is not None:  # before the demux pass: a 10-hour video is not read
        _check_duration(declared, cfg)

    origin = Fraction(container.start_time or 0, av.time_base)
    subtitles = next((s for s in container.streams.subtitles if s.codec_context.codec.text_sub), None) if read_subtitles else None
    times, keyframes, outcomes, end, decodable = [], [], [], 0.0, False
    for packet in container.demux(*filter(None, (video, subtitles))):
        if packet.pts is None:  # the flush packets at the end
            continue
        t = float(packet.pts * packet.time_base - origin)
        if packet.stream is subtitles:
            outcomes.append(attempt(_cues, subtitles, packet, t))
            continue
        times.append(t)
        end = max(end, t + float((packet.duration or 0) * packet.time_base))
        if packet.is_keyframe:
            keyframes.append(t)
        if not decodable:  # decode until the first frame comes out: the codec really works
            first = video.decode(packet)
            decodable = bool(first)
    if not decodable and times:
        first = video.decode(None)
        decodable = bool(first)
    if not decodable:
        raise _reject("video.decode_error", f"none of {len(times)} video packets decodes")

    skipped = []
    try:
        cues = read_cues(outcomes, skipped)
    except SubtitleError as e:
        raise _reject("video.bad_subtitles", str(e)) from None
    duration = max(declared, end) if declared is not None else end  # (AVI's h264 frames are labelled a frame late)
    _check_duration(duration, cfg)
    rotation = round((first[0].rotation or 0) / 90) * 90 % 360  # of the display matrix (phones), counterclockwise
    if rotation in (90, 270):
        width, height = height, width
    return VideoInfo(duration, _frame_rate(times, rate), width, height, video.codec_context.codec.canonical_name,
                     bool(container.streams.audio), sorted(keyframes), sorted(times),
                     cues if subtitles is not None else None, float(origin), container.format.name, rotation, tuple(skipped))


def _frame_rate(times: list[float], declared: Fraction) -> float:
    """The declared frame rate when the frames' median interval agrees with it (within 10 %),
    else the median interval's rate as a nominal fraction: the declared rate can be a tick
    rate (an AVI written at 50 ticks/s with a frame every other tick)."""
    steps = np.diff(np.unique(np.asarray(times, dtype=np.float64)))
    if not len(steps):
        return float(declared)
    step = float(np.median(steps))
    return float(declared) if abs(1 / float(declared) - step) <= 0.1 * step else _nominal(1 / step)


def _nominal(fps: float) -> float:
    return float(Fraction(fps).limit_denominator(1001))


def _check_duration(seconds: float, cfg: VideoConfig) -> None:
    if seconds < cfg.min_duration:
        raise _reject("video.too_short", f"{seconds:.3f} s < {cfg.min_duration}")
    if seconds > cfg.max_duration:
        raise _reject("video.too_long", f"{seconds:.3f} s > {cfg.max_duration}")


def _cues(stream, packet, t: float) -> list[Cue]:
    """The cues in one subtitle packet (text subtitles decode to ASS dialogue lines)."""
    try:
        decoded = stream.decode2(packet)
        texts = [cue_text(rect.dialogue.decode("utf-8")) for rect in decoded or ()]
    except _ERRORS as e:  # includes UnicodeDecodeError
        raise SubtitleError(f"cue at {t:.3f} s: {_describe(e)}") from None
    if packet.duration:
        length = float(packet.duration * packet.time_base)
    else:  # the decoder's display window, in ms
        length = (decoded.end_display_time - decoded.start_display_time) / 1000 if decoded else 0.0
    return [Cue(t, t + length, text) for text in texts if text]


# --- cutting ------------------------------------------------------------------------------

def cut(src: Source, info: VideoInfo, start: float, end: float, cfg: VideoConfig) -> ClipResult:
    """The clip of the frames shown in [start, end), as a deterministic MP4 (see the module doc)."""
    eps = 0.25 / info.fps
    times = info.frame_times
    lo, hi = bisect_left(times, start - eps), bisect_left(times, end - eps)
    if lo >= hi:
        raise _reject("video.cut_error", f"no frame in [{start:.3f}, {end:.3f})")
    clip = times[lo:hi]
    after = times[hi] if hi < len(times) else None  # the first frame not in the clip
    length = (after if after is not None else clip[-1] + 1 / info.fps) - clip[0]  # until the next frame
    kept = subsampled(clip, cfg.fps)  # video.fps: fewer frames, re-encoded
    keys = set(info.keyframes)
    copy = (cfg.reencode == "auto" and info.codec == _COPY_VIDEO and clip[0] in keys
            and info.container != "avi" and not info.rotation and kept == clip
            and output_size(info, cfg) == (info.width, info.height)
            and (after is None or after in keys))
    try:
        data = _copy(src, info, clip, after) if copy else None
        if data is not None:
            jpegs, gap = _sample_jpegs(src, info, clip, length, cfg.frames), _copied_gap(data, length, 1 / info.fps)
            result = _result(data, clip, length, "copy", jpegs, gap)
        else:
            data, jpegs, gap = _reencode(src, info, clip, kept, length, cfg)  # samples its frames while it decodes
            result = _result(data, kept, length, "reencode", jpegs, gap)
    except _ERRORS as e:
        raise _reject("video.cut_error", _describe(e)) from None
    if result.audio_gap > cfg.max_audio_gap:
        raise _reject("video.audio_gap", f"{result.audio_gap:.3f} s of the clip's {length:.3f} s have no source audio; "
                                         f"video.max_audio_gap is {cfg.max_audio_gap} s")
    return result


def subsampled(clip: list[float], fps: float) -> list[float]:
    """The clip's frames at no more than `fps` a second (video2dataset's frame-rate
    subsampling): the first frame in each 1/fps slot from the clip's first frame, so the rate
    is `fps` on average and every kept frame keeps its source time. All of them for fps 0 or a
    rate at or above the source's."""
    if not fps:
        return clip
    kept, slot = [], -1
    for t in clip:
        k = math.floor((t - clip[0]) * fps + 1e-6)
        if k > slot:
            kept.append(t)
            slot = k
    return kept


def _copy(src: Source, info: VideoInfo, clip: list[float], after: Optional[float]) -> Optional[bytes]:
    """The packets shown from the clip's first frame until `after` (None: to the end), shifted
    to start at 0; None when a copy would not be an h264/aac clip of exactly these frames."""
    with _open(src) as container:
        video, audio = _video_stream(container), _audio_stream(container)
        if audio is not None and audio.codec_context.codec.canonical_name != _COPY_AUDIO:
            return None
        stop = after + info.origin if after is not None else math.inf
        data = _copy_packets(container, video, audio, clip[0] + info.origin, stop, 0.25 / info.fps,
                             at_start=clip[0] == info.frame_times[0])
    # an open GOP (frames of the clip that need the next keyframe) comes out short
    return data if _count_frames(data) == len(clip) else None


def _copy_packets(container, video, audio, first: float, stop: float, eps: float, at_start: bool) -> bytes:
    """Mux the packets shown in [first, stop) (container seconds, give or take eps), with
    `first` becoming time 0. The clip at the video's start also takes the audio packets before
    it (AAC priming)."""
    buf = io.BytesIO()
    with _output(buf) as out:
        streams = {s: out.add_stream_from_template(s) for s in (video, audio) if s is not None}
        _seek(container, video, first)
        done, kept = set(), []
        for packet in container.demux(*streams):
            if packet.pts is None or packet.stream in done:
                continue
            t = float(packet.pts * packet.time_base)
            if t >= stop - eps:  # decode order: for video, this is the next clip's keyframe
                done.add(packet.stream)
                if len(done) == len(streams):
                    break
                continue
            if t < first - eps and (packet.stream is video or not at_start):
                continue
            kept.append(packet)
        _retime_dts([p for p in kept if p.stream is video])
        for packet in kept:  # in demux order, as read
            shift = round(first / packet.time_base)
            packet.pts -= shift
            if packet.dts is not None:
                packet.dts -= shift
            packet.stream = streams[packet.stream]
            out.mux(packet)
    return buf.getvalue()


def _retime_dts(packets: list) -> None:
    """Decode times without holes: with open GOPs the copy drops the first keyframe's leading
    B-frames (shown before the clip), which leaves a gap in the decode times that the mp4
    muxer turns into a long first sample (wrong clip duration and frame rate). The i-th packet
    in decode order gets the i-th smallest presentation time, less the stream's reorder delay;
    a stream without such a gap keeps its decode times."""
    if not packets:
        return
    pts = [p.pts for p in packets]
    order = sorted(pts)
    delay = max(s - p for s, p in zip(order, pts))
    for packet, s in zip(packets, order):
        packet.dts = s - delay


def output_size(info: VideoInfo, cfg: VideoConfig) -> tuple[int, int]:
    """The stored clip's size: the source's, scaled down to video.max_height (keeping the
    aspect ratio) when set; both sides even, as 4:2:0 needs."""
    width, height = info.width, info.height
    if cfg.max_height and height > cfg.max_height:
        width, height = round(width * cfg.max_height / height), cfg.max_height
    return width // 2 * 2, height // 2 * 2


def _reencode(src: Source, info: VideoInfo, clip: list[float], kept: list[float], length: float, cfg: VideoConfig) -> tuple[bytes, list[bytes], float]:
    """Decode from the keyframe before the clip; encode its `kept` frames (and its audio span),
    and keep JPEGs of the sample frames on the way. Also returns the seconds of audio gaps."""
    with _open(src) as container:
        return _encode(container, info, clip, kept, length, cfg)


def _encode(container, info: VideoInfo, clip: list[float], kept: list[float], length: float, cfg: VideoConfig) -> tuple[bytes, list[bytes], float]:
    video, audio = _video_stream(container), _audio_stream(container)
    video.thread_type = "AUTO"  # decoding only: the output does not depend on it
    rate = Fraction(min(info.fps, cfg.fps or info.fps)).limit_denominator(1001)
    eps = 0.25 / info.fps
    begin = clip[0] + info.origin
    span = (begin, begin + length)  # the audio kept: the clip's duration
    wanted, jpegs = _sample_times(info, kept, length, cfg.frames), {}
    buf = io.BytesIO()
    with _output(buf) as out:
        encoder = out.add_stream("libx264", rate=rate)
        width, height = output_size(info, cfg)
        encoder.width, encoder.height, encoder.pix_fmt = width, height, "yuv420p"
        sar = video.codec_context.sample_aspect_ratio
        if sar:  # anamorphic sources stay anamorphic (a pixel turned on its side: the inverse)
            encoder.codec_context.sample_aspect_ratio = 1 / sar if info.rotation in (90, 270) else sar
        encoder.codec_context.time_base = video.time_base  # frames keep their source times (variable rates too)
        encoder.codec_context.thread_count = 1  # x264 output depends on its thread count
        encoder.codec_context.flags |= CodecFlags.bitexact.value
        # mbtree off: with it, x264's AVX-512 code gives different bytes run to run (x264 165 in
        # PyAV 18's wheels, at widths not a multiple of 128 px; asm=avx2 would also fix it but
        # would force AVX2 on CPUs without it). It costs a few % of bitrate.
        encoder.options = {"crf": str(cfg.crf), "preset": cfg.preset, "x264-params": "mbtree=0"}
        sound = _Audio(out, audio, span, edge=1 / info.fps) if audio is not None else None

        _seek(container, video, _keyframe_before(info, clip[0]) + info.origin)
        # one of each for all frames: a frame's own .reformat sets up swscale anew each time (~2 ms)
        scale, turn = VideoReformatter(), VideoReformatter()
        last = -1  # the last frame's pts: they must rise, whatever the source labels
        for frame, t in _presented(_decoded(container, video, audio), info.fps):
            if isinstance(frame, av.AudioFrame):
                sound.add(frame)
                continue
            t -= info.origin
            if t < clip[0] - eps:
                continue
            if t > clip[-1] + eps:
                if sound is None or sound.full:
                    break
                continue
            if len(kept) < len(clip) and not _near(kept, t, eps):  # left out by video.fps
                continue
            frame = _upright(frame, info.rotation, turn)
            match = next((w for w in wanted if abs(w - t) < eps), None)
            if match is not None and match not in jpegs:
                jpegs[match] = _jpeg(frame, width, height)
            picture = scale.reformat(frame, width, height, "yuv420p")
            last = picture.pts = max(round((t - clip[0]) / video.time_base), last + 1)
            picture.time_base = video.time_base
            picture.pict_type = av.video.frame.PictureType.NONE  # let x264 choose frame types
            out.mux(encoder.encode(picture))
        out.mux(encoder.encode(None))
        if sound is not None:
            sound.encode()
    if len(jpegs) < len(set(wanted)):
        raise ValueError(f"decoded {len(jpegs)} of {len(set(wanted))} sample frames")
    return buf.getvalue(), [jpegs[w] for w in wanted], sound.gap if sound is not None else 0.0


def _decoded(container, video, audio):
    """The frames of both streams in demux order. An audio packet that does not decode (a
    truncated AC3 frame, say) is skipped, as the ffmpeg CLI skips it; _Audio puts silence in
    its place. A video packet that does not decode fails the clip."""
    for packet in container.demux(*filter(None, (video, audio))):
        try:
            yield from packet.decode()
        except av.error.InvalidDataError:
            if packet.stream is not audio:
                raise


def _presented(frames, fps: float):
    """(frame, presentation time in container seconds) for decoded frames. A decoder puts out
    video frames in presentation order, but some files label them in decode order: AVI stores
    no presentation times, so h264 with B-frames comes out as 1, 3, 4, 2, ... (Xvid's packed
    B-frames: 1, 2, 3, 5, 4). The k-th video frame out gets the k-th smallest label, which is
    its true time when labels are at most _REORDER frames out of order, and its own label when
    they are in order. Audio frames pass at once, with their own times."""
    pending, labels, last = deque(), [], None
    for frame in frames:
        if isinstance(frame, av.AudioFrame):
            yield frame, frame.time
            continue
        last = frame.time if frame.time is not None else (last + 1 / fps if last is not None else 0.0)
        heapq.heappush(labels, last)
        pending.append(frame)
        if len(pending) > _REORDER:
            yield pending.popleft(), heapq.heappop(labels)
    while pending:
        yield pending.popleft(), heapq.heappop(labels)


class _Audio:
    """Decoded audio of the clip's span, resampled to float planar and encoded as AAC. A gap
    between decoded frames (a packet skipped, a hole in the stream) becomes silence, so the
    audio after it stays in sync; `gap` is the seconds of it inside the span. A jump ahead
    counts only if the next frame does not take it back: vorbis in ogg labels the frames at a
    change of block size a few milliseconds late, then early (as in filters/audio.py). The
    soundtrack spans the whole clip: silence before audio that starts late and after audio
    that ends early, which counts in `gap` too when longer than `edge` (a video frame: sources
    routinely start their audio a few milliseconds late)."""

    def __init__(self, out, source, span: tuple[float, float], edge: float = 0.0):
        ctx = source.codec_context
        self.rate = ctx.sample_rate if ctx.sample_rate in _AAC_RATES else 48_000
        self.layout, self.span, self.edge = av.AudioLayout(_AAC_LAYOUTS.get(len(ctx.layout.channels), "stereo")), span, edge
        self.stream = out.add_stream("aac", rate=self.rate, layout=self.layout)
        self.stream.codec_context.flags |= CodecFlags.bitexact.value
        self.resampler = av.AudioResampler(format="fltp", layout=self.layout, rate=self.rate)
        self.out, self.t0, self.chunks, self.full = out, None, [], False
        self.next, self.gap = None, 0.0  # where the decoded audio ends; silence inserted in the span
        self.pending = None  # the last jump ahead, not yet confirmed: (chunk index, from, to, its frame's seconds)

    def add(self, frame: av.AudioFrame) -> None:
        t = frame.time
        if self.full or t is None or t + frame.samples / frame.sample_rate <= self.span[0]:
            return
        slack = max(float(frame.time_base or 0) / 2, 0.001)  # (not a rounded time stamp)
        if self.next is not None:
            self._settle(confirmed=t - self.next > -slack)
        if t >= self.span[1]:
            self.full = True
            return
        if self.t0 is None:
            self.t0 = t
        elif t - self.next > slack:
            self.pending = (len(self.chunks), self.next, t, frame.samples / frame.sample_rate)
        self.next = t + frame.samples / frame.sample_rate
        self.chunks += [f.to_ndarray() for f in self.resampler.resample(frame)]

    def _settle(self, confirmed: bool) -> None:
        """Silence for the pending jump, before its frame's audio, unless the next frame took
        it back. (With no next frame, a whole frame's worth must be missing.)"""
        if self.pending is None:
            return
        at, start, end, seconds = self.pending
        self.pending = None
        if confirmed or end - start >= seconds:
            self.chunks.insert(at, np.zeros((len(self.layout.channels), round((end - start) * self.rate)), np.float32))
            self.gap += max(0.0, min(end, self.span[1]) - max(start, self.span[0]))

    def encode(self) -> None:
        self._settle(confirmed=False)
        self.chunks += [f.to_ndarray() for f in self.resampler.resample(None)]
        channels, want = len(self.layout.channels), round((self.span[1] - self.span[0]) * self.rate)
        pcm = np.concatenate(self.chunks, axis=1) if self.chunks else np.zeros((channels, 0), np.float32)
        first = round((self.span[0] - self.t0) * self.rate) if self.t0 is not None else 0
        late = max(0, -first)  # the audio starts after the clip does: silence keeps them in sync
        pcm = np.concatenate([np.zeros((channels, late), np.float32), pcm], axis=1)[:, max(0, first):max(0, first) + want]
        early = want - pcm.shape[1]  # the audio ends before the clip does
        pcm = np.concatenate([pcm, np.zeros((channels, early), np.float32)], axis=1)
        self.gap += sum(n / self.rate for n in (late, early) if n / self.rate > self.edge)
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(pcm), format="fltp", layout=self.layout)
        frame.sample_rate, frame.pts, frame.time_base = self.rate, 0, Fraction(1, self.rate)
        self.out.mux(self.stream.encode(frame))  # PyAV cuts it to the encoder's frame size
        self.out.mux(self.stream.encode(None))


def _sample_jpegs(src: Source, info: VideoInfo, clip: list[float], length: float, n: int) -> list[bytes]:
    """JPEGs of the clip frames shown at (i + 0.5) / n of the clip, decoded from the source."""
    with _open(src) as container:
        return _decode_jpegs(container, info, clip, length, n)


def _sample_times(info: VideoInfo, clip: list[float], length: float, n: int) -> list[float]:
    """The times of the clip frames shown at (i + 0.5) / n of the clip's `length` seconds."""
    eps = 0.25 / info.fps
    return [clip[max(0, bisect_right(clip, clip[0] + (i + 0.5) * length / n + eps) - 1)] for i in range(n)]


def _upright(frame, rotation: int, to_rgb: Optional[VideoReformatter] = None):
    """The frame turned as its display matrix says it is shown (as the ffmpeg CLI turns it):
    clips store upright pixels, since many training loaders ignore the matrix."""
    if not rotation:
        return frame
    rgb = (to_rgb or VideoReformatter()).reformat(frame, format="rgb24").to_ndarray()
    turned = av.VideoFrame.from_ndarray(np.ascontiguousarray(np.rot90(rgb, rotation // 90)), format="rgb24")
    turned.pts, turned.time_base = frame.pts, frame.time_base
    return turned


def _jpeg(frame, width: Optional[int] = None, height: Optional[int] = None) -> bytes:
    """The frame as a JPEG, scaled like the stored clip (video.max_height) when sizes are given."""
    out = io.BytesIO()
    frame.to_image(width=width, height=height).save(out, "JPEG", quality=_JPEG_QUALITY)
    return out.getvalue()


def _decode_jpegs(container, info: VideoInfo, clip: list[float], length: float, n: int) -> list[bytes]:
    eps = 0.25 / info.fps
    wanted = _sample_times(info, clip, length, n)
    video = _video_stream(container)
    video.thread_type = "AUTO"
    _seek(container, video, _keyframe_before(info, wanted[0]) + info.origin)
    jpegs: dict[float, bytes] = {}
    for frame, t in _presented(container.decode(video), info.fps):
        t -= info.origin
        match = next((w for w in wanted if abs(w - t) < eps), None)
        if match is not None and match not in jpegs:
            jpegs[match] = _jpeg(_upright(frame, info.rotation))
        if t > wanted[-1] + eps or len(jpegs) == len(set(wanted)):
            break
    if len(jpegs) < len(set(wanted)):
        raise ValueError(f"decoded {len(jpegs)} of {len(set(wanted))} sample frames")
    return [jpegs[w] for w in wanted]


def _result(data: bytes, clip: list[float], length: float, method: str, jpegs: list[bytes], audio_gap: float = 0.0) -> ClipResult:
    """Read the clip back: what it holds is what is reported. Its duration runs from its first
    frame to the source's next one (the last frame shows for a frame at the average rate)."""
    with _open(data) as container:
        video = container.streams.video[0]
        frames = sum(1 for p in container.demux(video) if p.pts is not None)
        width, height = video.codec_context.width, video.codec_context.height
        codec = video.codec_context.codec.canonical_name
    if frames != len(clip):
        raise ValueError(f"clip has {frames} frames, expected {len(clip)}")
    return ClipResult(data, clip[0], clip[0] + length, length, frames, method, _nominal(frames / length),
                      width, height, codec, jpegs, round(audio_gap, 6))


def _copied_gap(data: bytes, length: float, edge: float) -> float:
    """Seconds of a stream-copied clip's [0, length) that its audio does not cover, as _Audio
    counts them when it re-encodes: packets that do not decode, holes between packets, and a
    start later or an end earlier than the clip's by more than `edge`."""
    with _open(data) as container:
        audio = _audio_stream(container)
        if audio is None:
            return 0.0
        spans = []
        for packet in container.demux(audio):
            try:
                spans += [(f.time, f.time + f.samples / f.sample_rate) for f in packet.decode() if f.time is not None]
            except av.error.InvalidDataError:
                continue
    return uncovered(spans, length, edge)


def uncovered(spans: list[tuple[float, float]], length: float, edge: float, slack: float = 0.001) -> float:
    """Seconds of [0, length) outside the (start, end) spans: holes longer than `slack`
    inside, and at either end only when longer than `edge`."""
    gap, at = 0.0, None  # at: where the audio so far ends (None: before the first span)
    for start, end in sorted(spans):
        if end <= 0 or start >= length:
            continue
        hole = max(start, 0.0) - (at or 0.0)
        if hole > (slack if at is not None else edge):
            gap += hole
        at = max(at or 0.0, min(end, length))
    tail = length - (at or 0.0)
    return gap + (tail if tail > edge else 0.0)


def _count_frames(data: bytes) -> int:
    with _open(data) as container:
        return sum(1 for p in container.demux(container.streams.video[0]) if p.pts is not None)


# --- helpers ------------------------------------------------------------------------------

def _video_stream(container):
    """The stream a player shows (ffmpeg's best stream): not a cover picture stored as a
    one-frame video stream ahead of the film, as some Matroska files have."""
    return container.streams.best("video")


def _audio_stream(container):
    return container.streams.best("audio") if container.streams.audio else None


def _open(src: Source):
    return av.open(io.BytesIO(src) if isinstance(src, (bytes, bytearray)) else src, metadata_errors="ignore")


def _output(buf: io.BytesIO):
    out = av.open(buf, "w", format="mp4")
    out.flags |= ContainerFlags.bitexact.value  # no creation time, no "Lavf" version string
    return out


def _rate(stream) -> Optional[Fraction]:
    rate = stream.average_rate or stream.guessed_rate
    return Fraction(rate) if rate else None


def _near(times: list[float], t: float, eps: float) -> bool:
    """Whether a time within eps of t is in the sorted `times`."""
    i = bisect_left(times, t - eps)
    return i < len(times) and times[i] <= t + eps


def _keyframe_before(info: VideoInfo, t: float) -> float:
    i = bisect_right(info.keyframes, t + 0.25 / info.fps) - 1
    return info.keyframes[max(i, 0)] if info.keyframes else info.frame_times[0]


def _seek(container, video, t: float) -> None:
    """Seek so that demuxing starts at the keyframe shown at t (container seconds) or before it.
    Containers seek only as exactly as their index allows (MPEG-TS by byte position), so look
    where it landed and go back further when the first keyframe there is past t. AVI seeks
    by decode time (which can be a frame early) and refuses a time before its index starts:
    then from the start."""
    for target in (t, t - 10.0):
        try:
            container.seek(round(target / video.time_base), stream=video, backward=True)
        except av.error.FFmpegError:
            break
        key = next((p for p in container.demux(video) if p.is_keyframe and p.pts is not None), None)
        if key is not None and key.pts * key.time_base <= t + 1e-3:
            container.seek(round(target / video.time_base), stream=video, backward=True)
            return
    container.seek(0)  # from the start


def _describe(e: Exception) -> str:
    text = e.strerror if isinstance(e, av.error.FFmpegError) and e.strerror else str(e)
    return f"{type(e).__name__}: {text}"[:200]


def _reject(reason: str, detail: str = "") -> VideoRejected:
    return VideoRejected(Verdict.reject(reason, detail))
