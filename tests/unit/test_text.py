from mmcurate.filters.text import CleanCaption, caption_sha256, normalise
from mmcurate.schemas.config import TextConfig

clean = CleanCaption(TextConfig())


def test_ftfy_repairs_and_whitespace_is_normalised():
    assert clean("  a   dog\tin the\n park ")[0] == "a dog in the park"
    assert clean("the caf\u00c3\u00a9 on the corner".encode("utf-8"))[0] == "the café on the corner"
    assert clean("fish &amp; chips")[0] == "fish & chips"
    assert normalise("\ufeffhello  world") == "hello world"


def test_rejections_have_stable_reasons():
    assert clean(None)[1].reason == "input.missing_caption"
    assert clean(b"\xff\xfe bad bytes")[1].reason == "text.invalid_utf8"
    assert clean("   \n\t ")[1].reason == "text.empty"
    assert clean("")[1].reason == "text.empty"
    assert clean("a")[1].reason == "text.too_short"
    assert clean(b"x" * 1_000_000)[1].reason == "text.too_long"
    assert clean("x" * 1_000_000)[1].reason == "text.too_long"
    assert len(clean("x" * 1_000_000)[0]) <= 501  # only a preview is kept
    words = CleanCaption(TextConfig(max_words=3))
    assert words("one two three four")[1].reason == "text.too_long"
    assert words("one two three")[1].kept


def test_caption_hash_ignores_case_and_spacing():
    assert caption_sha256("A  Dog") == caption_sha256("a dog")
    assert caption_sha256("a dog") != caption_sha256("a cat")
    assert caption_sha256("") == ""
