import pytest

from mmcurate.filters.subtitles import (
    Clip,
    Cue,
    SubtitleError,
    clip_spans,
    cue_text,
    cues_outside,
    fixed_windows,
    given_clips,
    parse_srt,
    parse_subtitles,
    parse_vtt,
    plan_clips,
    span_seconds,
)

SRT = """\
1
00:00:01,000 --> 00:00:02,500
<i>Hello</i> there,
general {\\an8}Kenobi.

2
00:00:03.2 --> 00:00:04,05 X1:100 X2:200 Y1:10 Y2:20
<font color="#ffff00">fish &amp; chips</font>

3
00:01:00,000 --> 01:00:00,000
<b>long</b>
"""


def test_srt_index_markup_multiline_separators_and_position_hints():
    assert parse_srt(SRT) == [
        Cue(1.0, 2.5, "Hello there, general Kenobi."),
        Cue(3.2, 4.05, "fish & chips"),
        Cue(60.0, 3600.0, "long"),
    ]


def test_srt_bytes_bom_crlf_cr_and_no_index():
    data = "\ufeff1\r\n00:00:01,000 --> 00:00:02,000\r\nOne\r\n\r\n00:00:03,000 --> 00:00:04,000\r\nTwo\r\n"
    expected = [Cue(1.0, 2.0, "One"), Cue(3.0, 4.0, "Two")]
    assert parse_srt(data.encode("utf-8")) == expected
    assert parse_srt(data) == expected
    assert parse_srt(data.replace("\r\n", "\r").encode("utf-8")) == expected
    assert parse_srt("100:00:00,000 --> 100:00:01,000\nx") == [Cue(360000.0, 360001.0, "x")]


def test_srt_cp1252_fallback_and_utf8():
    data = "1\n00:00:01,000 --> 00:00:02,000\nCaf\u00e9 \u2013 d\u00e9j\u00e0 vu\n"
    assert parse_srt(data.encode("cp1252")) == [Cue(1.0, 2.0, "Caf\u00e9 \u2013 d\u00e9j\u00e0 vu")]
    assert parse_srt(data.encode("utf-8")) == [Cue(1.0, 2.0, "Caf\u00e9 \u2013 d\u00e9j\u00e0 vu")]
    # bytes undefined in cp1252 too: replaced, never an exception
    assert parse_srt(b"00:00:01,000 --> 00:00:02,000\nbad \x81\xff")[0].text == "bad \ufffd\u00ff"


@pytest.mark.parametrize(
    "data, cues",
    [
        pytest.param(  # sorted by (start, end); a cue whose text is only markup or nothing is skipped
            "1\n00:00:05,000 --> 00:00:06,000\nlate\n\n"
            "2\n00:00:01,000 --> 00:00:03,000\nfirst-long\n\n"
            "3\n00:00:01,000 --> 00:00:02,000\nfirst-short\n\n"
            "4\n00:00:07,000 --> 00:00:08,000\n<i> </i>{\\an8}\n\n"
            "5\n00:00:09,000 --> 00:00:10,000\n\n"
            "6\n00:00:11,000 --> 00:00:11,000\nzero\n",
            [Cue(1.0, 2.0, "first-short"), Cue(1.0, 3.0, "first-long"), Cue(5.0, 6.0, "late"), Cue(11.0, 11.0, "zero")],
            id="sorted-empty-text-skipped-zero-length-kept",
        ),
        pytest.param(  # a blank line inside a cue's text does not end the cue
            "1\n00:00:01,000 --> 00:00:02,000\nfirst line\n\n\nsecond <i>part</i>\n\n"
            "2\n00:00:03,000 --> 00:00:04,000\nnext cue\n\n"
            "00:00:05,000 --> 00:00:06,000\nno number\n\nstill it\n",
            [Cue(1.0, 2.0, "first line second part"), Cue(3.0, 4.0, "next cue"), Cue(5.0, 6.0, "no number still it")],
            id="blank-line-inside-a-cue",
        ),
    ],
)
def test_srt_cues(data, cues):
    assert parse_srt(data) == cues


@pytest.mark.parametrize("data", ["", "   ", "\n\r\n  \t\n", b"", b"\xef\xbb\xbf", b"\xef\xbb\xbf\r\n"])
def test_empty_files_have_no_cues(data):
    assert parse_srt(data) == []
    assert parse_vtt(data) == []


@pytest.mark.parametrize(
    "data, message",
    [
        ("1\n00:00:1,0 --> 00:00:02,000\nx\n", 'line 2: bad timestamp "00:00:1,0"'),
        ("1\n00:00:01,000 --> 00:00:02,000\nok\n\n2\n00:00:03,000 -> 00:00:04,000\nx\n",
         'line 6: expected "start --> end", got "00:00:03,000 -> 00:00:04,000"'),
        ("Hello\n\n1\n00:00:01,000 --> 00:00:02,000\nok\n", 'line 1: expected "start --> end", got "Hello"'),
        ("1\n00:00:01,000 --> 00:00:02,000\nok\n\n7\n", "line 5: cue has no timing line"),
        ("00:00:05,000 --> 00:00:04,000\nx\n", "line 1: end 00:00:04,000 before start 00:00:05,000"),
        ("1\n-00:00:01,000 --> 00:00:02,000\nx\n", 'line 2: negative time "-00:00:01,000"'),
        ("1\n00:61:01,000 --> 00:62:02,000\nx\n", 'line 2: bad timestamp "00:61:01,000"'),
        ("1\n00:00:01,0000 --> 00:00:02,000\nx\n", 'line 2: bad timestamp "00:00:01,0000"'),
        ("1\n00:01.000 --> 00:02.000\nx\n", 'line 2: bad timestamp "00:01.000"'),  # hours required in SRT
        ("1\r\n00:00:01,000 --> 00:00:02,000\r\nok\r\n\r\n2\r\nbroken\r\n",
         'line 6: expected "start --> end", got "broken"'),
    ],
)
def test_malformed_srt_names_the_line(data, message):
    with pytest.raises(SubtitleError) as e:
        parse_srt(data)
    assert str(e.value) == message


VTT = """\
WEBVTT - a title
Kind: captions
Language: en

NOTE this is a comment
spanning two lines

STYLE
::cue { color: yellow }

REGION
id:fred width:40%

intro
00:01.000 --> 00:02.500 align:start position:10%
<v Roger>Hi <c.yellow>there</c></v>

00:00:03.000 --> 00:00:05.000
one <00:00:03.500>two <00:00:04.000><b>three</b>
second line &lt;tag&gt;&nbsp;end

NOTE
00:00:09.000 --> 00:00:10.000
inside a note

1:00:00.000 --> 1:00:01.000 line:0
last
"""


def test_vtt_header_blocks_identifiers_settings_and_inline_markup():
    assert parse_vtt(VTT) == [
        Cue(1.0, 2.5, "Hi there"),
        Cue(3.0, 5.0, "one two three second line <tag> end"),
        Cue(3600.0, 3601.0, "last"),
    ]


def test_vtt_bom_crlf_bytes():
    data = "\ufeffWEBVTT\r\n\r\n00:00.500 --> 00:01.000\r\nx\r\n".encode("utf-8")
    assert parse_vtt(data) == [Cue(0.5, 1.0, "x")]
    assert parse_vtt("WEBVTT") == []


@pytest.mark.parametrize(
    "data, message",
    [
        ("1\n00:00:01,000 --> 00:00:02,000\nx\n", "line 1: missing WEBVTT header"),
        ("WEBVTTX\n\n00:01.000 --> 00:02.000\nx\n", "line 1: missing WEBVTT header"),
        ("\nWEBVTT\n\n00:01.000 --> 00:02.000\nx\n", "line 1: missing WEBVTT header"),
        ("WEBVTT\n\n00:01.000 --> 00:02.000\nx\n\n00:03.000 --> 00:02.000\ny\n",
         "line 6: end 00:02.000 before start 00:03.000"),
        ("WEBVTT\n\nid\n00:01.00x --> 00:02.000\nx\n", 'line 4: bad timestamp "00:01.00x"'),
        ("WEBVTT\n\nid\nno timing\n", 'line 4: expected "start --> end", got "no timing"'),
        ("WEBVTT\n\n00:01.000 --> 00:02.000\nx\n\nlonely-id\n", "line 6: cue has no timing line"),
    ],
)
def test_malformed_vtt_names_the_line(data, message):
    with pytest.raises(SubtitleError) as e:
        parse_vtt(data)
    assert str(e.value) == message


def test_parse_subtitles_dispatches_on_extension():
    assert parse_subtitles("00:00:01,000 --> 00:00:02,000\nx", "SRT") == [Cue(1.0, 2.0, "x")]
    assert parse_subtitles(b"WEBVTT\n\n00:01.000 --> 00:02.000\nx", "vtt") == [Cue(1.0, 2.0, "x")]
    assert parse_subtitles(b"WEBVTT\n\n00:01.000 --> 00:02.000\nx", ".Vtt") == [Cue(1.0, 2.0, "x")]
    with pytest.raises(SubtitleError, match='unknown subtitle format "ass"'):
        parse_subtitles("", "ass")


def test_cue_text_strips_markup():
    assert cue_text("<i>a</i>\n<b>b</b>  <u>c</u>") == "a b c"
    assert cue_text('<font face="Arial" color="#fff">x</font>') == "x"
    assert cue_text("{\\an8}{\\i1}top{\\i0} line") == "top line"
    assert cue_text("<c.yellow.bg_blue>a</c> <00:00:01.500>b <01:02.000>c") == "a b c"
    assert cue_text("{\\p1}m 0 0 l 100 0 100 100 0 100{\\p0}shape gone") == "shape gone"
    assert cue_text("one\\Ntwo\\hthree") == "one two three"
    assert cue_text("&amp; &lt;i&gt; &nbsp; &quot;q&quot;") == '& <i> "q"'
    assert cue_text("1 < 2 and 3 > 2") == "1 < 2 and 3 > 2"
    assert cue_text("  \n\t ") == ""


def _plan(cues, duration, merge_gap=0.0, min_clip=0.0, max_clip=100.0, padding=0.0):
    return plan_clips(cues, duration, merge_gap=merge_gap, min_clip=min_clip, max_clip=max_clip,
                      padding=padding)


def test_plan_merges_by_gap_and_overlap():
    cues = [Cue(0.0, 2.0, "a"), Cue(2.4, 3.0, "b"), Cue(4.0, 5.0, "c"), Cue(4.5, 6.0, "d"),
            Cue(6.0, 6.0, "e")]
    assert _plan(cues, 10.0, merge_gap=0.5) == [Clip(0.0, 3.0, "a b"), Clip(4.0, 6.0, "c d e")]
    # gap 0: only overlapping cues merge; touching and zero-length ones stay separate
    assert _plan(cues, 10.0) == [
        Clip(0.0, 2.0, "a"), Clip(2.4, 3.0, "b"), Clip(4.0, 6.0, "c d"), Clip(6.0, 6.0, "e"),
    ]
    # a cue inside the group does not shorten it
    assert _plan([Cue(0.0, 5.0, "a"), Cue(1.0, 2.0, "b")], 10.0) == [Clip(0.0, 5.0, "a b")]
    # gap exactly merge_gap does not merge (strictly less than)
    assert _plan([Cue(0.0, 1.0, "a"), Cue(1.5, 2.0, "b")], 10.0, merge_gap=0.5) == [
        Clip(0.0, 1.0, "a"), Clip(1.5, 2.0, "b"),
    ]


def test_cues_wholly_outside_the_media_are_counted_as_plan_leaves_them_out():
    cues = [Cue(-2.0, 0.0, "before"), Cue(-1.0, 0.5, "straddles the start"), Cue(9.0, 11.0, "straddles the end"),
            Cue(10.0, 12.0, "at the end"), Cue(15.0, 16.0, "past it")]
    assert [c.text for c in _plan(cues, 10.0)] == ["straddles the start", "straddles the end"]
    assert cues_outside(cues, 10.0) == 3 and cues_outside(cues, 20.0) == 1 and cues_outside([], 10.0) == 0


def test_plan_sorts_unsorted_input():
    cues = [Cue(5.0, 6.0, "b"), Cue(1.0, 2.0, "a")]
    assert _plan(cues, 10.0) == [Clip(1.0, 2.0, "a"), Clip(5.0, 6.0, "b")]


def test_plan_padding_is_clamped_and_never_overlaps():
    cues = [Cue(0.5, 2.0, "a"), Cue(3.0, 4.0, "b"), Cue(9.0, 9.8, "c")]
    assert _plan(cues, 10.0, padding=1.0) == [
        Clip(0.0, 3.0, "a"), Clip(3.0, 5.0, "b"), Clip(8.0, 10.0, "c"),
    ]


def test_plan_drops_cues_outside_and_clamps():
    cues = [Cue(-2.0, 0.0, "ends at zero"), Cue(-1.0, 6.0, "clamped at 0"), Cue(7.0, 12.0, "clamped at end"),
            Cue(10.0, 11.0, "at duration"), Cue(20.0, 21.0, "after")]
    assert _plan(cues, 10.0) == [Clip(0.0, 6.0, "clamped at 0"), Clip(7.0, 10.0, "clamped at end")]
    assert _plan([Cue(0.0, 0.5, "x")], 0.0) == []
    assert _plan([], 10.0) == []


def test_plan_splits_long_clips_into_equal_parts_with_the_whole_text():
    clips = _plan([Cue(10.0, 80.0, "long")], 100.0, max_clip=30.0)
    assert [c.text for c in clips] == ["long"] * 3
    assert [c.too_short for c in clips] == [False] * 3
    assert clips[0].start == 10.0 and clips[-1].end == 80.0
    for a, b in zip(clips, clips[1:]):
        assert a.end == b.start
    assert [c.end - c.start for c in clips] == pytest.approx([70 / 3] * 3, abs=1e-9)
    # exactly max_clip (or a multiple of it) is not split further
    assert _plan([Cue(0.0, 30.0, "x")], 100.0, max_clip=30.0) == [Clip(0.0, 30.0, "x")]
    assert _plan([Cue(0.0, 60.0, "x")], 100.0, max_clip=30.0) == [Clip(0.0, 30.0, "x"), Clip(30.0, 60.0, "x")]
    assert len(_plan([Cue(0.0, 0.6, "x")], 1.0, max_clip=0.2)) == 3


def test_plan_marks_too_short():
    cues = [Cue(0.0, 0.5, "short"), Cue(2.0, 3.0, "exact"), Cue(5.0, 5.0, "zero")]
    assert _plan(cues, 10.0, min_clip=1.0) == [
        Clip(0.0, 0.5, "short", too_short=True),
        Clip(2.0, 3.0, "exact"),
        Clip(5.0, 5.0, "zero", too_short=True),
    ]
    # within the epsilon counts as long enough
    assert not _plan([Cue(0.0, 0.9999999, "x")], 10.0, min_clip=1.0)[0].too_short


def test_fixed_windows():
    assert fixed_windows(25.0, 10.0, 1.0) == [Clip(0.0, 10.0, ""), Clip(10.0, 20.0, ""), Clip(20.0, 25.0, "")]
    assert fixed_windows(20.0, 10.0, 1.0) == [Clip(0.0, 10.0, ""), Clip(10.0, 20.0, "")]
    assert fixed_windows(20.5, 10.0, 1.0) == [
        Clip(0.0, 10.0, ""), Clip(10.0, 20.0, ""), Clip(20.0, 20.5, "", too_short=True),
    ]
    assert fixed_windows(0.5, 10.0, 1.0) == [Clip(0.0, 0.5, "", too_short=True)]
    assert fixed_windows(0.0, 10.0, 1.0) == []
    assert fixed_windows(-1.0, 10.0, 1.0) == []


def test_nonpositive_limits_are_rejected():
    with pytest.raises(ValueError):
        fixed_windows(10.0, 0.0, 1.0)
    with pytest.raises(ValueError):
        _plan([Cue(0.0, 1.0, "x")], 10.0, max_clip=0.0)


# --- clip spans a table gives (--clips-col) ---------------------------------------------------

@pytest.mark.parametrize("value, seconds", [
    (12, 12.0), (2.5, 2.5), ("7.25", 7.25), (" 0:01:02.5 ", 62.5), ("01:02", 62.0), ("1:00:00", 3600.0), ("00:00:03.040", 3.04),
])
def test_span_seconds(value, seconds):
    assert span_seconds(value) == pytest.approx(seconds, abs=1e-9)


@pytest.mark.parametrize("value, message", [
    ("abc", "'abc' is not a time (seconds, or H:MM:SS.fff)"), (True, "True is not a time (seconds, or H:MM:SS.fff)"),
    (None, "None is not a time (seconds, or H:MM:SS.fff)"), (-1, "-1 is not a time >= 0"), (float("nan"), "nan is not a time >= 0"),
])
def test_span_seconds_refuses(value, message):
    with pytest.raises(ValueError) as e:
        span_seconds(value)
    assert str(e.value) == message


@pytest.mark.parametrize("value, spans", [
    ([[0, 1.5], [2, 3]], [(0.0, 1.5), (2.0, 3.0)]),
    ([0, 1.5], [(0.0, 1.5)]),  # one pair
    ('[["0:00:01.000", "0:00:02.500"], [4, 5]]', [(1.0, 2.5), (4.0, 5.0)]),  # csv: JSON text
    ("[]", []),
])
def test_clip_spans(value, spans):
    assert clip_spans(value) == spans


@pytest.mark.parametrize("value, message", [
    ("[[1, 2], [3]]", "span 1: [3] is not a [start, end] pair"),
    ([[1, 2], [5, 4]], "span 1: it ends at 4 s, not after its start at 5 s"),
    ([["a", 2]], "span 0: 'a' is not a time (seconds, or H:MM:SS.fff)"),
    ("1-2", "'1-2' is not a JSON list of [start, end] spans"),
    (7, "7 is not a list of [start, end] spans"),
    ({"start": 1, "end": 2}, "{'start': 1, 'end': 2} is not a list of [start, end] spans"),
])
def test_clip_spans_name_what_is_wrong(value, message):
    with pytest.raises(ValueError) as e:
        clip_spans(value)
    assert str(e.value) == message


def test_given_clips_are_cut_as_given_in_their_order():
    spans = [Cue(5.0, 6.0, "c"), Cue(0.5, 3.0, "a"), Cue(2.9, 3.1, "b"), Cue(9.0, 12.0, "d"), Cue(12.0, 13.0, "e")]
    assert given_clips(spans, duration=10.0, min_clip=0.5) == [
        Clip(5.0, 6.0, "c"),  # not sorted: clip i is span i
        Clip(0.5, 3.0, "a"),  # overlaps the next one: not merged
        Clip(2.9, 3.1, "b", too_short=True),
        Clip(9.0, 10.0, "d"),  # clamped to the video
        Clip(12.0, 13.0, "e", outside=True),
    ]


def test_a_malformed_cue_is_left_out_when_asked_and_the_next_is_marked():
    data = ("1\n00:00:01,000 --> 00:00:02,000\none\n\n2\n00:00:02,x00 --> 00:00:02,900\nbroken\n\n"
            "3\n00:00:03,000 --> 00:00:04,000\nthree\n\n4\n00:00:06,000 --> 00:00:05,000\nbackwards\n")
    with pytest.raises(SubtitleError, match='^line 6: bad timestamp "00:00:02,x00"$'):
        parse_srt(data)  # strict unless given a list
    skipped = []
    assert parse_srt(data, skipped) == [Cue(1.0, 2.0, "one"), Cue(3.0, 4.0, "three", follows_skipped=True)]
    assert skipped == ['line 6: bad timestamp "00:00:02,x00"', "line 14: end 00:00:05,000 before start 00:00:06,000"]
    vtt = "WEBVTT\n\n00:01.000 --> 00:02.000\nx\n\nid\nno timing\n\n00:03.000 --> 00:04.000\ny\n"
    skipped = []
    assert parse_subtitles(vtt, "vtt", skipped) == [Cue(1.0, 2.0, "x"), Cue(3.0, 4.0, "y", follows_skipped=True)]
    assert skipped == ['line 7: expected "start --> end", got "no timing"']


def test_a_file_with_no_readable_cue_fails_even_when_skipping():
    skipped = []
    with pytest.raises(SubtitleError, match=r'^line 2: bad timestamp "x" \(and 1 more malformed cues; none is readable\)$'):
        parse_srt("1\nx --> 00:00:01,000\na\n\n2\n00:00:03,000 --> 00:00:02,000\nb\n", skipped)
    with pytest.raises(SubtitleError, match="^line 1: missing WEBVTT header$"):  # the file's header is no cue
        parse_vtt("00:01.000 --> 00:02.000\nx\n", [])
    assert parse_srt("", []) == []  # an empty file is no error


def test_clips_are_not_merged_across_a_skipped_cue():
    cues = [Cue(1.0, 2.0, "one"), Cue(2.2, 3.0, "two", follows_skipped=True), Cue(2.9, 4.0, "overlap", follows_skipped=True)]
    clips = plan_clips(cues, 10.0, merge_gap=0.5, min_clip=0.0, max_clip=30.0, padding=0.0)
    # 0.2 s apart would merge, but a malformed cue lay between: its words are in neither text;
    # an overlapping cue still merges (the two are heard at once)
    assert [(c.start, c.end, c.text) for c in clips] == [(1.0, 2.0, "one"), (2.2, 4.0, "two overlap")]
    unmarked = plan_clips([Cue(1.0, 2.0, "one"), Cue(2.2, 3.0, "two")], 10.0, merge_gap=0.5, min_clip=0.0, max_clip=30.0, padding=0.0)
    assert [(c.start, c.end, c.text) for c in unmarked] == [(1.0, 3.0, "one two")]
