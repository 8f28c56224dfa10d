import io
import re

import pytest

from mmcurate.filters.keys import is_valid_key, make_key, position_key, stem_of
from mmcurate.schemas.config import ConfigError, RunConfig
from mmcurate.schemas.reasons import REASONS, STAGES


def test_keys_have_no_dots_and_stay_distinct():
    assert make_key("abc_01") == "abc_01"
    assert make_key("sub/dir/abc") == "sub_dir_abc"
    dotted, underscored = make_key("my.photo.v2"), make_key("my_photo_v2")
    assert "." not in dotted and dotted != underscored and dotted.startswith("my_photo_v2-")
    assert is_valid_key(make_key("café ü/ñ"))
    assert make_key("café") != make_key("cafè")
    assert len(make_key("x" * 500)) <= 120
    assert position_key(3, 42) == "00003_000000042"
    assert stem_of("dir/a.b.jpg") == "dir/a.b" and stem_of("a") == "a"


def test_config_yaml_and_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("image:\n  image_size: 128\n  resize_mode: center_crop\nfetch:\n  retries: 5\n")
    cfg = RunConfig.load(str(path), ["image.image_size=64", "fetch.respect_optout=false", "text.max_chars=10"])
    assert cfg.image.image_size == 64 and cfg.image.resize_mode == "center_crop"
    assert cfg.fetch.retries == 5 and cfg.fetch.respect_optout is False and cfg.text.max_chars == 10
    assert RunConfig.from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize(
    "override,message",
    [
        ("image.size=3", "unknown config key 'image.size'"),
        ("imgs.image_size=3", "unknown config section 'imgs'"),
        ("image.image_size=big", "image.image_size: expected int"),
        ("image.resize_mode=stretch", "image.resize_mode must be one of"),
        ("fetch.threads=0", "fetch.threads must be > 0"),
        ("dedup.max_colour_distance=-1", "dedup.max_colour_distance must be >= 0 (0 turns the colour check off); got -1.0"),
        ("audio.min_clip=40", "audio.min_clip must not exceed audio.max_clip"),
        ("audio.padding=-0.1", "audio.merge_gap, audio.padding and audio.min_clip must be >= 0"),
        ("audio.max_clip=0", "audio.max_clip must be > 0; got 0.0"),
        ("noequals", "--set expects section.field=value"),
    ],
)
def test_config_errors_are_plain(override, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        RunConfig.load(None, [override])


def test_every_reason_is_named_by_its_stage_area():
    for name, (status, stage, meaning) in REASONS.items():
        area, _, what = name.partition(".")
        assert what and status in ("dropped", "failed") and stage in STAGES and meaning


def test_error_text_drops_object_addresses_and_is_cut_to_its_limit():
    from PIL import Image, UnidentifiedImageError

    from mmcurate.schemas.record import error_text, without_addresses

    with pytest.raises(UnidentifiedImageError) as first:
        Image.open(io.BytesIO(b"not a picture"))
    with pytest.raises(UnidentifiedImageError) as second:
        Image.open(io.BytesIO(b"not a picture either"))
    assert " at 0x" in str(first.value)  # PIL names the stream by its address
    assert error_text(first.value) == error_text(second.value) == "UnidentifiedImageError: cannot identify image file <_io.BytesIO object>"
    assert error_text(ValueError("x" * 50), limit=20) == "ValueError: " + "x" * 8
    assert error_text(KeyError("k"), extra="trace") == "KeyError: 'k' | trace"
    assert without_addresses("ValueError('<_io.BytesIO object at 0x7f3a2c>')") == "ValueError('<_io.BytesIO object>')"


def test_the_printed_config_explains_each_setting_and_reads_back_as_the_defaults():
    import yaml

    from mmcurate.schemas.config import RunConfig

    text = RunConfig().to_yaml(comments=True)
    assert yaml.safe_load(text) == RunConfig().to_dict()
    assert "  url_col: url  # table: column holding a URL or a path (relative to the table)\n" in text
    assert "  # near mode: what makes two samples duplicates\n  duplicates: image  # image | caption | both | either\n" in text


def test_a_saved_config_says_what_the_runs_samples_hold():
    """The loader and the report ask a finished run's config.yaml, not stats.json's format,
    which says "table" for a table of audio files (--audio-col)."""
    import yaml

    from mmcurate.schemas.config import saved_media_modality

    def saved(**section):
        return yaml.safe_dump({"run": {"inputs": ["x"]}, "input": section}).encode()

    assert saved_media_modality(saved(format="audio")) == "audio"
    assert saved_media_modality(saved(format="table", audio_col="path")) == "audio"
    assert saved_media_modality(saved(format="table", video_col="video")) == "video"
    assert saved_media_modality(saved(format="folder")) == "image"
    assert saved_media_modality(b"input: [not, a, section]") == "image"
    assert saved_media_modality(b"{{ not yaml") == "image"
