"""Deterministic test audio made with PyAV alone: tones, silence and broken files."""

from __future__ import annotations

import io
from fractions import Fraction

import av
import numpy as np
from av.codec.context import Flags as CodecFlags
from av.container import Flags as ContainerFlags

# fmt -> (container, codec); there is no libvorbis in PyAV's wheels, so ogg means Opus (48 kHz)
FORMATS = {"wav": ("wav", "pcm_s16le"), "flac": ("flac", "flac"), "mp3": ("mp3", "libmp3lame"), "ogg": ("ogg", "libopus")}


def encode(samples: np.ndarray, rate: int, fmt: str = "wav", bit_rate: int = 0) -> bytes:
    """int16 samples shaped (n, channels) -> a file; bit-exact, so the same input gives the same
    bytes. `bit_rate` (bits/s) for the lossy formats; 0 is the encoder's default."""
    container, codec = FORMATS[fmt]
    channels = samples.shape[1]
    layout = av.AudioLayout(f"{channels}c")
    out = io.BytesIO()
    with av.open(out, "w", format=container) as c:
        c.flags |= ContainerFlags.bitexact.value  # no encoder versions; ogg gets a fixed serial number
        stream = c.add_stream(codec, rate=rate, layout=layout)
        stream.codec_context.flags |= CodecFlags.bitexact.value
        if bit_rate:
            stream.bit_rate = bit_rate
        c.start_encoding()  # writes the header even when there is no packet to mux
        if len(samples):
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples).reshape(1, -1), format="s16", layout=layout)
            frame.rate, frame.pts, frame.time_base = rate, 0, Fraction(1, rate)
            for packet in stream.encode(frame):
                c.mux(packet)
        for packet in stream.encode(None):
            c.mux(packet)
    return out.getvalue()


def samples(seconds: float, rate: int = 16000, channels: int = 1, freq: float = 440.0, amplitude: float = 0.3) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    wave_ = np.round(amplitude * 32767 * np.sin(2 * np.pi * freq * t)).astype(np.int16)
    return np.repeat(wave_[:, None], channels, axis=1)


def tone(seconds: float, rate: int = 16000, channels: int = 1, freq: float = 440.0, amplitude: float = 0.3, fmt: str = "wav") -> bytes:
    return encode(samples(seconds, rate, channels, freq, amplitude), rate, fmt)


def silence(seconds: float, rate: int = 16000, channels: int = 1, fmt: str = "wav") -> bytes:
    return tone(seconds, rate, channels, amplitude=0.0, fmt=fmt)


def zero_length(fmt: str = "wav") -> bytes:
    """A container with an audio stream and no samples. Only wav and flac: FFmpeg cannot
    open a header-only mp3 or ogg at all (that is a decode error, not an empty stream)."""
    return encode(np.zeros((0, 1), np.int16), 16000, fmt)


def no_audio_stream() -> bytes:
    """A tiny MKV holding only a few mpeg4 video frames."""
    out = io.BytesIO()
    with av.open(out, "w", format="matroska") as c:
        c.flags |= ContainerFlags.bitexact.value
        stream = c.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        for i in range(3):
            frame = av.VideoFrame.from_ndarray(np.full((32, 32, 3), 40 * i, np.uint8), format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                c.mux(packet)
        for packet in stream.encode(None):
            c.mux(packet)
    return out.getvalue()


def truncated(data: bytes, keep: float = 0.5) -> bytes:
    return data[: int(len(data) * keep)]


def garbage(n: int = 4096) -> bytes:
    return np.random.default_rng(0).integers(0, 256, n, dtype=np.uint8).tobytes()


def babble(seed: int, seconds: float = 3.0, rate: int = 16000) -> np.ndarray:
    """Speech-like int16 mono samples (n, 1): syllables of a voiced buzz (f0 90-220 Hz, with
    pitch drift) through two random formants, with pauses, from a seed. Different seeds
    sound different; the same seed gives the same samples."""
    rng = np.random.default_rng(seed)
    out = np.zeros(round(seconds * rate))
    pos = round(0.1 * rate)
    while pos < len(out) - round(0.1 * rate):
        n = round(rng.uniform(0.08, 0.25) * rate)
        t = np.arange(n) / rate
        f0 = rng.uniform(90, 220) * (1 + rng.uniform(-0.15, 0.15) * t / t[-1])
        phase = 2 * np.pi * np.cumsum(f0) / rate
        formants = rng.uniform([300, 900], [900, 2800])
        syllable = np.zeros(n)
        for h in range(1, 40):
            freq = h * f0
            gain = sum(1.0 / (1.0 + ((freq - f) / 120.0) ** 2) for f in formants) * (freq < rate / 2)
            syllable += gain * np.sin(h * phase)
        syllable *= np.sin(np.pi * t / t[-1]) ** 2 * rng.uniform(0.3, 1.0)
        end = min(len(out), pos + n)
        out[pos:end] += syllable[: end - pos]
        pos = end + round(rng.uniform(0.0, 0.15) * rate)
    out *= 0.5 * 32767 / np.abs(out).max()
    return np.round(out).astype(np.int16)[:, None]


def decode_mono(data: bytes, rate: int) -> np.ndarray:
    """Any audio file -> int16 mono samples (n, 1) at `rate`."""
    resampler = av.AudioResampler(format="s16", layout="mono", rate=rate)
    with av.open(io.BytesIO(data)) as c:
        chunks = [out.to_ndarray().reshape(-1) for frame in c.decode(audio=0) for out in resampler.resample(frame)]
    chunks += [out.to_ndarray().reshape(-1) for out in resampler.resample(None)]
    return np.concatenate(chunks)[:, None]


def remuxed(seconds: float = 2.0, rate: int = 16000, drop: tuple = (), spoil: tuple = (), late: dict = None,
            container: str = "matroska", codec: str = "aac", freq: float = 440.0) -> bytes:
    """A mono tone encoded to packets, muxed with damage of known size and place:
    `drop` packet indices left out (a hole in the time stamps, as a lost ogg page or mkv
    block leaves), `spoil` indices whose payload is random bytes (they fail to decode), and
    `late` {index: seconds} packets whose time stamp alone is that much late (as vorbis labels
    frames at a change of block size). Bit-exact: the same arguments give the same bytes."""
    rng = np.random.default_rng(7)
    out = io.BytesIO()
    with av.open(out, "w", format=container) as c:
        c.flags |= ContainerFlags.bitexact.value
        stream = c.add_stream(codec, rate=rate, layout="mono")
        stream.codec_context.flags |= CodecFlags.bitexact.value
        resample = av.AudioResampler(format=stream.codec_context.format.name, layout="mono", rate=rate)
        frame = av.AudioFrame.from_ndarray(samples(seconds, rate, 1, freq).reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = rate, 0, Fraction(1, rate)
        packets = [p for f in resample.resample(frame) + resample.resample(None) for p in stream.encode(f)]
        packets += stream.encode(None)
        for i, packet in enumerate(packets):
            if i in drop:
                continue
            if i in spoil:
                bad = av.Packet(rng.integers(0, 256, packet.size, dtype=np.uint8).tobytes())
                bad.pts, bad.dts, bad.duration, bad.time_base = packet.pts, packet.dts, packet.duration, packet.time_base
                bad.stream, packet = stream, bad
            if late and i in late:
                packet.pts += round(late[i] / packet.time_base)  # the decode time stays: only the label moves
            c.mux(packet)
    return out.getvalue()


def two_tracks(rates: tuple = (22050, 44100), default: int = 1, seconds: float = 1.0) -> bytes:
    """An mkv with two audio tracks of different sample rates; track `default` is marked the default."""
    out = io.BytesIO()
    with av.open(out, "w", format="matroska") as c:
        c.flags |= ContainerFlags.bitexact.value
        streams = [c.add_stream("flac", rate=r, layout="mono") for r in rates]
        for i, stream in enumerate(streams):  # before the header is written
            stream.disposition = av.stream.Disposition.default if i == default else av.stream.Disposition(0)
        for stream, rate in zip(streams, rates):
            frame = av.AudioFrame.from_ndarray(samples(seconds, rate).reshape(1, -1), format="s16", layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = rate, 0, Fraction(1, rate)
            for packet in stream.encode(frame) + stream.encode(None):
                c.mux(packet)
    return out.getvalue()
