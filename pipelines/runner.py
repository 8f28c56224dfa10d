"""Pipeline construction: the local FnApiRunner (never Prism) unless a runner is named."""

from __future__ import annotations

import os

import apache_beam as beam
from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions, StandardOptions, WorkerOptions


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


def is_local(beam_args: list[str] | tuple = ()) -> bool:
    """True when the pipeline runs on this machine (no --runner, or the DirectRunner)."""
    runner = PipelineOptions(list(beam_args)).view_as(StandardOptions).runner
    return runner in (None, "DirectRunner", "direct")


def worker_count(workers: int, beam_args: list[str] | tuple = ()) -> int:
    """How many workers the shuffles should keep busy: the local worker processes, or a remote
    runner's `--max_num_workers` / `--num_workers` (1 when neither is given)."""
    if is_local(beam_args):
        return workers
    options = PipelineOptions(list(beam_args)).view_as(WorkerOptions)
    return max(options.num_workers or 1, options.max_num_workers or 1)


def unknown_beam_args(beam_args: list[str] | tuple) -> list[str]:
    """The flags after `--` that no Beam options class knows, each with the nearest known one
    ("--max_num_worker (--max_num_workers?)"): Beam drops them without a word, so a misspelt
    flag would run with the default."""
    import difflib

    from apache_beam.options.pipeline_options import _BeamArgumentParser

    parser = _BeamArgumentParser(allow_abbrev=False)  # as PipelineOptions.get_all_options parses them
    for cls in {str(c): c for c in PipelineOptions.__subclasses__()}.values():
        cls._add_argparse_args(parser)  # pylint: disable=protected-access
    def refuse(message):  # a bad value: Beam itself says so when the pipeline is built
        raise ValueError(message)

    parser.error = refuse
    try:
        _, unknown = parser.parse_known_args(list(beam_args))
    except ValueError:
        return []
    known = [o for o in parser._option_string_actions if o.startswith("--")]  # pylint: disable=protected-access
    out = []
    for flag in (a.split("=", 1)[0] for a in unknown if a.startswith("-")):
        near = difflib.get_close_matches(flag, known, n=1)
        out.append(f"{flag} ({near[0]}?)" if near else flag)
    return out


def make_pipeline(workers: int | None = None, beam_args: list[str] | tuple = ()) -> beam.Pipeline:
    """`beam_args` are Beam's own flags (`--runner DataflowRunner --project ...`). Without a
    runner we run locally on the FnApiRunner: in memory for one worker, else one process per
    worker (Beam 2.7x's DirectRunner would first try to download the Prism binary)."""
    options = PipelineOptions(list(beam_args))
    if not is_local(beam_args):
        return beam.Pipeline(options=options)
    from apache_beam.runners.portability.fn_api_runner import FnApiRunner

    workers = workers or default_workers()
    direct = options.view_as(DirectOptions)
    direct.direct_num_workers = workers
    direct.direct_running_mode = "multi_processing" if workers > 1 else "in_memory"
    return beam.Pipeline(runner=FnApiRunner(provision_info=_provision_info(options)), options=options)


def _provision_info(options: PipelineOptions):
    """The FnApiRunner hands its worker processes no pipeline options of its own accord, so
    their filesystems would lack `--s3_endpoint_url`, credentials or `--project`; pass them
    the way a portable runner does."""
    from apache_beam.portability.api import beam_provision_api_pb2
    from apache_beam.runners.portability.fn_api_runner.fn_runner import ExtendedProvisionInfo
    from apache_beam.runners.portability.portable_runner import JobServiceHandle

    encoded = JobServiceHandle.encode_pipeline_options(options.get_all_options(drop_default=True))
    return ExtendedProvisionInfo(beam_provision_api_pb2.ProvisionInfo(retrieval_token="unused-retrieval-token", pipeline_options=encoded))
