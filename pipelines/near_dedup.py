"""Near-duplicate removal over the exact-dedup survivors (metadata only, all shuffles batched).

1. Image edges, exact: the 64-bit hash is cut into k+1 blocks (pigeonhole: two hashes within
   Hamming distance k agree on a whole block); records are routed by (block, block value),
   and each bucket is searched with a second pigeonhole level over the other bits
   (filters/near_dup.block_group_pairs), each pair reported only by the first block it
   agrees on. Buckets over `dedup.max_bucket` are counted (they cost time). Identical items
   (blank pictures, stock captions) are searched once and the others linked to that one,
   which keeps the components (`ImagePairs._fold`, `caption_candidates`).
2. Caption edges: MinHash LSH bands routed by (band, band digest); datasketch's candidates,
   made unique, then verified (exact Jaccard of the n-gram sets; the MinHash estimate for
   captions without) after two batched joins that bring both sides together.
3. The edges that `dedup.duplicates` asks for (image, caption, both, either) -> connected
   components, labelled by the smallest node id (components.py).
4. Survivors per component, in `dedup.survivor` order: leader clustering (the default; a
   member near a survivor so far is dropped for it, else it survives: filters/near_dup.
   greedy_leaders; a pair needs no test, a copy follows its first identical member) or one
   survivor per component (`dedup.clustering: connected`). Drops carry
   `dup_of` and their distance to it; the groups go to dedup/clusters.parquet.
"""

from __future__ import annotations

import collections

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from apache_beam.metrics import Metrics

from mmcurate.filters.near_dup import (
    COLOUR_BYTES, LeaderIndex, Nearness, band_group_pairs, band_hashes, block_array, block_bounds, block_group_pairs, caption_similarity,
    colour_matrix, colour_near, frame_colour_matrix, frame_matrix, frames_comparable, greedy_leaders, identical_groups, lsh_params, majority_distance, needs_minhash,
    mirror_colour, mirror_frame_colours, mix64, pad_frames, shingle_digests, signature_matrix, signature_rows, survivor_rank, unique_pairs,
)
from mmcurate.pipelines import fileio
from mmcurate.pipelines.batches import batch_rows, by_node, concat, id_buckets, node_ids, route_and_group, split_arrays, split_table
from mmcurate.pipelines.components import Components
from mmcurate.pipelines.dedup import decisions_by_shard
from mmcurate.pipelines.ledger import Ledger
from mmcurate.schemas.config import DedupConfig

CLUSTERS_DIR = "dedup"
CLUSTERS_FILE = "clusters.parquet"
DEDUP_STATS = "stats.json"
CLUSTER_SCHEMA = pa.schema(
    [
        ("key", pa.string()),
        ("cluster", pa.int64()),  # the smallest node id in the group (node = input position)
        ("survivor", pa.string()),  # the key kept for the cluster
        ("reason", pa.string()),  # "" for the survivor
        ("distance", pa.float32()),  # to the survivor: Hamming bits, or 1 - estimated Jaccard
        ("size", pa.int32()),
        ("shard", pa.string()),  # staging shard (for finalize); dropped from the published file
    ]
)
MEMBER_COLUMNS = (
    "shard", "order_task", "order_row", "key", "source_quality", "phash", "dhash", "phash_mirror", "dhash_mirror",
    "colour", "frame_hashes", "frame_hashes_mirror", "frame_colours",
)


def member_records(table: pa.Table, cfg: DedupConfig) -> pa.Table:
    """A survivor table -> the columns clustering reads (`near_columns`), with a caption's
    MinHash only where `needs_minhash` says an estimate may need it (else null: 512 bytes fewer
    a caption through RecordsByNode and GroupClusters; the leader index finds such captions by
    their n-gram sets)."""
    table = table.select(near_columns(cfg))
    if not cfg.uses_captions or not table.num_rows:
        return table
    need = needs_minhash(table.column("caption_shingles").to_pylist(), cfg.caption_threshold)
    if need.all():
        return table
    where = table.schema.get_field_index("minhash")
    return table.set_column(where, "minhash", pc.if_else(pa.array(need), table.column("minhash"), pa.scalar(None, table.schema.field(where).type)))


def near_columns(cfg: DedupConfig) -> list[str]:
    """The slim columns the near stage reads: a MinHash (512 bytes) and n-gram set travel only
    when captions are compared (prepare stages them in every near run)."""
    return list(MEMBER_COLUMNS + (("minhash", "caption_shingles") if cfg.uses_captions else ()))


def _edges(a, b, dist) -> dict:
    return {"a": np.asarray(a, dtype=np.int64), "b": np.asarray(b, dtype=np.int64), "dist": np.asarray(dist, dtype=np.float32)}


def _star(ids: np.ndarray, member: np.ndarray, representative: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`identical_groups`' folded rows -> edge ends (a < b) linking each to its representative."""
    rep, other = ids[representative], ids[member]
    return np.minimum(rep, other), np.maximum(rep, other)


def _hash_column(table: pa.Table, name: str) -> np.ndarray:
    return table.column(name).fill_null(0).to_numpy().astype(np.uint64)


def _frames(table: pa.Table, name: str) -> tuple[np.ndarray, np.ndarray]:
    """A video clip's frame hashes (filters/near_dup.frame_matrix); width 0 when no row has any."""
    if name not in table.column_names or table.column(name).null_count == table.num_rows:  # images, audio
        return np.zeros((table.num_rows, 0, 2), dtype=np.uint64), np.zeros(table.num_rows, dtype=np.int32)
    return frame_matrix(table.column(name).to_pylist())


def _colours(table: pa.Table) -> dict:
    """The rows' colour signatures (filters/near_dup.colour_matrix) as item fields; none when no
    row has one (audio, media staged before them)."""
    if "colour" not in table.column_names or table.column("colour").null_count == table.num_rows:
        return {}
    colour, has = colour_matrix(table.column("colour").to_pylist())
    return {"colour": colour, "has_colour": has}


def _clip_fields(table: pa.Table, colours: bool) -> tuple[dict, dict]:
    """Per row of the table: the fields that tell video clips apart (frames, nframes and, when
    the colour check is on, frame_colours and has_frame_colours), as they are and mirrored.
    Frame arrays have width 0 when no row is a clip with frames."""
    frames, nframes = _frames(table, "frame_hashes")
    plain = {"frames": frames, "nframes": nframes}
    mirrored = {"frames": pad_frames(_frames(table, "frame_hashes_mirror")[0], frames.shape[1]), "nframes": nframes}
    if colours and frames.shape[1] and "frame_colours" in table.column_names and table.column("frame_colours").null_count < table.num_rows:
        fc, has = frame_colour_matrix(table.column("frame_colours").to_pylist(), frames.shape[1])
        plain.update(frame_colours=fc, has_frame_colours=has)
        mirrored.update(frame_colours=mirror_frame_colours(fc), has_frame_colours=has)
    return plain, mirrored


# item fields that some batches lack -> the flag or count that says a row has them (zeros where absent)
_OPTIONAL = {"colour": "has_colour", "frames": "nframes", "frame_colours": "has_frame_colours"}


def merge_items(batches: list[dict]) -> dict:
    """Item batches -> one dict of arrays. Frame arrays are padded to one width; batches
    without frames (images, clips staged without frame hashes) or without colours (audio,
    media staged before them) get empty ones: no frames to compare, colours that always pass."""
    keys = set().union(*batches)
    width = max((b["frames"].shape[1] for b in batches if "frames" in b), default=0)
    shapes = {"colour": (COLOUR_BYTES,), "frames": (width, 2), "frame_colours": (width, COLOUR_BYTES)}
    dtypes = {"colour": np.uint8, "frames": np.uint64, "frame_colours": np.uint8, "nframes": np.int32}
    out = []
    for b in batches:
        b, n = dict(b), len(b["id"])
        for name, companion in _OPTIONAL.items():
            if name not in keys:
                continue
            if name in b:
                b[name] = pad_frames(b[name], width) if name != "colour" else b[name]
            else:
                b[name] = np.zeros((n, *shapes[name]), dtype=dtypes[name])
                b[companion] = np.zeros(n, dtype=dtypes.get(companion, bool))
        out.append(b)
    return {k: np.concatenate([b[k] for b in out]) for k in out[0]}


def banded_kinds(image_hash: str) -> tuple[str, ...]:
    """The hash columns searched by banding: `both` searches pHash and verifies dHash."""
    return {"phash": ("phash",), "dhash": ("dhash",), "both": ("phash",), "either": ("phash", "dhash")}[image_hash]


class ImageBlocks(beam.DoFn):
    """Survivor table -> ((hash kind, search, block, partition), items) for each of the k+1
    blocks. Search 0 is the middle frame's hash of every row (an image's only one); search
    p > 0 is the p-th sampled frame of video clips with two or more, which most-frames
    matching needs (a pair near at most positions is near at one of them, not always the middle)."""

    def __init__(self, cfg: DedupConfig):
        self.cfg = cfg
        self.bounds = block_bounds(cfg.max_distance)

    def process(self, table: pa.Table, parts: int):
        clips, mirrored = _clip_fields(table, self.cfg.max_colour_distance > 0)  # (once for both kinds under `either`)
        for kind in banded_kinds(self.cfg.image_hash):
            for search, items in self._searches(table, kind, clips, mirrored):
                for block in range(len(self.bounds)):
                    buckets = mix64(block_array(items["h"], self.bounds, block) ^ np.uint64(block << 40) ^ np.uint64(search << 48))
                    for p, part in split_arrays(buckets, parts, items):
                        yield (kind, search, block, p), part

    def _searches(self, table: pa.Table, kind: str, clips: dict, mirrored: dict):
        frames, nframes = clips["frames"], clips["nframes"]
        has = table.column(kind).is_valid().to_numpy(zero_copy_only=False)
        if has.any():
            t = table.filter(pa.array(has))
            # only what the search needs travels: the second hash for `both`, flags for mirrors
            items = {"id": node_ids(t), "h": _hash_column(t, kind)}
            if self.cfg.image_hash == "both":
                items["h2"] = _hash_column(t, "dhash")
            if self.cfg.max_colour_distance > 0:
                items.update(_colours(t))
            if frames.shape[1]:  # clips with frames are told apart by them
                items.update({name: v[has] for name, v in clips.items()})
            if self.cfg.mirror:
                m = t.column(kind + "_mirror").is_valid().to_numpy(zero_copy_only=False)
                m &= ~self._symmetric(t, kind, items)
                extra = {"id": items["id"][m], "h": _hash_column(t, kind + "_mirror")[m], "h2": _hash_column(t, "dhash_mirror")[m]}
                if "colour" in items:
                    extra["colour"], extra["has_colour"] = mirror_colour(items["colour"][m]), items["has_colour"][m]
                if "frames" in items:
                    extra.update({name: v[has][m] for name, v in mirrored.items()})
                yield 0, _with_mirrors(items, extra)
            else:
                yield 0, items
        column = 0 if kind == "phash" else 1
        for pos in range(frames.shape[1]):
            rows = (nframes > 1) & (nframes > pos)
            if not rows.any():
                continue
            ids = node_ids(table.filter(pa.array(rows)))
            items = {"id": ids, "h": frames[rows, pos, column], **{name: v[rows] for name, v in clips.items()}}
            if self.cfg.mirror:
                flipped = mirrored["frames"]
                items = _with_mirrors(items, {"id": ids, "h": flipped[rows, pos, column], **{name: v[rows] for name, v in mirrored.items()}})
            yield pos + 1, items

    def _symmetric(self, t: pa.Table, kind: str, items: dict) -> np.ndarray:
        """Rows whose mirror image has their own search fields (a blank or symmetric picture,
        not a clip compared by frames): the mirror adds no pair the row itself does not make."""
        same = _hash_column(t, kind + "_mirror") == items["h"]
        if "h2" in items:
            same &= _hash_column(t, "dhash_mirror") == items["h2"]
        if "colour" in items:
            same &= (mirror_colour(items["colour"]) == items["colour"]).all(axis=1)
        if "nframes" in items:
            same &= items["nframes"] <= 1
        return same


def _with_mirrors(items: dict, extra: dict) -> dict:
    """The items followed by their mirror images' (flagged), with the same fields."""
    items = dict(items, mirror=np.zeros(len(items["id"]), dtype=bool))
    extra = dict({k: extra[k] for k in items if k != "mirror"}, mirror=np.ones(len(extra["id"]), dtype=bool))
    return merge_items([items, extra])


class ImagePairs(beam.DoFn):
    """((kind, search, block, partition), item batches) -> image edges: in search 0, pairs
    within distance k (and for `both` their dHashes too) unless both are clips with comparable
    frames; in search p, comparable clips whose frames are near at most positions, each pair
    once per kind: at the first position where it is within k."""

    def __init__(self, cfg: DedupConfig, fold_identical: bool = False):
        self.cfg, self.fold_identical = cfg, fold_identical
        self.bounds = block_bounds(cfg.max_distance)
        self.oversized = Metrics.counter("mmcurate", "dedup.oversized_buckets")
        self.largest = Metrics.distribution("mmcurate", "dedup.bucket_size")
        self.found = Metrics.counter("mmcurate", "dedup.image_edges")
        self.folded = Metrics.counter("mmcurate", "dedup.identical_folded")

    def process(self, element):
        (kind, search, block, _), batches = element
        items = merge_items(list(batches))
        if search == 0 and self.fold_identical:
            items, star = self._fold(items)
            if block == 0 and len(star["a"]):  # (an identical group is in every block's bucket: its star once)
                self.folded.inc(len(star["a"]))
                self.found.inc(len(star["a"]))
                yield star
        idx = np.arange(len(items["id"]), dtype=np.int64)
        k = self.cfg.max_distance
        i, j, dist, sizes = block_group_pairs(idx, items["h"], block, self.bounds, k)
        self.oversized.inc(int((sizes > self.cfg.max_bucket).sum()))
        if len(sizes):
            self.largest.update(int(sizes.max()))
        a, b = items["id"][i], items["id"][j]
        # a record against its own mirror, or two mirrors (same as the two originals): no edge
        keep = a != b
        if "mirror" in items:
            keep &= ~(items["mirror"][i] & items["mirror"][j])
        comparable = np.zeros(len(i), dtype=bool)
        if "frames" in items:
            f, n = items["frames"], items["nframes"]
            comparable = frames_comparable(n[i], n[j])
        if search == 0:
            keep &= ~comparable  # (found by the frame searches)
            if self.cfg.image_hash == "both":
                keep &= np.bitwise_count(items["h2"][i] ^ items["h2"][j]) <= k
            if "colour" in items:  # near in grey levels, far apart in colour: no edge
                c, has = items["colour"], items["has_colour"]
                keep &= colour_near(c[i], has[i], c[j], has[j], self.cfg.max_colour_distance)
        else:
            keep &= comparable
            if keep.any():
                colours = None
                if "frame_colours" in items:  # frames must match in colour too
                    fc, has = items["frame_colours"], items["has_frame_colours"]
                    colours = (fc[i], has[i], fc[j], has[j])
                dist = majority_distance(f[i], n[i], f[j], n[j], self.cfg.image_hash, colours, self.cfg.max_colour_distance)
                keep &= dist <= k
                column = 0 if kind == "phash" else 1
                earlier = np.bitwise_count(f[i, : search - 1, column] ^ f[j, : search - 1, column]) <= k
                keep &= ~earlier.any(axis=1)
        if keep.any():
            a, b, dist = a[keep], b[keep], dist[keep]
            self.found.inc(len(a))
            yield _edges(np.minimum(a, b), np.maximum(a, b), dist)

    def _fold(self, items: dict) -> tuple[dict, dict]:
        """Items with identical search fields (hashes, colours) -> one of them to search, and
        star edges from it to the others (distance 0; each is near the other, and whatever is
        near one is near all). Clips compared by their frames and mirror images are searched
        as they are: their pairs depend on more than these fields."""
        fields = [items[name] for name in ("h", "h2", "colour", "has_colour") if name in items]
        eligible = np.ones(len(items["id"]), dtype=bool)
        if "nframes" in items:
            eligible &= items["nframes"] <= 1
        if "mirror" in items:
            eligible &= ~items["mirror"]
        keep, member, representative = identical_groups(items["id"], fields, eligible)
        a, b = _star(items["id"], member, representative)
        return ({name: v[keep] for name, v in items.items()} if len(member) else items), _edges(a, b, np.zeros(len(a)))


class CaptionBands(beam.DoFn):
    """Survivor table -> ((band, partition), {id, the band's digest, and a digest of the whole
    signature and n-gram set}): 24 bytes a record and band (`band_group_pairs`)."""

    def __init__(self, cfg: DedupConfig):
        self.cfg = cfg
        self.bands, self.rows = lsh_params(cfg.caption_threshold, cfg.num_perm)

    def process(self, table: pa.Table, parts: int):
        has = table.column("minhash").is_valid().to_numpy(zero_copy_only=False)
        if not has.any():
            return
        table = table.filter(pa.array(has))
        ids = node_ids(table)
        sigs = signature_matrix(table.column("minhash").to_pylist(), self.cfg.num_perm)
        digests = band_hashes(sigs, self.bands, self.rows)
        same = mix64(band_hashes(sigs, 1, self.cfg.num_perm)[:, 0] ^ shingle_digests(table.column("caption_shingles").to_pylist()))
        for band in range(self.bands):
            items = {"id": ids, "digest": digests[:, band], "same": same}
            for p, part in split_arrays(digests[:, band], parts, items):
                yield (band, p), part


def caption_candidates(element, fold_identical: bool = False):
    """((band, partition), item batches) -> candidate pairs sharing the band (a pair sharing
    several bands comes from each; AttachSignature keeps it once). With `fold_identical`,
    records whose whole signature and n-gram set are the same (a stock caption) are searched
    once, and each is a candidate with the smallest of them (a star); candidates are verified
    like all others."""
    (band, _), batches = element
    batches = list(batches)
    ids, digests = np.concatenate([b["id"] for b in batches]), np.concatenate([b["digest"] for b in batches])
    if fold_identical:
        keep, member, representative = identical_groups(ids, [np.concatenate([b["same"] for b in batches])])
        if band == 0 and len(member):  # (identical records share every band: their star once)
            a, b = _star(ids, member, representative)
            yield {"a": a, "b": b}
        ids, digests = ids[keep], digests[keep]
    a, b = band_group_pairs(ids, digests)
    if len(a):
        yield {"a": a, "b": b}


class AttachSignature(beam.DoFn):
    """(partition, {"sigs": [(ids, sigs, n-gram sets)], "pairs": [pair batches]}) -> pairs
    carrying the signature and n-gram set of endpoint `side`; the second pass verifies the
    Jaccard (`caption_similarity`: exact where both captions have their n-gram sets)."""

    def __init__(self, side: str, cfg: DedupConfig):
        self.side, self.cfg = side, cfg
        self.candidates = Metrics.counter("mmcurate", "dedup.caption_candidates")
        self.verified = Metrics.counter("mmcurate", "dedup.caption_edges")

    def process(self, element, parts: int):
        _, joined = element
        pairs = [p for p in joined["pairs"] if len(p["a"])]
        if not pairs:
            return
        sig_batches = list(joined["sigs"])
        ids = np.concatenate([s[0] for s in sig_batches]) if sig_batches else np.zeros(0, dtype=np.int64)
        sigs = np.concatenate([s[1] for s in sig_batches]) if sig_batches else np.zeros(0, dtype=object)
        exact = np.concatenate([s[2] for s in sig_batches]) if sig_batches else np.zeros(0, dtype=object)
        order = np.argsort(ids)
        ids, sigs, exact = ids[order], sigs[order], exact[order]
        pair = {k: np.concatenate([p[k] for p in pairs]) for k in pairs[0]}
        if self.side == "a":  # (a pair sharing several bands came from each)
            pair["a"], pair["b"] = unique_pairs(pair["a"], pair["b"])
        where = np.searchsorted(ids, pair[self.side])
        if self.side == "a":
            pair["sig_a"], pair["exact_a"] = sigs[where], exact[where]
            yield from split_arrays(id_buckets(pair["b"]), parts, pair)
        else:
            similarity = caption_similarity(pair["sig_a"], sigs[where], pair["exact_a"], exact[where])
            ok = similarity >= self.cfg.caption_threshold
            self.candidates.inc(len(ok))
            self.verified.inc(int(ok.sum()))
            if ok.any():
                yield _edges(pair["a"][ok], pair["b"][ok], 1.0 - similarity[ok])


def signatures_by_node(table: pa.Table, parts: int, num_perm: int, threshold: float):
    """Captions -> (partition, (ids, MinHashes, n-gram sets)) by node. A caption's MinHash
    travels only where an estimate may need it: when it has no n-gram set (too long to store),
    or a set big enough to reach `threshold` against one that has none; else None (512 bytes
    fewer a caption through both signature joins; `caption_similarity` scores such a pair 0.0)."""
    has = table.column("minhash").is_valid().to_numpy(zero_copy_only=False)
    table = table.filter(pa.array(has))
    if not table.num_rows:
        return
    ids = node_ids(table)
    exact = np.empty(table.num_rows, dtype=object)
    exact[:] = table.column("caption_shingles").to_pylist()
    need = needs_minhash(exact, threshold)
    sigs = signature_rows([b if n else None for b, n in zip(table.column("minhash").to_pylist(), need)], num_perm)
    yield from split_arrays(id_buckets(ids), parts, (ids, sigs, exact))


def key_pairs_by_a(pairs, parts: int):
    return split_arrays(id_buckets(pairs["a"]), parts, pairs)


def both_kinds(element):
    """(partition, {"image": [edges], "caption": [edges]}) -> the image edges whose pair is
    also a caption edge."""
    _, joined = element
    image, caption = list(joined["image"]), list(joined["caption"])
    if not image or not caption:
        return
    a = np.concatenate([e["a"] for e in image])
    b = np.concatenate([e["b"] for e in image])
    dist = np.concatenate([e["dist"] for e in image])
    captioned = {(x, y) for e in caption for x, y in zip(e["a"].tolist(), e["b"].tolist())}
    both = np.array([(x, y) in captioned for x, y in zip(a.tolist(), b.tolist())], dtype=bool)
    if both.any():
        yield _edges(a[both], b[both], dist[both])


class ResolveClusters(beam.DoFn):
    """(label partition, member tables) where every member row carries its cluster label ->
    decisions per staging shard, and cluster rows on the `clusters` output."""

    def __init__(self, cfg: DedupConfig, group_shift: int = 0, media_reason: str = "duplicate.near_image"):
        self.cfg, self.group_shift, self.media_reason = cfg, group_shift, media_reason

    def process(self, element):
        _, tables = element
        table = concat(tables)
        if table is None:
            return
        rows = table.append_column("node", pa.array(node_ids(table), pa.int64())).to_pylist()
        rows.sort(key=lambda r: (r["cluster"], survivor_rank(self.cfg.survivor, r["key"], r["source_quality"])))
        out, decided = [], []
        start = 0
        while start < len(rows):
            end = start
            while end < len(rows) and rows[end]["cluster"] == rows[start]["cluster"]:
                end += 1
            for leader, members in self._groups(rows[start:end]):
                cluster = min(r["node"] for r in members)
                for r in members:
                    reason, distance = ("", 0.0) if r is leader else self._why(r, leader)
                    out.append({"key": r["key"], "cluster": cluster, "survivor": leader["key"], "reason": reason, "distance": distance, "size": len(members), "shard": r["shard"]})
                    if r is not leader:
                        decided.append((r["shard"], r["order_task"], r["order_row"], reason, leader["key"], distance))
            start = end
        if decided:
            yield from decisions_by_shard(*zip(*decided))
        yield beam.pvalue.TaggedOutput("clusters", pa.Table.from_pylist(out, schema=CLUSTER_SCHEMA))

    def _groups(self, component: list[dict]):
        """(survivor, members in rank order) per group of a connected component (in rank order):
        the whole component (dedup.clustering connected), or its leader groups of two or more."""
        cfg = self.cfg
        # (clips of one video can meet here through another video's clip). Two members are
        # joined by their edge, and an edge is the leader test itself: one group, no index to build
        if cfg.clustering == "connected" or len(component) == 2:
            yield component[0], component
            return
        videos = None
        if self.group_shift:  # which clips are siblings: never near each other
            videos = np.array([r["node"] >> self.group_shift for r in component])
        near = Nearness(component, cfg.duplicates, cfg.image_hash, cfg.max_distance, cfg.mirror, cfg.caption_threshold, cfg.num_perm, videos,
                        cfg.max_colour_distance)
        leader_of = greedy_leaders(len(component), near, LeaderIndex(near, cfg.caption_threshold, cfg.num_perm), near.same_as())
        groups: dict[int, list[dict]] = {}
        for r, lead in zip(component, leader_of.tolist()):
            groups.setdefault(lead, []).append(r)
        for lead, members in groups.items():
            if len(members) > 1:
                yield component[lead], members

    def _why(self, r: dict, survivor: dict) -> tuple[str, float]:
        cfg = self.cfg
        image_d = self._image_distance(r, survivor) if cfg.uses_images else None
        # a member joined through other members may be beyond k of the survivor: its reason is
        # the caption's when there are captions to compare, else still the image's
        no_captions = not (has_caption(r) and has_caption(survivor)) if cfg.uses_captions else True
        if cfg.duplicates in ("image", "both") or (image_d is not None and (image_d <= cfg.max_distance or no_captions)):
            return self.media_reason, float(image_d)
        # (a pair that cannot reach the threshold, one without its MinHash: similarity 0.0)
        a, b = (signature_rows([x["minhash"]], cfg.num_perm) for x in (r, survivor))
        similarity = caption_similarity(a, b, [r.get("caption_shingles")], [survivor.get("caption_shingles")])
        return "duplicate.near_caption", round(float(1.0 - similarity[0]), 6)

    def _image_distance(self, r: dict, s: dict):
        """Bits between the member's and the survivor's images under `dedup.image_hash` (the
        mirror image counts when enabled); None when either has no hashes. Two video clips with
        comparable frames: the distance most of their frames are within (majority_distance)."""
        clip = self._clip_distance(r, s)
        if clip is not None:
            return clip
        per_kind = {}
        for kind in ("phash", "dhash"):
            if r[kind] is None or s[kind] is None:
                return None
            d = (r[kind] ^ s[kind]).bit_count()
            if self.cfg.mirror and r.get(kind + "_mirror") is not None:
                d = min(d, (r[kind + "_mirror"] ^ s[kind]).bit_count())
            per_kind[kind] = d
        how = self.cfg.image_hash
        return per_kind[how] if how in per_kind else (max if how == "both" else min)(per_kind.values())

    def _clip_distance(self, r: dict, s: dict):
        if not r.get("frame_hashes") or not s.get("frame_hashes"):  # images, audio
            return None
        fs, ns = frame_matrix([s["frame_hashes"]])
        fr, nr = frame_matrix([r["frame_hashes"]])
        if not frames_comparable(ns, nr)[0]:
            return None
        (cr, hr), (cs, hs) = (frame_colour_matrix([x.get("frame_colours")], fr.shape[1]) for x in (r, s))
        distance = int(majority_distance(fr, nr, fs, ns, self.cfg.image_hash, (cr, hr, cs, hs), self.cfg.max_colour_distance)[0])
        if self.cfg.mirror and r.get("frame_hashes_mirror"):  # or its mirror image, if nearer
            flipped = frame_matrix([r["frame_hashes_mirror"]])[0]
            colours = (mirror_frame_colours(cr), hr, cs, hs)
            distance = min(distance, int(majority_distance(flipped, nr, fs, ns, self.cfg.image_hash, colours, self.cfg.max_colour_distance)[0]))
        return distance


def has_caption(record: dict) -> bool:
    return record.get("minhash") is not None or record.get("caption_shingles") is not None


def edges_across_groups(edges: dict, shift: int) -> dict:
    """The edges between different groups (node >> shift): clips of one video are no pairs."""
    keep = (edges["a"] >> shift) != (edges["b"] >> shift)
    return {k: v[keep] for k, v in edges.items()}


def label_members(element, parts: int):
    """(partition, {"labels": [(nodes, labels)], "records": [tables]}) -> (label partition,
    member table with a `cluster` column) for the records that are in some cluster."""
    _, joined = element
    labels = list(joined["labels"])
    if not labels:
        return
    nodes = np.concatenate([n for n, _ in labels])
    cluster = np.concatenate([lab for _, lab in labels])
    order = np.argsort(nodes)
    nodes, cluster = nodes[order], cluster[order]
    for table in joined["records"]:
        ids = node_ids(table)
        where = np.clip(np.searchsorted(nodes, ids), 0, max(0, len(nodes) - 1))
        hit = nodes[where] == ids
        if not hit.any():
            continue
        members = table.filter(pa.array(hit)).append_column("cluster", pa.array(cluster[where[hit]], pa.int64()))
        yield from split_table(members, id_buckets(members.column("cluster").to_numpy()), parts)


class WriteClusters(beam.DoFn):
    """All cluster rows -> OUT/dedup/clusters.parquet (sorted: cluster, then key) and
    OUT/dedup/stats.json (counts and the largest clusters)."""

    def __init__(self, out_dir: str, top: int = 20):
        self.out_dir, self.top = out_dir, top

    def process(self, tables):
        table = concat(tables) or CLUSTER_SCHEMA.empty_table()
        table = table.sort_by([("cluster", "ascending"), ("key", "ascending")]).drop_columns(["shard"])
        survivors = table.filter(pa.compute.equal(table.column("reason"), "")).sort_by([("size", "descending"), ("cluster", "ascending")])
        reasons = table.column("reason").to_pylist()
        stats = {
            "clusters": survivors.num_rows,
            "clustered_samples": table.num_rows,
            "dropped": {r: reasons.count(r) for r in sorted(set(reasons)) if r},
            "largest": [{"cluster": c, "survivor": s, "size": n} for c, s, n in zip(*(survivors.column(x).to_pylist()[: self.top] for x in ("cluster", "survivor", "size")))],
            "cluster_sizes": {str(n): k for n, k in sorted(collections.Counter(survivors.column("size").to_pylist()).items())},
        }
        if self.out_dir:
            base = fileio.join(self.out_dir, CLUSTERS_DIR)
            fileio.makedirs(base)
            fileio.write_parquet(fileio.join(base, CLUSTERS_FILE), table)
            fileio.write_json(fileio.join(base, DEDUP_STATS), stats)
        yield stats


class _DedupStep(beam.PTransform):
    """A near-dup sub-transform: the dedup config, the partition-count singleton, whether
    identical items are searched once (`ImagePairs._fold`, `caption_candidates`), and the
    ledger that counts its shuffles (by default its own: counted, checked by no one)."""

    def __init__(self, cfg: DedupConfig, parts, fold_identical: bool = False, ledger: Ledger | None = None):
        super().__init__()
        self.cfg, self.parts, self.fold_identical = cfg, parts, fold_identical
        self.ledger = ledger or Ledger(type(self).__name__)


class ImageEdges(_DedupStep):
    """Survivor tables -> image edge batches {a, b, dist}: every pair within distance k, or,
    with `fold_identical`, edges with the same connected components (identical items: a star)."""

    def expand(self, tables):
        blocks = tables | "ImageBlocks" >> beam.ParDo(ImageBlocks(self.cfg), parts=beam.pvalue.AsSingleton(self.parts))
        grouped = self.ledger.group(blocks, "Blocks", batch_rows, "rows")
        return grouped | "ImagePairs" >> beam.ParDo(ImagePairs(self.cfg, self.fold_identical))


class CaptionCandidates(_DedupStep):
    """Survivor tables -> candidate pair batches {a, b}: MinHashLSH's candidates, each once
    (with `fold_identical`, identical signatures as a star)."""

    def expand(self, tables):
        bands = tables | "CaptionBands" >> beam.ParDo(CaptionBands(self.cfg), parts=beam.pvalue.AsSingleton(self.parts))
        grouped = self.ledger.group(bands, "Bands", batch_rows, "rows")
        return grouped | "CaptionCandidates" >> beam.FlatMap(caption_candidates, fold_identical=self.fold_identical)


class CaptionEdges(_DedupStep):
    """Survivor tables -> caption edge batches {a, b, dist}: candidates whose estimated
    Jaccard reaches the threshold (dist = 1 - Jaccard)."""

    def expand(self, tables):
        cfg, parts, ledger = self.cfg, beam.pvalue.AsSingleton(self.parts), self.ledger
        candidates = tables | "Candidates" >> CaptionCandidates(cfg, self.parts, self.fold_identical, ledger)
        sigs = tables | "SigsByNode" >> beam.FlatMap(signatures_by_node, parts=parts, num_perm=cfg.num_perm, threshold=cfg.caption_threshold)
        pairs_by_a = candidates | "PairsByA" >> beam.FlatMap(key_pairs_by_a, parts=parts)
        with_a = ledger.cogroup({"sigs": sigs, "pairs": pairs_by_a}, "JoinSigA") | "AttachSigA" >> beam.ParDo(AttachSignature("a", cfg), parts=parts)
        return ledger.cogroup({"sigs": sigs, "pairs": with_a}, "JoinSigB") | "VerifyJaccard" >> beam.ParDo(AttachSignature("b", cfg), parts=parts)


class NearDedup(_DedupStep):
    """Exact-dedup survivor tables (at least `near_columns`) -> {"decisions", "clusters", "stats"}.
    With the caller's ledger the caller gates the decisions; clusters are written only once
    every shuffle counted so far balances."""

    def __init__(self, cfg: DedupConfig, parts, out_dir: str, group_shift: int = 0, media_reason: str = "duplicate.near_image",
                 ledger: Ledger | None = None):
        # identical items are searched once, joined by a star: the components stay the same,
        # unless edges are intersected (`both`) or dropped between clips of one video
        super().__init__(cfg, parts, fold_identical=cfg.duplicates != "both" and not group_shift, ledger=ledger)
        self.out_dir, self.group_shift, self.media_reason = out_dir, group_shift, media_reason
        self.gates_decisions = ledger is None

    def expand(self, tables):
        cfg, parts, ledger = self.cfg, beam.pvalue.AsSingleton(self.parts), self.ledger
        edges = {}
        if cfg.uses_images:
            edges["image"] = tables | "ImageEdges" >> ImageEdges(cfg, self.parts, self.fold_identical, ledger)
        if cfg.uses_captions:
            edges["caption"] = tables | "CaptionEdges" >> CaptionEdges(cfg, self.parts, self.fold_identical, ledger)
        if cfg.duplicates == "both":
            by_a = {kind: e | f"{kind}ByA" >> beam.FlatMap(key_pairs_by_a, parts=parts) for kind, e in edges.items()}
            graph = ledger.cogroup(by_a, "JoinKinds") | "BothKinds" >> beam.FlatMap(both_kinds)
        else:
            graph = list(edges.values()) | "AllEdges" >> beam.Flatten()
        if self.group_shift:
            graph = graph | "AcrossGroups" >> beam.Map(edges_across_groups, self.group_shift)
        labels = graph | "Components" >> Components(cfg, self.parts, ledger)
        slim = tables | "MemberColumns" >> beam.Map(member_records, cfg)
        records = route_and_group(slim, by_node, self.parts, "RecordsByNode", ledger)
        members = ledger.cogroup({"labels": labels, "records": records}, "JoinLabels") | "LabelMembers" >> beam.FlatMap(label_members, parts=parts)
        resolved = (
            ledger.group(members, "GroupClusters")
            | "ResolveClusters" >> beam.ParDo(ResolveClusters(cfg, self.group_shift, self.media_reason)).with_outputs("clusters", main="decisions")
        )
        clusters = ledger.to_list(resolved.clusters, "AllClusters")
        stats = ledger.gate(clusters, "ClustersChecked") | "WriteClusters" >> beam.ParDo(WriteClusters(self.out_dir))
        decisions = ledger.gate(resolved.decisions, "DecisionsChecked") if self.gates_decisions else resolved.decisions
        return {"decisions": decisions, "clusters": resolved.clusters, "stats": stats}
