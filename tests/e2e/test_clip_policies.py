"""CLIP policies end to end: threshold and top fraction drop exactly the expected samples,
scores land in the manifest and the sample json, embeddings are written for kept samples."""

import json

import numpy as np
import pytest

pytest.importorskip("clip")

from mmcurate.filters.quantile import keep_count  # noqa: E402
from mmcurate.pipelines.demo import generate  # noqa: E402
from tests.clip_util import save_random_tiny  # noqa: E402
from tests.util import by_key, run_cli, samples, stats  # noqa: E402


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    base = tmp_path_factory.mktemp("clip")
    generate(str(base / "in"), samples=60, seed=11)
    model = save_random_tiny(base / "tiny.pt", seed=3)
    out = base / "all"
    common = ["--workers", "1", "--no-progress", "--shard-size", "25", "--clip-model", model]
    assert run_cli("run", base / "in", "-o", out, *common, "--no-clip-filter", "--clip-embeddings") == 0
    scored = {k: r["clip_score"] for k, r in by_key(out).items() if r["status"] == "kept"}
    return base, common, scored, out


def run_policy(base, common, name, *flags):
    out = base / name
    assert run_cli("run", base / "in", "-o", out, *common, *flags) == 0
    assert run_cli("validate", out) == 0
    return out


def test_scores_are_recorded_without_filtering(setup):
    _, _, scored, out = setup
    s = stats(out)
    assert s["kept"] == len(scored) == 53 and "clip.below_threshold" not in s["dropped"]
    assert all(v is not None and -1 <= v <= 1 for v in scored.values())
    for sample in samples(out):
        assert json.loads(sample["json"])["clip_score"] == pytest.approx(scored[sample["__key__"]], abs=1e-6)


def test_threshold_drops_exactly_the_pairs_below_it(setup):
    base, common, scored, _ = setup
    threshold = float(np.median(list(scored.values())))
    out = run_policy(base, common, "thr", "--clip-threshold", repr(threshold))
    rows = by_key(out)
    expected_dropped = {k for k, v in scored.items() if v < threshold}
    assert {k for k, r in rows.items() if r["reason"] == "clip.below_threshold"} == expected_dropped
    assert {s["__key__"] for s in samples(out)} == set(scored) - expected_dropped
    assert stats(out)["stages"]["score"] == {"inputs": 53, "kept": 53 - len(expected_dropped), "dropped": {"clip.below_threshold": len(expected_dropped)}, "failed": {}}


def test_top_fraction_keeps_exactly_the_best(setup):
    base, common, scored, _ = setup
    out = run_policy(base, common, "top", "--clip-top-fraction", "0.3")
    k = keep_count(0.3, len(scored))
    best = {key for _, key in sorted((-v, key) for key, v in scored.items())[:k]}
    assert k == 16 and {s["__key__"] for s in samples(out)} == best
    assert stats(out)["dropped"]["clip.below_threshold"] == len(scored) - k


def test_embeddings_of_kept_samples(setup):
    _, _, scored, out = setup
    keys, images = [], []
    for path in sorted((out / "embeddings").glob("*.npz")):
        data = np.load(path)
        keys += list(data["key"])
        images.append(data["image"])
        assert data["image"].dtype == np.float16 and data["text"].shape == data["image"].shape
    emb = np.concatenate(images).astype(np.float32)
    assert sorted(keys) == sorted(scored) and emb.shape == (53, 64)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-2)


def test_a_missing_checkpoint_is_one_plain_line(tmp_path, capsys):
    generate(str(tmp_path / "in"), samples=5)
    assert run_cli("run", tmp_path / "in", "-o", tmp_path / "o", "--clip-model", "ViT-B/32", "--set", f"clip.weights_dir={tmp_path}", "--no-progress") == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == f"mmcurate: error: ModelNotFound: CLIP weights for ViT-B/32 not found: {tmp_path}/ViT-B-32.pt is missing (copy the checkpoint there, set clip.weights_dir, or pass --clip-model /path/to/checkpoint.pt)"


def test_samples_without_a_caption_are_kept_unscored(tmp_path, setup):
    """With --require image a picture may have no caption: it has nothing to be scored
    against, so it is kept with a null score (it was scored against "" and dropped)."""
    from tests.util import jpeg, write

    _, common, _, _ = setup
    for i in range(6):
        write(str(tmp_path / "in" / f"p{i}.jpg"), jpeg(300, 240, seed=40 + i))
        if i % 2 == 0:
            write(str(tmp_path / "in" / f"p{i}.txt"), f"a picture number {i}")
    out = tmp_path / "out"
    assert run_cli("run", tmp_path / "in", "-o", out, *common, "--require", "image", "--dedup", "exact", "--clip-threshold", "1.0") == 0
    rows = by_key(out)
    assert {k: (r["status"], r["reason"], r["clip_score"]) for k, r in rows.items() if k in ("p1", "p3", "p5")} == {
        k: ("kept", "", None) for k in ("p1", "p3", "p5")}
    assert {k: r["reason"] for k, r in rows.items() if k in ("p0", "p2", "p4")} == {k: "clip.below_threshold" for k in ("p0", "p2", "p4")}
    assert sorted(s["__key__"] for s in samples(out)) == ["p1", "p3", "p5"]
    assert run_cli("validate", out) == 0
