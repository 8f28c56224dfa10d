"""Stage 4, finalize: per staging shard, join the dedup decisions, write the final shard.

Shard numbers come from the sorted staging ids (input order), so numbering has no gaps and
never depends on which worker finished first. Files are published atomically; the per-shard
stats file is written last and marks the shard done.
"""

from __future__ import annotations

import json
import tarfile

import apache_beam as beam
from webdataset import TarWriter

from mmcurate.pipelines import fileio
from mmcurate.pipelines.prepare import TAR_OPTIONS, staging_paths
from mmcurate.pipelines.stats import account
from mmcurate.schemas.reasons import KEPT
from mmcurate.schemas.record import Verdict, apply_verdict, rows_to_table, sample_json

SHARDS_DIR = "shards"


def shard_name(number: int) -> str:
    return f"{number:05d}"


def number_shards(ids: list[str]):
    for n, sid in enumerate(sorted(ids)):
        yield sid, n


class FinalizeShard(beam.DoFn):
    def __init__(self, staging_dir: str, out_dir: str):
        self.staging_dir, self.out_dir = staging_dir, out_dir

    def process(self, element):
        sid, joined = element
        (number,) = joined["number"]
        decisions = {tuple(order): (reason, dup_of) for order, reason, dup_of in joined["decisions"]}
        src = staging_paths(self.staging_dir, sid)
        rows = fileio.read_parquet(src["parquet"]).to_pylist()
        name = shard_name(number)
        by_ord = {}
        for row in rows:
            row["shard"] = name
            decision = decisions.get((row["order_task"], row["order_row"]))
            if decision and row["status"] == KEPT:
                apply_verdict(row, Verdict.reject(decision[0]), dup_of=decision[1])
            if row["status"] == KEPT:
                by_ord[row["ord"]] = row
        base = fileio.join(self.out_dir, SHARDS_DIR, name)
        with fileio.atomic_writer(base + ".tar") as handle:
            writer = TarWriter(handle, **TAR_OPTIONS)
            with fileio.open_read(src["tar"]) as f, tarfile.open(fileobj=f, mode="r|") as staged:
                for info in staged:
                    ordinal, _, ext = info.name.partition(".")
                    row = by_ord.get(int(ordinal))
                    if row is None:
                        continue
                    doc = json.dumps(sample_json(row), sort_keys=True, ensure_ascii=False)
                    writer.write({"__key__": row["key"], ext: staged.extractfile(info).read(), "txt": row["caption"].encode("utf-8"), "json": doc.encode("utf-8")})
            writer.close()
        fileio.write_parquet(base + ".parquet", rows_to_table(rows))
        stats = account(rows)
        stats.update(shard=name, tar=f"{SHARDS_DIR}/{name}.tar", samples=stats["kept"], bytes=fileio.size_of(base + ".tar"), staging=sid)
        fileio.write_json(base + ".stats.json", stats)
        yield stats


class Finalize(beam.PTransform):
    def __init__(self, staging_dir: str, out_dir: str):
        super().__init__()
        self.staging_dir, self.out_dir = staging_dir, out_dir

    def expand(self, inputs):
        shard_ids, decisions = inputs
        numbered = (
            shard_ids
            | "AllShardIds" >> beam.combiners.ToList()
            | "NumberShards" >> beam.FlatMap(number_shards)
        )
        return (
            {"number": numbered, "decisions": decisions}
            | "JoinDecisions" >> beam.CoGroupByKey()
            | "WriteShards" >> beam.ParDo(FinalizeShard(self.staging_dir, self.out_dir))
        )
