"""What prepare does with damaged audio files: kept, kept with silence where packets were lost,
or refused with which reason; and how much audio a kept file silently lost.

    python benchmarks/bench_audio_damage.py [--seed 0]

Source: the 10 real recordings in ../shared/data/audio (16 kHz speech) joined into one of
34 s, or 34 s of generated speech-like babble when ../shared is absent. It is encoded with PyAV
as wav, flac, mp3 (with its Xing/Info frame), ogg/opus, m4a (aac, moov first) and mkv (aac),
then damaged in 10 ways per kind, at 10 places spread over the file's 10-90 %:

- `cut`: the file ends at that place (a download or copy cut short);
- `8 B spoilt`, `512 B spoilt`: random bytes written over (flipped bits, a bad disk sector);
- `1460 B lost`: bytes removed (a lost TCP segment spliced over).

Each is decoded the way prepare decodes (filters/audio.py, default settings: 16 kHz mono). A
kept file whose stored audio is more than 0.01 s shorter than the undamaged file's, with no
`audio_gap` recorded, lost audio silently: its transcript no longer lines up.
"""

from __future__ import annotations

import argparse
import collections
import glob
import os
import shutil
import tempfile
from fractions import Fraction

import av
import numpy as np

from mmcurate.filters.audio import AudioRejected, ProcessAudio
from mmcurate.schemas.config import AudioConfig

SHARED_AUDIO = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "audio")
FORMATS = {  # name -> (container format, codec, container options)
    "wav": ("wav", "pcm_s16le", {}), "flac": ("flac", "flac", {}), "mp3": ("mp3", "libmp3lame", {}),
    "ogg/opus": ("ogg", "libopus", {}), "m4a (aac)": ("mp4", "aac", {"movflags": "faststart"}),
    "mkv (aac)": ("matroska", "aac", {}),
}
DAMAGES = ("cut", "8 B spoilt", "512 B spoilt", "1460 B lost")
PLACES = np.linspace(0.1, 0.9, 10)
SILENT_LOSS = 0.01  # seconds (against the undamaged file of the same format: encoder padding cancels)


def recording() -> np.ndarray:
    """16 kHz mono int16 speech."""
    paths = sorted(glob.glob(os.path.join(SHARED_AUDIO, "*", "*.wav")))
    if not paths:
        from tests.audio_media import babble  # no ../shared: generated speech-like sound
        return babble(0, 34.0)[:, 0]
    parts = []
    for p in paths:
        with av.open(p) as c:
            s16 = av.AudioResampler(format="s16", layout="mono", rate=16000)
            parts += [o.to_ndarray().reshape(-1) for f in c.decode(audio=0) for o in s16.resample(f)]
    return np.concatenate(parts)


def encode(pcm: np.ndarray, fmt: str, workdir: str) -> bytes:
    container_format, codec, options = FORMATS[fmt]
    rate = 48000 if codec == "libopus" else 16000
    out = os.path.join(workdir, "encoded")  # a file: moving the moov box first reopens it
    with av.open(out, "w", format=container_format, options=options) as c:
        stream = c.add_stream(codec, rate=rate, layout="mono")
        resample = av.AudioResampler(format=stream.codec_context.format.name, layout="mono", rate=rate)
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = 16000, 0, Fraction(1, 16000)
        for f in resample.resample(frame) + resample.resample(None):
            c.mux(stream.encode(f))
        c.mux(stream.encode(None))
    with open(out, "rb") as f:
        return f.read()


def damage(data: bytes, kind: str, place: float, rng: np.random.Generator) -> bytes:
    at = int(len(data) * place)
    if kind == "cut":
        return data[:at]
    n = int(kind.split()[0])
    if kind.endswith("lost"):
        return data[:at] + data[at + n:]
    return data[:at] + rng.integers(0, 256, n, dtype=np.uint8).tobytes() + data[at + n:]


def outcome(process: ProcessAudio, data: bytes, whole_s: float) -> str:
    try:
        r = process(data)
    except AudioRejected as e:
        return e.verdict.reason
    gap = getattr(r, "gap_s", 0.0)
    if gap:
        return "kept, audio_gap recorded"
    if r.duration_s < whole_s - SILENT_LOSS:
        return "kept, audio silently lost"
    return "kept whole"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=0, help="for the spoilt bytes")
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    process = ProcessAudio(AudioConfig())
    pcm = recording()
    print(f"one recording of {len(pcm) / 16000:.1f} s; {len(PLACES)} places per damage")
    table: dict[tuple[str, str], collections.Counter] = collections.defaultdict(collections.Counter)
    workdir = tempfile.mkdtemp(prefix="bench_audio_damage_")
    for fmt in FORMATS:
        data = encode(pcm, fmt, workdir)
        whole = process(data)
        whole_s = whole.duration_s
        print(f"undamaged {fmt}: kept, {whole_s:.3f} s, audio_gap {getattr(whole, 'gap_s', 0.0)}")
        for kind in DAMAGES:
            for place in PLACES:
                table[fmt, kind][outcome(process, damage(data, kind, place, rng), whole_s)] += 1
    print("| format | " + " | ".join(DAMAGES) + " |")
    print("|---|" + "---|" * len(DAMAGES))
    for fmt in FORMATS:
        cells = ["; ".join(f"{what} {n}" for what, n in sorted(table[fmt, kind].items())) for kind in DAMAGES]
        print(f"| {fmt} | " + " | ".join(cells) + " |")
    totals = collections.Counter()
    for counts in table.values():
        totals.update(counts)
    print("totals:", dict(sorted(totals.items())))
    shutil.rmtree(workdir)


if __name__ == "__main__":
    main()
