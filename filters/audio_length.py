"""How long an audio file says it is, where that length is exact.

Less audio decoding than that tells a damaged file (a download cut short, a copy that stopped,
a block whose damage stops the demuxer) from a complete one. FFmpeg gives every file a
duration, but how it gets it differs: from the header (flac, mp4, mkv, an mp3's Xing/Info
frame: exact), from the last page's time stamp (ogg: what the file holds, so a file cut short
looks complete, but one whose decoding stops early does not), from the bytes there are (wav:
says nothing, so the RIFF header is read here), or a guess from the first frame's bit rate (an
mp3 without a Xing/Info frame, raw aac/ac3 streams), which would call good VBR files damaged.
PyAV does not say which method FFmpeg used, hence this module: no library we depend on reads
these header fields without decoding the file.
"""

from __future__ import annotations

from typing import Optional

_MP4 = "mov,mp4,m4a,3gp,3g2,mj2"
_MKV = "matroska,webm"
_UNSET = (0, 0xFFFFFFFF)
_OGG_MAX_PAGE = 27 + 255 + 255 * 255  # header, segment table, body  # a data size streaming writers leave for "unknown"


def declared_seconds(data: bytes, container, stream) -> Optional[float]:
    """Seconds of audio the file declares, or None where it does not say exactly."""
    fmt = container.format.name
    if fmt == "wav":
        return _wav_seconds(data)
    if fmt == "flac":
        return _flac_seconds(data)
    if fmt == "mp3":  # the Xing/Info/VBRI frame counts the frames; FFmpeg's duration is then exact
        return _stream_seconds(stream) if _has_frame_count(data) else None
    if fmt in (_MP4, "ogg"):  # the moov box's sample tables; ogg's last granule position
        return _stream_seconds(stream)
    if fmt == _MKV and container.duration is not None:  # the Segment's Duration element
        return container.duration / 1_000_000
    return None


def allowed_shortfall(container, sample_rate: int) -> float:
    """Seconds a whole file may decode short of its declared length: an mp4 or mkv edit list
    may trim AAC's priming samples (up to 2112) off it; ogg's length includes opus's pre-skip
    (6.5 ms); the other lengths are exact."""
    if container.format.name in (_MP4, _MKV):
        return max(0.01, 2112 / sample_rate)
    return 0.01


def ogg_cut_short(data: bytes) -> bool:
    """Whether an ogg file ends without a whole end-of-stream page: a file cut short. (Its
    length in FFmpeg comes from the last page there is, so that cannot tell.)"""
    lo, end = max(0, len(data) - _OGG_MAX_PAGE), len(data)
    at = data.rfind(b"OggS", lo)
    while at >= 0:  # the page that ends exactly where the file does
        if at + 27 <= end:
            lacing = data[at + 27:at + 27 + data[at + 26]]
            if at + 27 + len(lacing) + sum(lacing) == end:
                return not data[at + 5] & 0x04  # header type flag 4: the end of the stream
        at = data.rfind(b"OggS", lo, at)
    return True


def _stream_seconds(stream) -> Optional[float]:
    if stream.duration is None or not stream.time_base:
        return None
    return float(stream.duration * stream.time_base)


def _wav_seconds(data: bytes) -> Optional[float]:
    """The data chunk's size over the fmt chunk's bytes per second (RIFF only, not RF64)."""
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return None
    pos, byte_rate = 12, 0
    while pos + 8 <= len(data):
        chunk, size = data[pos:pos + 4], int.from_bytes(data[pos + 4:pos + 8], "little")
        if chunk == b"fmt ":
            byte_rate = int.from_bytes(data[pos + 16:pos + 20], "little")  # after format, channels, rate
        elif chunk == b"data":
            return size / byte_rate if byte_rate and size not in _UNSET else None
        pos += 8 + size + (size & 1)  # chunks are padded to an even size
    return None


def _flac_seconds(data: bytes) -> Optional[float]:
    """STREAMINFO's total samples over its sample rate (0 samples: the encoder did not know)."""
    if data[:4] != b"fLaC" or len(data) < 26 or data[4] & 0x7F != 0:  # STREAMINFO is always block 0
        return None
    info = data[8:26]
    rate = int.from_bytes(info[10:13], "big") >> 4  # 20 bits
    total = int.from_bytes(info[13:18], "big") & ((1 << 36) - 1)  # the last 36 bits of 64
    return total / rate if rate and total else None


def _has_frame_count(data: bytes) -> bool:
    """Whether the first mp3 frame (after any ID3v2 tag) is a Xing, Info or VBRI header."""
    start = 0
    if data[:3] == b"ID3" and len(data) >= 10:
        size = 0
        for b in data[6:10]:  # a syncsafe integer: 7 bits per byte
            size = size << 7 | (b & 0x7F)
        start = 10 + size + (10 if data[5] & 0x10 else 0)  # a footer follows when flagged
    head = data[start:start + 2048]  # the tag sits within the first frame's first 40 bytes
    return any(tag in head for tag in (b"Xing", b"Info", b"VBRI"))
