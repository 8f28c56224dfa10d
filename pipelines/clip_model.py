"""Loading CLIP weights from local disk only: a model name from clip's list found in a
weights folder (clip's `download_root`), a checkpoint path, or `tiny` (the model we ship).
Nothing here ever touches the network; a missing file is one plain error naming it."""

from __future__ import annotations

import warnings

import os

# clip-anytorch imports pkg_resources, which warns on every import; nothing for a user to act on
warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)

DEFAULT_WEIGHTS_DIR = os.path.expanduser("~/.cache/clip")


class ModelNotFound(FileNotFoundError):
    pass


def resolve_checkpoint(name_or_path: str, weights_dir: str = "") -> str:
    """The local file holding the weights for `name_or_path`."""
    if name_or_path == "tiny":
        from mmcurate.tinyclip import default_path

        path = default_path()
        if not os.path.isfile(path):
            raise ModelNotFound(f"the shipped tiny CLIP is missing: {path} (rebuild it with `python -m mmcurate.tinyclip train`)")
        return path
    if os.path.isfile(name_or_path):
        return name_or_path
    import clip

    urls = getattr(clip.clip, "_MODELS", {})
    if name_or_path in urls:
        folder = weights_dir or DEFAULT_WEIGHTS_DIR
        path = os.path.join(folder, os.path.basename(urls[name_or_path]))
        if not os.path.isfile(path):
            raise ModelNotFound(f"CLIP weights for {name_or_path} not found: {path} is missing (copy the checkpoint there, set clip.weights_dir, or pass --clip-model /path/to/checkpoint.pt)")
        return path
    raise ModelNotFound(f"CLIP checkpoint not found: {name_or_path} is neither a file nor one of {', '.join(sorted(urls))} or 'tiny'")


def load_clip(name_or_path: str, weights_dir: str = ""):
    """A clip-anytorch CLIP model on the CPU in float32, from a local file."""
    import clip

    path = resolve_checkpoint(name_or_path, weights_dir)
    with warnings.catch_warnings():  # clip.load tries torch.jit.load first (a FutureWarning), then the state dict
        warnings.filterwarnings("ignore", category=FutureWarning)
        model, _ = clip.load(path, device="cpu", jit=False)
    return model.float().eval()
