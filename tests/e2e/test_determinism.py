"""Same input and config -> byte-identical shards and identical stats, whatever the runner
mode, worker count or rerun."""

import json

from mmcurate.pipelines.demo import generate
from tests.util import run_cli, shard_bytes, stats


def comparable(s):
    return {k: v for k, v in s.items() if k != "wall_time_s"}


def test_in_memory_vs_two_process_workers_and_rerun(tmp_path):
    generate(str(tmp_path / "in"), samples=60, seed=7)
    outs = {}
    for name, workers in (("one", "1"), ("two", "2"), ("two_again", "2")):
        out = tmp_path / name
        assert run_cli("run", tmp_path / "in", "-o", out, "--workers", workers, "--shard-size", "16", "--no-progress") == 0
        outs[name] = out
    one, two, again = (shard_bytes(outs[n]) for n in ("one", "two", "two_again"))
    assert len(one) == 4 and sum(len(b) for b in one.values()) > 100_000
    assert one == two == again
    assert comparable(stats(outs["one"])) == comparable(stats(outs["two"])) == comparable(stats(outs["two_again"]))
    for name in ("one", "two"):
        parquet = sorted((outs[name] / "shards").glob("*.parquet"))
        assert [p.read_bytes() for p in parquet] == [p.read_bytes() for p in sorted((outs["one"] / "shards").glob("*.parquet"))]
    assert json.loads((outs["one"] / "index.wids.json").read_text()) == json.loads((outs["two"] / "index.wids.json").read_text())
