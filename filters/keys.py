"""Sample keys: deterministic, derived from the input, and safe as WebDataset keys.

WebDataset splits a member name at the first dot of its base name, so a key has no dot.
We keep `[A-Za-z0-9_-]`; a name that needs any other change gets a short hash of the
original appended, so `a.b` and `a_b` stay distinct keys.
"""

from __future__ import annotations

import hashlib
import re

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
MAX_KEY_CHARS = 120


def make_key(name: str) -> str:
    base = name.replace("\\", "/").strip("/").replace("/", "_")
    safe = _UNSAFE.sub("_", base)
    if safe == base and safe and len(safe) <= MAX_KEY_CHARS:
        return safe
    digest = hashlib.sha1(name.encode("utf-8", "surrogatepass")).hexdigest()[:10]
    return f"{safe[:MAX_KEY_CHARS - 11]}-{digest}" if safe else digest


def position_key(task: int, row: int) -> str:
    """Key of a table row without a key column: its position, sortable as a string."""
    return f"{task:05d}_{row:09d}"


def is_valid_key(key: str) -> bool:
    return bool(key) and len(key) <= MAX_KEY_CHARS and not _UNSAFE.search(key)


def stem_of(name: str) -> str:
    """Path without its final extension (`dir/a.b.jpg` -> `dir/a.b`)."""
    head, sep, tail = name.rpartition("/")
    stem = tail.rsplit(".", 1)[0] if "." in tail else tail
    return f"{head}{sep}{stem}"
