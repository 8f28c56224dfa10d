"""The lengths audio files declare (filters/audio_length.py): read from the header where it is
exact, None where FFmpeg's figure would be a guess."""

import io

import av
import pytest

from mmcurate.filters.audio_length import declared_seconds, ogg_cut_short
from mmcurate.schemas.config import AudioConfig, ConfigError
from tests import audio_media as media


def declared(data: bytes):
    with av.open(io.BytesIO(data)) as c:
        return declared_seconds(data, c, c.streams.audio[0])


@pytest.mark.parametrize("fmt", ["wav", "flac", "mp3", "ogg"])
def test_whole_files_declare_their_length(fmt):
    assert declared(media.tone(2.0, 48000, 2, fmt=fmt)) == pytest.approx(2.0, abs=1e-9 if fmt != "ogg" else 0.01)  # opus pads


@pytest.mark.parametrize("fmt", ["wav", "flac", "mp3"])
def test_a_header_declares_the_whole_length_of_a_file_cut_short(fmt):
    assert declared(media.truncated(media.tone(2.0, 44100, 1, fmt=fmt), 0.6)) == pytest.approx(2.0, abs=1e-9)


def test_ogg_declares_what_its_last_page_holds_and_the_missing_end_page_tells_a_cut():
    data = media.tone(2.0, 48000, 1, fmt="ogg")
    assert not ogg_cut_short(data)
    for keep in (0.5, 0.9, 0.999):
        assert ogg_cut_short(media.truncated(data, keep))
    last = data.rfind(b"OggS")
    no_end = bytearray(data)
    no_end[last + 5] &= ~0x04  # a last page without the end-of-stream flag: the writer never finished
    assert ogg_cut_short(bytes(no_end))
    assert ogg_cut_short(b"") and ogg_cut_short(b"not an ogg file at all")


def test_headers_that_do_not_know_their_length_declare_none():
    wav = bytearray(media.tone(1.0, fmt="wav"))
    data_at = wav.find(b"data")
    wav[data_at + 4:data_at + 8] = b"\xff\xff\xff\xff"  # a streaming writer's "unknown size"
    assert declared(bytes(wav)) is None
    flac = bytearray(media.tone(1.0, fmt="flac"))
    flac[8 + 13] &= 0xF0  # STREAMINFO's total samples: 0, "unknown"
    flac[8 + 14:8 + 18] = b"\x00\x00\x00\x00"
    assert declared(bytes(flac)) is None
    mp3 = media.tone(1.0, 44100, fmt="mp3")
    for tag in (b"Xing", b"Info"):
        mp3 = mp3.replace(tag, b"XXXX")  # no frame count: FFmpeg's length is a bit-rate guess
    assert declared(mp3) is None
    assert declared(media.remuxed(seconds=1.0, container="adts")) is None  # raw AAC


def test_mp4_and_mkv_declare_their_header_length():
    assert declared(media.remuxed(seconds=2.0, container="mp4")) == pytest.approx(2.048, abs=0.07)
    assert declared(media.remuxed(seconds=2.0, container="matroska")) == pytest.approx(2.048, abs=0.07)


def test_max_gap_must_not_be_negative():
    with pytest.raises(ConfigError, match="audio.max_gap"):
        AudioConfig(max_gap=-0.1).validate()
