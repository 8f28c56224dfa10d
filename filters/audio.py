"""Safe audio decoding, checks, resampling and re-encoding.

PyAV because it is one library for every container and codec (wav, flac, mp3, ogg/vorbis,
opus, m4a/aac, video files' soundtracks), and it decodes, resamples (libswresample) and
encodes; its wheels ship FFmpeg, so there is no system libsndfile to install (as soundfile
needs) and no gap in what it reads (libsndfile has no m4a, older builds no mp3 or opus).
"""

from __future__ import annotations

import hashlib
import io
import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Optional

import av
import numpy as np
from av.codec.context import Flags as CodecFlags
from av.container import Flags as ContainerFlags

from mmcurate.filters.audio_hash import audio_hashes
from mmcurate.filters.audio_length import allowed_shortfall, declared_seconds, ogg_cut_short
from mmcurate.schemas.config import AudioConfig
from mmcurate.schemas.record import Rejected, Verdict, error_text

_ENCODERS = {"flac": ("flac", "flac"), "wav": ("wav", "pcm_s16le"), "mp3": ("mp3", "libmp3lame")}  # ext -> (container, codec)
_DECODE_ERRORS = (av.error.FFmpegError, ValueError, EOFError)
# in audio runs' staging fingerprint: audio staged by an older version is decoded again.
# 2: damaged packets skipped (silence in their place), truncation found, the default track;
# 3: the source's bit rate recorded (survivor rank); 4: cut at subtitle cues, rows numbered as clips
AUDIO_DECODE_VERSION = 4
_SAMPLE_DTYPES = {"u8": np.uint8, "s16": np.int16, "s32": np.int32, "s64": np.int64, "flt": np.float32, "dbl": np.float64}


@dataclass
class AudioResult:
    data: bytes  # the re-encoded audio file
    ext: str  # flac | wav | mp3
    duration_s: float  # of the stored audio (samples / rate)
    sample_rate: int  # stored
    channels: int  # stored
    original_sample_rate: int
    original_channels: int
    original_codec: str  # e.g. pcm_s16le, mp3, flac, vorbis, opus
    original_bit_rate: int  # bits/s of the source: its codec's declared rate, else the container's average (0: unknown)
    # SHA-256 of the stored PCM (int16 little-endian, interleaved) before encoding: the same
    # sound as wav and as flac hashes alike, so exact dedup works on decoded audio
    pcm_sha256: str
    gap_s: float = 0.0  # seconds of source audio lost to damage (silence stands in where its place is known)
    hashes: Optional[dict] = None  # near-dup signature of the stored PCM (filters/audio_hash.py), when asked


class AudioRejected(Rejected):
    """Audio refused with its verdict."""


@dataclass
class DecodedAudio:
    pcm: np.ndarray  # int16, interleaved, at the target rate and channels
    rate: int
    channels: int
    original_rate: int
    original_channels: int
    codec: str
    bit_rate: int
    gap: float

    @property
    def duration_s(self) -> float:
        return len(self.pcm) // self.channels / self.rate


@dataclass(frozen=True)
class ProcessAudio:
    """Bytes in; an `AudioResult`, or `AudioRejected` carrying a verdict, out."""

    cfg: AudioConfig
    hashes: bool = False  # also compute the near-duplicate signature (dedup.mode near)

    def __call__(self, data: bytes) -> AudioResult:
        return self.segment(self.decode(data))

    def decode(self, data: bytes, max_duration: Optional[float] = None) -> DecodedAudio:
        """The whole file's PCM, checked: it decodes, lasts audio.min_duration..max_duration
        (or the max_duration given: a file cut into clips has audio.max_source_duration) and
        is not all silence (AudioRejected otherwise)."""
        if not data:
            raise _reject("audio.decode_error", "zero bytes")
        limit = self.cfg.max_duration if max_duration is None else max_duration
        try:
            with av.open(io.BytesIO(data), metadata_errors="ignore", options=_open_options(data)) as container:
                d = self._decode(container, data, limit)
        except _DECODE_ERRORS as e:
            raise _reject("audio.decode_error", error_text(e, 200)) from None

        n = len(d.pcm) // d.channels
        if n == 0:
            raise _reject("audio.empty")
        duration = n / d.rate
        if duration < self.cfg.min_duration:
            raise _reject("audio.too_short", f"{duration:.3f} s < {self.cfg.min_duration}")
        if duration > limit:
            raise _reject("audio.too_long", f"{duration:.3f} s > {limit}")
        _check_not_silent(d.pcm, self.cfg.silence_dbfs, "audio.silent")
        return d

    def segment(self, d: DecodedAudio, start: Optional[float] = None, end: Optional[float] = None) -> AudioResult:
        """Seconds start..end of decoded audio (all of it by default) encoded as audio.format,
        hashed; a clip cut from the file that is all silence is audio.clip_silent. Sample
        positions round to the nearest sample."""
        pcm = d.pcm
        if start is not None:
            first, last = round(start * d.rate), min(round(end * d.rate), len(d.pcm) // d.channels)
            pcm = d.pcm[first * d.channels : max(last, first) * d.channels]
            _check_not_silent(pcm, self.cfg.silence_dbfs, "audio.clip_silent")
        fmt = self.cfg.format
        return AudioResult(
            data=encode(pcm, d.rate, d.channels, fmt), ext=fmt, duration_s=len(pcm) // d.channels / d.rate,
            sample_rate=d.rate, channels=d.channels,
            original_sample_rate=d.original_rate, original_channels=d.original_channels, original_codec=d.codec,
            original_bit_rate=d.bit_rate,
            pcm_sha256=hashlib.sha256(pcm.astype("<i2", copy=False).tobytes()).hexdigest(),
            gap_s=round(d.gap, 6), hashes=audio_hashes(pcm, d.rate, d.channels) if self.hashes else None,
        )

    def _decode(self, container, data: bytes, limit: float) -> DecodedAudio:
        if not container.streams.audio:
            raise _reject("audio.no_audio_stream")
        stream = container.streams.best("audio")  # the track a player picks: the default, not a commentary
        self._check_channels(stream.channels)  # header figures first: no decoding for these
        declared = _declared_duration(container, stream)
        if declared is not None and declared > limit:
            raise _reject("audio.too_long", f"{declared:.3f} s > {limit} (container header)")

        pcm = _Pcm(self.cfg, limit)
        try:
            for packet in container.demux(stream):
                try:
                    frames = packet.decode()
                except _DECODE_ERRORS:  # a damaged packet: skipped, as the ffmpeg CLI skips it
                    pcm.lost(packet)
                    continue
                for frame in frames:
                    if pcm.resampler is None:
                        self._check_channels(frame.layout.nb_channels)  # what the codec really gives
                    pcm.add(frame)
        except _DECODE_ERRORS as e:  # the container itself cannot be read on
            if pcm.resampler is None:
                raise
            pcm.unreadable_at = pcm.decoded_s
            pcm.unreadable_error = error_text(e, 120)
        if pcm.resampler is None:
            if pcm.bad_packets:
                raise _reject("audio.decode_error", f"none of its {pcm.bad_packets} packets decodes")
            raise _reject("audio.empty", "no audio frame")
        pcm.finish()
        self._check_complete(pcm, data, container, stream)
        bit_rate = stream.codec_context.bit_rate or container.bit_rate or 0
        return DecodedAudio(pcm.samples(), pcm.rate, pcm.channels, pcm.src_rate, pcm.src_channels, _codec_name(stream), bit_rate, pcm.gap)

    def _check_complete(self, pcm: "_Pcm", data: bytes, container, stream) -> None:
        """Less audio than the file declares: after damage midway, frames lost without a trace
        in the time stamps (an mp3 counts its frames), which count against audio.max_gap
        though their place is unknown; with no damage seen, a file cut short (truncated, as
        is a container that cannot be read to its end)."""
        declared = declared_seconds(data, container, stream)
        if declared is not None and pcm.decoded_s < declared - allowed_shortfall(container, pcm.src_rate):
            if not pcm.damaged_midway:
                raise _reject("audio.truncated", f"{pcm.decoded_s:.3f} s of the {declared:.3f} s the file declares decode")
            pcm.count_lost(declared - pcm.decoded_s, f"{pcm.decoded_s:.3f} s of the {declared:.3f} s the file declares decode")
        if container.format.name == "ogg" and ogg_cut_short(data):
            raise _reject("audio.truncated", "the ogg stream ends without its last page")
        if declared is None and pcm.unreadable_at is not None:  # else an error past the declared length: trailing junk
            raise _reject("audio.truncated", f"unreadable after {pcm.unreadable_at:.3f} s: {pcm.unreadable_error}")

    def _check_channels(self, channels: int) -> None:
        if channels > self.cfg.max_channels:
            raise _reject("audio.channels", f"{channels} channels > {self.cfg.max_channels}")


class _Pcm:
    """Decoded frames resampled to int16 at the configured rate and channels. Where the
    source's time stamps jump ahead (a packet that did not decode, an ogg page the demuxer
    dropped), silence of the missing length goes in, so the audio after it keeps its place
    against its transcript; `gap` adds up the seconds lost, and more than audio.max_gap of
    them rejects the file (audio.corrupt).

    A jump counts only when the next frame does not jump back: vorbis labels the frames at a
    change of block size a few milliseconds late and the next one early, and those are whole
    files. So each frame is held until the next one's time is known."""

    def __init__(self, cfg: AudioConfig, max_duration: float):
        self.cfg, self.resampler, self.chunks, self.n, self.last = cfg, None, [], 0, None
        self.max_duration = max_duration  # seconds decoded at most (audio.too_long)
        self.held = None  # (frame, its time, its seconds, how far its time is past the previous frame's end)
        self.next_t = None  # source time where the decoded audio ends
        self.decoded_s = self.gap = 0.0  # source seconds decoded (silence included); silence put in
        self.lost_until, self.bad_packets = None, 0  # where the latest packet that did not decode ends
        self.unreadable_at, self.unreadable_error = None, ""
        self.damaged_midway = False

    def add(self, frame: av.AudioFrame) -> None:
        if self.resampler is None:  # the first frame's figures are what the codec really gives
            self.src_rate, self.src_channels = frame.sample_rate, frame.layout.nb_channels
            self.rate, self.channels = self.cfg.sample_rate or self.src_rate, self.cfg.channels or self.src_channels
            self.resampler = av.AudioResampler(format="s16", layout=_layout(self.channels), rate=self.rate)
            self.limit = self.max_duration * self.rate
            # how far a frame may start after the previous one ends before it counts as a gap:
            # time stamps are rounded to their time base (a millisecond in mkv)
            self.slack = max(float(frame.time_base or 0), 0.002)
        t, seconds = frame.time, frame.samples / frame.sample_rate  # (frame.time is Fraction arithmetic: once)
        jump = t - self.next_t if t is not None and self.next_t is not None else 0.0
        if self.held is not None:
            self._emit(*self.held, confirmed=jump > -self.slack)
        self.held = (frame, t, seconds, jump)
        start = t if t is not None else self.next_t
        self.next_t = None if start is None else start + seconds

    def _emit(self, frame: av.AudioFrame, t: Optional[float], seconds: float, jump: float, confirmed: bool) -> None:
        """Resample a held frame, after silence for the audio missing before it. (The last
        frame has no next one to confirm its jump: a whole frame's worth must be missing.)"""
        if jump > self.slack and (confirmed or jump >= seconds):
            self._silence(frame, jump, at=t - jump)
            self.damaged_midway = True  # (damage at the very end looks like a file cut short instead)
        self.last = frame
        self._resample(frame)
        self.decoded_s += seconds

    def lost(self, packet: av.Packet) -> None:
        self.bad_packets += 1
        if packet.pts is not None and packet.duration and packet.time_base:
            end = float((packet.pts + packet.duration) * packet.time_base)
            self.lost_until = end if self.lost_until is None else max(self.lost_until, end)

    def finish(self) -> None:
        """The held frame, silence for packets lost at the very end, then what the resampler
        still holds."""
        if self.held is not None:
            self._emit(*self.held, confirmed=False)
            self.held = None
        if self.lost_until is not None and self.next_t is not None and self.lost_until - self.next_t > self.slack:
            self._silence(self.last, self.lost_until - self.next_t, at=self.next_t)
        self._resample(None)

    def samples(self) -> np.ndarray:
        return np.concatenate(self.chunks) if self.chunks else np.zeros(0, np.int16)

    def count_lost(self, seconds: float, where: str) -> None:
        """Add audio lost to damage to `gap`; more than audio.max_gap is audio.corrupt."""
        self.gap += seconds
        if self.gap > self.cfg.max_gap:
            cause = f"{self.bad_packets} packets do not decode" if self.bad_packets else "the time stamps jump: data the demuxer skipped"
            raise _reject("audio.corrupt", f"{self.gap:.3f} s of the audio is lost to damage ({cause}), {where}; "
                                           f"audio.max_gap is {self.cfg.max_gap} s")

    def _silence(self, like: av.AudioFrame, seconds: float, at: float) -> None:
        self.count_lost(seconds, f"the last at {at:.3f} s")
        if self.decoded_s + seconds > self.max_duration:  # (a jump of hours under a large max_gap)
            raise _reject("audio.too_long", f"> {self.max_duration} s (the time stamps jump to {at + seconds:.3f} s)")
        fmt, n = like.format, round(seconds * like.sample_rate)
        shape = (len(like.layout.channels), n) if fmt.is_planar else (1, n * len(like.layout.channels))
        quiet = np.full(shape, 128 if fmt.name.startswith("u8") else 0, _SAMPLE_DTYPES[fmt.name.rstrip("p")])
        frame = av.AudioFrame.from_ndarray(quiet, format=fmt.name, layout=like.layout)
        frame.sample_rate = like.sample_rate
        self._resample(frame)
        self.decoded_s += seconds

    def _resample(self, frame) -> None:
        for out in self.resampler.resample(frame):
            self.chunks.append(out.to_ndarray().reshape(-1))  # packed s16: (1, samples * channels)
            self.n += out.samples
        if self.n > self.limit:  # a header that under-states the length must not decode hours of audio
            raise _reject("audio.too_long", f"> {self.max_duration} s (decoding stopped at {self.n / self.rate:.3f} s)")


def _check_not_silent(pcm: np.ndarray, silence_dbfs: float, reason: str) -> None:
    peak = max(int(pcm.max()), -int(pcm.min())) if len(pcm) else 0  # no abs(): it overflows on -32768
    dbfs = 20 * math.log10(peak / 32768) if peak else -math.inf
    if dbfs <= silence_dbfs:
        raise _reject(reason, f"peak {dbfs:.1f} dBFS <= {silence_dbfs}")


def encode(pcm: np.ndarray, rate: int, channels: int, fmt: str) -> bytes:
    """Interleaved int16 samples -> a flac/wav/mp3 file, byte-for-byte the same on every call."""
    container_format, codec = _ENCODERS[fmt]
    layout = _layout(channels)
    out = io.BytesIO()
    with av.open(out, "w", format=container_format) as container:
        # bitexact: no "Lavf61.x"/"Lavc61.x" version strings, so the bytes only depend on the samples
        container.flags |= ContainerFlags.bitexact.value
        stream = container.add_stream(codec, rate=rate, layout=layout)
        stream.codec_context.flags |= CodecFlags.bitexact.value
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout=layout)
        frame.rate, frame.pts, frame.time_base = rate, 0, Fraction(1, rate)
        for packet in stream.encode(frame):  # PyAV cuts the frame to the codec's frame size
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return out.getvalue()


def _layout(channels: int) -> av.AudioLayout:
    return av.AudioLayout(f"{channels}c")  # FFmpeg's default layout: mono, stereo, 2.1, 4.0, 5.0, 5.1 ...


def _open_options(data: bytes) -> dict:
    """Opening a wav, FFmpeg reads its first 5 s of samples to learn what the header already
    says (29 ms of a 44.1 kHz stereo file's 38 ms here); a 32-byte probe skips that, with the
    same streams, parameters and packets (checked on pcm, float, u8, mu-law and ADPCM wavs)."""
    if data[:4] in (b"RIFF", b"RF64", b"BW64") and data[8:12] == b"WAVE":
        return {"probesize": "32"}
    return {}


def _declared_duration(container, stream):
    """Seconds the container says the stream lasts, or None when it does not say."""
    if stream.duration is not None and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    return None


def _codec_name(stream) -> str:
    return stream.codec_context.codec.canonical_name  # "mp3", not the decoder's "mp3float"


def _reject(reason: str, detail: str = "") -> AudioRejected:
    return AudioRejected(Verdict.reject(reason, detail))
