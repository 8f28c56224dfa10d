"""JPEG bytes to uint8 [3, H, W] tensors for the CUDA preprocessing path.

Decoders (`clip.decoder`):
  - "torchvision" (default): `torchvision.io.decode_jpeg(list, device="cuda")`, nvJPEG's CUDA
    decoder (Huffman on the CPU, the rest as kernels on the SMs). The fastest here for
    256-px JPEGs (benchmarks/RESULTS.md).
  - "nvimgcodec": NVIDIA's nvImageCodec (`pip install mmcurate[gpu]`): the GPU's hardware
    JPEG engines (A100, H100: NVJPG) where the picture allows, else nvJPEG's CUDA decoder.
  - "nvimgcodec-hw": the hardware engines alone (a picture they cannot take goes to PIL).
  - "nvimgcodec-gpu": nvJPEG's all-GPU decoder through nvImageCodec (Huffman decoding on the
    SMs too): no host CPU work per picture, for hosts with few or slow cores.
  - "cpu": libjpeg-turbo on the host (torchvision's CPU decoder), in a pool of threads; the
    uint8 pixels then go to the device through pinned memory and are resized there. Scales
    with host cores and leaves the SMs to the model: nvJPEG's CUDA decoder serialises within
    a process (about 20k img/s on an H100 host) and competes with the encoders for the SMs.
    Its pixels equal PIL's (the same library and settings).
  - "mixed": both at once: the last `clip.host_decode_share` of every chunk on host threads,
    the rest through torchvision's nvJPEG, so that the two add up. Which decoder takes a
    picture depends only on its place in the batch, so reruns give the same pixels.
A picture a decoder cannot decode comes back as None; the caller falls back to PIL on the
CPU, which decodes what it can and otherwise gives the error message.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Optional, Sequence

import torch

from mmcurate.schemas.config import CLIP_DECODERS as DECODERS

JPEG_MAGIC = b"\xff\xd8"


def nvimgcodec_module():
    """nvImageCodec's Python module, or None when it is not installed."""
    try:
        from nvidia import nvimgcodec
    except ImportError:
        return None
    return nvimgcodec


class NvImageCodecDecoder:
    """Batched decoding through nvImageCodec.

    One nvImageCodec decoder per process and device, shared by every caller under a lock: the
    hardware engines can be claimed by one decoder at a time (a second hardware-only decoder
    fails to start; a second mixed one silently falls back to the slower CUDA path)."""

    # backends per decoder name, tried in this order per picture
    BACKENDS = {
        "nvimgcodec": ("HW_GPU_ONLY", "GPU_ONLY", "HYBRID_CPU_GPU"),
        "nvimgcodec-hw": ("HW_GPU_ONLY",),
        "nvimgcodec-gpu": ("GPU_ONLY",),
    }
    _shared: dict = {}
    _shared_lock = threading.Lock()

    def __init__(self, device: torch.device, name: str = "nvimgcodec"):
        self._nv = nvimgcodec_module()
        if self._nv is None:
            raise RuntimeError(f"clip.decoder {name} needs nvImageCodec: pip install 'mmcurate[gpu]' (nvidia-nvimgcodec-cu13, nvidia-nvjpeg)")
        self.device = device
        self.name = name
        nv = self._nv
        # EXIF orientation off and 8-bit RGB: the same pixels clip's own PIL preprocessing sees
        self._params = nv.DecodeParams(apply_exif_orientation=False, color_spec=nv.ColorSpec.SRGB, allow_any_depth=False, sample_format=nv.SampleFormat.I_RGB)
        index = device.index or 0
        kinds = self.BACKENDS[name]
        with self._shared_lock:
            if (index, kinds) not in self._shared:
                backends = [nv.Backend(getattr(nv.BackendKind, kind)) for kind in kinds]
                self._shared[index, kinds] = (nv.Decoder(device_id=index, backends=backends), threading.Lock())
        self._decoder, self._lock = self._shared[index, kinds]

    def decode(self, datas: Sequence[bytes]) -> list[Optional[torch.Tensor]]:
        """Decodes on the current stream: the tensors are ready for work queued after this call."""
        nv = self._nv
        out: list[Optional[torch.Tensor]] = [None] * len(datas)
        streams, where = [], []
        for i, data in enumerate(datas):
            try:
                streams.append(nv.CodeStream(data))
                where.append(i)
            except RuntimeError:  # not even a parsable header: PIL names the problem
                pass
        if not streams:
            return out
        stream = torch.cuda.current_stream(self.device)
        with self._lock:
            images = self._decoder.decode(streams, params=self._params, cuda_stream=stream.cuda_stream)
        for i, img in zip(where, images):
            if img is not None and len(img.shape) == 3 and img.shape[2] == 3:
                out[i] = torch.as_tensor(img, device=self.device).permute(2, 0, 1)
        return out


class TorchvisionDecoder:
    name = "torchvision"

    def __init__(self, device: torch.device):
        self.device = device

    def decode(self, datas: Sequence[bytes]) -> list[Optional[torch.Tensor]]:
        from torchvision.io import ImageReadMode, decode_jpeg

        tensors = [torch.frombuffer(bytearray(d), dtype=torch.uint8) for d in datas]
        try:
            return list(decode_jpeg(tensors, mode=ImageReadMode.RGB, device=self.device))
        except RuntimeError:  # one bad JPEG fails the batched call: isolate it
            out: list[Optional[torch.Tensor]] = []
            for t in tensors:
                try:
                    out.append(decode_jpeg(t, mode=ImageReadMode.RGB, device=self.device))
                except RuntimeError:
                    out.append(None)
            return out


# libjpeg-turbo through torchvision's CPU decoder; the op releases the GIL while it decodes
_decode_on_host = TorchvisionDecoder(torch.device("cpu")).decode


def host_cores() -> int:
    """CPU cores this process may run on (the affinity mask, where the OS has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


class HostDecoder:
    """JPEG decoding on the host's cores: a chunk is split across a pool of threads (one pool
    per decoder, shared by the scorer's prep threads). Tensors come back on the CPU; the
    caller stacks them into pinned memory and copies them to the device."""

    name = "cpu"
    PER_TASK = 32  # pictures per pool task: enough to amortise the hand-off, small enough to spread

    def __init__(self, device: torch.device, threads: int = 0):
        self.device = device
        self.threads = threads if threads > 0 else host_cores()
        self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="jpeg-decode")

    def submit(self, datas: Sequence[bytes]) -> list:
        """Start decoding: futures of the pictures' tensors, PER_TASK pictures each."""
        return [self._pool.submit(_decode_on_host, datas[i : i + self.PER_TASK]) for i in range(0, len(datas), self.PER_TASK)]

    def decode(self, datas: Sequence[bytes]) -> list[Optional[torch.Tensor]]:
        if len(datas) <= self.PER_TASK:
            return _decode_on_host(datas)
        return [t for future in self.submit(datas) for t in future.result()]


class MixedDecoder:
    """nvJPEG (torchvision) and host threads on one chunk at once: the host decodes the last
    `host_share` of the pictures while nvJPEG decodes the others in the calling thread."""

    name = "mixed"

    def __init__(self, device: torch.device, threads: int = 0, host_share: float = 0.25):
        self.device, self.host_share = device, host_share
        self.gpu, self.host = TorchvisionDecoder(device), HostDecoder(device, threads)

    def decode(self, datas: Sequence[bytes]) -> list[Optional[torch.Tensor]]:
        split = len(datas) - round(len(datas) * self.host_share)
        on_host = self.host.submit(datas[split:])  # runs while nvJPEG decodes the rest here
        on_gpu = self.gpu.decode(datas[:split]) if split else []
        return on_gpu + [t for future in on_host for t in future.result()]


def make_decoder(name: str, device: torch.device, threads: int = 0, host_share: float = 0.25):
    """The JPEG decoder for `name` (see DECODERS); `threads` sizes the "cpu" and "mixed"
    decoders' pool (0: one thread per host core); `host_share` is the share of each chunk the
    "mixed" decoder decodes on the host."""
    if name not in DECODERS:
        raise ValueError(f"unknown JPEG decoder {name!r}: one of {', '.join(DECODERS)}")
    if name == "torchvision":
        return TorchvisionDecoder(device)
    if name == "cpu":
        return HostDecoder(device, threads)
    if name == "mixed":
        return MixedDecoder(device, threads, host_share)
    return NvImageCodecDecoder(device, name)
