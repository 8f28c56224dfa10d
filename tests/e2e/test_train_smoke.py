"""A freshly initialised tiny CLIP learns from the demo's shards through mmcurate.loader: the
contrastive loss falls well below its start within 40 steps, the same on every run."""

from __future__ import annotations

from statistics import mean

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("clip")

from mmcurate.train import main, train_clip  # noqa: E402


@pytest.fixture
def torch_settings_restored():
    """train_clip fixes torch's threads and deterministic mode for the process; undo it."""
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    yield
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(deterministic)


def test_a_fresh_tiny_clip_learns_from_the_shards(demo_out, torch_settings_restored):
    losses = train_clip(demo_out, steps=40, batch_size=32, lr=1e-3, seed=0, split="train")
    assert len(losses) == 40
    assert mean(losses[:8]) > 2.5 and mean(losses[-8:]) < 0.8 * mean(losses[:8])
    assert train_clip(demo_out, steps=5, batch_size=32, lr=1e-3, seed=0, split="train") == losses[:5]


def test_the_command_prints_the_loss(demo_out, torch_settings_restored, capsys):
    assert main([demo_out, "--steps", "3", "--batch-size", "8"]) == 0
    out = capsys.readouterr().out
    assert "step     1  loss" in out and "3 steps in" in out and "mean loss of the first 1 steps" in out
