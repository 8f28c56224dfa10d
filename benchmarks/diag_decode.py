"""Diagnostics for the CLIP input path on a GPU box: which JPEG decode path scales?
(GPU batched nvJPEG at several batch sizes, CPU torchvision decode across threads, PIL across
threads, and the tokenizer across processes.) Prints pairs/s for each."""

import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import torch
from torchvision.io import ImageReadMode, decode_jpeg

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from benchmarks.bench_clip import make_captions, make_jpegs  # noqa: E402

pool = make_jpegs(2048)
datas = [torch.frombuffer(bytearray(b), dtype=torch.uint8) for b in pool]
n = len(datas)


def timed(label, fn, reps=3):
    fn()
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(reps):
        fn()
    torch.cuda.synchronize()
    print(f"{label:<45} {reps * n / (time.perf_counter() - t):>10.0f} img/s", flush=True)


for bs in (64, 256, 1024, 2048):
    timed(f"gpu batched decode bs={bs}", lambda bs=bs: [decode_jpeg(datas[i : i + bs], mode=ImageReadMode.RGB, device="cuda") for i in range(0, n, bs)])
for threads in (4, 8, 16):
    ex = ThreadPoolExecutor(threads)
    timed(f"gpu decode bs=256 x {threads} threads", lambda ex=ex: list(ex.map(lambda i: decode_jpeg(datas[i : i + 256], mode=ImageReadMode.RGB, device="cuda"), range(0, n, 256))))
    timed(f"cpu torchvision decode x {threads} threads", lambda ex=ex: list(ex.map(lambda d: decode_jpeg(d, mode=ImageReadMode.RGB), datas)))
from PIL import Image  # noqa: E402
import io  # noqa: E402

ex = ThreadPoolExecutor(16)
timed("cpu PIL decode x 16 threads", lambda: list(ex.map(lambda b: Image.open(io.BytesIO(b)).convert("RGB").load(), pool)))

import clip  # noqa: E402
from concurrent.futures import ProcessPoolExecutor  # noqa: E402
from mmcurate.filters.clip_score import tokenize  # noqa: E402

caps = make_captions(20000)
for workers in (4, 8, 12):
    with ProcessPoolExecutor(workers) as pp:
        step = 20000 // (workers * 4)
        parts = [caps[i : i + step] for i in range(0, 20000, step)]
        list(pp.map(tokenize, parts[:workers], [77] * workers))
        t = time.perf_counter()
        list(pp.map(tokenize, parts, [77] * len(parts)))
        print(f"{'tokenize x ' + str(workers) + ' processes':<45} {20000 / (time.perf_counter() - t):>10.0f} captions/s", flush=True)
