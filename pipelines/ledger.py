"""Shuffle ledgers: each shuffle of a stage counts what goes in and what comes out, and the
stage's output is held back until every count balances.

Why: Beam 2.77's local multi-process runner was seen to drop whole elements between two
stages at random, with no error and no log line (benchmarks/RESULTS.md, "A shuffle that loses
rows"). Here a lost element would be a row never staged, a duplicate kept, a decision never
applied or a shard left out of the index, all silently. Beam has no such check of its own.

Counting is cheap: a Map in the stage that makes the elements (so an element lost on its way
out of that stage is still counted), a Map in the stage that reads the groups, and one global
sum per ledger. The gate is a side input: nothing after it runs, so nothing is written,
unless the ledger balances; otherwise the run stops with `ShuffleLossError`, naming the shuffle.
A stage has one gate, before what it writes or hands on (not one after every shuffle, which
would stop the runner's fusion at each); a step between a lossy shuffle and the gate may
fail first on what is missing, and still nothing is written.
"""

from __future__ import annotations

import re
from typing import Callable

import apache_beam as beam


class ShuffleLossError(RuntimeError):
    """A shuffle gave back a different number of elements (or rows) than went in."""


LOSS_MARK = "so the runner lost or repeated data"


def is_shuffle_loss(error: BaseException) -> bool:
    """Whether a failed run stopped on a ledger (the runner may hand back a wrapped copy)."""
    while error is not None:
        if isinstance(error, ShuffleLossError) or LOSS_MARK in str(error):
            return True
        error = error.__cause__ or error.__context__
    return False


def loss_summary(error: BaseException) -> str:
    """'stage: shuffle X: n elements fewer came out than went in' out of a ledger's error."""
    found = re.search(r"([\w ]+: shuffle .*?), " + LOSS_MARK, str(error))
    return found.group(1).strip() if found else str(error).splitlines()[0]


def one(_value) -> int:
    return 1


def check_balances(balances: dict, stage: str) -> bool:
    """balances: (shuffle, unit) -> what went in minus what came out."""
    wrong = [(label, unit, n) for (label, unit), n in sorted(balances.items()) if n]
    if wrong:
        said = "; ".join(f"shuffle {label}: {abs(n):,} {unit[:-1] if abs(n) == 1 else unit} {'fewer' if n > 0 else 'more'} came out than went in"
                         for label, unit, n in wrong)
        raise ShuffleLossError(
            f"{stage}: {said}, {LOSS_MARK}; stopped before anything was written from it. "
            "Run again. (Beam 2.77's local multi-process runner was seen to drop whole elements of large "
            "shuffles at random: benchmarks/RESULTS.md, 'A shuffle that loses rows')"
        )
    return True


class SumByShuffle(beam.CombineFn):
    """(shuffle, unit, count) -> {(shuffle, unit): total}."""

    def create_accumulator(self):
        return {}

    def add_input(self, acc, item):
        label, unit, n = item
        acc[(label, unit)] = acc.get((label, unit), 0) + n
        return acc

    def merge_accumulators(self, accs):
        total = {}
        for acc in accs:
            for k, n in acc.items():
                total[k] = total.get(k, 0) + n
        return total

    def extract_output(self, acc):
        return acc


class Ledger:
    """The counts of one stage's shuffles. `group`, `cogroup` and `to_list` shuffle and count;
    `count_in` / `count_out` count a shuffle made elsewhere; `gate` holds a PCollection back
    until everything counted so far balances (counting after the first gate is a mistake)."""

    def __init__(self, stage: str):
        self.stage = stage  # as errors name it ("clip cutoff"); its steps are "ClipCutoffCounts" etc.
        self._steps = "".join(word.capitalize() for word in re.split(r"\W+", stage))
        self._counts = []
        self._ok = None

    def count_in(self, pcoll, label: str, size: Callable = one, unit: str = "elements", step: str = "In") -> None:
        self._add(pcoll | f"{label}{step}" >> beam.Map(lambda e: (label, unit, size(e))))

    def count_out(self, pcoll, label: str, size: Callable = one, unit: str = "elements") -> None:
        self._add(pcoll | f"{label}Out" >> beam.Map(lambda e: (label, unit, -size(e))))

    def group(self, keyed, label: str, size: Callable = one, unit: str = "elements"):
        """GroupByKey; size(value) says how much a value counts for (default: 1)."""
        grouped = keyed | label >> beam.GroupByKey()
        self.count_in(keyed, label, lambda kv: size(kv[1]), unit)
        self.count_out(grouped, label, lambda kv: sum(size(v) for v in kv[1]), unit)
        return grouped

    def cogroup(self, tagged: dict, label: str):
        """CoGroupByKey over {tag: (key, value)}; every value counts for 1."""
        grouped = tagged | label >> beam.CoGroupByKey()
        for tag, pcoll in tagged.items():
            self.count_in(pcoll, label, step=f"In{tag.capitalize()}")
        self.count_out(grouped, label, lambda kv: sum(sum(1 for _ in vs) for vs in kv[1].values()))
        return grouped

    def to_list(self, pcoll, label: str):
        """A singleton: the list of all of pcoll's elements."""
        listed = pcoll | label >> beam.combiners.ToList()
        self.count_in(pcoll, label)
        self.count_out(listed, label, len)
        return listed

    def gate(self, pcoll, label: str):
        if self._ok is None:
            if not self._counts:
                raise ValueError(f"ledger {self.stage}: nothing counted before its gate {label}")
            balances = (
                self._counts
                | f"{self._steps}Counts" >> beam.Flatten()
                | f"{self._steps}Balance" >> beam.CombineGlobally(SumByShuffle())
                | f"{self._steps}Check" >> beam.Map(check_balances, self.stage)
            )
            self._ok = beam.pvalue.AsSingleton(balances)
        return pcoll | label >> beam.Map(lambda e, ok: e, ok=self._ok)

    def _add(self, counts) -> None:
        if self._ok is not None:
            raise ValueError(f"ledger {self.stage}: a shuffle counted after its gate")
        self._counts.append(counts)
