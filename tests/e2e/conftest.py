from __future__ import annotations

import pytest

from tests.util import run_cli

DEMO_SPLITS = "train=0.6,val=0.2,test=0.2"  # big val/test splits, so each has samples in every shard


@pytest.fixture(scope="session")
def demo_out(tmp_path_factory) -> str:
    """One demo run for the loader, training and report tests: 160 inputs, 4 shards of ~36 kept
    samples, staging kept (the report shows dropped samples from it)."""
    pytest.importorskip("clip")
    out = tmp_path_factory.mktemp("loader") / "demo"
    assert run_cli("demo", "-o", out, "--samples", "160", "--workers", "2",
                   "--set", "output.shard_size=40", "--set", f"output.splits={DEMO_SPLITS}",
                   "--set", "output.keep_staging=true") == 0
    return str(out)
