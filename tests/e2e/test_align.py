"""Several inputs joined by key (ROLE=PATH): audio with a transcripts table, an image folder
with a captions table; every piece without its partner is accounted."""

from __future__ import annotations

import json

import pytest

from tests import audio_media as am
from tests.util import by_key, manifest, run_cli, samples, stats, write

COMMON = ("--workers", "2", "--no-progress", "--set", "output.splits=train=1.0")


@pytest.fixture(scope="module")
def aligned(tmp_path_factory):
    root = tmp_path_factory.mktemp("aligned")
    for i, key in enumerate(("k1", "k2", "k3")):
        write(root / "wavs" / f"{key}.wav", am.tone(1.0 + i * 0.25, freq=300.0 + 100 * i))
    write(root / "trans.tsv", "id\ttext\nk1.wav\tthe first utterance\nk2\tthe second utterance\n"
                              "k4\tan utterance nobody recorded\nk2\tthe second utterance again\n")
    return root


def test_audio_and_transcripts_joined_by_key(aligned, tmp_path):
    out = tmp_path / "out"
    assert run_cli("run", f"audio={aligned / 'wavs'}", f"text={aligned / 'trans.tsv'}", "-o", out, *COMMON) == 0
    rows = manifest(out)
    reasons = sorted((r["key"], r["reason"]) for r in rows)
    assert reasons == [("k1", ""), ("k2", ""), ("k2", "align.duplicate_piece"), ("k3", "align.missing_text"), ("k4", "align.missing_audio")]
    got = {x["__key__"]: x["txt"].decode() for x in samples(out)}
    assert got == {"k1": "the first utterance", "k2": "the second utterance"}
    assert {x["__key__"]: json.loads(x["json"]).get("text_source") for x in samples(out)} == {"k1": "text", "k2": "text"}
    assert stats(out)["identity_ok"] and stats(out)["inputs"] == 5

    lenient = tmp_path / "lenient"  # text optional: k3 is kept with an empty transcript
    assert run_cli("run", f"audio={aligned / 'wavs'}", f"text={aligned / 'trans.tsv'}", "-o", lenient, *COMMON, "--require", "audio") == 0
    got = {x["__key__"]: x["txt"].decode() for x in samples(lenient)}
    assert got == {"k1": "the first utterance", "k2": "the second utterance", "k3": ""}
    assert {x["__key__"]: json.loads(x["json"]).get("text_source") for x in samples(lenient)} == {"k1": "text", "k2": "text", "k3": None}
    assert by_key(lenient)["k4"]["reason"] == "align.missing_audio"


def test_image_folder_joined_with_a_captions_table(tmp_path):
    from tests.util import jpeg

    for i, key in enumerate(("p1", "p2", "p3")):
        write(tmp_path / "photos" / f"{key}.jpg", jpeg(320, 240, seed=i * 7 + 1))
    write(tmp_path / "captions.csv", "key,caption\np1,a first photo\np2,a second photo\np9,a photo nobody took\n")
    out = tmp_path / "out"
    assert run_cli("run", f"image={tmp_path / 'photos'}", f"text={tmp_path / 'captions.csv'}", "-o", out, *COMMON, "--dedup", "exact") == 0
    assert sorted((r["key"], r["reason"]) for r in manifest(out)) == [("p1", ""), ("p2", ""), ("p3", "align.missing_text"), ("p9", "align.missing_image")]
    got = {x["__key__"]: x["txt"].decode() for x in samples(out)}
    assert got == {"p1": "a first photo", "p2": "a second photo"}


def test_a_transcript_that_is_not_utf8_is_dropped_not_garbled(tmp_path):
    """In a transcripts file (joined by key, or inside an audio folder), a line in latin-1 is
    text.invalid_utf8 for its key, never a transcript with U+FFFD in it."""
    for key in ("u1", "u2"):
        write(tmp_path / "wavs" / f"{key}.wav", am.tone(1.0, freq=300.0))
    lines = "id\ttext\nu1\tplain text\n".encode() + "u2\tcaf\u00e9 cr\u00e8me\n".encode("latin-1")
    write(tmp_path / "trans.tsv", lines)
    write(tmp_path / "wavs" / "transcripts.tsv", lines)
    for args in ([f"audio={tmp_path / 'wavs'}", f"text={tmp_path / 'trans.tsv'}"], [str(tmp_path / "wavs"), "--format", "audio"]):
        out = tmp_path / f"out{len(args)}"
        assert run_cli("run", *args, "-o", out, *COMMON) == 0
        rows = by_key(out)
        assert (rows["u1"]["status"], rows["u2"]["reason"]) == ("kept", "text.invalid_utf8")
