"""--where: expressions over manifest columns, parsed without eval."""

import re

import pyarrow as pa
import pytest

from mmcurate.pipelines.where import WhereError, parse
from mmcurate.schemas.record import MANIFEST_SCHEMA

TABLE = pa.table({"key": ["a", "b", "c", "d"], "clip_score": [0.1, 0.25, None, 0.5], "caption": ["x", "yyy", "zz", "wwww"],
                  "width": [10, 20, 30, 40], "reason": ["", "text.empty", "duplicate.near_image", ""]})


def keys(expr):
    return TABLE.filter(parse(expr, MANIFEST_SCHEMA)).column("key").to_pylist()


@pytest.mark.parametrize("expr, expected", [
    ("clip_score < 0.3", ["a", "b"]),
    ("0.2 < clip_score <= 0.5", ["b", "d"]),
    ("clip_score is None", ["c"]),
    ("clip_score is not None and not width > 15", ["a"]),
    ("len(caption) >= 3 or reason == 'duplicate.near_image'", ["b", "c", "d"]),
    ("reason in ['text.empty', 'duplicate.near_image']", ["b", "c"]),
    ("reason not in ('',)", ["b", "c"]),
    ("width * 2 - 10 > 50", ["d"]),
    ("-width < -25", ["c", "d"]),
])
def test_expressions_select_exactly(expr, expected):
    assert keys(expr) == expected


@pytest.mark.parametrize("expr, message", [
    ("nope > 1", "no such column"),
    ("width >", "not an expression"),
    ("__import__('os').system('x')", "not supported"),
    ("width is 3", "compares with None only"),
    ("width in 3", "needs a list"),
    ("width == [1]", "not supported"),
])
def test_bad_expressions_say_what_is_wrong(expr, message):
    with pytest.raises(WhereError, match=message):
        parse(expr, MANIFEST_SCHEMA)


def test_an_empty_text_counts_as_none_as_manifests_write_no_value():
    assert keys("reason is not None") == ["b", "c"] and keys("reason is None") == ["a", "d"]


@pytest.mark.parametrize("expr, why", [
    ("width >= '20'", "width is a number column, compared with a string: width >= '20'"),
    ("reason == 3", "reason is a text column, compared with a number: reason == 3"),
    ("len(caption) > 'x'", "len(caption) is a number, compared with a string: len(caption) > 'x'"),
])
def test_a_column_compared_with_a_value_of_another_kind_is_refused(expr, why):
    with pytest.raises(WhereError, match=re.escape(why)):
        parse(expr, MANIFEST_SCHEMA)
