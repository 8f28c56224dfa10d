"""Progress bars (tqdm on stderr). Where stderr is not a terminal (a log file, CI), a bar
writes a line every LOG_INTERVAL_S seconds rather than ten a second."""

from __future__ import annotations

import sys

LOG_INTERVAL_S = 30.0


def bar(*args, **kwargs):
    from tqdm import tqdm

    if not sys.stderr.isatty():
        kwargs.setdefault("mininterval", LOG_INTERVAL_S)
    return tqdm(*args, **kwargs)
