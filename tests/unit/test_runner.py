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


def test_progress_bars_write_rarely_into_a_log_file(monkeypatch):
    from mmcurate.pipelines import progress

    import io

    monkeypatch.setattr(progress.sys.stderr, "isatty", lambda: False)
    assert progress.bar(total=1, file=io.StringIO()).mininterval == progress.LOG_INTERVAL_S
    monkeypatch.setattr(progress.sys.stderr, "isatty", lambda: True)
    assert progress.bar(total=1, file=io.StringIO()).mininterval == 0.1


def test_beam_flags_beam_does_not_know_are_named_with_the_nearest_it_does():
    from mmcurate.pipelines.runner import unknown_beam_args

    args = ["--runner", "DataflowRunner", "--max_num_worker", "5", "--project", "p", "--bogus=1", "--region=x", "--experiments=a"]
    assert unknown_beam_args(args) == ["--max_num_worker (--max_num_workers?)", "--bogus"]
    assert unknown_beam_args(["--s3_endpoint_url", "http://x", "--direct_num_workers=2"]) == []
    assert unknown_beam_args(["--max_num_workers=x", "--bogus"]) == []  # a bad value: Beam's own error, later (no exit here)
