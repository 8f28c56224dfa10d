"""The `mmcurate` command line."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile

from mmcurate import __version__

EPILOG_RUN = """\
examples:
  mmcurate run photos/ -o out                       # a folder of a.jpg + a.txt pairs
  mmcurate run urls.parquet -o out --url-col URL --caption-col TEXT
  mmcurate run captions.txt --format flickr --images Images/ -o out
  mmcurate run 'shards/{00000..00099}.tar' -o recurated --format webdataset
  mmcurate run urls.parquet -o out --languages en   # English captions only (every caption's language is recorded)
  mmcurate run urls.parquet -o gs://bucket/out -- --runner DataflowRunner --project P --region R

audio and video:
  mmcurate run speech/ --format audio -o out        # a.wav + a.txt, or a Sphinx/LibriSpeech transcripts file in the folder
  mmcurate run podcasts/ --format audio -o out      # a.m4a + a.en.vtt: cut at its cues, a sample each (30 s at most)
  mmcurate run segments.jsonl --audio-col audio --clips-col begin_time,end_time --caption-col text -o out   # a span a row
  mmcurate run clips/ --format video -o out         # a.mp4 + a.srt (cut at its cues) or a.txt / captions.jsonl
  mmcurate run clips/ --format video --require video --set video.uncued=windows -o out   # uncaptioned: 10 s windows
  mmcurate run videos.csv --video-col path --caption-col text -o out
  mmcurate run clips.parquet --video-col video --clips-col spans --caption-col captions -o out   # given spans, a caption each

several inputs joined by key (ROLE=PATH; roles image, audio, video, text):
  mmcurate run audio=wavs/ text=transcripts.tsv -o out            # a sample needs both (--require to change)
  mmcurate run video=clips/ text=captions.jsonl --require video -o out

Any config value can be set with --set section.field=value (see `mmcurate config` for all of
them and their defaults), or from a YAML file with --config. Beam pipeline options go after
`--`; without --runner the pipeline runs locally on Beam's FnApiRunner with --workers processes.
"""


OUTPUT_HELP = "the output folder of a finished run (local, gs:// or s3://; Beam options such as --s3_endpoint_url after --)"

EPILOG_INSPECT = """\
examples:
  mmcurate inspect out -o sheet.png                               # the first 25 kept samples
  mmcurate inspect out --where "clip_score < 0.3" --n 36 --seed 1 # 36 random low scorers
  mmcurate inspect out --reason duplicate.near_image              # what near-dup removal dropped
  mmcurate inspect out --where "caption_language != 'en'"         # the captions not in English
  mmcurate inspect out --split val --where "len(caption) > 200"

--where takes comparisons of the manifest columns of shards/NNNNN.parquet (key, status,
reason, caption, width, height, original_width, original_height, image_bytes, clip_score,
dup_of, dup_distance, split, ...) joined with and/or/not; len(caption) is the caption's length. Dropped samples are shown with
their picture when the run kept its staging shards (--keep-staging).
"""


RAW = argparse.RawDescriptionHelpFormatter


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mmcurate",
        description="Build clean, deduplicated, deterministic WebDataset shards from paired media.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Start with `mmcurate demo`, then `mmcurate stats demo-out`, `mmcurate report demo-out -o report.html`,\n"
               "`mmcurate inspect demo-out -o sheet.png` and `mmcurate validate demo-out`.",
    )
    p.add_argument("--debug", action="store_true", help="show full tracebacks and Beam logs")
    p.add_argument("--version", action="version", version=f"mmcurate {__version__}")
    common = argparse.ArgumentParser(add_help=False)  # --debug after the command works too
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show full tracebacks and Beam logs")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, **kwargs) -> argparse.ArgumentParser:
        return sub.add_parser(name, parents=[common], **kwargs)

    run = command("run", help="curate inputs into WebDataset shards", epilog=EPILOG_RUN, formatter_class=argparse.RawDescriptionHelpFormatter)
    run.add_argument("inputs", nargs="+", metavar="INPUT", help="files, folders, globs or {a..b} ranges; local, gs://, s3:// or http(s)://; ROLE=PATH to join several inputs by key")
    run.add_argument("-o", "--output", required=True, help="output folder (local, gs:// or s3://)")
    run.add_argument("--format", choices=["auto", "table", "folder", "coco", "flickr", "webdataset", "audio", "video", "transcripts"], help="input format (default: detected; audio and video: a folder)")
    run.add_argument("--require", metavar="MODALITIES", help="what a sample must have, e.g. audio,text or video (default: every input's role; a single input: its media and text)")
    run.add_argument("--audio-col", help="table: column with an audio path or URL (the rows are audio)")
    run.add_argument("--video-col", help="table: column with a video path or URL (the rows are video)")
    run.add_argument("--clips-col", help="table of videos or audio files: column with each file's clip spans, [[start, end], ...] in seconds or H:MM:SS.fff, or START,END: two columns giving one clip per row (Kinetics' time_start,time_end); each span is cut as given, with its own caption when the caption column holds a list of one per span")
    run.add_argument("--config", help="YAML file with config sections (input, fetch, text, image, audio, video, dedup, clip, output; see `mmcurate config`)")
    run.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE", help="override one config value; repeatable")
    run.add_argument("--workers", type=positive_int, help="local worker processes (default: all cores)")
    run.add_argument("--images", help="coco/flickr: folder holding the images")
    run.add_argument("--url-col", help="table: column with the image URL or path (default: url)")
    run.add_argument("--caption-col", help="table: column with the caption (default: caption)")
    run.add_argument("--key-col", help="table: column to derive sample keys from (default: row position)")
    run.add_argument("--resize-mode", choices=["no", "keep_ratio", "center_crop", "border"], help="img2dataset's resize modes (default: border)")
    run.add_argument("--image-size", type=int, help="target size in pixels (default: 256)")
    run.add_argument("--shard-size", type=int, help="input rows per shard (default: 10000)")
    run.add_argument("--languages", metavar="CODES", help="keep only captions in these languages, e.g. en or en,de (fastText codes; default: every language, detected and recorded as caption_language)")
    run.add_argument("--dedup", choices=["near", "exact", "none"], help="near (default): exact, then near duplicates by --duplicates (perceptual image hashes, or caption MinHash); exact: identical keys and media bytes only; none: duplicate keys only")
    run.add_argument("--duplicates", choices=["image", "caption", "both", "either"], help="near mode: what makes two samples duplicates (default: image)")
    run.add_argument("--allow-private-hosts", action="store_true", help="allow URLs on private, loopback and link-local addresses")
    run.add_argument("--clip-model", help="score pairs with this CLIP: a name (ViT-B/32) found in clip.weights_dir, a checkpoint path, or 'tiny' (the shipped demo model)")
    run.add_argument("--clip-threshold", type=float, help="drop pairs whose CLIP score is below this (default: 0.28)")
    run.add_argument("--clip-top-fraction", type=float, help="instead keep this fraction of the dataset with the best scores (DataComp-style)")
    run.add_argument("--no-clip-filter", action="store_true", help="score and record only; drop nothing by score")
    run.add_argument("--clip-embeddings", action="store_true", help="also write fp16 image/text embeddings of kept samples to OUT/embeddings/")
    run.add_argument("--splits", metavar="NAME=F,...", help="split fractions, assigned by key hash (default: train=0.98,val=0.01,test=0.01)")
    run.add_argument("--retry-failed", action="store_true", help="rerun into the same output: failed rows (downloads that timed out, 5xx...) get a new attempt; rows that worked are reused, not fetched again")
    run.add_argument("--keep-staging", action="store_true", help="keep OUT/_staging (intermediate shards) after a successful run")
    run.add_argument("--no-progress", action="store_true", help="no progress bars")
    run.add_argument("--no-wait", action="store_true", help="submit the job and return (Dataflow); it writes OUT/stats.json when it ends")
    run.add_argument("--shuffle-retries", type=int, default=1, metavar="N",
                     help="local runs: run again at once, up to N times, when a shuffle lost elements (ShuffleLossError, a fault of "
                          "Beam's local multi-process runner; nothing is written from it, and staged shards are reused) (default: 1)")

    stats = command("stats", help="show a finished run's statistics",
                    epilog="examples:\n  mmcurate stats out\n  mmcurate stats gs://bucket/out --json | jq .dropped", formatter_class=RAW)
    stats.add_argument("output", help=OUTPUT_HELP)
    stats.add_argument("--json", action="store_true", help="print stats.json as JSON")

    insp = command("inspect", help="draw a contact sheet of samples (kept, or dropped for a reason) to a PNG",
                          epilog=EPILOG_INSPECT, formatter_class=argparse.RawDescriptionHelpFormatter)
    insp.add_argument("output", help=OUTPUT_HELP)
    insp.add_argument("-o", "--sheet", default="sheet.png", help="PNG to write (default: sheet.png)")
    insp.add_argument("--n", type=positive_int, default=25, help="samples to show (default: 25)")
    insp.add_argument("--where", default="", help="condition on manifest columns, e.g. \"clip_score < 0.3 and width >= 256\"")
    insp.add_argument("--reason", default="", help="only samples dropped or failed for this reason (see `mmcurate reasons`)")
    insp.add_argument("--split", default="", help="only this split (train, val, test…)")
    insp.add_argument("--status", choices=["kept", "dropped", "failed", "all"], help="default: kept, or all with --reason")
    insp.add_argument("--seed", type=int, help="draw a random n (the same for the same seed) instead of the first n")
    insp.add_argument("--cols", type=int, default=0, help="tiles per row (default: about square)")
    insp.add_argument("--tile", type=int, default=224, help="thumbnail size in pixels (default: 224)")

    rep_ = command("report", help="write a self-contained HTML report: plots, gallery, examples of every drop reason",
                   epilog="example:\n  mmcurate report out -o report.html --n 96   # dropped samples' pictures need --keep-staging at run time",
                   formatter_class=RAW)
    rep_.add_argument("output", help=OUTPUT_HELP)
    rep_.add_argument("-o", "--html", default="report.html", help="HTML file to write (default: report.html)")
    rep_.add_argument("--n", type=int, default=48, help="gallery thumbnails of kept samples (default: 48)")
    rep_.add_argument("--per-reason", type=int, default=4, help="examples per drop reason (default: 4; thumbnails need --keep-staging at run time)")

    val = command("validate", help="re-read every shard and check it against manifests and stats; non-zero exit on any problem",
                  epilog="example:\n  mmcurate validate out && gsutil -m cp -r out gs://bucket/dataset", formatter_class=RAW)
    val.add_argument("output", help=OUTPUT_HELP)

    demo = command("demo", help="generate a sample dataset with planted defects and curate it")
    demo.add_argument("-o", "--output", default="demo-out", help="output folder (default: demo-out)")
    demo.add_argument("--samples", type=int, default=200, help="number of input samples (default: 200)")
    demo.add_argument("--workers", type=positive_int, help="local worker processes (default: all cores)")
    demo.add_argument("--keep-staging", action="store_true", help="keep OUT/_staging, so that inspect and report show the dropped samples' pictures")
    demo.add_argument("--keep-input", help="write the generated input here and keep it (default: a temporary folder)")
    demo.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE", help="override one config value; repeatable")
    demo.add_argument("--no-clip", action="store_true", help="skip CLIP scoring (by default the demo scores with the shipped tiny CLIP)")

    command("config", help="print every setting with its default and meaning, as YAML: a --config file to start from",
            epilog="example:\n  mmcurate config > my.yaml     # then edit it\n  mmcurate run photos/ -o out --config my.yaml", formatter_class=RAW)
    command("reasons", help="list every drop reason and failure with its meaning",
            epilog="example:\n  mmcurate reasons | grep duplicate\n  mmcurate inspect out --reason duplicate.near_image -o dups.png", formatter_class=RAW)
    return p


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value


CLIP_FLAGS = ("clip_threshold", "clip_top_fraction", "no_clip_filter", "clip_embeddings")


def _run_config(args):
    from mmcurate.schemas.config import RunConfig

    sets = list(getattr(args, "set", []))
    for flag, dotted in (
        ("format", "input.format"), ("images", "input.images"), ("url_col", "input.url_col"),
        ("caption_col", "input.caption_col"), ("key_col", "input.key_col"), ("resize_mode", "image.resize_mode"),
        ("image_size", "image.image_size"), ("shard_size", "output.shard_size"), ("clip_model", "clip.model"),
        ("clip_threshold", "clip.threshold"), ("clip_top_fraction", "clip.top_fraction"),
        ("dedup", "dedup.mode"), ("duplicates", "dedup.duplicates"), ("splits", "output.splits"),
        ("require", "input.require"), ("languages", "text.languages"), ("audio_col", "input.audio_col"), ("video_col", "input.video_col"),
        ("clips_col", "input.clips_col"),
    ):
        value = getattr(args, flag, None)
        if value is not None:
            sets.append(f"{dotted}={value}")
    if getattr(args, "allow_private_hosts", False):
        sets.append("fetch.allow_private_hosts=true")
    if getattr(args, "no_clip_filter", False):
        sets.append("clip.filter=false")
    if getattr(args, "clip_embeddings", False):
        sets.append("clip.embeddings=true")
    if getattr(args, "keep_staging", False):
        sets.append("output.keep_staging=true")
    if getattr(args, "retry_failed", False):
        sets.append("output.retry_failed=true")
    return RunConfig.load(getattr(args, "config", None), sets)


def cmd_run(args, beam_args) -> int:
    cfg = _run_config(args)  # before the heavy imports: a config error answers at once
    given = [f"--{flag.replace('_', '-')}" for flag in CLIP_FLAGS if getattr(args, flag, None) not in (None, False)]
    if given and not cfg.clip.model:
        raise UserError(f"{', '.join(given)} need{'s' if len(given) == 1 else ''} --clip-model: without a model nothing is scored")
    from mmcurate.pipelines.run import earlier_inputs, run
    from mmcurate.pipelines.show import render

    from mmcurate.pipelines.runner import unknown_beam_args

    unknown = unknown_beam_args(beam_args)
    if unknown:
        print(f"note: Beam knows no option {', '.join(unknown)}: ignored", file=sys.stderr)
    earlier = earlier_inputs(args.output)
    if earlier is not None and earlier != list(args.inputs):
        print(f"note: {args.output} holds the results of a run of other inputs ({', '.join(map(str, earlier))}); this run replaces them",
              file=sys.stderr)
    stats = run(args.inputs, args.output, cfg, workers=args.workers, beam_args=beam_args,
                progress=not args.no_progress and not args.no_wait, wait=not args.no_wait, shuffle_retries=args.shuffle_retries)
    if stats is None:
        print(f"submitted; when the job ends, `mmcurate stats {args.output}` shows its numbers")
        return 0
    render(stats)
    return 0


def cmd_stats(args) -> int:
    from mmcurate.pipelines import fileio
    from mmcurate.pipelines.show import render

    path = fileio.join(args.output, "stats.json")
    if not fileio.exists(path):
        raise UserError(f"{path} not found: is {args.output} the output folder of a finished run?")
    stats = fileio.read_json(path)
    if args.json:
        print(json.dumps(stats, indent=1, sort_keys=True))
    else:
        render(stats)
    return 0


def cmd_inspect(args) -> int:
    from mmcurate.pipelines.inspect import SheetLayout, inspect
    from mmcurate.pipelines.where import WhereError

    from mmcurate.schemas.reasons import REASONS

    if args.reason and args.reason not in REASONS:
        raise UserError(f"unknown reason {args.reason!r}: `mmcurate reasons` lists them")
    try:
        shown = inspect(args.output, args.sheet, n=args.n, where=args.where, reason=args.reason, split=args.split,
                        status=args.status or "", seed=args.seed, layout=SheetLayout(tile=args.tile, cols=args.cols))
    except (WhereError, LookupError, FileNotFoundError) as e:
        hint = " (only kept samples are searched unless --status or --reason says otherwise: try --status all)" \
            if isinstance(e, LookupError) and not args.status and not args.reason else ""
        raise UserError(str(e).strip("'\"") + hint) from None
    cols, rows = shown["grid"]
    print(f"wrote {args.sheet}: {shown['tiles']} of {shown['matched']:,} matching samples, {cols}x{rows} tiles, "
          f"{shown['size'][0]}x{shown['size'][1]} px ({shown['tiles'] - shown['with_media']} without media)")
    return 0


def cmd_report(args) -> int:
    from mmcurate.pipelines.report import write_report

    summary = write_report(args.output, args.html, n=args.n, per_reason=args.per_reason, progress=sys.stderr.isatty())
    print(f"wrote {args.html}: " + ", ".join(f"{v} {k}" for k, v in summary.items()))
    return 0


def cmd_validate(args) -> int:
    from mmcurate.pipelines.validate import validate

    problems = validate(args.output, progress=sys.stderr.isatty())
    for p in problems:
        print(f"INVALID: {p}")
    if problems:
        print(f"{args.output}: {len(problems)} problem(s)")
        return 1
    print(f"{args.output}: valid")
    return 0


def cmd_demo(args, beam_args) -> int:
    # the demo's pictures are composed inside their central square, as the tiny CLIP saw them
    args.set = ["image.resize_mode=center_crop"] + list(args.set)
    cfg = _run_config(args)
    if not cfg.clip.model and not args.no_clip:
        import importlib.util

        if importlib.util.find_spec("clip") and importlib.util.find_spec("torch"):
            cfg.clip.model = "tiny"
        else:
            print("note: clip-anytorch is not installed (pip install 'mmcurate[clip]'), so the demo skips CLIP scoring")
    from mmcurate.pipelines.demo import generate
    from mmcurate.pipelines.run import run
    from mmcurate.pipelines.show import render

    with tempfile.TemporaryDirectory(prefix="mmcurate-demo-") as tmp:
        folder = args.keep_input or os.path.join(tmp, "input")
        expected = generate(folder, args.samples, progress=True)
        print(f"generated {expected['inputs']} samples in {folder} ({expected['duplicates']} exact and {expected['near_duplicates']} near duplicates, {len(expected['defects'])} planted defects, {expected['mismatched_captions']} mismatched captions)")
        stats = run([folder], args.output, cfg, workers=args.workers, beam_args=beam_args, progress=True)
    render(stats)
    print(f"\nshards are in {args.output}/shards; next: `mmcurate validate {args.output}`")
    return 0


def cmd_config(_args) -> int:
    from mmcurate.schemas.config import RunConfig

    print(RunConfig().to_yaml(comments=True), end="")
    return 0


def cmd_reasons(_args) -> int:
    from mmcurate.schemas.reasons import REASONS

    width = max(map(len, REASONS))
    for name, (status, stage, meaning) in REASONS.items():
        print(f"{name:<{width}}  {status:<7}  {stage:<8}  {meaning}")
    return 0


class UserError(Exception):
    """A problem the user can fix; printed as one line."""


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    beam_args: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, beam_args = argv[:cut], argv[cut + 1 :]
    parser = _parser()
    args = parser.parse_args(argv)
    args.debug = getattr(args, "debug", False)
    if not args.command:
        parser.print_help()
        return 2
    logging.basicConfig(level=logging.INFO if args.debug else logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    if not args.debug:
        logging.getLogger("apache_beam").setLevel(logging.ERROR)
        logging.getLogger("mmcurate").setLevel(logging.WARNING)  # (a shuffle retried, a batch scored in halves)
    handlers = {"run": lambda: cmd_run(args, beam_args), "demo": lambda: cmd_demo(args, beam_args), "stats": lambda: cmd_stats(args),
                "validate": lambda: cmd_validate(args),
                "inspect": lambda: cmd_inspect(args), "report": lambda: cmd_report(args), "config": lambda: cmd_config(args), "reasons": lambda: cmd_reasons(args)}
    try:
        if beam_args:  # also for stats/report/inspect/validate of a gs:// or s3:// output
            from mmcurate.pipelines import fileio

            fileio.configure(beam_args)
        code = handlers[args.command]()
        sys.stdout.flush()  # (here, so that a reader gone away is caught below, not at exit)
        return code
    except KeyboardInterrupt:
        print("mmcurate: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `mmcurate stats out | head`: the reader has all it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as e:
        if args.debug:
            raise
        print(f"mmcurate: error: {_one_line(e)}", file=sys.stderr)
        return 1


def _one_line(e: BaseException) -> str:
    """The most useful single line of an error: for Beam's wrapped worker errors, the root cause."""
    text = str(e).strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) > 1:
        causes = [line for line in lines if not line.startswith(("File ", "Traceback", "During handling", "^", "~")) and ": " in line]
        text = causes[-1] if causes else lines[-1]
    return f"{type(e).__name__}: {text}" if not isinstance(e, (UserError,)) and type(e).__name__ not in text else text


if __name__ == "__main__":
    raise SystemExit(main())
