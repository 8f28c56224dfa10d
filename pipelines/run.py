"""`mmcurate run`: plan inputs, then prepare -> dedup -> [score] -> finalize -> finish in one Beam
pipeline. Finish, the pipeline's last step, writes the run-level stats and the shard index and
checks the accounting identity, so a job submitted without waiting (a Dataflow flex template,
`--no-wait`) still completes the output on its own."""

from __future__ import annotations

import dataclasses
import importlib.util
import logging
import os
import re
import threading
import time
from typing import Optional

import apache_beam as beam
import yaml

from mmcurate import __version__
from mmcurate.pipelines import fileio, sources
from mmcurate.pipelines.dedup import Dedup
from mmcurate.pipelines.near_dedup import CLUSTERS_DIR, DEDUP_STATS
from mmcurate.pipelines.finalize import EMBEDDINGS_DIR, SHARDS_DIR, Finalize
from mmcurate.pipelines.ledger import Ledger, is_shuffle_loss, loss_summary
from mmcurate.pipelines.prepare import SHARDS_TAG, Prepare, staging_fingerprint
from mmcurate.pipelines.runner import default_workers, is_local, make_pipeline, worker_count
from mmcurate.pipelines.stats import identity_errors, merge
from mmcurate.filters.language import check_languages
from mmcurate.schemas.config import FORMATS, ConfigError, ImageConfig, RunConfig
from mmcurate.schemas.reasons import FAILED

STAGING_DIR = "_staging"
WIDS_INDEX = "index.wids.json"
STATS = "stats.json"
log = logging.getLogger("mmcurate")


class AccountingError(RuntimeError):
    """The accounting identity does not hold: a row was lost or counted twice."""


def build(p: beam.Pipeline, tasks, cfg: RunConfig, out_dir: str, run_info: Optional[dict] = None, workers: int = 1) -> None:
    """The whole pipeline. run_info: what finish records besides the shards' stats
    (format, input specs, ignored files, start time, resumed shards). workers: how many
    workers dedup's shuffles keep busy (`runner.worker_count`)."""
    staging = fileio.join(out_dir, STAGING_DIR, "prepare")
    aligned = any(t.options.get("role") for t in tasks)
    prepared = p | "Tasks" >> beam.Create(tasks) | "Prepare" >> Prepare(cfg, staging, aligned)
    decisions = (prepared.kept | "Dedup" >> Dedup(cfg.dedup, out_dir, cfg.input.media_modality, cfg.video.dedup_within_video, workers))["decisions"]
    inputs = {"shards": prepared[SHARDS_TAG], "decisions": decisions}
    score_dir = fileio.join(out_dir, STAGING_DIR, "score")
    if cfg.clip.model:
        from mmcurate.pipelines.score import Score, top_fraction_cutoff  # Beam's ML module: only when scoring

        inputs["scores"] = (prepared[SHARDS_TAG], decisions) | "Score" >> Score(cfg.clip, staging, score_dir)
        if cfg.clip.filter and cfg.clip.top_fraction > 0:
            inputs["cutoff"] = top_fraction_cutoff(inputs["scores"], cfg.clip.top_fraction)
    shard_stats = inputs | "Finalize" >> Finalize(staging, out_dir, cfg.clip, cfg.output, score_dir)
    info = dict(run_info or {}, keep_staging=cfg.output.keep_staging)
    # finish removes shards that are not in its list: the list must be whole
    ledger = Ledger("finish")
    collected = ledger.gate(ledger.to_list(shard_stats, "CollectStats"), "StatsChecked")
    _ = collected | "Finish" >> beam.Map(lambda shards: finish(out_dir, shards, **info))


def run(
    inputs: list[str],
    out_dir: str,
    cfg: Optional[RunConfig] = None,
    workers: Optional[int] = None,
    beam_args: list[str] | tuple = (),
    test_pipeline: Optional[beam.Pipeline] = None,
    progress: bool = False,
    wait: bool = True,
    shuffle_retries: int = 1,
) -> Optional[dict]:
    """Run the pipeline; returns stats.json's content (None with wait=False: the job was
    submitted, and writes stats.json itself when it ends). shuffle_retries: how many times a
    local run stopped by a shuffle that lost elements (`ShuffleLossError`: nothing was written
    from it) is run again at once; its staged shards are whole, so they are reused."""
    cfg = (cfg or RunConfig()).validate()
    if shuffle_retries < 0:
        raise ConfigError(f"--shuffle-retries must be 0 or more, not {shuffle_retries}")
    started = time.time()
    check_output_folder(out_dir)
    fmt, tasks, ignored = sources.plan(inputs, cfg, exclude=[out_dir])
    if fmt in FORMATS:  # key-aligned inputs (ROLE=PATH) keep the media role's format
        cfg.input.format = fmt
    beyond = cfg.input.required() - {cfg.input.media_modality, "text"}
    if beyond:  # e.g. --require audio on a video run: the role would be silently ignored
        raise ConfigError(f"--require {','.join(sorted(beyond))}: this run's samples have {cfg.input.media_modality} and text only "
                          f"(input.require: what a sample must have, of {cfg.input.media_modality} and text)")
    _refuse_image_settings(cfg)
    if cfg.clip.model and cfg.input.media_modality == "audio":
        raise ConfigError("CLIP scores images and video frames, not audio: drop --clip-model (clip.model) for audio inputs")
    if is_local(beam_args) or not cfg.text.language_model:  # (remote workers load a model path from their own disk)
        # a missing model, or a code it cannot name (english for en) that would drop every caption: fail now, in one line
        check_languages(cfg.text.wanted_languages(), cfg.text.language_model)
    if cfg.input.media_modality == "video" and cfg.video.spool_dir and is_local(beam_args):
        _make_spool_dir(cfg.video.spool_dir)
    fileio.makedirs(fileio.join(out_dir, STAGING_DIR, "prepare"))
    fileio.makedirs(fileio.join(out_dir, SHARDS_DIR))
    if cfg.clip.model:
        from mmcurate.pipelines.clip_model import resolve_checkpoint

        if is_local(beam_args):  # remote workers load it from their own disk (the container)
            missing = [name for name, module in (("torch", "torch"), ("clip-anytorch", "clip")) if importlib.util.find_spec(module) is None]
            if missing:
                raise ConfigError(f"--clip-model (clip.model) needs {' and '.join(missing)}, not installed here: pip install 'mmcurate[clip]'")
            resolve_checkpoint(cfg.clip.model, cfg.clip.weights_dir)  # a missing checkpoint fails here, in one line
        fileio.makedirs(fileio.join(out_dir, STAGING_DIR, "score"))
        if cfg.clip.embeddings:
            fileio.makedirs(fileio.join(out_dir, EMBEDDINGS_DIR))
    workers = workers or default_workers()
    resolved = {"run": {"inputs": list(inputs), "output": out_dir, "workers": workers, "version": __version__}, **cfg.to_dict()}
    fileio.write_bytes(fileio.join(out_dir, "config.yaml"), yaml.safe_dump(resolved, sort_keys=False).encode())

    attempts = 1 + (shuffle_retries if is_local(beam_args) and test_pipeline is None else 0)
    for attempt in range(1, attempts + 1):
        resumed = _clear_unfinished(out_dir, cfg)
        pipeline = test_pipeline or make_pipeline(workers, beam_args)
        monitor = _Progress(out_dir, len(tasks) if fmt in ("folder", "audio", "video") else None) if progress else None
        run_info = {"fmt": fmt, "inputs": list(inputs), "ignored": ignored, "started": started, "resumed": resumed}
        try:
            build(pipeline, tasks, cfg, out_dir, run_info, worker_count(workers, beam_args))
            result = pipeline.run()
            if not wait:
                return None
            result.wait_until_finish()
            break
        except Exception as e:
            if attempt == attempts or not is_shuffle_loss(e):
                raise
            log.warning("a shuffle lost elements, so nothing was written from it (%s); running again (attempt %d of %d), "
                        "reusing the shards staged so far", loss_summary(e), attempt + 1, attempts)
        finally:
            if monitor:
                monitor.stop()
    stats = fileio.read_json(fileio.join(out_dir, STATS))
    counters = dedup_counters(result)
    if "dedup" in stats and counters:  # only the launcher sees the job's metrics
        stats["dedup"]["counters"] = counters
        fileio.write_json(fileio.join(out_dir, STATS), stats)
    return stats


OWN_TOP_LEVEL = {STAGING_DIR, SHARDS_DIR}  # what a run makes before it writes config.yaml


def check_output_folder(out_dir: str) -> None:
    """The output folder is new, empty, or an earlier run's (its config.yaml): a run never
    writes into a folder of other files, whose shards/ it would clean."""
    if not fileio.is_remote(out_dir) and os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise ConfigError(f"output {out_dir} is a file: give a folder (-o)")
    if fileio.exists(fileio.join(out_dir, "config.yaml")) or not fileio.is_dir(out_dir):
        return
    top = sorted({p[len(out_dir.rstrip("/")) + 1 :].split("/", 1)[0] for p in fileio.list_files(out_dir)} - OWN_TOP_LEVEL)
    if top:
        shown = ", ".join(top[:5]) + (", ..." if len(top) > 5 else "")
        raise ConfigError(f"output folder {out_dir} already holds files mmcurate did not write ({shown}): give a new or empty folder")


def earlier_inputs(out_dir: str) -> Optional[list]:
    """The inputs of the run whose results the output folder holds (None: none, or unknown)."""
    config = fileio.join(out_dir, "config.yaml")
    try:
        inputs = (yaml.safe_load(fileio.read_bytes(config)) or {}).get("run", {}).get("inputs") if fileio.exists(config) else None
    except (yaml.YAMLError, AttributeError, OSError):
        return None
    return list(inputs) if isinstance(inputs, list) else None


def _clear_unfinished(out_dir: str, cfg: RunConfig) -> int:
    """Before an attempt: a killed or stopped run's half-written files, its stats (until this
    run finishes, none are current) and its clusters go. Returns how many staging shards will
    be reused."""
    fileio.remove_temp_files(out_dir)
    if fileio.exists(fileio.join(out_dir, STATS)):
        fileio.delete_file(fileio.join(out_dir, STATS))
    for path in fileio.list_files(fileio.join(out_dir, CLUSTERS_DIR)):
        fileio.delete_file(path)
    return resumable_shards(out_dir, cfg)


IMAGE_ONLY_SETTINGS_HINT = {"audio": "see the audio section of `mmcurate config`",
                            "video": "video frames: video.max_height and video.crf, see `mmcurate config`"}


def _refuse_image_settings(cfg: RunConfig) -> None:
    """image.* settings (--image-size, --resize-mode...) apply to pictures only; on an audio or
    video run they would be silently ignored. image.threads bounds every modality's CPU work."""
    modality = cfg.input.media_modality
    if modality == "image":
        return
    default = ImageConfig()
    changed = [f"image.{f.name}" for f in dataclasses.fields(ImageConfig)
               if f.name != "threads" and getattr(cfg.image, f.name) != getattr(default, f.name)]
    if changed:
        raise ConfigError(f"{', '.join(changed)}: image settings apply to pictures; this run's samples are {modality} "
                          f"({IMAGE_ONLY_SETTINGS_HINT[modality]})")


def _make_spool_dir(path: str) -> None:
    """Where remote videos are streamed: created now, so a bad path fails in one line here
    rather than as one error per video."""
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"video.spool_dir {path!r}: cannot create it ({e.strerror})") from None
    if not os.access(path, os.W_OK):
        raise ConfigError(f"video.spool_dir {path!r}: not writable")


def resumable_shards(out_dir: str, cfg: RunConfig) -> int:
    """Staging shards a previous run of the same settings finished, which prepare will reuse
    (with --retry-failed, not those with failed rows)."""
    fingerprint = staging_fingerprint(cfg)
    staging = fileio.join(out_dir, STAGING_DIR, "prepare")
    done = [p for p in fileio.list_files(staging) if p.endswith(".done") and fileio.read_bytes(p) == fingerprint]
    if cfg.output.retry_failed:
        done = [p for p in done if FAILED not in fileio.read_parquet(p[: -len("done")] + "parquet").column("status").to_pylist()]
    return len(done)


def dedup_counters(result) -> dict:
    """The dedup stage's Beam metrics (edges found, oversized buckets, largest bucket,
    propagation residual), where the runner reports them; {} where it does not."""
    try:
        metrics = result.metrics().query()
    except Exception:
        return {}
    out = {}
    for c in metrics.get("counters", []):
        if c.key.metric.namespace == "mmcurate" and c.key.metric.name.startswith("dedup."):
            name = c.key.metric.name[len("dedup."):]
            out[name] = out.get(name, 0) + int(c.committed or c.attempted or 0)
    for d in metrics.get("distributions", []):
        if d.key.metric.namespace == "mmcurate" and d.key.metric.name == "dedup.bucket_size":
            value = d.committed or d.attempted
            if value is not None and value.count:
                out["largest_bucket"] = max(out.get("largest_bucket", 0), int(value.max))
    return dict(sorted(out.items()))


def finish(out_dir: str, shard_stats: list[dict], fmt: str = "", inputs: list[str] = (), ignored: int = 0,
           started: float = 0.0, keep_staging: bool = False, resumed: int = 0) -> None:
    """Run-level stats.json and index.wids.json from every shard's stats; then the staging
    folder goes (unless kept). A broken accounting identity fails the run, stats written."""
    shard_stats = sorted(shard_stats, key=lambda s: s["shard"])
    _remove_stale_shards(out_dir, {s["shard"] for s in shard_stats})
    stats = merge(shard_stats)
    stats.update(
        format=fmt,
        input_specs=list(inputs),
        ignored_files=ignored,
        shards=[{"name": s["tar"], "samples": s["samples"], "bytes": s["bytes"], "inputs": s["inputs"],
                 "dropped": sum(s["dropped"].values()), "failed": sum(s["failed"].values())} for s in shard_stats],
        samples=stats["kept"],
        bytes=sum(s["bytes"] for s in shard_stats),
        wall_time_s=round(time.time() - started, 3),
        resumed_staging_shards=resumed,
        version=__version__,
    )
    dedup_stats = fileio.join(out_dir, CLUSTERS_DIR, DEDUP_STATS)
    if fileio.exists(dedup_stats):
        stats["dedup"] = fileio.read_json(dedup_stats)
        stats["dedup"]["counters"] = {}
    errors = identity_errors(stats) + [e for s in shard_stats for e in identity_errors(s, s["shard"])]
    stats["identity_ok"] = not errors
    fileio.write_json(fileio.join(out_dir, STATS), stats)
    wids = {
        "__kind__": "wids-shard-index-v1",
        "wids_version": 1,
        "name": "mmcurate",
        "shardlist": [_index_entry(s) for s in shard_stats if s["samples"] > 0],
    }
    fileio.write_json(fileio.join(out_dir, WIDS_INDEX), wids)
    if errors:
        raise AccountingError("accounting identity broken: " + "; ".join(errors[:5]))
    if not keep_staging:
        fileio.delete_tree(fileio.join(out_dir, STAGING_DIR))


def _index_entry(shard: dict) -> dict:
    """A shard in index.wids.json: wids' url and nsamples, plus where each split's samples lie
    in the tar ({"offset", "bytes", "nsamples"}: mmcurate.loader reads only a split's range)."""
    entry = {"url": shard["tar"], "nsamples": shard["samples"]}
    if shard.get("split_ranges"):
        entry["splits"] = shard["split_ranges"]
    return entry


SHARD_FILE = re.compile(r"\d{5,}\.(tar|parquet|stats\.json)")


def _remove_stale_shards(out_dir: str, current: set[str]) -> None:
    """A rerun that makes fewer shards must not leave the old run's extra shards behind (only
    shard files are touched: NNNNN.tar, .parquet, .stats.json)."""
    for path in fileio.list_files(fileio.join(out_dir, SHARDS_DIR)):
        name = path.rsplit("/", 1)[-1]
        if SHARD_FILE.fullmatch(name) and name.split(".", 1)[0] not in current:
            fileio.delete_file(path)


class _Progress:
    """Counts finished staging and final shards on disk (works for any runner writing there)."""

    def __init__(self, out_dir: str, total: Optional[int]):
        from mmcurate.pipelines.progress import bar

        self.out_dir = out_dir
        self.bars = {
            "prepare": bar(total=total, desc="prepare shards", unit="shard", leave=True),
            "finalize": bar(total=total, desc="final shards  ", unit="shard", leave=True),
        }
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _count(self):
        staging = fileio.join(self.out_dir, STAGING_DIR, "prepare")
        prepared = sum(1 for p in fileio.list_files(staging) if p.endswith(".done"))
        final = sum(1 for p in fileio.list_files(fileio.join(self.out_dir, SHARDS_DIR)) if p.endswith(".stats.json"))
        return {"prepare": prepared, "finalize": final}

    def _poll(self):
        while not self._stop.wait(1.0):
            try:
                for name, n in self._count().items():
                    bar = self.bars[name]
                    bar.update(max(0, n - bar.n))
            except Exception:
                pass

    def stop(self):
        self._stop.set()
        self._thread.join(timeout=2)
        try:
            for name, n in self._count().items():
                self.bars[name].update(max(0, n - self.bars[name].n))
        except Exception:
            pass
        for bar in self.bars.values():
            bar.close()
