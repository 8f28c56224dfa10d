"""The audio near-duplicate signature: re-encoded, resampled, re-levelled, padded and noisy
copies of a sound stay within a few bits on both hashes; distinct sounds are far apart."""

import itertools

import numpy as np
import pytest

from mmcurate.filters import audio_hash
from mmcurate.filters.audio import ProcessAudio
from mmcurate.filters.audio_hash import audio_hashes
from mmcurate.schemas.config import AudioConfig
from tests import audio_media as media

K = 8  # dedup.max_distance's default


def both(a: dict, b: dict) -> int:
    """dedup.audio_hash both: the larger of the two distances must be within k."""
    return max((a["phash"] ^ b["phash"]).bit_count(), (a["dhash"] ^ b["dhash"]).bit_count())


def stored(data: bytes, **cfg) -> dict:
    """The hashes prepare stores: of the decoded, resampled (16 kHz mono) PCM."""
    result = ProcessAudio(AudioConfig(**cfg), hashes=True)(data)
    assert set(result.hashes) == {"phash", "dhash", "phash_mirror", "dhash_mirror"}
    assert result.hashes["phash_mirror"] is None and result.hashes["dhash_mirror"] is None
    return result.hashes


def test_distinct_sounds_are_far_apart_on_both_hashes():
    hashes = [audio_hashes(media.babble(seed)[:, 0], 16000) for seed in range(40)]
    distances = [both(a, b) for a, b in itertools.combinations(hashes, 2)]
    assert min(distances) > K + 4  # measured: 17 at the closest of the 780 pairs


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_copies_of_a_sound_stay_within_k(seed):
    pcm = media.babble(seed)
    original = stored(media.encode(pcm, 16000, "wav"))
    rng = np.random.default_rng(seed)
    noise = rng.normal(0, np.sqrt(np.mean(pcm.astype(float) ** 2)) * 10 ** (-30 / 20), pcm.shape)
    copies = {
        "mp3": stored(media.encode(pcm, 16000, "mp3")),
        "opus at 48 kHz": stored(media.encode(np.repeat(media.babble(seed, rate=48000), 2, axis=1), 48000, "ogg")),
        "44.1 kHz stereo flac": stored(media.encode(np.repeat(media.babble(seed, rate=44100), 2, axis=1), 44100, "flac")),
        "8 kHz": stored(media.encode(media.babble(seed, rate=8000), 8000, "wav")),
        "-12 dB": stored(media.encode(np.round(pcm * 10 ** (-12 / 20)).astype(np.int16), 16000, "wav")),
        "padded with silence": stored(media.encode(np.concatenate([np.zeros((8000, 1), np.int16), pcm, np.zeros((3000, 1), np.int16)]), 16000, "wav")),
        "noise at 30 dB SNR": stored(media.encode(np.clip(pcm + noise, -32768, 32767).astype(np.int16), 16000, "wav")),
    }
    far = {name: both(original, h) for name, h in copies.items() if both(original, h) > K}
    assert far == {}


def test_kept_at_the_source_rate_hashes_like_resampled():
    """audio.sample_rate 0 stores the source's rate; the bands are in Hz, so the hashes agree."""
    data = media.encode(media.babble(3, rate=44100), 44100, "wav")
    assert both(stored(data), stored(data, sample_rate=0)) <= 2


def test_steady_sounds_get_no_signature():
    """Tones and a held chord: their pictures' rows are all alike, so they would all hash alike."""
    t = np.arange(32000) / 16000
    chord = np.round(3000 * sum(np.sin(2 * np.pi * f * t) for f in (220, 277, 330))).astype(np.int16)
    for pcm in [media.samples(1.0, freq=f)[:, 0] for f in (300, 500, 1000)] + [chord]:
        assert audio_hashes(pcm, 16000)["phash"] is None
    noise = np.random.default_rng(0).normal(0, 3000, 32000).astype(np.int16)  # changes all the time
    vibrato = np.round(8000 * np.sin(2 * np.pi * 440 * t + 3 * np.sin(2 * np.pi * 5 * t))).astype(np.int16)
    assert audio_hashes(noise, 16000)["phash"] is not None and audio_hashes(vibrato, 16000)["phash"] is not None


def test_no_signature_for_silence_or_less_than_a_window():
    assert audio_hashes(np.zeros(16000, np.int16), 16000)["phash"] is None
    assert audio_hashes(np.ones(100, np.int16), 16000) == {"phash": None, "dhash": None, "phash_mirror": None, "dhash_mirror": None}


def test_blockwise_transform_gives_the_same_picture(monkeypatch):
    """Hour-long audio is transformed in blocks of frames; the block size must not matter."""
    pcm = media.babble(5, seconds=6.0)[:, 0]
    whole = np.asarray(audio_hash.spectrogram_picture(pcm, 16000))
    monkeypatch.setattr(audio_hash, "_FRAMES_PER_BLOCK", 7)
    assert np.array_equal(np.asarray(audio_hash.spectrogram_picture(pcm, 16000)), whole)
    assert whole.shape == (whole.shape[0], audio_hash.MEL_BANDS) and whole.shape[0] > 500


def test_stereo_is_hashed_as_its_mono_mix():
    pcm = media.babble(6)
    stereo = np.repeat(pcm, 2, axis=1).reshape(-1)  # interleaved
    assert audio_hashes(stereo, 16000, channels=2) == audio_hashes(pcm[:, 0], 16000)


def test_no_signature_unless_asked():
    assert ProcessAudio(AudioConfig())(media.encode(media.babble(0), 16000, "wav")).hashes is None
