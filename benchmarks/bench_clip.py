"""CLIP scoring throughput: ViT-B/32 architecture (random weights: speed does not depend on
them) on 256-px JPEG bytes, end to end (bytes -> scores) and model only (pre-decoded tensors
already on the device), in one run.

    python benchmarks/bench_clip.py                    # CPU here (small n), CUDA where present
    python benchmarks/bench_clip.py --n 40000 --batch 8192 --chunk 512 --prep-threads 3 \
        --tokenize-workers 2 --compile                 # the best one-process configuration on an H100

Prints pairs/s for both and their ratio; --json writes the figures to a file.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import random
import sys
import time

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from mmcurate.schemas.config import CLIP_DECODERS  # noqa: E402

WORDS = ("a the red blue green yellow dog cat man woman child riding horse beach sunset photo of in on with "
         "standing running near large small two three people street city car bike tree park water snow").split()
VIT_B_32 = dict(embed_dim=512, image_resolution=224, vision_layers=12, vision_width=768, vision_patch_size=32,
                context_length=77, vocab_size=49408, transformer_width=512, transformer_heads=8, transformer_layers=12)


def make_jpegs(n_unique: int, size: int = 256, seed: int = 0) -> list[bytes]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_unique):
        small = rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)
        img = Image.fromarray(small).resize((size, size), Image.Resampling.BICUBIC)
        noise = rng.normal(0, 8, (size, size, 3))
        img = Image.fromarray(np.clip(np.asarray(img, float) + noise, 0, 255).astype(np.uint8))
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=90)
        out.append(buf.getvalue())
    return out


def make_captions(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 16))) for _ in range(n)]


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def scorer_options(args) -> dict:
    return dict(tokenize_workers=args.tokenize_workers, prep_threads=args.prep_threads, decoder=args.decoder, decode_threads=args.decode_threads,
                host_decode_share=args.host_share,
                compile=args.compile_mode or args.compile)


def bench_end_to_end(scorer, images, captions, batch):
    for s in range(0, min(len(images), 2 * batch), batch):  # warm-up: handles, decoders, compiled shapes
        scorer.score(images[s : s + batch], captions[s : s + batch])
    sync(scorer.device)
    t = time.perf_counter()
    for s in range(0, len(images), batch):
        scorer.score(images[s : s + batch], captions[s : s + batch])
    sync(scorer.device)
    return len(images) / (time.perf_counter() - t)


def bench_model_only(scorer, images, captions, batch):
    """Pixels and tokens prepared and moved to the device beforehand; only the encoders,
    normalisation and cosine are timed."""
    pix, _ = (scorer.pixels_batched if scorer.device.type == "cuda" else scorer.pixels_cpu)(images[:batch])
    tok = scorer.tokenize(captions[:batch]).to(scorer.device)
    pix = pix.to(scorer.dtype)
    n = len(images)
    with torch.inference_mode():
        scorer.embed(pix, tok)
        sync(scorer.device)
        t = time.perf_counter()
        for _ in range(0, n, batch):
            img, txt = scorer.embed(pix, tok)
            (img * txt).sum(-1).cpu()
        sync(scorer.device)
    return n / (time.perf_counter() - t)


def bench_parts(scorer, images, captions, batch):
    parts = {}
    scorer.tokenize(captions[:batch])  # warm-up: starts the tokenizer processes, if any
    t = time.perf_counter()
    for s in range(0, len(captions), batch):
        scorer.tokenize(captions[s : s + batch])
    parts["tokenize_per_s"] = len(captions) / (time.perf_counter() - t)
    pixels = scorer.pixels_batched if scorer.device.type == "cuda" else scorer.pixels_cpu
    pixels(images[:batch])
    sync(scorer.device)
    t = time.perf_counter()
    for s in range(0, len(images), batch):
        pixels(images[s : s + batch])
    sync(scorer.device)
    parts["decode_preprocess_per_s"] = len(images) / (time.perf_counter() - t)
    return parts


def _process_share(rank, args, images, captions, barrier, results):
    """One worker process: its own model and scorer on the shared GPU, as a Beam worker
    process would have; times its share of the pairs after a common start."""
    from clip.model import CLIP

    from mmcurate.filters.clip_score import ClipScorer

    torch.manual_seed(0)
    scorer = ClipScorer.create(CLIP(**VIT_B_32).float().eval(), device="cuda", precision=args.precision, chunk_size=args.chunk[0], **scorer_options(args))
    batch = min(args.batch, len(images))
    scorer.score(images[:batch], captions[:batch])
    torch.cuda.synchronize()
    barrier.wait()
    t = time.time()
    for s in range(0, len(images), batch):
        scorer.score(images[s : s + batch], captions[s : s + batch])
    torch.cuda.synchronize()
    results.put((rank, t, time.time()))


def bench_processes(args, images, captions):
    import torch.multiprocessing as mp

    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(args.processes), ctx.Queue()
    share = len(images) // args.processes
    procs = [ctx.Process(target=_process_share, args=(r, args, images[r * share : (r + 1) * share], captions[r * share : (r + 1) * share], barrier, results))
             for r in range(args.processes)]
    for proc in procs:
        proc.start()
    spans = [results.get() for _ in procs]
    for proc in procs:
        proc.join()
    return share * args.processes / (max(e for _, _, e in spans) - min(s for _, s, _ in spans))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=None, help="pairs per timed pass (default: 40000 on CUDA, 512 on CPU)")
    p.add_argument("--batch", type=int, default=2048, help="pairs per score() call")
    p.add_argument("--chunk", type=int, nargs="+", default=[512], help="chunk sizes to try (pipelining granularity)")
    p.add_argument("--precision", default="fp16", choices=["fp16", "bf16", "fp32"])
    p.add_argument("--tokenize-workers", type=int, default=0, help="tokenizer processes (0: in the prep thread)")
    p.add_argument("--decoder", default="torchvision", choices=CLIP_DECODERS, help="JPEG decoder on CUDA (see filters/gpu_decode.py)")
    p.add_argument("--decode-threads", type=int, default=0, help="--decoder cpu/mixed: host threads decoding (0: one per core)")
    p.add_argument("--host-share", type=float, default=0.25, help="--decoder mixed: share of each chunk decoded on the host")
    p.add_argument("--prep-threads", type=int, default=1, help="chunks prepared concurrently ahead of the model")
    p.add_argument("--compile", action="store_true", help="torch.compile the encoders")
    p.add_argument("--compile-mode", default=None, help="torch.compile mode (implies --compile), e.g. max-autotune-no-cudagraphs")
    p.add_argument("--processes", type=int, default=0, help="> 0: also run end to end in this many worker processes sharing the GPU")
    p.add_argument("--device", default="auto")
    p.add_argument("--json", help="write the results here")
    args = p.parse_args(argv)

    from clip.model import CLIP

    from mmcurate.filters.clip_score import ClipScorer

    torch.manual_seed(0)
    model = CLIP(**VIT_B_32).float().eval()
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else ("cpu" if args.device == "auto" else args.device))
    n = args.n or (40000 if device.type == "cuda" else 512)
    batch = min(args.batch, n)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    pool = make_jpegs(min(n, 4096))
    images = [pool[i % len(pool)] for i in range(n)]
    captions = make_captions(n)
    info = {
        "date": time.strftime("%Y-%m-%d"), "device": torch.cuda.get_device_name(0) if device.type == "cuda" else platform.processor() or "cpu",
        "cpu_cores": os.cpu_count(), "torch": torch.__version__, "precision": args.precision if device.type == "cuda" else "fp32",
        "n": n, "batch": batch, "image_px": 256, "jpeg_kb": round(sum(map(len, pool)) / len(pool) / 1024, 1),
    }
    options = scorer_options(args)
    info.update(options)
    results = []
    for chunk in args.chunk:
        scorer = ClipScorer.create(model, device=str(device), precision=args.precision, chunk_size=chunk, **options)
        info["decoder_used"] = scorer.jpeg.name if scorer.jpeg else "PIL (CPU)"
        row = {"chunk": chunk, **bench_parts(scorer, images, captions, batch)}
        row["model_only_pairs_per_s"] = bench_model_only(scorer, images, captions, min(batch, chunk))
        row["end_to_end_pairs_per_s"] = bench_end_to_end(scorer, images, captions, batch)
        row["ratio"] = row["end_to_end_pairs_per_s"] / row["model_only_pairs_per_s"]
        results.append(row)
    if args.processes and device.type == "cuda":
        info["processes"] = args.processes
        info["end_to_end_multiprocess_pairs_per_s"] = bench_processes(args, images, captions)
        info["multiprocess_ratio"] = info["end_to_end_multiprocess_pairs_per_s"] / max(r["model_only_pairs_per_s"] for r in results)
    print(json.dumps(info))
    print(f"{'chunk':>6} {'tokenize/s':>11} {'decode+prep/s':>14} {'model-only/s':>13} {'end-to-end/s':>13} {'ratio':>6}")
    for r in results:
        print(f"{r['chunk']:>6} {r['tokenize_per_s']:>11.0f} {r['decode_preprocess_per_s']:>14.0f} {r['model_only_pairs_per_s']:>13.0f} {r['end_to_end_pairs_per_s']:>13.0f} {r['ratio']:>6.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"info": info, "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
