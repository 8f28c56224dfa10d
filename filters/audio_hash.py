"""Near-duplicate signature of a sound: the 64-bit pHash and dHash of its log-mel spectrogram
drawn as a picture (pure: numpy and imagehash, no I/O).

The picture has one row per 10 ms frame and one column per mel band (32 bands, 80 Hz to
3.6 kHz, where speech lives and where telephone and low-bitrate codecs keep the signal). Its
grey levels are decibels relative to the loudest band and frame, with the bottom `FLOOR_DB`
clipped, so the signature does not depend on volume or on quiet noise. Frames quieter than
`TRIM_DB` below the loudest frame are trimmed from both ends, so silence before and after
does not count. The picture then goes through the same hashing as images
(`near_dup.image_hashes`): pHash of its 32x32 box average (the whole duration in 32 rows),
dHash comparing neighbouring bands in 8 stretches of time.

What this finds: the same recording re-encoded (mp3, opus, flac), resampled (down to 8 kHz),
re-levelled, with silence padded or noise at 20 dB SNR and more. What it does not: excerpts
and shifted copies (the duration is stretched to the picture's height, so cutting 200 ms
of speech from the start moves every row), or the same words spoken again by someone else.
Measured on 1,010 distinct utterances (benchmarks/RESULTS.md): with both hashes within 8
bits, 99.5 % or more of every kind of re-encoded copy is found and no two distinct utterances
match; either hash alone falsely joins about 5 in 100,000 pairs, and most pairs of long
recordings of one voice (their band shape converges), so audio runs use `dedup.audio_hash: both`.

Why not a library: chromaprint (AcoustID) needs its C library and fpcalc binary, and its
fingerprints are variable-length sequences compared by alignment, not 64-bit hashes that
the pigeonhole search of the dedup stage can bucket. librosa would give the mel filterbank
in one call but brings numba and soxr for what is twenty lines of numpy here.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from mmcurate.filters.near_dup import image_hashes

FRAME_S = 0.025  # analysis window
HOP_S = 0.010  # one picture row per hop
MEL_BANDS = 32
FMIN_HZ, FMAX_HZ = 80.0, 3600.0  # the top: below the anti-alias roll-off of an 8 kHz copy (4 kHz missed one in 310)
FLOOR_DB = 30.0  # dynamic range kept below the loudest band (quieter is black)
TRIM_DB = 20.0  # leading/trailing frames this far below the loudest frame are silence
AUDIO_SIGNATURE = "mel32-picture-v3"  # names the recipe: staged audio signed otherwise is redone
# mean grey-level change over time below which a sound is steady: a held chord 0.35, a
# vibrato tone 2.3, white noise 9.7, the quietest-moving of 310 spoken sentences 15.5
STEADY_LEVELS = 2.0
_FRAMES_PER_BLOCK = 4096  # frames transformed at once: bounded memory on hour-long audio


def audio_hashes(pcm: np.ndarray, rate: int, channels: int = 1) -> dict[str, Optional[int]]:
    """pHash and dHash (64-bit ints) of interleaved int16 samples; all None when the sound
    is shorter than one analysis window, all zeros, or steady (`is_steady`)."""
    none = {"phash": None, "dhash": None, "phash_mirror": None, "dhash_mirror": None}
    picture = spectrogram_picture(pcm, rate, channels)
    if picture is None or is_steady(picture):
        return none
    return image_hashes(picture)


def is_steady(picture) -> bool:
    """A sound whose spectrum hardly changes (a test tone, a held chord, hum): in the 32x32
    picture pHash sees, its rows are all alike, so every such sound hashes nearly the same
    (distinct tones came out within 8 bits). It gets no signature; exact dedup still applies."""
    from PIL import Image

    square = np.asarray(picture.resize((32, 32), Image.Resampling.BOX), dtype=np.float64)
    return float(np.abs(square - square.mean(axis=0)).mean()) < STEADY_LEVELS


def spectrogram_picture(pcm: np.ndarray, rate: int, channels: int = 1):
    """The grey PIL picture the hashes are taken of (rows: time, columns: mel bands), or None."""
    from PIL import Image

    mono = np.asarray(pcm, dtype=np.float32).reshape(-1, channels).mean(axis=1) / 32768.0
    bands = _mel_energies(mono, rate)
    if bands is None:
        return None
    frame_db = 10 * np.log10(bands.sum(axis=1) + 1e-20)
    loud = np.flatnonzero(frame_db > frame_db.max() - TRIM_DB)
    db = 10 * np.log10(bands[loud[0]:loud[-1] + 1] + 1e-20)
    grey = np.clip(db - db.max() + FLOOR_DB, 0, FLOOR_DB) * (255 / FLOOR_DB)
    return Image.fromarray(np.round(grey).astype(np.uint8))


def _mel_energies(x: np.ndarray, rate: int) -> Optional[np.ndarray]:
    """Mel band power per frame, (frames, MEL_BANDS) float64; None when there is nothing to see."""
    frame, hop = round(FRAME_S * rate), round(HOP_S * rate)
    if len(x) < frame or not np.any(x):
        return None
    import scipy.fft  # imagehash's own dependency; unlike numpy's, it transforms float32 as float32
    import scipy.sparse

    nfft = 1 << (frame - 1).bit_length()
    # sparse (each bin feeds at most two bands) and, above all, not BLAS: OpenBLAS starts its
    # threads for this product, and in prepare's threads that oversubscription made an audio
    # run of 400 files about 35 % slower (benchmarks/RESULTS.md)
    bank = scipy.sparse.csr_matrix(_mel_bank(rate, nfft).astype(np.float32))
    window = np.hanning(frame).astype(np.float32)
    frames = np.lib.stride_tricks.sliding_window_view(x, frame)[::hop]  # a view: no copy per frame
    out = np.empty((len(frames), MEL_BANDS), dtype=np.float64)
    for start in range(0, len(frames), _FRAMES_PER_BLOCK):
        spectrum = scipy.fft.rfft(frames[start:start + _FRAMES_PER_BLOCK] * window, nfft)
        out[start:start + len(spectrum)] = (bank @ (spectrum.real ** 2 + spectrum.imag ** 2).T).T
    return out


def _mel_bank(rate: int, nfft: int) -> np.ndarray:
    """Triangular filters evenly spaced on the mel scale (HTK formula), (MEL_BANDS, nfft//2+1)."""
    def mel(f):
        return 2595.0 * np.log10(1.0 + f / 700.0)

    top = min(FMAX_HZ, rate / 2)
    edges = 700.0 * (10 ** (np.linspace(mel(FMIN_HZ), mel(top), MEL_BANDS + 2) / 2595.0) - 1.0)
    freqs = np.fft.rfftfreq(nfft, 1.0 / rate)
    low, centre, high = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising, falling = (freqs - low) / (centre - low), (high - freqs) / (high - centre)
    return np.clip(np.minimum(rising, falling), 0.0, None)
