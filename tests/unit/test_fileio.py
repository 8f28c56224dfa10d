"""fileio: manifests read back whole, and a process that read them exits cleanly."""

import subprocess
import sys

from mmcurate.pipelines import fileio
from mmcurate.schemas.record import empty_row, rows_to_table


def test_a_process_that_read_a_manifest_exits_zero(tmp_path):
    """Every CLI command reads manifests (validate, stats, report, inspect). After pyarrow's
    threaded read of an in-memory parquet, about half the processes aborted at exit ("terminate
    called without an active exception", exit 134): `mmcurate validate` failed valid outputs."""
    path = str(tmp_path / "m.parquet")
    rows = [dict(empty_row(), key=f"k{i}", caption="a caption " * 5) for i in range(2000)]
    fileio.write_parquet(path, rows_to_table(rows))
    script = f"from mmcurate.pipelines import fileio; print(fileio.read_parquet({path!r}).num_rows)"
    for _ in range(8):
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
        assert (done.returncode, done.stdout, done.stderr) == (0, "2000\n", "")
