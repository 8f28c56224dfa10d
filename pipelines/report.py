"""`mmcurate report OUT -o report.html`: one self-contained HTML page about a finished run.

It shows the summary numbers, histograms of the kept samples' measures (stats.json's
`distributions`, or the same histograms computed from the manifests for outputs made before
stats.json had them), drops by reason, samples per shard and near-duplicate cluster sizes, a
gallery of the first N kept samples in shard order, and the first K rows of every drop and
failure reason. An example has a thumbnail where its image still exists (it passed prepare and
OUT/_staging was kept); otherwise the page shows its source, caption and error.

The page fetches nothing: thumbnails are JPEG data: URIs, charts are inline SVG
(pipelines/svgplot.py), styles are inline, and a Content-Security-Policy meta tag forbids any
other load. OUT is read through pipelines/fileio.py, so it may be local, gs:// or s3://.
"""

from __future__ import annotations

import base64
import io
from collections import Counter


from mmcurate import __version__
from mmcurate.filters import histogram
from mmcurate.pipelines import fileio, samples, svgplot
from mmcurate.pipelines import stats as accounting

from mmcurate.schemas.reasons import KEPT, REASONS, STAGES

# nothing but the page itself: images only from data: URIs, styles only inline, no scripts
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
THUMB_SIDE = 128
THUMB_QUALITY = 80
# histogram titles by measure name; a measure not named here is titled by its name
TITLES = {
    "clip_score": "CLIP score (kept samples)",
    "clip_score_scored": "CLIP score (every scored sample)",
    "caption_chars": "Caption length (characters)",
    "caption_words": "Caption length (words)",
    "original_width": "Original image width (pixels)",
    "original_height": "Original image height (pixels)",
    "image_bytes": "Stored image size (bytes)",
    "duration_s": "Duration (seconds)",
}
# manifest columns the report reads (the rest, signatures above all, are left on disk)
COLUMNS = ["key", "status", "reason", "stage", "error", "dup_of", "dup_distance", "source", "caption", "original_width", "original_height",
           "image_bytes", "clip_score", "duration_s", "split", "shard", "ord"]


def write_report(out_dir: str, html_path: str, n: int = 48, per_reason: int = 4, progress: bool = False) -> dict:
    """Write the report of the output folder `out_dir` to `html_path`; return what it holds:
    {"plots", "thumbnails", "examples", "example_thumbnails", "bytes"}."""
    path = fileio.join(out_dir, "stats.json")
    if not fileio.exists(path):
        raise FileNotFoundError(f"{path} not found: is {out_dir} the output folder of a finished run?")
    stats = fileio.read_json(path)
    gallery, examples, dists = scan(out_dir, stats, n, per_reason, progress)
    shown = [r for rs in examples.values() for r in rs]
    for row, sample in zip(gallery + shown, samples.media(out_dir, gallery + shown)):
        row["thumb"] = thumbnail(row, sample)
    plots = charts(stats, dists, cluster_sizes(out_dir, stats), samples.media_modality(out_dir))
    page = render(out_dir, stats, plots, gallery, examples).encode("utf-8")
    fileio.write_bytes(html_path, page)
    return {
        "plots": len(plots),
        "thumbnails": sum(r["thumb"] is not None for r in gallery),
        "examples": len(shown),
        "example_thumbnails": sum(r["thumb"] is not None for r in shown),
        "bytes": len(page),
    }


# --- gathering ----------------------------------------------------------------------------


def scan(out_dir: str, stats: dict, n: int, per_reason: int, progress: bool):
    """(first n kept rows, {reason: first per_reason rows}, distributions), in shard order.
    Stops reading manifests once it has them all, unless the distributions must be computed."""
    counts = {**stats["dropped"], **stats["failed"]}
    examples: dict[str, list[dict]] = {r: [] for r in sorted(counts, key=lambda r: (-counts[r], r))}
    gallery: list[dict] = []
    compute = "distributions" not in stats
    parts = []
    paths = samples.manifest_paths(out_dir)
    if progress:
        from mmcurate.pipelines.progress import bar

        paths = bar(paths, desc="report: manifests", unit="shard")
    for path in paths:
        rows = read_manifest(path)
        if compute:
            parts.append(accounting.distributions(rows))
        for row in rows:
            picked = gallery if row["status"] == KEPT else examples.setdefault(row["reason"], [])
            if len(picked) < (n if row["status"] == KEPT else per_reason):
                picked.append(row)
        if not compute and len(gallery) >= n and all(len(examples[r]) >= min(per_reason, c) for r, c in counts.items()):
            break
    return gallery, examples, histogram.merge_named(parts) if compute else stats["distributions"]


def read_manifest(path: str) -> list[dict]:
    table = fileio.read_parquet(path)
    return table.select([c for c in COLUMNS if c in table.column_names]).to_pylist()


def cluster_sizes(out_dir: str, stats: dict) -> dict[str, int]:
    """{cluster size: clusters} of near-duplicate clusters: from stats.json, else from
    dedup/clusters.parquet (outputs made before stats.json had them); {} without near dedup."""
    dedup = stats.get("dedup") or {}
    if "cluster_sizes" in dedup:
        return dedup["cluster_sizes"]
    path = fileio.join(out_dir, "dedup", "clusters.parquet")
    if not fileio.exists(path):
        return {}
    table = fileio.read_parquet(path)
    sizes = Counter(size for _, size in set(zip(table["cluster"].to_pylist(), table["size"].to_pylist())))
    return {str(k): v for k, v in sorted(sizes.items())}


def thumbnail(row: dict, sample: dict | None) -> str | None:
    """A JPEG data: URI of the sample's image, at most THUMB_SIDE px a side; None without one."""
    if sample is None or sample["__key__"] != row["key"]:
        return None
    img = samples.picture(sample)  # the image, a clip's middle frame, or an audio waveform
    if img is None:  # media the report cannot read is shown as text, like missing media
        return None
    img.thumbnail((THUMB_SIDE, THUMB_SIDE))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=THUMB_QUALITY)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def trim(edges: list[float], counts: list[int]) -> tuple[list[float], list[int]]:
    """Fixed bins cut to the span that holds samples, and one empty bin each side."""
    used = [i for i, c in enumerate(counts) if c] or [0]
    lo, hi = max(0, used[0] - 1), min(len(counts), used[-1] + 2)
    return edges[lo : hi + 1], counts[lo:hi]


def charts(stats: dict, dists: dict, clusters: dict[str, int], media: str = "image") -> list[tuple[str, str, str, str]]:
    """(name, title, note, svg) of every chart, in page order; media: what the run's samples
    hold (image, audio or video)."""
    out = []
    order = [name for name in TITLES if name in dists] + sorted(set(dists) - set(TITLES))
    video = media == "video"
    for name in order:
        h = dists[name]
        if not h.get("count"):
            continue
        edges, counts = trim(h["edges"], h["counts"])
        title = TITLES.get(name, name.replace("_", " "))
        if video:
            title = title.replace("Original image", "Original video frame")  # a clip's width and height are its video's
        out.append((name, title, distribution_note(h), svgplot.histogram(edges, counts, h.get("unit", ""))))
    reasons = sorted({**stats["dropped"], **stats["failed"]}.items(), key=lambda kv: (-kv[1], kv[0]))
    if reasons:
        names = [r for r, _ in reasons]
        svg = svgplot.hbars(names, [c for _, c in reasons], classes=[REASONS.get(r, ("",))[0] for r in names])
        out.append(("reasons", "Drops and failures by reason", "failures in red", svg))
    shards = stats.get("shards", [])
    if shards:
        labels = [s["name"].rsplit("/", 1)[-1].split(".", 1)[0] for s in shards]
        out.append(("shards", "Kept samples per shard", f"{len(shards):,} shards", svgplot.bars(labels, [s["samples"] for s in shards], "shard")))
    if clusters:
        sizes = sorted(clusters, key=int)
        note = f"{sum(clusters.values()):,} clusters"
        out.append(("clusters", "Near-duplicate cluster sizes", note, svgplot.bars(sizes, [clusters[s] for s in sizes], "samples in the cluster", "clusters")))
    return out


def distribution_note(h: dict) -> str:
    note = f"n = {h['count']:,} · min {svgplot.fmt(h['min'])} · mean {svgplot.fmt(h['mean'])} · max {svgplot.fmt(h['max'])}"
    outside = [f"{h[k]:,} {k} the bins" for k in ("below", "above") if h.get(k)]
    return note + "".join(f" · {o}" for o in outside)


# --- the page ------------------------------------------------------------------------------

esc = svgplot.esc

STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;background:#fff}
h1{margin:0 0 4px}h2{margin:28px 0 8px;border-bottom:1px solid #ddd}h3{margin:18px 0 4px;font-size:15px}
nav a{margin-right:12px}.path,.meaning,.note,.muted{color:#666}
dl.numbers{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:8px;margin:0}
dl.numbers div{border:1px solid #ddd;border-radius:6px;padding:6px 10px}dt{color:#666;font-size:12px}dd{margin:0;font-size:20px}
table{border-collapse:collapse;margin-top:12px}td,th{border:1px solid #ddd;padding:2px 8px;text-align:right}th:first-child,td:first-child{text-align:left}
.plots{display:flex;flex-wrap:wrap;gap:16px}figure{margin:0}
figure.plot{border:1px solid #ddd;border-radius:6px;padding:8px}figure.plot figcaption{margin-bottom:4px}
.note{font-size:12px;display:block}
svg .bar{fill:#4c78a8}svg .bar.failed{fill:#e45756}svg .grid{stroke:#eee}svg .axis{stroke:#444}
svg text{fill:#444}svg .count{fill:#222;font-size:10px}
.grid-samples{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:10px}
figure.sample,figure.example{border:1px solid #ddd;border-radius:6px;padding:6px;font-size:12px;overflow-wrap:anywhere}
figure img{display:block;margin:0 auto 4px;max-width:128px;max-height:128px}
.noimage{height:128px;overflow:hidden;background:#f4f4f4;border-radius:4px;padding:4px;margin-bottom:4px;color:#555}
.key{font-family:monospace}.error{color:#b00}
"""


def render(out_dir: str, stats: dict, plots: list, gallery: list[dict], examples: dict[str, list[dict]]) -> str:
    body = summary_section(stats) + plots_section(plots) + gallery_section(stats, gallery) + drops_section(stats, examples)
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>mmcurate report: {esc(out_dir)}</title>'
        f"<style>{STYLE}</style></head><body>"
        f'<header><h1>mmcurate report</h1><div class="path">{esc(out_dir)}</div>'
        '<nav><a href="#summary">summary</a><a href="#plots">plots</a><a href="#gallery">kept samples</a><a href="#drops">drop examples</a></nav></header>'
        f'{body}<footer class="muted"><p>mmcurate {esc(__version__)} · output written by mmcurate {esc(stats.get("version", "?"))}</p></footer>'
        "</body></html>\n"
    )


def summary_section(stats: dict) -> str:
    inputs = stats["inputs"] or 1
    numbers = [
        ("inputs", f"{stats['inputs']:,}"),
        ("kept", f"{stats['kept']:,} ({100 * stats['kept'] / inputs:.1f}%)"),
        ("dropped", f"{sum(stats['dropped'].values()):,}"),
        ("failed", f"{sum(stats['failed'].values()):,}"),
        ("shards", f"{len(stats.get('shards', [])):,}"),
        ("bytes", f"{stats.get('bytes', 0) / 1e6:,.1f} MB"),
    ]
    numbers += [(f"split {name or '(none)'}", f"{count:,}") for name, count in (stats.get("splits") or {}).items()]
    languages = sorted((stats.get("languages") or {}).items(), key=lambda kv: (-kv[1], kv[0]))
    if languages:  # the three most common caption languages, then how many more
        shown = ", ".join(f"{code} {100 * n / max(1, stats['kept']):.1f}%" for code, n in languages[:3])
        numbers.append(("languages", shown + (f" (+{len(languages) - 3} more)" if len(languages) > 3 else "")))
    numbers += [("format", str(stats.get("format", ""))), ("wall time", f"{stats.get('wall_time_s', 0):,.1f} s")]
    cells = "".join(f"<div><dt>{esc(k)}</dt><dd>{esc(v)}</dd></div>" for k, v in numbers)
    stages = stats.get("stages", {})
    rows = "".join(stage_row(name, stages[name]) for name in STAGES if name in stages)
    table = f"<table><tr><th>stage</th><th>inputs</th><th>kept</th><th>dropped</th><th>failed</th></tr>{rows}</table>" if rows else ""
    return f'<section id="summary"><h2>Summary</h2><dl class="numbers">{cells}</dl>{table}</section>'


def stage_row(name: str, s: dict) -> str:
    cells = [s["inputs"], s["kept"], sum(s["dropped"].values()), sum(s["failed"].values())]
    return f"<tr><td>{esc(name)}</td>" + "".join(f"<td>{c:,}</td>" for c in cells) + "</tr>"


def plots_section(plots: list) -> str:
    figures = "".join(
        f'<figure class="plot" data-name="{esc(name)}"><figcaption><b>{esc(title)}</b><span class="note">{esc(note)}</span></figcaption>{svg}</figure>'
        for name, title, note, svg in plots
    )
    return f'<section id="plots"><h2>Plots</h2><div class="plots">{figures}</div></section>'


def gallery_section(stats: dict, gallery: list[dict]) -> str:
    figures = "".join(sample_figure("sample", row) for row in gallery)
    note = f"the first {len(gallery):,} of {stats['kept']:,} kept samples, in shard order"
    return f'<section id="gallery"><h2>Kept samples</h2><p class="muted">{esc(note)}</p><div class="grid-samples">{figures}</div></section>'


def drops_section(stats: dict, examples: dict[str, list[dict]]) -> str:
    counts = {**stats["dropped"], **stats["failed"]}
    parts = []
    for reason, rows in examples.items():
        status, stage, meaning = REASONS.get(reason, ("", "", ""))
        figures = "".join(sample_figure("example", row) for row in rows)
        total = counts.get(reason, len(rows))
        head = f"{status} in {stage} · {total:,} row{'s' if total != 1 else ''} · {len(rows)} shown"
        parts.append(
            f'<section class="reason" id="drop-{esc(reason.replace(".", "-"))}" data-reason="{esc(reason)}">'
            f'<h3><span class="key">{esc(reason)}</span> <span class="muted">{esc(head)}</span></h3>'
            f'<p class="meaning">{esc(meaning)}</p><div class="grid-samples">{figures}</div></section>'
        )
    empty = "" if parts else '<p class="muted">nothing was dropped and nothing failed</p>'
    return f'<section id="drops"><h2>Examples of each drop reason</h2>{empty}{"".join(parts)}</section>'


def sample_figure(cls: str, row: dict) -> str:
    """A figure with the thumbnail (or, without one, the row's source) and what the manifest says."""
    if row["thumb"]:
        media = f'<img src="{row["thumb"]}" alt="{esc(row["key"])}">'
    else:
        media = f'<div class="noimage">{no_image_note(row)} · source: {esc(row.get("source") or "")}</div>'
    lines = [f'<span class="key">{esc(row["key"])}</span>', esc(row.get("caption") or "(no caption)")]
    if row.get("clip_score") is not None:
        lines.append(f"CLIP {row['clip_score']:.3f}")
    if row.get("split"):
        lines.append(f"split {esc(row['split'])}")
    if row.get("dup_of"):
        distance = f" (distance {row['dup_distance']:g})" if row.get("dup_distance") is not None else ""
        lines.append(f'duplicate of <span class="key">{esc(row["dup_of"])}</span>{esc(distance)}')
    if row.get("error"):
        lines.append(f'<span class="error">{esc(row["error"])}</span>')
    return f'<figure class="{cls}">{media}<figcaption>{"<br>".join(lines)}</figcaption></figure>'


def no_image_note(row: dict) -> str:
    if row["status"] == KEPT:
        return "image not readable in its shard"
    if row.get("ord") is None:
        return "stopped in prepare: no image was kept"
    return "image only in the staging shards (kept with --keep-staging)"
