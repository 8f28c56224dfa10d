"""JPEG bytes to uint8 [3, H, W] tensors on a CUDA device.

Decoders (`clip.decoder`):
  - "torchvision" (default): `torchvision.io.decode_jpeg(list, device="cuda")`, nvJPEG's CUDA
    decoder (Huffman on the CPU, the rest as kernels on the SMs). The fastest here for
    256-px JPEGs (benchmarks/RESULTS.md).
  - "nvimgcodec": NVIDIA's nvImageCodec (`pip install mmcurate[gpu]`): the GPU's hardware
    JPEG engines (A100, H100: NVJPG) where the picture allows, else nvJPEG's CUDA decoder.
  - "nvimgcodec-hw": the hardware engines alone (a picture they cannot take goes to PIL).
A picture a decoder cannot decode comes back as None; the caller falls back to PIL on the
CPU, which decodes what it can and otherwise gives the error message.
"""

from __future__ import annotations

import threading
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

    BACKENDS = ("HW_GPU_ONLY", "GPU_ONLY", "HYBRID_CPU_GPU")  # tried in this order, per picture
    _shared: dict = {}
    _shared_lock = threading.Lock()

    def __init__(self, device: torch.device, hardware_only: bool = False):
        self._nv = nvimgcodec_module()
        if self._nv is None:
            raise RuntimeError("clip.decoder nvimgcodec needs nvImageCodec: pip install 'mmcurate[gpu]' (nvidia-nvimgcodec-cu13, nvidia-nvjpeg)")
        self.device = device
        self.name = "nvimgcodec-hw" if hardware_only else "nvimgcodec"
        nv = self._nv
        # EXIF orientation off and 8-bit RGB: the same pixels clip's own PIL preprocessing sees
        self._params = nv.DecodeParams(apply_exif_orientation=False, color_spec=nv.ColorSpec.SRGB, allow_any_depth=False, sample_format=nv.SampleFormat.I_RGB)
        index = device.index or 0
        kinds = self.BACKENDS[:1] if hardware_only else self.BACKENDS
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


def make_decoder(name: str, device: torch.device):
    """The JPEG decoder for `name` (see DECODERS)."""
    if name not in DECODERS:
        raise ValueError(f"unknown JPEG decoder {name!r}: one of {', '.join(DECODERS)}")
    if name == "torchvision":
        return TorchvisionDecoder(device)
    return NvImageCodecDecoder(device, hardware_only=name == "nvimgcodec-hw")
