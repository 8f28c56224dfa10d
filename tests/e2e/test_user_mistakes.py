"""Mistakes a user makes: each gets one plain line before any work (or a note), and nothing of
the user's is lost. Found by a fresh-user audit (2026-11-24)."""

import os
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mmcurate.pipelines import sources
from tests.util import REPO, by_key, jpeg, run_cli, shard_bytes, stats, write

ARGS = ["--workers", "1", "--no-progress"]


def photos(folder, n: int, start: int = 0) -> str:
    for i in range(start, start + n):
        write(os.path.join(folder, f"p{i}.jpg"), jpeg(300, 240, seed=i))
        write(os.path.join(folder, f"p{i}.txt"), f"photo number {i}")
    return str(folder)


def error_of(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_an_output_folder_of_other_files_is_refused_and_left_as_it_was(tmp_path, capsys):
    src = photos(tmp_path / "in", 3)
    mine = tmp_path / "mine"
    write(str(mine / "shards" / "mydata.tar"), b"keep")
    write(str(mine / "notes.txt"), b"mine")
    assert run_cli("run", src, "-o", mine, *ARGS) == 1
    assert error_of(capsys) == (f"mmcurate: error: ConfigError: output folder {mine} already holds files mmcurate did not write "
                                "(notes.txt): give a new or empty folder")
    assert sorted(os.listdir(mine)) == ["notes.txt", "shards"] and os.listdir(mine / "shards") == ["mydata.tar"]
    write(str(tmp_path / "afile"), b"x")
    assert run_cli("run", src, "-o", tmp_path / "afile", *ARGS) == 1
    assert error_of(capsys) == f"mmcurate: error: ConfigError: output {tmp_path / 'afile'} is a file: give a folder (-o)"


def test_a_rerun_removes_only_its_own_stale_shards_and_says_when_inputs_changed(tmp_path, capsys):
    src = photos(tmp_path / "in", 6)
    out = tmp_path / "out"
    assert run_cli("run", src, "-o", out, "--shard-size", "2", *ARGS) == 0
    assert sorted(shard_bytes(out)) == ["00000.tar", "00001.tar", "00002.tar"]
    write(str(out / "shards" / "mydata.tar"), b"keep")
    write(str(out / "shards" / "README"), b"mine")
    capsys.readouterr()
    other = photos(tmp_path / "other", 2, start=10)
    assert run_cli("run", other, "-o", out, "--shard-size", "2", *ARGS) == 0
    assert f"note: {out} holds the results of a run of other inputs ({src}); this run replaces them" in capsys.readouterr().err
    assert sorted(os.listdir(out / "shards")) == ["00000.parquet", "00000.stats.json", "00000.tar", "README", "mydata.tar"]
    assert stats(out)["kept"] == 2


def test_an_output_folder_inside_the_input_folder_is_not_read_back(tmp_path):
    src = photos(tmp_path / "in", 4)
    out = os.path.join(src, "out")
    assert run_cli("run", src, "-o", out, *ARGS) == 0
    first = shard_bytes(out)
    assert run_cli("run", src, "-o", out, *ARGS) == 0
    assert stats(out)["inputs"] == 4 and shard_bytes(out) == first


def test_a_table_without_its_columns_fails_naming_the_columns_it_has(tmp_path, capsys):
    write(str(tmp_path / "imgs" / "a.jpg"), jpeg(300, 240))
    rows = pa.table({"URL": ["imgs/a.jpg"], "TEXT": ["a photo"], "extra1": [1]})
    pq.write_table(rows, tmp_path / "urls.parquet")
    assert run_cli("run", tmp_path / "urls.parquet", "-o", tmp_path / "o", *ARGS) == 1
    assert error_of(capsys) == (f"mmcurate: error: InputError: {tmp_path / 'urls.parquet'}: no column 'url' "
                                "(its columns: URL, TEXT, extra1); name yours with --url-col")
    assert run_cli("run", tmp_path / "urls.parquet", "-o", tmp_path / "o", "--url-col", "URL", *ARGS) == 1
    assert "no column 'caption' (its columns: URL, TEXT, extra1); name yours with --caption-col" in error_of(capsys)
    write(str(tmp_path / "rows.jsonl"), '{"url": "imgs/a.jpg"}\n{"url": "imgs/a.jpg", "caption": "later"}\n')
    write(str(tmp_path / "rows.csv"), "link,caption\nimgs/a.jpg,a photo\n")
    cfg = sources.RunConfig()
    assert len(sources.plan([str(tmp_path / "rows.jsonl")], cfg)[1]) == 1  # a key in some row is a column
    with pytest.raises(sources.InputError, match=r"rows.csv: no column 'url' \(its columns: link, caption\)"):
        sources.plan([str(tmp_path / "rows.csv")], cfg)
    write(str(tmp_path / "rows.tsv"), "imgs/a.jpg\ta photo\nhttps://example.com/b.png\tanother\n")  # no header row
    with pytest.raises(sources.InputError, match=r"rows.tsv: no column 'url' \(its columns: imgs/a.jpg, a photo\); name yours "
                       r"with --url-col; its first row looks like data, not column names: add a header row$"):
        sources.plan([str(tmp_path / "rows.tsv")], cfg)
    with pytest.raises(sources.InputError, match=r"with --url-col$"):  # (names, not data: no hint)
        sources.plan([str(tmp_path / "rows.csv")], cfg)
    no_captions = sources.RunConfig.from_dict({"input": {"url_col": "URL", "require": "image"}})  # not required: none is fine
    assert len(sources.plan([str(tmp_path / "urls.parquet")], no_captions)[1]) == 1
    assert run_cli("run", tmp_path / "urls.parquet", "-o", tmp_path / "o", "--url-col", "URL", "--caption-col", "TEXT", *ARGS) == 0
    assert stats(tmp_path / "o")["kept"] == 1


def test_folders_that_give_nothing_to_read_fail_saying_what_they_hold(tmp_path, capsys):
    os.makedirs(tmp_path / "empty")
    assert run_cli("run", tmp_path / "empty", "-o", tmp_path / "o", *ARGS) == 1
    assert error_of(capsys) == f"mmcurate: error: InputError: no inputs: {tmp_path / 'empty'} is empty"
    for name in ("a.csv", "b.csv", "c.md"):
        write(str(tmp_path / "notes" / name), "x")
    assert run_cli("run", tmp_path / "notes", "-o", tmp_path / "o", *ARGS) == 1
    assert error_of(capsys) == f"mmcurate: error: InputError: no inputs for --format folder in {tmp_path / 'notes'} (it holds 2 .csv, 1 .md)"
    write(str(tmp_path / "speech" / "a.wav"), b"RIFF")
    write(str(tmp_path / "speech" / "transcription"), "a hello world")
    write(str(tmp_path / "clips" / "v.mp4"), b"")
    write(str(tmp_path / "shards" / "00000.tar"), b"")
    write(str(tmp_path / "shards" / "00000.stats.json"), b"{}")
    assert [sources.detect_format(str(tmp_path / d)) for d in ("speech", "clips", "shards")] == ["audio", "video", "webdataset"]
    assert run_cli("run", tmp_path / "speech", "-o", tmp_path / "o", "--format", "folder", *ARGS) == 1
    assert error_of(capsys).endswith("(it holds 1 .wav, 1 (no extension)); its files look like --format audio")


def test_coco_with_a_missing_images_folder_fails_at_once(tmp_path, capsys):
    write(str(tmp_path / "captions.json"), '{"images": [], "annotations": []}')
    assert run_cli("run", tmp_path / "captions.json", "--images", tmp_path / "nosuch", "-o", tmp_path / "o", *ARGS) == 1
    assert error_of(capsys) == f"mmcurate: error: InputError: images folder not found: {tmp_path / 'nosuch'} (--images)"


def test_clip_without_its_packages_or_clip_flags_without_a_model(tmp_path, capsys, monkeypatch):
    import importlib.util

    src = photos(tmp_path / "in", 1)
    assert run_cli("run", src, "-o", tmp_path / "o", "--clip-threshold", "0.5", "--no-clip-filter", *ARGS) == 1
    assert error_of(capsys) == "mmcurate: error: --clip-threshold, --no-clip-filter need --clip-model: without a model nothing is scored"
    find = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "clip" else find(name, *a))
    assert run_cli("run", src, "-o", tmp_path / "o", "--clip-model", "tiny", *ARGS) == 1
    assert error_of(capsys) == ("mmcurate: error: ConfigError: --clip-model (clip.model) needs clip-anytorch, not installed here: "
                                "pip install 'mmcurate[clip]'")


def test_config_mistakes_and_flags_answer_in_one_line(tmp_path, capsys):
    write(str(tmp_path / "flat.yaml"), "image_size: 128\n")
    write(str(tmp_path / "bad.yaml"), "image:\n  image_size: [1, 2\nfoo: 1\n")
    assert run_cli("run", "x", "-o", tmp_path / "o", "--config", tmp_path / "flat.yaml") == 1
    assert error_of(capsys) == ("mmcurate: error: ConfigError: config 'image_size': 128 is not a section of settings "
                                "(it belongs under `image:`, indented; see `mmcurate config`)")
    assert run_cli("run", "x", "-o", tmp_path / "o", "--config", tmp_path / "bad.yaml") == 1
    assert error_of(capsys) == (f"mmcurate: error: ConfigError: --config {tmp_path / 'bad.yaml'}: not valid YAML at line 3, column 4: "
                                "expected ',' or ']', but got ':'")
    with pytest.raises(SystemExit):
        run_cli("run", "x", "-o", tmp_path / "o", "--workers", "0")
    assert "argument --workers: must be 1 or more, got 0" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run_cli("--version")
    assert capsys.readouterr().out.startswith("mmcurate 0.")
    assert run_cli("inspect", tmp_path, "--reason", "text.nosuch") == 1
    assert error_of(capsys) == "mmcurate: error: unknown reason 'text.nosuch': `mmcurate reasons` lists them"
    with pytest.raises(ValueError):  # --debug after the command: the full error, raised
        run_cli("run", "x", "-o", tmp_path / "o", "--config", tmp_path / "flat.yaml", "--debug")


def test_output_into_a_closed_pipe_ends_quietly():
    """`mmcurate reasons | head -1`: the reader is gone before the output is written."""
    child = subprocess.Popen([sys.executable, "-m", "mmcurate.pipelines.cli", "reasons"], cwd=REPO,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    child.stdout.close()
    assert child.wait(timeout=120) == 0 and child.stderr.read() == b""


def test_a_misspelt_beam_flag_is_named_not_silently_dropped(tmp_path, capsys):
    assert run_cli("run", tmp_path / "nosuch", "-o", tmp_path / "o", "--", "--max_num_worker", "3") == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "note: Beam knows no option --max_num_worker (--max_num_workers?): ignored"
    assert err[1].startswith("mmcurate: error: InputError: input not found")


def test_flickr_captions_whose_images_are_elsewhere_fail_at_once(tmp_path, capsys):
    captions = write(str(tmp_path / "a" / "captions.txt"), "image,caption\np0.jpg,photo number 0\np1.jpg,photo number 1\n")
    photos(tmp_path / "elsewhere", 2)
    assert run_cli("run", captions, "-o", tmp_path / "o", *ARGS) == 1
    assert error_of(capsys) == (f"mmcurate: error: InputError: none of the first 2 images {captions} names (such as p0.jpg) is in "
                                f"{tmp_path / 'a'}: pass the folder that holds them with --images")
    assert run_cli("run", captions, "--images", tmp_path / "elsewhere", "-o", tmp_path / "o", *ARGS) == 0
    assert stats(tmp_path / "o")["kept"] == 2


def tar_of(path, samples: list[dict[str, bytes]]) -> str:
    """A WebDataset tar: one dict of {member name: bytes} per sample, in order."""
    import io
    import tarfile

    with tarfile.open(path, "w") as tar:
        for members in samples:
            for name, data in members.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return str(path)


def test_audio_or_video_shards_are_not_recurated_as_pictures(tmp_path, capsys):
    """Re-curating an audio output with --format webdataset dropped every sample as
    input.missing_image; a video output kept the middle frame and lost every clip."""
    audio = tar_of(tmp_path / "audio.tar", [{"a.flac": b"fLaC", "a.txt": b"ten of clubs", "a.json": b"{}"}])
    assert run_cli("run", audio, "-o", tmp_path / "o1", *ARGS) == 1
    assert error_of(capsys) == (f"mmcurate: error: InputError: {audio} holds audio samples (a.flac): --format webdataset re-curates "
                                "image-text shards only, and would lose the audio; curate it from its source files (--format audio)")
    video = tar_of(tmp_path / "video.tar", [{"v.mp4": b"\0" * 8, "v.jpg": jpeg(seed=1), "v.txt": b"a clip"}])
    assert run_cli("run", video, "--format", "webdataset", "-o", tmp_path / "o2", *ARGS) == 1
    assert "holds video samples (v.mp4)" in error_of(capsys)
    # a clip past the planner's peek at the first samples is counted, not kept as its picture
    mixed = [{f"p{i}.jpg": jpeg(seed=i), f"p{i}.txt": f"photo {i}".encode()} for i in range(20)]
    mixed.append({"v.mp4": b"\0" * 8, "v.jpg": jpeg(seed=30), "v.txt": b"a clip"})
    out = tmp_path / "o3"
    assert run_cli("run", tar_of(tmp_path / "mixed.tar", mixed), "-o", out, "--dedup", "exact", *ARGS) == 0
    s = stats(out)
    assert s["kept"] == 20 and s["dropped"] == {"input.unsupported_media": 1}
    row = by_key(out)["v"]
    assert row["reason"] == "input.unsupported_media" and row["error"] == "v.mp4: audio and video samples are not re-curated from shards"
    # a shard the peek cannot read is no crash of the planner: the read counts it
    garbage = write(str(tmp_path / "garbage.tar"), b"garbage" * 100)
    assert run_cli("run", garbage, "-o", tmp_path / "o4", *ARGS) == 0
    assert stats(tmp_path / "o4")["failed"] == {"input.unreadable": 1}


def test_a_transcripts_file_alone_says_how_to_use_it(tmp_path, capsys):
    """It failed every row as internal.error (a TypeError) before."""
    text = write(str(tmp_path / "cards.transcription"), "<s> ten of clubs </s> (001)\n")
    assert run_cli("run", text, "-o", tmp_path / "o", *ARGS) == 1
    assert error_of(capsys) == (f"mmcurate: error: InputError: {text} is a transcripts file: it gives the text of a key-aligned "
                                f"run, e.g. mmcurate run audio=FOLDER text={text} -o OUT (or video=FOLDER)")


def test_requiring_a_modality_the_run_has_not_is_refused(tmp_path, capsys):
    """--require audio on a picture (or video) run was accepted and ignored."""
    src = photos(tmp_path / "in", 2)
    assert run_cli("run", src, "-o", tmp_path / "o", "--require", "image,audio", *ARGS) == 1
    assert error_of(capsys) == ("mmcurate: error: ConfigError: --require audio: this run's samples have image and text only "
                                "(input.require: what a sample must have, of image and text)")
    assert run_cli("run", src, "-o", tmp_path / "o2", "--require", "image", "--dedup", "exact", *ARGS) == 0


def test_an_unknown_role_is_named(tmp_path, capsys):
    src = photos(tmp_path / "in", 1)
    assert run_cli("run", f"vid={src}", f"text={src}/p0.txt", "-o", tmp_path / "o", *ARGS) == 1
    assert error_of(capsys) == f"mmcurate: error: InputError: unknown role vid= in vid={src}: the roles are image=, audio=, video=, text="


def test_one_media_file_as_the_input_says_to_give_its_folder(tmp_path, capsys):
    """video=clips/a.mp4 suggested --format video, which then asked for a directory."""
    clip = write(str(tmp_path / "clips" / "a.mp4"), b"\0" * 16)
    assert run_cli("run", f"video={clip}", f"text={tmp_path}/t.tsv", "-o", tmp_path / "o", *ARGS) == 1
    assert error_of(capsys) == (f"mmcurate: error: InputError: {clip} is one video file: give the folder that holds it "
                                "(--format video), or a table that lists files (--url-col, --audio-col or --video-col)")
    photo = write(str(tmp_path / "p.jpg"), jpeg())
    assert run_cli("run", photo, "-o", tmp_path / "o2", *ARGS) == 1
    assert "p.jpg is one image file: give the folder that holds it (--format folder)" in error_of(capsys)


def test_image_settings_on_an_audio_or_video_run_are_refused(tmp_path, capsys):
    """--image-size on an audio run was accepted and silently ignored."""
    write(str(tmp_path / "speech" / "a.wav"), b"RIFF")
    write(str(tmp_path / "speech" / "a.txt"), "hello")
    assert run_cli("run", tmp_path / "speech", "-o", tmp_path / "o", "--image-size", "128", "--resize-mode", "center_crop", *ARGS) == 1
    assert error_of(capsys) == ("mmcurate: error: ConfigError: image.resize_mode, image.image_size: image settings apply to pictures; "
                                "this run's samples are audio (see the audio section of `mmcurate config`)")
    write(str(tmp_path / "clips" / "v.mp4"), b"\0" * 8)
    assert run_cli("run", tmp_path / "clips", "-o", tmp_path / "o", "--set", "image.format=webp", *ARGS) == 1
    assert error_of(capsys) == ("mmcurate: error: ConfigError: image.format: image settings apply to pictures; this run's samples "
                                "are video (video frames: video.max_height and video.crf, see `mmcurate config`)")
    # image.threads bounds every modality's CPU work: allowed
    assert run_cli("run", tmp_path / "speech", "-o", tmp_path / "o", "--set", "image.threads=1", *ARGS) == 0
    assert stats(tmp_path / "o")["failed"] == {"audio.decode_error": 1}
