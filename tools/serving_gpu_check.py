"""The serving backend on a GPU, against the PyTorch backend on the same model and prompts.

A random-weight model of Llama-3.1-8B's shape (bf16) is written to a folder, measured once by the
PyTorch backend in this process's benchmark, then served by ``transformers serve`` (continuous
batching) on the same GPU and measured through ``backend.type=vllm`` at concurrency 1 and 8.
Prints one table; every run's report stays under --out.

    python tools/serving_gpu_check.py --out DIR [--prompts 16] [--tokens 32] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from energy_bench import contract

ROOT = Path(__file__).resolve().parent.parent
TOKENIZER = ROOT / "examples" / "tiny-model"


def make_model(folder: Path) -> None:
    """Random bf16 weights of the 8B shape, built on the GPU, with the tiny model's tokenizer."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(TOKENIZER)
    config = LlamaConfig(
        vocab_size=128256, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
        num_attention_heads=32, num_key_value_heads=8, max_position_embeddings=8192,
        rope_theta=500000.0, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
        torch_dtype="bfloat16",
    )  # fmt: skip
    torch.set_default_dtype(torch.bfloat16)
    with torch.device("cuda"):
        torch.manual_seed(0)
        model = LlamaForCausalLM(config)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    del model
    torch.cuda.empty_cache()


def bench(out: Path, model: Path, args: argparse.Namespace, *extra: str) -> dict:
    command = [
        sys.executable, "-m", "energy_bench", "--results-dir", str(out),
        f"backend.model={model}", "scenario.dataset_name=bundled",
        f"scenario.num_samples={args.prompts}", "energy.idle_seconds=5",
        f"scenario.repeats={args.repeats}",
        f"scenario.generate_kwargs.max_new_tokens={args.tokens}",
        f"scenario.generate_kwargs.min_new_tokens={args.tokens}", *extra,
    ]  # fmt: skip
    start = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True)
    print(f"{out.name}: exit {done.returncode} in {time.monotonic() - start:.0f} s", flush=True)
    if done.returncode:
        print(done.stderr[-3000:], flush=True)
        return {}
    return json.loads((out / contract.REPORT_FILE).read_text())


def serve(model: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    serve = shutil.which("transformers") or "transformers"
    command = [
        serve, "serve", str(model), "--host", "127.0.0.1", "--port", str(port),
        "--device", "cuda:0", "--dtype", "bfloat16", "--continuous-batching",
    ]  # fmt: skip
    proc = subprocess.Popen(command, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()[-3000:]
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                return proc
        except OSError:
            time.sleep(1)
    raise SystemExit("the server did not start")


def row(name: str, report: dict) -> str:
    if not report:
        return f"| {name} | failed |"
    s, e = report["summary"], report["energy"]
    tokens = s["total_completion_tokens"]
    repeats = ", ".join(f"{r['energy_j']:.1f}" for r in e["repeats"])
    return (
        f"| {name} | {e['wh_per_1000_queries']:.3f} | {e['gpu_energy_j'] / tokens:.3f} | "
        f"{s['output_tokens_per_second']:.1f} | {e['average_power_w']:.0f} | "
        f"{e['idle_power_w']:.0f} | {tokens} | {s['budget_mismatches']} | "
        f"{s['requests_per_second']:.2f} | {100 * (e['repeat_energy_cv'] or 0):.2f} % | "
        f"{repeats} |"
    )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    model = Path(os.environ.get("SERVING_CHECK_MODEL", "/tmp/llama8b-shape"))
    if not (model / "config.json").is_file():
        start = time.monotonic()
        make_model(model)
        print(f"model written in {time.monotonic() - start:.0f} s", flush=True)
    reports = {"pytorch eager, batch 1": bench(args.out / "pytorch", model, args,
                                               "backend.generation=eager")}  # fmt: skip
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.monotonic()
    server = serve(model, port, args.out / "server.log")
    print(f"server up in {time.monotonic() - start:.0f} s", flush=True)
    try:
        url = f"http://127.0.0.1:{port}/v1"
        for concurrency in (1, 8):
            name = f"served, concurrency {concurrency}"
            reports[name] = bench(
                args.out / f"served_c{concurrency}", model, args, "backend.type=vllm",
                f"backend.endpoint={url}", "backend.server_gpus=0",
                f"scenario.concurrency={concurrency}",
            )  # fmt: skip
    finally:
        server.terminate()
        server.wait(timeout=60)
    print("| run | Wh/1000 queries | J/output token | output tok/s | avg W | idle W | "
          "output tokens | budget mismatches | requests/s | CV | repeats (J) |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, report in reports.items():
        print(row(name, report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
