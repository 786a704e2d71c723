"""Energy figures of no-weights models on the GPU: warm vs cold runs, repeats, meter overhead.

One call on the GPU machine runs this; it prints a short table and writes every figure as JSON.
    python3 tools/gpu_bench.py --out DIR [--only llama1.5b,llama8b] [--budget-s 540]
(where the project is not installed, as on the GPU machine: PYTHONPATH=container before it)
Each variant runs the container benchmark in a fresh process (so a cold first pass is really
cold): 100 bundled prompts, reasoning off (exactly 10 new tokens), batch 1, bf16, 3 repeats.
Modes: warm (the default full warmup pass), batches2 (two warmup batches), cold (no warmup).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from energy_bench import contract

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "examples" / "tiny-model"

LLAMA = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "num_key_value_heads": 8,
    "vocab_size": 128256,
    "max_position_embeddings": 8192,
    "rope_theta": 500000.0,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "tie_word_embeddings": False,
}
MODELS = {
    # ~1.5B: Llama-3.2-1B widths with 20 layers.
    "llama1.5b": {
        **LLAMA,
        "hidden_size": 2048,
        "intermediate_size": 8192,
        "num_hidden_layers": 20,
        "num_attention_heads": 32,
        "tie_word_embeddings": True,
    },
    # Llama-3.1-8B shape.
    "llama8b": {
        **LLAMA,
        "hidden_size": 4096,
        "intermediate_size": 14336,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
    },
    # gpt-oss-20b shape (bf16 random weights instead of MXFP4).
    "gptoss20b": {
        "architectures": ["GptOssForCausalLM"],
        "model_type": "gpt_oss",
        "num_hidden_layers": 24,
        "num_local_experts": 32,
        "num_experts_per_tok": 4,
        "layer_types": ["sliding_attention", "full_attention"] * 12,
    },
}


WARMUP = {
    "warm": [],  # the default: one full unmeasured pass
    "batches2": ["scenario.warmup_pass=False", "scenario.warmup_runs=2"],
    "cold": ["scenario.warmup_pass=False", "scenario.warmup_runs=0"],
}


def run(name: str, config: dict, mode: str, workdir: Path, extra: list[str]) -> dict:
    model = workdir / name
    model.mkdir(exist_ok=True)
    (model / "config.json").write_text(json.dumps(config))
    results = workdir / f"{name}-{mode}"
    start = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "energy_bench",
            "--results-dir",
            str(results),
            f"backend.model={model}",
            f"backend.processor={TINY}",
            "backend.no_weights=True",
            "scenario.dataset_name=bundled",
            "scenario.num_samples=100",
            "scenario.repeats=3",
            *WARMUP[mode],
            "energy.idle_seconds=5",
            *extra,
        ],
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - start
    if done.returncode != 0:
        return {"variant": results.name, "error": done.stderr[-1500:], "wall_s": wall}
    r = json.loads((results / contract.REPORT_FILE).read_text())
    e, s = r["energy"], r["summary"]
    passes = e["repeats"]
    return {
        "variant": results.name,
        "wall_s": wall,
        "load_s": r["provenance"]["load_duration_s"],
        "gpu": r["provenance"]["device_names"][0],
        "wh_per_1000_queries": e["wh_per_1000_queries"],
        "tokens_per_joule": e["tokens_per_joule"],
        "completion_tokens_per_joule": e["completion_tokens_per_joule"],
        "completion_tokens_per_s": s["output_tokens_per_second"],
        "average_power_w": e["average_power_w"],
        "idle_power_w": e["idle_power_w"],
        "energy_above_idle_wh": e["energy_above_idle_wh"],
        "repeat_cv": e["repeat_energy_cv"],
        "pass_energy_j": [p["energy_j"] for p in passes],
        "pass_duration_s": [p["duration_s"] for p in passes],
        "first_over_rest": passes[0]["energy_j"]
        / (sum(p["energy_j"] for p in passes[1:]) / (len(passes) - 1)),
        "trace_deviation": [p["trace_deviation"] for p in passes],
        "sampler_cpu_share": e["sampler_cpu_share"],
        "prompt_tokens": s["total_prompt_tokens"],
        "completion_tokens": s["total_completion_tokens"],
        "flags": e["flags"],
        "driver": r["provenance"].get("driver_version"),
        "torch": r["provenance"]["torch_version"],
        "transformers": r["provenance"]["transformers_version"],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--only", default="llama1.5b,llama8b")
    parser.add_argument("--modes", default="warm,cold")
    parser.add_argument("--budget-s", type=float, default=540)
    parser.add_argument("extra", nargs="*")
    args = parser.parse_args()
    deadline = time.monotonic() + args.budget_s
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.only.split(","):
            for mode in args.modes.split(","):
                longest = max((r.get("wall_s", 0.0) for r in rows), default=0.0)
                if rows and time.monotonic() + 1.3 * longest > deadline:
                    rows.append({"variant": f"{name}-{mode}", "error": "skipped: GPU-time budget"})
                    continue
                rows.append(run(name, MODELS[name], mode, Path(tmp), args.extra))
                # Written after every variant: a run cut short still leaves its figures.
                (args.out / "gpu_bench.json").write_text(json.dumps(rows, indent=2))
    print(
        f"\n{'variant':18} {'Wh/1k q':>8} {'tok/J':>7} {'tok/s':>7} {'avg W':>6} {'idle W':>6} "
        f"{'CV %':>5} {'1st/rest':>8} {'trace %':>7} {'smp CPU %':>9}"
    )
    for r in rows:
        if "error" in r:
            print(f"{r['variant']:18} ERROR {r['error'][-300:]}")
            continue
        dev = max((abs(d) for d in r["trace_deviation"] if d is not None), default=0.0) * 100
        print(
            f"{r['variant']:18} {r['wh_per_1000_queries']:8.3f} {r['tokens_per_joule']:7.3f} "
            f"{r['completion_tokens_per_s']:7.1f} {r['average_power_w']:6.1f} "
            f"{r['idle_power_w']:6.1f} "
            f"{r['repeat_cv'] * 100:5.2f} {r['first_over_rest']:8.2f} {dev:7.2f} "
            f"{r['sampler_cpu_share'] * 100:9.3f}"
        )


if __name__ == "__main__":
    main()
