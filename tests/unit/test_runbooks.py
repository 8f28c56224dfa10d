"""The runbooks' commands and the Dataflow files, validated offline: every `mmcurate` command
parses with the CLI, every Beam flag after `--` exists in the pinned Beam, the Dockerfile
parses and names the pinned Beam and torch, and the flex template's parameters are the
launcher's."""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import shlex
import sys

import apache_beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from mmcurate.pipelines import cli, flex_template
from tests.util import REPO

RUNBOOKS = sorted(glob.glob(os.path.join(REPO, "runbooks", "*.md")))
DATAFLOW = os.path.join(REPO, "runbooks", "dataflow")


def shell_commands(path: str) -> list[str]:
    """Lines of the ```bash blocks (continuations joined)."""
    text = open(path, encoding="utf-8").read()
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        lines += [line.strip() for line in block.replace("\\\n", " ").splitlines() if line.strip() and not line.strip().startswith("#")]
    return lines


def mmcurate_commands() -> list[tuple[str, list[str]]]:
    found = []
    for path in RUNBOOKS:
        for line in shell_commands(path):
            words = shlex.split(line.split(" #", 1)[0])
            if words and words[0] == "mmcurate":
                found.append((f"{os.path.basename(path)}: {line[:80]}", words[1:]))
    return found


def beam_flags() -> set[str]:
    def subclasses(c):
        for s in c.__subclasses__():
            yield s
            yield from subclasses(s)
    flags = set()
    for options in set(subclasses(PipelineOptions)):
        parser = argparse.ArgumentParser(add_help=False)
        options._add_argparse_args(parser)
        flags.update(s for a in parser._actions for s in a.option_strings)
    return flags


def test_the_runbooks_have_mmcurate_commands():
    names = {os.path.basename(p) for p in RUNBOOKS}
    assert {"dataflow.md", "local-run.md", "training.md", "clip-scoring.md"} <= names
    per_book = {n: sum(1 for where, _ in mmcurate_commands() if where.startswith(n)) for n in names}
    assert per_book["dataflow.md"] >= 10


@pytest.mark.parametrize("where, argv", mmcurate_commands(), ids=lambda x: x if isinstance(x, str) else "")
def test_runbook_command_parses_and_its_beam_flags_exist(where, argv):
    ours, theirs = (argv[: argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else (argv, [])
    try:
        cli._parser().parse_args(ours)
    except SystemExit:
        pytest.fail(f"{where}: mmcurate does not accept {ours}")
    unknown = [w.split("=", 1)[0] for w in theirs if w.startswith("--") and w.split("=", 1)[0] not in beam_flags()]
    assert not unknown, f"{where}: not options of apache-beam {apache_beam.__version__}: {unknown}"


def test_beam_flag_check_rejects_what_is_not_a_flag():
    flags = beam_flags()
    assert {"--runner", "--sdk_container_image", "--dataflow_service_options", "--experiments", "--s3_endpoint_url"} <= flags
    assert "--worker_accelerator" not in flags  # a dataflow_service_options value, not a flag


def test_dockerfile_parses_and_pins_what_the_project_pins():
    dockerfile_parse = pytest.importorskip("dockerfile_parse")
    df = dockerfile_parse.DockerfileParser(path=os.path.join(DATAFLOW, "Dockerfile"), env_replace=True)
    known = {"ARG", "FROM", "WORKDIR", "COPY", "RUN", "ENV", "ENTRYPOINT", "COMMENT"}
    assert {i["instruction"] for i in df.structure} <= known
    python = f"python{sys.version_info.major}.{sys.version_info.minor}"
    assert f"apache/beam_{python}_sdk:{apache_beam.__version__}" in df.parent_images
    assert df.parent_images[-1].startswith(f"gcr.io/dataflow-templates-base/{python.replace('.', '')}-template-launcher-base")
    for step in (i["value"] for i in df.structure if i["instruction"] == "COPY" and not i["value"].startswith("--from")):
        for source in step.split()[:-1]:
            assert os.path.exists(os.path.join(REPO, source)), source
    run = " ".join(i["value"] for i in df.structure if i["instruction"] == "RUN")
    torch_pins = dict(re.findall(r'"(torch|torchvision)==([0-9.]+)"', run))
    pyproject = open(os.path.join(REPO, "pyproject.toml"), encoding="utf-8").read()
    for name, version in torch_pins.items():
        low, high = re.search(rf'"{name}>=([0-9.]+),<([0-9.]+)"', pyproject).groups()
        as_tuple = lambda v: tuple(int(x) for x in v.split("."))  # noqa: E731
        assert as_tuple(low) <= as_tuple(version) < as_tuple(high), (name, version)
    assert "mmcurate.pipelines.flex_template import main" in run
    assert df.envs["FLEX_TEMPLATE_PYTHON_PY_FILE"] in run
    assert json.loads(df.structure[-1]["value"]) == ["/opt/apache/beam/boot"]


def test_flex_template_parameters_are_the_launchers():
    spec = json.load(open(os.path.join(DATAFLOW, "flex-template.json"), encoding="utf-8"))
    assert [p["name"] for p in spec["parameters"]] == list(flex_template.PARAMETERS)
    argv = flex_template.command(["--inputs=gs://b/a.parquet, gs://b/c.parquet", "--output=gs://b/out", "--format=table",
                                  "--sets=dedup.mode=exact;output.shard_size=5000", "--clip_model=ViT-B/32",
                                  "--runner=DataflowRunner", "--project=p", "--sdk_container_image=img"])
    assert argv == ["run", "gs://b/a.parquet", "gs://b/c.parquet", "-o", "gs://b/out", "--no-wait", "--no-progress",
                    "--format", "table", "--set", "dedup.mode=exact", "--set", "output.shard_size=5000",
                    "--clip-model", "ViT-B/32", "--", "--runner=DataflowRunner", "--project=p", "--sdk_container_image=img"]
    cli._parser().parse_args(argv[: argv.index("--")])


def test_flex_template_run_passes_only_known_parameters():
    lines = [line for line in shell_commands(os.path.join(REPO, "runbooks", "dataflow.md")) if line.startswith("gcloud dataflow flex-template run")]
    assert len(lines) == 1
    words = shlex.split(lines[0])
    given = [kv.split("=", 1)[0] for i, w in enumerate(words) if w == "--parameters" for kv in words[i + 1].split(",")]
    beam = {f[2:] for f in beam_flags()}
    assert {"inputs", "output"} <= set(given) and set(given) <= set(flex_template.PARAMETERS) | beam, given
