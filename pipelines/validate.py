"""`mmcurate validate OUT`: re-read every shard and check it against the manifests and stats.

Checks: tar integrity, key rules, member adjacency and completeness, sample json, each video
clip's bytes and each lossless audio file's decoded samples against the json's sha256, counts in
tar == manifest == shard stats == run stats, keys unique across shards, the wids index (its
split byte ranges too), and the accounting identity. Returns the list of problems (empty means valid)."""

from __future__ import annotations

import hashlib
import json
import tarfile
from collections import Counter

from mmcurate.filters.keys import is_valid_key
from mmcurate.pipelines import fileio
from mmcurate.pipelines.run import WIDS_INDEX
from mmcurate.pipelines.sources.webdataset import split_member
from mmcurate.pipelines.stats import account, identity_errors, merge
from mmcurate.schemas.reasons import KEPT, REASONS
from mmcurate.schemas.record import LATER_COLUMNS, MANIFEST_SCHEMA

REQUIRED_MEMBERS = {"txt", "json"}
IMAGE_MEMBERS = {"jpg", "png", "webp"}
MEDIA_MEMBERS = IMAGE_MEMBERS | {"mp4", "flac", "wav", "mp3"}  # a sample has one: image, clip or audio


def validate(out_dir: str, progress: bool = False) -> list[str]:
    problems: list[str] = []
    try:
        stats = fileio.read_json(fileio.join(out_dir, "stats.json"))
    except Exception as e:
        return [f"stats.json: cannot read ({type(e).__name__}: {e})"]
    for name in ("config.yaml", WIDS_INDEX):
        if not fileio.exists(fileio.join(out_dir, name)):
            problems.append(f"{name}: missing")
    index_ranges = _index_ranges(out_dir)
    seen_keys: Counter = Counter()
    shard_accounts = []
    shards = stats.get("shards", [])
    iterator = shards
    if progress:
        from mmcurate.pipelines.progress import bar

        iterator = bar(shards, desc="validate", unit="shard")
    for entry in iterator:
        tar_path = fileio.join(out_dir, entry["name"])
        base = tar_path[: -len(".tar")]
        tar_keys, layout = _check_tar(tar_path, problems)
        try:
            table = fileio.read_parquet(base + ".parquet")
        except Exception as e:
            problems.append(f"{base}.parquet: cannot read ({type(e).__name__}: {e})")
            continue
        missing = set(MANIFEST_SCHEMA.names) - set(table.column_names) - LATER_COLUMNS
        if missing:
            problems.append(f"{base}.parquet: missing columns {sorted(missing)}")
            continue
        rows = table.to_pylist()
        for r in rows:
            if r["status"] != KEPT and r["reason"] not in REASONS:
                problems.append(f"{base}.parquet: key {r['key']}: unknown reason {r['reason']!r}")
        kept = [r for r in rows if r["status"] == KEPT]
        kept_keys = [r["key"] for r in kept]
        listed_ranges = index_ranges.get(entry["name"])
        if listed_ranges is not None:  # samples grouped by split, in the order of their ranges
            rank = {name: i for i, name in enumerate(sorted(listed_ranges, key=lambda n: listed_ranges[n]["offset"]))}
            kept_keys = [r["key"] for r in sorted(kept, key=lambda r: rank.get(r["split"], len(rank)))]
        if tar_keys is not None and tar_keys != kept_keys:
            problems.append(f"{entry['name']}: tar samples ({len(tar_keys)}) differ from kept manifest rows ({len(kept_keys)})")
        if tar_keys is not None and listed_ranges is not None and _ranges(layout) != listed_ranges:
            problems.append(f"{WIDS_INDEX}: the split ranges of {entry['name']} do not match its samples "
                            f"(listed {listed_ranges}, found {_ranges(layout)})")
        if entry["samples"] != len(kept_keys):
            problems.append(f"{entry['name']}: stats.json says {entry['samples']} samples, manifest has {len(kept_keys)} kept")
        seen_keys.update(kept_keys)
        acc = account(rows)
        try:
            shard_stats = fileio.read_json(base + ".stats.json")
            for field in ("inputs", "kept", "dropped", "failed"):
                if shard_stats.get(field) != acc[field]:
                    problems.append(f"{base}.stats.json: {field} {shard_stats.get(field)} != manifest {acc[field]}")
        except Exception as e:
            problems.append(f"{base}.stats.json: cannot read ({type(e).__name__}: {e})")
        problems += identity_errors(acc, entry["name"])
        shard_accounts.append(acc)
    total = merge(shard_accounts)
    for field in ("inputs", "kept", "dropped", "failed"):
        if stats.get(field) != total[field]:
            problems.append(f"stats.json: {field} {stats.get(field)} != sum of manifests {total[field]}")
    problems += identity_errors(stats, "stats.json")
    dupes = [k for k, n in seen_keys.items() if n > 1]
    if dupes:
        problems.append(f"{len(dupes)} keys appear in more than one sample, e.g. {dupes[:3]}")
    problems += _check_wids(out_dir, shards)
    return problems


def _check_tar(path: str, problems: list[str]):
    """-> (sample keys in tar order, layout: [(split, start offset)] per sample plus
    (None, end of the last member)); (None, None) when the tar cannot be read."""
    keys: list[str] = []
    members: dict[str, set] = {}
    layout: list[tuple] = []
    media: dict[str, tuple[str, bytes]] = {}  # this sample's clip or audio, until its json is read (or the reverse)
    docs: dict[str, dict] = {}
    end = 0

    def check_media(key: str) -> None:  # as soon as both are read: one sample's media held at a time
        if key in media and key in docs:
            ext, data = media.pop(key)
            problem = media_problem(ext, data, docs.pop(key))
            if problem:
                problems.append(f"{path}: {key}.{ext} {problem}")

    try:
        with fileio.open_read(path) as f, tarfile.open(fileobj=f, mode="r|") as tar:
            for info in tar:
                key, ext = split_member(info.name)
                if not info.isfile():
                    problems.append(f"{path}: member {info.name} is not a regular file")
                    continue
                data = tar.extractfile(info).read()
                end = info.offset_data + -(-info.size // tarfile.BLOCKSIZE) * tarfile.BLOCKSIZE
                if len(data) != info.size:
                    problems.append(f"{path}: member {info.name} is truncated")
                if not is_valid_key(key):
                    problems.append(f"{path}: bad key {key!r} (keys are [A-Za-z0-9_-], no dot)")
                if not keys or keys[-1] != key:
                    if key in members:
                        problems.append(f"{path}: members of {key} are not adjacent")
                    keys.append(key)
                    members[key] = set()
                    layout.append([None, info.offset])
                    media.clear()  # a sample's members are adjacent: nothing of the last one is still needed
                    docs.clear()
                members[key].add(ext)
                if ext in CHECKED_MEDIA:
                    media[key] = (ext, data)
                    check_media(key)
                if ext == "json":
                    try:
                        doc = json.loads(data)
                        docs[key] = doc if isinstance(doc, dict) else {}
                        check_media(key)
                        layout[-1][0] = doc.get("split")
                        if doc.get("key") != key:
                            problems.append(f"{path}: {info.name} has key {doc.get('key')!r}")
                    except ValueError:
                        problems.append(f"{path}: {info.name} is not valid JSON")
    except (tarfile.TarError, OSError, EOFError) as e:
        problems.append(f"{path}: unreadable tar ({type(e).__name__}: {e})")
        return None, None
    for key, exts in members.items():
        if not REQUIRED_MEMBERS <= exts or not exts & MEDIA_MEMBERS:
            problems.append(f"{path}: sample {key} has members {sorted(exts)}, needs media (image, mp4 or audio), txt and json")
    return keys, [tuple(x) for x in layout] + [(None, end)]


CHECKED_MEDIA = {"mp4", "flac", "wav"}  # members whose bytes the sample json's sha256 pins down


def media_problem(ext: str, data: bytes, doc: dict) -> str:
    """A clip's or a lossless audio member's damage, which the tar cannot show (it checks its
    headers, not its data): a clip's json sha256 is of its bytes; an audio json's is of the
    PCM its file decodes to (`sha256_of: pcm_s16le`). "" when intact or not checkable."""
    want = doc.get("sha256")
    if not want:
        return ""
    if ext == "mp4" and doc.get("modality") == "video":
        got = hashlib.sha256(data).hexdigest()
        return "" if got == want else f"is damaged: its sha256 {got[:12]}… is not the json's {want[:12]}…"
    if ext in ("flac", "wav") and doc.get("modality") == "audio" and doc.get("sha256_of") == "pcm_s16le":
        try:
            got = hashlib.sha256(_pcm_s16(data)).hexdigest()
        except Exception as e:  # av's errors, and anything a damaged file makes it raise
            return f"does not decode ({type(e).__name__}: {str(e)[:120]})"
        return "" if got == want else f"is damaged: it decodes to PCM whose sha256 {got[:12]}… is not the json's {want[:12]}…"
    return ""


def _pcm_s16(data: bytes) -> bytes:
    """A lossless audio file's samples as interleaved little-endian int16, at its own rate and
    channels (what prepare hashed before encoding it)."""
    import io

    import av
    import numpy as np

    parts = []
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        for frame in container.decode(stream):
            array = frame.to_ndarray()
            if frame.format.is_planar:
                array = array.T.reshape(-1)
            parts.append(array.reshape(-1).astype("<i2", copy=False))
    return np.concatenate(parts).tobytes() if parts else b""


def _ranges(layout: list[tuple]) -> dict[str, dict]:
    """Each split's byte range in a tar, from its samples' start offsets: from its first
    sample's start to the start of the sample after its last (or the end of the data)."""
    ranges: dict[str, dict] = {}
    for (split, start), (_, next_start) in zip(layout, layout[1:]):
        r = ranges.setdefault(split, {"offset": start, "bytes": 0, "nsamples": 0})
        r["bytes"], r["nsamples"] = next_start - r["offset"], r["nsamples"] + 1
    return ranges


def _index_ranges(out_dir: str) -> dict[str, dict]:
    """{shard tar name: its split ranges} from the wids index (none for older outputs)."""
    try:
        index = fileio.read_json(fileio.join(out_dir, WIDS_INDEX))
    except Exception:
        return {}
    return {s["url"]: s["splits"] for s in index.get("shardlist", []) if "splits" in s}


def _check_wids(out_dir: str, shards: list[dict]) -> list[str]:
    try:
        index = fileio.read_json(fileio.join(out_dir, WIDS_INDEX))
    except Exception:
        return []  # reported as missing above
    listed = {s["url"]: s["nsamples"] for s in index.get("shardlist", [])}
    expected = {s["name"]: s["samples"] for s in shards if s["samples"] > 0}
    return [] if listed == expected else [f"{WIDS_INDEX}: shard list differs from stats.json"]
