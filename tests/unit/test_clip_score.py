"""The scorer's CPU path equals clip-anytorch's own preprocess/tokenize/encode, within 1e-3."""

import io

import numpy as np
import pytest

torch = pytest.importorskip("torch")
clip = pytest.importorskip("clip")

from PIL import Image  # noqa: E402

from mmcurate.filters import quantile  # noqa: E402
from mmcurate.filters.clip_score import ClipScorer  # noqa: E402
from mmcurate.pipelines.clip_model import ModelNotFound, load_clip, resolve_checkpoint  # noqa: E402
from tests.clip_util import TINY, VIT_B_32, random_clip, save_random_tiny  # noqa: E402
from tests.util import encode, image, jpeg  # noqa: E402

CAPTIONS = ["a red circle on the left of a sky scene", "two dogs running on a beach at sunset", "x", "a photo " * 40]


def pairs():
    imgs = [jpeg(256, 256, seed=1), jpeg(640, 480, seed=2), encode(image(300, 500, seed=3), "PNG"), encode(image(90, 60, seed=4).convert("RGBA"), "PNG")]
    return imgs, CAPTIONS


def reference_scores(model, images, captions):
    from clip.clip import _transform

    preprocess = _transform(model.visual.input_resolution)
    out = []
    with torch.no_grad():
        for data, caption in zip(images, captions):
            img = model.encode_image(preprocess(Image.open(io.BytesIO(data))).unsqueeze(0)).double()
            txt = model.encode_text(clip.tokenize([caption], context_length=model.context_length, truncate=True)).double()
            out.append(float((img / img.norm()) @ (txt / txt.norm()).T))
    return out


@pytest.mark.parametrize("arch", ["tiny-file", "vit-b-32"])
def test_cpu_scores_match_clip_anytorch(arch, tmp_path):
    model = load_clip(save_random_tiny(tmp_path / "t.pt")) if arch == "tiny-file" else random_clip(VIT_B_32)
    images, captions = pairs()
    scorer = ClipScorer.create(model, device="cpu")
    got = scorer.score(images, captions)
    assert got.errors == [""] * 4
    np.testing.assert_allclose(got.scores, reference_scores(model, images, captions), atol=1e-3)


def test_shipped_tiny_model_matches_clip_anytorch():
    try:
        path = resolve_checkpoint("tiny")
    except Exception:
        pytest.skip("the tiny CLIP asset is not built yet")
    model = load_clip(path)
    images, captions = pairs()
    got = ClipScorer.create(model, device="cpu").score(images, captions)
    np.testing.assert_allclose(got.scores, reference_scores(model, images, captions), atol=1e-3)


def test_a_corrupt_image_fails_alone(tmp_path):
    scorer = ClipScorer.create(random_clip(TINY), device="cpu", chunk_size=2)
    good = jpeg(128, 128, seed=9)
    out = scorer.score([good, good[:100], b"not an image", good], ["a", "b", "c", "d"], embeddings=True)
    assert [s is None for s in out.scores] == [False, True, True, False]
    assert out.errors[0] == "" and out.errors[1] and out.errors[2]
    assert out.scores[0] == pytest.approx(scorer.score([good], ["a"]).scores[0], abs=1e-6)
    assert out.image_embeddings.shape == (4, 64) and out.image_embeddings.dtype == np.float16
    assert not out.image_embeddings[1].any()  # failed rows are zero
    assert np.linalg.norm(out.image_embeddings[0].astype(np.float32)) == pytest.approx(1.0, abs=1e-2)


def test_missing_checkpoints_name_the_file(tmp_path):
    with pytest.raises(ModelNotFound, match=f"{tmp_path}/ViT-B-32.pt is missing"):
        resolve_checkpoint("ViT-B/32", str(tmp_path))
    with pytest.raises(ModelNotFound, match="/nope/model.pt is neither a file nor one of"):
        resolve_checkpoint("/nope/model.pt")


def test_top_fraction_cut_equals_a_full_sort():
    rng = np.random.default_rng(0)
    scores = np.round(rng.normal(0.25, 0.05, 5000), 3).astype(float)  # many ties
    keys = [f"k{i:05d}" for i in rng.permutation(5000)]
    hist = np.zeros(quantile.BINS, dtype=np.int64)
    for s in scores:
        hist[quantile.bin_of(s)] += 1
    for fraction in (0.0001, 0.3, 0.5, 0.999, 1.0):
        target = quantile.find_target(hist, fraction)
        cutoff = quantile.exact_cutoff([(s, k) for s, k in zip(scores, keys) if quantile.bin_of(s) == target.bin], target)
        kept = {k for s, k in zip(scores, keys) if quantile.keeps(s, k, cutoff)}
        expected = {k for _, k in sorted(zip(-scores, keys))[: quantile.keep_count(fraction, 5000)]}
        assert kept == expected and len(kept) == target.k


def test_fixed_row_padding_gives_the_same_scores():
    """Compiled encoders pad every chunk to chunk_size rows; padding must not change a score
    (the padding path runs eagerly here; the compiled one is in tests/gpu)."""
    images, captions = pairs()
    model = random_clip(TINY)
    plain = ClipScorer.create(model, device="cpu", chunk_size=3).score(images, captions).scores
    padded = ClipScorer.create(random_clip(TINY), device="cpu", chunk_size=3)
    padded._fixed_rows = 8  # chunks of 3 and 1 rows go through the encoders as 8 rows
    np.testing.assert_allclose(padded.score(images, captions).scores, plain, atol=1e-5)


def test_tokenizer_processes_give_clips_tokens():
    scorer = ClipScorer.create(random_clip(TINY), device="cpu", tokenize_workers=2)
    captions = [f"a photo of {i} dogs &amp; a caf\u00e9" if i % 7 == 0 else f"a photo of {i} dogs" for i in range(200)]
    tokens = scorer.tokenize(captions)
    expected = clip.tokenize(captions, context_length=scorer.context_length, truncate=True)
    assert tokens.shape == (200, 16)  # cut to the bucket that holds the longest caption
    assert torch.equal(tokens, expected[:, :16]) and not expected[:, 16:].any()


def test_decoder_names_are_checked():
    from mmcurate.filters import gpu_decode
    from mmcurate.schemas.config import ClipConfig, ConfigError

    with pytest.raises(ValueError, match="unknown JPEG decoder 'nvjpeg': one of torchvision, nvimgcodec, nvimgcodec-hw, nvimgcodec-gpu, cpu, mixed"):
        gpu_decode.make_decoder("nvjpeg", torch.device("cuda"))
    with pytest.raises(ConfigError, match="clip.decoder"):
        ClipConfig(decoder="nvjpeg").validate()
    with pytest.raises(ConfigError, match="clip.decode_threads must be >= 0"):
        ClipConfig(decoder="cpu", decode_threads=-1).validate()
    ClipConfig(decoder="nvimgcodec-hw").validate()
    ClipConfig(decoder="cpu", decode_threads=4).validate()
    with pytest.raises(ConfigError, match=r"clip.host_decode_share must be in \[0, 1\]"):
        ClipConfig(decoder="mixed", host_decode_share=1.5).validate()


def odd_jpegs() -> list[bytes]:
    """JPEGs that are not plain baseline RGB: grayscale, CMYK, progressive, 4:4:4 and 4:2:0."""
    gray = encode(image(120, 100, seed=11, mode="L"), "JPEG")
    cmyk = encode(image(120, 100, seed=12).convert("CMYK"), "JPEG")
    progressive = jpeg(200, 150, seed=13, progressive=True)
    return [gray, cmyk, progressive, jpeg(97, 61, seed=14, subsampling=0), jpeg(97, 61, seed=15, subsampling=2)]


def test_host_decoder_pixels_equal_pils():
    """The "cpu" decoder (libjpeg-turbo on a thread pool) gives PIL's pixels exactly, in order,
    across pool tasks; a corrupt JPEG comes back as None without disturbing its neighbours."""
    from mmcurate.filters import gpu_decode

    good = [jpeg(256, 256, seed=i) for i in range(70)] + odd_jpegs()
    corrupt = {3: b"\xff\xd8\xff\xe0" + b"\x00" * 64, 40: b"\xff\xd8garbage", 71: good[71][:200]}
    datas = list(good)
    for i, bad in corrupt.items():
        datas[i] = bad
    decoder = gpu_decode.make_decoder("cpu", torch.device("cpu"), threads=2)
    assert (decoder.name, decoder.threads) == ("cpu", 2) and len(datas) > 2 * decoder.PER_TASK
    assert_pils_pixels(decoder.decode(datas), datas, corrupt)


def assert_pils_pixels(out, datas, corrupt):
    assert len(out) == len(datas)
    for i, (data, got) in enumerate(zip(datas, out)):
        if i in corrupt:
            assert got is None, i
            continue
        want = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
        assert got.dtype == torch.uint8 and got.shape == (3, *want.shape[:2])
        assert np.array_equal(got.permute(1, 2, 0).numpy(), want), i


@pytest.mark.parametrize("share", [0.0, 0.3, 1.0])
def test_mixed_decoder_splits_a_chunk_and_keeps_its_order(share):
    """The "mixed" decoder (torchvision's batched call here on the CPU, host threads for the
    last `share`): every picture back in its place, corrupt ones as None on either side."""
    from mmcurate.filters import gpu_decode

    datas = [jpeg(96, 80, seed=i) for i in range(60)] + odd_jpegs()
    corrupt = {5: b"\xff\xd8garbage", 58: datas[58][:150]}
    for i, bad in corrupt.items():
        datas[i] = bad
    decoder = gpu_decode.make_decoder("mixed", torch.device("cpu"), threads=2, host_share=share)
    assert decoder.name == "mixed"
    assert_pils_pixels(decoder.decode(datas), datas, corrupt)


def test_batched_preprocessing_with_host_decoder_close_to_clip_transform():
    """The CUDA path's tensor preprocessing (resize, crop, normalise), run on the CPU with the
    host decoder: close to clip's PIL transform; PNGs and corrupt JPEGs go to PIL, which names
    the problem."""
    from mmcurate.filters import gpu_decode

    scorer = ClipScorer.create(random_clip(VIT_B_32), device="cpu")
    scorer.jpeg = gpu_decode.HostDecoder(torch.device("cpu"), threads=2)
    imgs = pairs()[0] + odd_jpegs() + [b"\xff\xd8garbage"]
    expected, expected_errors = scorer.pixels_cpu(imgs)
    got, errors = scorer.pixels_batched(imgs)
    assert errors[:-1] == [""] * (len(imgs) - 1)
    assert errors[-1] == expected_errors[-1] == "UnidentifiedImageError: cannot identify image file <_io.BytesIO object>"
    assert got.shape == expected.shape == (len(imgs), 3, 224, 224)
    diff = (got - expected).abs()
    assert diff.mean() < 0.02 and diff.max() < 0.6  # PIL vs tensor bicubic, as on CUDA
    assert not got[-1].any()
