"""CLIP scoring: preprocessing, tokenisation and the score itself (no Beam, no files).

score = cosine similarity of the L2-normalised image and text embeddings (LAION semantics).

Two preprocessing paths:
  - CPU: clip's own `_transform` on PIL images, so scores equal clip-anytorch's
    `encode_image(preprocess(img))` / `encode_text(tokenize(caption))` exactly.
  - CUDA: JPEGs decoded in one batched call (`gpu_decode`: torchvision's nvJPEG on the device
    by default, the hardware JPEG engines through nvImageCodec, or libjpeg-turbo on host
    threads with the pixels copied over through pinned memory), then resize
    (bicubic, antialiased), centre crop and normalisation as batched tensor ops; other
    formats and pictures the device cannot decode fall back to PIL.
A batch is split into chunks and pipelined: while the GPU encodes chunk i, prep threads
tokenise the next chunks and decode them on side streams; scores come back to the host
asynchronously, with one wait per batch.
"""

from __future__ import annotations

import warnings

import collections
import io
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Optional, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F

from mmcurate.filters import clip_forward, clip_tokens, gpu_decode
from mmcurate.schemas.record import error_text

# clip-anytorch imports pkg_resources, which warns on every import; nothing for a user to act on
warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)

MEAN = (0.48145466, 0.4578275, 0.40821073)
STD = (0.26862954, 0.26130258, 0.27577711)


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
    """`clip.tokenize(captions, context_length, truncate=True)`, faster (see clip_tokens)."""
    return clip_tokens.tokenize(captions, context_length)


def _tokenize_numpy(captions: list[str], context_length: int) -> np.ndarray:
    """For tokenizer processes: numpy arrays cross the process boundary as plain bytes
    (a torch tensor would go through shared-memory handles, much slower)."""
    return tokenize(captions, context_length).numpy()


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
    tokenize_workers: int = 0  # > 0: tokenise in this many processes
    prep_threads: int = 1  # chunks prepared concurrently ahead of the model
    compile: Union[bool, str] = False  # torch.compile the encoders (CUDA); a string names the mode
    decoder: str = "torchvision"  # JPEG decoder on CUDA: one of schemas.config.CLIP_DECODERS (gpu_decode)
    decode_threads: int = 0  # decoders "cpu", "mixed": host threads (0: one per core)
    host_decode_share: float = 0.25  # decoder "mixed": the share of each chunk decoded on the host
    _prep: ThreadPoolExecutor = field(default=None, repr=False)

    def __post_init__(self):
        self.model.eval()
        self.resolution = int(self.model.visual.input_resolution)
        self.context_length = int(self.model.context_length)
        self._mean = torch.tensor(MEAN, device=self.device).view(1, 3, 1, 1)
        self._std = torch.tensor(STD, device=self.device).view(1, 3, 1, 1)
        self._prep = ThreadPoolExecutor(self.prep_threads, thread_name_prefix="clip-prep")
        self._streams = threading.local()
        self._encode_image, self._encode_text = clip_forward.encode_image, clip_forward.encode_text_cut
        self._fixed_rows = 0  # > 0: every forward pass gets exactly this many rows (compiled shapes)
        self.text_buckets = clip_forward.TEXT_BUCKETS
        if self.compile and self.device.type == "cuda":
            mode = self.compile if isinstance(self.compile, str) else None
            limits = torch._dynamo.config
            for name in ("cache_size_limit", "recompile_limit"):  # one graph per text-length bucket
                if hasattr(limits, name):
                    setattr(limits, name, max(getattr(limits, name), 16))
            self._encode_image = torch.compile(clip_forward.encode_image, dynamic=False, mode=mode)
            self._encode_text = torch.compile(clip_forward.encode_text_cut, dynamic=False, mode=mode)
            self._fixed_rows = self.chunk_size
            self.text_buckets = clip_forward.COMPILED_TEXT_BUCKETS
        self._warm = not self._fixed_rows
        self.jpeg = gpu_decode.make_decoder(self.decoder, self.device, self.decode_threads, self.host_decode_share) if self.device.type == "cuda" else None
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
        """options: tokenize_workers, prep_threads, compile, decoder, decode_threads, host_decode_share (see the fields)."""
        dev = torch.device("cuda" if device == "auto" and torch.cuda.is_available() else ("cpu" if device == "auto" else device))
        dtype = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}[precision] if dev.type == "cuda" else torch.float32
        model = convert_weights(model.float().to(dev), dtype)
        return cls(model, dev, dtype, chunk_size, **options)

    @property
    def embedding_dim(self) -> int:
        return int(self.model.text_projection.shape[1])

    # -- text --------------------------------------------------------------------------
    def tokenize(self, captions: Sequence[str]) -> torch.Tensor:
        """Token ids on the CPU, cut to the batch's text length (`clip_forward.text_length`)."""
        captions = list(captions)
        if self._tokenizers is None or len(captions) < 64:
            tokens = tokenize(captions, self.context_length)
        else:
            step = -(-len(captions) // self.tokenize_workers)
            parts = [captions[i : i + step] for i in range(0, len(captions), step)]
            tokens = torch.from_numpy(np.concatenate(list(self._tokenizers.map(_tokenize_numpy, parts, [self.context_length] * len(parts)))))
        return tokens[:, : clip_forward.text_length(tokens, self.text_buckets)] if len(tokens) else tokens

    def warm_up(self):
        """Compiled encoders: compile every shape now (one image shape, one text shape per
        length bucket), so that no compilation lands in the middle of a job."""
        if self._warm:
            return
        pixels = torch.zeros(self._fixed_rows, 3, self.resolution, self.resolution, device=self.device, dtype=self.dtype)
        for length in sorted({min(b, self.context_length) for b in (*self.text_buckets, self.context_length)}):
            tokens = torch.zeros(self._fixed_rows, length, dtype=torch.long, device=self.device)
            tokens[:, -1] = 1
            self.embed(pixels, tokens)
        torch.cuda.synchronize(self.device)
        self._warm = True

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
                errors[i] = error_text(e)
        return out, errors

    def pixels_batched(self, images: Sequence[bytes]) -> tuple[torch.Tensor, list[str]]:
        """Pixels in the model's dtype on the device, made on the current stream: JPEGs
        through `self.jpeg`, then batched tensor ops (the CUDA path; the ops run on the CPU too)."""
        n, r = len(images), self.resolution
        decoded: list[Optional[torch.Tensor]] = [None] * n
        jpeg_idx = [i for i, b in enumerate(images) if b[:2] == gpu_decode.JPEG_MAGIC]
        if jpeg_idx:
            for i, img in zip(jpeg_idx, self.jpeg.decode([images[i] for i in jpeg_idx])):
                decoded[i] = img
        batch = torch.zeros(n, 3, r, r, device=self.device, dtype=self.dtype)
        by_shape: dict[tuple, list[int]] = {}  # (shape, where decoded): one batch of tensor ops each
        for i, img in enumerate(decoded):
            if img is not None:
                by_shape.setdefault((*img.shape, img.device.type), []).append(i)
        for (_, h, w, _), idx in by_shape.items():
            x = self._stack_on_device([decoded[i] for i in idx]).float()
            scale = r / min(h, w)
            nh, nw = (r, max(r, round(w * scale))) if h <= w else (max(r, round(h * scale)), r)
            if (nh, nw) != (h, w):
                x = F.interpolate(x, size=(nh, nw), mode="bicubic", antialias=True, align_corners=False)
            top, left = int(round((nh - r) / 2.0)), int(round((nw - r) / 2.0))
            x = x[:, :, top : top + r, left : left + r].clamp_(0, 255)
            batch[idx] = ((x / 255.0 - self._mean) / self._std).to(self.dtype)
        # everything the device did not decode (other formats, corrupt or unusual JPEGs): PIL,
        # which decodes what it can and names the problem otherwise
        others = [i for i in range(n) if decoded[i] is None]
        errors = [""] * n
        if others:
            cpu, errs = self.pixels_cpu([images[i] for i in others])
            for j, i in enumerate(others):
                errors[i] = errs[j]
            ok = [(j, i) for j, i in enumerate(others) if not errs[j]]
            if ok:
                batch[[i for _, i in ok]] = cpu[[j for j, _ in ok]].to(self.device, self.dtype)
        return batch, errors

    def _stack_on_device(self, tensors: list[torch.Tensor]) -> torch.Tensor:
        if tensors[0].device.type == self.device.type:  # (torch.device("cuda") != tensor.device "cuda:0")
            return torch.stack(tensors)
        # decoded on the host: one pinned buffer per shape, copied to the device asynchronously
        pinned = self.device.type == "cuda"
        host = torch.empty((len(tensors), *tensors[0].shape), dtype=tensors[0].dtype, pin_memory=pinned)
        torch.stack(tensors, out=host)
        return host.to(self.device, non_blocking=pinned)

    # -- scoring -----------------------------------------------------------------------
    @torch.inference_mode()
    def embed(self, pixels: torch.Tensor, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised embeddings; tokens as `tokenize` returns them (cut to a bucket length)."""
        n = len(pixels)
        pixels, tokens = pixels.to(self.device, self.dtype), tokens.to(self.device)
        if self._fixed_rows and n < self._fixed_rows:  # compiled: one shape per bucket, so pad
            pixels = F.pad(pixels, (0, 0, 0, 0, 0, 0, 0, self._fixed_rows - n))
            tokens = F.pad(tokens, (0, 0, 0, self._fixed_rows - n))
        img = self._encode_image(self.model, pixels)[:n].float()
        txt = self._encode_text(self.model, tokens)[:n].float()
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
            pixels, errors = self.pixels_batched(images)
            tokens = tokens.pin_memory().to(self.device, non_blocking=True)
            event = torch.cuda.Event()
            event.record(stream)
        return pixels, tokens, errors, event

    @torch.inference_mode()
    def score(self, images: Sequence[bytes], captions: Sequence[str], embeddings: bool = False) -> ScoreOutput:
        self.warm_up()
        n = len(images)
        chunks = [(s, min(n, s + self.chunk_size)) for s in range(0, n, self.chunk_size)]
        cuda = self.device.type == "cuda"
        # results land in (pinned) host buffers without a wait per chunk; one wait at the end
        sims = torch.empty(n, pin_memory=cuda)
        dim = self.embedding_dim
        img_out = torch.empty(n, dim, dtype=torch.float16, pin_memory=cuda) if embeddings else None
        txt_out = torch.empty(n, dim, dtype=torch.float16, pin_memory=cuda) if embeddings else None
        errors: list[str] = []
        # overlap: up to prep_threads chunks are being prepared while the model runs
        ahead = collections.deque(self._prep.submit(self._prepare, images[s:e], captions[s:e]) for s, e in chunks[: self.prep_threads])
        for c, (s, e) in enumerate(chunks):
            pixels, tokens, errs, ready = ahead.popleft().result()
            if c + self.prep_threads < len(chunks):
                s2, e2 = chunks[c + self.prep_threads]
                ahead.append(self._prep.submit(self._prepare, images[s2:e2], captions[s2:e2]))
            if ready is not None:
                main = torch.cuda.current_stream(self.device)
                main.wait_event(ready)
                pixels.record_stream(main)  # made on the side stream: keep its memory until used here
                tokens.record_stream(main)
            img, txt = self.embed(pixels, tokens)
            sims[s:e].copy_((img * txt).sum(-1), non_blocking=cuda)
            errors += errs
            if embeddings:
                bad = torch.tensor([bool(err) for err in errs], device=img.device)
                img_out[s:e].copy_(img.masked_fill(bad[:, None], 0).half(), non_blocking=cuda)
                txt_out[s:e].copy_(txt.half(), non_blocking=cuda)
        if cuda:
            torch.cuda.current_stream(self.device).synchronize()
        scores = [None if err else float(v) for v, err in zip(sims.tolist(), errors)]
        out = ScoreOutput(scores, errors)
        if embeddings and n:
            out.image_embeddings, out.text_embeddings = img_out.numpy(), txt_out.numpy()
        return out
