"""Deterministic test videos made with PyAV, whose frames say which frame they are.

Frame i carries i as a row of black/white blocks along its top edge (most significant bit
first), big enough to survive h264 at any sane quality, so `frame_index` can read back
which source frame a decoded frame (or a JPEG of one) came from.
"""

from __future__ import annotations

import io
from fractions import Fraction

import av
import numpy as np
from PIL import Image

BITS = 10  # frame indices up to 1023
SAMPLE_RATE = 16_000
ASS_HEADER = (b"[Script Info]\nScriptType: v4.00+\nPlayResX: 384\nPlayResY: 288\n\n[V4+ Styles]\n"
              b"Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, Bold, "
              b"Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, "
              b"Alignment, MarginL, MarginR, MarginV, Encoding\n"
              b"Style: Default,Arial,16,&Hffffff,&Hffffff,&H0,&H0,0,0,0,0,100,100,0,0,1,1,0,2,10,10,10,0\n\n"
              b"[Events]\nFormat: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\n")


def make_video(path=None, seconds=4.0, fps=25, size=(160, 120), gop=25, codec="libx264", container="mp4",
               audio=True, subtitles=None, subtitle_codec=None, open_gop=False, broken_audio=(), ticks=1, pause=None, audio_codec="aac", rotation=0, audio_span=None) -> bytes:
    """Encode `seconds` of numbered frames (+ a 440 Hz tone, + text subtitles given as
    (start, end, text) seconds); keyframes exactly every `gop` frames. Returns the bytes
    (also written to `path` when given). `open_gop`: x264's open GOPs, where the B-frames
    shown just before a keyframe are decoded after it and refer to it. `broken_audio`: the
    numbers of audio packets cut to 3 bytes (they do not decode). `ticks`: the stream is timed
    at ticks * fps, a frame every `ticks` ticks (as some AVI writers do). `pause`: (frame, n)
    holds that frame n frames longer (a variable frame rate; the tone goes on). `rotation`:
    a display matrix turning the picture that many degrees counterclockwise (as phones write).
    `audio_span`: (start, end) seconds the tone covers (default: the whole video)."""
    buf = io.BytesIO()
    with av.open(buf, "w", format=container) as out:
        out.flags |= av.container.Flags.bitexact.value
        video = out.add_stream(codec, rate=Fraction(fps * ticks))
        video.width, video.height, video.pix_fmt = *size, "yuv420p"
        video.codec_context.gop_size = gop
        if rotation:
            video.set_display_rotation(rotation)
        if codec == "libx264":  # keyframes exactly every gop frames; B-frames (reordering) kept
            params = f"keyint={gop}:min-keyint={gop}:scenecut=0:threads=1:mbtree=0"  # mbtree: see filters/video.py
            params += ":open-gop=1:bframes=3:b-pyramid=none" if open_gop else ""
            video.options = {"crf": "12", "preset": "veryfast", "x264-params": params}
        sound = out.add_stream(audio_codec, rate=SAMPLE_RATE, layout="mono") if audio else None
        subs = None
        if subtitles:  # text subtitle encoders take ASS events and need an ASS header
            subs = out.add_stream(subtitle_codec or ("mov_text" if container == "mp4" else "subrip"))
            subs.codec_context.subtitle_header = ASS_HEADER
        n = round(seconds * fps)
        for i in range(n):
            frame = av.VideoFrame.from_ndarray(numbered(i, size), format="rgb24")
            held = pause[1] if pause and i > pause[0] else 0
            frame.pts, frame.time_base = (i + held) * ticks, Fraction(1, fps * ticks)
            out.mux(video.encode(frame))
        out.mux(video.encode())
        if sound is not None:
            first, last = audio_span or (0.0, (n + (pause[1] if pause else 0)) / fps)
            _tone(out, sound, last - first, broken_audio, start=first)
        for start, end, text in subtitles or ():
            tb = subs.time_base  # the muxer's choice, known once the header is written
            cue = av.subtitles.subtitle.SubtitleSet.create(  # an ASS event: ReadOrder,Layer,Style,...,Text
                f"0,0,Default,,0,0,0,,{text}".encode(), 0, round((end - start) / tb), round(start / tb))
            packet = subs.codec_context.encode_subtitle(cue)
            packet.stream, packet.time_base = subs, tb
            out.mux(packet)
    data = buf.getvalue()
    if path:
        with open(path, "wb") as f:
            f.write(data)
    return data


def numbered(i: int, size=(160, 120)) -> np.ndarray:
    """An RGB frame: a soft gradient that drifts with i, and i's bits as blocks on top."""
    w, h = size
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([(x * 2 + i * 3) % 256, (y * 2 + i) % 256, np.full_like(x, 128)], axis=-1).astype(np.uint8)
    block = w // BITS
    for bit in range(BITS):
        img[:block, bit * block:(bit + 1) * block] = 255 if i >> (BITS - 1 - bit) & 1 else 0
    return img


def frame_index(image) -> int:
    """The frame number drawn by `numbered`, from a decoded av.VideoFrame, PIL image or JPEG bytes."""
    if isinstance(image, bytes):
        image = Image.open(io.BytesIO(image))
    if isinstance(image, av.VideoFrame):
        image = image.to_image()
    gray = np.asarray(image.convert("L"), dtype=np.float32)
    block = gray.shape[1] // BITS
    value = 0
    for bit in range(BITS):
        inner = gray[block // 4: block * 3 // 4, bit * block + block // 4: (bit + 1) * block - block // 4]
        value = value * 2 + int(inner.mean() > 128)
    return value


def _tone(out, stream, seconds: float, broken=(), start: float = 0.0):
    samples, offset = round(seconds * SAMPLE_RATE), round(start * SAMPLE_RATE)
    t = np.arange(samples) / SAMPLE_RATE
    wave = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    step = stream.codec_context.frame_size or 1024
    packets = []
    for at in range(0, samples, step):
        frame = av.AudioFrame.from_ndarray(wave[None, at:at + step], format="fltp", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = SAMPLE_RATE, offset + at, Fraction(1, SAMPLE_RATE)
        packets += stream.encode(frame)
    packets += stream.encode()
    for i, packet in enumerate(packets):
        if i in broken:
            cut = av.Packet(bytes(packet)[:3])
            cut.pts, cut.dts, cut.time_base, cut.stream = packet.pts, packet.dts, packet.time_base, packet.stream
            packet = cut
        out.mux(packet)


def audio_only_mp4(seconds=2.0) -> bytes:
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as out:
        _tone(out, out.add_stream("aac", rate=SAMPLE_RATE, layout="mono"), seconds)
    return buf.getvalue()


def broken_video() -> bytes:
    """An MP4 header followed by garbage: opens as nothing PyAV can use."""
    good = make_video(seconds=1.0, audio=False)
    return good[:64] + bytes((i * 37) % 251 for i in range(4000))


def broken_subtitles(container="matroska") -> bytes:
    """A video whose subtitle cue is not UTF-8 (patched in place: the container stays valid)."""
    data = make_video(seconds=1.0, container=container, audio=False, subtitles=[(0.2, 0.8, "BROKEN")])
    assert data.count(b"BROKEN") == 1
    return data.replace(b"BROKEN", b"\xff\xfe\xc3\x28\xa0\xa1")


def decoded_frames(path) -> list[tuple[float, np.ndarray]]:
    """(presentation time in s, RGB array) of every frame of a real video file."""
    with av.open(str(path)) as c:
        return [(float(f.pts * f.time_base), f.to_ndarray(format="rgb24")) for f in c.decode(video=0)]


def encode_frames(path, frames: list[np.ndarray], fps: int, crf: int = 23) -> None:
    """Silent h264 MP4 of RGB arrays (even sizes), frame i at i / fps."""
    h, w = frames[0].shape[:2]
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"crf": str(crf), "preset": "veryfast", "x264-params": "threads=1"}
        for i, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, fps)
            out.mux(stream.encode(frame))
        out.mux(stream.encode())


def frames_at(frames: list[tuple[float, np.ndarray]], times) -> list[np.ndarray]:
    """The frame shown at each time (the last one starting at or before it)."""
    starts = np.array([t for t, _ in frames]) - frames[0][0]
    return [frames[max(0, int(np.searchsorted(starts, t, side="right")) - 1)][1] for t in times]


def reencoded_copy(src, dst, scale: float = 0.5, fps: int = 15, crf: int = 32) -> None:
    """A smaller, lower-rate, lower-quality copy of a real video (what a re-upload looks like)."""
    frames = decoded_frames(src)
    seconds = frames[-1][0] - frames[0][0]
    h, w = frames[0][1].shape[:2]
    size = (int(w * scale) // 2 * 2, int(h * scale) // 2 * 2)
    picked = frames_at(frames, np.arange(0, seconds, 1 / fps))
    encode_frames(dst, [np.asarray(Image.fromarray(f).resize(size, Image.Resampling.BILINEAR)) for f in picked], fps, crf)


def spliced_through_black(first, second, dst, part: float = 3.0, black: float = 1.0, fps: int = 30) -> None:
    """`part` s of one video, `black` s of black, then `part` s of another from its 4th second:
    its middle frame is black, like a fade between scenes."""
    a, b = decoded_frames(first), decoded_frames(second)
    size = a[0][1].shape
    steps = np.arange(0, part, 1 / fps)
    b_frames = [np.asarray(Image.fromarray(f).resize(size[1::-1])) for f in frames_at(b, 4.0 + steps)]
    encode_frames(dst, frames_at(a, steps) + [np.zeros(size, np.uint8)] * round(black * fps) + b_frames, fps, crf=20)


def with_cover(data: bytes) -> bytes:
    """The video remuxed into Matroska behind a cover picture: a one-frame MJPEG video stream
    that comes first (as some downloaders store thumbnails)."""
    buf = io.BytesIO()
    with av.open(io.BytesIO(data)) as src, av.open(buf, "w", format="matroska") as out:
        out.flags |= av.container.Flags.bitexact.value
        cover = out.add_stream("mjpeg", rate=1)
        cover.width, cover.height, cover.pix_fmt = 64, 64, "yuvj420p"
        streams = {s: out.add_stream_from_template(s) for s in src.streams if s.type in ("video", "audio")}
        picture = av.VideoFrame.from_ndarray(np.full((64, 64, 3), (200, 30, 30), np.uint8), format="rgb24").reformat(format="yuvj420p")
        picture.pts, picture.time_base = 0, Fraction(1, 1)
        out.mux(cover.encode(picture))
        out.mux(cover.encode())
        for packet in src.demux(*streams):
            if packet.dts is None:
                continue
            packet.stream = streams[packet.stream]
            out.mux(packet)
    return buf.getvalue()
