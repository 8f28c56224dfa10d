"""`mmcurate stats OUT`: the run's numbers as readable tables (or JSON)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from mmcurate.schemas.reasons import REASONS, STAGES

MAX_SHARD_ROWS = 20
MAX_CLUSTER_ROWS = 10


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
    summary.add_row("wall time", f"{stats.get('wall_time_s', 0):.1f} s")
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

    shards = stats.get("shards", [])
    table = Table(title=f"shards ({len(shards)})")
    for col in ("shard", "samples", "MB"):
        table.add_column(col, justify="right" if col != "shard" else "left")
    for s in shards[:MAX_SHARD_ROWS]:
        table.add_row(s["name"], f"{s['samples']:,}", f"{s['bytes'] / 1e6:.2f}")
    if len(shards) > MAX_SHARD_ROWS:
        table.add_row(f"… {len(shards) - MAX_SHARD_ROWS} more", "", "")
    console.print(table)

    dedup = stats.get("dedup")
    if dedup and dedup.get("largest"):
        clusters = Table(title=f"largest near-duplicate clusters ({dedup['clusters']:,} clusters, {dedup['clustered_samples']:,} samples; all in dedup/clusters.parquet)")
        for col in ("cluster", "size", "survivor"):
            clusters.add_column(col, justify="right" if col == "size" else "left")
        for c in dedup["largest"][:MAX_CLUSTER_ROWS]:
            clusters.add_row(str(c["cluster"]), f"{c['size']:,}", c["survivor"])
        console.print(clusters)
