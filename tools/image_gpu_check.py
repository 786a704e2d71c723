"""Text-to-image runs on a GPU: a FLUX.1-dev-shaped pipeline with random weights, at the protocol.

Runs the benchmark (``--config-name image_generation``, ``backend.no_weights=True``: the bundled
component configs, nothing downloaded) at 30 steps, 1024x1024, batch 1, with several measured
passes, and prints one table: Wh per 1,000 images, images/s, average and idle power, the spread
over passes, and the first pass against the later ones. Every report stays under --out.

    python tools/image_gpu_check.py --out DIR [--model black-forest-labs/FLUX.1-dev]
        [--prompts 8] [--repeats 3] [key=value ...]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from energy_bench import contract


def bench(out: Path, args: argparse.Namespace) -> dict:
    command = [
        sys.executable, "-m", "energy_bench", "--config-name", contract.IMAGE_CONFIG_NAME,
        "--results-dir", str(out), f"backend.model={args.model}", "backend.no_weights=True",
        "scenario.dataset_name=bundled", f"scenario.num_samples={args.prompts}",
        f"scenario.repeats={args.repeats}", "energy.idle_seconds=5", "scenario.save_images=2",
        *args.overrides,
    ]  # fmt: skip
    start = time.perf_counter()
    done = subprocess.run(command, check=False, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    report = json.loads((out / contract.REPORT_FILE).read_text())
    report["_wall_s"] = time.perf_counter() - start
    if done.returncode:
        sys.exit(f"benchmark failed ({done.returncode}): {report.get('error')}")
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--model", default="black-forest-labs/FLUX.1-dev")
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    r = bench(args.out / args.model.replace("/", "_"), args)
    images, energy, prov = r["images"], r["energy"], r["provenance"]
    passes = [p["energy_j"] for p in energy["repeats"]]
    later = statistics.fmean(passes[1:]) if len(passes) > 1 else None
    rows = [
        ("model (random weights)", args.model),
        ("pipeline", images["pipeline"]),
        ("parameters", f"{prov['parameters']:,} {prov['component_parameters']}"),
        ("device", ", ".join(prov["device_names"])),
        ("diffusers / torch", f"{prov['diffusers_version']} / {prov['torch_version']}"),
        ("protocol", f"{images['num_inference_steps']} steps, {images['resolution']}, "
         f"guidance {images['guidance_scale']}, CFG {images['classifier_free_guidance']}"),
        ("images per pass", images["images"]),
        ("Wh per 1,000 images", f"{energy['wh_per_1000_queries']:.2f}"),
        ("images/s", f"{images['images_per_second']:.4f}"),
        ("s per image", f"{images['avg_latency_per_image_s']:.3f}"),
        ("average power W", f"{energy['average_power_w']:.1f}"),
        ("idle power W", f"{energy['idle_power_w']:.1f}"),
        ("pass energies J", " ".join(f"{j:.1f}" for j in passes)),
        ("CV over passes", f"{energy['repeat_energy_cv'] * 100:.2f} %"),
        ("first pass / later passes", f"{passes[0] / later:.4f}" if later else "-"),
        ("warmup windows J", " ".join(f"{w['energy_j']:.1f}" for w in energy["warmup_windows"])),
        ("trace deviation max", energy["trace_deviation_max"]),
        ("flags", {k: v for k, v in energy["flags"].items() if v} or "none"),
        ("load s / run wall s", f"{prov['load_duration_s']:.1f} / {r['_wall_s']:.1f}"),
    ]  # fmt: skip
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")


if __name__ == "__main__":
    main()
