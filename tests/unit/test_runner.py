"""Which runner a run gets, and how many workers dedup's shuffles keep busy."""

import pytest

from mmcurate.pipelines.runner import is_local, worker_count


@pytest.mark.parametrize(
    "beam_args, want",
    [
        ((), 3),  # local: the worker processes
        (("--runner", "DirectRunner"), 3),
        (("--runner", "DataflowRunner"), 1),  # remote, no worker count given
        (("--runner", "DataflowRunner", "--num_workers", "8"), 8),
        (("--runner", "DataflowRunner", "--num_workers", "2", "--max_num_workers", "40"), 40),
    ],
)
def test_worker_count(beam_args, want):
    assert worker_count(3, beam_args) == want


def test_is_local():
    assert is_local(()) and is_local(["--runner", "direct"])
    assert not is_local(["--runner", "DataflowRunner"])
