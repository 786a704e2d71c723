"""Whole single runs of the container benchmark on the CPU with the tiny offline model."""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import CONTAINER, TINY_EOS_MODEL, TINY_MODEL
from fakes import FakeBackend

from energy_bench import contract
from energy_bench.benchmark import run_benchmark
from energy_bench.config import load_config
from energy_bench.energy.sources import EstimateSource
from energy_bench.errors import BenchmarkAborted

OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
BASE = [
    f"backend.model={TINY_MODEL}",
    "backend.torch_dtype=float32",
    "scenario.dataset_name=bundled",
    "energy.idle_seconds=0.3",
]


def bench(results: Path, *overrides: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "energy_bench", "--results-dir", str(results), *BASE, *overrides],
        capture_output=True,
        text=True,
        timeout=300,
        env={**OFFLINE, **env},
    )


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def off_run(tmp_path_factory):
    results = tmp_path_factory.mktemp("off")
    done = bench(
        results,
        "scenario.num_samples=12",
        "scenario.batch_size=3",
        "scenario.repeats=2",
        "scenario.reasoning=False",
        "scenario.reasoning_params.control=chat_template_kwarg",
        "energy.sample_hz=100",
        AI_ENERGY_SCORE_CPUS="0",  # the core the sweep gave this run
    )
    assert done.returncode == 0, done.stderr
    return results


def test_the_report_is_what_the_contract_promises(off_run):
    report = json.loads((off_run / "benchmark_report.json").read_text())
    assert contract.report_problem(report) == ""
    s, e = report["summary"], report["energy"]
    assert s["throughput_tokens_per_second"] == pytest.approx(
        s["total_tokens"] / s["total_duration_seconds"]
    )
    assert s["output_tokens_per_second"] == pytest.approx(
        s["total_completion_tokens"] / s["total_duration_seconds"]
    )
    (device,) = e["gpus"]  # one measured device, with its own energy and idle power
    assert device["energy_j"] == pytest.approx(e["gpu_energy_j"])
    assert device["idle_power_w"] == pytest.approx(e["idle_power_w"])
    assert set(e["flags"]) == set(contract.FLAG_KEYS)


@pytest.mark.parametrize("value", ["0-3", "abc", "99999"])
def test_cores_that_are_not_this_hosts_are_a_config_error(tmp_path, value):
    done = bench(tmp_path, "scenario.num_samples=1", AI_ENERGY_SCORE_CPUS=value)
    assert done.returncode == 2
    assert "AI_ENERGY_SCORE_CPUS" in contract.parse_error_line(done.stderr)[1]


def test_the_run_keeps_to_the_cores_it_was_given(off_run):
    prov = json.loads((off_run / "benchmark_report.json").read_text())["provenance"]
    assert prov["cpus"] == [0] and prov["torch_threads"] == 1  # torch's own count, one core
    assert prov["omp_wait_policy"] == "PASSIVE"  # waiting threads sleep: sharing cores is safe


def test_every_output_is_written(off_run):
    names = {p.name for p in off_run.iterdir()}
    assert {
        "benchmark_report.json",
        "benchmark_results.csv",
        "GPU_ENERGY_WH.txt",
        "GPU_ENERGY_SUMMARY.json",
        "per_prompt.csv",
        "power_trace.csv",
    } <= names
    assert not [n for n in names if n.startswith(".")]  # no temporary files left


def test_reasoning_off_generates_exactly_ten_tokens(off_run):
    per_prompt = rows(off_run / "per_prompt.csv")
    assert len(per_prompt) == 24  # 12 prompts x 2 repeats
    assert {r["completion_tokens"] for r in per_prompt} == {"10"}
    assert all(r["ok"] == "True" and float(r["ttft_s"]) > 0 for r in per_prompt)
    assert all(float(r["ttft_s"]) < float(r["latency_s"]) for r in per_prompt)
    report = json.loads((off_run / "benchmark_report.json").read_text())
    assert report["summary"]["total_completion_tokens"] == 120
    assert report["summary"]["successful_prompts"] == 12


def test_energy_figures_are_consistent_and_labelled(off_run):
    report = json.loads((off_run / "benchmark_report.json").read_text())
    e, s = report["energy"], report["summary"]
    assert e["energy_source"] == "estimate" and e["estimated"] is True
    assert e["gpu_energy_wh"] > 0
    assert e["gpu_energy_j"] == pytest.approx(e["gpu_energy_wh"] * 3600)
    assert e["wh_per_1000_queries"] == pytest.approx(e["gpu_energy_wh"] / 12 * 1000)
    assert e["tokens_per_joule"] == pytest.approx(s["total_tokens"] / e["gpu_energy_j"])
    assert e["co2_emissions_g"] == pytest.approx(e["gpu_energy_wh"] / 1000 * 400.0)
    assert len(e["repeats"]) == 2 and e["repeat_energy_cv"] >= 0
    assert e["prefill_wh"] + e["decode_wh"] == pytest.approx(e["gpu_energy_wh"])
    assert [w["name"] for w in e["warmup_windows"]] == ["warmup_pass"]
    # An estimate counts work: no idle baseline is measured, its idle power is zero by design.
    assert e["idle_baseline"] is None and e["idle_power_w"] == 0.0
    assert e["energy_above_idle_wh"] == pytest.approx(e["gpu_energy_wh"])
    assert [d["idle_power_w"] for d in e["gpus"]] == [0.0]
    assert (off_run / "GPU_ENERGY_WH.txt").read_text() == f"{e['gpu_energy_wh']:.2f}\n"
    summary = json.loads((off_run / "GPU_ENERGY_SUMMARY.json").read_text())
    assert summary["units"] == "Wh" and summary["total"] == e["gpu_energy_wh"]
    assert {"format", "preprocess_wh", "prefill_wh", "decode_wh"} <= summary.keys()
    assert report["reasoning_control"] == "chat_template_kwarg"
    assert report["reasoning"]["template_kwargs"] == {"enable_thinking": False}
    prov = report["provenance"]
    assert prov["config_hash"] and prov["seed"] == 42 and prov["transformers_version"]
    # On a CPU ``auto`` generates eagerly, and the report says which path was measured.
    assert report["generation_path"] == prov["generation"]["path"] == "eager"
    assert prov["generation"]["requested"] == "auto"
    assert summary["prefill_decode_split"].startswith("measured")
    (flat,) = rows(off_run / "benchmark_results.csv")
    assert float(flat["energy.gpu_energy_wh"]) == pytest.approx(e["gpu_energy_wh"])
    trace = rows(off_run / "power_trace.csv")
    assert {"repeat_0", "prefill_0", "repeat_1", "prefill_1"} <= {r["window"] for r in trace}
    assert "idle_baseline" not in {r["window"] for r in trace}


def test_reasoning_on_uses_the_on_budget(tmp_path):
    done = bench(
        tmp_path,
        "scenario.num_samples=4",
        "scenario.repeats=1",
        "scenario.warmup_pass=False",
        "scenario.reasoning=True",
        "scenario.reasoning_params.control=chat_template_kwarg",
        "scenario.generate_kwargs.max_new_tokens=24",
        "scenario.generate_kwargs.min_new_tokens=1",
    )
    assert done.returncode == 0, done.stderr
    counts = [int(r["completion_tokens"]) for r in rows(tmp_path / "per_prompt.csv")]
    assert counts == [24, 24, 24, 24]  # the tiny model never stops early: the on budget's maximum
    report = json.loads((tmp_path / "benchmark_report.json").read_text())
    assert report["reasoning"]["template_kwargs"] == {"enable_thinking": True}


def test_same_seed_same_tokens_with_sampling(tmp_path):
    args = [
        f"backend.model={TINY_EOS_MODEL}",  # sampled hot, it stops after a random number of tokens
        "scenario.num_samples=4",
        "scenario.warmup_pass=False",
        "scenario.repeats=2",
        "scenario.generate_kwargs.do_sample=True",
        "scenario.generate_kwargs.temperature=3.0",
        "scenario.generate_kwargs.top_k=0",
        "scenario.generate_kwargs.max_new_tokens=16",
        "scenario.generate_kwargs.min_new_tokens=1",
        "energy.idle_seconds=0",
    ]
    assert bench(tmp_path, *args).returncode == 0
    per_prompt = rows(tmp_path / "per_prompt.csv")
    first = [r["completion_tokens"] for r in per_prompt if r["repeat"] == "0"]
    second = [r["completion_tokens"] for r in per_prompt if r["repeat"] == "1"]
    assert len(set(first)) > 1  # the lengths are the sampler's: equal only if seeded alike
    assert first == second  # each repeat is re-seeded


def test_missing_model_fails_with_a_report(tmp_path):
    results = tmp_path / "out"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "energy_bench",
            "--results-dir",
            str(results),
            f"backend.model={tmp_path / 'nope'}",
            "scenario.dataset_name=bundled",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=OFFLINE,
    )
    assert done.returncode == 8  # model not found, apart from gated (7) and unloadable (3)
    assert done.stderr.strip().splitlines()[-1].startswith("energy_bench: error: ModelNotFound")
    report = json.loads((results / "benchmark_report.json").read_text())
    assert report["status"] == "failed" and report["error"]["exit_code"] == 8


class FlakyBackend(FakeBackend):
    """A backend whose generate fails on the given call numbers."""

    def __init__(self, fail_calls):
        super().__init__()
        self.fail_calls = set(fail_calls)

    def generate(self, batch, max_new_tokens=None):
        gen = super().generate(batch, max_new_tokens)
        if self.calls in self.fail_calls:
            raise RuntimeError(f"boom {self.calls}")
        return gen


def config(**extra):
    items = [
        "backend.model=x",
        "scenario.dataset_name=bundled",
        "scenario.num_samples=6",
        "scenario.warmup_pass=False",
        "scenario.warmup_runs=0",
        "energy.idle_seconds=0",
    ]
    return load_config("text_generation", items + [f"{k}={v}" for k, v in extra.items()])


def test_isolated_failures_are_counted():
    backend = FlakyBackend({2, 4})
    data = run_benchmark(
        config(), backend_factory=lambda *_: backend, source_factory=lambda _, n: EstimateSource(n)
    )
    records = data.passes[0].records
    assert [r.ok for r in records] == [True, False, True, False, True, True]
    assert records[1].error == "RuntimeError: boom 2"


def test_three_failures_in_a_row_abort():
    backend = FlakyBackend({2, 3, 4})
    with pytest.raises(
        BenchmarkAborted, match="3 batches in a row failed; last: RuntimeError: boom 4"
    ):
        run_benchmark(
            config(),
            backend_factory=lambda *_: backend,
            source_factory=lambda _, n: EstimateSource(n),
        )


def test_container_package_does_not_import_the_orchestrator():
    pattern = re.compile(r"^\s*(from|import)\s+orchestrator\b", re.MULTILINE)
    offenders = [p for p in CONTAINER.rglob("*.py") if pattern.search(p.read_text())]
    assert offenders == []
