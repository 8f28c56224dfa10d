"""Connected components of the duplicate graph, labelled by the smallest node id.

Two paths, chosen at run time from the edge count, giving identical labels (the component
minimum is a unique fixpoint):
- up to `dedup.local_max_edges` edges: gathered on one worker and labelled by scipy's
  connected_components (seconds for millions of edges);
- above: min-label propagation in `dedup.max_rounds` batched rounds, the graph partitioned by
  node, so no worker holds more than its partition. Whatever has not converged after the last
  round (edges whose two ends still carry different labels) is a graph on labels, far smaller
  than the original; it is labelled on one worker and the result is applied to every node.
Output: (partition of node, (nodes, labels)) batches.
"""

from __future__ import annotations

import apache_beam as beam
import numpy as np
from apache_beam.metrics import Metrics

from mmcurate.filters.near_dup import component_labels
from mmcurate.pipelines.batches import id_buckets, split_arrays
from mmcurate.pipelines.ledger import Ledger
from mmcurate.schemas.config import DedupConfig

LOCAL, SPREAD = "local", "spread"


def _split(nodes: np.ndarray, labels: np.ndarray, parts: int):
    return split_arrays(id_buckets(nodes), parts, (nodes, labels))


class ChoosePath(beam.DoFn):
    def __init__(self, local_max_edges: int):
        self.local_max_edges = local_max_edges
        self.spread = Metrics.counter("mmcurate", "dedup.edges_labelled_in_rounds")

    def process(self, edges: dict, total: int):
        if total > self.local_max_edges:
            self.spread.inc(len(edges["a"]))
        yield beam.pvalue.TaggedOutput(LOCAL if total <= self.local_max_edges else SPREAD, edges)


def label_locally(edge_batches, parts: int):
    batches = list(edge_batches)
    if not batches:
        return
    nodes, labels = component_labels(np.concatenate([e["a"] for e in batches]), np.concatenate([e["b"] for e in batches]))
    yield from _split(nodes, labels, parts)


def adjacency(edges: dict, parts: int):
    """Both directions of each edge, routed to the partition of the source node."""
    src = np.concatenate([edges["a"], edges["b"]])
    dst = np.concatenate([edges["b"], edges["a"]])
    return split_arrays(id_buckets(src), parts, (src, dst))


def _concat_pairs(batches):
    batches = list(batches)
    if not batches:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.concatenate([x for x, _ in batches]), np.concatenate([y for _, y in batches])


def initial_labels(element):
    """Each node starts at min(itself, its neighbours)."""
    q, (src, dst) = element
    nodes, inverse = np.unique(src, return_inverse=True)
    labels = nodes.copy()
    np.minimum.at(labels, inverse, dst)
    yield q, (nodes, labels)


def send_labels(element, parts: int):
    """(partition, {"adj", "labels"}) -> messages (partition of dst, (dst, label of src))."""
    _, joined = element
    src, dst = _concat_pairs(joined["adj"])
    if not len(src):
        return
    nodes, labels = _concat_pairs(joined["labels"])
    order = np.argsort(nodes)
    nodes, labels = nodes[order], labels[order]
    yield from _split(dst, labels[np.searchsorted(nodes, src)], parts)


class UpdateLabels(beam.DoFn):
    """(partition, {"labels", "msgs"}) -> new labels (main) and, from the final check, the
    residual label pairs that still disagree (`residual`)."""

    def __init__(self, final: bool):
        self.final = final
        self.changed = Metrics.counter("mmcurate", "dedup.label_changes")
        self.residual = Metrics.counter("mmcurate", "dedup.residual_edges")

    def process(self, element):
        q, joined = element
        nodes, labels = _concat_pairs(joined["labels"])
        if not len(nodes):
            return
        order = np.argsort(nodes)
        nodes, labels = nodes[order], labels[order]
        to, msg = _concat_pairs(joined["msgs"])
        where = np.searchsorted(nodes, to)
        if self.final:
            differ = msg != labels[where]
            if differ.any():
                self.residual.inc(int(differ.sum()))
                yield beam.pvalue.TaggedOutput("residual", {"a": msg[differ], "b": labels[where][differ]})
            yield q, (nodes, labels)
            return
        new = labels.copy()
        np.minimum.at(new, where, msg)
        self.changed.inc(int((new != labels).sum()))
        yield q, (nodes, new)


def relabel(element, mapping):
    q, (nodes, labels) = element
    if mapping is not None and len(mapping[0]):
        keys, values = mapping
        where = np.clip(np.searchsorted(keys, labels), 0, len(keys) - 1)
        hit = keys[where] == labels
        labels = np.where(hit, values[where], labels)
    yield q, (nodes, labels)


def residual_mapping(batches):
    """Label pairs that disagree after the last round -> (sorted labels, final labels)."""
    batches = list(batches)
    if not batches:
        return None
    return component_labels(np.concatenate([b["a"] for b in batches]), np.concatenate([b["b"] for b in batches]))


class Components(beam.PTransform):
    """Edge batches {"a", "b", ...} -> (partition, (nodes, labels)). The ledger counts the
    shuffles (by default its own: counted, checked by no one)."""

    def __init__(self, cfg: DedupConfig, parts, ledger: Ledger | None = None):
        super().__init__()
        self.cfg, self.parts = cfg, parts
        self.ledger = ledger or Ledger("components")

    def expand(self, edges):
        parts, ledger = beam.pvalue.AsSingleton(self.parts), self.ledger
        total = edges | "EdgeCount" >> beam.Map(lambda e: len(e["a"])) | "EdgeTotal" >> beam.CombineGlobally(sum)
        paths = edges | "ChoosePath" >> beam.ParDo(ChoosePath(self.cfg.local_max_edges), total=beam.pvalue.AsSingleton(total)).with_outputs(LOCAL, SPREAD)
        gathered = ledger.group(paths[LOCAL] | "OneWorker" >> beam.Map(lambda e: (0, e)), "GatherEdges")
        local = gathered | "LabelLocally" >> beam.FlatMap(lambda kv, parts: label_locally(kv[1], parts), parts=parts)
        halves = paths[SPREAD] | "Adjacency" >> beam.FlatMap(adjacency, parts=parts)
        adj = ledger.group(halves, "GroupAdjacency") | "ConcatAdjacency" >> beam.MapTuple(lambda q, batches: (q, _concat_pairs(batches)))
        labels = adj | "InitialLabels" >> beam.FlatMap(initial_labels)
        residual = None
        for r in range(self.cfg.max_rounds + 1):
            final = r == self.cfg.max_rounds
            msgs = ledger.cogroup({"adj": adj, "labels": labels}, f"Join{r}") | f"Send{r}" >> beam.FlatMap(send_labels, parts=parts)
            updated = (
                ledger.cogroup({"labels": labels, "msgs": msgs}, f"Gather{r}")
                | f"Update{r}" >> beam.ParDo(UpdateLabels(final)).with_outputs("residual", main="labels")
            )
            labels = updated.labels
            if final:
                residual = updated.residual
        mapping = ledger.to_list(residual, "ResidualToOne") | "LabelResidual" >> beam.Map(residual_mapping)
        spread = labels | "ApplyResidual" >> beam.FlatMap(relabel, mapping=beam.pvalue.AsSingleton(mapping))
        return (local, spread) | "AllLabels" >> beam.Flatten()
