"""Audio end to end on generated files: a folder with sidecars and a Sphinx transcription,
every rejection its own reason, decoded-PCM dedup, a table with --audio-col; and real speech."""

from __future__ import annotations

import glob
import io
import json
import os
import re

import av
import numpy as np
import pytest

from tests import audio_media as am
from tests.util import by_key, run_cli, samples, shard_bytes, stats, write

COMMON = ("--workers", "2", "--no-progress", "--set", "output.splits=train=1.0")


def _decode(data: bytes) -> tuple[int, int, int]:
    """(rate, channels, samples per channel) of an audio file."""
    with av.open(io.BytesIO(data)) as c:
        stream = c.streams.audio[0]
        n = sum(frame.samples for frame in c.decode(stream))
        return stream.rate, stream.channels, n


@pytest.fixture(scope="module")
def speech(tmp_path_factory):
    root = tmp_path_factory.mktemp("speech") / "in"
    tone = am.samples(2.0, 44100, 2)
    write(root / "a.wav", am.encode(tone, 44100, "wav"))
    write(root / "a.txt", "a tone at four hundred and forty hertz")
    write(root / "b.flac", am.encode(tone, 44100, "flac"))  # the same sound: an exact duplicate of a
    write(root / "b.txt", "the same tone stored losslessly")
    write(root / "c.mp3", am.tone(1.5, 16000, 1, freq=660.0, fmt="mp3"))  # text from the transcription file
    write(root / "d.wav", am.silence(2.0))
    write(root / "d.txt", "nothing to hear here")
    write(root / "e.wav", am.zero_length("wav"))
    write(root / "e.txt", "no samples at all")
    write(root / "f.wav", am.garbage())
    write(root / "f.txt", "not audio")
    write(root / "g.wav", am.tone(0.2))
    write(root / "g.txt", "far too short")
    write(root / "h.wav", am.tone(1.0, freq=550.0))  # no text anywhere
    write(root / "i.ogg", am.no_audio_stream())
    write(root / "i.txt", "a video without sound")
    write(root / "j.wav", am.tone(1.0, channels=6, freq=330.0))
    write(root / "j.txt", "six channels")
    write(root / "k.m4a", am.remuxed(drop=(20,), freq=1000.0, container="mp4"))  # one AAC packet lost: 64 ms of silence in its place
    write(root / "k.txt", "a tone with a packet lost")
    write(root / "l.flac", am.truncated(am.tone(2.0, 44100, fmt="flac", freq=770.0), 0.6))
    write(root / "l.txt", "a download cut short")
    write(root / "m.m4a", am.remuxed(drop=tuple(range(20, 25)), freq=880.0, container="mp4"))  # 0.32 s lost
    write(root / "m.txt", "too much of it lost")
    write(root / "transcription", "<s> c read from a sphinx transcription </s> (c)\n"
                                  "garbage line without an id\n"
                                  "<s> a transcript with no audio </s> (zz)\n")
    return root


def test_audio_folder_reasons_pcm_dedup_and_members(speech, tmp_path):
    out = tmp_path / "out"
    assert run_cli("run", speech, "--format", "audio", "-o", out, *COMMON, "--set", "audio.max_channels=2") == 0
    rows = by_key(out)
    reasons = {k: r["reason"] for k, r in rows.items() if not k.startswith("bad_")}
    assert reasons == {
        "a": "", "b": "duplicate.exact_audio", "c": "", "d": "audio.silent", "e": "audio.empty", "f": "audio.decode_error",
        "g": "audio.too_short", "h": "input.missing_caption", "i": "audio.no_audio_stream", "j": "audio.channels",
        "k": "", "l": "audio.truncated", "m": "audio.corrupt", "zz": "align.missing_audio",
    }
    assert rows["b"]["dup_of"] == "a" and rows["b"]["sha256"] == rows["a"]["sha256"]
    assert [r["reason"] for k, r in rows.items() if k.startswith("bad_")] == ["input.bad_row"]
    s = stats(out)
    assert s["identity_ok"] and s["inputs"] == 15 and s["kept"] == 3
    assert "skipped_cues" not in s
    assert s["failed"] == {"audio.decode_error": 1, "audio.truncated": 1, "audio.corrupt": 1, "input.bad_row": 1}
    assert s["distributions"]["duration_s"]["count"] == 3

    got = {x["__key__"]: x for x in samples(out)}
    assert sorted(got) == ["a", "c", "k"]
    assert json.loads(got["k"]["json"])["audio_gap"] == 0.064 and "audio_gap" not in json.loads(got["a"]["json"])
    assert _decode(got["k"]["flac"]) == (16000, 1, 2048 * 16)  # as long as the source: silence where the packet was
    assert sorted(k for k in got["a"] if not k.startswith("__")) == ["flac", "json", "txt"]
    assert _decode(got["a"]["flac"]) == (16000, 1, 32000)
    assert got["a"]["txt"].decode() == "a tone at four hundred and forty hertz"
    assert got["c"]["txt"].decode() == "c read from a sphinx transcription"
    doc = json.loads(got["a"]["json"])
    assert (doc["modality"], doc["duration"], doc["sample_rate"], doc["channels"]) == ("audio", 2.0, 16000, 1)
    assert (doc["original_sample_rate"], doc["original_channels"], doc["original_codec"]) == (44100, 2, "pcm_s16le")
    assert doc["original_bit_rate"] == 44100 * 2 * 16
    rate, channels, n = _decode(got["c"]["flac"])
    assert (rate, channels) == (16000, 1) and doc["source"].endswith("a.wav")
    assert json.loads(got["c"]["json"])["duration"] == pytest.approx(n / 16000, abs=1e-6)
    assert abs(n / 16000 - 1.5) < 0.06  # mp3 encoder padding

    assert run_cli("validate", out) == 0
    # inspect and report draw audio as its waveform
    assert run_cli("inspect", out, "-o", tmp_path / "sheet.png", "--n", "2", "--cols", "2", "--tile", "128") == 0
    assert run_cli("report", out, "-o", tmp_path / "report.html") == 0
    assert (tmp_path / "report.html").read_text().count("data:image/jpeg;base64,") == 3  # the gallery: a, c and k

    again = tmp_path / "again"
    assert run_cli("run", speech, "--format", "audio", "-o", again, *COMMON, "--set", "audio.max_channels=2") == 0
    assert shard_bytes(again) == shard_bytes(out)


def test_audio_table_with_audio_col(speech, tmp_path):
    write(tmp_path / "speech.tsv", f"file\tsentence\n{speech / 'a.wav'}\tfrom a table\n{speech / 'c.mp3'}\tmp3 from a table\n")
    out = tmp_path / "out"
    assert run_cli("run", tmp_path / "speech.tsv", "--audio-col", "file", "--caption-col", "sentence", "-o", out, *COMMON) == 0
    got = {x["__key__"]: x for x in samples(out)}
    assert {k: v["txt"].decode() for k, v in got.items()} == {"00000_000000000": "from a table", "00000_000000001": "mp3 from a table"}
    assert all(_decode(v["flac"])[:2] == (16000, 1) for v in got.values())


def test_near_duplicate_sounds_are_dropped_for_their_original(tmp_path):
    """Speech-like sounds and copies of them (mp3; quieter flac padded with silence; made at
    8 kHz; an mp3 at 32 and at 128 kbit/s): each copy is dropped as `duplicate.near_audio` of
    its original, which survives as the higher source rate (a_phone), the lossless source
    (u0_copy.mp3) or the higher bit rate (m_low)."""
    root = tmp_path / "in"
    for seed in range(4):
        write(root / f"u{seed}.wav", am.encode(am.babble(seed), 16000, "wav"))
    write(root / "u0_copy.mp3", am.encode(am.babble(0), 16000, "mp3"))
    quiet = np.concatenate([np.zeros((8000, 1), np.int16), np.round(am.babble(1) * 0.25).astype(np.int16)])
    write(root / "u1_quiet.flac", am.encode(quiet, 16000, "flac"))
    write(root / "u2_8k.wav", am.encode(am.babble(2, rate=8000), 8000, "wav"))
    write(root / "a_phone.wav", am.encode(am.babble(3, rate=8000), 8000, "wav"))  # the smaller key, but 8 kHz: u3 survives
    write(root / "m_low.mp3", am.encode(am.babble(4), 16000, "mp3", bit_rate=32000))  # the smaller key, but 32 kbit/s
    write(root / "n_high.mp3", am.encode(am.babble(4), 16000, "mp3", bit_rate=128000))
    for name in ("u0", "u1", "u2", "u3", "u0_copy", "u1_quiet", "u2_8k", "a_phone", "m_low", "n_high"):
        write(root / f"{name}.txt", f"utterance {name.replace('_', ' ')}")

    out = tmp_path / "out"
    assert run_cli("run", root, "--format", "audio", "-o", out, *COMMON) == 0
    rows = by_key(out)
    assert {k: (r["reason"], r["dup_of"]) for k, r in rows.items()} == {
        "u0": ("", ""), "u1": ("", ""), "u2": ("", ""), "u3": ("", ""),
        "u0_copy": ("duplicate.near_audio", "u0"), "u1_quiet": ("duplicate.near_audio", "u1"), "u2_8k": ("duplicate.near_audio", "u2"),
        "a_phone": ("duplicate.near_audio", "u3"), "n_high": ("", ""), "m_low": ("duplicate.near_audio", "n_high"),
    }
    assert all(0 <= rows[k]["dup_distance"] <= 8 for k in ("u0_copy", "u1_quiet", "u2_8k", "a_phone"))
    assert all(isinstance(r["phash"], int) and isinstance(r["dhash"], int) for r in rows.values())
    s = stats(out)
    assert s["identity_ok"] and s["kept"] == 5 and s["dropped"] == {"duplicate.near_audio": 5}
    assert sorted(x["__key__"] for x in samples(out)) == ["n_high", "u0", "u1", "u2", "u3"]
    assert run_cli("validate", out) == 0

    exact = tmp_path / "exact"  # the same folder without near-dup removal keeps every sound
    assert run_cli("run", root, "--format", "audio", "-o", exact, *COMMON, "--dedup", "exact") == 0
    assert stats(exact)["kept"] == 10 and all(r["phash"] is None for r in by_key(exact).values())


@pytest.mark.skipif(not os.path.isdir(os.path.join(os.path.dirname(__file__), "../../../shared/data/audio")), reason="../shared/data/audio is absent")
def test_real_speech_with_sphinx_transcriptions(tmp_path):
    """The ten real recordings, and of each a 32 kbit/s mp3 and an 8 kHz copy: the recordings
    are all kept (none is a near-duplicate of another), every copy is dropped for its own."""
    shared = os.path.join(os.path.dirname(__file__), "../../../shared/data/audio")
    copies = tmp_path / "copies"
    originals = sorted(glob.glob(os.path.join(shared, "*", "*.wav")))
    for path in originals:
        name = os.path.basename(path)[:-4]
        with open(path, "rb") as f:
            data = f.read()
        write(copies / f"{name}_mp3.mp3", am.encode(am.decode_mono(data, 16000), 16000, "mp3", bit_rate=32000))
        write(copies / f"{name}_8k.wav", am.encode(am.decode_mono(data, 8000), 8000, "wav"))
        write(copies / f"{name}_mp3.txt", "a lossy copy")
        write(copies / f"{name}_8k.txt", "a telephone copy")
    out = tmp_path / "out"
    assert run_cli("run", os.path.join(shared, "librivox"), os.path.join(shared, "cards"), copies, "--format", "audio", "-o", out, *COMMON) == 0
    s = stats(out)
    assert s["identity_ok"] and s["kept"] == 10 and s["inputs"] == 30 and s["dropped"] == {"duplicate.near_audio": 20}
    rows = by_key(out)
    assert {k: r["dup_of"] for k, r in rows.items() if r["reason"]} == {
        f"{os.path.basename(p)[:-4]}_{kind}": os.path.basename(p)[:-4] for p in originals for kind in ("mp3", "8k")
    }
    got = {x["__key__"]: x for x in samples(out)}
    assert got["sense_and_sensibility_01_austen_64kb-0880"]["txt"].decode() == "he was not an ill disposed young man"
    assert got["001"]["txt"].decode() == "ten of clubs"
    for sample in got.values():
        rate, channels, n = _decode(sample["flac"])
        doc = json.loads(sample["json"])
        assert (rate, channels) == (16000, 1) and doc["duration"] == pytest.approx(n / 16000, abs=1e-6) and n > 8000
        assert np.isfinite(doc["duration"])


SPEECH_SRT = """1
00:00:00,500 --> 00:00:02,000
hello there, this is the first cue

2
00:00:02,200 --> 00:00:03,000
and this one follows it closely

3
00:00:03,x00 --> 00:00:03,400
a cue with a broken time

4
00:00:03,600 --> 00:00:04,000
far too short to keep

5
00:00:04,500 --> 00:00:05,800
spoken where there is only silence

6
00:00:07,000 --> 00:00:08,000
past the end of the file
"""


def test_audio_with_subtitles_is_cut_at_its_cues(tmp_path):
    """a.wav + a.srt (yt-dlp writes a.en.vtt beside a podcast's audio): it was one sample with
    no text (the .srt an ignored file). Now every cue group is a clip with its text, cut from
    the decoded PCM to the sample; malformed cues are named, short and silent clips dropped."""
    root = tmp_path / "in"
    pcm = np.concatenate([am.samples(4.2, 16000, 1, freq=310.0), np.zeros((round(1.8 * 16000), 1), np.int16)])
    write(root / "a.wav", am.encode(pcm, 16000, "wav"))
    write(root / "a.srt", SPEECH_SRT)
    write(root / "a.txt", "the whole file's text: not used once it is cut")
    write(root / "b.flac", am.tone(2.0, freq=500.0, fmt="flac"))
    write(root / "b.srt", "1\nnot a timing line\nwords\n")
    write(root / "c.wav", am.tone(2.0, freq=600.0))
    write(root / "c.en.vtt", "WEBVTT\n\n00:00:05.000 --> 00:00:06.000\nafter the end of the audio\n")
    write(root / "d.wav", am.tone(2.0, freq=700.0))
    write(root / "d.txt", "an uncut file keeps its key")

    out = tmp_path / "out"
    args = ("run", root, "--format", "audio", "-o", out, *COMMON, "--set", "audio.max_clip=2.0")
    assert run_cli(*args) == 0
    rows = by_key(out)
    assert {k: r["reason"] for k, r in rows.items()} == {
        "a_0000": "", "a_0001": "", "a_0002": "audio.clip_too_short", "a_0003": "audio.clip_silent",
        "b": "audio.bad_subtitles", "c": "audio.no_cues", "d": "",
    }
    assert rows["b"]["error"].startswith(f"{root / 'b.srt'}: line 2")
    assert rows["c"]["error"] == "no cue inside the audio's 2.000 s"
    s = stats(out)
    assert s["identity_ok"] and (s["inputs"], s["kept"]) == (7, 3)  # rows are clips: a's four, b, c, d
    assert s["dropped"] == {"audio.clip_too_short": 1, "audio.clip_silent": 1, "audio.no_cues": 1}
    assert s["failed"] == {"audio.bad_subtitles": 1}
    assert s["skipped_cues"] == s["cues_outside"] == {"cues": 1, "files": 1}  # counted once for a, not per clip
    assert s["ignored_files"] == 1  # a.txt: the clips' texts are their cues'

    got = {x["__key__"]: x for x in samples(out)}
    assert sorted(got) == ["a_0000", "a_0001", "d"]
    text = "hello there, this is the first cue and this one follows it closely"  # cues 1-2 merged (0.2 s apart)
    assert got["a_0000"]["txt"].decode() == got["a_0001"]["txt"].decode() == text
    # 0.5-3.0 s is longer than audio.max_clip (2 s): two equal parts, each the source's samples exactly
    for key, (start, end) in (("a_0000", (0.5, 1.75)), ("a_0001", (1.75, 3.0))):
        doc = json.loads(got[key]["json"])
        assert (doc["start"], doc["end"], doc["duration"], doc["source_duration"]) == (start, end, end - start, 6.0)
        assert (doc["skipped_cues"], doc["subtitle_errors"]) == (1, ['line 10: bad timestamp "00:00:03,x00"'])
        assert doc["cues_outside"] == 1  # the last cue starts after the audio's 6 s: no clip, but named
        clip = am.decode_mono(got[key]["flac"], 16000)
        assert np.array_equal(clip[:, 0], pcm[round(start * 16000):round(end * 16000), 0])
    assert got["d"]["txt"].decode() == "an uncut file keeps its key" and "clip" not in json.loads(got["d"]["json"])
    assert run_cli("validate", out) == 0

    again = tmp_path / "again"
    assert run_cli(*args[:5], again, *args[6:], "--keep-staging") == 0
    assert shard_bytes(again) == shard_bytes(out)

    # b's subtitles mended: --retry-failed cuts b again and reuses a's staged clips (a.wav is
    # spoilt meanwhile: decoding it again would fail it); the shards are those of a first run
    # over the mended folder
    write(root / "b.srt", "1\n00:00:00,250 --> 00:00:01,750\nthe mended cue\n")
    write(root / "a.wav", am.garbage())
    assert run_cli(*args[:5], again, *args[6:], "--retry-failed", "--keep-staging") == 0
    retried = by_key(again)
    assert {k: r["reason"] for k, r in retried.items() if k[0] in "ab"} == {
        "a_0000": "", "a_0001": "", "a_0002": "audio.clip_too_short", "a_0003": "audio.clip_silent", "b_0000": ""}
    write(root / "a.wav", am.encode(pcm, 16000, "wav"))
    fresh = tmp_path / "fresh"
    assert run_cli(*args[:5], fresh, *args[6:]) == 0
    assert shard_bytes(again) == shard_bytes(fresh) and retried == by_key(fresh)


def _srt_time(ms: int) -> str:
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"


@pytest.mark.skipif(not os.path.isdir(os.path.join(os.path.dirname(__file__), "../../../shared/data/audio")), reason="../shared/data/audio is absent")
def test_real_speech_chapter_with_subtitles_gives_back_each_sentence(tmp_path):
    """The five LibriVox sentences read one after another as one chapter, a second of silence
    between them, with an .srt of their transcripts: five clips, each its sentence's samples
    to the sample (then the silence up to the cue's end, rounded up to a millisecond)."""
    shared = os.path.join(os.path.dirname(__file__), "../../../shared/data/audio/librivox")
    with open(os.path.join(shared, "transcription"), encoding="utf-8") as f:
        texts = {ident: text for text, ident in re.findall(r"<s> (.*?) </s> \((\S+)\)", f.read())}
    parts, cues, at = [], [], 0
    for n, ident in enumerate(sorted(texts)):
        with open(os.path.join(shared, ident + ".wav"), "rb") as f:
            sentence = am.decode_mono(f.read(), 16000)[:, 0]
        start_ms, end_ms = at // 16, -(-(at + len(sentence)) // 16)  # 16 samples a millisecond
        cues.append(f"{n + 1}\n{_srt_time(start_ms)} --> {_srt_time(end_ms)}\n{texts[ident]}\n")
        parts += [sentence, np.zeros(end_ms * 16 - at - len(sentence) + 16000, np.int16)]  # to the ms, then a second
        at = end_ms * 16 + 16000
    chapter = np.concatenate(parts)
    write(tmp_path / "in" / "chapter.wav", am.encode(chapter[:, None], 16000, "wav"))
    write(tmp_path / "in" / "chapter.srt", "\n".join(cues))

    out = tmp_path / "out"
    assert run_cli("run", tmp_path / "in", "--format", "audio", "-o", out, *COMMON) == 0
    s = stats(out)
    assert s["identity_ok"] and (s["inputs"], s["kept"]) == (5, 5)
    got = {x["__key__"]: x for x in samples(out)}
    assert sorted(got) == [f"chapter_{i:04d}" for i in range(5)]
    for i, ident in enumerate(sorted(texts)):
        with open(os.path.join(shared, ident + ".wav"), "rb") as f:
            sentence = am.decode_mono(f.read(), 16000)[:, 0]
        clip = am.decode_mono(got[f"chapter_{i:04d}"]["flac"], 16000)[:, 0]
        assert got[f"chapter_{i:04d}"]["txt"].decode() == texts[ident]
        assert np.array_equal(clip[:len(sentence)], sentence) and not clip[len(sentence):].any() and len(clip) - len(sentence) < 16


def test_audio_table_with_clip_spans(tmp_path):
    """--clips-col with --audio-col (was refused: video only): a list of spans per file with a
    caption each, or START,END columns giving one segment a row (GigaSpeech-style manifests);
    each span cut as given from the decoded PCM, with its own text."""
    pcm = am.babble(7, 4.0)
    write(tmp_path / "talk.wav", am.encode(pcm, 16000, "wav"))
    rows = [{"file": "talk.wav", "spans": [[0.5, 1.75], [2.0, 2.4], [5.0, 6.0]], "text": ["the first span", "too short", "after the end"]},
            {"file": "talk.wav", "spans": [], "text": "no span at all"}]
    write(tmp_path / "spans.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out"
    assert run_cli("run", tmp_path / "spans.jsonl", "--audio-col", "file", "--clips-col", "spans", "--caption-col", "text", "-o", out, *COMMON) == 0
    assert {k: (r["reason"], r["caption"]) for k, r in by_key(out).items()} == {
        "00000_000000000_0000": ("", "the first span"), "00000_000000000_0001": ("audio.clip_too_short", "too short"),
        "00000_000000000_0002": ("audio.clip_outside", "after the end"), "00000_000000001": ("audio.no_cues", "no span at all"),
    }
    (got,) = samples(out)
    assert np.array_equal(am.decode_mono(got["flac"], 16000)[:, 0], pcm[8000:28000, 0])
    assert (json.loads(got["json"])["start"], json.loads(got["json"])["end"]) == (0.5, 1.75)

    write(tmp_path / "segments.tsv", "audio\tbegin_time\tend_time\ttext\ntalk.wav\t0.25\t1.5\tone segment\ntalk.wav\t1.5\t3.0\tthe next one\n")
    seg = tmp_path / "seg"
    assert run_cli("run", tmp_path / "segments.tsv", "--audio-col", "audio", "--clips-col", "begin_time,end_time", "--caption-col", "text",
                   "-o", seg, *COMMON) == 0
    got = {x["__key__"]: x for x in samples(seg)}
    assert {k: v["txt"].decode() for k, v in got.items()} == {"00000_000000000_0000": "one segment", "00000_000000001_0000": "the next one"}
    assert np.array_equal(am.decode_mono(got["00000_000000001_0000"]["flac"], 16000)[:, 0], pcm[24000:48000, 0])


def test_segment_rows_of_one_file_share_its_decode(tmp_path):
    """A GigaSpeech-style table names each recording once per segment, rows of several files
    interleaved (output.shard_size 4): each file is decoded once (shared_media.py, chunks.py),
    and every segment comes out as it did with a decode per row: the exact samples, its own
    text; a file that fails to decode drops each of its rows with the same reason and error."""
    talk, other = am.babble(7, 4.0), am.babble(8, 3.0)
    write(tmp_path / "talk.wav", am.encode(talk, 16000, "wav"))
    write(tmp_path / "other.flac", am.encode(other, 16000, "flac"))
    write(tmp_path / "bad.wav", am.garbage())
    segments = [("talk.wav", 0.25, 1.5), ("other.flac", 0.0, 1.25), ("talk.wav", 1.5, 3.0), ("bad.wav", 0.0, 1.0),
                ("talk.wav", 3.0, 4.0), ("bad.wav", 1.0, 2.0), ("other.flac", 1.25, 2.5), ("talk.wav", 3.5, 3.75)]
    write(tmp_path / "segments.tsv", "audio\tbegin_time\tend_time\ttext\n"
          + "".join(f"{f}\t{a}\t{b}\tsegment {i} of {f}\n" for i, (f, a, b) in enumerate(segments)))
    out = tmp_path / "out"
    assert run_cli("run", tmp_path / "segments.tsv", "--audio-col", "audio", "--clips-col", "begin_time,end_time", "--caption-col", "text",
                   "-o", out, *COMMON, "--set", "output.shard_size=4") == 0
    rows = by_key(out)
    assert {k: r["reason"] for k, r in rows.items()} == {
        f"00000_{i:09d}_0000" if f != "bad.wav" else f"00000_{i:09d}": ("audio.decode_error" if f == "bad.wav" else "audio.clip_too_short" if b - a < 1 else "")
        for i, (f, a, b) in enumerate(segments)}
    assert rows["00000_000000003"]["error"] == rows["00000_000000005"]["error"] != ""
    got = {x["__key__"]: x for x in samples(out)}
    assert set(got) == {f"00000_{i:09d}_0000" for i in (0, 1, 2, 4, 6)}
    for i in (0, 1, 2, 4, 6):
        f, a, b = segments[i]
        pcm = talk if f == "talk.wav" else other
        assert got[f"00000_{i:09d}_0000"]["txt"].decode() == f"segment {i} of {f}"
        assert np.array_equal(am.decode_mono(got[f"00000_{i:09d}_0000"]["flac"], 16000)[:, 0], pcm[round(a * 16000):round(b * 16000), 0])


def test_an_unsorted_segments_table_fetches_each_recording_once(tmp_path):
    """Remote recordings named by a table whose rows interleave them: a file's rows are staged
    together wherever they are in the table (chunks.py), so each file is fetched and decoded
    once, up to FILE_RUN_CHUNKS x output.shard_size rows (talk's 10 rows at shard_size 1: two
    fetches, 8 rows and 2). Each segment is the exact source samples with its own text."""
    from tests.httpserver import LoopbackServer

    talk, other = am.babble(11, 4.0), am.babble(12, 3.0)
    runs = {"talk.wav": [(round(i * 0.3, 1), round(i * 0.3 + 1, 1)) for i in range(10)],
            "other.flac": [(0.0, 1.0), (1.0, 2.0), (2.0, 3.0)], "bad.wav": [(0.0, 1.0), (1.0, 2.0)]}
    rows = [(f, span) for i in range(10) for f, spans in runs.items() if i < len(spans) for span in [spans[i]]]
    assert [f for f, _ in rows[:4]] == ["talk.wav", "other.flac", "bad.wav", "talk.wav"]
    out = tmp_path / "out"
    with LoopbackServer() as srv:
        srv.files.update({"talk.wav": am.encode(talk, 16000, "wav"), "other.flac": am.encode(other, 16000, "flac"), "bad.wav": am.garbage()})
        write(tmp_path / "segments.tsv", "audio\tbegin_time\tend_time\ttext\n"
              + "".join(f"{srv.url('/files/' + f)}\t{a}\t{b}\tsegment {i} of {f}\n" for i, (f, (a, b)) in enumerate(rows)))
        assert run_cli("run", tmp_path / "segments.tsv", "--audio-col", "audio", "--clips-col", "begin_time,end_time", "--caption-col", "text",
                       "-o", out, *COMMON, "--allow-private-hosts", "--set", "output.shard_size=1") == 0
        assert {f: srv.count("/files/" + f) for f in runs} == {"talk.wav": 2, "other.flac": 1, "bad.wav": 1}
    reasons = {k: r["reason"] for k, r in by_key(out).items()}
    assert reasons == {f"00000_{i:09d}" + ("" if f == "bad.wav" else "_0000"): "audio.decode_error" if f == "bad.wav" else ""
                       for i, (f, _) in enumerate(rows)}
    got = {x["txt"].decode(): x["flac"] for x in samples(out)}
    assert len(got) == 13
    for i, (f, (a, b)) in enumerate(rows):
        if f != "bad.wav":
            pcm = talk if f == "talk.wav" else other
            assert np.array_equal(am.decode_mono(got[f"segment {i} of {f}"], 16000)[:, 0], pcm[round(a * 16000):round(b * 16000), 0])


def test_a_file_cut_into_clips_may_be_longer_than_a_sample(tmp_path):
    """audio.max_duration (1 h) bounded a subtitled file too, so a 2-h podcast with its .vtt
    was audio.too_long though its clips are the samples. A file cut into clips is bounded by
    audio.max_source_duration (4 h) instead; a whole-file sample still by max_duration."""
    root = tmp_path / "in"
    write(root / "cut.wav", am.encode(am.babble(3, 3.0), 16000, "wav"))
    write(root / "cut.srt", "1\n00:00:00,500 --> 00:00:02,000\nthe one cue\n")
    write(root / "whole.wav", am.encode(am.babble(4, 3.0), 16000, "wav"))
    write(root / "whole.txt", "a sample of its own")
    out = tmp_path / "out"
    assert run_cli("run", root, "--format", "audio", "-o", out, *COMMON, "--set", "audio.max_duration=2") == 0
    rows = by_key(out)
    assert {k: r["reason"] for k, r in rows.items()} == {"cut_0000": "", "whole": "audio.too_long"}
    assert rows["whole"]["error"] == "3.000 s > 2.0 (container header)"
    (got,) = samples(out)
    assert got["txt"].decode() == "the one cue" and json.loads(got["json"])["source_duration"] == 3.0
    out2 = tmp_path / "out2"
    assert run_cli("run", root, "--format", "audio", "-o", out2, *COMMON, "--set", "audio.max_duration=2",
                   "--set", "audio.max_source_duration=2.5") == 0
    assert {k: (r["reason"], r["error"]) for k, r in by_key(out2).items()} == {
        "cut": ("audio.too_long", "3.000 s > 2.5 (container header)"), "whole": ("audio.too_long", "3.000 s > 2.0 (container header)")}


def test_audio_files_have_their_own_size_limit(tmp_path):
    """Audio was read under fetch.max_bytes (32 MiB, meant for images): ten minutes of 44.1 kHz
    stereo wav failed as fetch.too_large. audio.max_bytes (1 GiB) bounds audio instead."""
    write(tmp_path / "in" / "short.wav", am.tone(1.0))  # 32 KB
    write(tmp_path / "in" / "long.wav", am.tone(4.0))  # 128 KB
    for stem in ("short", "long"):
        write(tmp_path / "in" / f"{stem}.txt", f"a {stem} tone")
    out = tmp_path / "out"
    assert run_cli("run", tmp_path / "in", "--format", "audio", "-o", out, *COMMON,
                   "--set", "fetch.max_bytes=1000", "--set", "audio.max_bytes=100000") == 0
    rows = by_key(out)
    assert {k: r["reason"] for k, r in rows.items()} == {"short": "", "long": "fetch.too_large"}
    assert rows["long"]["error"] == "over 100000 bytes"
