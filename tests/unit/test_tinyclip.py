"""The shipped tiny CLIP (mmcurate/assets/tiny-clip.pt): small, loadable by clip itself, and
able to tell a demo photo's caption from a wrong one."""

import os
import random
import warnings

import numpy as np
import pytest

from mmcurate import tinyclip

PATH = tinyclip.default_path()


@pytest.fixture(scope="module")
def clip():
    torch = pytest.importorskip("torch")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clip = pytest.importorskip("clip")
    torch.set_num_threads(2)
    return clip


@pytest.fixture(scope="module")
def loaded(clip):
    return tinyclip.load(PATH)


@pytest.fixture(scope="module")
def held_out(loaded):
    # a seed the shipped model was neither trained nor reported on
    return tinyclip.similarities(n=160, seed=2024, model=loaded[0])


def test_shipped_file_exists_and_is_small():
    assert os.path.isfile(PATH), PATH
    assert os.path.getsize(PATH) <= 10 * 1024 * 1024


def test_clip_load_and_build_model_round_trip(clip, loaded):
    import torch

    model, preprocess = loaded
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        again, _ = clip.load(PATH, device="cpu", jit=False)  # the exact call users make
    state = torch.load(PATH, map_location="cpu")
    assert all(v.dtype == torch.float16 for v in state.values() if v.is_floating_point())
    shapes = {k: tuple(v.shape) for k, v in state.items()}
    rebuilt = clip.model.build_model(dict(state))
    assert {k: tuple(v.shape) for k, v in rebuilt.state_dict().items()} == shapes
    assert {k: tuple(v.shape) for k, v in tinyclip.new_model().state_dict().items()} == shapes
    assert model.visual.input_resolution == tinyclip.ARCH["image_resolution"] == 64
    assert model.context_length == tinyclip.ARCH["context_length"]
    assert model.vocab_size == 49408
    for a, b in zip(model.state_dict().values(), again.state_dict().values()):
        assert torch.equal(a, b)

    # clip's preprocess is what training used (resize short side, centre crop, normalise)
    from mmcurate.pipelines.demo import photo

    rng = random.Random(5)
    img, _ = photo(rng, (500, 300))
    assert torch.equal(preprocess(img), tinyclip.to_tensor(np.asarray(tinyclip._crop(img, 64))))


def test_held_out_auc(held_out):
    sims, captions = held_out
    score = tinyclip.scores_auc(sims, captions)
    assert score >= 0.95, score


def test_matched_beats_mismatched_on_average(held_out, loaded, clip):
    import torch

    sims, captions = held_out
    differs = np.array([[a != b for b in captions] for a in captions])
    assert np.diag(sims).mean() > sims[differs].mean() + 0.1
    # and through clip's public API on one fresh photo: its own caption beats the same caption
    # with another scene
    from mmcurate.pipelines.demo import photo

    model, preprocess = loaded
    img, caption = photo(random.Random(99), (400, 400))
    attrs = tinyclip.attributes(caption)
    scenes = ("sky", "sunset", "field", "night")
    wrong = [caption.replace(f"a {attrs[3]} scene", f"a {s} scene") for s in scenes if s != attrs[3]]
    with torch.no_grad():
        i = model.encode_image(preprocess(img)[None])
        t = model.encode_text(clip.tokenize([caption, *wrong], context_length=model.context_length, truncate=True))
    cos = torch.nn.functional.cosine_similarity(i, t)
    assert int(cos.argmax()) == 0, (caption, cos)


def test_auc_is_mann_whitney():
    assert tinyclip.auc([3, 4], [1, 2]) == 1.0
    assert tinyclip.auc([1, 2], [3, 4]) == 0.0
    assert tinyclip.auc([1], [1]) == 0.5
    assert tinyclip.auc([1, 2, 3], [0, 0.5, 3]) == pytest.approx(6.5 / 9)
    assert tinyclip.attributes("a red circle on the left of a sky scene") == ("red", "circle", "on the left", "sky")
    assert tinyclip.attributes("a photo of a dog") is None
