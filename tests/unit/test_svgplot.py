"""The report's SVG charts: one bar per bin or category, sizes proportional to the counts,
every text escaped (the SVG must parse as XML with the hostile label intact as text)."""

import xml.etree.ElementTree as ET

import pytest

from mmcurate.pipelines import svgplot

HOSTILE = '<script>alert("x")</script> & </svg>'


def bars_of(svg: str) -> list[ET.Element]:
    return [e for e in ET.fromstring(svg).iter("rect") if "bar" in e.get("class", "").split()]


def test_histogram_has_one_bar_per_bin_with_heights_proportional_to_counts():
    counts = [0, 3, 6, 1, 12]
    bars = bars_of(svgplot.histogram([0, 1, 2, 3, 4, 5], counts, xlabel="words"))
    assert [int(b.get("data-count")) for b in bars] == counts
    heights = [float(b.get("height")) for b in bars]
    assert heights[0] == 0
    assert heights == pytest.approx([c / max(counts) * heights[-1] for c in counts], abs=0.02)
    xs = [float(b.get("x")) for b in bars]
    assert xs == sorted(xs)  # bins left to right


def test_histogram_rejects_edges_that_do_not_bound_the_bins():
    with pytest.raises(ValueError):
        svgplot.histogram([0, 1, 2], [1, 2, 3])


def test_bar_charts_are_proportional_and_escape_their_text():
    labels, values = [HOSTILE, "b", "c"], [10, 5, 0]
    vertical = bars_of(svgplot.bars(labels, values, xlabel=HOSTILE, ylabel=HOSTILE))
    assert [float(b.get("height")) for b in vertical] == pytest.approx([2 * float(vertical[1].get("height")), float(vertical[1].get("height")), 0], abs=0.02)
    horizontal = bars_of(svgplot.hbars(labels, values, classes=["failed", "dropped", "dropped"]))
    assert [float(b.get("width")) for b in horizontal] == pytest.approx([2 * float(horizontal[1].get("width")), float(horizontal[1].get("width")), 0], abs=0.02)
    assert horizontal[0].get("class") == "bar failed"
    for svg in (svgplot.bars(labels, values, xlabel=HOSTILE, ylabel=HOSTILE), svgplot.hbars(labels, values)):
        assert "<script" not in svg and "&lt;script&gt;" in svg
        root = ET.fromstring(svg)  # well-formed: the label's </svg> did not end the chart
        assert not list(root.iter("script"))
        assert any(HOSTILE in (e.text or "") for e in root.iter() if e.tag in ("text", "title"))  # shown as text


def test_many_categories_thin_out_their_labels_not_their_bars():
    labels = [f"{i:05d}" for i in range(300)]
    svg = svgplot.bars(labels, list(range(300)))
    assert len(bars_of(svg)) == 300
    ticks = [t.text for t in ET.fromstring(svg).iter("text") if t.get("class") == "tick" and t.text in labels]
    assert 2 <= len(ticks) < 40


def test_ticks_and_numbers():
    assert svgplot.nice_ticks(0, 47) == [0, 10, 20, 30, 40]
    assert svgplot.nice_ticks(-1, 1) == [-1, -0.5, 0, 0.5, 1]
    assert svgplot.nice_ticks(3, 3) == [3, 3.2, 3.4, 3.6, 3.8, 4]
    assert [svgplot.fmt(v) for v in (0, 12, 0.25, 1234, 262144, 3.5e6)] == ["0", "12", "0.25", "1.23k", "262k", "3.5M"]
