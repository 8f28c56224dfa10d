"""Caption cleaning: UTF-8 check, ftfy repair, whitespace normalisation, length bounds, and
the caption's language (detected always, filtered when text.languages or
text.min_language_score asks)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import NamedTuple, Optional, Union

import ftfy

from mmcurate.filters.language import detect, language_verdict_detail
from mmcurate.schemas.config import TextConfig
from mmcurate.schemas.record import Verdict


class Caption(NamedTuple):
    text: str  # cleaned; also when dropped, cut to a readable length, so the manifest shows what was rejected
    verdict: Verdict
    language: str = ""  # detected for captions that pass the length checks
    language_score: Optional[float] = None

    def fields(self) -> dict:
        """The manifest columns of its language."""
        return {"caption_language": self.language, "caption_language_score": self.language_score}


@dataclass(frozen=True)
class CleanCaption:
    cfg: TextConfig
    wanted: list = field(init=False)  # text.languages, parsed once (not per caption)

    def __post_init__(self):
        object.__setattr__(self, "wanted", self.cfg.wanted_languages())

    def __call__(self, raw: Union[str, bytes, None]) -> Caption:
        text, verdict = self._clean(raw)
        if not verdict.kept:
            return Caption(text, verdict)
        found = detect(text, self.cfg.language_model)
        why = language_verdict_detail(found, self.wanted, self.cfg.min_language_score)
        return Caption(text, Verdict.reject("text.language", why) if why else verdict, found.code, found.score)

    def _clean(self, raw: Union[str, bytes, None]) -> tuple[str, Verdict]:
        if raw is None:
            return "", Verdict.reject("input.missing_caption")
        if isinstance(raw, (bytes, bytearray)):
            # A caption far over the limit is rejected before any decoding or repair work.
            if len(raw) > 4 * self.cfg.max_chars + 16:
                return _preview(raw.decode("utf-8", "replace")), Verdict.reject("text.too_long", f"{len(raw)} bytes")
            try:
                raw = bytes(raw).decode("utf-8")
            except UnicodeDecodeError as e:
                return _preview(raw.decode("utf-8", "replace")), Verdict.reject("text.invalid_utf8", str(e))
        if len(raw) > 4 * self.cfg.max_chars + 16:
            return _preview(raw), Verdict.reject("text.too_long", f"{len(raw)} chars")
        text = normalise(raw)
        words = len(text.split())
        if not text:
            return "", Verdict.reject("text.empty")
        if len(text) < self.cfg.min_chars or words < self.cfg.min_words:
            return text, Verdict.reject("text.too_short", f"{len(text)} chars, {words} words")
        if len(text) > self.cfg.max_chars or words > self.cfg.max_words:
            return _preview(text), Verdict.reject("text.too_long", f"{len(text)} chars, {words} words")
        return text, Verdict.keep()


def normalise(text: str) -> str:
    """ftfy's repair (mojibake, HTML entities, odd quotes) then one space between words."""
    text = text.lstrip("\ufeff")
    text = ftfy.fix_text(text)
    return " ".join(text.split())


def caption_sha256(text: Optional[str]) -> str:
    """Hash of a caption for exact caption dedup: case-folded, whitespace-normalised."""
    if not text:
        return ""
    return hashlib.sha256(" ".join(text.casefold().split()).encode("utf-8")).hexdigest()


def _preview(text: str, limit: int = 500) -> str:
    return text if len(text) <= limit else text[:limit] + "…"
