"""Caption MinHash dedup: mmcurate against HF datatrove, speed and accuracy on one corpus.

    pip install datatrove spacy tokenizers "xxhash<4"     # benchmark only, not mmcurate's
    python benchmarks/bench_vs_datatrove.py --n 500000 --workers 2    # --n 1000000: 187 s, 9.2 GiB peak locally (2026-11-24, RESULTS.md)

(datatrove 0.10 hashes str shingles with xxhash, which xxhash 4 refuses; its English word
tokenizer is spacy's.)

**Corpus** (generated, deterministic): captions of 4-60 words (median 12) drawn from a
Zipf-weighted vocabulary of 20,000 made-up words, so that two unrelated captions share no
word 3-gram. A share of them (`--family-fraction`) get 1-39 near copies, each made from a
random earlier member of its family by 0-2 word edits (substitute, insert, delete, append,
prepend) and, mostly, a surface change (case, punctuation, spacing) that the tools' text
normalisation removes. Chains of edits make members that are near a neighbour but not
each other, as templated web captions are. Rows are shuffled into `--files` jsonl.gz files.

**Truth**: two captions are near-duplicates when the exact Jaccard similarity of their word
3-gram sets (mmcurate's shingles: casefolded `\\w+` words) is >= 0.8, mmcurate's default
`dedup.caption_threshold`. Scored per tool, from its drop list:
- *lost*: dropped rows with no kept row of their family at Jaccard >= 0.8: content that went
  with no near copy left in the data (a chain A~B~C clustered as one drops C for A);
- *left*: near-duplicates still kept: per family, the kept rows beyond a greedy maximal set of
  mutually distinct ones (the fewest further drops that would leave no kept pair >= 0.8);
- *ideal drops*: what a greedy maximal independent set over the truth drops (lost = left = 0).

**Runs**, each as a subprocess, wall time and peak RSS of its process tree:
- `mmcurate`: one Beam pipeline (FnApiRunner, `--workers` processes): read the jsonl.gz files,
  sign the captions as prepare does (`caption_signatures_many`: a 128-permutation MinHash of word
  3-grams and the 3-gram set), then the dedup stage with
  `dedup.duplicates=caption` (LSH bands 16x8, every candidate pair verified on the exact
  Jaccard of the two 3-gram sets at 0.8, leader clustering). Drops read from
  dedup/clusters.parquet.
- `datatrove`: its MinHash stages 1-3 (signatures with `--files` tasks, buckets with one task
  per bucket, clustering in one task) on `LocalPipelineExecutor(workers=--workers)`, at its
  defaults (5-grams, 14 buckets x 8 hashes) and at mmcurate's settings (3-grams, 9 x 13).
  Drops read from its .remove files. Stage 4 (writing the filtered documents) is not run:
  mmcurate's side writes no documents either.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import time
from collections import defaultdict

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_near_dup_scale import PeakRss  # noqa: E402

THRESHOLD = 0.8
VOCAB = 20_000
MAX_FAMILY = 40
SURFACE = ("capitalise", "period", "comma", "spaces", "upper")
EDITS = ("substitute", "insert", "delete", "append", "prepend")


# -- corpus -----------------------------------------------------------------------------------
class Words:
    """Zipf-weighted made-up words, drawn in blocks (one rng call per many words)."""

    def __init__(self, rng: np.random.Generator):
        letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
        lengths = rng.integers(3, 10, VOCAB)
        vocab = {"".join(rng.choice(letters, n)) for n in lengths}
        self.vocab = [str(w) for w in rng.permutation(sorted(vocab))]
        weights = 1.0 / (np.arange(len(self.vocab)) + 20.0)
        self.p = weights / weights.sum()
        self.rng, self.pool, self.at = rng, [], 0

    def take(self, n: int) -> list[str]:
        if self.at + n > len(self.pool):
            self.pool, self.at = [self.vocab[i] for i in self.rng.choice(len(self.vocab), 1 << 20, p=self.p)], 0
        self.at += n
        return self.pool[self.at - n : self.at]


def variant(words: list[str], rng: np.random.Generator, draw: Words) -> list[str]:
    """A near copy of a caption's words: 0-2 word edits."""
    out = list(words)
    for _ in range(rng.choice(3, p=[0.35, 0.4, 0.25])):
        op, at = EDITS[rng.integers(len(EDITS))], int(rng.integers(len(out) + 1))
        if op == "substitute" and out:
            out[min(at, len(out) - 1)] = draw.take(1)[0]
        elif op == "insert":
            out.insert(at, draw.take(1)[0])
        elif op == "delete" and len(out) > 4:
            del out[min(at, len(out) - 1)]
        elif op == "append":
            out.append(draw.take(1)[0])
        elif op == "prepend":
            out.insert(0, draw.take(1)[0])
    return out


def surface(words: list[str], rng: np.random.Generator) -> str:
    """The caption as text, usually with a change the tools' normalisation removes."""
    text = " ".join(words)
    if rng.random() < 0.2:
        return text
    how = SURFACE[rng.integers(len(SURFACE))]
    if how == "capitalise":
        return text[:1].upper() + text[1:]
    if how == "period":
        return text + "."
    if how == "comma":
        cut = text.find(" ", len(text) // 2)
        return text if cut < 0 else text[:cut] + "," + text[cut:]
    if how == "spaces":
        return text.replace(" ", "  ", 1)
    return text.upper()


def make_corpus(n: int, seed: int, family_fraction: float) -> tuple[list[str], np.ndarray]:
    """n captions and each one's family (the index of its family's first caption)."""
    rng = np.random.default_rng(seed)
    draw = Words(rng)
    texts, family = [], []
    while len(texts) < n:
        first = len(texts)
        size = 1 if rng.random() >= family_fraction else min(MAX_FAMILY, 2 + int(rng.geometric(0.35)) - 1)
        members = [draw.take(int(np.clip(round(rng.lognormal(np.log(12), 0.45)), 4, 60)))]
        for _ in range(1, min(size, n - first)):
            members.append(variant(members[int(rng.integers(len(members)))], rng, draw))
        for j, words in enumerate(members):
            texts.append(surface(words, rng) if j else " ".join(words))
            family.append(first)
    order = rng.permutation(n)
    return [texts[i] for i in order], np.asarray(family)[order]


def write_corpus(texts: list[str], files: int, folder: str) -> list[str]:
    """Row i goes to file i % files as line i // files; ids are "r{row:09d}"."""
    os.makedirs(folder, exist_ok=True)
    paths = [os.path.join(folder, f"{f:05d}.jsonl.gz") for f in range(files)]
    for f, path in enumerate(paths):
        with gzip.open(path, "wt", encoding="utf-8", compresslevel=1) as out:
            for row in range(f, len(texts), files):
                out.write(json.dumps({"id": f"r{row:09d}", "text": texts[row]}) + "\n")
    return paths


# -- scoring ----------------------------------------------------------------------------------
def jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def greedy_independent(members: list[int], near) -> list[int]:
    """Members in order, each kept unless near one already kept."""
    kept: list[int] = []
    for m in members:
        if not any(near(m, k) for k in kept):
            kept.append(m)
    return kept


def score(texts: list[str], family: np.ndarray, dropped: set[int]) -> dict:
    from mmcurate.filters.near_dup import shingles

    groups = defaultdict(list)
    for row, fam in enumerate(family):
        groups[int(fam)].append(row)
    lost = left = ideal = 0
    for members in groups.values():
        if len(members) == 1:
            lost += members[0] in dropped
            continue
        sets = {m: shingles(texts[m]) for m in members}
        cache: dict = {}

        def near(a: int, b: int) -> bool:
            key = (a, b) if a < b else (b, a)
            if key not in cache:
                cache[key] = jaccard(sets[a], sets[b]) >= THRESHOLD
            return cache[key]

        ideal += len(members) - len(greedy_independent(members, near))
        kept = [m for m in members if m not in dropped]
        left += len(kept) - len(greedy_independent(kept, near))
        lost += sum(not any(near(m, k) for k in kept) for m in members if m in dropped)
    return {"dropped": len(dropped), "ideal_drops": ideal, "lost": lost, "left": left}


# -- the tools (each run in a subprocess: `_run TOOL ...`) -------------------------------------
def run_mmcurate(corpus: str, out: str, workers: int, files: int, sets: list[str]) -> set[int]:
    import apache_beam as beam
    import pyarrow as pa
    import pyarrow.parquet as pq

    from mmcurate.pipelines.dedup import SLIM_SCHEMA, Dedup
    from mmcurate.pipelines.runner import make_pipeline
    from mmcurate.schemas.config import RunConfig

    cfg = RunConfig.load(overrides=["dedup.duplicates=caption", *sets]).dedup

    def signatures(index: int) -> pa.Table:
        from mmcurate.filters.near_dup import caption_signatures_many

        with gzip.open(os.path.join(corpus, f"{index:05d}.jsonl.gz"), "rt", encoding="utf-8") as f:
            docs = [json.loads(line) for line in f]
        size = len(docs)
        signed = caption_signatures_many([d["text"] for d in docs], cfg.num_perm, cfg.ngram)
        columns = {
            "shard": [f"f{index:05d}"] * size,
            "order_task": [index] * size,
            "order_row": list(range(size)),
            "key": [d["id"] for d in docs],
            "sha256": [f"{index:08x}{r:056x}" for r in range(size)],  # no two rows share an image
            "caption_sha256": [""] * size,
            "source_quality": [0] * size,
            "minhash": [minhash for minhash, _ in signed],
            "caption_shingles": [grams for _, grams in signed],
        }
        return pa.table({f.name: columns.get(f.name, pa.nulls(size, f.type)) for f in SLIM_SCHEMA}, schema=SLIM_SCHEMA)

    with make_pipeline(workers) as p:
        tables = p | beam.Create(list(range(files))) | beam.Reshuffle() | beam.Map(signatures)
        _ = tables | Dedup(cfg, out, min_partitions=workers)
    clusters = pq.read_table(os.path.join(out, "dedup", "clusters.parquet"), columns=["key", "reason"]).to_pylist()
    return {int(c["key"][1:]) for c in clusters if c["reason"]}


def run_datatrove(corpus: str, out: str, workers: int, files: int, ngram: int, buckets: int, hashes: int) -> set[int]:
    import struct

    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup.minhash import MinhashConfig, MinhashDedupBuckets, MinhashDedupCluster, MinhashDedupSignature
    from datatrove.pipeline.readers import JsonlReader

    cfg = MinhashConfig(n_grams=ngram, num_buckets=buckets, hashes_per_bucket=hashes)
    sigs, dups, removes, logs = (os.path.join(out, d) for d in ("sigs", "buckets", "remove", "logs"))
    LocalPipelineExecutor([JsonlReader(corpus, glob_pattern="*.jsonl.gz"), MinhashDedupSignature(sigs, config=cfg)], tasks=files, workers=workers,
                          logging_dir=os.path.join(logs, "1")).run()
    LocalPipelineExecutor([MinhashDedupBuckets(sigs, dups, config=cfg)], tasks=buckets, workers=workers,
                          logging_dir=os.path.join(logs, "2")).run()
    LocalPipelineExecutor([MinhashDedupCluster(dups, removes, config=cfg)], tasks=1, logging_dir=os.path.join(logs, "3")).run()
    dropped = set()
    for name in os.listdir(removes):  # FILE.remove: line numbers in the task's file FILE (one file per task)
        with open(os.path.join(removes, name), "rb") as f:
            data = f.read()
        task = int(name.split(".")[0])
        dropped.update(task + files * line for line in struct.unpack(f"<{len(data) // 4}I", data))
    return dropped


TOOLS = {
    "mmcurate": {},
    "datatrove-defaults": {"ngram": 5, "buckets": 14, "hashes": 8},
    "datatrove-3gram-9x13": {"ngram": 3, "buckets": 9, "hashes": 13},
}


def child(tool: str, corpus: str, out: str, workers: int, files: int, sets: list[str]) -> None:
    dropped = run_mmcurate(corpus, out, workers, files, sets) if tool == "mmcurate" else run_datatrove(corpus, out, workers, files, **TOOLS[tool])
    with open(os.path.join(out, "dropped.json"), "w") as f:
        json.dump(sorted(dropped), f)


def timed_run(tool: str, corpus: str, work: str, workers: int, files: int, sets: list[str]) -> dict:
    out = os.path.join(work, "runs", tool)
    subprocess.run(["rm", "-rf", out], check=True)
    os.makedirs(out)
    started = time.time()
    with PeakRss() as rss:
        done = subprocess.run([sys.executable, os.path.abspath(__file__), "_run", tool, corpus, out, str(workers), str(files), *sets],
                              stdout=subprocess.DEVNULL, stderr=open(os.path.join(out, "stderr.txt"), "w"))
    wall = time.time() - started
    if done.returncode:
        raise SystemExit(f"{tool} failed (exit {done.returncode}); see {out}/stderr.txt")
    with open(os.path.join(out, "dropped.json")) as f:
        dropped = set(json.load(f))
    return {"tool": tool, "wall_s": round(wall, 1), "peak_rss_mib": round(rss.peak / 2**20), "dropped_rows": dropped}


def main(argv=None) -> dict:
    if argv is None and sys.argv[1:2] == ["_run"]:
        tool, corpus, out, workers, files = sys.argv[2:7]
        return child(tool, corpus, out, int(workers), int(files), sys.argv[7:])
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=500_000, help="captions in the corpus (default 500,000; mmcurate took 8.8 GiB for it on the local runner at 2bf7e60)")
    ap.add_argument("--workers", type=int, default=2, help="worker processes for each tool (default 2)")
    ap.add_argument("--files", type=int, default=16, help="jsonl.gz files the corpus is split into (default 16)")
    ap.add_argument("--family-fraction", type=float, default=0.1, help="share of captions that get near copies (default 0.1)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tools", nargs="+", default=list(TOOLS), choices=list(TOOLS), help="which runs (default all)")
    ap.add_argument("--workdir", default="benchmarks/_work/vs_datatrove", help="corpus and run outputs (reused corpus if present)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="an mmcurate setting for its run, e.g. --set dedup.rows_per_partition=100000 (repeatable)")
    ap.add_argument("--json", help="also write the figures here")
    args = ap.parse_args(argv)
    if any(t.startswith("datatrove") for t in args.tools):
        try:
            import datatrove.pipeline.dedup  # noqa: F401  (needs spacy and tokenizers too)
        except ImportError as e:
            raise SystemExit(f"datatrove cannot be imported ({e}): pip install datatrove spacy tokenizers \"xxhash<4\", or --tools mmcurate")

    corpus = os.path.join(args.workdir, f"corpus-n{args.n}-f{args.files}-s{args.seed}-ff{args.family_fraction}")
    started = time.time()
    texts, family = make_corpus(args.n, args.seed, args.family_fraction)
    if not os.path.exists(os.path.join(corpus, "done")):
        write_corpus(texts, args.files, corpus)
        open(os.path.join(corpus, "done"), "w").close()
    print(f"corpus: {args.n:,} captions in {args.files} files, {len(set(family.tolist())):,} families ({time.time() - started:.1f} s)", file=sys.stderr)
    results = []
    for tool in args.tools:
        run = timed_run(tool, corpus, args.workdir, args.workers, args.files, args.set if tool == "mmcurate" else [])
        run.update(score(texts, family, run.pop("dropped_rows")))
        run["captions_per_s"] = round(args.n / run["wall_s"])
        results.append(run)
        print(json.dumps(run), file=sys.stderr)
    report = {"captions": args.n, "workers": args.workers, "mmcurate_settings": args.set, "files": args.files, "family_fraction": args.family_fraction,
              "seed": args.seed, "threshold": THRESHOLD, "runs": results}
    print(json.dumps(report, indent=1))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
    return report


if __name__ == "__main__":
    main()
