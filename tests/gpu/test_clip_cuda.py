"""The CUDA path (nvJPEG decode, tensor resize/crop/normalise) agrees with the CPU path.
Skipped without CUDA; run on a GPU machine with `pytest -m gpu tests/gpu`."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("clip")
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]

from mmcurate.filters import gpu_decode  # noqa: E402
from mmcurate.filters.clip_score import ClipScorer  # noqa: E402
from tests.clip_util import VIT_B_32, random_clip  # noqa: E402
from tests.util import encode, image, jpeg  # noqa: E402


NEEDS_NVIMGCODEC = pytest.mark.skipif(gpu_decode.nvimgcodec_module() is None, reason="nvImageCodec not installed")
DECODERS = ["torchvision", "cpu", "mixed", pytest.param("nvimgcodec-hw", marks=NEEDS_NVIMGCODEC), pytest.param("nvimgcodec-gpu", marks=NEEDS_NVIMGCODEC)]


def batch():
    imgs = [jpeg(256, 256, seed=i) for i in range(6)] + [jpeg(640, 480, seed=7), jpeg(300, 500, seed=8), encode(image(320, 240, seed=9), "PNG")]
    caps = [f"a photo of thing number {i}" for i in range(len(imgs))]
    return imgs, caps


@pytest.mark.parametrize("precision,tol", [("fp32", 5e-3), ("fp16", 1.5e-2), ("bf16", 3e-2)])
def test_cuda_scores_match_cpu(precision, tol):
    model = random_clip(VIT_B_32)
    imgs, caps = batch()
    cpu = ClipScorer.create(model, device="cpu").score(imgs, caps).scores
    gpu = ClipScorer.create(random_clip(VIT_B_32), device="cuda", precision=precision, chunk_size=4).score(imgs, caps).scores
    np.testing.assert_allclose(gpu, cpu, atol=tol)


@pytest.mark.parametrize("decoder", DECODERS)
def test_cuda_pixels_close_to_clip_transform(decoder):
    model = random_clip(VIT_B_32)
    imgs, _ = batch()
    cpu, _ = ClipScorer.create(model, device="cpu").pixels_cpu(imgs)
    scorer = ClipScorer.create(random_clip(VIT_B_32), device="cuda", precision="fp32", decoder=decoder)
    assert scorer.jpeg.name == decoder
    gpu, errors = scorer.pixels_batched(imgs)
    assert errors == [""] * len(imgs)
    diff = (gpu.cpu() - cpu).abs()
    assert diff.mean() < 0.02 and diff.max() < 0.6  # PIL vs tensor bicubic, JPEG decoder rounding


@pytest.mark.parametrize("decoder", DECODERS)
def test_corrupt_jpeg_fails_alone_on_cuda(decoder):
    scorer = ClipScorer.create(random_clip(VIT_B_32), device="cuda", chunk_size=8, decoder=decoder)
    good = jpeg(256, 256, seed=1)
    out = scorer.score([good, b"\xff\xd8\xff\xe0" + b"\x00" * 64, good, b"\xff\xd8garbage"], ["a", "b", "a", "d"])
    assert [s is None for s in out.scores] == [False, True, False, True]
    assert out.scores[0] == pytest.approx(out.scores[2], abs=1e-3)  # same image, same caption


@pytest.mark.parametrize("compile", [True, "reduce-overhead"])
def test_compiled_scores_match_eager_with_padding(compile):
    """Compiled encoders pad every chunk to chunk_size rows: scores equal the eager ones, also
    when the compiled graphs are replayed as CUDA graphs (reduce-overhead)."""
    model = random_clip(VIT_B_32)
    imgs, caps = batch()
    eager = ClipScorer.create(model, device="cuda", precision="fp32", chunk_size=4).score(imgs, caps).scores
    compiled = ClipScorer.create(random_clip(VIT_B_32), device="cuda", precision="fp32", chunk_size=4, compile=compile).score(imgs, caps).scores
    np.testing.assert_allclose(compiled, eager, atol=2e-3)
