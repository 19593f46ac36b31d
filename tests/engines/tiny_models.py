"""Tiny random-weight diffusers pipelines, built offline the way diffusers' own tests build them.

Shared by the diffusers engine tests and `bench/diffusers_overhead.py`:

- `build_text2img(folder)`: a `StableDiffusionPipeline` whose 4-channel UNet also serves
  image-to-image and inpainting through `from_pipe`; its `CLIPTokenizer` comes from a small
  vocabulary written to files here (every lower-case letter and digit, so any prompt tokenizes,
  and different prompts give different tokens).
- `build_variation(folder)`: a `StableDiffusionImageVariationPipeline` (CLIP vision encoder,
  no tokenizer).

Both are saved with `save_pretrained`, so the engine loads them like any model folder. The VAE
has two blocks (`vae_scale_factor` 2) and the UNet samples 32 latents: 64x64 by default. Keep
test sizes small: attention cost grows with the square of the pixel count, and even this tiny
UNet takes minutes at 512x512 on a CPU.

Needs torch, diffusers and transformers; imported only by code that builds a model.
"""

from __future__ import annotations

import json
import string
from pathlib import Path
from typing import Any

__all__ = ["build_text2img", "build_variation"]

_SPECIALS = ["<unk>", "<|startoftext|>", "<|endoftext|>"]


def _write_tokenizer_files(folder: Path) -> None:
    """A CLIP BPE vocabulary (transformers' own test recipe) that covers every ASCII word."""
    chars = string.ascii_lowercase + string.digits
    words = ["the</w>", "th", "a</w>", "an", "and</w>", "in", "on</w>", "of</w>", "er</w>"]
    vocab = list(chars) + [c + "</w>" for c in chars] + words + _SPECIALS
    merges = ["#version: 0.2", "t h", "th e</w>", "a n", "an d</w>", "i n", "o n</w>", "o f</w>"]
    merges.append("e r</w>")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(vocab)}))
    (folder / "merges.txt").write_text("\n".join(merges) + "\n")


def _tiny_vae() -> Any:
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        block_out_channels=[4, 8],
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"],
        up_block_types=["UpDecoderBlock2D", "UpDecoderBlock2D"],
        latent_channels=4,
        norm_num_groups=2,
    )


def _tiny_unet(cross_attention_dim: int) -> Any:
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        block_out_channels=(4, 8),
        layers_per_block=1,
        sample_size=32,
        time_cond_proj_dim=None,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=cross_attention_dim,
        norm_num_groups=2,
    )


def build_text2img(folder: Path) -> Path:
    """Save a tiny text-to-image Stable Diffusion pipeline in `folder`; return `folder`."""
    import torch
    from diffusers import DDIMScheduler, StableDiffusionPipeline
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    vocab_folder = folder.with_name(folder.name + "-vocab")
    _write_tokenizer_files(vocab_folder)
    # model_max_length: unset, transformers' sentinel makes encode_prompt pad to ~1e30 tokens.
    tokenizer = CLIPTokenizer.from_pretrained(vocab_folder, unk_token="<unk>", model_max_length=77)
    torch.manual_seed(0)
    unet = _tiny_unet(cross_attention_dim=8)
    torch.manual_seed(0)
    vae = _tiny_vae()
    torch.manual_seed(0)
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            bos_token_id=0,
            eos_token_id=2,  # CLIP's legacy argmax pooling, valid for any vocabulary
            hidden_size=8,
            intermediate_size=16,
            layer_norm_eps=1e-05,
            num_attention_heads=2,
            num_hidden_layers=2,
            pad_token_id=1,
            vocab_size=1000,
        )
    )
    scheduler = DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )
    pipe = StableDiffusionPipeline(
        unet=unet,
        scheduler=scheduler,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        safety_checker=None,
        feature_extractor=None,
        image_encoder=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(folder)
    return folder


def build_variation(folder: Path) -> Path:
    """Save a tiny `StableDiffusionImageVariationPipeline` in `folder`; return `folder`."""
    import torch
    from diffusers import PNDMScheduler, StableDiffusionImageVariationPipeline
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

    torch.manual_seed(0)
    unet = _tiny_unet(cross_attention_dim=8)
    torch.manual_seed(0)
    vae = _tiny_vae()
    torch.manual_seed(0)
    image_encoder = CLIPVisionModelWithProjection(
        CLIPVisionConfig(
            hidden_size=8,
            projection_dim=8,  # the UNet's cross_attention_dim: image embeddings condition it
            intermediate_size=16,
            layer_norm_eps=1e-05,
            num_attention_heads=2,
            num_hidden_layers=2,
            image_size=32,
            patch_size=4,
        )
    )
    pipe = StableDiffusionImageVariationPipeline(
        vae=vae,
        image_encoder=image_encoder,
        unet=unet,
        scheduler=PNDMScheduler(skip_prk_steps=True, steps_offset=1),
        safety_checker=None,
        feature_extractor=CLIPImageProcessor(crop_size=32, size=32),
        requires_safety_checker=False,
    )
    pipe.save_pretrained(folder)
    return folder
