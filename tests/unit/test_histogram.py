"""Fixed-bin histograms: exact counts, merge == histogram of the union, quantiles."""

import numpy as np

from mmcurate.filters import histogram


def test_counts_edges_and_out_of_range():
    h = histogram.histogram("caption_words", [0, 1, 2, 3, 79, 80, 81, 500, None, float("nan")])
    assert h["edges"][:3] == [0.0, 2.0, 4.0] and len(h["edges"]) == 41 and len(h["counts"]) == 40
    assert h["counts"][0] == 2 and h["counts"][1] == 2 and h["counts"][39] == 2  # 80 falls in the last bin
    assert (h["below"], h["above"], h["count"], h["min"], h["max"]) == (0, 2, 8, 0.0, 500.0)
    assert sum(h["counts"]) + h["below"] + h["above"] == h["count"]
    empty = histogram.histogram("clip_score", [])
    assert empty["count"] == 0 and empty["min"] is None and histogram.quantile(empty, 0.5) is None


def test_merge_equals_histogram_of_all_values():
    rng = np.random.default_rng(0)
    parts = [rng.normal(0.3, 0.1, n).tolist() for n in (10, 500, 1, 77)]
    merged = histogram.merge([histogram.histogram("clip_score", p) for p in parts])
    whole = histogram.histogram("clip_score", sum(parts, []))
    assert merged["counts"] == whole["counts"] and merged["count"] == whole["count"] == 588
    assert merged["min"] == whole["min"] and merged["max"] == whole["max"]
    assert abs(merged["mean"] - np.mean(sum(parts, []))) < 1e-12


def test_quantiles_are_within_one_bin():
    values = np.random.default_rng(1).uniform(0, 400, 10_000)
    h = histogram.merge([histogram.histogram("caption_chars", values)])
    for q in (0.05, 0.5, 0.95):
        assert abs(histogram.quantile(h, q) - np.quantile(values, q)) <= 10  # bin width
