"""Longest-first ordering with backfilling, expected durations, and each slot's own cores."""

from __future__ import annotations

import pytest

from orchestrator.execution.ordering import (
    Job,
    expected_durations,
    longest_first,
    params_b,
    to_start,
    work_units,
)
from orchestrator.execution.slots import cpu_slots, gpu_slots, split_cpus
from orchestrator.models.csv_reader import single_config
from orchestrator.planning.plan import PlanOptions, plan_runs
from orchestrator.store.durations import duration_key, load_durations, save_duration


def plan(model, cls="A", prompts=None):
    options = PlanOptions(image="i", software_id="s", num_prompts=prompts)
    return plan_runs([single_config(model, model_class=cls)], options)[0]


def job(name, need, seconds):
    return Job(plan(f"org/{name}"), need, seconds, True)


def names(jobs):
    return [j.plan.config.model_id.split("/")[1] for j in jobs]


def test_longest_first_keeps_ties_in_order():
    jobs = [job("a", 1, 5), job("b", 1, 9), job("c", 1, 5), job("d", 1, 7)]
    assert names(longest_first(jobs)) == ["b", "d", "a", "c"]


def test_the_head_starts_when_it_fits():
    queue = longest_first([job("big", 2, 100), job("s1", 1, 10), job("s2", 1, 10)])
    assert names(to_start(queue, free=2, running=[], now=0)) == ["big"]


def test_a_blocked_head_is_not_starved_by_shorter_runs():
    # Two GPUs, one busy until t=50; the class C head needs both. A 30 s run ends in time and
    # may start on the free GPU; a 60 s run would delay the head, so it waits.
    queue = [job("c-head", 2, 500), job("long-a", 1, 60), job("short-a", 1, 30)]
    started = to_start(queue, free=1, running=[(50.0, 1)], now=0.0)
    assert names(started) == ["short-a"]


def test_backfill_may_use_gpus_the_head_will_not_need():
    # Three GPUs, two busy until t=50; the head needs two: at t=50 one GPU is spare.
    queue = [job("head", 2, 500), job("long-a", 1, 400)]
    assert names(to_start(queue, free=1, running=[(50.0, 2)], now=0.0)) == ["long-a"]


def test_no_run_starts_that_would_delay_the_blocked_head():
    queue = [job("head", 2, 500), job("a", 1, 100), job("b", 1, 100)]
    assert to_start(queue, free=1, running=[(10.0, 1)], now=0.0) == []


def test_sizes_from_model_ids_and_classes():
    assert params_b(plan("Qwen/Qwen3-30B-A3B", "B")) == 30
    assert params_b(plan("google/gemma-3-270m-it")) == pytest.approx(0.27)
    assert params_b(plan("org/no-size-here", "C")) > params_b(plan("org/no-size", "A"))
    assert work_units(plan("org/m-8B", prompts=100)) == 8 * 100 * 10  # 10 tokens, reasoning off


def test_expected_durations_prefer_measurements_and_calibrate_estimates(tmp_path):
    small, big = plan("org/m-1B", prompts=100), plan("org/m-8B", prompts=100)
    save_duration(tmp_path, duration_key(small.run_id, "H200"), 20.0)
    known = load_durations(tmp_path)
    expected = expected_durations([small, big], known, "H200")
    assert expected[small.run_id] == (20.0, True)
    seconds, measured = expected[big.run_id]
    assert not measured and seconds == pytest.approx(160.0)  # 8x the work of the measured run
    # Another GPU model: nothing measured there.
    assert not expected_durations([small], known, "H100")[small.run_id][1]


def test_each_slot_gets_its_own_cores():
    assert split_cpus(range(32), 2) == [tuple(range(16)), tuple(range(16, 32))]
    assert split_cpus(range(5), 2) == [(0, 1, 2), (3, 4)]
    assert split_cpus([0], 2) == [(0,), (0,)]  # fewer cores than slots: shared, never none
    slots = gpu_slots(["GPU-a", "GPU-b"], ["H200", "H200"], cpus=range(8))
    assert [s.cpus for s in slots] == [(0, 1, 2, 3), (4, 5, 6, 7)]
    assert slots[1].uuid == "GPU-b" and slots[1].gpu_name == "H200"
    assert [s.cpus for s in cpu_slots(2, cpus=[0, 1])] == [(0,), (1,)]
