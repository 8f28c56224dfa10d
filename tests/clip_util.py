"""Small CLIP models for tests: random weights in clip-anytorch's own architecture."""

import torch

TINY = dict(embed_dim=64, image_resolution=64, vision_layers=2, vision_width=64, vision_patch_size=8, context_length=32, vocab_size=49408, transformer_width=64, transformer_heads=1, transformer_layers=2)
VIT_B_32 = dict(embed_dim=512, image_resolution=224, vision_layers=12, vision_width=768, vision_patch_size=32, context_length=77, vocab_size=49408, transformer_width=512, transformer_heads=8, transformer_layers=12)


def random_clip(arch: dict, seed: int = 0):
    from clip.model import CLIP

    torch.manual_seed(seed)
    return CLIP(**arch).float().eval()


def save_random_tiny(path, seed: int = 0) -> str:
    torch.save({k: v.half() for k, v in random_clip(TINY, seed).state_dict().items()}, path)
    return str(path)
