"""Diagnostics for the CLIP input path on a GPU machine: how fast each JPEG decoder is alone,
and how much of it survives while the model runs on the same GPU (the question for end to
end: does decoding compete with the encoders for the SMs?).

    python benchmarks/diag_decode.py [--seconds 4]

Prints images/s per decoder alone (decode, resize, crop, normalise: `pixels_batched`), then
the decoder and the model (ViT-B/32, fp16, chunks of
512) each running flat out on their own stream and thread at the same time. The host decoder
("cpu": libjpeg-turbo on threads) is also timed by thread count; without CUDA that is all
this prints.
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import threading
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from benchmarks.bench_clip import VIT_B_32, make_captions, make_jpegs  # noqa: E402
from mmcurate.filters import gpu_decode  # noqa: E402


def sync():
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def rate(fn, seconds: float, per_call: int) -> float:
    fn()
    sync()
    t, calls = time.perf_counter(), 0
    while time.perf_counter() - t < seconds:
        fn()
        calls += 1
    sync()
    return calls * per_call / (time.perf_counter() - t)


def host_decoder_by_threads(batches, seconds: float):
    """The "cpu" decoder alone (decode only, no copy to a device), by pool size."""
    cores = gpu_decode.host_cores()
    for threads in sorted({1, 2, max(1, cores // 2), cores}):
        dec = gpu_decode.HostDecoder(torch.device("cpu"), threads)
        state = {"i": 0}

        def step(dec=dec, state=state):
            out = dec.decode(batches[state["i"] % len(batches)])
            state["i"] += 1
            assert all(o is not None for o in out)

        print(f"{f'cpu decode alone, threads={threads} (img/s)':<52} {rate(step, seconds, len(batches[0])):>9.0f}", flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=4.0)
    p.add_argument("--batch", type=int, default=512)
    p.add_argument("--nvimgcodec", default="nvimgcodec-hw", choices=["nvimgcodec", "nvimgcodec-hw"], help="which nvImageCodec decoder to try (when installed)")
    args = p.parse_args()
    pool = make_jpegs(2048)
    bs = args.batch
    batches = [pool[i : i + bs] for i in range(0, len(pool), bs)]
    print(f"host cores: {gpu_decode.host_cores()}", flush=True)
    host_decoder_by_threads(batches, args.seconds)
    if not torch.cuda.is_available():
        return
    dev = torch.device("cuda")

    from clip.model import CLIP

    from mmcurate.filters.clip_score import ClipScorer

    scorer = ClipScorer.create(CLIP(**VIT_B_32).float().eval(), device="cuda", precision="fp16", chunk_size=bs, decoder="torchvision")
    pix, _ = scorer.pixels_batched(pool[:bs])
    tok = scorer.tokenize(make_captions(bs)).to(dev)
    model_stream = torch.cuda.Stream()

    def model_step():
        with torch.cuda.stream(model_stream), torch.inference_mode():
            img, txt = scorer.embed(pix, tok)
            (img * txt).sum(-1)

    print(f"{'model alone (pairs/s)':<52} {rate(model_step, args.seconds, bs):>9.0f}", flush=True)
    nv = gpu_decode.nvimgcodec_module()
    decoders = {name: gpu_decode.make_decoder(name, dev) for name in ("torchvision", "cpu", "mixed")}
    if nv is not None:
        # one hardware decoder per process: --nvimgcodec picks which
        decoders[args.nvimgcodec] = gpu_decode.make_decoder(args.nvimgcodec, dev)
        decoders["nvimgcodec-gpu"] = gpu_decode.make_decoder("nvimgcodec-gpu", dev)
    for name, dec in decoders.items():
        stream = torch.cuda.Stream()
        state = {"i": 0}

        prep = copy.copy(scorer)  # the same preprocessing with this decoder
        prep.jpeg = dec

        def decode_step(prep=prep, stream=stream, state=state):
            with torch.cuda.stream(stream):
                _, errors = prep.pixels_batched(batches[state["i"] % len(batches)])
                state["i"] += 1
            assert not any(errors)

        alone = rate(decode_step, args.seconds, bs)
        print(f"{name + ' decode+resize alone (img/s)':<52} {alone:>9.0f}", flush=True)
        # both flat out at once: the decoder in a thread, the model in this one
        stop, counts = threading.Event(), {"dec": 0}

        def decode_loop():
            while not stop.is_set():
                decode_step()
                counts["dec"] += bs

        model_step()
        torch.cuda.synchronize()
        th = threading.Thread(target=decode_loop)
        t = time.perf_counter()
        th.start()
        steps = 0
        while time.perf_counter() - t < args.seconds:
            model_step()
            steps += 1
        torch.cuda.synchronize()
        stop.set()
        th.join()
        torch.cuda.synchronize()
        wall = time.perf_counter() - t
        print(f"{name + ' together: model pairs/s, decode img/s':<52} {steps * bs / wall:>9.0f} {counts['dec'] / wall:>9.0f}", flush=True)
        # two threads decoding at once (does the decoder scale, or serialise behind a lock?)
        ths = [threading.Thread(target=lambda: [decode_step() for _ in range(8)]) for _ in range(2)]
        torch.cuda.synchronize()
        t = time.perf_counter()
        for th in ths:
            th.start()
        for th in ths:
            th.join()
        torch.cuda.synchronize()
        print(f"{name + ' decode, 2 threads (img/s)':<52} {16 * bs / (time.perf_counter() - t):>9.0f}", flush=True)
    import clip

    from mmcurate.filters import clip_tokens

    caps = make_captions(20000, seed=3)
    for label, fn in (("clip.tokenize", lambda: clip.tokenize(caps, truncate=True)), ("clip_tokens.tokenize", lambda: clip_tokens.tokenize(caps))):
        fn()
        t = time.perf_counter()
        fn()
        print(f"{label + ' (captions/s, one thread)':<52} {len(caps) / (time.perf_counter() - t):>9.0f}", flush=True)


if __name__ == "__main__":
    main()
