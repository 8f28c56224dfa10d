"""Training input from an mmcurate output folder: batched, decoded torch tensors via webdataset.

    from mmcurate.loader import loader
    for batch in loader("out", split="train", batch_size=256, num_workers=8):
        batch["image"]  # float [B, 3, 224, 224], CLIP-normalised
        batch["text"]   # long [B, 77], clip.tokenize of the caption
        batch["key"], batch["json"]  # lists: sample keys, parsed KEY.json documents

The folder may be local or remote (gs://, s3://): its `index.wids.json` lists the shards, and
every file is opened through Beam's FileSystems (mmcurate.pipelines.fileio), not webdataset's
gopen. Shards are split across nodes (RANK/WORLD_SIZE or torch.distributed) and DataLoader
workers; `resampled=True` draws shards with replacement forever (bound it with `.with_epoch`).

A shard that cannot be read, or yields fewer samples than the index lists (a truncated tar
ends early without a tar error), raises ShardError; `handler=wds.warn_and_continue` warns and
goes on with the next shard (and skips samples that fail to decode).
"""

from __future__ import annotations

import io
import json
import os
import random
from functools import partial
from typing import Any, Callable, Iterable, Iterator, Sequence

import webdataset as wds
from webdataset.tariterators import group_by_keys, tar_file_iterator

from mmcurate.pipelines import fileio
from mmcurate.pipelines.tario import IMAGE_EXTS

INDEX = "index.wids.json"
INDEX_KIND = "wids-shard-index-v1"
MODALITIES = ("image", "text")  # what the pipeline writes; audio/video: one decoder each in _decoders


class ShardError(RuntimeError):
    """A shard is unreadable, truncated, or holds a sample that cannot be decoded."""


# ---------------------------------------------------------------------------------------------
# Shards
# ---------------------------------------------------------------------------------------------


def shard_entries(out_dir: str) -> list[dict]:
    """OUT/index.wids.json's shard list, in index order, urls made absolute. Each entry:
    {"url", "nsamples"[, "splits": {name: {"offset", "bytes", "nsamples"}}]}: where each
    split's samples lie in the tar (older outputs have no "splits")."""
    path = fileio.join(out_dir, INDEX)
    if not fileio.exists(path):
        raise FileNotFoundError(f"{path}: no shard index (is {out_dir} an mmcurate output folder?)")
    doc = fileio.read_json(path)
    if doc.get("__kind__") != INDEX_KIND:
        raise ValueError(f"{path}: not a {INDEX_KIND} index")
    return [{**s, "url": _absolute(out_dir, s["url"])} for s in doc["shardlist"]]


def shard_index(out_dir: str) -> dict[str, int]:
    """{absolute shard url: sample count} from OUT/index.wids.json, in index order."""
    return {s["url"]: int(s["nsamples"]) for s in shard_entries(out_dir)}


def split_ranges(entries: list[dict], split: str) -> dict[str, tuple[int, int, int]] | None:
    """{url: (offset, bytes, nsamples)} of the split in each shard that holds some of it; None
    when the index has no ranges (an older output: every shard is read and filtered)."""
    if not all("splits" in s for s in entries):
        return None
    return {s["url"]: (int(r["offset"]), int(r["bytes"]), int(r["nsamples"]))
            for s in entries if (r := s["splits"].get(split))}


def shard_urls(out_dir: str) -> list[str]:
    """The output's shards (absolute paths or URLs), in index order."""
    return list(shard_index(out_dir))


def _absolute(out_dir: str, url: str) -> str:
    if fileio.is_remote(url) or os.path.isabs(url):
        return url
    if fileio.is_remote(out_dir):
        return fileio.join(out_dir, url)
    return os.path.abspath(os.path.join(out_dir, url))


class ShardList(wds.pytorch.IterableDataset):
    """Each shard once per epoch as {"url": ...}: in index order, or shuffled with a seed that
    changes with every epoch (the same order on every node and worker, which then split it)."""

    def __init__(self, urls: list[str], seed: int | None):
        super().__init__()
        self.urls, self.seed, self.epoch = list(urls), seed, -1

    def __iter__(self) -> Iterator[dict]:
        self.epoch += 1
        urls = list(self.urls)
        if self.seed is not None:
            random.Random(f"shards-{self.seed}-{self.epoch}").shuffle(urls)
        for url in urls:
            yield {"url": url}


def read_shards(shards: Iterable[dict], counts: dict[str, int], handler: Callable = wds.reraise_exception,
                filesystem_args: Sequence[str] | None = None, ranges: dict[str, tuple[int, int]] | None = None):
    """The url-opener and tar-expander stages: raw samples ({"__key__", "__url__", ext: bytes})
    of each shard, opened with fileio.open_read (local, gs://, s3://) and closed after reading.
    Only whole samples come out: a shard that breaks off mid-sample loses that sample.
    filesystem_args: Beam options for remote shards, set again here for spawned workers.
    ranges: {url: (offset, bytes)}: read only these bytes of each shard (one split's samples)."""
    if filesystem_args is not None:
        fileio.configure(filesystem_args)
    for shard in shards:
        url, read = shard["url"], 0
        try:
            for sample in _shard_samples(url, (ranges or {}).get(url)):
                read += 1
                yield sample
            expected = counts.get(url)
            if expected is not None and read != expected:
                raise ShardError(f"{url}: read {read} samples, but {INDEX} lists {expected}: the shard is truncated "
                                 f"or corrupt (or the index is stale)")
        except Exception as exn:
            if not isinstance(exn, ShardError):
                exn = _wrap(exn, f"{url}: corrupt or truncated shard after {read} samples: {type(exn).__name__}: {exn}")
            if not handler(exn):
                break


def _shard_samples(url: str, byte_range: tuple[int, int] | None = None) -> Iterator[dict]:
    with fileio.open_read(url) as stream:
        if byte_range is not None:
            stream.seek(byte_range[0])  # a ranged read on gs:// and s3://
            stream = _TarWindow(stream, byte_range[1])
        members = ({**m, "__url__": url} for m in tar_file_iterator(stream))
        yield from group_by_keys(members)


class _TarWindow(io.RawIOBase):
    """The next `size` bytes of a stream (whole tar members), then the two zero blocks that end
    a tar: a range of a shard read as a tar of its own."""

    def __init__(self, stream, size: int):
        self.stream, self.left, self.tail = stream, size, bytes(1024)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self.left > 0:
            data = self.stream.read(min(len(buffer), self.left))
            self.left = self.left - len(data) if data else 0  # a short file ends early: the count check names it
        else:
            data, self.tail = self.tail[: len(buffer)], self.tail[len(buffer):]
        buffer[: len(data)] = data
        return len(data)


def _wrap(exn: Exception, message: str) -> ShardError:
    err = ShardError(message)
    err.__cause__ = exn
    return err


# ---------------------------------------------------------------------------------------------
# Samples
# ---------------------------------------------------------------------------------------------


def parse_json(sample: dict) -> dict:
    return {**sample, "json": json.loads(sample["json"])}


def in_split(sample: dict, split: str) -> bool:
    doc = sample["json"]
    if "split" not in doc:
        raise ValueError(f"{sample['__url__']}: sample {sample['__key__']} has no 'split' field: this output "
                         f"was written before splits existed; rerun the pipeline to assign them")
    return doc["split"] == split


def check_in_split(sample: dict, split: str) -> dict:
    """A sample read from a split's byte range must be in that split (else the index is stale)."""
    if sample["json"].get("split") != split:
        raise ValueError(f"it is in split {sample['json'].get('split')!r}, but {INDEX} places it in split {split!r}'s "
                         f"byte range: the index does not match the shard")
    return sample


class Shuffle(wds.PipelineStage):
    """A shuffle buffer whose order is fixed by (seed, epoch, node, worker)."""

    def __init__(self, bufsize: int, seed: int):
        self.bufsize, self.seed, self.epoch = bufsize, seed, -1

    def run(self, samples: Iterable[dict]) -> Iterator[dict]:
        self.epoch += 1
        rank, _, worker, _ = wds.utils.pytorch_worker_info()
        rng = random.Random(f"samples-{self.seed}-{self.epoch}-{rank}-{worker}")
        return wds.filters.shuffle(self.bufsize, initial=self.bufsize, rng=rng)(iter(samples))


def decode(sample: dict, decoders: dict[str, Callable[[dict], Any]]) -> dict:
    """Parsed sample -> {"key", "json", modality: tensor, ...}."""
    return {"key": sample["__key__"], "json": sample["json"], **{name: d(sample) for name, d in decoders.items()}}


def each_sample(samples: Iterable[dict], fn: Callable[[dict], dict], handler: Callable) -> Iterator[dict]:
    """fn over the samples; a failure becomes a ShardError naming the shard and the sample."""
    for sample in samples:
        try:
            out = fn(sample)
        except Exception as exn:
            err = _wrap(exn, f"{sample.get('__url__')}: sample {sample.get('__key__')}: {type(exn).__name__}: {exn}")
            if handler(err):
                continue
            break
        yield out


def decode_image(sample: dict, transform: Callable) -> Any:
    """The sample's image (jpg/png/webp), opened with PIL and passed to the transform as is."""
    from PIL import Image

    ext = next((e for e in IMAGE_EXTS if e in sample), None)
    if ext is None:
        raise KeyError(f"no image member ({', '.join(IMAGE_EXTS)})")
    with Image.open(io.BytesIO(sample[ext])) as img:
        return transform(img)


def decode_text(sample: dict, tokenizer: Callable) -> Any:
    """The caption (KEY.txt) tokenised; a tokenizer returning [1, ctx] (clip.tokenize) gives [ctx]."""
    tokens = tokenizer(sample["txt"].decode("utf-8"))
    return tokens[0] if tokens.ndim == 2 else tokens


def clip_transform(n_px: int):
    """clip's own preprocessing (clip.clip._transform, as filters/clip_score.py uses it):
    bicubic resize of the short side, centre crop, RGB, ToTensor, CLIP's mean/std."""
    from mmcurate.tinyclip import _clip

    return _clip().clip._transform(n_px)


def clip_tokenizer(context_length: int = 77) -> Callable:
    """clip.tokenize at this context length, truncating long captions (ending them with EOT)."""
    from mmcurate.tinyclip import _clip

    return partial(_clip().tokenize, context_length=context_length, truncate=True)


def _decoders(modalities: Iterable[str], image_size: int, transform: Callable | None,
              tokenizer: Callable | None, context_length: int) -> dict[str, Callable[[dict], Any]]:
    builders = {
        "image": lambda: partial(decode_image, transform=transform or clip_transform(image_size)),
        "text": lambda: partial(decode_text, tokenizer=tokenizer or clip_tokenizer(context_length)),
    }
    unknown = [m for m in modalities if m not in builders]
    if unknown:
        raise ValueError(f"modalities {unknown}: mmcurate outputs hold {', '.join(builders)}")
    return {m: builders[m]() for m in modalities}


def collate(samples: list[dict]) -> dict:
    """Tensors stacked along a new batch dimension; keys and json documents as lists."""
    import torch

    return {name: torch.stack([s[name] for s in samples]) if isinstance(samples[0][name], torch.Tensor)
            else [s[name] for s in samples] for name in samples[0]}


# ---------------------------------------------------------------------------------------------
# The pipeline
# ---------------------------------------------------------------------------------------------


def check_split(out_dir: str, split: str) -> None:
    """Fail early when stats.json shows the split has no kept samples (or none has a split)."""
    path = fileio.join(out_dir, "stats.json")
    splits = fileio.read_json(path).get("splits") if fileio.exists(path) else None
    if splits is not None and not splits.get(split):
        named = {k: v for k, v in splits.items() if k} or "none assigned"
        raise ValueError(f"{out_dir}: no kept sample is in split {split!r} (kept per split: {named})")


def check_modalities(out_dir: str, modalities: Iterable[str]) -> None:
    """Fail early, in one line, when images are asked of an audio output (its samples hold
    KEY.flac); a video output's KEY.jpg is each clip's middle frame, decoded as its image."""
    from mmcurate.pipelines.samples import media_modality

    if "image" in modalities and media_modality(out_dir) == "audio":
        raise ValueError(f"{out_dir} holds audio samples (KEY.flac, KEY.txt, KEY.json): the loader decodes images and text; "
                         "pass modalities=('text',) for the captions, and read KEY.flac from the tars yourself (runbooks/training.md)")


def dataset(out_dir: str, *, split: str | None = None, batch_size: int = 64, image_size: int = 224,
            transform: Callable | None = None, tokenizer: Callable | None = None, context_length: int = 77,
            modalities: Iterable[str] = MODALITIES, shuffle: int = 1000, resampled: bool = False, seed: int = 0,
            partial_batches: bool = True, handler: Callable = wds.reraise_exception,
            filesystem_args: Sequence[str] = ()) -> wds.DataPipeline:
    """A webdataset pipeline of batches (dicts: see the module docstring) from an output folder.

    split: only samples whose json "split" is this: of each shard, only the split's byte range
      is read (a 1 % split reads ~1 % of the bytes; older outputs, whose index has no ranges,
      are read whole and filtered). transform: PIL image -> tensor, replaces the default
      clip_transform(image_size). tokenizer: str -> LongTensor [ctx] or [1, ctx], replaces
      clip.tokenize(context_length). modalities: which tensors to decode ("image", "text").
    shuffle: sample buffer size (0: no shuffling at all, samples in index order); with it, the
      shard order is shuffled too, reproducibly for a seed, anew each epoch.
    resampled: shards drawn with replacement, forever (use .with_epoch(n_batches)); each node
      and worker draws its own seeded stream, so nothing is split.
    handler: wds.reraise_exception (default) raises ShardError on a bad shard or sample;
      wds.warn_and_continue warns and skips it.
    filesystem_args: Beam pipeline options for a remote output (`--s3_endpoint_url=...`,
      `--s3_region_name=...`, `--project=...`); credentials otherwise come from the environment.
    """
    remote_args = list(filesystem_args) if fileio.is_remote(out_dir) else None
    if remote_args is not None:
        fileio.configure(remote_args)  # Beam's S3 filesystem needs options, even empty ones
    entries = shard_entries(out_dir)
    if not entries:
        raise ValueError(f"{out_dir}: {INDEX} lists no shards (no kept samples)")
    counts, ranges = {s["url"]: int(s["nsamples"]) for s in entries}, None
    if split is not None:
        check_split(out_dir, split)
        in_ranges = split_ranges(entries, split)
        if in_ranges is not None:
            counts = {url: n for url, (_, _, n) in in_ranges.items()}
            ranges = {url: (offset, size) for url, (offset, size, _) in in_ranges.items()}
    check_modalities(out_dir, modalities)
    decoders = _decoders(modalities, image_size, transform, tokenizer, context_length)
    if resampled:
        stages = [wds.ResampledShards(list(counts), seed=seed, deterministic=True)]
    else:
        stages = [ShardList(list(counts), seed if shuffle else None), wds.split_by_node, wds.split_by_worker]
    stages += [partial(read_shards, counts=counts, handler=handler, filesystem_args=remote_args, ranges=ranges),
               partial(each_sample, fn=parse_json, handler=handler)]
    if ranges is not None:
        stages.append(partial(each_sample, fn=partial(check_in_split, split=split), handler=handler))
    elif split is not None:
        stages.append(wds.select(partial(in_split, split=split)))
    if shuffle:
        stages.append(Shuffle(shuffle, seed))
    stages += [partial(each_sample, fn=partial(decode, decoders=decoders), handler=handler),
               wds.batched(batch_size, collation_fn=collate, partial=partial_batches)]
    return wds.DataPipeline(*stages)


def loader(out_dir: str, *, num_workers: int = 0, **options) -> wds.WebLoader:
    """dataset(out_dir, **options) in a DataLoader with num_workers processes (each reads its own
    shards; workers stay alive across epochs so the shuffle order changes every epoch)."""
    return wds.WebLoader(dataset(out_dir, **options), batch_size=None, num_workers=num_workers,
                         persistent_workers=num_workers > 0)
