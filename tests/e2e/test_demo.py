"""`mmcurate demo`: generated data with planted defects, scored by the shipped tiny CLIP;
every planted defect ends with its exact reason."""

import pytest

from mmcurate.pipelines.demo import DEFECTS
from tests.util import by_key, run_cli, stats


def test_demo_accounts_for_every_planted_defect(tmp_path, capsys):
    pytest.importorskip("clip")
    out = tmp_path / "demo"
    assert run_cli("demo", "-o", out, "--samples", "200", "--workers", "1") == 0
    assert "7 mismatched captions" in capsys.readouterr().out
    s = stats(out)
    rows = by_key(out)
    for name, (status, reason) in DEFECTS.items():
        assert (rows[name]["status"], rows[name]["reason"]) == (status, reason)
    mismatched = {f"photo_{i:06d}" for i in range(180, 187)}  # 187 good photos, the last 7 re-captioned
    assert {k for k, r in rows.items() if r["reason"] == "clip.below_threshold"} == mismatched
    assert s["dropped"]["duplicate.exact_image"] == 4 and all(rows[f"zcopy_{d:06d}"]["dup_of"] == f"photo_{d:06d}" for d in range(4))
    # the smaller recompressed copies lose to their originals (more pixels), at a few bits
    near = {k: r for k, r in rows.items() if r["reason"] == "duplicate.near_image"}
    assert sorted(near) == [f"znear_{d:06d}" for d in range(4)]
    assert all(r["dup_of"] == f"photo_{d + 4:06d}" and 0 <= r["dup_distance"] <= 4 for d, (k, r) in enumerate(sorted(near.items())))
    assert s["kept"] == 200 - 5 - 4 - 4 - 7 == 180
    assert min(r["clip_score"] for r in rows.values() if r["status"] == "kept") > 0.3  # threshold 0.28
    assert run_cli("validate", out) == 0
