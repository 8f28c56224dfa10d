"""Stage 2, dedup: global, over slim metadata records only (never media bytes).

Exact kinds, applied in order, each over the survivors of the previous one:
  1. duplicate input keys (`input.duplicate_key`, the first in input order survives);
  2. identical original image bytes (`duplicate.exact_image`, the smallest key survives);
  3. optionally identical normalised captions (`duplicate.exact_caption`).
Output: decisions keyed by staging shard, (order, reason, dup_of), for finalize to join.
"""

from __future__ import annotations

import apache_beam as beam

from mmcurate.filters.dedup import by_input_order, by_key_then_order, split_group
from mmcurate.schemas.config import DedupConfig

DROPPED_TAG = "dropped"


class ResolveGroups(beam.DoFn):
    def __init__(self, reason: str, rank):
        self.reason, self.rank = reason, rank

    def process(self, element):
        _, records = element
        survivor, others = split_group(records, self.rank)
        yield survivor
        for r in others:
            yield beam.pvalue.TaggedOutput(DROPPED_TAG, (r["shard"], (tuple(r["order"]), self.reason, survivor["key"])))


def _dedup_step(kept, label: str, field: str, reason: str, rank):
    keyed = kept | f"{label}Key" >> beam.Map(lambda r, f=field: (r[f], r))
    if field != "key":  # rows without the value (e.g. no caption hash) are never grouped together
        keyed = keyed | f"{label}HasValue" >> beam.Filter(lambda kv: bool(kv[0]))
        passthrough = kept | f"{label}NoValue" >> beam.Filter(lambda r, f=field: not r[f])
    result = (
        keyed
        | f"{label}Group" >> beam.GroupByKey()
        | f"{label}Resolve" >> beam.ParDo(ResolveGroups(reason, rank)).with_outputs(DROPPED_TAG, main="kept")
    )
    survivors = result.kept if field == "key" else (result.kept, passthrough) | f"{label}Merge" >> beam.Flatten()
    return survivors, result[DROPPED_TAG]


class ExactDedup(beam.PTransform):
    """Slim kept records -> decisions (staging shard id, (order, reason, dup_of))."""

    def __init__(self, cfg: DedupConfig):
        super().__init__()
        self.cfg = cfg

    def expand(self, kept):
        decisions = []
        kept, dropped = _dedup_step(kept, "DupKey", "key", "input.duplicate_key", by_input_order)
        decisions.append(dropped)
        if self.cfg.mode != "none":
            kept, dropped = _dedup_step(kept, "ExactImage", "sha256", "duplicate.exact_image", by_key_then_order)
            decisions.append(dropped)
            if self.cfg.exact_caption:
                kept, dropped = _dedup_step(kept, "ExactCaption", "caption_sha256", "duplicate.exact_caption", by_key_then_order)
                decisions.append(dropped)
        return decisions | "AllDecisions" >> beam.Flatten()
