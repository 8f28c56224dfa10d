"""Rerunning into the same output resumes: a run killed with SIGKILL at any moment, then run
again, gives the same bytes as a run never interrupted; no file under a final name is ever
partial; --retry-failed gives failed rows a new attempt."""

from __future__ import annotations

import csv
import glob
import json
import os
import signal
import subprocess
import sys
import tarfile
import time

import pyarrow.parquet as pq
import pytest

from mmcurate.pipelines.demo import generate
from tests.httpserver import LoopbackServer
from tests.util import REPO, by_key, run_cli, shard_bytes, stats

ARGS = ["--workers", "2", "--shard-size", "10", "--no-progress"]
VOLATILE = ("wall_time_s", "resumed_staging_shards")


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    root = tmp_path_factory.mktemp("resume")
    generate(str(root / "in"), samples=120, seed=11)
    assert run_cli("run", root / "in", "-o", root / "ref", *ARGS) == 0
    return root


def files_under_final_names_are_whole(out) -> int:
    """Every file not under a temporary name reads completely; returns how many there are."""
    checked = 0
    for dirpath, _, names in os.walk(out):
        for name in names:
            path = os.path.join(dirpath, name)
            if ".tmp-" in name:
                continue
            if name.endswith(".tar"):
                with tarfile.open(path) as tar:
                    for member in tar:
                        assert len(tar.extractfile(member).read()) == member.size
            elif name.endswith(".parquet"):
                pq.read_table(path)
            elif name.endswith(".json"):
                json.load(open(path, encoding="utf-8"))
            elif name.endswith(".done"):
                assert len(open(path, "rb").read()) == 64
            checked += 1
    return checked


def kill_when(cmd: list[str], ready, timeout: float = 300) -> None:
    """Start cmd in its own process group; SIGKILL the whole group (workers too) once ready()."""
    proc = subprocess.Popen(cmd, cwd=REPO, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + timeout
    try:
        while not ready():
            assert proc.poll() is None, "the run finished before the moment to kill it"
            assert time.time() < deadline, "the moment to kill never came"
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def count(pattern: str) -> int:
    return len(glob.glob(pattern))


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("moment", ["prepare", "finalize"])
def test_kill_9_then_rerun_gives_the_uninterrupted_bytes(reference, tmp_path, moment):
    out = tmp_path / "out"
    staging = str(out / "_staging" / "prepare" / "*.done")
    final = str(out / "shards" / "*.stats.json")
    ready = (lambda: count(staging) >= 4) if moment == "prepare" else (lambda: count(final) >= 1)
    kill_when([sys.executable, "-m", "mmcurate", "run", str(reference / "in"), "-o", str(out), *ARGS], ready)
    assert not (out / "stats.json").exists()
    assert files_under_final_names_are_whole(out) > 0
    done_before = count(staging)

    assert run_cli("run", reference / "in", "-o", out, *ARGS) == 0
    assert shard_bytes(out) == shard_bytes(reference / "ref")
    for path in sorted((reference / "ref" / "shards").glob("*.parquet")):
        assert (out / "shards" / path.name).read_bytes() == path.read_bytes(), path.name
    s, ref = stats(out), stats(reference / "ref")
    assert {k: v for k, v in s.items() if k not in VOLATILE} == {k: v for k, v in ref.items() if k not in VOLATILE}
    assert s["resumed_staging_shards"] == done_before >= (4 if moment == "prepare" else 12)
    leftovers = [n for _, _, names in os.walk(out) for n in names if ".tmp-" in n]
    assert leftovers == [] and not (out / "_staging").exists()


FAST = ["fetch.read_timeout=1", "fetch.connect_timeout=1", "fetch.deadline=3", "fetch.retries=0"]


@pytest.mark.timeout(300)
def test_retry_failed_gives_failed_rows_a_new_attempt(tmp_path):
    with LoopbackServer() as srv:
        table = tmp_path / "urls.csv"
        with open(table, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["url", "caption"])
            for i in range(6):  # /flaky/<id>: 503 on its first request, an image after
                w.writerow([srv.url(f"/img/{i}.jpg" if i % 2 else f"/flaky/r{i}"), f"a loopback photo number {i}"])
        out = tmp_path / "out"
        sets = [a for s in FAST for a in ("--set", s)] + ["--workers", "1", "--shard-size", "3", "--allow-private-hosts", "--no-progress"]
        assert run_cli("run", table, "-o", out, *sets, "--keep-staging") == 0
        assert stats(out)["failed"] == {"fetch.http_error": 3} and stats(out)["kept"] == 3

        # a plain rerun resumes both staging shards: nothing is fetched again, same result
        before = len(srv.requests)
        assert run_cli("run", table, "-o", out, *sets, "--keep-staging") == 0
        assert len(srv.requests) == before and stats(out)["resumed_staging_shards"] == 2
        assert stats(out)["failed"] == {"fetch.http_error": 3}

        # --retry-failed redoes the failed rows of both shards: the flaky URLs answer now, and
        # the rows that worked are not fetched again
        assert run_cli("run", table, "-o", out, *sets, "--retry-failed", "--keep-staging") == 0
        assert stats(out)["resumed_staging_shards"] == 0 and stats(out)["kept"] == 6 and stats(out)["failed"] == {}
        assert {p: srv.count(p) for p in ("/flaky/r0", "/flaky/r2", "/flaky/r4")} == {"/flaky/r0": 2, "/flaky/r2": 2, "/flaky/r4": 2}
        assert {p: srv.count(p) for p in ("/img/1.jpg", "/img/3.jpg", "/img/5.jpg")} == {"/img/1.jpg": 1, "/img/3.jpg": 1, "/img/5.jpg": 1}
        assert all(r["status"] == "kept" for r in by_key(out).values())

        # the same bytes as a run in which nothing failed (staging and final shards)
        fresh = tmp_path / "fresh"
        assert run_cli("run", table, "-o", fresh, *sets, "--keep-staging") == 0 and stats(fresh)["failed"] == {}
        for folder in ("_staging/prepare", "shards"):
            names = sorted(n for n in os.listdir(fresh / folder) if n.endswith((".tar", ".parquet")))
            assert len(names) >= 4
            assert {n: (out / folder / n).read_bytes() for n in names} == {n: (fresh / folder / n).read_bytes() for n in names}


@pytest.mark.timeout(300)
def test_the_job_finishes_the_output_itself_without_a_waiting_launcher(reference, tmp_path, capsys):
    """--no-wait returns once submitted; stats.json and the shard index come from the
    pipeline's own last step (the local runner happens to block until then)."""
    out = tmp_path / "out"
    assert run_cli("run", reference / "in", "-o", out, *ARGS, "--no-wait") == 0
    assert "submitted" in capsys.readouterr().out
    s, ref = stats(out), stats(reference / "ref")
    assert s["dedup"].pop("counters") == {} and ref["dedup"].pop("counters")  # Beam metrics reach only a waiting launcher
    assert {k: v for k, v in s.items() if k not in VOLATILE} == {k: v for k, v in ref.items() if k not in VOLATILE}
    assert (out / "index.wids.json").read_bytes() == (reference / "ref" / "index.wids.json").read_bytes()
    assert shard_bytes(out) == shard_bytes(reference / "ref") and not (out / "_staging").exists()
