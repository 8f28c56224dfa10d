"""Caption languages end to end: recorded in the manifest, the sample json and the stats;
`--languages` drops the others as text.language before their images are read; with several
captions (COCO) the first in a wanted language is the sample's."""

import json
import os

from tests.unit.test_language import SENTENCES
from tests.util import by_key, jpeg, run_cli, samples, stats, write


def folder(root, captions: dict[str, str]) -> str:
    for i, (key, text) in enumerate(sorted(captions.items())):
        write(os.path.join(root, f"{key}.jpg"), jpeg(300, 240, seed=i))
        write(os.path.join(root, f"{key}.txt"), text)
    return str(root)


def curate(src, out, *args):
    assert run_cli("run", src, "-o", out, "--workers", "1", "--no-progress", "--dedup", "exact", *args) == 0
    assert run_cli("validate", out) == 0
    return stats(out)


def test_languages_are_recorded_and_counted(tmp_path, capsys):
    src = folder(tmp_path / "in", {f"p_{code}": text for code, text in SENTENCES.items()} | {"p_en2": "Two children play football on a sandy beach."})
    out = tmp_path / "out"
    s = curate(src, out)
    assert (s["kept"], s["dropped"], s["failed"]) == (7, {}, {})
    assert s["languages"] == {"de": 1, "en": 2, "es": 1, "fr": 1, "ja": 1, "ru": 1}
    rows = by_key(out)
    assert {k: r["caption_language"] for k, r in rows.items()} == {"p_de": "de", "p_en": "en", "p_en2": "en", "p_es": "es", "p_fr": "fr", "p_ja": "ja", "p_ru": "ru"}
    docs = {x["__key__"]: json.loads(x["json"]) for x in samples(out)}
    assert docs["p_de"]["caption_language"] == "de"
    assert docs["p_de"]["caption_language_score"] == round(rows["p_de"]["caption_language_score"], 4) > 0.8
    capsys.readouterr()
    assert run_cli("stats", out) == 0
    shown = capsys.readouterr().out
    assert "kept samples per caption" in shown and "28.6%" in shown  # en: 2 of 7
    assert run_cli("report", out, "-o", tmp_path / "r.html") == 0
    assert "<dt>languages</dt><dd>en 28.6%, de 14.3%, es 14.3% (+3 more)</dd>" in (tmp_path / "r.html").read_text()


def test_languages_flag_drops_the_others_before_fetching(tmp_path):
    captions = {f"p_{code}": text for code, text in SENTENCES.items()}
    src = folder(tmp_path / "in", captions)
    os.remove(os.path.join(src, "p_de.jpg"))  # dropped for its language: its image is never read
    write(os.path.join(src, "p_de.jpg"), b"not an image")
    out = tmp_path / "out"
    s = curate(src, out, "--languages", "en,fr")
    assert (s["kept"], s["dropped"], s["failed"]) == (2, {"text.language": 4}, {})
    assert s["languages"] == {"en": 1, "fr": 1}
    rows = by_key(out)
    assert rows["p_de"]["reason"] == "text.language" and rows["p_de"]["stage"] == "prepare"
    assert rows["p_de"]["error"] == f"de ({rows['p_de']['caption_language_score']:.2f}); text.languages is en,fr"
    assert rows["p_de"]["sha256"] == ""  # not fetched
    assert sorted(x["__key__"] for x in samples(out)) == ["p_en", "p_fr"]


def test_coco_takes_the_first_caption_in_a_wanted_language(tmp_path):
    images = tmp_path / "in" / "images"
    for i, name in enumerate(("a", "b")):
        write(str(images / f"{name}.jpg"), jpeg(300, 240, seed=i))
    annotations = {
        "images": [{"id": 1, "file_name": "a.jpg"}, {"id": 2, "file_name": "b.jpg"}],
        "annotations": [
            {"id": 1, "image_id": 1, "caption": SENTENCES["de"]},
            {"id": 2, "image_id": 1, "caption": SENTENCES["en"]},
            {"id": 3, "image_id": 1, "caption": "Two children play football on a sandy beach."},
            {"id": 4, "image_id": 1, "caption": SENTENCES["fr"]},
            {"id": 5, "image_id": 2, "caption": SENTENCES["es"]},
            {"id": 6, "image_id": 2, "caption": SENTENCES["ru"]},
        ],
    }
    write(str(tmp_path / "in" / "captions.json"), json.dumps(annotations))
    out = tmp_path / "out"
    s = curate(tmp_path / "in" / "captions.json", out, "--languages", "en")
    assert (s["kept"], s["dropped"]) == (1, {"text.language": 1})
    rows = by_key(out)
    assert rows["a"]["caption"] == SENTENCES["en"] and rows["a"]["caption_language"] == "en"
    assert rows["a"]["captions"] == [SENTENCES["en"], "Two children play football on a sandy beach."]
    assert rows["b"]["caption"] == SENTENCES["es"] and rows["b"]["error"].startswith("es (")  # the first caption's verdict


def test_a_language_the_model_cannot_name_stops_the_run_in_one_line(tmp_path, capsys):
    src = folder(tmp_path / "in", {"p_en": SENTENCES["en"]})
    assert run_cli("run", src, "-o", tmp_path / "out", "--workers", "1", "--no-progress", "--languages", "english") != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "text.languages: english is not a language of the model" in err[0]
