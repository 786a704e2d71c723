"""Make examples/tiny-model and examples/tiny-eos-model: tiny Llama-architecture models for tests.

tiny-model: a byte-level BPE tokenizer trained on the bundled prompts, a chat template that reacts
to ``enable_thinking``, and small random weights (seeded). It practically never emits
end-of-sequence, so it always runs to ``max_new_tokens``. Loads offline with
``from_pretrained("examples/tiny-model")``; it is also the offline demo's model.

tiny-eos-model: the same tokenizer, template and config, with weights whose output layer strongly
favours the end-of-sequence token (about 16 logits above any other token at every step). Greedy
decoding without ``min_new_tokens`` stops after one token (the end-of-sequence token itself); with
``min_new_tokens=n`` it stops right after the n forced tokens. Tests use it to prove that token
budgets are honoured and that early stops are counted right.

Run: python examples/make_tiny_model.py (rewrites both folders; tiny-model byte for byte).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

HERE = Path(__file__).resolve().parent
OUT = HERE / "tiny-model"
EOS_OUT = HERE / "tiny-eos-model"
# Feature 0 of the residual stream is a constant 1 in every token's embedding (the EOS row: this
# value). Embeddings are tied, so the output layer scores each token by its feature 0 times the
# (positive, normalised) constant feature: the EOS token wins by about (EOS_FEATURE - 1) x 7.8.
EOS_FEATURE = 3.0
PROMPTS = HERE.parent / "container/energy_bench/workload/data/bundled_prompts.jsonl"
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
    save(model, fast, OUT)
    save(eos_biased(config), fast, EOS_OUT)


def eos_biased(config: LlamaConfig) -> LlamaForCausalLM:
    """The same architecture with an output layer that strongly favours the EOS token.

    Feature 0 is a constant the layers neither read (their norms' weight 0 is zero) nor write
    (their output projections' row 0 is zero), so after the final norm it is the same positive
    value at every position, and the tied output layer adds EOS_FEATURE times it to the EOS logit.
    """
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    with torch.no_grad():
        embed = model.model.embed_tokens.weight
        embed[:, 0] = 1.0
        embed[config.eos_token_id, 0] = EOS_FEATURE
        for layer in model.model.layers:
            layer.input_layernorm.weight[0] = 0.0
            layer.post_attention_layernorm.weight[0] = 0.0
            layer.self_attn.o_proj.weight[0] = 0.0
            layer.mlp.down_proj.weight[0] = 0.0
    return model


def save(model: LlamaForCausalLM, tokenizer: PreTrainedTokenizerFast, out: Path) -> None:
    """Write model and tokenizer into ``out``, readable by everyone."""
    out.mkdir(exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    for path in out.iterdir():
        path.chmod(0o644)  # readable by the container's non-root user
    size = sum(p.stat().st_size for p in out.iterdir())
    print(f"wrote {out} ({size / 1e6:.2f} MB, {sum(p.numel() for p in model.parameters())} parameters)")


if __name__ == "__main__":
    main()
