"""Energy figures of no-weights models on the GPU: paths, warm vs cold runs, repeats.

One call on the GPU machine runs this; it prints a short table and writes every figure as JSON.
    python3 tools/gpu_bench.py --out DIR [--only llama1.5b,llama8b] [--paths eager,compiled]
        [--modes warm] [--budget-s 540] [key=value ...]
(where the project is not installed, as on the GPU machine: PYTHONPATH=container before it)
Each variant runs the container benchmark in a fresh process (so a cold first pass is really
cold): 100 bundled prompts, reasoning off (exactly 10 new tokens), batch 1, bf16, 3 repeats;
trailing ``key=value`` overrides change the workload for every variant.
Modes: warm (the default full warmup pass), batches2 (two warmup batches), cold (no warmup).
Paths: the ``backend.generation`` values (eager, compiled).
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
    # ~0.2B: a quick check of the script itself (also on a CPU).
    "llama-small": {
        **LLAMA,
        "hidden_size": 1024,
        "intermediate_size": 4096,
        "num_hidden_layers": 16,
        "num_attention_heads": 16,
        "vocab_size": 32000,
    },
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


def run(name: str, config: dict, mode: str, path: str, workdir: Path, extra: list[str]) -> dict:
    model = workdir / name
    model.mkdir(exist_ok=True)
    (model / "config.json").write_text(json.dumps(config))
    results = workdir / f"{name}-{mode}-{path}"
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
            f"backend.generation={path}",
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
    generation = r["provenance"]["generation"]
    prompts = s["total_prompts"]
    return {
        "variant": results.name,
        "generation_path": r["generation_path"],
        "fallback_reason": generation["fallback_reason"],
        "compile_s": generation["compile_seconds"],
        "graphs_compiled": generation["graphs_compiled"],
        "cuda_graph_skips": generation["cuda_graph_skips"],
        "compile_window_s": (e["compile_window"] or {}).get("duration_s"),
        "j_per_output_token": [p["energy_j"] / p["completion_tokens"] for p in passes],
        # Decode: the tokens after each prompt's first, over the time the prefill pass did not take.
        "decode_tokens_per_s": [
            (p["completion_tokens"] - prompts) / (p["duration_s"] - p["prefill_duration_s"])
            for p in passes
        ],
        "prefill_j": [p["prefill_j"] for p in passes],
        "decode_j": [p["decode_j"] for p in passes],
        "graphs_built_in_windows": [p["graphs_built"] for p in passes],
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


def num(value: float | None, width: int, digits: int) -> str:
    """A figure for the table ("-" where it was not measured)."""
    return f"{value:{width}.{digits}f}" if value is not None else f"{'-':>{width}}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--only", default="llama1.5b,llama8b")
    parser.add_argument("--modes", default="warm")
    parser.add_argument("--paths", default="eager,compiled")
    parser.add_argument("--budget-s", type=float, default=540)
    parser.add_argument("extra", nargs="*")
    args = parser.parse_args()
    deadline = time.monotonic() + args.budget_s
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.only.split(","):
            for mode in args.modes.split(","):
                for path in args.paths.split(","):
                    variant = f"{name}-{mode}-{path}"
                    longest = max((r.get("wall_s", 0.0) for r in rows), default=0.0)
                    if rows and time.monotonic() + 1.3 * longest > deadline:
                        rows.append({"variant": variant, "error": "skipped: GPU-time budget"})
                        continue
                    rows.append(run(name, MODELS[name], mode, path, Path(tmp), args.extra))
                    # Written after every variant: a run cut short still leaves its figures.
                    (args.out / "gpu_bench.json").write_text(json.dumps(rows, indent=2))
    print(
        f"\n{'variant':27} {'path':8} {'Wh/1k q':>8} {'J/out tok (passes)':>20} {'out tok/s':>9} "
        f"{'dec tok/s':>9} {'avg W':>6} {'idle W':>6} {'CV %':>5} {'compile s':>9} {'flags'}"
    )
    for r in rows:
        if "error" in r:
            print(f"{r['variant']:27} ERROR {r['error'][-600:]}")
            continue
        per_token = "/".join(f"{j:.3f}" for j in r["j_per_output_token"])
        flags = ",".join(k for k, v in r["flags"].items() if v) or "-"
        compile_s = f"{r['compile_s']:.1f}" if r["compile_s"] is not None else "-"
        cv = r["repeat_cv"] * 100 if r["repeat_cv"] is not None else None
        print(
            f"{r['variant']:27} {r['generation_path']:8} {num(r['wh_per_1000_queries'], 8, 3)} "
            f"{per_token:>20} {num(r['completion_tokens_per_s'], 9, 1)} "
            f"{num(min(r['decode_tokens_per_s']), 9, 1)} {num(r['average_power_w'], 6, 1)} "
            f"{num(r['idle_power_w'], 6, 1)} {num(cv, 5, 2)} {compile_s:>9} {flags}"
        )
        if r["fallback_reason"]:
            print(f"{'':27} fell back: {r['fallback_reason']}")


if __name__ == "__main__":
    main()
