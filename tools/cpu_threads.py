"""Intra-op threads on a small CPU: the tiny model's generate, timed with 1 or N threads.

Run it with and without another CPU-bound process, and with ``OMP_WAIT_POLICY`` unset
(spinning) or ``PASSIVE`` (docs/BENCHMARKS.md, "The CPU demo"):
    OMP_WAIT_POLICY=PASSIVE python tools/cpu_threads.py --threads 2
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

TINY = Path(__file__).resolve().parent.parent / "examples" / "tiny-model"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--prompts", type=int, default=60)
    parser.add_argument("--new-tokens", type=int, default=10)
    args = parser.parse_args()
    os.environ["OMP_NUM_THREADS"] = str(args.threads)  # before torch is imported
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(args.threads)
    tokenizer = AutoTokenizer.from_pretrained(TINY)
    model = AutoModelForCausalLM.from_pretrained(TINY, dtype=torch.bfloat16)
    budget = {"max_new_tokens": args.new_tokens, "min_new_tokens": args.new_tokens}
    start = time.perf_counter()
    with torch.inference_mode():
        for i in range(args.prompts):
            ids = tokenizer(f"How much energy does prompt {i} use?", return_tensors="pt")
            model.generate(**ids, **budget, do_sample=False, pad_token_id=0)
    seconds = time.perf_counter() - start
    policy = os.environ.get("OMP_WAIT_POLICY", "unset")
    print(f"threads {args.threads}, OMP_WAIT_POLICY {policy}: {seconds:.2f} s", file=sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
