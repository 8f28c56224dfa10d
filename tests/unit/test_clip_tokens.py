"""The fast tokenizer gives exactly clip.tokenize(..., truncate=True); text length buckets."""

import random

import pytest

torch = pytest.importorskip("torch")
clip = pytest.importorskip("clip")

from mmcurate.filters import clip_forward  # noqa: E402
from mmcurate.filters.clip_tokens import _PLAIN, tokenize  # noqa: E402

EDGE = [
    "", "   ", "a", "A photo of a DOG", "two  dogs\trunning\non a beach", "tom &amp; jerry", "tom & jerry",
    "&lt;b&gt;bold&lt;/b&gt;", "caf\u00e9 cr\u00e8me", "\u201ccurly quotes\u201d", "fi ligature \ufb01sh", "ＦＵＬＬ width",
    "mojibake Ã©tÃ©", "bell\x07 and del\x7f", "esc \x1b[31mred\x1b[0m", "cr\r\nlf", "emoji \U0001f436 dog",
    "it's the dog's bone, isn't it?", "numbers 12345 and 3.14", "<|startoftext|> tags <|endoftext|>",
    "word " * 100, "x" * 600, "日本語のキャプション",
]


def random_captions(seed: int, n: int) -> list[str]:
    rng = random.Random(seed)
    ascii_noise = ["".join(chr(rng.randint(0, 127)) for _ in range(rng.randint(0, 60))) for _ in range(n)]
    alphabet = "ab &;<>'\"sdtmlv\t\n\r.,!?0123456789é—"
    mixed = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 90))) for _ in range(n)]
    return ascii_noise + mixed


@pytest.mark.parametrize("context_length", [77, 16])
def test_same_tokens_as_clip(context_length):
    captions = EDGE + random_captions(0, 1500)
    expected = clip.tokenize(captions, context_length=context_length, truncate=True)
    assert torch.equal(tokenize(captions, context_length), expected)


def test_fast_path_is_plain_ascii_without_ampersand():
    assert _PLAIN.fullmatch("a dog, running!\tnow\n")
    for text in ("tom &amp; jerry", "caf\u00e9", "bell\x07", "cr\r", "del\x7f"):
        assert not _PLAIN.fullmatch(text)


def test_text_length_rounds_up_to_a_bucket():
    tokens = clip.tokenize(["a dog", "a " * 20 + "dog"], context_length=77)  # 4 and 23 tokens
    assert clip_forward.text_length(tokens[:1]) == 8
    assert clip_forward.text_length(tokens) == 24
    assert clip_forward.text_length(tokens, clip_forward.COMPILED_TEXT_BUCKETS) == 24
    assert clip_forward.text_length(clip.tokenize(["word " * 100], truncate=True)) == 77  # past the buckets
    assert clip_forward.text_length(clip.tokenize(["a dog"], context_length=6)) == 6  # short contexts


def test_cut_text_encoding_equals_clip_encode_text():
    from tests.clip_util import VIT_B_32, random_clip

    model = random_clip(VIT_B_32)
    captions = ["a dog", "two dogs running on a beach at sunset " * 3, "x", "word " * 100]
    tokens = clip.tokenize(captions, context_length=77, truncate=True)
    with torch.no_grad():
        ref = model.encode_text(tokens)
        got = clip_forward.encode_text(model, tokens)
    torch.testing.assert_close(got, ref, atol=1e-4, rtol=1e-4)
