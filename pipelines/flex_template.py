"""Dataflow flex-template entry point: the template's parameters become an `mmcurate run`
command that submits the job and returns (the job writes OUT/stats.json when it ends).

Parameters (runbooks/dataflow/flex-template.json): inputs (comma-separated input specs),
output, and optionally format, config (a YAML file, gs:// fine), sets (semicolon-separated
section.field=value), clip_model. Every other argument the launcher passes (--runner,
--project, --region, --temp_location, --sdk_container_image...) goes to Beam.
"""

from __future__ import annotations

import argparse
import sys
import tempfile

PARAMETERS = ("inputs", "output", "format", "config", "sets", "clip_model")


def command(argv: list[str]) -> list[str]:
    """The `mmcurate` argv for these launcher arguments."""
    p = argparse.ArgumentParser(prog="mmcurate-flex-template")
    p.add_argument("--inputs", required=True)
    p.add_argument("--output", required=True)
    p.add_argument("--format", default="")
    p.add_argument("--config", default="")
    p.add_argument("--sets", default="")
    p.add_argument("--clip_model", default="")
    args, beam_args = p.parse_known_args(argv)
    cmd = ["run", *[s.strip() for s in args.inputs.split(",") if s.strip()], "-o", args.output, "--no-wait", "--no-progress"]
    if args.format:
        cmd += ["--format", args.format]
    if args.config:
        cmd += ["--config", _local_copy(args.config, beam_args)]
    for item in (s.strip() for s in args.sets.split(";")):
        if item:
            cmd += ["--set", item]
    if args.clip_model:
        cmd += ["--clip-model", args.clip_model]
    return cmd + ["--", *beam_args]


def _local_copy(path: str, beam_args: list[str]) -> str:
    from mmcurate.pipelines import fileio

    if not fileio.is_remote(path):
        return path
    fileio.configure(beam_args)
    with tempfile.NamedTemporaryFile("wb", suffix=".yaml", delete=False) as f:
        f.write(fileio.read_bytes(path))
    return f.name


def main(argv: list[str] | None = None) -> int:
    from mmcurate.pipelines.cli import main as cli_main

    return cli_main(command(list(sys.argv[1:] if argv is None else argv)))


if __name__ == "__main__":
    raise SystemExit(main())
