"""Transcript and caption-manifest formats, and the key alignment of pieces from several inputs."""

from __future__ import annotations

import json
import os

from mmcurate.pipelines.prepare import align_pieces
from mmcurate.pipelines.sources import split_role, transcripts
from mmcurate.schemas.record import SourceRow, Verdict
from tests.util import write


def _entries(path):
    return [(e.line, e.media_id, e.text, e.error) for e in transcripts.entries(str(path))]


def test_sphinx_librispeech_tables_and_msrvtt(tmp_path):
    sphinx = write(tmp_path / "transcription", "<s> ten of clubs  </s> (001)\n\nno id here\n<s>five five</s> (dir/004)\n")
    assert _entries(sphinx) == [(1, "001", "ten of clubs", ""), (3, "", "", "line 3: expected '<s> text </s> (id)'"),
                                (4, "004", "five five", "")]
    libri = write(tmp_path / "84-121123.trans.txt", "84-121123-0000 GO DO YOU HEAR\n84-121123-0001\n")
    assert _entries(libri) == [(1, "84-121123-0000", "GO DO YOU HEAR", ""), (2, "", "", "line 2: expected 'utterance-id text'")]
    tsv = write(tmp_path / "t.tsv", "file\ttranscript\nclips/a.wav\thello\nb\t\n\tno file\n")
    assert _entries(tsv)[:2] == [(2, "a", "hello", ""), (3, "b", "", "")]  # an empty transcript: text.empty later
    assert _entries(tsv)[2][3].startswith("line 4: needs a media column")
    jsonl = write(tmp_path / "c.jsonl", '{"video": "video9149.mp4", "caption": "a boy sings"}\n[1]\n{bad\n{"id": 7, "text": ["a", "b"]}\n{"id": 8, "text": "eight"}\n{"audio": "5.wav", "transcript": ""}\n')
    got = _entries(jsonl)
    assert got[0] == (1, "video9149", "a boy sings", "") and got[1][3] == "line 2: not an object" and got[2][3].startswith("line 3: ")
    assert got[3][3] == "line 4: its text is list ['a', 'b'], not a string" and got[4] == (5, "8", "eight", "")  # (ids may be numbers)
    assert got[5] == (6, "5", "", "")  # it was "needs a media column ... and a text column", though it has both
    msrvtt = write(tmp_path / "train_val.json", json.dumps({"sentences": [{"video_id": "video0", "caption": "a car"}, {"video_id": "video0", "caption": "a red car"}]}))
    texts, bad = transcripts.captions_by_id([str(msrvtt)])
    assert texts == {"video0": ["a car", "a red car"]} and bad == []
    msvd = write(tmp_path / "msvd.csv", "VideoID,Start,End,WorkerID,Source,AnnotationTime,Language,Description\n"
                                        "mv89psg6zh4,33,46,1,clean,10,English,A bird is bathing in a sink.\n")
    assert _entries(msvd) == [(2, "mv89psg6zh4_33_46", "A bird is bathing in a sink.", "")]


def test_split_role():
    assert split_role("audio=wavs/") == ("audio", "wavs/")
    assert split_role("gs://b/x=1/data.csv") == ("", "gs://b/x=1/data.csv")
    assert split_role("speech=wavs/") == ("", "speech=wavs/")


def _piece(key, order, role, **kw):
    return (f"t{order[0]:05d}-c00000", SourceRow(key, order, f"{role}:{key}", role=role, **kw))


def test_align_pieces_joins_and_accounts_every_piece():
    media = _piece("k", (0, 3), "audio", media="/a/k.wav")
    text = _piece("k", (1, 0), "text", caption="hello", captions=["hello"])
    again = _piece("k", (1, 5), "text", caption="hello again", captions=["hello again"])
    bad = _piece("k", (1, 7), "text", verdict=Verdict.reject("input.bad_row", "x"))
    out = list(align_pieces(("k", [again, bad, text, media]), {"audio", "text"}, "audio"))
    reasons = [(sid, row.role, row.verdict.reason) for sid, row in out]
    assert reasons == [("t00001-c00000", "text", "align.duplicate_piece"), ("t00001-c00000", "text", "input.bad_row"),
                       ("t00000-c00000", "audio", None)]
    joined = out[-1][1]
    assert (joined.media, joined.captions, joined.order) == ("/a/k.wav", ["hello"], (0, 3))
    assert joined.extra == {"text_source": "text"}

    (only_text,) = align_pieces(("k", [text]), {"audio", "text"}, "audio")
    assert only_text[1].verdict.reason == "align.missing_audio" and only_text[0] == "t00001-c00000"
    (only_audio,) = align_pieces(("k", [media]), {"audio", "text"}, "audio")
    assert only_audio[1].verdict.reason == "align.missing_text"
    (lenient,) = align_pieces(("k", [media]), {"audio"}, "audio")
    assert lenient[1].verdict.kept and "text_source" not in lenient[1].extra  # no text at all
    sidecar = _piece("k", (0, 3), "audio", media="/a/k.wav", caption_bytes=b"own text")
    (own,) = align_pieces(("k", [sidecar]), {"audio", "text"}, "audio")
    assert own[1].verdict.kept and own[1].extra == {"text_source": "audio"}  # the media's own sidecar text counts as its text
    (both,) = [row for _, row in align_pieces(("k", [sidecar, text]), {"audio", "text"}, "audio") if row.verdict.kept]
    assert (both.captions, both.extra) == (["hello"], {"text_source": "text"})  # the text= input's piece wins
    subtitled = _piece("k", (0, 3), "audio", media="/a/k.wav", subtitles="/a/k.srt")
    (cut,) = [row for _, row in align_pieces(("k", [subtitled, text]), {"audio", "text"}, "audio") if row.verdict.kept]
    assert (cut.captions, cut.extra) == ([], {"text_source": "audio"})  # cut at its cues, each clip their text


def test_unreadable_transcripts_end_in_one_bad_entry(tmp_path):
    import csv
    import os

    missing = tmp_path / "captions.csv"
    os.symlink(tmp_path / "nowhere.csv", missing)  # a broken link: listed, cannot be opened
    [entry] = transcripts.entries(str(missing))
    line, ident, text, error = entry.line, entry.media_id, entry.text, entry.error
    assert (line, ident, text, entry.reason) == (1, "", "", "input.unreadable") and error.startswith(f"cannot read {missing} after line 0: FileNotFoundError")
    # an unbalanced quote swallows the rest of the file into one field past csv's limit
    quoted = tmp_path / "quoted.csv"
    quoted.write_text("file,caption\na.wav,fine\nb.wav,\"never closed\n" + "c.wav,more\n" * (csv.field_size_limit() // 10))
    got = _entries(quoted)
    assert got[0] == (2, "a", "fine", "") and len(got) == 2
    assert got[1][:3] == (3, "", "") and "after line 2: Error: field larger than field limit" in got[1][3]
    # a short file: the open quote took the next line as part of b's text (and c was missing)
    short = write(tmp_path / "short.csv", 'file,text\n001.wav,ten of clubs\n002.wav,"four queen\n003.wav,seven of clubs\n')
    got = _entries(short)
    assert got[0] == (2, "001", "ten of clubs", "") and len(got) == 2
    assert got[1] == (3, "", "", f"cannot read {short} after line 2: Error: unexpected end of data")
    # a stray quote inside a quoted text is one bad line; the lines after it are read on
    stray = write(tmp_path / "stray.csv", 'file,text\n1.wav,"he said "hi" to me"\n2.wav,two\n')
    assert _entries(stray) == [(2, "", "", "line 2: ',' expected after '\"'"), (3, "2", "two", "")]
    broken_gz = tmp_path / "t.csv.gz"
    broken_gz.write_bytes(b"\x1f\x8b\x08\x00garbage")
    [(_, _, _, error)] = _entries(broken_gz)
    assert error == f"cannot read {broken_gz} after line 0: EOFError: Compressed file ended before the end-of-stream marker was reached"


def test_media_folder_with_an_unreadable_transcripts_file_plans_and_counts_it(tmp_path):
    import os

    from mmcurate.pipelines.sources import media

    (tmp_path / "a.wav").write_bytes(b"RIFF")  # contents do not matter for planning
    (tmp_path / "b.wav").write_bytes(b"RIFF")
    write(tmp_path / "trans.tsv", "file\ttext\na.wav\thello\n")
    os.symlink(tmp_path / "gone.csv", tmp_path / "captions.csv")
    tasks, ignored = media.plan(str(tmp_path), "audio", 0, 10)
    rows = [row for task in tasks for row in media.read(task)]
    assert [(r.key, r.verdict.reason, r.captions) for r in rows] == [
        ("a", None, ["hello"]), ("b", None, []), ("bad_00001_000000000", "input.unreadable", []),
    ]
    assert rows[2].source == f"{tmp_path}/captions.csv:1" and "FileNotFoundError" in rows[2].verdict.detail


def test_a_videos_subtitles_named_with_a_language_tag_are_its_own(tmp_path):
    """yt-dlp writes talk.en.srt beside talk.mp4: it was ignored, and talk was kept uncut."""
    from mmcurate.pipelines.sources import media

    for name in ("talk.mp4", "talk.en.srt", "talk.de.srt", "show.mp4", "show.srt", "show.en.vtt", "lecture.part.srt", "x.pt-BR.vtt", "x.mkv"):
        (tmp_path / name).write_bytes(b"")
    tasks, ignored = media.plan(str(tmp_path), "video", 0, 10)
    rows = {r.key: r for task in tasks for r in media.read(task)}
    from mmcurate.filters.keys import make_key

    # talk.en.srt and show.en.vtt: not the one used; lecture.part.srt: no video of that name, a row
    lecture = make_key("lecture.part")  # (a dot in a key is not WebDataset-safe)
    assert sorted(rows) == sorted([lecture, "show", "talk", "x"]) and ignored == 2
    assert (rows[lecture].verdict.reason, rows[lecture].verdict.detail) == (
        "align.missing_video", "lecture.part.srt: no video file of that name in the folder")
    assert {k: r.subtitles for k, r in rows.items() if r.verdict.kept} == {
        "show": f"{tmp_path}/show.srt", "talk": f"{tmp_path}/talk.de.srt", "x": f"{tmp_path}/x.pt-BR.vtt"}


def test_a_video_with_several_subtitle_files_uses_one_and_counts_the_rest_as_ignored(tmp_path):
    """a.srt beside a.vtt: the vtt was silently unused; with --languages en, yt-dlp's a.de.srt
    was chosen over a.en.srt (name order) and every clip then failed the language filter."""
    from mmcurate.pipelines.sources import media

    for name in ("a.mp4", "a.vtt", "a.srt", "b.mp4", "b.de.srt", "b.en-US.vtt", "b.fr.srt", "c.mp4", "c.vtt", "c.en.srt"):
        (tmp_path / name).write_bytes(b"")
    subtitles = {}
    for languages in ((), ("en",), ("EN", "fr")):
        tasks, ignored = media.plan(str(tmp_path), "video", 0, 10, languages=languages)
        subtitles[languages] = {r.key: os.path.basename(r.subtitles) for task in tasks for r in media.read(task)}
        assert ignored == 4, languages  # a.vtt, two of b's three, one of c's two
    assert subtitles[()] == {"a": "a.srt", "b": "b.de.srt", "c": "c.vtt"}  # untagged first, then name order
    assert subtitles[("en",)] == subtitles[("EN", "fr")] == {"a": "a.srt", "b": "b.en-US.vtt", "c": "c.vtt"}
    for name in ("s.wav", "s.srt", "s.en.vtt", "s.txt"):
        write(tmp_path / "speech" / name, "x")
    tasks, ignored = media.plan(str(tmp_path / "speech"), "audio", 0, 10)  # audio is cut at its subtitles too
    # s.en.vtt, and s.txt: the clips' texts are their cues'
    assert ignored == 2 and [(r.key, r.subtitles, r.caption_bytes) for task in tasks for r in media.read(task)] == [("s", f"{tmp_path}/speech/s.srt", None)]


def test_sidecars_whose_media_file_is_missing_are_rows_not_ignored_files(tmp_path):
    """v2.mp4 failed to download but its v2.txt and v2.en.vtt are there: one row per stem,
    align.missing_video naming its files (they were counted as ignored files, nameless),
    as an image folder's lone a.txt is input.missing_image. Other files are still ignored (a
    lone .json is read as a captions file: transcripts.is_transcripts_name)."""
    from mmcurate.pipelines.sources import media

    for name in ("v1.mp4", "v1.txt", "v2.txt", "v2.en.vtt", "v3.srt", "notes.md"):
        write(tmp_path / name, "x")
    tasks, ignored = media.plan(str(tmp_path), "video", 0, 10)
    rows = [(r.key, r.source, r.verdict.reason, r.verdict.detail) for task in tasks for r in media.read(task)]
    assert ignored == 1 and rows == [
        ("v1", f"{tmp_path}/v1.mp4", None, ""),
        ("v2", f"{tmp_path}/v2.en.vtt", "align.missing_video", "v2.en.vtt, v2.txt: no video file of that name in the folder"),
        ("v3", f"{tmp_path}/v3.srt", "align.missing_video", "v3.srt: no video file of that name in the folder"),
    ]


def test_a_media_folder_with_none_of_its_modality_is_refused_with_a_hint(tmp_path):
    import pytest

    from mmcurate.pipelines import sources
    from mmcurate.pipelines.sources.base import InputError
    from mmcurate.schemas.config import RunConfig

    (tmp_path / "v.mp4").write_bytes(b"")
    write(tmp_path / "captions.csv", "file,caption\nv.mp4,a clip\n")
    cfg = RunConfig.load(overrides=["input.format=audio"])
    with pytest.raises(InputError, match=r"no inputs for --format audio in .* \(it holds 1 \.csv, 1 \.mp4\); its files look like --format video"):
        sources.plan([str(tmp_path)], cfg)


def test_a_sidecar_json_may_name_its_caption_as_transcript_tables_do(tmp_path):
    """`{"text": ...}` was input.missing_caption with no word of why."""
    from mmcurate.pipelines.sources.folder import read_sidecar

    write(tmp_path / "a.json", json.dumps({"text": "ten of clubs", "speaker": "s1"}))
    write(tmp_path / "b.json", json.dumps({"caption": "the caption", "text": "other text"}))
    write(tmp_path / "c.json", json.dumps({"speaker": "s2"}))
    a, b, c = (read_sidecar(str(tmp_path), {"json": [f"{k}.json"]}) for k in "abc")
    assert (a.caption_bytes, a.extra, a.verdict.kept) == (b"ten of clubs", {"speaker": "s1"}, True)
    assert (b.caption_bytes, b.extra) == (b"the caption", {"text": "other text"})
    assert (c.caption_bytes, c.captions, c.has_text) == (None, [], False)
