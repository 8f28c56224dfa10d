"""Caption language detection: how well the shipped model (or TEXT_LANGUAGE_MODEL) names the
language of real text, what `--languages en` keeps, and how fast it runs.

  python benchmarks/bench_language.py [--model PATH] [--per-language 300]

Two real corpora, neither committed:
- Flickr8k's 5,000 human English captions (../shared/data/flickr8k/captions.txt): how many
  `--languages en` keeps, at each text.min_language_score.
- The machine's gettext catalogues (/usr/share/locale/*/LC_MESSAGES/*.mo, human translations
  of program messages): each message's English original and its translations, labelled by the
  catalogue's locale. Messages of 3+ words without format codes; up to --per-language per
  language, drawn with a fixed seed. Which catalogues exist depends on the packages installed.
"""

from __future__ import annotations

import argparse
import collections
import gettext
import glob
import os
import random
import re
import time

from mmcurate.filters.language import detect

FLICKR = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "flickr8k", "captions.txt")
LANGUAGES = ["de", "fr", "es", "it", "pt", "nl", "sv", "pl", "cs", "ru", "uk", "tr", "ja", "zh", "ko", "vi", "id", "fi", "hu", "el"]
THRESHOLDS = [0.0, 0.3, 0.5, 0.65]
_FORMAT = re.compile(r"%|\{|\$|\\|<|&|_")


def flickr_captions() -> list[str]:
    import csv

    with open(FLICKR, encoding="utf-8", newline="") as f:
        return [row["caption"].strip() for row in csv.DictReader(f)]


def catalogue_messages(per_language: int, seed: int = 0) -> dict[str, list[str]]:
    """{language: messages}: translations by the catalogue's locale (zh_CN -> zh), and the
    English originals (msgids) as "en"."""
    found: dict[str, set[str]] = collections.defaultdict(set)
    for path in glob.glob("/usr/share/locale/*/LC_MESSAGES/*.mo"):
        locale = path.split("/")[4]
        code = locale.split("_")[0].split("@")[0]
        if code not in LANGUAGES or "@" in locale:
            continue
        try:
            with open(path, "rb") as f:
                catalog = gettext.GNUTranslations(f)._catalog
        except Exception:
            continue
        for msgid, msgstr in catalog.items():
            if not isinstance(msgid, str) or not msgid or msgstr == msgid:
                continue
            for code_, text in (("en", msgid), (code, msgstr)):
                text = " ".join(text.split())
                if len(text.split()) >= 3 and not _FORMAT.search(text) and (code_ in ("ja", "zh") or len(text) >= 12):
                    found[code_].add(text)
    rng = random.Random(seed)
    return {code: rng.sample(sorted(texts), min(per_language, len(texts))) for code, texts in sorted(found.items())}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="", help="a fastText language-ID model on disk (default: the shipped lid.176.ftz)")
    p.add_argument("--per-language", type=int, default=300)
    args = p.parse_args()

    if os.path.exists(FLICKR):
        captions = flickr_captions()
        found = [detect(c, args.model) for c in captions]
        print(f"Flickr8k: {len(captions)} English captions")
        for t in THRESHOLDS:
            kept = sum(1 for f in found if f.code == "en" and f.score >= t)
            print(f"  --languages en, min_language_score {t:<4}: kept {kept} ({100 * kept / len(captions):.2f}%)")
        others = collections.Counter(f.code for f in found if f.code != "en")
        print(f"  labelled other than en: {dict(others.most_common(8))}")
        examples = [c for c, f in zip(captions, found) if f.code != "en"][:5]
        print(f"  e.g. {examples}")
    else:
        print(f"Flickr8k: {FLICKR} absent, skipped")

    messages = catalogue_messages(args.per_language)
    if messages:
        total = correct = 0
        english = messages.get("en", [])
        print(f"\ngettext catalogues: {sum(map(len, messages.values()))} messages in {len(messages)} languages")
        print("  language  n  top-1 right  kept by --languages en")
        wrongly_kept = foreign = 0
        for code, texts in messages.items():
            labels = [detect(t, args.model).code for t in texts]
            right = sum(1 for lab in labels if lab == code)
            kept_en = sum(1 for lab in labels if lab == "en")
            total, correct = total + len(texts), correct + right
            if code != "en":
                wrongly_kept, foreign = wrongly_kept + kept_en, foreign + len(texts)
            print(f"  {code:<8} {len(texts):>4}  {100 * right / len(texts):6.1f}%  {100 * kept_en / len(texts):6.1f}%")
        print(f"  all: top-1 right {100 * correct / total:.1f}%; --languages en keeps {100 * sum(1 for t in english if detect(t, args.model).code == 'en') / max(1, len(english)):.1f}% "
              f"of the English and {100 * wrongly_kept / max(1, foreign):.2f}% of the other messages")

    sample = (flickr_captions() if os.path.exists(FLICKR) else [t for v in messages.values() for t in v])[:5000]
    detect(sample[0], args.model)
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for text in sample:
            detect(text, args.model)
        best = min(best, time.perf_counter() - start)
    print(f"\nspeed: {len(sample) / best:,.0f} captions/s on one thread ({1e6 * best / len(sample):.1f} µs each, best of 3)")


if __name__ == "__main__":
    main()
