"""CLIP scoring: preprocessing, tokenisation and the score itself (no Beam, no files).

score = cosine similarity of the L2-normalised image and text embeddings (LAION semantics).

Two preprocessing paths:
  - CPU: clip's own `_transform` on PIL images, so scores equal clip-anytorch's
    `encode_image(preprocess(img))` / `encode_text(tokenize(caption))` exactly.
  - CUDA: JPEGs decoded on the device in one batched nvJPEG call
    (`torchvision.io.decode_jpeg(list, device="cuda")`), then resize (bicubic, antialiased),
    centre crop and normalisation as batched tensor ops; non-JPEG bytes fall back to PIL.
A batch is split into chunks and pipelined: while the GPU encodes chunk i, a worker thread
tokenises chunk i+1 and copies its bytes to the device on a side stream.
"""

from __future__ import annotations

import warnings

import collections
import io
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from mmcurate.filters import clip_forward

# clip-anytorch imports pkg_resources, which warns on every import; nothing for a user to act on
warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)

MEAN = (0.48145466, 0.4578275, 0.40821073)
STD = (0.26862954, 0.26130258, 0.27577711)
JPEG_MAGIC = b"\xff\xd8"


def convert_weights(model: torch.nn.Module, dtype: torch.dtype) -> torch.nn.Module:
    """clip's own `convert_weights`, for any dtype: matmul and conv weights only; LayerNorms
    stay float32 (clip's LayerNorm computes in float32 and expects float32 weights)."""
    if dtype == torch.float32:
        return model

    def cast(m):
        if isinstance(m, (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Linear)):
            m.weight.data = m.weight.data.to(dtype)
            if m.bias is not None:
                m.bias.data = m.bias.data.to(dtype)
        if isinstance(m, torch.nn.MultiheadAttention):
            for name in ("in_proj_weight", "q_proj_weight", "k_proj_weight", "v_proj_weight", "in_proj_bias", "bias_k", "bias_v"):
                t = getattr(m, name)
                if t is not None:
                    t.data = t.data.to(dtype)
        for name in ("text_projection", "proj"):
            t = getattr(m, name, None)
            if isinstance(t, torch.nn.Parameter):
                t.data = t.data.to(dtype)

    model.apply(cast)
    return model


def tokenize(captions: list[str], context_length: int) -> torch.Tensor:
    import clip

    return clip.tokenize(captions, context_length=context_length, truncate=True)


@dataclass
class ScoreOutput:
    scores: list[Optional[float]]  # None where the image could not be decoded
    errors: list[str]  # "" where scored
    image_embeddings: Optional[np.ndarray] = None  # float16 [n, d], rows of failures are zero
    text_embeddings: Optional[np.ndarray] = None


@dataclass
class ClipScorer:
    """Wraps a clip-anytorch `CLIP` model. Thread-compatible; not for concurrent calls."""

    model: torch.nn.Module
    device: torch.device
    dtype: torch.dtype
    chunk_size: int = 256
    tokenize_workers: int = 0  # > 0: tokenise in this many processes (clip's tokenizer is pure Python)
    decode_threads: int = 1  # > 1: split nvJPEG decoding (its Huffman stage runs on the CPU) over threads
    prep_threads: int = 1  # chunks prepared concurrently ahead of the model
    compile: bool = False  # torch.compile the encoders (CUDA; worth it for long jobs)
    _prep: ThreadPoolExecutor = field(default=None, repr=False)

    def __post_init__(self):
        self.model.eval()
        self.resolution = int(self.model.visual.input_resolution)
        self.context_length = int(self.model.context_length)
        self._mean = torch.tensor(MEAN, device=self.device).view(1, 3, 1, 1)
        self._std = torch.tensor(STD, device=self.device).view(1, 3, 1, 1)
        self._prep = ThreadPoolExecutor(self.prep_threads, thread_name_prefix="clip-prep")
        self._streams = threading.local()
        self._encode_image, self._encode_text = clip_forward.encode_image, clip_forward.encode_text
        if self.compile and self.device.type == "cuda":
            self._encode_image = torch.compile(clip_forward.encode_image, dynamic=False)
            self._encode_text = torch.compile(clip_forward.encode_text, dynamic=False)
        self._decoders = ThreadPoolExecutor(self.decode_threads, thread_name_prefix="clip-decode") if self.decode_threads > 1 else None
        self._tokenizers = None
        if self.tokenize_workers > 0:
            import multiprocessing

            from concurrent.futures import ProcessPoolExecutor

            ctx = multiprocessing.get_context("forkserver")
            self._tokenizers = ProcessPoolExecutor(self.tokenize_workers, mp_context=ctx)
        from clip.clip import _transform

        self._cpu_transform = _transform(self.resolution)

    @classmethod
    def create(cls, model: torch.nn.Module, device: str = "auto", precision: str = "fp16", chunk_size: int = 256, **options) -> "ClipScorer":
        """options: tokenize_workers, decode_threads, prep_threads, compile (see the fields)."""
        dev = torch.device("cuda" if device == "auto" and torch.cuda.is_available() else ("cpu" if device == "auto" else device))
        dtype = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}[precision] if dev.type == "cuda" else torch.float32
        model = convert_weights(model.float().to(dev), dtype)
        return cls(model, dev, dtype, chunk_size, **options)

    # -- text --------------------------------------------------------------------------
    def tokenize(self, captions: Sequence[str]) -> torch.Tensor:
        captions = list(captions)
        if self._tokenizers is None or len(captions) < 64:
            return tokenize(captions, self.context_length)
        step = -(-len(captions) // self.tokenize_workers)
        parts = [captions[i : i + step] for i in range(0, len(captions), step)]
        return torch.cat(list(self._tokenizers.map(tokenize, parts, [self.context_length] * len(parts))))

    # -- images ------------------------------------------------------------------------
    def pixels_cpu(self, images: Sequence[bytes]) -> tuple[torch.Tensor, list[str]]:
        """clip's own preprocessing, one PIL image at a time; failures become zero rows."""
        from PIL import Image

        out = torch.zeros(len(images), 3, self.resolution, self.resolution)
        errors = [""] * len(images)
        for i, data in enumerate(images):
            try:
                out[i] = self._cpu_transform(Image.open(io.BytesIO(data)))
            except Exception as e:  # hostile or corrupt staged bytes: a counted failure
                errors[i] = f"{type(e).__name__}: {e}"[:300]
        return out, errors

    def pixels_cuda(self, images: Sequence[bytes]) -> tuple[torch.Tensor, list[str]]:
        from torchvision.io import ImageReadMode, decode_jpeg

        n, r = len(images), self.resolution
        errors = [""] * n
        decoded: list[Optional[torch.Tensor]] = [None] * n
        jpeg_idx = [i for i, b in enumerate(images) if b[:2] == JPEG_MAGIC]
        if jpeg_idx:
            datas = [torch.frombuffer(bytearray(images[i]), dtype=torch.uint8) for i in jpeg_idx]
            try:
                if self._decoders is not None and len(datas) >= 2 * self.decode_threads:
                    step = -(-len(datas) // self.decode_threads)
                    parts = [datas[i : i + step] for i in range(0, len(datas), step)]
                    decode = lambda part: decode_jpeg(part, mode=ImageReadMode.RGB, device=self.device)  # noqa: E731
                    outs = [img for part in self._decoders.map(decode, parts) for img in part]
                else:
                    outs = decode_jpeg(datas, mode=ImageReadMode.RGB, device=self.device)
            except RuntimeError:  # one bad JPEG fails the batched call: isolate it
                outs = []
                for d in datas:
                    try:
                        outs.append(decode_jpeg(d, mode=ImageReadMode.RGB, device=self.device))
                    except RuntimeError as e:
                        outs.append(e)
            for i, o in zip(jpeg_idx, outs):
                if isinstance(o, Exception):
                    errors[i] = f"{type(o).__name__}: {o}"[:300]
                else:
                    decoded[i] = o
        others = [i for i in range(n) if decoded[i] is None and not errors[i]]
        if others:
            cpu, errs = self.pixels_cpu([images[i] for i in others])
            for j, i in enumerate(others):
                errors[i] = errs[j]
        batch = torch.zeros(n, 3, r, r, device=self.device, dtype=torch.float32)
        by_shape: dict[tuple, list[int]] = {}
        for i, img in enumerate(decoded):
            if img is not None:
                by_shape.setdefault(tuple(img.shape), []).append(i)
        for (_, h, w), idx in by_shape.items():
            x = torch.stack([decoded[i] for i in idx]).float()
            scale = r / min(h, w)
            nh, nw = (r, max(r, round(w * scale))) if h <= w else (max(r, round(h * scale)), r)
            if (nh, nw) != (h, w):
                x = F.interpolate(x, size=(nh, nw), mode="bicubic", antialias=True, align_corners=False)
            top, left = int(round((nh - r) / 2.0)), int(round((nw - r) / 2.0))
            x = x[:, :, top : top + r, left : left + r].clamp_(0, 255)
            batch[idx] = (x / 255.0 - self._mean) / self._std
        if others:
            ok = [(j, i) for j, i in enumerate(others) if not errors[i]]
            if ok:
                batch[[i for _, i in ok]] = cpu[[j for j, _ in ok]].to(self.device)
        return batch, errors

    # -- scoring -----------------------------------------------------------------------
    @torch.inference_mode()
    def embed(self, pixels: torch.Tensor, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        img = self._encode_image(self.model, pixels.to(self.device, self.dtype)).float()
        txt = self._encode_text(self.model, tokens.to(self.device)).float()
        return F.normalize(img, dim=-1), F.normalize(txt, dim=-1)

    def _prepare(self, images, captions):
        tokens = self.tokenize(captions)
        if self.device.type != "cuda":
            pixels, errors = self.pixels_cpu(images)
            return pixels, tokens, errors, None
        stream = getattr(self._streams, "stream", None)
        if stream is None:  # one side stream per prep thread
            stream = self._streams.stream = torch.cuda.Stream(self.device)
        with torch.cuda.stream(stream):
            pixels, errors = self.pixels_cuda(images)
            tokens = tokens.pin_memory().to(self.device, non_blocking=True)
            event = torch.cuda.Event()
            event.record(stream)
        return pixels, tokens, errors, event

    @torch.inference_mode()
    def score(self, images: Sequence[bytes], captions: Sequence[str], embeddings: bool = False) -> ScoreOutput:
        n = len(images)
        chunks = [(s, min(n, s + self.chunk_size)) for s in range(0, n, self.chunk_size)]
        scores: list[Optional[float]] = []
        errors: list[str] = []
        img_out, txt_out = [], []
        # overlap: up to prep_threads chunks are being prepared while the model runs
        ahead = collections.deque(self._prep.submit(self._prepare, images[s:e], captions[s:e]) for s, e in chunks[: self.prep_threads])
        for c in range(len(chunks)):
            pixels, tokens, errs, ready = ahead.popleft().result()
            if c + self.prep_threads < len(chunks):
                s, e = chunks[c + self.prep_threads]
                ahead.append(self._prep.submit(self._prepare, images[s:e], captions[s:e]))
            if ready is not None:
                main = torch.cuda.current_stream(self.device)
                main.wait_event(ready)
                pixels.record_stream(main)  # made on the side stream: keep its memory until used here
                tokens.record_stream(main)
            img, txt = self.embed(pixels, tokens)
            sims = (img * txt).sum(-1).cpu().tolist()
            scores += [None if err else float(v) for v, err in zip(sims, errs)]
            errors += errs
            if embeddings:
                bad = torch.tensor([bool(err) for err in errs], device=img.device)
                img_out.append(img.masked_fill(bad[:, None], 0).half().cpu().numpy())
                txt_out.append(txt.half().cpu().numpy())
        out = ScoreOutput(scores, errors)
        if embeddings and n:
            out.image_embeddings, out.text_embeddings = np.concatenate(img_out), np.concatenate(txt_out)
        return out
