"""Smoke training: a freshly initialised tiny CLIP trained on an output folder's shards through
mmcurate.loader, to show that curated shards feed a training loop end to end.

    python -m mmcurate.train OUT [--steps 40] [--batch-size 32] [--split train] [--workers 0]

It prints the loss as it goes; on the demo's shards it falls well below its starting value
(about log(batch size)) within a few dozen steps. The model is mmcurate.tinyclip's architecture
(64 px images, 32-token captions); the result is not saved: this checks the data path, it
does not make a model worth keeping.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from statistics import mean
from typing import Callable


def clip_loss(model, images, tokens):
    """Symmetric InfoNCE. A caption repeated in the batch (the demo has few distinct captions,
    and resampling can draw a sample twice) is one text whose positives are all its images, so
    no matching pair is pushed apart."""
    import torch
    import torch.nn.functional as F

    texts, inverse = torch.unique(tokens, dim=0, return_inverse=True)
    img = F.normalize(model.encode_image(images), dim=-1)
    txt = F.normalize(model.encode_text(texts), dim=-1)
    logits = model.logit_scale.exp() * img @ txt.t()  # [images, distinct texts]
    text_targets = F.one_hot(inverse, len(texts)).t().float()
    text_targets = text_targets / text_targets.sum(1, keepdim=True)
    return 0.5 * (F.cross_entropy(logits, inverse) + F.cross_entropy(logits.t(), text_targets))


def train_clip(out_dir: str, steps: int = 40, batch_size: int = 32, lr: float = 1e-3, seed: int = 0,
               split: str | None = None, num_workers: int = 0,
               log: Callable[[int, float], None] | None = None) -> list[float]:
    """Train a new tiny CLIP for `steps` batches drawn with replacement from the output's shards
    (all kept samples, or one split); returns the loss of every step. Deterministic for a seed
    (it fixes torch's threads and seeds, as mmcurate.tinyclip's training does)."""
    import torch

    from mmcurate import tinyclip
    from mmcurate.loader import loader

    tinyclip._seed_everything(seed)
    model = tinyclip.new_model().train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    batches = loader(out_dir, split=split, batch_size=batch_size, image_size=tinyclip.ARCH["image_resolution"],
                     context_length=tinyclip.ARCH["context_length"], resampled=True, seed=seed,
                     partial_batches=False, num_workers=num_workers).with_epoch(steps)
    losses = []
    for step, batch in enumerate(batches):
        loss = clip_loss(model, batch["image"], batch["text"])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100))
        losses.append(loss.item())
        if log:
            log(step, losses[-1])
    return losses


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m mmcurate.train", description=__doc__.split("\n\n")[0])
    ap.add_argument("out", help="an mmcurate output folder (local, gs://, s3://)")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--split", default=None, help="train on this split only (default: every kept sample)")
    ap.add_argument("--workers", type=int, default=0, help="DataLoader worker processes")
    a = ap.parse_args(argv)
    every = max(1, a.steps // 10)

    def log(step: int, loss: float) -> None:
        if step % every == 0 or step == a.steps - 1:
            print(f"step {step + 1:5d}  loss {loss:.4f}", flush=True)

    t0 = time.time()
    losses = train_clip(a.out, a.steps, a.batch_size, a.lr, a.seed, a.split, a.workers, log)
    k = max(1, min(8, len(losses) // 4))
    print(f"{len(losses)} steps in {time.time() - t0:.1f} s: mean loss of the first {k} steps "
          f"{mean(losses[:k]):.4f}, of the last {k} {mean(losses[-k:]):.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
