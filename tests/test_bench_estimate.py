"""The estimate where no counter can be read ranks runs by their work, whatever else runs.

Real runs of the tiny model through ``run_benchmark`` on the CPU: the same run gives the same
figure on a quiet and on a busy machine, and a run that processes more tokens costs more, in
proportion.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator

import pytest
from conftest import TINY_MODEL

from energy_bench.benchmark import RunData, run_benchmark
from energy_bench.config import load_config
from energy_bench.energy.sources import ESTIMATE_J_PER_FLOP, EstimateSource

QUICK = [
    f"backend.model={TINY_MODEL}",
    "backend.device=cpu",
    "scenario.dataset_name=bundled",
    "scenario.num_samples=6",
    "scenario.batch_size=1",
    "scenario.warmup_pass=False",
    "scenario.warmup_runs=1",
    "scenario.repeats=1",
]


@contextlib.contextmanager
def busy_core() -> Iterator[None]:
    """Another process burning a core meanwhile, as on any shared machine."""
    burner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        yield
    finally:
        burner.kill()
        burner.wait()


def estimated(*overrides: str) -> RunData:
    cfg = load_config("text_generation", [*QUICK, "energy.idle_seconds=0", *overrides])
    return run_benchmark(cfg, source_factory=lambda _, n: EstimateSource(n))


def tokens(data: RunData) -> int:
    (measured,) = data.passes
    return sum(r.prompt_tokens + r.completion_tokens for r in measured.records)


def test_the_same_run_gets_the_same_estimate_on_a_quiet_and_on_a_busy_machine():
    quiet = estimated()
    with busy_core():
        busy = estimated()
    (q,), (b,) = quiet.passes, busy.passes
    assert q.measurement.energy_j == b.measurement.energy_j  # exactly: work, not time
    assert q.prefill is not None and b.prefill is not None
    assert q.prefill.energy_j == b.prefill.energy_j


def test_a_run_that_processes_more_tokens_costs_more_in_proportion():
    short = estimated()
    long = estimated(
        "scenario.generate_kwargs.max_new_tokens=30", "scenario.generate_kwargs.min_new_tokens=30"
    )
    assert tokens(long) > tokens(short)
    parameters = short.backend.parameters
    assert parameters > 0
    for data in (short, long):
        (measured,) = data.passes
        assert measured.measurement.source == "estimate"
        assert measured.measurement.energy_j == pytest.approx(
            2 * parameters * tokens(data) * ESTIMATE_J_PER_FLOP, rel=1e-9
        )


def test_a_pass_of_one_batch_is_never_flagged_by_a_trace_made_from_its_own_counter():
    """The estimate's trace is the slope of its counter, which moves once per batch: comparing
    the two proves nothing, and a pass of few batches would be flagged (unrated) at random."""
    data = estimated(
        "scenario.num_samples=2",
        "scenario.batch_size=2",
        "scenario.generate_kwargs.max_new_tokens=200",
        "scenario.generate_kwargs.min_new_tokens=200",
        "energy.sample_hz=50",
    )
    (measured,) = data.passes
    window = measured.measurement
    assert len(measured.records) == 2 and window.energy_j > 0
    assert window.trace_samples >= 5  # a trace there was, spanning the batch
    assert window.trace_deviation is None and not window.trace_mismatch


def test_an_estimate_spends_no_time_on_an_idle_baseline():
    cfg = load_config("text_generation", [*QUICK, "energy.idle_seconds=30"])
    data = run_benchmark(cfg, source_factory=lambda _, n: EstimateSource(n))
    assert data.idle is None  # its idle power is zero by construction
    assert data.wall_s < 30
