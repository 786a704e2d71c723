"""Real NVML measurements on an NVIDIA GPU (an H200 here; skipped where there is none)."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import pytest
from conftest import TINY_MODEL

pytestmark = pytest.mark.gpu

SMALL_LLAMA = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "hidden_size": 1024,
    "intermediate_size": 4096,
    "num_hidden_layers": 16,
    "num_attention_heads": 16,
    "num_key_value_heads": 8,
    "vocab_size": 32000,
    "max_position_embeddings": 4096,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "pad_token_id": 0,
}


@pytest.fixture(scope="module")
def gpu_run(tmp_path_factory):
    model = tmp_path_factory.mktemp("llama")
    (model / "config.json").write_text(json.dumps(SMALL_LLAMA))
    results = tmp_path_factory.mktemp("results")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "energy_bench",
            "--results-dir",
            str(results),
            f"backend.model={model}",
            f"backend.processor={TINY_MODEL}",
            "backend.no_weights=True",
            "scenario.dataset_name=bundled",
            "scenario.num_samples=60",
            "scenario.repeats=2",
            "energy.idle_seconds=3",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return results, json.loads((results / "benchmark_report.json").read_text())


def test_nvml_energy_is_real(gpu_run):
    _, report = gpu_run
    e = report["energy"]
    assert e["energy_source"] == "nvml" and e["estimated"] is False
    assert e["gpu_energy_wh"] > 0 and e["energy_above_idle_wh"] > 0
    assert 20 < e["idle_power_w"] < 300, e["idle_power_w"]
    assert e["idle_power_w"] < e["average_power_w"] < 800


def test_trace_agrees_with_counter(gpu_run):
    _, report = gpu_run
    for p in report["energy"]["repeats"]:
        assert p["duration_s"] > 1.0 and not p["short_window"] and not p["counter_reset"]
        assert abs(p["trace_deviation"]) < 0.05, p


def test_exactly_one_gpu_is_measured(gpu_run):
    import torch

    results, report = gpu_run
    devices = report["energy"]["devices"]
    assert len(devices) == 1
    assert devices[0]["uuid"] == "GPU-" + str(torch.cuda.get_device_properties(0).uuid)
    assert all(len(p["device_energy_j"]) == 1 for p in report["energy"]["repeats"])
    with (results / "power_trace.csv").open() as f:
        assert {row["device_uuid"] for row in csv.DictReader(f)} == {devices[0]["uuid"]}
    assert report["provenance"]["driver_version"] and report["provenance"]["devices"] == ["cuda:0"]


def test_exact_tokens_on_gpu(gpu_run):
    results, report = gpu_run
    with (results / "per_prompt.csv").open() as f:
        assert {r["completion_tokens"] for r in csv.DictReader(f)} == {"10"}
    assert report["summary"]["total_completion_tokens"] == 600


def test_the_default_path_on_a_gpu_is_compiled_outside_every_measured_window(gpu_run):
    results, report = gpu_run
    assert report["generation_path"] == "compiled"
    generation = report["provenance"]["generation"]
    assert (generation["requested"], generation["fallback_reason"]) == ("auto", "")
    assert generation["graphs_compiled"] >= 1 and generation["cuda_graph_skips"] == 0
    assert generation["compile_seconds"] > 0
    e = report["energy"]
    assert e["compile_window"]["name"] == "compile" and e["flags"]["recompiled"] is False
    assert [p["graphs_built"] for p in e["repeats"]] == [0, 0]
    with (results / "power_trace.csv").open() as f:
        windows = list(dict.fromkeys(row["window"] for row in csv.DictReader(f)))
    assert windows.index("compile") < windows.index("warmup_pass") < windows.index("repeat_0")
    # The prefill pass is measured, and costs less than the full pass it is part of.
    for p in e["repeats"]:
        assert 0 < p["prefill_j"] < p["energy_j"] and p["decode_j"] > 0


@pytest.mark.parametrize("batch_size", [1, 3])
def test_the_compiled_path_gives_the_eager_tokens_on_a_gpu(batch_size):
    from energy_bench.backends.pytorch import PyTorchBackend
    from energy_bench.config import load_config

    prompts = ["Hi.", "Explain why the sky looks blue on a clear afternoon.", "Name three rivers."]
    tokens = {}
    for path in ("eager", "compiled"):
        cfg = load_config(
            "text_generation",
            [
                f"backend.model={TINY_MODEL}",
                "backend.torch_dtype=float32",
                f"backend.generation={path}",
                f"scenario.batch_size={batch_size}",
            ],
        )
        backend = PyTorchBackend(cfg.backend, cfg.scenario)
        backend.load()
        batches = backend.prepare(prompts)
        backend.compile(batches)
        assert backend.generation_path == path, backend.generation.fallback_reason
        backend.seed(42)
        tokens[path] = [t for b in batches for t in backend.generate(b).tokens]
    assert tokens["compiled"] == tokens["eager"]
    assert [len(t) for t in tokens["eager"]] == [10, 10, 10]


def _gpu_count() -> int:
    import torch

    return torch.cuda.device_count()


@pytest.mark.skipif(_gpu_count() < 2, reason=f"needs two NVIDIA GPUs ({_gpu_count()} visible)")
def test_a_model_is_placed_and_measured_across_exactly_its_two_gpus(tmp_path):
    import pynvml

    model = tmp_path / "llama"
    model.mkdir()
    # Tied input and output embeddings: they must land on one GPU, whatever the map.
    (model / "config.json").write_text(json.dumps({**SMALL_LLAMA, "tie_word_embeddings": True}))
    results = tmp_path / "results"
    pynvml.nvmlInit()
    uuids = [pynvml.nvmlDeviceGetUUID(pynvml.nvmlDeviceGetHandleByIndex(i)) for i in (0, 1)]
    pynvml.nvmlShutdown()
    done = subprocess.run(
        [
            sys.executable, "-m", "energy_bench", "--results-dir", str(results),
            f"backend.model={model}", f"backend.processor={TINY_MODEL}",
            "backend.no_weights=True", "backend.num_gpus=2", "scenario.dataset_name=bundled",
            "scenario.num_samples=20", "energy.idle_seconds=1",
        ],
        capture_output=True, text=True, timeout=600,
        env={**os.environ, "CUDA_VISIBLE_DEVICES": ",".join(uuids)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((results / "benchmark_report.json").read_text())
    gpus = report["energy"]["gpus"]
    assert sorted(g["uuid"] for g in gpus) == sorted(uuids)
    assert all(g["energy_j"] > 0 for g in gpus)
    assert report["energy"]["gpu_energy_j"] == pytest.approx(sum(g["energy_j"] for g in gpus))
    assert len(report["provenance"]["devices"]) == 2
    assert set(report["provenance"]["placement"]) == {"cuda:0", "cuda:1"}  # modules on both
