"""Make examples/tiny-image-pipeline: a tiny FLUX-architecture text-to-image pipeline for tests.

The same components as FLUX.1-dev (a flow-matching transformer with double and single blocks and
embedded guidance, a 16-channel VAE, a CLIP and a T5 text encoder), each a few layers wide, with
small random weights (seeded) and word-level tokenizers built from the bundled image prompts. It
draws noise, not pictures, at the protocol's size (1024x1024, 30 steps) in about a second a
image on a CPU. Loads offline with
``FluxPipeline.from_pretrained("examples/tiny-image-pipeline")``; it is the offline demo's image
model.

Run: python examples/make_tiny_pipeline.py (rewrites the folder).
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import torch
from diffusers import (
    AutoencoderKL,
    FlowMatchEulerDiscreteScheduler,
    FluxPipeline,
    FluxTransformer2DModel,
)
from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

from energy_bench.backends.diffusion import word_tokenizer

HERE = Path(__file__).resolve().parent
OUT = HERE / "tiny-image-pipeline"
PROMPTS = HERE.parent / "container/energy_bench/workload/data/bundled_image_prompts.jsonl"
SEED = 0


def main() -> None:
    torch.manual_seed(SEED)
    texts = [json.loads(line)["prompt"] for line in PROMPTS.read_text().splitlines()]
    words = sorted({w for t in texts for w in re.findall(r"\w+|[^\w\s]", t.lower())})
    vocab_size = len(words) + 3
    transformer = FluxTransformer2DModel(
        patch_size=1,
        in_channels=16,
        num_layers=1,
        num_single_layers=1,
        attention_head_dim=8,
        num_attention_heads=2,
        joint_attention_dim=32,
        pooled_projection_dim=32,
        guidance_embeds=True,
        axes_dims_rope=(4, 2, 2),
    )
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        # Six blocks: latents 32 times smaller than the image, so that the protocol's 1024x1024
        # images are 16x16 tokens for the transformer (FLUX.1-dev's VAE has four: 8 times).
        down_block_types=("DownEncoderBlock2D",) * 6,
        up_block_types=("UpDecoderBlock2D",) * 6,
        block_out_channels=(4, 4, 8, 8, 8, 8),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=4,
        sample_size=64,
        scaling_factor=1.0,
        shift_factor=0.0,
        use_quant_conv=False,
        use_post_quant_conv=False,
    )
    clip = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=vocab_size,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            max_position_embeddings=77,
            projection_dim=32,
            bos_token_id=0,
            eos_token_id=1,
            pad_token_id=0,
        )
    )
    t5 = T5EncoderModel(
        T5Config(
            vocab_size=vocab_size,
            d_model=32,
            d_ff=64,
            d_kv=8,
            num_heads=4,
            num_layers=2,
            feed_forward_proj="gated-gelu",
            pad_token_id=0,
            eos_token_id=1,
        )
    )
    pipe = FluxPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0, use_dynamic_shifting=True),
        vae=vae,
        text_encoder=clip,
        tokenizer=word_tokenizer(77, words),
        text_encoder_2=t5,
        tokenizer_2=word_tokenizer(128, words),
        transformer=transformer,
    )
    shutil.rmtree(OUT, ignore_errors=True)
    pipe.save_pretrained(OUT)
    print(f"wrote {OUT} ({sum(p.stat().st_size for p in OUT.rglob('*') if p.is_file()):,} bytes)")


if __name__ == "__main__":
    main()
