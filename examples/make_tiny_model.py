"""Make examples/tiny-model: a tiny Llama-architecture model for tests and the offline demo.

A byte-level BPE tokenizer trained on the bundled prompts, a chat template that reacts to
``enable_thinking``, and small random weights (seeded). Loads offline with
``from_pretrained("examples/tiny-model")``. Run: python examples/make_tiny_model.py
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

HERE = Path(__file__).resolve().parent
OUT = HERE / "tiny-model"
PROMPTS = HERE.parent / "container/energy_bench/data/bundled_prompts.jsonl"
SPECIAL = ["<|pad|>", "<|bos|>", "<|eos|>", "<|system|>", "<|user|>", "<|assistant|>", "<think>", "</think>"]

CHAT_TEMPLATE = (
    r"{{ bos_token }}{% for m in messages %}{{ '<|' + m['role'] + '|>' + m['content'] + '\n' }}"
    r"{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>' }}"
    r"{% if enable_thinking is defined and enable_thinking is false %}{{ '<think>\n\n</think>\n\n' }}"
    r"{% elif enable_thinking is defined and enable_thinking %}{{ '<think>\n' }}{% endif %}{% endif %}"
)


def main() -> None:
    texts = [json.loads(line)["text"] for line in PROMPTS.read_text().splitlines()]
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=512,
        special_tokens=SPECIAL,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        pad_token="<|pad|>",
        bos_token="<|bos|>",
        eos_token="<|eos|>",
        chat_template=CHAT_TEMPLATE,
        model_max_length=2048,
    )
    config = LlamaConfig(
        vocab_size=len(fast),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        bos_token_id=fast.bos_token_id,
        eos_token_id=fast.eos_token_id,
        pad_token_id=fast.pad_token_id,
        tie_word_embeddings=True,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    OUT.mkdir(exist_ok=True)
    model.save_pretrained(OUT)
    fast.save_pretrained(OUT)
    for path in OUT.iterdir():
        path.chmod(0o644)  # readable by the container's non-root user
    size = sum(p.stat().st_size for p in OUT.iterdir())
    print(f"wrote {OUT} ({size / 1e6:.2f} MB, {sum(p.numel() for p in model.parameters())} parameters)")


if __name__ == "__main__":
    main()
