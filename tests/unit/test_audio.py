import hashlib
import io
import re

import av
import numpy as np
import pytest

from mmcurate.filters import audio as audio_mod
from mmcurate.filters.audio import AudioRejected, ProcessAudio
from mmcurate.schemas.config import AudioConfig
from mmcurate.schemas.record import Verdict
from tests import audio_media as media

SOURCE_RATE = {"wav": 44100, "flac": 44100, "mp3": 44100, "ogg": 48000}
SOURCE_CODEC = {"wav": "pcm_s16le", "flac": "flac", "mp3": "mp3", "ogg": "opus"}
LOSSY_SLACK = 0.06  # seconds of encoder padding a lossy source may add or lose


def process(data, **cfg):
    return ProcessAudio(AudioConfig(**cfg))(data)


def rejected(data, **cfg):
    with pytest.raises(AudioRejected) as e:
        process(data, **cfg)
    return e.value.verdict


def decode(data):
    """(rate, channels, int16 interleaved samples) of a file, as PyAV reads it."""
    with av.open(io.BytesIO(data)) as c:
        s = c.streams.audio[0]
        to_s16 = av.AudioResampler(format="s16")  # same rate and layout: only the sample format
        chunks = [out.to_ndarray().reshape(-1) for f in c.decode(s) for out in to_s16.resample(f)]
        return s.rate, s.channels, np.concatenate(chunks)


@pytest.fixture(scope="module")
def tones():
    """2.0 s stereo 440 Hz tones in every input format."""
    return {fmt: media.tone(2.0, SOURCE_RATE[fmt], 2, fmt=fmt) for fmt in SOURCE_RATE}


@pytest.mark.parametrize("fmt", ["wav", "flac", "mp3", "ogg"])
def test_every_input_format_becomes_16k_mono_flac(tones, fmt):
    r = process(tones[fmt])
    assert (r.ext, r.sample_rate, r.channels) == ("flac", 16000, 1)
    assert (r.original_sample_rate, r.original_channels, r.original_codec) == (SOURCE_RATE[fmt], 2, SOURCE_CODEC[fmt])
    if fmt in ("wav", "flac"):
        assert r.duration_s == 2.0  # 88200 samples at 44.1 kHz -> exactly 32000 at 16 kHz
    else:
        assert abs(r.duration_s - 2.0) <= LOSSY_SLACK
    assert r.data[:4] == b"fLaC"
    rate, channels, pcm = decode(r.data)
    assert (rate, channels) == (16000, 1)
    assert len(pcm) == round(r.duration_s * 16000)
    assert hashlib.sha256(pcm.astype("<i2").tobytes()).hexdigest() == r.pcm_sha256  # flac is lossless


def test_pcm_hash_is_of_the_sound_not_the_container(tones):
    assert process(tones["wav"]).pcm_sha256 == process(tones["flac"]).pcm_sha256
    assert process(tones["wav"]).pcm_sha256 != process(media.tone(2.0, 44100, 2, freq=441.0)).pcm_sha256
    # the hash is taken after resampling: a different stored rate is a different hash
    assert process(tones["wav"]).pcm_sha256 != process(tones["wav"], sample_rate=22050).pcm_sha256


def test_zero_keeps_the_source_rate_and_channels(tones):
    r = process(tones["wav"], sample_rate=0, channels=0)
    assert (r.sample_rate, r.channels, r.duration_s) == (44100, 2, 2.0)
    rate, channels, pcm = decode(r.data)
    assert (rate, channels, len(pcm)) == (44100, 2, 2 * 88200)
    assert r.pcm_sha256 == hashlib.sha256(media.samples(2.0, 44100, 2).astype("<i2").tobytes()).hexdigest()  # untouched
    r = process(tones["ogg"], sample_rate=0)
    assert (r.sample_rate, r.channels) == (48000, 1)
    r = process(tones["wav"], channels=0)
    assert (r.sample_rate, r.channels) == (16000, 2)


@pytest.mark.parametrize("fmt,magic", [("flac", b"fLaC"), ("wav", b"RIFF"), ("mp3", b"ID3")])
def test_each_output_format_decodes_back(tones, fmt, magic):
    r = process(tones["wav"], format=fmt, channels=2, sample_rate=22050)
    assert (r.ext, r.data[:len(magic)], r.sample_rate, r.channels, r.duration_s) == (fmt, magic, 22050, 2, 2.0)
    rate, channels, pcm = decode(r.data)
    assert (rate, channels) == (22050, 2)
    if fmt == "mp3":
        assert abs(len(pcm) / 2 / 22050 - 2.0) <= LOSSY_SLACK
    else:
        assert len(pcm) == 2 * 44100
        assert hashlib.sha256(pcm.astype("<i2").tobytes()).hexdigest() == r.pcm_sha256


@pytest.mark.parametrize("fmt", ["flac", "wav", "mp3"])
def test_output_bytes_are_deterministic(tones, fmt):
    a = ProcessAudio(AudioConfig(format=fmt))(tones["mp3"])
    b = ProcessAudio(AudioConfig(format=fmt))(tones["mp3"])
    assert a.data == b.data and a.pcm_sha256 == b.pcm_sha256
    assert not re.search(rb"Lav[fc]\d", a.data)  # bitexact: no FFmpeg version in the file


def test_broken_inputs_are_decode_errors(tones):
    assert rejected(b"") == Verdict("audio.decode_error", "zero bytes")
    assert rejected(media.garbage()).reason == "audio.decode_error"
    assert rejected(b"this is not audio at all" * 10) == Verdict(  # no ": '<none>'", PyAV's name for bytes in memory
        "audio.decode_error", "InvalidDataError: [Errno 1094995529] Invalid data found when processing input")
    assert rejected(b"RIFF\x00\x00\x00\x00WAVEfmt ").reason == "audio.decode_error"
    # a header-only mp3/ogg (what an encoder writes for no samples) cannot be opened at all
    assert rejected(media.zero_length("mp3")).reason == "audio.decode_error"
    assert rejected(media.zero_length("ogg")).reason == "audio.decode_error"


def test_no_audio_stream():
    assert rejected(media.no_audio_stream()).reason == "audio.no_audio_stream"


@pytest.mark.parametrize("fmt", ["wav", "flac"])
def test_zero_samples_is_empty(fmt):
    assert rejected(media.zero_length(fmt)).reason == "audio.empty"


def test_duration_limits(tones):
    v = rejected(media.tone(0.2))
    assert (v.reason, v.detail) == ("audio.too_short", "0.200 s < 0.5")
    assert rejected(tones["wav"], max_duration=1.5).reason == "audio.too_long"
    assert process(tones["wav"], min_duration=2.0, max_duration=2.0).duration_s == 2.0  # bounds are inclusive
    for fmt in ("mp3", "ogg"):
        assert rejected(tones[fmt], min_duration=2.5).reason == "audio.too_short"


def test_too_long_is_confirmed_by_decoding_when_the_container_does_not_say(tones, monkeypatch):
    monkeypatch.setattr(audio_mod, "_declared_duration", lambda container, stream: None)
    v = rejected(tones["wav"], max_duration=0.5)
    assert v.reason == "audio.too_long" and "decoding stopped" in v.detail
    assert process(tones["flac"], max_duration=2.0).duration_s == 2.0


def test_a_file_to_cut_has_its_own_length_limit(tones, monkeypatch):
    """decode(max_duration=...) (audio.max_source_duration, for a file cut into clips) in
    place of audio.max_duration: checked against the header, and while decoding."""
    process_short = ProcessAudio(AudioConfig(max_duration=1.0))
    with pytest.raises(AudioRejected) as e:
        process_short.decode(tones["wav"])
    assert (e.value.verdict.reason, e.value.verdict.detail) == ("audio.too_long", "2.000 s > 1.0 (container header)")
    assert process_short.decode(tones["wav"], max_duration=2.0).duration_s == 2.0
    with pytest.raises(AudioRejected) as e:
        process_short.decode(tones["wav"], max_duration=1.5)
    assert e.value.verdict.detail == "2.000 s > 1.5 (container header)"
    monkeypatch.setattr(audio_mod, "_declared_duration", lambda container, stream: None)
    with pytest.raises(AudioRejected) as e:
        process_short.decode(tones["flac"], max_duration=1.5)
    assert e.value.verdict.reason == "audio.too_long" and e.value.verdict.detail.startswith("> 1.5 s (decoding stopped at")


def test_silence_and_quiet_audio():
    v = rejected(media.silence(1.0))
    assert (v.reason, v.detail) == ("audio.silent", "peak -inf dBFS <= -60.0")
    quiet = media.tone(1.0, amplitude=0.01)  # -40 dBFS
    assert process(quiet).duration_s == 1.0
    assert rejected(quiet, silence_dbfs=-30.0).reason == "audio.silent"
    assert rejected(media.tone(1.0, amplitude=0.0005)).reason == "audio.silent"  # -66 dBFS
    assert rejected(media.silence(1.0, 48000, 2, fmt="ogg")).reason == "audio.silent"


def test_channel_limit():
    six = media.tone(1.0, channels=6)
    v = rejected(six, max_channels=2)
    assert (v.reason, v.detail) == ("audio.channels", "6 channels > 2")
    r = process(six, channels=0)
    assert (r.channels, r.original_channels) == (6, 6)
    assert decode(r.data)[1] == 6
    assert process(six).channels == 1  # downmixed


@pytest.mark.parametrize("fmt", ["wav", "flac", "mp3", "ogg"])
def test_damaged_files_are_refused_with_a_reason_or_kept_without_losing_audio_silently(tones, fmt):
    data = tones[fmt]
    rng = np.random.default_rng(1)
    broken = [media.truncated(data, keep) for keep in (0.001, 0.01, 0.05, 0.3, 0.5, 0.9)]
    for _ in range(4):  # a fine header, random bytes midway
        spoilt = bytearray(data)
        at = int(rng.integers(len(data) // 4, len(data) - 600))
        spoilt[at:at + 500] = rng.integers(0, 256, 500, dtype=np.uint8).tobytes()
        broken.append(bytes(spoilt))
    damage = ("audio.decode_error", "audio.empty", "audio.truncated", "audio.corrupt")
    for data in broken:
        try:
            r = process(data, min_duration=0.0)
        except AudioRejected as e:
            assert e.verdict.reason in damage + ("audio.silent",)
        else:  # kept whole, or with its gaps filled: never more than 0.05 s short
            assert 2.0 - 0.05 - LOSSY_SLACK <= r.duration_s <= 2.0 + LOSSY_SLACK and decode(r.data)[0] == 16000
    reasons = []
    for data in broken[:6]:  # every cut-short file is refused, with a damage reason
        with pytest.raises(AudioRejected) as e:
            process(data, min_duration=0.0)
        reasons.append(e.value.verdict.reason)
    assert set(reasons) <= set(damage)


@pytest.mark.parametrize("fmt", ["wav", "flac", "mp3", "ogg"])
def test_a_file_cut_short_is_truncated(tones, fmt):
    for keep in (0.5, 0.9):
        v = rejected(media.truncated(tones[fmt], keep), min_duration=0.0)
        assert v.reason == "audio.truncated", v


@pytest.mark.parametrize("how", ["drop", "spoil"])
def test_a_lost_packet_becomes_silence_in_its_place(how):
    whole = process(media.remuxed(), min_duration=0.0)
    r = process(media.remuxed(**{how: (20,)}), min_duration=0.0)
    assert r.gap_s == 1024 / 16000  # one AAC packet
    assert r.duration_s == whole.duration_s
    got, ref = decode(r.data)[2], decode(whole.data)[2]
    # AAC packet i holds the samples from (i - 1) * 1024 (the encoder's priming delay); its
    # place is silent, and the audio from two packets on is sample for sample the whole file's
    start = 19 * 1024
    assert np.all(got[start + 100:start + 1024 - 100] == 0) and np.abs(ref[start:start + 1024]).max() > 5000
    assert np.array_equal(got[start + 2 * 1024:], ref[start + 2 * 1024:])
    assert np.array_equal(got[:start - 1024], ref[:start - 1024])


def test_more_missing_audio_than_max_gap_is_corrupt():
    five = media.remuxed(drop=(20, 21, 22, 23, 24))  # 0.32 s
    v = rejected(five, min_duration=0.0)
    assert v.reason == "audio.corrupt" and v.detail.startswith("0.320 s of the audio is lost to damage")
    assert process(five, min_duration=0.0, max_gap=0.5).gap_s == 0.32
    assert rejected(media.remuxed(spoil=(20,)), min_duration=0.0, max_gap=0.0).reason == "audio.corrupt"


def test_a_late_time_stamp_the_next_frame_takes_back_is_not_a_gap():
    """Vorbis labels frames at a change of block size a few milliseconds late (whole files)."""
    whole = process(media.remuxed(), min_duration=0.0)
    for late in (0.008, 0.03):
        r = process(media.remuxed(late={20: late, 40: late}), min_duration=0.0)
        assert (r.gap_s, r.pcm_sha256) == (0.0, whole.pcm_sha256)


def test_audio_lost_without_a_trace_in_the_time_stamps_counts_against_max_gap():
    """An mp3 counts its frames' times, so frames lost midway leave (almost) no hole in the
    time stamps: the Xing frame's length shows them missing, though not where."""
    data = bytearray(media.tone(8.0, 44100, 1, fmt="mp3"))
    del data[len(data) // 2:len(data) // 2 + 4000]  # ~0.5 s at 64 kbit/s
    v = rejected(bytes(data), min_duration=0.0)
    assert v.reason == "audio.corrupt" and "of the 8.000 s the file declares decode" in v.detail
    r = process(bytes(data), min_duration=0.0, max_gap=1.0)
    # all the audio lost counts; the stored file is short by the part whose place is unknown
    assert 0.45 < 8.0 - r.duration_s < r.gap_s < 0.65


def test_the_default_track_is_decoded():
    assert process(media.two_tracks(default=1)).original_sample_rate == 44100
    assert process(media.two_tracks(default=0)).original_sample_rate == 22050


def test_test_media_is_deterministic():
    for fmt in ("wav", "flac", "mp3", "ogg"):
        assert media.tone(0.5, 48000, fmt=fmt) == media.tone(0.5, 48000, fmt=fmt)
    assert media.no_audio_stream() == media.no_audio_stream()


@pytest.mark.parametrize("codec", ["pcm_s16le", "pcm_u8", "pcm_f32le", "pcm_s24le", "pcm_mulaw", "adpcm_ima_wav"])
def test_the_quick_wav_open_gives_the_same_audio(codec, monkeypatch):
    """A wav is opened with a 32-byte probe (FFmpeg otherwise reads 5 s of it first): the
    same samples come out as with FFmpeg's full probe."""
    rate = 8000 if codec == "pcm_mulaw" else 22050
    out = io.BytesIO()
    with av.open(out, "w", format="wav") as c:
        stream = c.add_stream(codec, rate=rate, layout="stereo")
        resample = av.AudioResampler(format=stream.codec_context.format.name, layout="stereo", rate=rate)
        frame = av.AudioFrame.from_ndarray(media.samples(3.0, rate, 2).reshape(1, -1), format="s16", layout="stereo")
        frame.sample_rate = rate
        for f in resample.resample(frame) + resample.resample(None):
            c.mux(stream.encode(f))
        c.mux(stream.encode(None))
    data = out.getvalue()
    assert audio_mod._open_options(data) == {"probesize": "32"}
    quick = process(data, sample_rate=0, channels=0)
    monkeypatch.setattr(audio_mod, "_open_options", lambda data: {})
    full = process(data, sample_rate=0, channels=0)
    assert (quick.pcm_sha256, quick.data, quick.original_codec) == (full.pcm_sha256, full.data, codec)
    assert quick.duration_s == pytest.approx(3.0, abs=0.05)  # (ADPCM pads its last block)
