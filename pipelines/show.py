"""`mmcurate stats OUT`: the run's numbers as readable tables (or JSON)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from mmcurate.filters import histogram
from mmcurate.schemas.reasons import REASONS, STAGES

MAX_SHARD_ROWS = 20
MAX_CLUSTER_ROWS = 10
_TOP_LANGUAGES = 10  # the rest of the languages share one line
MEASURES = {  # distribution name -> label
    "caption_chars": "caption chars", "caption_words": "caption words", "original_width": "source width",
    "original_height": "source height", "image_bytes": "image KiB", "clip_score": "CLIP score",
    "clip_score_scored": "CLIP score (all scored)", "duration_s": "duration s",
}


def render(stats: dict, console: Console | None = None) -> None:
    console = console or Console()
    inputs = stats["inputs"] or 1
    summary = Table(title="mmcurate run", show_header=False)
    summary.add_row("inputs", f"{stats['inputs']:,}")
    summary.add_row("kept", f"{stats['kept']:,} ({100 * stats['kept'] / inputs:.1f}%)")
    summary.add_row("dropped", f"{sum(stats['dropped'].values()):,}")
    summary.add_row("failed", f"{sum(stats['failed'].values()):,}")
    summary.add_row("shards", f"{len(stats.get('shards', []))} ({stats.get('bytes', 0) / 1e6:.1f} MB)")
    summary.add_row("format", str(stats.get("format", "")))
    if stats.get("ignored_files"):  # files in the input folders that are no input of this format (not rows)
        summary.add_row("ignored files", f"{stats['ignored_files']:,} in the input folders (not samples, sidecars or transcripts, or not used: a second subtitle file, a subtitled file's .txt)")
    if stats.get("skipped_cues"):  # malformed subtitle cues left out; the clips' json names them
        found = stats["skipped_cues"]
        summary.add_row("skipped cues", f"{found['cues']:,} malformed subtitle cues in {found['files']:,} files (subtitle_errors in the clips' json)")
    if stats.get("cues_outside"):  # cues past the end of their file: a truncated download?
        found = stats["cues_outside"]
        summary.add_row("cues outside", f"{found['cues']:,} subtitle cues past the end of {found['files']:,} files (cut short?)")
    summary.add_row("wall time", f"{stats.get('wall_time_s', 0):.1f} s")
    if stats.get("resumed_staging_shards"):
        summary.add_row("resumed", f"{stats['resumed_staging_shards']:,} staging shards from an earlier run")
    summary.add_row("accounting", "ok" if stats.get("identity_ok", True) else "BROKEN")
    console.print(summary)

    stages = Table(title="per stage")
    for col in ("stage", "inputs", "kept", "dropped", "failed"):
        stages.add_column(col, justify="right" if col != "stage" else "left")
    for name in STAGES:
        s = stats.get("stages", {}).get(name)
        if s is None:
            continue
        stages.add_row(name, f"{s['inputs']:,}", f"{s['kept']:,}", f"{sum(s['dropped'].values()):,}", f"{sum(s['failed'].values()):,}")
    console.print(stages)

    reasons = Table(title="drops and failures by reason")
    for col in ("status", "reason", "count", "meaning"):
        reasons.add_column(col, justify="right" if col == "count" else "left")
    for status in ("dropped", "failed"):
        for reason, n in sorted(stats[status].items(), key=lambda kv: -kv[1]):
            reasons.add_row(status, reason, f"{n:,}", REASONS.get(reason, ("", "", ""))[2])
    if reasons.row_count:
        console.print(reasons)

    splits = stats.get("splits")
    if splits:
        table = Table(title="kept samples per split (output.splits)")
        for col in ("split", "samples", "share"):
            table.add_column(col, justify="left" if col == "split" else "right")
        for name, n in splits.items():
            table.add_row(name or "(none)", f"{n:,}", f"{100 * n / max(1, stats['kept']):.1f}%")
        console.print(table)

    languages = stats.get("languages")
    if languages:
        table = Table(title="kept samples per caption language")
        for col in ("language", "samples", "share"):
            table.add_column(col, justify="left" if col == "language" else "right")
        ranked = sorted(languages.items(), key=lambda kv: (-kv[1], kv[0]))
        shown, rest = ranked[:_TOP_LANGUAGES], ranked[_TOP_LANGUAGES:]
        if rest:
            shown.append((f"{len(rest)} others", sum(n for _, n in rest)))
        for name, n in shown:
            table.add_row(name, f"{n:,}", f"{100 * n / max(1, stats['kept']):.1f}%")
        console.print(table)

    dists = stats.get("distributions")
    if dists:
        table = Table(title="distributions of kept samples (from fixed bins; quantiles approximate)")
        for col in ("measure", "count", "min", "p5", "median", "p95", "max", "mean"):
            table.add_column(col, justify="left" if col == "measure" else "right", no_wrap=col != "measure")
        for name, h in dists.items():
            cells = [h["min"], *(histogram.quantile(h, q) for q in (0.05, 0.5, 0.95)), h["max"], h.get("mean")]
            table.add_row(MEASURES.get(name, name), f"{h['count']:,}", *(_number(v, h["unit"]) for v in cells))
        console.print(table)

    shards = stats.get("shards", [])
    table = Table(title=f"shards ({len(shards)})")
    for col in ("shard", "inputs", "samples", "dropped", "failed", "MB"):
        table.add_column(col, justify="right" if col != "shard" else "left")
    for s in shards[:MAX_SHARD_ROWS]:
        counts = [f"{s[c]:,}" if c in s else "-" for c in ("inputs", "samples", "dropped", "failed")]
        table.add_row(s["name"], *counts, f"{s['bytes'] / 1e6:.2f}")
    if len(shards) > MAX_SHARD_ROWS:
        table.add_row(f"… {len(shards) - MAX_SHARD_ROWS} more", "", "", "", "", "")
    console.print(table)

    dedup = stats.get("dedup")
    if dedup and dedup.get("largest"):
        clusters = Table(title=f"largest near-duplicate clusters ({dedup['clusters']:,} clusters, {dedup['clustered_samples']:,} samples; all in dedup/clusters.parquet)")
        for col in ("cluster", "size", "survivor"):
            clusters.add_column(col, justify="right" if col == "size" else "left")
        for c in dedup["largest"][:MAX_CLUSTER_ROWS]:
            clusters.add_row(str(c["cluster"]), f"{c['size']:,}", c["survivor"])
        console.print(clusters)
    if dedup and dedup.get("cluster_sizes"):
        sizes = Table(title="near-duplicate cluster sizes")
        for col in ("size", "clusters"):
            sizes.add_column(col, justify="right")
        for size, n in sorted(dedup["cluster_sizes"].items(), key=lambda kv: int(kv[0])):
            sizes.add_row(size, f"{n:,}")
        console.print(sizes)


def _number(v, unit: str) -> str:
    if v is None:
        return "-"
    if unit == "bytes":
        return f"{v / 1024:.1f}"
    if unit in ("characters", "words", "pixels"):
        return f"{v:,.0f}"
    return f"{v:.3f}" if unit == "cosine" else f"{v:.1f}"
