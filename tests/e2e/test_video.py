"""Video end to end on generated clips whose frames carry their index: cuts at subtitle cues
(sidecar SRT/VTT and a stream inside the container), frame-exact boundaries, texts, json
durations equal to the decoded clips', one reason per kind of broken input, determinism,
uncued windows, frame-mean CLIP scores; and the real clips in ../shared/data/video."""

from __future__ import annotations

import csv
import glob
import io
import json
import os
import tarfile

import av
import pytest

from tests import video_media as vm
from tests.util import manifest, run_cli, samples, shard_bytes, stats, write

FPS = 25
# the generated videos share one look (a drifting gradient): near-dup would rightly merge them
COMMON = ("--workers", "2", "--no-progress", "--set", "output.splits=train=1.0", "--dedup", "exact")
SHARED_VIDEO = os.path.join(os.path.dirname(__file__), "../../../shared/data/video")

TALK_SRT = """1
00:00:01,000 --> 00:00:03,000
the first cue

2
00:00:04,120 --> 00:00:05,480
<i>the second cue</i>

3
00:00:05,600 --> 00:00:05,900
merged into the second

4
00:00:06,420 --> 00:00:06,480
too short

5
00:00:07,000 --> 00:00:09,000
runs past the end
"""
# clip -> (first frame, frames, text, cut): 25 fps, a keyframe every second
EXPECTED = {
    "talk_0000": (25, 50, "the first cue", "copy"),
    "talk_0001": (103, 45, "the second cue merged into the second", "reencode"),
    "talk_0003": (175, 25, "runs past the end", "copy"),
    "embedded_0000": (13, 37, "embedded one", "reencode"),  # 0.5 s -> frame 12.5: the first at/after is 13
    "embedded_0001": (70, 30, "embedded two", "reencode"),
    "whole_0000": (0, 75, "a whole video with its caption", "copy"),
    "badsub_0000": (13, 25, "fine", "reencode"),  # its second cue is malformed: left out, named in its json
}


def av_streams(data: bytes, kind: str) -> list[str]:
    """The codecs of a clip's streams of this kind ("audio", "video")."""
    with av.open(io.BytesIO(data)) as c:
        return [s.codec_context.name for s in c.streams if s.type == kind]


def _clip_frames(data: bytes) -> list[int]:
    with av.open(io.BytesIO(data)) as c:
        return [vm.frame_index(f) for f in c.decode(video=0)]


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    root = tmp_path_factory.mktemp("video") / "in"
    os.makedirs(root)
    vm.make_video(root / "talk.mp4", seconds=8.0)
    write(root / "talk.srt", TALK_SRT)
    vm.make_video(root / "embedded.mkv", seconds=4.0, container="matroska", subtitles=[(0.5, 2.0, "embedded one"), (2.8, 4.0, "embedded two")])
    vm.make_video(root / "whole.mp4", seconds=3.0)
    write(root / "whole.txt", "a whole video with its caption")
    write(root / "broken.mp4", vm.broken_video())
    write(root / "broken.txt", "not a video")
    write(root / "sound.mp4", vm.audio_only_mp4())
    write(root / "sound.txt", "only sound")
    vm.make_video(root / "badsub.mp4", seconds=2.0)
    write(root / "badsub.srt", "1\n00:00:00,500 --> 00:00:01,500\nfine\n\n2\n00:00:01,x00 --> 00:00:01,900\nbroken\n")
    vm.make_video(root / "emptysub.mp4", seconds=2.0)
    write(root / "emptysub.vtt", "WEBVTT\n\nNOTE nothing to say\n")
    vm.make_video(root / "badvtt.mp4", seconds=2.0)
    write(root / "badvtt.vtt", "00:00.500 --> 00:01.500\nno WEBVTT header\n")
    vm.make_video(root / "nocap.mp4", seconds=2.0)
    write(root / "badstream.mkv", vm.broken_subtitles("matroska"))
    return root


def test_cut_at_cues_frame_exact_with_reasons(clips, tmp_path):
    out = tmp_path / "out"
    assert run_cli("run", clips, "--format", "video", "-o", out, *COMMON, "--set", "video.videos_per_shard=4") == 0
    reasons = {r["key"]: r["reason"] for r in manifest(out)}
    assert reasons == {
        **{k: "" for k in EXPECTED}, "talk_0002": "video.clip_too_short", "broken": "video.decode_error",
        "sound": "video.no_video_stream", "emptysub": "video.no_cues", "badvtt": "video.bad_subtitles",
        "nocap": "input.missing_caption", "badstream": "video.bad_subtitles",
    }
    s = stats(out)
    errors = {r["key"]: r["error"] for r in manifest(out)}
    assert errors["badvtt"].endswith("badvtt.vtt: line 1: missing WEBVTT header")
    assert errors["badstream"].startswith("cue at 0.200 s: ")  # its only cue does not decode
    assert s["identity_ok"] and s["inputs"] == 14 and s["kept"] == 7
    assert s["skipped_cues"] == {"cues": 1, "files": 1}  # badsub's malformed cue, once
    assert [x["inputs"] for x in s["shards"]] == [4, 5, 5]  # 10 videos, 4 a shard; rows are clips (embedded 2, talk 4)
    assert s["distributions"]["duration_s"]["count"] == 7

    got = {x["__key__"]: x for x in samples(out)}
    assert sorted(got) == sorted(EXPECTED)
    for key, (first, n, text, method) in EXPECTED.items():
        sample = got[key]
        assert sorted(k for k in sample if not k.startswith("__")) == ["jpg", "json", "mp4", "txt"], key
        assert _clip_frames(sample["mp4"]) == list(range(first, first + n)), key
        doc = json.loads(sample["json"])
        assert sample["txt"].decode() == text == doc["caption"]
        assert (doc["start"], doc["end"]) == (pytest.approx(first / FPS, abs=1e-6), pytest.approx((first + n) / FPS, abs=1e-6))
        assert doc["duration"] == pytest.approx(n / FPS, abs=1e-6) and doc["frames"] == n
        assert (doc["cut"], doc["fps"], doc["size"], doc["codec"], doc["modality"]) == (method, 25.0, [160, 120], "h264", "video")
        assert doc["has_audio"] is True and len(av_streams(sample["mp4"], "audio")) == 1, key
        skipped = (1, ['line 6: bad timestamp "00:00:01,x00"']) if key == "badsub_0000" else (None, None)
        assert (doc.get("skipped_cues"), doc.get("subtitle_errors")) == skipped, key
        assert vm.frame_index(sample["jpg"]) == first + int(n * 0.5)  # the middle of 3 sampled frames
    talk = next(r for r in manifest(out) if r["key"] == "talk_0002")
    assert json.loads(talk["media"]) == {"start": 6.42, "end": 6.48, "clip": 2}

    assert run_cli("validate", out) == 0
    assert run_cli("report", out, "-o", tmp_path / "report.html") == 0  # clips show their middle frame
    assert (tmp_path / "report.html").read_text().count("data:image/jpeg;base64,") == 7

    again = tmp_path / "again"
    assert run_cli("run", clips, "--format", "video", "-o", again, *COMMON, "--set", "video.videos_per_shard=4", "--keep-staging") == 0
    assert shard_bytes(again) == shard_bytes(out)
    # a rerun into the same output reuses every staging shard (clip rows read back) and
    # gives the same shards; other video settings redo them
    assert run_cli("run", clips, "--format", "video", "-o", again, *COMMON, "--set", "video.videos_per_shard=4") == 0
    assert stats(again)["resumed_staging_shards"] == 3 and shard_bytes(again) == shard_bytes(out)
    assert run_cli("run", clips, "--format", "video", "-o", again, *COMMON, "--set", "video.videos_per_shard=4", "--set", "video.min_clip=0.05") == 0
    assert stats(again)["resumed_staging_shards"] == 0 and {r["key"]: r["reason"] for r in manifest(again)}["talk_0002"] == ""


def test_uncued_video_in_windows_without_text(tmp_path):
    os.makedirs(tmp_path / "in")
    vm.make_video(tmp_path / "in" / "plain.mp4", seconds=4.0, audio=False)
    for i in range(5):  # more videos (the same bytes: dedup is off) to spread over two splits
        os.link(tmp_path / "in" / "plain.mp4", tmp_path / "in" / f"copy{i}.mp4")
    out = tmp_path / "out"
    assert run_cli("run", tmp_path / "in", "--format", "video", "--require", "video", "-o", out, "--workers", "2", "--no-progress",
                   "--dedup", "none", "--splits", "train=0.5,val=0.5", "--set", "video.uncued=windows", "--set", "video.window=1.5") == 0
    got = {x["__key__"]: x for x in samples(out)}
    plain = sorted(k for k in got if k.startswith("plain"))
    assert plain == ["plain_0000", "plain_0001", "plain_0002"] and len(got) == 18
    assert [_clip_frames(got[k]["mp4"])[0] for k in plain] == [0, 38, 75]  # 1.5 s = frame 37.5 -> 38
    assert [len(_clip_frames(got[k]["mp4"])) for k in plain] == [38, 37, 25]
    assert all(got[k]["txt"] == b"" for k in got)
    assert all(json.loads(got[k]["json"])["has_audio"] is False and av_streams(got[k]["mp4"], "audio") == [] for k in plain)
    # a video's clips share its split (by the video's key), so no video straddles train and val
    splits = {}
    for key, sample in got.items():
        splits.setdefault(key.rsplit("_", 1)[0], set()).add(json.loads(sample["json"])["split"])
    assert all(len(v) == 1 for v in splits.values()) and set().union(*splits.values()) == {"train", "val"}


def test_uncued_video_cut_at_its_scenes_with_its_caption(tmp_path):
    from tests.unit.test_scenes import scene

    os.makedirs(tmp_path / "in")
    vm.encode_frames(tmp_path / "in" / "three.mp4", scene(1, 50, drift=1) + scene(2, 38, drift=2) + scene(3, 62) + scene(4, 10), 25, crf=18)
    write(str(tmp_path / "in" / "three.txt"), "three scenes of coloured squares")
    out = tmp_path / "out"
    assert run_cli("run", tmp_path / "in", "--format", "video", "-o", out, "--workers", "1", "--no-progress",
                   "--set", "video.uncued=scenes", "--set", "video.max_clip=2.0") == 0
    rows = {r["key"]: r for r in manifest(out)}
    spans = {k: (json.loads(r["media"])["start"], json.loads(r["media"])["end"]) for k, r in rows.items()}
    # scenes start at frames 0, 50, 88 and 150 (0.4 s: shorter than video.min_clip); the third
    # (2.48 s) is over video.max_clip, so it is cut in two equal halves
    assert spans == {"three_0000": (0.0, 2.0), "three_0001": (2.0, 3.52), "three_0002": (3.52, 4.76), "three_0003": (4.76, 6.0), "three_0004": (6.0, 6.4)}
    assert {k: r["reason"] for k, r in rows.items()} == {"three_0000": "", "three_0001": "", "three_0002": "", "three_0003": "", "three_0004": "video.clip_too_short"}
    got = {x["__key__"]: x for x in samples(out)}
    assert {k: json.loads(x["json"])["frames"] for k, x in got.items()} == {"three_0000": 50, "three_0001": 38, "three_0002": 31, "three_0003": 31}
    assert all(x["txt"] == b"three scenes of coloured squares" for x in got.values())


def test_a_subtitle_sidecar_that_cannot_be_read_fails_its_video_alone(tmp_path):
    os.makedirs(tmp_path / "in")
    for name in ("a", "b"):
        vm.make_video(tmp_path / "in" / f"{name}.mp4", seconds=2.0)
    write(str(tmp_path / "in" / "b.srt"), "1\n00:00:00,000 --> 00:00:01,500\nhello there\n")
    os.symlink(tmp_path / "gone.srt", tmp_path / "in" / "a.srt")
    out = tmp_path / "out"
    assert run_cli("run", tmp_path / "in", "--format", "video", "-o", out, "--workers", "1", "--no-progress") == 0
    rows = {r["key"]: r for r in manifest(out)}
    assert (rows["a"]["reason"], rows["a"]["error"].split(":")[0]) == ("input.unreadable", "FileNotFoundError")
    assert rows["b_0000"]["status"] == "kept" and rows["b_0000"]["caption"] == "hello there"


def test_a_sidecar_cuts_a_video_whose_own_subtitle_stream_is_broken(tmp_path):
    """The stream was read (and failed the video as video.bad_subtitles) though the sidecar cuts it."""
    write(str(tmp_path / "in" / "m.mkv"), vm.broken_subtitles("matroska"))
    write(str(tmp_path / "in" / "m.srt"), "1\n00:00:00,000 --> 00:00:01,000\nfrom the sidecar\n")
    out = tmp_path / "out"
    assert run_cli("run", tmp_path / "in", "--format", "video", "-o", out, *COMMON) == 0
    assert [(r["key"], r["status"], r["caption"]) for r in manifest(out)] == [("m_0000", "kept", "from the sidecar")]


def test_an_h264_avi_undecodable_audio_and_a_rotated_phone_video_are_clips_not_failures(tmp_path):
    """AVI labels h264 frames in decode order; a truncated audio packet does not decode; a
    phone video is shown turned. All come out whole, with what was done in the sample json."""
    root = tmp_path / "in"
    os.makedirs(root)
    vm.make_video(root / "legacy.avi", seconds=3.0, container="avi")
    write(root / "legacy.txt", "an old avi")
    vm.make_video(root / "crackle.mp4", seconds=3.0, broken_audio=(20,))
    write(root / "crackle.txt", "a crackling sound track")
    vm.make_video(root / "phone.mp4", seconds=3.0, rotation=90)
    write(root / "phone.txt", "held upright")
    out = tmp_path / "out"
    assert run_cli("run", root, "--format", "video", "-o", out, *COMMON, "--set", "video.reencode=always") == 0
    assert stats(out)["kept"] == 3
    got = {x["__key__"]: x for x in samples(out)}
    assert sorted(got) == ["crackle_0000", "legacy_0000", "phone_0000"]
    assert _clip_frames(got["legacy_0000"]["mp4"]) == _clip_frames(got["crackle_0000"]["mp4"]) == list(range(75))
    docs = {k: json.loads(v["json"]) for k, v in got.items()}
    assert docs["crackle_0000"]["audio_gap"] == pytest.approx(0.064, abs=1e-3)
    assert "audio_gap" not in docs["legacy_0000"]
    assert docs["legacy_0000"]["frames"] == 75 and docs["legacy_0000"]["source_duration"] == pytest.approx(3.04)
    assert (docs["phone_0000"]["source_rotation"], docs["phone_0000"]["size"]) == (90, [120, 160])
    assert "source_rotation" not in docs["crackle_0000"]
    phone = next(r for r in manifest(out) if r["key"] == "phone_0000")
    assert (phone["width"], phone["height"], phone["original_width"], phone["original_height"]) == (120, 160, 120, 160)


def test_video_table_with_video_col(clips, tmp_path):
    write(tmp_path / "videos.csv", f"path,text\n{clips / 'whole.mp4'},a clip listed in a table\n{clips / 'gone.mp4'},a missing clip\n")
    out = tmp_path / "out"
    assert run_cli("run", tmp_path / "videos.csv", "--video-col", "path", "--caption-col", "text", "-o", out, *COMMON) == 0
    assert sorted((r["key"], r["reason"]) for r in manifest(out)) == [("00000_000000000_0000", ""), ("00000_000000001", "fetch.not_found")]
    (sample,) = samples(out)
    assert sample["txt"] == b"a clip listed in a table" and len(_clip_frames(sample["mp4"])) == 75


def test_remote_videos_stream_through_a_spool_file_that_is_deleted(clips, tmp_path):
    """Videos over HTTP go to a temporary file in video.spool_dir (not memory), capped by
    video.max_bytes, and give the same clip as the local file; the spool is empty after."""
    from tests.httpserver import LoopbackServer

    whole, talk = (clips / "whole.mp4").read_bytes(), (clips / "talk.mp4").read_bytes()
    assert len(whole) < len(talk)
    spool, out, local = tmp_path / "spool", tmp_path / "out", tmp_path / "local"
    os.makedirs(spool)
    with LoopbackServer() as srv:
        srv.files.update({"whole.mp4": whole, "talk.mp4": talk})
        write(tmp_path / "videos.csv", f"url,text\n{srv.url('/files/whole.mp4')},a clip over http\n"
              f"{srv.url('/files/talk.mp4')},over the cap\n{srv.url('/404')},gone\n")
        assert run_cli("run", tmp_path / "videos.csv", "--video-col", "url", "--caption-col", "text", "-o", out, *COMMON,
                       "--allow-private-hosts", "--set", f"video.max_bytes={len(whole)}", "--set", f"video.spool_dir={spool}") == 0
    assert sorted((r["key"], r["reason"]) for r in manifest(out)) == [
        ("00000_000000000_0000", ""), ("00000_000000001", "fetch.too_large"), ("00000_000000002", "fetch.not_found")]
    assert os.listdir(spool) == []
    write(tmp_path / "local.csv", f"path,text\n{clips / 'whole.mp4'},a clip over http\n")
    assert run_cli("run", tmp_path / "local.csv", "--video-col", "path", "--caption-col", "text", "-o", local, *COMMON) == 0
    (remote_sample,), (local_sample,) = samples(out), samples(local)
    assert remote_sample["mp4"] == local_sample["mp4"] and len(_clip_frames(remote_sample["mp4"])) == 75


def test_rows_cutting_one_remote_video_share_one_download(clips, tmp_path):
    """A table flattened to one row a caption names each remote video once per clip: each row
    downloaded the whole video again. Now the rows of a staging shard naming one URL share one
    download (shared_media.py), deleted from the spool after its last row; a URL that fails
    fails each of its rows alike, fetched once; the clips equal those cut from the local file."""
    from tests.httpserver import LoopbackServer

    spool, local = tmp_path / "spool", tmp_path / "local"
    os.makedirs(spool)
    spans = [("talk.mp4", 0.0, 2.0), ("gone.mp4", 0.0, 1.0), ("talk.mp4", 2.0, 4.0), ("gone.mp4", 1.0, 2.0), ("talk.mp4", 5.0, 7.0)]

    def run_remote(name: str, *settings: str):
        """The spans table with its videos on a loopback server: each URL is fetched once."""
        out = tmp_path / name
        with LoopbackServer() as srv:
            srv.files["talk.mp4"] = (clips / "talk.mp4").read_bytes()
            write(tmp_path / f"{name}.csv", "url,start,end,text\n" + "".join(
                f"{srv.url('/files/' + f)},{a},{b},clip {i}\n" for i, (f, a, b) in enumerate(spans)))
            assert run_cli("run", tmp_path / f"{name}.csv", "--video-col", "url", "--clips-col", "start,end", "--caption-col", "text", "-o", out,
                           *COMMON, "--allow-private-hosts", "--set", f"video.spool_dir={spool}", *settings) == 0
            assert srv.count("/files/talk.mp4") == 1 and srv.count("/files/gone.mp4") == 1
        assert os.listdir(spool) == []
        return out

    out = run_remote("out")
    assert {r["key"]: r["reason"] for r in manifest(out)} == {
        "00000_000000000_0000": "", "00000_000000001": "fetch.not_found", "00000_000000002_0000": "",
        "00000_000000003": "fetch.not_found", "00000_000000004_0000": ""}
    write(tmp_path / "local.csv", "path,start,end,text\n" + "".join(
        f"{clips / f},{a},{b},clip {i}\n" for i, (f, a, b) in enumerate(spans) if f == "talk.mp4"))
    assert run_cli("run", tmp_path / "local.csv", "--video-col", "path", "--clips-col", "start,end", "--caption-col", "text", "-o", local, *COMMON) == 0
    remote = {x["txt"]: x["mp4"] for x in samples(out)}
    assert len(remote) == 3 and remote == {x["txt"]: x["mp4"] for x in samples(local)}

    # a video's rows stay in one staging shard, however few videos a shard takes, though the
    # table interleaves them (chunks.py lays the rows out by video)
    one = run_remote("one", "--set", "video.videos_per_shard=1")
    assert {x["txt"]: x["mp4"] for x in samples(one)} == remote
    assert len({r["shard"] for r in manifest(one)}) == 2  # talk's three rows in one shard, gone's two in the other


def test_retry_failed_fetches_only_the_videos_that_failed(clips, tmp_path):
    """A video that was missing (fetch.not_found) is retried; the one cut into clips before
    keeps its clips and is not fetched again; the result equals a run in which nothing failed."""
    from tests.httpserver import LoopbackServer

    out, fresh = tmp_path / "out", tmp_path / "fresh"
    args = (*COMMON, "--video-col", "url", "--caption-col", "text", "--allow-private-hosts", "--keep-staging",
            "--set", "video.uncued=windows", "--set", "video.window=1.0")
    with LoopbackServer() as srv:
        srv.files["talk.mp4"] = (clips / "talk.mp4").read_bytes()
        write(tmp_path / "videos.csv", f"url,text\n{srv.url('/files/talk.mp4')},a talk\n{srv.url('/files/whole.mp4')},late\n")
        assert run_cli("run", tmp_path / "videos.csv", "-o", out, *args) == 0
        first = manifest(out)
        assert [r["reason"] for r in first if r["key"] == "00000_000000001"] == ["fetch.not_found"]
        clips_before = sorted(r["key"] for r in first if r["status"] == "kept")
        assert len(clips_before) > 1
        srv.files["whole.mp4"] = (clips / "whole.mp4").read_bytes()
        assert run_cli("run", tmp_path / "videos.csv", "-o", out, *args, "--retry-failed") == 0
        assert srv.count("/files/talk.mp4") == 1 and srv.count("/files/whole.mp4") == 2
        assert run_cli("run", tmp_path / "videos.csv", "-o", fresh, *args) == 0
    kept = sorted(r["key"] for r in manifest(out) if r["status"] == "kept")
    assert stats(out)["failed"] == {} and kept == sorted(clips_before + [k for k in kept if k.startswith("00000_000000001_")])
    assert any(k.startswith("00000_000000001_") for k in kept)
    for folder in ("_staging/prepare", "shards"):
        names = sorted(n for n in os.listdir(fresh / folder) if n.endswith((".tar", ".parquet")))
        assert names and {n: (out / folder / n).read_bytes() for n in names} == {n: (fresh / folder / n).read_bytes() for n in names}


def test_a_remote_video_is_opened_from_a_file_in_the_spool_dir(clips, tmp_path):
    from types import SimpleNamespace

    from mmcurate.pipelines.fetch import Fetcher
    from mmcurate.pipelines.media_prepare import _video_source
    from mmcurate.pipelines.shared_media import SharedLoads
    from mmcurate.schemas.config import FetchConfig, RunConfig, VideoConfig
    from mmcurate.schemas.record import SourceRow
    from tests.httpserver import LoopbackServer

    spool = tmp_path / "spool" / "videos"  # not there yet: a fresh worker creates it
    ctx = SimpleNamespace(cfg=RunConfig(video=VideoConfig(spool_dir=str(spool))), fetcher=Fetcher(FetchConfig(allow_private_hosts=True)),
                          shared_media=SharedLoads([]))
    with LoopbackServer() as srv:
        srv.files["whole.mp4"] = (clips / "whole.mp4").read_bytes()
        row = SourceRow("k", (0, 0), "videos.csv:1", media=srv.url("/files/whole.mp4"))
        with _video_source(ctx, row, None) as media:
            assert os.path.dirname(media) == str(spool)
            with open(media, "rb") as f:
                assert f.read() == srv.files["whole.mp4"]
    assert os.listdir(spool) == []


def test_a_spool_dir_that_cannot_be_created_fails_at_launch_in_one_line(clips, tmp_path, capsys):
    (tmp_path / "a_file").write_text("not a folder")
    write(tmp_path / "videos.csv", f"path,text\n{clips / 'whole.mp4'},a clip\n")
    spool = tmp_path / "a_file" / "spool"
    assert run_cli("run", tmp_path / "videos.csv", "--video-col", "path", "--caption-col", "text", "-o", tmp_path / "out",
                   *COMMON, "--set", f"video.spool_dir={spool}") == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"mmcurate: error: ConfigError: video.spool_dir {str(spool)!r}: cannot create it (Not a directory)"]
    assert not (tmp_path / "out" / "stats.json").exists()


def test_video_clip_score_is_the_mean_over_its_frames(clips, tmp_path):
    pytest.importorskip("clip")
    from mmcurate.filters.clip_score import ClipScorer
    from mmcurate.pipelines.clip_model import load_clip

    folder = tmp_path / "in"
    os.makedirs(folder)
    for name in ("whole.mp4", "whole.txt", "talk.mp4", "talk.srt"):
        os.link(clips / name, folder / name)
    out = tmp_path / "out"
    assert run_cli("run", folder, "--format", "video", "-o", out, *COMMON, "--clip-model", "tiny", "--no-clip-filter",
                   "--keep-staging", "--set", "video.frames=4") == 0
    scores = {r["key"]: r["clip_score"] for r in manifest(out) if r["status"] == "kept"}
    assert sorted(scores) == ["talk_0000", "talk_0001", "talk_0003", "whole_0000"]
    scorer = ClipScorer.create(load_clip("tiny", ""), device="cpu")
    staged = {}
    for path in glob.glob(str(out / "_staging" / "prepare" / "*.tar")):
        with tarfile.open(path) as tar:
            for m in tar.getmembers():
                staged.setdefault(m.name.split(".", 1)[0], {})[m.name.split(".", 1)[1]] = tar.extractfile(m).read()
    for key, score in scores.items():
        frames = [staged[key][f"frame{i}.jpg"] for i in range(4)]
        caption = staged[key]["txt"].decode()
        expected = sum(scorer.score(frames, [caption] * 4).scores) / 4
        assert score == pytest.approx(expected, abs=1e-5), key
    assert all("frame0.jpg" not in x for x in samples(out))  # scoring frames stay in staging


@pytest.mark.skipif(not os.path.isdir(SHARED_VIDEO), reason="../shared/data/video is absent")
def test_real_clips_with_and_without_captions(tmp_path):
    folder = tmp_path / "in"
    os.makedirs(folder)
    for name in os.listdir(SHARED_VIDEO):
        os.symlink(os.path.join(SHARED_VIDEO, name), folder / name)
    out = tmp_path / "strict"  # captions required: the three uncaptioned clips are accounted, not lost
    assert run_cli("run", folder, "--format", "video", "-o", out, *COMMON) == 0
    reasons = sorted((r["key"], r["reason"]) for r in manifest(out))
    assert reasons == [("msvd", "input.missing_caption"), ("video8105", "input.missing_caption"), ("video9149_0000", ""),
                       ("video9462", "input.missing_caption"), ("video9818_0000", "")]
    got = {x["__key__"]: x for x in samples(out)}
    assert got["video9149_0000"]["txt"].decode() == "a boy and a girl are singing for a competition."

    out = tmp_path / "all"  # video only: every clip is kept whole, the captioned ones with their caption
    assert run_cli("run", folder, "--format", "video", "--require", "video", "-o", out, *COMMON) == 0
    got = {x["__key__"]: x for x in samples(out)}
    assert sorted(got) == ["msvd_0000", "video8105_0000", "video9149_0000", "video9462_0000", "video9818_0000"]
    for key, sample in got.items():
        doc = json.loads(sample["json"])
        with av.open(io.BytesIO(sample["mp4"])) as c:
            frames = sum(1 for _ in c.decode(video=0))
            stream = c.streams.video[0]
            assert (stream.width, stream.height) == tuple(doc["size"])
        assert doc["frames"] == frames and doc["duration"] == pytest.approx(frames / doc["fps"], abs=1e-3), key
        assert doc["end"] - doc["start"] == pytest.approx(doc["duration"], abs=1e-3) and doc["duration"] > 5
        assert "audio_gap" not in doc, key  # real soundtracks cover their clips to within a frame
    assert got["video9818_0000"]["txt"].decode() == "a woman is applying eye makeup with a black brush."
    assert got["msvd_0000"]["txt"] == b""


@pytest.mark.skipif(not os.path.isdir(SHARED_VIDEO), reason="../shared/data/video is absent")
def test_real_near_duplicate_clips_match_at_most_frames_not_one(tmp_path):
    """Real clips, a half-size 15 fps low-quality copy of each, and two splices of different
    clips that pass through black at their middle. Each copy is dropped for its original; the
    two splices are kept although their middle frames are alike (all black). Compared by the
    middle frame alone (video.frames=1), one splice is dropped for the other."""
    folder = tmp_path / "in"
    os.makedirs(folder)
    originals = ["video8105", "video9149", "video9462", "video9818"]
    for name in originals:
        os.symlink(os.path.join(SHARED_VIDEO, f"{name}.mp4"), folder / f"{name}.mp4")
        vm.reencoded_copy(os.path.join(SHARED_VIDEO, f"{name}.mp4"), folder / f"{name}_copy.mp4")
    vm.spliced_through_black(*(os.path.join(SHARED_VIDEO, f"{n}.mp4") for n in originals[:2]), folder / "splice_a.mp4")
    vm.spliced_through_black(*(os.path.join(SHARED_VIDEO, f"{n}.mp4") for n in originals[2:]), folder / "splice_b.mp4")
    near = ("--workers", "2", "--no-progress", "--set", "output.splits=train=1.0", "--require", "video")
    out = tmp_path / "out"
    assert run_cli("run", folder, "--format", "video", "-o", out, *near) == 0
    got = sorted((r["key"], r["reason"], r["dup_of"]) for r in manifest(out))
    copies = [(f"{n}_copy_0000", "duplicate.near_image", f"{n}_0000") for n in originals]
    assert got == sorted([(f"{n}_0000", "", "") for n in originals] + copies + [("splice_a_0000", "", ""), ("splice_b_0000", "", "")])
    assert all(len(r["frame_hashes"]) == 6 for r in manifest(out))  # [phash, dhash] of 3 frames

    out = tmp_path / "middle"
    assert run_cli("run", folder, "--format", "video", "-o", out, *near, "--set", "video.frames=1") == 0
    got = {r["key"]: (r["reason"], r["dup_of"]) for r in manifest(out)}
    assert got["splice_b_0000"] == ("duplicate.near_image", "splice_a_0000") and got["splice_a_0000"] == ("", "")


def test_a_clip_beyond_the_end_of_its_soundtrack_is_dropped_as_audio_gap(tmp_path):
    """The sound stops at 2 s of a 4-s video: the cue inside it is a clip, the cue after it is
    video.audio_gap (its detail says how much is missing), unless video.max_audio_gap allows it."""
    root = tmp_path / "in"
    os.makedirs(root)
    vm.make_video(root / "mute.mp4", seconds=4.0, audio_span=(0.0, 2.0))
    write(root / "mute.srt", "1\n00:00:00,000 --> 00:00:01,500\nwith sound\n\n2\n00:00:02,500 --> 00:00:03,500\nsilent\n")
    out = tmp_path / "strict"
    assert run_cli("run", root, "--format", "video", "-o", out, *COMMON) == 0
    rows = {r["key"]: r for r in manifest(out)}
    assert {k: (r["status"], r["reason"]) for k, r in rows.items()} == {
        "mute_0000": ("kept", ""), "mute_0001": ("dropped", "video.audio_gap")}
    assert rows["mute_0001"]["error"].startswith("1.000 s of the clip's 1.000 s have no source audio")
    assert (stats(out)["dropped"], stats(out)["kept"]) == ({"video.audio_gap": 1}, 1)

    out = tmp_path / "lenient"
    assert run_cli("run", root, "--format", "video", "-o", out, *COMMON, "--set", "video.max_audio_gap=1.5") == 0
    docs = {x["__key__"]: json.loads(x["json"]) for x in samples(out)}
    assert sorted(docs) == ["mute_0000", "mute_0001"]
    assert "audio_gap" not in docs["mute_0000"] and docs["mute_0001"]["audio_gap"] == pytest.approx(1.0)


def test_a_table_of_videos_with_given_clip_spans_and_a_caption_each(tmp_path):
    """--clips-col: each span is cut as given (clip i is span i, frame-exact), with the caption
    at its place in the caption list, or the one caption every span shares. Spans too short,
    outside the video, malformed or with a caption count that fits neither way are rows with
    their reasons."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    root = tmp_path / "in"
    os.makedirs(root)
    vm.make_video(root / "v1.mp4", seconds=4.0)
    vm.make_video(root / "v2.mp4", seconds=2.0)
    pq.write_table(pa.table({
        "id": ["talk", "pair", "count", "gap", "nocap"],
        "video": ["v1.mp4", "v2.mp4", "v2.mp4", "v1.mp4", "v1.mp4"],
        "spans": [[[1.0, 3.0], [0.0, 0.5], [2.5, 9.0], [10.0, 12.0]], [[0.0, 1.0], [1.0, 2.0]], [[0.0, 1.0], [1.0, 2.0]],
                  [[0.0, 1.0], [2.0, 3.0]], [[3.0, 4.0]]],
        "captions": [["first words", "too short", "clamped at the end", "outside"], ["shared"], ["a", "b", "c"], [None, "second only"], None],
    }), root / "clips.parquet")
    with open(root / "clips.csv", "w", newline="") as f:
        csv.writer(f).writerows([
            ("id", "video", "spans", "captions"),
            ("clock", "v1.mp4", '[["0:00:01.000", "0:00:02"]]', "by the clock"),
            ("bad", "v1.mp4", "[[1, 2], [3]]", "never cut"),
            ("whole", "v2.mp4", "", "no spans: the whole video"),
        ])
    flags = ("--video-col", "video", "--clips-col", "spans", "--caption-col", "captions", "--key-col", "id")
    out = tmp_path / "out"
    assert run_cli("run", root / "clips.parquet", root / "clips.csv", "-o", out, *flags, *COMMON) == 0
    rows = {r["key"]: r for r in manifest(out)}
    assert {k: (r["reason"], r["error"]) for k, r in rows.items() if r["status"] != "kept"} == {
        "talk_0001": ("video.clip_too_short", "0.500 s < 1 s"),
        "talk_0003": ("video.clip_outside", "10.000-12.000 s; the video lasts 4.000 s"),
        "count": ("input.bad_row", "3 captions for 2 spans in column 'spans': give one caption, or one per span"),
        "gap_0000": ("input.missing_caption", ""),  # its caption is null: the other span keeps its own
        "nocap_0000": ("input.missing_caption", ""),  # no caption at all, as for a video without spans
        "bad": ("input.bad_row", "column 'spans': span 1: [3] is not a [start, end] pair"),
    }
    got = {x["__key__"]: x for x in samples(out)}
    expected = {  # key: (first frame, frames, text)
        "talk_0000": (25, 50, "first words"), "talk_0002": (63, 37, "clamped at the end"),
        "pair_0000": (0, 25, "shared"), "pair_0001": (25, 25, "shared"),
        "clock_0000": (25, 25, "by the clock"), "whole_0000": (0, 50, "no spans: the whole video"),
        "gap_0001": (50, 25, "second only"),
    }
    assert sorted(got) == sorted(expected)
    for key, (first, n, text) in expected.items():
        assert _clip_frames(got[key]["mp4"]) == list(range(first, first + n)), key
        assert got[key]["txt"].decode() == text
    assert json.loads(got["talk_0002"]["json"])["end"] == pytest.approx(4.0)
    s = stats(out)
    assert s["identity_ok"] and s["kept"] == 7


def test_kinetics_layout_start_and_end_columns_give_one_clip_per_row(tmp_path):
    """--clips-col time_start,time_end (Kinetics' csv): a clip per row; the label is its caption."""
    root = tmp_path / "in"
    os.makedirs(root)
    vm.make_video(root / "abc.mp4", seconds=4.0)
    write(root / "kinetics.csv", "label,youtube_id,time_start,time_end,split,path\n"
          "juggling balls,abc,1,3,train,abc.mp4\n"
          "unboxing,abc,,,train,abc.mp4\n"
          "tying knot,abc,2,x,train,abc.mp4\n")
    out = tmp_path / "out"
    assert run_cli("run", root / "kinetics.csv", "-o", out, "--video-col", "path", "--clips-col", "time_start,time_end",
                   "--caption-col", "label", *COMMON, "--set", "video.uncued=windows", "--set", "video.window=2") == 0
    rows = {r["key"]: r for r in manifest(out)}
    assert {k: (r["status"], r["reason"]) for k, r in rows.items()} == {
        "00000_000000000_0000": ("kept", ""), "00000_000000001_0000": ("kept", ""), "00000_000000001_0001": ("kept", ""),
        "00000_000000002": ("failed", "input.bad_row")}
    assert rows["00000_000000002"]["error"] == "column 'time_start,time_end': span 0: 'x' is not a time (seconds, or H:MM:SS.fff)"
    got = {x["__key__"]: x for x in samples(out)}
    assert _clip_frames(got["00000_000000000_0000"]["mp4"]) == list(range(25, 75))
    assert got["00000_000000000_0000"]["txt"].decode() == "juggling balls"
    assert json.loads(got["00000_000000000_0000"]["json"])["split"] == "train"  # other columns ride along
    # a row without times is an uncued video: here 2-s windows with the row's caption
    assert [_clip_frames(got[f"00000_000000001_000{i}"]["mp4"])[0] for i in (0, 1)] == [0, 50]


def test_clips_col_without_video_or_audio_col_is_a_config_error(tmp_path, capsys):
    write(tmp_path / "t.csv", "url,caption\na.jpg,x\n")
    assert run_cli("run", tmp_path / "t.csv", "--clips-col", "spans", "-o", tmp_path / "out", *COMMON) == 1
    assert capsys.readouterr().err.strip().splitlines() == [
        "mmcurate: error: ConfigError: input.clips_col (--clips-col) needs input.video_col (--video-col) or input.audio_col (--audio-col): "
        "it gives the clips of a table of videos or audio files"]
    assert run_cli("run", tmp_path / "t.csv", "--video-col", "url", "--clips-col", "a,b,c", "-o", tmp_path / "out", *COMMON) == 1
    assert capsys.readouterr().err.strip().splitlines() == [
        "mmcurate: error: ConfigError: input.clips_col 'a,b,c': one column of span lists, or two columns START,END"]


def _tinted(frames: list, cb: int, cr: int) -> list:
    """The frames with their luma kept and one flat chroma (what grey-level hashes cannot see)."""
    import numpy as np
    from PIL import Image

    out = []
    for rgb in frames:
        ycc = np.asarray(Image.fromarray(rgb).convert("YCbCr")).copy()
        ycc[..., 1], ycc[..., 2] = cb, cr
        out.append(np.asarray(Image.fromarray(ycc, "YCbCr").convert("RGB")))
    return out


def test_clips_alike_in_grey_levels_are_told_apart_by_their_colours(tmp_path):
    """A red-tinted clip, a blue-tinted clip with the same luma, and a re-encoded copy of the
    red one: only the copy is a near-duplicate. With dedup.max_colour_distance=0 (colours
    ignored) the blue clip, whose key sorts first, survives and both red clips are dropped for it."""
    folder = tmp_path / "in"
    os.makedirs(folder)
    frames = [vm.numbered(i) for i in range(75)]
    vm.encode_frames(folder / "tint_red.mp4", _tinted(frames, 90, 190), 25, crf=18)
    vm.encode_frames(folder / "tint_red_copy.mp4", _tinted(frames, 90, 190), 25, crf=40)
    vm.encode_frames(folder / "tint_blue.mp4", _tinted(frames, 190, 90), 25, crf=18)
    near = ("--workers", "2", "--no-progress", "--set", "output.splits=train=1.0", "--require", "video")
    out = tmp_path / "out"
    assert run_cli("run", folder, "--format", "video", "-o", out, *near) == 0
    rows = {r["key"]: r for r in manifest(out)}
    assert {k: (r["reason"], r["dup_of"]) for k, r in rows.items()} == {
        "tint_blue_0000": ("", ""), "tint_red_0000": ("", ""), "tint_red_copy_0000": ("duplicate.near_image", "tint_red_0000")}
    assert all(len(r["frame_colours"]) == 3 * 12 and r["colour"] == r["frame_colours"][12:24] for r in rows.values())

    out = tmp_path / "colour_blind"
    assert run_cli("run", folder, "--format", "video", "-o", out, *near, "--set", "dedup.max_colour_distance=0") == 0
    assert {r["key"]: (r["reason"], r["dup_of"]) for r in manifest(out)} == {
        "tint_blue_0000": ("", ""), "tint_red_0000": ("duplicate.near_image", "tint_blue_0000"),
        "tint_red_copy_0000": ("duplicate.near_image", "tint_blue_0000")}
