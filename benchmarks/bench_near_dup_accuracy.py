"""Accuracy of near-duplicate image removal on the corpus of `near_dup_corpus.py`.

    python benchmarks/bench_near_dup_accuracy.py curve CORPUS [--kmax 20] [--json PATH]
    python benchmarks/bench_near_dup_accuracy.py pipeline OUT --truth CORPUS/truth.csv

Counted per dropped sample: a drop is right when its `dup_of` is in the same true cluster (the
same source photo). precision = right drops / drops; recall = right drops / (samples - clusters),
i.e. out of the drops a perfect dedup would make.

`curve` replays the dedup stage on one machine: signatures as the pipeline computes them
(`open_image` then `image_hashes`), pairs within Hamming distance k (`banded_pairs`) for the
kinds phash, dhash, both (phash AND dhash within k) and either (OR), connected components
(`union_find_labels`), the `resolution` survivor per component, the rest dropped.
The replay does not apply the colour check (dedup.max_colour_distance): the curve is that of
the hashes alone. `pipeline` scores a real run from its manifests (OUT/shards/*.parquet, rows with reason
`duplicate.*`).
"""

from __future__ import annotations

import argparse
import csv
import glob
import hashlib
import inspect
import json
import os
import sys
import time
from collections import Counter, defaultdict
from multiprocessing import Pool

import numpy as np

from mmcurate.filters import near_dup
from mmcurate.filters.image import open_image
from mmcurate.filters.keys import make_key, stem_of
from mmcurate.pipelines.sources.base import IMAGE_EXTS, ext_of

KINDS = ("phash", "dhash", "both", "either")
TARGET_P, TARGET_R = 0.99, 0.95


def read_truth(path: str) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    """truth.csv -> ({key: cluster}, {key: variant}, {key: params})."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return ({r["key"]: r["cluster"] for r in rows}, {r["key"]: r.get("variant", "") for r in rows},
            {r["key"]: r.get("params", "") for r in rows})


def score(drops: dict[str, str], cluster: dict[str, str]) -> dict:
    """drops {key: dup_of} -> counts, precision and recall against the true clusters."""
    right = sum(cluster.get(k) == cluster.get(d) and k in cluster for k, d in drops.items())
    wanted = len(cluster) - len(set(cluster.values()))
    return {"drops": len(drops), "right": right, "precision": right / len(drops) if drops else 1.0,
            "recall": right / wanted if wanted else 1.0}


# -- signatures --------------------------------------------------------------------------------
def _signature(path: str):
    with open(path, "rb") as f:
        img = open_image(f.read())
    h = near_dup.image_hashes(img, mirror=False)
    return h["phash"], h["dhash"], img.width, img.height


def signatures(images_dir: str, cache: str) -> dict[str, np.ndarray]:
    """Keys (as the folder source makes them), hashes and decoded sizes of every image, cached
    in `cache` (.npz) under a fingerprint of the file list and of `image_hashes`' source."""
    root = images_dir.rstrip("/")
    paths = sorted(p for p in glob.glob(os.path.join(root, "**", "*"), recursive=True) if ext_of(p) in IMAGE_EXTS)
    rels = [p[len(root) + 1:] for p in paths]
    fp = hashlib.sha256(inspect.getsource(near_dup.image_hashes).encode())
    for p, r in zip(paths, rels):
        fp.update(f"{r}\0{os.path.getsize(p)}\0".encode())
    fp = fp.hexdigest()
    if os.path.exists(cache):
        z = np.load(cache)
        if str(z["fingerprint"]) == fp:
            print(f"signatures: cached in {cache}")
            return dict(z)
    from tqdm import tqdm

    t0 = time.perf_counter()
    with Pool(2) as pool:
        sigs = list(tqdm(pool.imap(_signature, paths, chunksize=16), total=len(paths), unit="img", desc="hashing"))
    print(f"signatures: {len(paths)} images hashed in {time.perf_counter() - t0:.1f} s")
    out = {"key": np.array([make_key(stem_of(r)) for r in rels]),
           "phash": np.array([s[0] for s in sigs], dtype=np.uint64), "dhash": np.array([s[1] for s in sigs], dtype=np.uint64),
           "width": np.array([s[2] for s in sigs]), "height": np.array([s[3] for s in sigs]), "fingerprint": np.array(fp)}
    np.savez(cache, **out)
    return out


# -- the dedup replay --------------------------------------------------------------------------
def kind_pairs(sig, k: int) -> dict[str, set]:
    """Pairs of sample indices (i < j) within distance k, per kind."""
    per = {}
    for h in ("phash", "dhash"):
        found = near_dup.banded_pairs(enumerate(int(x) for x in sig[h]), k)
        per[h] = {(min(a, b), max(a, b)) for a, b in found}
    return {**per, "both": per["phash"] & per["dhash"], "either": per["phash"] | per["dhash"]}


def dedup(sig, pairs) -> dict[str, str]:
    """Components of the pair graph; each keeps its `resolution` survivor -> {dropped key: dup_of}."""
    keys = [str(k) for k in sig["key"]]
    labels = near_dup.union_find_labels(range(len(keys)), pairs)
    members = defaultdict(list)
    for i, root in labels.items():
        members[root].append(i)
    drops = {}
    for group in members.values():
        if len(group) > 1:
            rank = {i: near_dup.survivor_rank("resolution", keys[i], int(sig["width"][i]) * int(sig["height"][i])) for i in group}
            survivor = min(group, key=rank.get)
            drops.update((keys[i], keys[survivor]) for i in group if i != survivor)
    return drops


def margin(row) -> float:
    """Share of the headroom above the targets kept by the weaker of precision and recall
    (1 = perfect, 0 = on a target, < 0 = misses it)."""
    return min((row["precision"] - TARGET_P) / (1 - TARGET_P), (row["recall"] - TARGET_R) / (1 - TARGET_R))


def detail(sig, cluster, variant, params, pairs, drops) -> dict:
    """Recall per variant (share of that variant's samples in one component with their cluster's
    original), the missed ones, wrong drops per variant, and the false pairs (different clusters)."""
    keys = [str(k) for k in sig["key"]]
    labels = near_dup.union_find_labels(range(len(keys)), pairs)
    comp_of = {keys[i]: labels[i] for i in labels}
    orig = {cluster[k]: k for k in keys if variant.get(k) == "orig"}
    linked, total, wrong, missed = Counter(), Counter(), Counter(), defaultdict(list)
    for k in keys:
        v = variant.get(k, "?")
        if v != "orig":
            total[v] += 1
            if comp_of[k] == comp_of.get(orig.get(cluster.get(k))):
                linked[v] += 1
            else:
                missed[v].append(f"{k} ({params.get(k)})")
        if k in drops and cluster.get(k) != cluster.get(drops[k]):
            wrong[v] += 1
    false_pairs = sorted((keys[a], keys[b]) for a, b in pairs if cluster.get(keys[a]) != cluster.get(keys[b]))
    return {"recall_by_variant": {v: linked[v] / total[v] for v in sorted(total)},
            "missed": dict(missed), "wrong_drops_by_variant": dict(wrong), "false_pairs": len(false_pairs),
            "false_pair_examples": false_pairs[:10]}


def distance_summary(sig, cluster, variant) -> dict:
    """Hamming distance of each variant to its original: median, p95, max per hash."""
    idx = {str(k): i for i, k in enumerate(sig["key"])}
    orig = {cluster[k]: idx[k] for k in idx if variant.get(k) == "orig"}
    out = {}
    for h in ("phash", "dhash"):
        d = defaultdict(list)
        for k, i in idx.items():
            if variant.get(k, "orig") != "orig" and cluster.get(k) in orig:
                d[variant[k]].append(int(sig[h][i] ^ sig[h][orig[cluster[k]]]).bit_count())
        out[h] = {v: {"median": float(np.median(x)), "p95": float(np.percentile(x, 95)), "max": int(max(x))} for v, x in sorted(d.items())}
    return out


def cmd_curve(args):
    cluster, variant, params = read_truth(args.truth or os.path.join(args.corpus, "truth.csv"))
    sig = signatures(os.path.join(args.corpus, "images"), os.path.join(args.corpus, "signatures.npz"))
    missing = set(cluster) ^ {str(k) for k in sig["key"]}
    if missing:
        sys.exit(f"truth and images disagree on {len(missing)} keys, e.g. {sorted(missing)[:3]}")
    t0 = time.perf_counter()
    rows, best, keys = [], {}, [str(k) for k in sig["key"]]
    for k in range(args.kmax + 1):
        for kind, pairs in kind_pairs(sig, k).items():
            drops = dedup(sig, pairs)
            false = sum(cluster[keys[a]] != cluster[keys[b]] for a, b in pairs)
            row = {"k": k, "kind": kind, "pairs": len(pairs), "false_pairs": false, **score(drops, cluster)}
            rows.append(row)
            if kind not in best or margin(row) > margin(best[kind][0]):
                best[kind] = (row, pairs, drops)
    elapsed = time.perf_counter() - t0
    sizes = Counter(cluster.values()).values()
    negatives = len(cluster) * (len(cluster) - 1) // 2 - sum(n * (n - 1) // 2 for n in sizes)
    print(f"\n{len(cluster)} samples, {len(sizes)} true clusters, {negatives} cross-cluster pairs; curve in {elapsed:.1f} s\n")
    print("| k | kind | pairs | false pairs | drops | precision | recall |\n|--:|:--|--:|--:|--:|--:|--:|")
    for r in rows:
        print(f"| {r['k']} | {r['kind']} | {r['pairs']} | {r['false_pairs']} | {r['drops']} | {r['precision']:.4f} | {r['recall']:.4f} |")
    details = {}
    print(f"\nbest k per kind (largest min((precision - {TARGET_P}) / {1 - TARGET_P:g}, (recall - {TARGET_R}) / {1 - TARGET_R:g})):")
    for kind, (row, pairs, drops) in best.items():
        d = details[kind] = {"k": row["k"], **detail(sig, cluster, variant, params, pairs, drops)}
        ok = "meets target" if margin(row) >= 0 else "misses target"
        print(f"- {kind} k={row['k']}: precision {row['precision']:.4f} recall {row['recall']:.4f} ({ok}); "
              f"false pairs {d['false_pairs']}; wrong drops by variant {d['wrong_drops_by_variant']}")
        print("    recall by variant: " + ", ".join(f"{v} {x:.3f}" for v, x in d["recall_by_variant"].items()))
        for a, b in d["false_pair_examples"][:3]:
            print(f"    false pair: {a} ~ {b}")
        for v, ks in d["missed"].items():
            print(f"    missed {v}: {len(ks)}, e.g. " + "; ".join(ks[:2]))
    dist = distance_summary(sig, cluster, variant)
    print("\nHamming distance variant -> original (median / p95 / max):")
    for h, per in dist.items():
        print(f"- {h}: " + ", ".join(f"{v} {s['median']:g}/{s['p95']:g}/{s['max']}" for v, s in per.items()))
    out = args.json or os.path.join(args.corpus, "near_dup_curve.json")
    with open(out, "w") as f:
        json.dump({"samples": len(cluster), "clusters": len(sizes), "cross_cluster_pairs": negatives, "curve": rows,
                   "best": details, "distances": dist, "curve_seconds": elapsed}, f, indent=1)
    print(f"\nwrote {out}")


def cmd_pipeline(args):
    import pyarrow.parquet as pq

    cluster, variant, _ = read_truth(args.truth)
    files = sorted(glob.glob(os.path.join(args.out, "shards", "*.parquet")))
    if not files:
        sys.exit(f"no manifests in {os.path.join(args.out, 'shards')}")
    rows = [r for f in files for r in pq.read_table(f, columns=["key", "status", "reason", "dup_of"]).to_pylist()]
    drops = {r["key"]: r["dup_of"] for r in rows if (r["reason"] or "").startswith("duplicate.")}
    print(f"{len(rows)} manifest rows from {len(files)} shards; drops by reason: "
          f"{dict(Counter(r['reason'] for r in rows if r['key'] in drops))}")
    other = Counter(r["reason"] for r in rows if r["status"] != "kept" and r["key"] not in drops)
    unseen = len(set(cluster) - {r["key"] for r in rows})
    if other or unseen:
        print(f"not scored (dropped/failed before dedup, or absent): {dict(other)}, {unseen} truth keys absent")
    s = score(drops, cluster)
    wrong = Counter(variant.get(k, "?") for k, d in drops.items() if cluster.get(k) != cluster.get(d) or k not in cluster)
    if wrong:
        print(f"wrong drops by variant of the dropped sample: {dict(sorted(wrong.items()))}")
    print(f"drops {s['drops']}  right {s['right']}  precision {s['precision']:.4f}  recall {s['recall']:.4f}  "
          f"(target precision >= {TARGET_P}, recall >= {TARGET_R}: {'met' if margin(s) >= 0 else 'NOT met'})")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("curve", help="precision/recall over k and hash kinds, replaying the dedup on one machine",
                       description="Hash every CORPUS/images file (cached in CORPUS/signatures.npz), then score "
                                   "k = 0..KMAX for phash, dhash, both (AND) and either (OR).")
    c.add_argument("corpus", help="folder written by near_dup_corpus.py (images/ and truth.csv)")
    c.add_argument("--truth", help="truth csv (default CORPUS/truth.csv)")
    c.add_argument("--kmax", type=int, default=20, help="largest Hamming threshold (default %(default)s)")
    c.add_argument("--json", help="where to write the results (default CORPUS/near_dup_curve.json)")
    c.set_defaults(fn=cmd_curve)
    p = sub.add_parser("pipeline", help="score an `mmcurate run` output from its manifests",
                       description="Read OUT/shards/*.parquet; rows whose reason starts with `duplicate.` are the "
                                   "drops, scored against the truth clusters.")
    p.add_argument("out", help="mmcurate output folder")
    p.add_argument("--truth", required=True, help="truth.csv of the corpus the run read")
    p.set_defaults(fn=cmd_pipeline)
    args = ap.parse_args(argv)
    args.fn(args)


if __name__ == "__main__":
    main()
