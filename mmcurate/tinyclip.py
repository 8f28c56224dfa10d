"""A tiny CLIP, trained in-repo on the demo's generated photos, so CLIP scoring runs offline.

The model is clip-anytorch's own ``clip.model.CLIP`` (a ViT image tower and the usual causal
text transformer) at toy size, trained contrastively (InfoNCE, learnable logit scale) on
image/caption pairs from :func:`mmcurate.pipelines.demo.photo` ("a red circle on the left of a
sky scene"). The saved file is a plain fp16 state dict, which ``clip.load(path, jit=False)``
loads (its JIT attempt fails and it falls back to ``torch.load`` + ``build_model``).

It knows colours, shapes, positions and scenes of the demo's drawings and nothing else: it is
for tests and the demo, not for curating real data.

    python -m mmcurate.tinyclip train [--out PATH] [--steps N] [--seed S]
    python -m mmcurate.tinyclip evaluate [PATH] [--n N] [--seed S]
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import random
import re
import sys
import time
import warnings
from importlib import resources

import numpy as np

# The model: clip.model.CLIP(**ARCH). build_model() infers all of it back from tensor shapes
# (heads = width // 64, so the widths are multiples of 64; vocab_size is the tokenizer's).
ARCH = dict(
    embed_dim=64,
    image_resolution=64, vision_layers=4, vision_width=64, vision_patch_size=8,
    context_length=32, vocab_size=49408, transformer_width=64, transformer_heads=1, transformer_layers=2,
)
ASSET_NAME = "tiny-clip.pt"
DEFAULT_STEPS = 1000
DEFAULT_POOL = 16_000
BATCH = 256
THREADS = 2  # fixed, so a rerun on another machine does the same float reductions

MEAN = (0.48145466, 0.4578275, 0.40821073)  # clip.clip._transform's Normalize
STD = (0.26862954, 0.26130258, 0.27577711)


def default_path() -> str:
    """Where the shipped model lies (inside the installed package)."""
    return str(resources.files("mmcurate").joinpath("assets", ASSET_NAME))


def _clip():
    with warnings.catch_warnings():  # clip imports pkg_resources, which warns on import
        warnings.simplefilter("ignore")
        import clip

    return clip


# ---------------------------------------------------------------------------------------------
# The domain: demo photos, preprocessed exactly like clip.clip._transform(n_px)
# ---------------------------------------------------------------------------------------------

_CROP = None


def _crop(img, n_px: int):
    """The geometric half of clip's _transform: bicubic resize of the short side, centre crop."""
    global _CROP
    if _CROP is None or _CROP[0] != n_px:
        tf = _clip().clip._transform(n_px)
        _CROP = (n_px, tf.transforms[0], tf.transforms[1])  # Resize(n_px, BICUBIC), CenterCrop(n_px)
    return _CROP[2](_CROP[1](img)).convert("RGB")


def to_tensor(u8):
    """uint8 HWC (or NHWC) arrays -> normalised float CHW tensors; the same ops as clip's
    ToTensor() + Normalize(), so the result is bit-identical to _transform on the cropped image."""
    import torch

    x = torch.from_numpy(np.array(u8, copy=True))  # writable, contiguous
    x = x.permute(*range(x.ndim - 3), x.ndim - 1, x.ndim - 3, x.ndim - 2).contiguous().float().div(255)
    shape = (3, 1, 1)
    return x.sub(torch.tensor(MEAN).view(shape)).div(torch.tensor(STD).view(shape))


def _size(rng: random.Random, kind: str) -> tuple[int, int]:
    w, h = rng.randrange(256, 640), rng.randrange(256, 640)  # the demo's sizes (demo.generate)
    if kind == "train" and rng.random() < 0.85:
        # Mostly smaller renderings of the same geometry: ~10x cheaper to draw, and the model sees
        # a wider range of noise and blur after the resize to n_px.
        s = rng.uniform(0.15, 0.5)
        w, h = max(32, round(w * s)), max(32, round(h * s))
    return w, h


def _sample(job: tuple[str, int, int, int]):
    """One pair: (uint8 n_px x n_px x 3 array, caption). Seeded by (kind, seed, index) alone, so
    the result does not depend on which worker draws it or in which order."""
    from mmcurate.pipelines.demo import photo

    kind, seed, i, n_px = job
    rng = random.Random(f"tinyclip-{kind}-{seed}-{i}")
    img, caption = photo(rng, _size(rng, kind))
    return np.asarray(_crop(img, n_px)), caption


def pairs(kind: str, n: int, seed: int, n_px: int, progress: bool = False, workers: int = THREADS):
    """n generated pairs as (uint8 array [n, n_px, n_px, 3], captions). kind 'train' or 'eval'
    (different seed streams, and eval uses the demo's own image sizes only)."""
    jobs = [(kind, seed, i, n_px) for i in range(n)]
    pool = None
    if workers > 1 and n >= 64 and "fork" in multiprocessing.get_all_start_methods():
        pool = multiprocessing.get_context("fork").Pool(workers)
        it = pool.imap(_sample, jobs, chunksize=max(1, min(64, n // (8 * workers))))
    else:
        it = map(_sample, jobs)
    if progress:
        from tqdm import tqdm

        it = tqdm(it, total=n, desc=f"{kind} pairs", unit="pair", file=sys.stderr)
    try:
        out = list(it)
    finally:
        if pool is not None:
            pool.close()
            pool.join()
    return np.stack([a for a, _ in out]), [c for _, c in out]


_CAPTION = None


def attributes(caption: str) -> tuple[str, ...] | None:
    """(colour, shape, position, scene) of a demo caption; None if it is not one."""
    global _CAPTION
    if _CAPTION is None:
        from mmcurate.pipelines import demo

        alt = lambda xs: "|".join(re.escape(x) for x in xs)  # noqa: E731
        _CAPTION = re.compile(
            rf"a ({alt(demo.COLORS)}) ({alt(demo.SHAPES)}) ({alt(demo.POSITIONS)}) of a ({alt(demo.SCENES)}) scene"
        )
    m = _CAPTION.fullmatch(caption)
    return m.groups() if m else None


# ---------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------


def _seed_everything(seed: int):
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(THREADS)
    torch.use_deterministic_algorithms(True)


def new_model():
    return _clip().model.CLIP(**ARCH)


def train(out_path: str | None = None, steps: int = DEFAULT_STEPS, seed: int = 0, pool: int = DEFAULT_POOL,
          batch: int = BATCH, lr: float = 2e-3, progress: bool = True) -> str:
    """Train the tiny CLIP from scratch and save it (fp16 state dict) to out_path (default: the
    package asset). Deterministic for a given (steps, seed, pool, batch, lr)."""
    import torch
    import torch.nn.functional as F

    clip = _clip()
    out_path = out_path or default_path()
    t0 = time.time()
    _seed_everything(seed)
    n_px = ARCH["image_resolution"]
    images, captions = pairs("train", pool, seed, n_px, progress=progress)
    vocab = sorted(set(captions))
    index = {c: k for k, c in enumerate(vocab)}
    cap_id = torch.tensor([index[c] for c in captions])
    tokens = clip.tokenize(vocab, context_length=ARCH["context_length"], truncate=True)
    # Drop the all-padding tail columns: with the causal mask the EOT features do not depend on
    # what follows, so this is the same function at a fraction of the text tower's cost.
    tokens = tokens[:, : int((tokens != 0).sum(1).max())]
    images = torch.from_numpy(images)  # uint8, normalised per batch

    model = new_model()
    model.train()
    no_decay = ("token_embedding", "positional_embedding", "class_embedding", "logit_scale")
    decay, rest = [], []
    for name, p in model.named_parameters():
        (rest if p.ndim < 2 or any(k in name for k in no_decay) else decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": rest, "weight_decay": 0.0}],
                            lr=lr, betas=(0.9, 0.98), eps=1e-6)
    warmup = max(1, steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / warmup if s < warmup else 0.5 * (1 + math.cos(math.pi * (s - warmup) / max(1, steps - warmup)))
    )
    gen = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(images), generator=gen)
    cursor = 0
    it = range(steps)
    if progress:
        from tqdm import tqdm

        it = tqdm(it, desc="train", unit="step", file=sys.stderr)
    for step in it:
        if cursor + batch > len(order):
            order, cursor = torch.randperm(len(images), generator=gen), 0
        idx = order[cursor: cursor + batch]
        cursor += batch
        x = to_tensor(images[idx].numpy())
        # One text row per distinct caption in the batch: image->text has exactly one positive,
        # text->image has every image drawn for that caption as positives (no false negatives).
        uniq, inverse = torch.unique(cap_id[idx], return_inverse=True)
        img = F.normalize(model.encode_image(x), dim=-1)
        txt = F.normalize(model.encode_text(tokens[uniq]), dim=-1)
        logits = model.logit_scale.exp() * img @ txt.t()  # [batch, uniq]
        target_t = F.one_hot(inverse, len(uniq)).t().float()
        target_t = target_t / target_t.sum(1, keepdim=True)
        loss = 0.5 * (F.cross_entropy(logits, inverse) + F.cross_entropy(logits.t(), target_t))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100))
        if progress and (step % 10 == 0 or step == steps - 1):
            it.set_postfix(loss=f"{loss.item():.3f}", scale=f"{model.logit_scale.exp().item():.1f}")

    state = {k: v.detach().half() if v.is_floating_point() else v for k, v in model.state_dict().items()}
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    torch.save(state, out_path)
    if progress:
        print(f"saved {out_path} ({os.path.getsize(out_path) / 1e6:.2f} MB) after {steps} steps "
              f"in {time.time() - t0:.0f} s", file=sys.stderr)
    return out_path


# ---------------------------------------------------------------------------------------------
# Evaluation
# ---------------------------------------------------------------------------------------------


def load(path: str | None = None):
    """(model, preprocess) on the CPU, through clip.load exactly as a user would load it."""
    clip = _clip()
    with warnings.catch_warnings():  # clip.load tries torch.jit.load first, which may warn
        warnings.simplefilter("ignore")
        model, preprocess = clip.load(path or default_path(), device="cpu", jit=False)
    return model.eval(), preprocess


def auc(pos, neg) -> float:
    """ROC AUC = P(pos > neg) + P(tie) / 2 (Mann-Whitney U with average ranks)."""
    pos, neg = np.asarray(pos, float).ravel(), np.asarray(neg, float).ravel()
    scores = np.concatenate([pos, neg])
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    ranks[order] = np.arange(1, len(scores) + 1)
    sorted_scores = scores[order]
    _, start, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    for s, c in zip(start, counts):  # average ranks over ties
        if c > 1:
            ranks[order[s: s + c]] = s + (c + 1) / 2
    u = ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2
    return float(u / (len(pos) * len(neg)))


def similarities(path: str | None = None, n: int = 500, seed: int = 1, model=None):
    """Cosine similarity matrix [n, n] of n held-out images (rows) and their captions (columns),
    plus the captions. The diagonal holds the matched pairs."""
    import torch

    clip = _clip()
    if model is None:
        model, _ = load(path)
    torch.set_num_threads(THREADS)
    images, captions = pairs("eval", n, seed, model.visual.input_resolution)
    with torch.no_grad():
        img = torch.cat([model.encode_image(to_tensor(images[i: i + 256])) for i in range(0, n, 256)])
        txt = model.encode_text(clip.tokenize(captions, context_length=model.context_length, truncate=True))
        img = img / img.norm(dim=-1, keepdim=True)
        txt = txt / txt.norm(dim=-1, keepdim=True)
    return (img @ txt.t()).numpy(), captions


def evaluate(path: str | None = None, n: int = 500, seed: int = 1, hard: bool = False, model=None) -> float:
    """ROC AUC of cosine(image, caption): matched held-out pairs against mismatched ones (each
    image with every other pair's caption that differs from its own in at least one attribute;
    hard=True: in exactly one). The held-out pairs come from a seed stream training never uses,
    at the demo's own image sizes."""
    return scores_auc(*similarities(path, n, seed, model), hard=hard)


def scores_auc(sims, captions, hard: bool = False) -> float:
    """AUC from similarities() output (see evaluate)."""
    attrs = [attributes(c) or (c,) for c in captions]
    diff = np.array([[sum(a != b for a, b in zip(x, y)) if len(x) == len(y) else 99 for y in attrs] for x in attrs])
    mask = (diff == 1) if hard else (diff >= 1)
    return auc(np.diag(sims), sims[mask])


# ---------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m mmcurate.tinyclip", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="train the tiny CLIP from scratch (deterministic)")
    t.add_argument("--out", default=None, help=f"where to save it (default: the package asset, {ASSET_NAME})")
    t.add_argument("--steps", type=int, default=DEFAULT_STEPS)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--pool", type=int, default=DEFAULT_POOL, help="generated training pairs")
    e = sub.add_parser("evaluate", help="ROC AUC of matched vs mismatched held-out pairs")
    e.add_argument("path", nargs="?", default=None)
    e.add_argument("--n", type=int, default=500)
    e.add_argument("--seed", type=int, default=1)
    a = ap.parse_args(argv)
    if a.cmd == "train":
        out = train(a.out, steps=a.steps, seed=a.seed, pool=a.pool)
        a.path, a.n, a.seed = out, 500, 1
    path = a.path or default_path()
    t0 = time.time()
    model, _ = load(path)
    sims, captions = similarities(model=model, n=a.n, seed=a.seed)
    score, hard = scores_auc(sims, captions), scores_auc(sims, captions, hard=True)
    print(f"{path}: AUC {score:.4f} (hard negatives, one attribute differs: {hard:.4f}) "
          f"on {a.n} held-out pairs (seed {a.seed}), {time.time() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
