"""Shuffle ledgers: a shuffle that gives back fewer (or more) elements than went in stops the
stage before anything is written from it, and names the shuffle; a balanced one changes
nothing. The losses are made by wrapping Beam's own GroupByKey / CoGroupByKey."""

from __future__ import annotations

import os

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from mmcurate.pipelines import run as run_module
from mmcurate.pipelines.demo import generate
from mmcurate.pipelines.ledger import Ledger, ShuffleLossError, check_balances
from mmcurate.schemas.config import RunConfig

GROUP_BY_KEY, CO_GROUP_BY_KEY = beam.GroupByKey, beam.CoGroupByKey


def lossy_group_by_key(target: str, lose):
    """A GroupByKey whose groups pass through lose(key, values) when it is labelled `target`."""

    class LossyGroupByKey(beam.PTransform):
        def expand(self, pcoll):
            grouped = pcoll | GROUP_BY_KEY()
            if self.label != target:
                return grouped
            return grouped | beam.MapTuple(lambda k, vs: (k, lose(k, list(vs))))

    return LossyGroupByKey


def lossy_co_group_by_key(target: str, tag: str):
    """A CoGroupByKey that comes out without `tag`'s values when it is labelled `target`."""

    class LossyCoGroupByKey(beam.PTransform):
        def expand(self, tagged):
            grouped = tagged | CO_GROUP_BY_KEY()
            if self.label != target:
                return grouped
            return grouped | beam.MapTuple(lambda k, d: (k, {t: ([] if t == tag else vs) for t, vs in d.items()}))

    return LossyCoGroupByKey


def test_check_balances_names_every_shuffle_that_does_not_balance():
    assert check_balances({("A", "rows"): 0}, "stage") is True
    assert check_balances({}, "stage") is True
    with pytest.raises(ShuffleLossError) as err:
        check_balances({("B", "elements"): -1, ("A", "rows"): 3, ("C", "rows"): 0}, "stage")
    said = str(err.value)
    assert said.startswith("stage: shuffle A: 3 rows fewer came out than went in; shuffle B: 1 element more came out than went in, "
                           "so the runner lost or repeated data; stopped before anything was written from it. Run again.")
    assert "shuffle C" not in said


def build(p, written: str):
    """group, cogroup and to_list through one ledger; the gated results are written as files."""
    ledger = Ledger("test")
    pairs = p | "Pairs" >> beam.Create([("a", 1), ("b", 2), ("a", 3), ("c", 4), ("b", 5)])
    other = p | "Other" >> beam.Create([("a", "x"), ("d", "y")])
    grouped = ledger.group(pairs, "Group") | "Sorted" >> beam.MapTuple(lambda k, vs: (k, sorted(vs)))
    joined = ledger.cogroup({"pairs": pairs, "other": other}, "Join") | "Flat" >> beam.MapTuple(lambda k, d: (k, sorted(d["pairs"]), sorted(d["other"])))
    listed = ledger.to_list(pairs | "Values" >> beam.Map(lambda kv: kv[1]), "List") | "SortList" >> beam.Map(sorted)
    gated = [ledger.gate(pc, f"Gate{i}") for i, pc in enumerate((grouped, joined, listed))]

    def write(element, name):
        with open(os.path.join(written, f"{name}-{element[0]}"), "w") as f:
            f.write(repr(element))
        return element

    for name, pc in zip(("grouped", "joined", "listed"), gated):
        _ = pc | f"Write{name}" >> beam.Map(write, name)
    return gated


def test_a_balanced_ledger_lets_every_element_through(tmp_path):
    with TestPipeline() as p:
        grouped, joined, listed = build(p, str(tmp_path))
        assert_that(grouped, equal_to([("a", [1, 3]), ("b", [2, 5]), ("c", [4])]), label="grouped")
        assert_that(joined, equal_to([("a", [1, 3], ["x"]), ("b", [2, 5], []), ("c", [4], []), ("d", [], ["y"])]), label="joined")
        assert_that(listed, equal_to([[1, 2, 3, 4, 5]]), label="listed")
    assert len(os.listdir(tmp_path)) == 3 + 4 + 1


@pytest.mark.parametrize("patch, message", [
    ("group", "test: shuffle Group: 2 elements fewer came out than went in"),  # b loses both values
    ("cogroup", "test: shuffle Join: 2 elements fewer came out than went in"),  # other's two values
    ("more", "test: shuffle Group: 1 element more came out than went in"),  # c's value twice
])
def test_a_shuffle_that_loses_or_repeats_elements_stops_everything_behind_the_gate(tmp_path, monkeypatch, patch, message):
    if patch == "cogroup":
        monkeypatch.setattr(beam, "CoGroupByKey", lossy_co_group_by_key("Join", "other"))
    else:
        lose = (lambda k, vs: [] if k == "b" else vs) if patch == "group" else (lambda k, vs: vs * 2 if k == "c" else vs)
        monkeypatch.setattr(beam, "GroupByKey", lossy_group_by_key("Group", lose))
    p = TestPipeline()
    build(p, str(tmp_path))
    with pytest.raises(Exception, match=message):
        p.run().wait_until_finish()
    assert os.listdir(tmp_path) == []  # not one gated element was written


def test_counting_after_the_gate_is_refused():
    ledger = Ledger("test")
    with pytest.raises(ValueError, match="nothing counted before its gate G"):
        ledger.gate(TestPipeline() | beam.Create([1]), "G")
    p = TestPipeline()
    pairs = p | beam.Create([("a", 1)])
    ledger.gate(ledger.group(pairs, "Group"), "Gate")
    with pytest.raises(ValueError, match="a shuffle counted after its gate"):
        ledger.group(pairs, "Late")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ledger") / "in"
    generate(str(folder), samples=40, seed=5)
    return folder


def run_demo(demo, out, shuffle_retries=0):
    cfg = RunConfig.load(None, ["output.shard_size=10"])
    return run_module.run([str(demo)], str(out), cfg, workers=1, shuffle_retries=shuffle_retries)


def finished_files(out) -> list[str]:
    """Files under final names outside the staging folder."""
    return sorted(os.path.relpath(os.path.join(d, n), out) for d, _, names in os.walk(out) for n in names
                  if ".tmp-" not in n and "_staging" not in os.path.relpath(d, out).split(os.sep)[0])


def staged_shards(out) -> list[str]:
    return sorted(n for d, _, names in os.walk(out) for n in names if n.endswith(".done"))


def test_rows_lost_before_staging_stop_the_run_before_any_shard_is_staged(demo, tmp_path, monkeypatch):
    """40 rows in 4 staging shards of 10; each shard's group comes out one row short. A staged
    shard would be reused by the next run, so none may be written."""
    monkeypatch.setattr(beam, "GroupByKey", lossy_group_by_key("GroupByShard", lambda k, vs: vs[:-1]))
    with pytest.raises(Exception, match="prepare: shuffle GroupByShard: 4 rows fewer came out than went in"):
        run_demo(demo, tmp_path / "out")
    assert staged_shards(tmp_path / "out") == [] and finished_files(tmp_path / "out") == ["config.yaml"]  # (written first)


def test_decisions_lost_before_finalize_stop_the_run_before_any_shard_is_written(demo, tmp_path, monkeypatch):
    """Without its decisions a duplicate would be written as kept: no shard is written at all."""
    monkeypatch.setattr(beam, "CoGroupByKey", lossy_co_group_by_key("JoinDecisions", "decisions"))
    with pytest.raises(Exception, match=r"finalize: shuffle JoinDecisions: [1-9]\d* elements? fewer came out than went in"):
        run_demo(demo, tmp_path / "out")
    assert len(staged_shards(tmp_path / "out")) == 4  # prepare and dedup ran, no shard was written
    assert finished_files(tmp_path / "out") == ["config.yaml", "dedup/clusters.parquet", "dedup/stats.json"]


def test_a_run_stopped_by_a_lost_element_runs_again_and_gives_the_same_shards(demo, tmp_path, monkeypatch, caplog):
    """The first attempt's JoinDecisions loses the decisions; the second attempt, built anew,
    reuses the 4 staged shards and writes the same bytes as a run that lost nothing."""
    reference = run_demo(demo, tmp_path / "ref")
    assert reference["identity_ok"] and reference["inputs"] == 40
    assert [s["name"] for s in reference["shards"]] == [f"shards/{n:05d}.tar" for n in range(4)]
    built = []

    class LosesOnTheFirstBuild(beam.PTransform):
        def expand(self, tagged):
            if self.label == "JoinDecisions":
                built.append(1)
                if len(built) == 1:
                    return tagged | "JoinDecisions" >> lossy_co_group_by_key("JoinDecisions", "decisions")()
            return tagged | CO_GROUP_BY_KEY()

    monkeypatch.setattr(beam, "CoGroupByKey", LosesOnTheFirstBuild)
    with caplog.at_level("WARNING", logger="mmcurate"):
        stats = run_demo(demo, tmp_path / "out", shuffle_retries=1)
    assert len(built) == 2
    warned = [r.getMessage() for r in caplog.records if r.name == "mmcurate"]
    assert len(warned) == 1 and warned[0].startswith("a shuffle lost elements, so nothing was written from it (finalize: shuffle JoinDecisions: ")
    assert warned[0].endswith("running again (attempt 2 of 2), reusing the shards staged so far")
    assert stats["resumed_staging_shards"] == 4
    assert {k: v for k, v in stats.items() if k not in ("wall_time_s", "resumed_staging_shards")} == \
        {k: v for k, v in reference.items() if k not in ("wall_time_s", "resumed_staging_shards")}
    for n in range(4):
        name = f"shards/{n:05d}.tar"
        assert (tmp_path / "out" / name).read_bytes() == (tmp_path / "ref" / name).read_bytes()


def test_retries_run_out(demo, tmp_path, monkeypatch):
    monkeypatch.setattr(beam, "CoGroupByKey", lossy_co_group_by_key("JoinDecisions", "decisions"))
    with pytest.raises(Exception, match="finalize: shuffle JoinDecisions"):
        run_demo(demo, tmp_path / "out", shuffle_retries=1)
    assert finished_files(tmp_path / "out") == ["config.yaml", "dedup/clusters.parquet", "dedup/stats.json"]


def test_negative_retries_are_refused(demo, tmp_path):
    from mmcurate.schemas.config import ConfigError

    with pytest.raises(ConfigError, match="--shuffle-retries must be 0 or more, not -1"):
        run_demo(demo, tmp_path / "out", shuffle_retries=-1)
