"""Inputs and outputs on s3:// and gs:// against real APIs on loopback (moto's S3 server,
gcp-storage-emulator): the same shards, byte for byte, as a local run, and every read-side
command works on the bucket."""

import io
import json

import pytest
from apache_beam.io.filesystems import FileSystems

from mmcurate.pipelines.demo import generate
from mmcurate.pipelines.tario import read_samples
from tests.util import run_cli, shard_bytes, stats, upload_tree


@pytest.fixture
def beam_options_restored(monkeypatch):
    monkeypatch.setattr(FileSystems, "_pipeline_options", FileSystems._pipeline_options)


def s3_bytes(s3, url: str) -> bytes:
    bucket, _, key = url[len("s3://"):].partition("/")
    buf = io.BytesIO()
    s3.client.download_fileobj(bucket, key, buf)
    return buf.getvalue()


def tar_samples(data: bytes) -> dict:
    with io.BytesIO(data) as f:
        return {s["__key__"]: s for s in read_samples(f)}


def test_s3_input_and_output_match_a_local_run(tmp_path, s3_server, beam_options_restored, capsys):
    generate(str(tmp_path / "in"), samples=40, seed=5)
    source = upload_tree(s3_server, str(tmp_path / "in"), "raw", "photos")
    s3_server.client.create_bucket(Bucket="curated")
    common = ["--workers", "2", "--shard-size", "16", "--no-progress"]
    local = tmp_path / "local"
    assert run_cli("run", tmp_path / "in", "-o", local, *common) == 0
    # local input, s3 output: the very same bytes
    assert run_cli("run", tmp_path / "in", "-o", "s3://curated/from-local", *common, "--", *s3_server.beam_args) == 0
    local_shards = shard_bytes(local)
    assert len(local_shards) == 3
    for name, data in local_shards.items():
        assert s3_bytes(s3_server, f"s3://curated/from-local/shards/{name}") == data, name

    # s3 input, s3 output: the same samples; only each json's `source` names the bucket
    remote = "s3://curated/run"
    assert run_cli("run", source, "-o", remote, *common, "--", *s3_server.beam_args) == 0
    listed = s3_server.client.list_objects_v2(Bucket="curated", Prefix="run/")["Contents"]
    names = sorted(o["Key"][len("run/"):] for o in listed)
    assert not any(n.startswith("_staging/") or ".tmp-" in n for n in names)  # staging removed, no temp names left
    assert {n for n in names if n.startswith("shards/") and n.endswith(".tar")} == {f"shards/{n}" for n in local_shards}
    for name, data in local_shards.items():
        want, got = tar_samples(data), tar_samples(s3_bytes(s3_server, f"{remote}/shards/{name}"))
        assert list(got) == list(want)
        for key, sample in want.items():
            doc, remote_doc = json.loads(sample["json"]), json.loads(got[key]["json"])
            assert remote_doc.pop("source") == source + "/" + doc.pop("source")[len(str(tmp_path / "in")) + 1:]
            assert remote_doc == doc and got[key]["jpg"] == sample["jpg"] and got[key]["txt"] == sample["txt"]
    remote_stats = json.loads(s3_bytes(s3_server, f"{remote}/stats.json"))
    volatile = ("wall_time_s", "input_specs")
    assert {k: v for k, v in remote_stats.items() if k not in volatile} == {k: v for k, v in stats(local).items() if k not in volatile}
    capsys.readouterr()

    # the read-side commands take the same Beam options after `--`
    assert run_cli("validate", remote, "--", *s3_server.beam_args) == 0
    assert "valid" in capsys.readouterr().out
    assert run_cli("inspect", remote, "-o", tmp_path / "sheet.png", "--n", "4", "--", *s3_server.beam_args) == 0
    assert "(0 without media)" in capsys.readouterr().out and (tmp_path / "sheet.png").stat().st_size > 10_000
    assert run_cli("report", remote, "-o", f"{remote}/report.html", "--", *s3_server.beam_args) == 0
    assert b"<svg" in s3_bytes(s3_server, f"{remote}/report.html")


def test_gs_output_matches_a_local_run(tmp_path, gcs_server, beam_options_restored, capsys):
    from mmcurate.pipelines import fileio

    generate(str(tmp_path / "in"), samples=30, seed=6)
    common = ["--workers", "2", "--shard-size", "16", "--no-progress"]
    local = tmp_path / "local"
    assert run_cli("run", tmp_path / "in", "-o", local, *common) == 0
    assert run_cli("run", tmp_path / "in", "-o", "gs://bkt/run", *common, "--", *gcs_server) == 0
    local_shards = shard_bytes(local)
    assert len(local_shards) == 2
    for name, data in local_shards.items():
        assert fileio.read_bytes(f"gs://bkt/run/shards/{name}") == data, name
    assert not [p for p in fileio.list_files("gs://bkt/run") if "/_staging/" in p or ".tmp-" in p]
    remote_stats = fileio.read_json("gs://bkt/run/stats.json")
    assert remote_stats["kept"] == stats(local)["kept"] and remote_stats["shards"] == stats(local)["shards"]
    capsys.readouterr()
    assert run_cli("validate", "gs://bkt/run", "--", *gcs_server) == 0
    assert "valid" in capsys.readouterr().out
