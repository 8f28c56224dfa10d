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
from mmcurate.schemas.config import AudioConfig
from mmcurate.schemas.record import Rejected, Verdict, error_text

_ENCODERS = {"flac": ("flac", "flac"), "wav": ("wav", "pcm_s16le"), "mp3": ("mp3", "libmp3lame")}  # ext -> (container, codec)
_DECODE_ERRORS = (av.error.FFmpegError, ValueError, EOFError)


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
    # SHA-256 of the stored PCM (int16 little-endian, interleaved) before encoding: the same
    # sound as wav and as flac hashes alike, so exact dedup works on decoded audio
    pcm_sha256: str
    hashes: Optional[dict] = None  # near-dup signature of the stored PCM (filters/audio_hash.py), when asked


class AudioRejected(Rejected):
    """Audio refused with its verdict."""


@dataclass
class _Decoded:
    pcm: np.ndarray  # int16, interleaved, at the target rate and channels
    rate: int
    channels: int
    original_rate: int
    original_channels: int
    codec: str


@dataclass(frozen=True)
class ProcessAudio:
    """Bytes in; an `AudioResult`, or `AudioRejected` carrying a verdict, out."""

    cfg: AudioConfig
    hashes: bool = False  # also compute the near-duplicate signature (dedup.mode near)

    def __call__(self, data: bytes) -> AudioResult:
        if not data:
            raise _reject("audio.decode_error", "zero bytes")
        try:
            with av.open(io.BytesIO(data), metadata_errors="ignore") as container:
                d = self._decode(container)
        except _DECODE_ERRORS as e:
            raise _reject("audio.decode_error", error_text(e, 200)) from None

        n = len(d.pcm) // d.channels
        if n == 0:
            raise _reject("audio.empty")
        duration = n / d.rate
        if duration < self.cfg.min_duration:
            raise _reject("audio.too_short", f"{duration:.3f} s < {self.cfg.min_duration}")
        if duration > self.cfg.max_duration:
            raise _reject("audio.too_long", f"{duration:.3f} s > {self.cfg.max_duration}")
        peak = max(int(d.pcm.max()), -int(d.pcm.min()))  # no abs(): it overflows on -32768
        dbfs = 20 * math.log10(peak / 32768) if peak else -math.inf
        if dbfs <= self.cfg.silence_dbfs:
            raise _reject("audio.silent", f"peak {dbfs:.1f} dBFS <= {self.cfg.silence_dbfs}")

        fmt = self.cfg.format
        return AudioResult(
            data=encode(d.pcm, d.rate, d.channels, fmt), ext=fmt, duration_s=duration,
            sample_rate=d.rate, channels=d.channels,
            original_sample_rate=d.original_rate, original_channels=d.original_channels, original_codec=d.codec,
            pcm_sha256=hashlib.sha256(d.pcm.astype("<i2", copy=False).tobytes()).hexdigest(),
            hashes=audio_hashes(d.pcm, d.rate, d.channels) if self.hashes else None,
        )

    def _decode(self, container) -> _Decoded:
        if not container.streams.audio:
            raise _reject("audio.no_audio_stream")
        stream = container.streams.audio[0]
        self._check_channels(stream.channels)  # header figures first: no decoding for these
        declared = _declared_duration(container, stream)
        if declared is not None and declared > self.cfg.max_duration:
            raise _reject("audio.too_long", f"{declared:.3f} s > {self.cfg.max_duration} (container header)")

        resampler, chunks, n, limit = None, [], 0, None
        for frame in container.decode(stream):
            if resampler is None:  # the first frame's figures are what the codec really gives
                src_rate, src_channels = frame.sample_rate, frame.layout.nb_channels
                self._check_channels(src_channels)
                rate, channels = self.cfg.sample_rate or src_rate, self.cfg.channels or src_channels
                resampler = av.AudioResampler(format="s16", layout=_layout(channels), rate=rate)
                limit = self.cfg.max_duration * rate
            for out in resampler.resample(frame):
                chunks.append(out.to_ndarray().reshape(-1))  # packed s16: (1, samples * channels)
                n += out.samples
            if n > limit:  # a header that under-states the length must not decode hours of audio
                raise _reject("audio.too_long", f"> {self.cfg.max_duration} s (decoding stopped at {n / rate:.3f} s)")
        if resampler is None:
            raise _reject("audio.empty", "no audio frame")
        for out in resampler.resample(None):
            chunks.append(out.to_ndarray().reshape(-1))
        pcm = np.concatenate(chunks) if chunks else np.zeros(0, np.int16)
        return _Decoded(pcm, rate, channels, src_rate, src_channels, _codec_name(stream))

    def _check_channels(self, channels: int) -> None:
        if channels > self.cfg.max_channels:
            raise _reject("audio.channels", f"{channels} channels > {self.cfg.max_channels}")


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
