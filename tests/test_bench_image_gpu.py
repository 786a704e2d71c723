"""An image run's energy windows on an NVIDIA GPU (an H200 here; skipped where there is none)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import pytest
from conftest import TINY_PIPELINE

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def image_run(tmp_path_factory):
    results = tmp_path_factory.mktemp("image-results")
    command = [
        sys.executable, "-m", "energy_bench", "--config-name", "image_generation",
        "--results-dir", str(results), f"backend.model={TINY_PIPELINE}",
        "scenario.dataset_name=bundled", "scenario.num_samples=40", "scenario.repeats=2",
        "scenario.save_images=3", "energy.idle_seconds=3",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return results, json.loads((results / "benchmark_report.json").read_text())


def test_an_image_run_is_measured_by_nvml_in_its_own_windows(image_run):
    results, report = image_run
    e = report["energy"]
    assert e["energy_source"] == "nvml" and e["estimated"] is False
    assert e["gpu_energy_wh"] > 0 and e["idle_power_w"] < e["average_power_w"]
    assert [w["name"] for w in e["warmup_windows"]] == ["warmup_0", "warmup_1"]
    assert [p["repeat"] for p in e["repeats"]] == [0, 1]
    for p in e["repeats"]:  # a pass alone: no prefill window beside it
        assert p["prefill_window"] is None and p["prefill_j"] is None
        assert p["successful_prompts"] == 40 and not p["short_window"]
        assert abs(p["trace_deviation"]) < 0.05, p
    with (results / "power_trace.csv").open() as f:
        windows = {row["window"] for row in csv.DictReader(f)}
    assert {"idle", "warmup_0", "warmup_1", "repeat_0", "repeat_1"} <= windows
    assert not any(w.startswith("prefill") for w in windows)


def test_an_image_run_counts_its_images_and_keeps_those_asked_for(image_run):
    results, report = image_run
    images = report["images"]
    assert images["images"] == 40 and images["saved_images"] == 3
    assert images["resolution"] == "1024x1024" and images["num_inference_steps"] == 30
    assert report["provenance"]["dtype"] == "torch.bfloat16"  # auto: bfloat16 on a GPU
    assert sorted(p.name for p in (results / "images").iterdir()) == [
        "image_0000.png",
        "image_0001.png",
        "image_0002.png",
    ]
    wh = report["energy"]["gpu_energy_wh"]
    assert report["energy"]["wh_per_1000_queries"] == pytest.approx(wh / 40 * 1000)
