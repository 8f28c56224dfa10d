"""`validate` passes on a real run and fails, naming the problem, on tampered output."""

import json
import os
import shutil
import tarfile

import pytest

from mmcurate.pipelines.demo import generate
from mmcurate.pipelines.validate import validate
from tests.util import run_cli


@pytest.fixture(scope="module")
def good_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("v")
    generate(str(base / "in"), samples=30, seed=3)
    out = base / "out"
    assert run_cli("run", base / "in", "-o", out, "--workers", "1", "--shard-size", "10", "--no-progress") == 0
    return out


@pytest.fixture
def copy(good_run, tmp_path):
    dst = tmp_path / "out"
    shutil.copytree(good_run, dst)
    return dst


def test_a_fresh_run_is_valid(good_run, capsys):
    assert validate(str(good_run)) == []
    assert run_cli("validate", good_run) == 0
    assert "valid" in capsys.readouterr().out


def test_truncated_tar(copy):
    tar = copy / "shards" / "00000.tar"
    tar.write_bytes(tar.read_bytes()[:3000])
    problems = validate(str(copy))
    assert any("00000.tar" in p and ("truncated" in p or "unreadable" in p or "differ" in p) for p in problems), problems
    assert run_cli("validate", copy) == 1


def test_removed_member_and_dotted_key(copy):
    src = copy / "shards" / "00001.tar"
    with tarfile.open(src) as t:
        members = [(m, t.extractfile(m).read()) for m in t.getmembers()]
    with tarfile.open(src, "w") as t:
        for m, data in members[1:]:  # drop the first sample's image
            if m.name == members[4][0].name:
                m.name = "bad.key.txt"
            t.addfile(m, __import__("io").BytesIO(data))
    problems = validate(str(copy))
    assert any("needs media (image, mp4 or audio), txt and json" in p for p in problems), problems
    assert any("bad key" in p or "differ" in p for p in problems), problems


def test_edited_stats_and_manifest(copy):
    doc = json.loads((copy / "stats.json").read_text())
    doc["kept"] += 1
    (copy / "stats.json").write_text(json.dumps(doc))
    problems = validate(str(copy))
    assert any("stats.json: kept" in p for p in problems)
    assert any("inputs" in p and "!=" in p for p in problems)  # the identity no longer balances


def test_missing_manifest(copy):
    os.remove(copy / "shards" / "00002.parquet")
    assert any("00002.parquet: cannot read" in p for p in validate(str(copy)))


def test_split_ranges_that_do_not_match_the_samples(good_run, copy):
    index = json.loads((copy / "index.wids.json").read_text())
    shard = index["shardlist"][1]
    listed = shard["splits"]
    assert sum(r["nsamples"] for r in listed.values()) == shard["nsamples"] and listed["train"]["offset"] == 0
    listed["train"]["bytes"] -= 512
    (copy / "index.wids.json").write_text(json.dumps(index))
    (problem,) = validate(str(copy))
    assert problem.startswith("index.wids.json: the split ranges of shards/00001.tar do not match its samples")


def test_manifests_written_before_a_later_column_are_valid_and_other_missing_columns_are_not(copy):
    import pyarrow.parquet as pq

    path = copy / "shards" / "00000.parquet"
    table = pq.read_table(path)
    pq.write_table(table.drop_columns(["frame_hashes", "frame_hashes_mirror"]), path)  # as before clips had them
    assert validate(str(copy)) == []
    pq.write_table(table.drop_columns(["frame_hashes", "dup_of"]), path)
    assert [p for p in validate(str(copy)) if "missing columns" in p] == [f"{str(copy / 'shards' / '00000')}.parquet: missing columns ['dup_of']"]


def _damage(tar_path, suffix: str) -> str:
    """Overwrite 64 bytes in the middle of the first member ending in suffix, in place: the
    tar stays whole (its headers are checksummed, its data is not). Returns the member's key."""
    with tarfile.open(tar_path) as tar:
        info = next(m for m in tar.getmembers() if m.name.endswith(suffix))
    with open(tar_path, "r+b") as f:
        f.seek(info.offset_data + info.size // 2)
        f.write(bytes(range(64)))
    return info.name[: -len(suffix)]


def test_a_damaged_audio_or_video_member_is_found_by_its_sha256(tmp_path):
    """A sample json's sha256 pins its clip's bytes (video) or its audio's decoded PCM: damage
    inside a member, which the tar cannot show, passed as valid before."""
    from tests.audio_media import tone

    for i, freq in enumerate((300.0, 500.0, 700.0)):
        (tmp_path / "in").mkdir(exist_ok=True)
        (tmp_path / "in" / f"t{i}.wav").write_bytes(tone(2.0, freq=freq))
        (tmp_path / "in" / f"t{i}.txt").write_text(f"a tone of {freq:g} hertz")
    out = tmp_path / "out"
    assert run_cli("run", tmp_path / "in", "-o", out, "--workers", "1", "--no-progress", "--dedup", "exact") == 0
    assert validate(str(out)) == []
    key = _damage(out / "shards" / "00000.tar", ".flac")
    [problem] = validate(str(out))
    assert problem.startswith(f"{out}/shards/00000.tar: {key}.flac ") and ("is damaged: it decodes to PCM" in problem or "does not decode" in problem)
    assert run_cli("validate", out) == 1


def test_a_clip_whose_bytes_are_not_its_json_sha256_is_damaged():
    import hashlib

    from mmcurate.pipelines.validate import media_problem

    clip = bytes(range(256)) * 40
    doc = {"modality": "video", "sha256": hashlib.sha256(clip).hexdigest()}
    assert media_problem("mp4", clip, doc) == ""
    damaged = clip[:5000] + b"\0" * 64 + clip[5064:]
    assert media_problem("mp4", damaged, doc).startswith("is damaged: its sha256 ")
    assert media_problem("mp4", damaged, {"modality": "video"}) == ""  # no sha256 to check against
