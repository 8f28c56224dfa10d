"""Accuracy of the audio near-duplicate signature (filters/audio_hash.py).

    python benchmarks/bench_audio_near_dup.py [--utterances 1000] [--workdir benchmarks/_work/audio_near_dup]

Corpus: N distinct English sentences (Flickr8k captions from ../shared/data, at least 6 words,
each used once) spoken by espeak-ng (apt install espeak-ng) with 5 voices and speeds of 140 to
199 words per minute, plus the 10 real recordings in ../shared/data/audio. Generated wavs are
kept in the workdir and reused.

Every recording gets copies: mp3 at 32 kbit/s, opus at 24 kbit/s (via 48 kHz), an 8 kHz
telephone copy, -12 dB, 0.5 s of silence before and 0.3 s after, white noise at 30 and 20 dB
SNR, and the first 200 ms cut off. Each is decoded the way prepare decodes (16 kHz mono) and
hashed. Reported per copy kind: the share within k of its original (recall), for a hash kind
of phash, dhash, both (phash AND dhash within k: `dedup.audio_hash: both`, the default) and
either (OR). False pairs: pairs of distinct recordings within k. Long recordings: the
sentences of one voice joined into 30- and 60-second chapters, compared with each other. Hard
negatives: the first 50 sentences spoken again with another voice and speed, compared with
their first reading.
"""

from __future__ import annotations

import argparse
import csv
import glob
import io
import itertools
import os
import shutil
import subprocess
import sys
import time

import av
import numpy as np

from mmcurate.filters.audio import ProcessAudio
from mmcurate.filters.audio_hash import audio_hashes
from mmcurate.schemas.config import AudioConfig

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tests import audio_media as media  # noqa: E402  (the test helpers: encode, decode_mono)

SHARED = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")
VOICES = ("en", "en-us", "en+f3", "en+m3", "en-gb-x-rp")
RATE = 16000
KS = (6, 8, 10)
HARD_NEGATIVES = 50


def sentences(n: int) -> list[str]:
    with open(os.path.join(SHARED, "flickr8k", "captions.txt"), encoding="utf-8") as f:
        rows = list(csv.reader(f))[1:]
    seen, out = set(), []
    for _, caption in rows:
        caption = caption.strip()
        if caption not in seen and len(caption.split()) >= 6:
            seen.add(caption)
            out.append(caption)
    np.random.default_rng(0).shuffle(out)
    if len(out) < n:
        sys.exit(f"only {len(out)} distinct captions; ask for fewer --utterances")
    return out[:n]


def speak(text: str, voice: str, speed: int, path: str) -> None:
    if not os.path.exists(path):
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", path, text], check=True)


_DECODER = ProcessAudio(AudioConfig())


def decode(data: bytes) -> np.ndarray:
    """As prepare decodes: 16 kHz mono int16 (no FLAC encode: only the hashes matter here)."""
    with av.open(io.BytesIO(data)) as c:
        return _DECODER._decode(c).pcm


def resample(pcm: np.ndarray, src: int, dst: int) -> np.ndarray:
    """Mono int16 samples at src Hz -> at dst Hz (libswresample, as prepare resamples)."""
    return media.decode_mono(media.encode(pcm[:, None], src, "wav"), dst)[:, 0]


def with_noise(pcm: np.ndarray, snr_db: float, rng) -> np.ndarray:
    x = pcm.astype(float)
    noise = rng.normal(0, np.sqrt(np.mean(x ** 2)) * 10 ** (-snr_db / 20), len(x))
    return np.clip(np.round(x + noise), -32768, 32767).astype(np.int16)


def copies(pcm: np.ndarray, rng) -> dict[str, np.ndarray]:
    return {
        "mp3 32 kbit/s": decode(media.encode(pcm[:, None], RATE, "mp3", bit_rate=32000)),
        "opus 24 kbit/s": decode(media.encode(resample(pcm, RATE, 48000)[:, None], 48000, "ogg", bit_rate=24000)),
        "8 kHz telephone": decode(media.encode(resample(pcm, RATE, 8000)[:, None], 8000, "wav")),
        "-12 dB": np.round(pcm * 10 ** (-12 / 20)).astype(np.int16),
        "silence padded": np.concatenate([np.zeros(RATE // 2, np.int16), pcm, np.zeros(RATE * 3 // 10, np.int16)]),
        "noise 30 dB SNR": with_noise(pcm, 30, rng),
        "noise 20 dB SNR": with_noise(pcm, 20, rng),
        "first 200 ms cut": pcm[RATE // 5:],
    }


def distances(a: dict, b: dict) -> tuple[int, int]:
    return (a["phash"] ^ b["phash"]).bit_count(), (a["dhash"] ^ b["dhash"]).bit_count()


def pairwise(hashes: list[dict], kind: str) -> np.ndarray:
    """Hamming distances of every pair (upper triangle), rows in blocks to bound memory."""
    values = np.array([h[kind] for h in hashes], dtype=np.uint64)
    out = []
    for start in range(0, len(values), 256):
        x = values[start:start + 256, None] ^ values[None, :]
        d = np.unpackbits(x.view(np.uint8).reshape(x.shape + (8,)), axis=-1).sum(-1)
        rows = np.arange(start, min(start + 256, len(values)))
        out.append(d[np.arange(len(values))[None, :] > rows[:, None]])
    return np.concatenate(out)


def combine(p: np.ndarray, d: np.ndarray) -> dict[str, np.ndarray]:
    return {"phash": p, "dhash": d, "both": np.maximum(p, d), "either": np.minimum(p, d)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--utterances", type=int, default=1000)
    ap.add_argument("--workdir", default="benchmarks/_work/audio_near_dup")
    args = ap.parse_args()
    if not os.path.isdir(SHARED):
        sys.exit(f"{SHARED} is absent: this benchmark needs ../shared/data (captions and real speech)")
    if shutil.which("espeak-ng") is None:
        sys.exit("espeak-ng is not installed: apt-get install espeak-ng")
    os.makedirs(args.workdir, exist_ok=True)

    texts = sentences(args.utterances)
    paths = []
    for i, text in enumerate(texts):
        paths.append(os.path.join(args.workdir, f"s{i:05d}.wav"))
        speak(text, VOICES[i % len(VOICES)], 140 + (i * 7) % 60, paths[-1])
    paths += sorted(glob.glob(os.path.join(SHARED, "audio", "*", "*.wav")))
    again = []
    for i, text in enumerate(texts[:HARD_NEGATIVES]):
        again.append(os.path.join(args.workdir, f"again{i:05d}.wav"))
        speak(text, VOICES[(i + 2) % len(VOICES)], 150 + (i * 11) % 50, again[-1])

    def read(path):
        with open(path, "rb") as f:
            return decode(f.read())

    pcms = [read(p) for p in paths]
    seconds = sum(len(p) for p in pcms) / RATE
    start = time.perf_counter()
    hashes = [audio_hashes(p, RATE) for p in pcms]
    elapsed = time.perf_counter() - start
    print(f"{len(pcms)} recordings ({len(texts)} spoken by espeak-ng, {len(pcms) - len(texts)} real), {seconds:.0f} s of audio; "
          f"hashing {len(pcms) / elapsed:.0f} files/s = {seconds / elapsed:.0f} audio-s per s (one core)")

    rng = np.random.default_rng(0)
    recall: dict[str, dict[str, list[int]]] = {}
    for pcm, original in zip(pcms, hashes):
        for name, copy in copies(pcm, rng).items():
            p, d = distances(original, audio_hashes(copy, RATE))
            for kind, x in combine(np.array([p]), np.array([d])).items():
                recall.setdefault(name, {}).setdefault(kind, []).append(int(x[0]))
    print(f"\nrecall: copies within k of their original (of {len(pcms)} each)")
    print("| copy | " + " | ".join(f"{kind} k={k}" for kind in ("both", "either") for k in KS) + " | phash k=8 | dhash k=8 |")
    print("|---|" + "---:|" * (2 * len(KS) + 2))
    for name, per in recall.items():
        cells = [f"{np.mean(np.array(per[kind]) <= k):.3f}" for kind in ("both", "either") for k in KS]
        cells += [f"{np.mean(np.array(per[kind]) <= 8):.3f}" for kind in ("phash", "dhash")]
        print(f"| {name} | " + " | ".join(cells) + " |")

    false = combine(pairwise(hashes, "phash"), pairwise(hashes, "dhash"))
    print(f"\nfalse pairs: distinct recordings within k (of {len(false['both']):,} pairs)")
    print("| kind | " + " | ".join(f"k={k}" for k in KS) + " | closest |")
    print("|---|" + "---:|" * (len(KS) + 1))
    for kind, x in false.items():
        print(f"| {kind} | " + " | ".join(f"{int((x <= k).sum())}" for k in KS) + f" | {int(x.min())} |")

    # long recordings of one voice: over minutes the band shape converges to the speaker's
    # average spectrum, so dHash alone stops telling chapters apart
    one_voice = [p for i, p in enumerate(pcms[: len(texts)]) if i % len(VOICES) == 0]
    for seconds in (30, 60):
        chapters, current = [], []
        for p in one_voice:
            current.append(p)
            if sum(map(len, current)) >= seconds * RATE:
                chapters.append(audio_hashes(np.concatenate(current), RATE))
                current = []
        if len(chapters) > 1:
            pairs = [distances(a, b) for a, b in itertools.combinations(chapters, 2)]
            b, e = [max(x) for x in pairs], [min(x) for x in pairs]
            print(f"\nlong recordings, one voice: {len(chapters)} chapters of {seconds} s ({len(pairs)} pairs): closest under both {min(b)} bits "
                  f"(within k=8: {sum(x <= 8 for x in b)}), under either {min(e)} (within k=8: {sum(x <= 8 for x in e)})")

    hard = [distances(hashes[i], audio_hashes(read(p), RATE)) for i, p in enumerate(again)]
    both = np.array([max(h) for h in hard])
    print(f"\nhard negatives: the same sentence, another espeak voice and speed ({len(hard)}): "
          f"within k=8 on both hashes {int((both <= 8).sum())}, median distance {np.median(both):.0f}")


if __name__ == "__main__":
    main()
