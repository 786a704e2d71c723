"""Fakes for tests that need no model run: a benchmark report as the benchmark writes it (schema
of energy_bench.contract) for the host's readers, and a backend base for the benchmark's loop."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from energy_bench import contract
from energy_bench.backends.base import Batch, Generation


def fake_report(
    *,
    energy_wh: float = 0.5,
    ok_prompts: int = 100,
    total_prompts: int = 100,
    source: str = "nvml",
    gpu: str = "NVIDIA H200",
    repeats: int = 3,
    cv: float = 0.01,
    short: bool = False,
    throughput: float = 300.0,
    **energy: Any,
) -> dict[str, Any]:
    """A successful report; ``energy`` replaces any figure of its energy section."""
    tokens = 3000
    return {
        "schema_version": contract.SCHEMA_VERSION,
        "status": "ok",
        "error": None,
        "summary": {
            "total_prompts": total_prompts,
            "successful_prompts": ok_prompts,
            "failed_prompts": total_prompts - ok_prompts,
            "total_duration_seconds": 10.0,
            "avg_total_time": 0.1,
            "avg_time_to_first_token": 0.01,
            "total_tokens": tokens,
            "total_prompt_tokens": 2000,
            "total_completion_tokens": 1000,
            "throughput_tokens_per_second": throughput,
            "output_tokens_per_second": throughput / 3,
            "repeats": repeats,
            "batch_size": 1,
            "warmup": "full pass",
        },
        "energy": {
            "energy_source": source,
            "gpu_energy_wh": energy_wh,
            "wh_per_1000_queries": energy_wh / ok_prompts * 1000 if ok_prompts else None,
            "co2_emissions_g": energy_wh / 1000 * 400,
            "tokens_per_joule": tokens / (energy_wh * 3600) if energy_wh else None,
            "avg_energy_per_prompt_wh": energy_wh / ok_prompts if ok_prompts else None,
            "energy_above_idle_wh": energy_wh * 0.4,
            "idle_power_w": 80.0,
            "average_power_w": 180.0,
            "repeat_energy_cv": cv,
            "flags": {
                "short_window": short,
                "counter_reset": False,
                "trace_mismatch": False,
                "foreign_process": False,
                "recompiled": False,
            },
            **energy,
        },
        "provenance": {"device_names": [gpu], "config_hash": "abc"},
        "reasoning_control": "none",
        "reasoning": {"requested_control": "none"},
        "generation_path": "compiled",
    }


def failed_report(
    message: str = "it broke",
    *,
    error_type: str = "BenchmarkError",
    exit_code: int = int(contract.ExitCode.FAILED),
    model: str | None = None,
) -> dict[str, Any]:
    """The report a failed run leaves, as the benchmark's command writes it when a run fails."""
    return {
        "schema_version": contract.SCHEMA_VERSION,
        "status": contract.STATUS_FAILED,
        "error": {"type": error_type, "message": message, "exit_code": exit_code},
        "finished_at": "2026-11-29T10:00:00+00:00",
        "config": None,
        "model": model,
    }


def write_report(folder: Path, report: dict[str, Any]) -> None:
    """Write ``report`` as the benchmark's report file of ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / contract.REPORT_FILE).write_text(json.dumps(report))


class FakeBackend:
    """A backend without a model: batches of one prompt, eager path, nothing compiled.

    Subclasses define ``generate``; ``calls`` counts its calls and ``budgets`` records each
    call's ``max_new_tokens`` (None: the scenario's budget; 1: a prefill pass).
    """

    applied_reasoning = None
    generation_path = contract.GENERATION_EAGER
    parameters = 1_000_000
    prompt_tokens = 5
    truncated_prompts = 0
    budget_mismatches = 0

    def __init__(self) -> None:
        self.device_uuids: list[str] = []
        self.seeds: list[int] = []
        self.calls = 0
        self.budgets: list[int | None] = []

    def load(self) -> None: ...

    def synchronize(self) -> None: ...

    def seed(self, seed: int) -> None:
        self.seeds.append(seed)

    def prepare(self, prompts: Any) -> list[Batch]:
        return [Batch((i,), None, (self.prompt_tokens,)) for i in range(len(prompts))]

    def compile(self, batches: Any) -> None: ...

    def graphs_built(self) -> int:
        return 0

    def generate(self, batch: Batch, max_new_tokens: int | None = None) -> Generation:
        self.calls += 1
        self.budgets.append(max_new_tokens)
        return self.produce(batch, 1 if max_new_tokens == 1 else 10)

    def produce(self, batch: Batch, tokens: int) -> Generation:
        """What one call returns: ``tokens`` new tokens per prompt, in 1 ms."""
        return Generation(batch.prompt_tokens, (tokens,) * len(batch.indices), 0.001, 0.0005)

    def close(self) -> None:
        pass

    def provenance(self) -> dict[str, Any]:
        return {}
