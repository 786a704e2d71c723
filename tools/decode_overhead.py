"""Where a compiled decode step's time and energy go: ``generate`` against a bare loop.

One call on the GPU machine runs this; it prints a short table and writes the figures as JSON.
    python3 tools/decode_overhead.py --out DIR [--model llama8b] [--batches 1,8] [--tokens 128]
(where the project is not installed, as on the GPU machine: PYTHONPATH=container before it)

For each batch size it measures, on one no-weights model of ``tools/gpu_bench.py``'s shapes:
  generate  the benchmark's compiled path (one static cache reused, the decode step compiled with
            CUDA graphs): a call of ``tokens`` new tokens minus a call of one, per decode step;
  bare      the same compiled step called in a plain greedy loop that never waits for the GPU
            between steps (what a serving engine's loop comes close to), per decode step;
  weights   the time the weights' bytes take at the copy bandwidth measured on the same GPU.
Each figure is the median of ``--calls`` windows, each window the GPU's energy counter over
``--per-window`` calls. The gap between generate and bare is the cost of generate's Python loop,
which waits for the GPU at every step (its stopping check) and launches its small ops one by one.
"""

from __future__ import annotations

import argparse
import inspect
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gpu_bench import MODELS


def main() -> None:
    import pynvml
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, StaticCache

    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--model", default="llama8b")
    parser.add_argument("--batches", default="1,8")
    parser.add_argument("--prompt-tokens", type=int, default=128)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--calls", type=int, default=3)
    parser.add_argument("--per-window", type=int, default=4)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    gpu = torch.cuda.is_available()  # without one: a check of the script itself, no energy
    device = torch.device("cuda", 0) if gpu else torch.device("cpu")
    if gpu:
        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByIndex(0)

    def energy_mj() -> int:
        return pynvml.nvmlDeviceGetTotalEnergyConsumption(handle) if gpu else 0

    def drain() -> None:
        if gpu:
            torch.cuda.synchronize(device)

    folder = args.out / "model"
    folder.mkdir(exist_ok=True)
    (folder / "config.json").write_text(json.dumps(MODELS[args.model]))
    config = AutoConfig.from_pretrained(folder)
    torch.manual_seed(0)
    with device:
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16).eval()
    weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    forward = inspect.signature(type(model).forward).parameters
    cache_kw = "cache" if "cache" in forward else "past_key_values"

    def window(fn, calls: int) -> tuple[float, float]:
        """Seconds and joules of ``calls`` calls of ``fn`` (GPU drained at both ends)."""
        drain()
        e0 = energy_mj()
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        drain()
        t1 = time.perf_counter()
        e1 = energy_mj()
        return (t1 - t0) / calls, (e1 - e0) / 1000 / calls

    def median_window(fn) -> tuple[float, float]:
        runs = [window(fn, args.per_window) for _ in range(args.calls)]
        return statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)

    def copy_bandwidth() -> float:
        """Bytes read plus bytes written per second by a device-to-device copy of 4 GiB."""
        a = torch.empty(2**31 if gpu else 2**24, dtype=torch.uint16, device=device)
        b = torch.empty_like(a)
        b.copy_(a)
        seconds, _ = median_window(lambda: b.copy_(a))
        return 2 * a.numel() * a.element_size() / seconds

    bandwidth = copy_bandwidth()
    step = model.get_compiled_call(None)  # the callable generate compiles the decode step with

    def loops(size: int) -> tuple:
        prompt = torch.randint(
            3, config.vocab_size, (size, args.prompt_tokens), device=device, dtype=torch.long
        )
        mask = torch.ones_like(prompt)
        cache = StaticCache(config=config, max_cache_len=args.prompt_tokens + args.tokens + 8)

        @torch.inference_mode()
        def generate(new: int) -> None:
            cache.reset()
            model.generate(
                input_ids=prompt,
                attention_mask=mask,
                max_new_tokens=new,
                min_new_tokens=new,
                do_sample=False,
                pad_token_id=0,
                **{cache_kw: cache},
            )

        @torch.inference_mode()
        def bare(new: int) -> None:
            cache.reset()
            positions = torch.arange(args.prompt_tokens, device=device)
            out = model(input_ids=prompt, cache_position=positions, **{cache_kw: cache})
            token = out.logits[:, -1].argmax(-1, keepdim=True)
            for i in range(new - 1):
                position = torch.tensor([args.prompt_tokens + i], device=device)
                torch.compiler.cudagraph_mark_step_begin()
                out = step(input_ids=token, cache_position=position, **{cache_kw: cache})
                token = out.logits[:, -1].argmax(-1, keepdim=True)

        return generate, bare

    rows = []
    for size in (int(n) for n in args.batches.split(",")):
        generate, bare = loops(size)
        start = time.perf_counter()
        for _ in range(3):  # compiling and recording the graphs, outside every window
            generate(args.tokens)
            bare(args.tokens)
        warm_s = time.perf_counter() - start
        prefill_s, prefill_j = median_window(lambda g=generate: g(1))
        figures = {}
        for name, fn in (("generate", generate), ("bare", bare)):
            seconds, joules = median_window(lambda fn=fn: fn(args.tokens))
            steps = args.tokens - 1
            figures[name] = {
                "call_s": seconds,
                "call_j": joules,
                "step_ms": (seconds - prefill_s) / steps * 1000,
                "step_j": (joules - prefill_j) / steps,
                "j_per_output_token": joules / (size * args.tokens),
                "decode_tokens_per_s": size * steps / (seconds - prefill_s),
                "average_power_w": joules / seconds,
            }
        rows.append(
            {
                "batch": size,
                "prompt_tokens": args.prompt_tokens,
                "new_tokens": args.tokens,
                "warm_s": warm_s,
                "prefill_s": prefill_s,
                "prefill_j": prefill_j,
                **figures,
                "weights_ms": weight_bytes / bandwidth * 1000,
            }
        )
        (args.out / "decode_overhead.json").write_text(
            json.dumps(
                {
                    "model": args.model,
                    "weight_bytes": weight_bytes,
                    "copy_bandwidth_bytes_per_s": bandwidth,
                    "gpu": torch.cuda.get_device_name(device) if gpu else "cpu",
                    "torch": torch.__version__,
                    "transformers": sys.modules["transformers"].__version__,
                    "rows": rows,
                },
                indent=2,
            )
        )
    print(f"\nweights {weight_bytes / 1e9:.2f} GB, copy bandwidth {bandwidth / 1e12:.2f} TB/s")
    print(
        f"{'batch':>5} {'loop':9} {'step ms':>8} {'J/step':>7} {'J/out tok':>9} {'dec tok/s':>9} "
        f"{'avg W':>6} {'weights ms':>10}"
    )
    for r in rows:
        for name in ("generate", "bare"):
            f = r[name]
            print(
                f"{r['batch']:5d} {name:9} {f['step_ms']:8.2f} {f['step_j']:7.3f} "
                f"{f['j_per_output_token']:9.3f} {f['decode_tokens_per_s']:9.1f} "
                f"{f['average_power_w']:6.1f} {r['weights_ms']:10.2f}"
            )


if __name__ == "__main__":
    main()
