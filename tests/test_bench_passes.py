"""The pass loop and its report on a device whose joules come only from the work done.

Each generated prompt costs the device exactly ``J_PER_PROMPT`` joules, preprocessing costs
``J_PREPARE`` and waiting costs ``IDLE_W`` per second, so a test can say which joules land in
which window: the warmup outside every measured one, each measured pass exactly one pass.
"""

from __future__ import annotations

import pytest

from energy_bench.backends.base import Batch, Generation
from energy_bench.benchmark import RunData, run_benchmark
from energy_bench.config import load_config
from energy_bench.energy.nvml import PowerSample
from energy_bench.energy.sources import DeviceInfo
from energy_bench.results.report import build_report

J_PER_PROMPT = 10.0
J_PREPARE = 3.0
PROMPTS = 6


class WorkDevice:
    """One GPU whose counter moves only when the backend works."""

    name = "nvml"
    counter_update_s = 0.0

    def __init__(self) -> None:
        self.devices = [DeviceInfo("gpu", "fake", "GPU-0", 0)]
        self.energy_j = 0.0

    def read_j(self) -> list[float]:
        return [self.energy_j]

    def sample(self, *, with_energy: bool) -> list[PowerSample]:
        return [PowerSample(100.0, 1980, 40, self.energy_j if with_energy else None)]

    def gpu_pids(self) -> set[int] | None:
        return None

    def close(self) -> None:
        pass


class WorkBackend:
    """Batches of one prompt; a generate costs the device its joules; chosen calls fail."""

    applied_reasoning = None

    def __init__(self, device: WorkDevice, fail_calls: set[int] = frozenset()) -> None:
        self.device, self.fail_calls, self.calls = device, set(fail_calls), 0
        self.device_uuids = ["GPU-0"]
        self.seeds: list[int] = []

    def load(self) -> None: ...

    def synchronize(self) -> None: ...

    def seed(self, seed: int) -> None:
        self.seeds.append(seed)

    def prepare(self, prompts):
        self.device.energy_j += J_PREPARE
        return [Batch((i,), None, (5 + i,)) for i in range(len(prompts))]

    def generate(self, batch: Batch) -> Generation:
        self.calls += 1
        if self.calls in self.fail_calls:
            raise RuntimeError(f"failed call {self.calls}")
        self.device.energy_j += J_PER_PROMPT * len(batch.indices)
        return Generation(batch.prompt_tokens, (10,) * len(batch.indices), 0.002, 0.001)

    def provenance(self):
        return {}


def run(fail_calls: set[int] = frozenset(), **settings: object) -> tuple[RunData, WorkBackend]:
    items = {
        "backend.model": "x",
        "scenario.dataset_name": "bundled",
        "scenario.num_samples": PROMPTS,
        "scenario.repeats": 3,
        "energy.idle_seconds": 0,
        **settings,
    }
    config = load_config("text_generation", [f"{k}={v}" for k, v in items.items()])
    device = WorkDevice()
    backend = WorkBackend(device, fail_calls)
    data = run_benchmark(
        config, backend_factory=lambda *_: backend, source_factory=lambda _: device
    )
    return data, backend


def test_the_warmup_pass_is_outside_every_measured_pass():
    data, backend = run()
    one_pass = PROMPTS * J_PER_PROMPT
    assert [w.name for w in data.warmups] == ["warmup_pass"]
    assert data.warmups[0].energy_j == one_pass
    assert [p.measurement.name for p in data.passes] == ["repeat_0", "repeat_1", "repeat_2"]
    assert [p.measurement.energy_j for p in data.passes] == [one_pass] * 3
    assert data.preprocess is not None and data.preprocess.energy_j == J_PREPARE
    assert backend.calls == 4 * PROMPTS  # the warmup pass and three measured ones
    report = build_report(data)
    assert report["energy"]["gpu_energy_j"] == one_pass
    assert report["energy"]["wh_per_1000_queries"] == pytest.approx(one_pass / 3.6 / PROMPTS)
    assert report["summary"]["warmup"] == "full pass"


def test_warmup_batches_are_outside_every_measured_pass_too():
    data, backend = run(**{"scenario.warmup_pass": False, "scenario.warmup_runs": 2})
    assert [(w.name, w.energy_j) for w in data.warmups] == [
        ("warmup_0", J_PER_PROMPT), ("warmup_1", J_PER_PROMPT),
    ]  # fmt: skip
    assert [p.measurement.energy_j for p in data.passes] == [PROMPTS * J_PER_PROMPT] * 3
    assert backend.calls == 2 + 3 * PROMPTS


def test_every_measured_pass_starts_from_the_same_seed():
    _, backend = run(**{"scenario.seed": 7})
    assert backend.seeds == [7, 7, 7, 7]  # the warmup and each of the three passes


def test_the_report_counts_the_prompts_of_its_worst_pass():
    # Call 8 is the second prompt of the first measured pass (the warmup makes calls 1 to 6),
    # calls 15 and 16 two prompts of the second; the third pass has none failed.
    data, _ = run(fail_calls={8, 15, 16})
    ok = [sum(r.ok for r in p.records) for p in data.passes]
    assert ok == [PROMPTS - 1, PROMPTS - 2, PROMPTS]
    summary = build_report(data)["summary"]
    assert summary["successful_prompts"] == PROMPTS - 2
    assert summary["failed_prompts"] == 2
    assert summary["total_prompts"] == PROMPTS
    energy = build_report(data)["energy"]
    passes = [p["energy_j"] for p in energy["repeats"]]
    assert passes == [(PROMPTS - 1) * 10.0, (PROMPTS - 2) * 10.0, PROMPTS * 10.0]
    mean_j = sum(passes) / 3
    assert energy["wh_per_1000_queries"] == pytest.approx(mean_j / 3.6 / (PROMPTS - 2))
    assert [p["successful_prompts"] for p in energy["repeats"]] == ok


def test_a_failed_prompt_s_tokens_are_not_counted():
    data, _ = run(fail_calls={7}, **{"scenario.repeats": 1})
    report = build_report(data)
    assert report["summary"]["total_completion_tokens"] == 10 * (PROMPTS - 1)
    assert report["summary"]["total_prompt_tokens"] == sum(5 + i for i in range(1, PROMPTS))
