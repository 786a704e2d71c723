"""The published figures, field by field, from measurements made by hand.

Two devices, two measured passes that differ in every way a pass can (failed prompts, prefill
window or none, trace flags, foreign processes), an idle baseline and a preprocess window: each
figure of ``benchmark_report.json`` is worked out here from those numbers and compared exactly.
"""

from __future__ import annotations

import statistics
from dataclasses import replace

import pytest
from fakes import FakeBackend

from energy_bench import contract
from energy_bench.benchmark import PassResult, PromptRecord, RunData
from energy_bench.config import load_config
from energy_bench.energy.meter import Measurement
from energy_bench.energy.sources import DeviceInfo
from energy_bench.results.report import (
    NO_SPLIT,
    PREFILL_DECODE_SPLIT,
    TOKEN_SUMMARY_KEYS,
    build_report,
)
from energy_bench.workload.prompts import PromptSet

DEVICES = [DeviceInfo("gpu", "GPU A", "GPU-a", 0, 700.0), DeviceInfo("gpu", "GPU B", "GPU-b", 1)]


class Source:
    name = "nvml"
    devices = DEVICES
    known_idle_w: float | None = None


class Backend(FakeBackend):
    truncated_prompts = 4
    budget_mismatches = 5
    generation_path = contract.GENERATION_COMPILED


def window(name: str, duration_s: float, *device_j: float, **more: object) -> Measurement:
    return Measurement(
        name=name, start_s=100.0, duration_s=duration_s, energy_j=sum(device_j),
        device_energy_j=device_j, source="nvml", short_window=False, counter_reset=False,
        **more,
    )  # fmt: skip


def record(repeat: int, i: int, prompt: int, completion: int, latency: float, ttft, ok=True):
    return PromptRecord(repeat, i, i, prompt, completion, latency, ttft, ok, "" if ok else "boom")


FIRST = PassResult(
    window(
        "repeat_0", 4.0, 5000.0, 2200.0, trace_energy_j=7000.0, trace_deviation=-0.08,
        device_trace_deviation=(-0.07, -0.04), foreign_pids=(99, 98),
    ),
    (record(0, 0, 5, 10, 1.0, 0.1), record(0, 1, 6, 10, 2.0, None), record(0, 2, 7, 10, 3.0, 0.3)),
    prefill=window("prefill_0", 1.0, 500.0, 220.0),
    prefill_records=(record(0, 0, 5, 1, 0.1, 0.1), record(0, 1, 6, 0, 0.1, None, ok=False)),
)  # fmt: skip
SECOND = PassResult(
    replace(
        window(
            "repeat_1", 6.0, 7000.0, 3800.0, trace_energy_j=11448.0, trace_deviation=0.06,
            device_trace_deviation=(0.06, None),
        ),
        short_window=True,
    ),
    (record(1, 0, 5, 12, 2.0, 0.5), record(1, 1, 6, 14, 4.0, 0.7),
     record(1, 2, 7, 0, 9.0, None, False)),
    graphs_built=2,
)  # fmt: skip


def run_data(**settings: object) -> RunData:
    items = {
        "backend.model": "org/model", "scenario.num_samples": 3, "scenario.warmup_pass": False,
        "carbon.intensity_g_per_kwh": 400, **settings,
    }  # fmt: skip
    config = load_config("text_generation", [f"{k}={v}" for k, v in items.items()])
    source = Source()
    data = RunData(
        config, PromptSet(["a", "b", "c"], "bundled", 3, 237), "2026-12-02T10:00:00+00:00",
        Backend(), source,  # type: ignore[arg-type]
    )  # fmt: skip
    data.preprocess = window("preprocess", 2.0, 300.0, 60.0)
    data.idle = window("idle", 10.0, 300.0, 200.0)
    data.warmups = [window("warmup_0", 0.5, 40.0, 10.0), window("warmup_1", 0.5, 42.0, 8.0)]
    data.passes = [FIRST, SECOND]
    data.trace = [object(), object(), object()]  # type: ignore[list-item]
    data.sampler_cpu_s, data.sampler_wall_s, data.wall_s = 0.5, 10.0, 12.5
    data.provenance = {"device_names": ["GPU A", "GPU B"]}
    return data


def test_each_pass_reports_its_own_figures():
    first, second = build_report(run_data())["energy"]["repeats"]
    assert first == {
        "repeat": 0, "duration_s": 4.0, "energy_j": 7200.0, "energy_wh": 2.0,
        "energy_above_idle_j": 7200.0 - 50.0 * 4.0,  # idle: 500 J over 10 s
        "average_power_w": 1800.0, "device_energy_j": [5000.0, 2200.0],
        "prompts": 3, "successful_prompts": 3, "failed_prompts": 0,
        "prompt_tokens": 18, "completion_tokens": 30, "tokens_per_s": 7.5,
        "tokens_per_joule": 48 / 7200.0, "prefill_j": 720.0, "decode_j": 6480.0,
        "prefill_duration_s": 1.0, "prefill_failed_prompts": 1,
        "prefill_window": FIRST.prefill.to_dict(), "graphs_built": 0, "recompiled": False,
        "avg_latency_s": 2.0, "avg_ttft_s": pytest.approx(0.2), "short_window": False,
        "counter_reset": False, "trace_energy_j": 7000.0, "trace_deviation": -0.08,
        "device_trace_deviation": [-0.07, -0.04], "trace_mismatch": True,
        "foreign_process": True, "foreign_pids": [99, 98],
    }  # fmt: skip
    assert second == {
        "repeat": 1, "duration_s": 6.0, "energy_j": 10800.0, "energy_wh": 3.0,
        "energy_above_idle_j": 10800.0 - 50.0 * 6.0, "average_power_w": 1800.0,
        "device_energy_j": [7000.0, 3800.0], "prompts": 3, "successful_prompts": 2,
        "failed_prompts": 1, "prompt_tokens": 11, "completion_tokens": 26,
        "tokens_per_s": 26 / 6.0, "tokens_per_joule": 37 / 10800.0, "prefill_j": None,
        "decode_j": None, "prefill_duration_s": None, "prefill_failed_prompts": 0,
        "prefill_window": None, "graphs_built": 2, "recompiled": True, "avg_latency_s": 3.0,
        "avg_ttft_s": pytest.approx(0.6), "short_window": True, "counter_reset": False,
        "trace_energy_j": 11448.0, "trace_deviation": 0.06, "device_trace_deviation": [0.06, None],
        "trace_mismatch": True, "foreign_process": False, "foreign_pids": [],
    }  # fmt: skip


def test_the_summary_is_the_mean_pass_counted_at_its_worst():
    summary = build_report(run_data())["summary"]
    assert summary == {
        "total_prompts": 3, "successful_prompts": 2, "failed_prompts": 1,
        "total_duration_seconds": 5.0, "avg_total_time": 2.5, "avg_latency_seconds": 2.5,
        "avg_time_to_first_token": pytest.approx(0.4),
        "total_tokens": 14 + 28, "total_prompt_tokens": 14,  # round(14.5): to even
        "total_completion_tokens": 28, "throughput_tokens_per_second": 42 / 5.0,
        "output_tokens_per_second": 28 / 5.0, "prompt_source": "bundled", "prompts_requested": 3,
        "repeats": 2, "batch_size": 1, "max_new_tokens": 10, "min_new_tokens": 10,
        "warmup": "2 batches", "truncated_prompts": 4, "budget_mismatches": 5, "concurrency": 1,
        "requests_per_second": 2 / 5.0, "run_wall_seconds": 12.5,
    }  # fmt: skip


def test_the_energy_section_is_worked_out_from_the_mean_pass():
    data = run_data()
    energy = build_report(data)["energy"]
    repeats = energy.pop("repeats")
    std = statistics.stdev([7200.0, 10800.0])
    assert energy == {
        "energy_source": "nvml", "estimated": False,
        "devices": [d.__dict__ for d in DEVICES],
        "gpu_energy_wh": 2.5, "gpu_energy_j": 9000.0, "energy_wh": 2.5,
        "energy_above_idle_wh": (9000.0 - 50.0 * 5.0) / 3600, "idle_power_w": 50.0,
        "average_power_w": 1800.0, "wh_per_1000_queries": 2.5 / 2 * 1000,
        "avg_energy_per_prompt_wh": 1.25, "tokens_per_joule": 42 / 9000.0,
        "completion_tokens_per_joule": 28 / 9000.0, "co2_emissions_g": 1.0,
        "emissions_g_co2eq": 1.0, "emissions_kg_co2eq": 0.001,
        "carbon_intensity_g_per_kwh": 400.0, "repeat_energy_mean_j": 9000.0,
        "repeat_energy_std_j": std, "repeat_energy_cv": std / 9000.0, "preprocess_wh": 0.1,
        "prefill_wh": 0.2, "decode_wh": 1.8, "prefill_decode_split": PREFILL_DECODE_SPLIT,
        "flags": {
            "short_window": True, "counter_reset": False, "trace_mismatch": True,
            "foreign_process": True, "recompiled": True,
        },
        "gpus": [
            {**DEVICES[0].__dict__, "energy_j": 6000.0, "pass_energy_j": [5000.0, 7000.0],
             "idle_power_w": 30.0, "trace_deviation_max": -0.07},
            {**DEVICES[1].__dict__, "energy_j": 3000.0, "pass_energy_j": [2200.0, 3800.0],
             "idle_power_w": 20.0, "trace_deviation_max": -0.04},
        ],
        "trace_deviation_max": 0.08, "sample_hz": data.config.energy.sample_hz,
        "trace_samples": 3, "sampler_cpu_seconds": 0.5, "sampler_wall_seconds": 10.0,
        "sampler_cpu_share": 0.05, "idle_baseline": data.idle.to_dict(),
        "preprocess_window": data.preprocess.to_dict(), "compile_window": None,
        "warmup_windows": [w.to_dict() for w in data.warmups],
    }  # fmt: skip
    assert [p["repeat"] for p in repeats] == [0, 1]
    assert energy["co2_emissions_g"] == pytest.approx(2.5 / 1000 * 400)


def test_the_report_names_the_run():
    data = run_data(**{"scenario.seed": 7})
    data.compile = window("compile", 3.0, 1.0, 2.0)
    report = build_report(data)
    assert report["energy"]["compile_window"] == data.compile.to_dict()
    assert report["energy"]["flags"]["counter_reset"] is False
    assert {k: report[k] for k in ("schema_version", "status", "error", "started_at")} == {
        "schema_version": contract.SCHEMA_VERSION, "status": contract.STATUS_OK, "error": None,
        "started_at": "2026-12-02T10:00:00+00:00",
    }  # fmt: skip
    assert (report["config_name"], report["model"]) == ("text_generation", "org/model")
    assert report["config"] == data.config.raw
    assert (report["reasoning"], report["reasoning_control"]) == (None, "none")
    assert report["generation_path"] == contract.GENERATION_COMPILED
    provenance = report["provenance"]
    assert provenance["seed"] == 7 and provenance["config_hash"] == data.config.config_hash
    assert provenance["device_names"] == ["GPU A", "GPU B"]
    assert provenance["python_version"].count(".") == 2


def test_a_counter_reset_in_any_pass_flags_the_run():
    data = run_data()
    data.passes = [
        FIRST,
        replace(SECOND, measurement=replace(SECOND.measurement, counter_reset=True)),
    ]
    assert build_report(data)["energy"]["flags"]["counter_reset"] is True
    data.passes = [FIRST]
    flags = build_report(data)["energy"]["flags"]
    assert flags == {
        "short_window": False, "counter_reset": False, "trace_mismatch": True,
        "foreign_process": True, "recompiled": False,
    }  # fmt: skip


def test_a_source_that_knows_its_idle_power_is_taken_at_its_word():
    data = run_data()
    data.source.known_idle_w = 0.0  # an estimate counts work only
    data.idle = None
    energy = build_report(data)["energy"]
    assert energy["idle_power_w"] == 0.0
    assert energy["energy_above_idle_wh"] == 2.5
    assert [g["idle_power_w"] for g in energy["gpus"]] == [0.0, 0.0]
    assert [p["energy_above_idle_j"] for p in energy["repeats"]] == [7200.0, 10800.0]
    assert energy["idle_baseline"] is None


def test_without_an_idle_baseline_idle_is_unknown():
    data = run_data()
    data.idle = replace(data.idle, duration_s=0.0)  # a window with no time has no power
    energy = build_report(data)["energy"]
    assert [g["idle_power_w"] for g in energy["gpus"]] == [None, None]
    assert energy["idle_power_w"] == 0.0  # the window's own figure: no time, no power
    data.idle = None
    energy = build_report(data)["energy"]
    assert (energy["idle_power_w"], energy["energy_above_idle_wh"]) == (None, None)
    assert [p["energy_above_idle_j"] for p in energy["repeats"]] == [None, None]


def test_a_run_with_no_successful_prompt_has_no_figure_per_prompt():
    data = run_data()
    failed = tuple(replace(r, ok=False) for r in FIRST.records)
    data.passes = [replace(FIRST, records=failed, prefill=None)]
    report = build_report(data)
    summary, energy = report["summary"], report["energy"]
    assert (summary["successful_prompts"], summary["failed_prompts"]) == (0, 3)
    assert summary["avg_total_time"] is None and summary["avg_time_to_first_token"] is None
    assert summary["total_tokens"] == 0 and summary["requests_per_second"] == 0.0
    assert energy["wh_per_1000_queries"] is None and energy["avg_energy_per_prompt_wh"] is None
    assert energy["tokens_per_joule"] == 0.0 and energy["prefill_wh"] == 0.0
    assert energy["repeats"][0]["avg_latency_s"] is None


def test_an_empty_window_divides_by_nothing():
    data = run_data()
    empty = window("repeat_0", 0.0, 0.0, 0.0)
    data.passes = [PassResult(empty, FIRST.records)]
    data.preprocess = None
    data.sampler_wall_s = 0.0
    report = build_report(data)
    summary, energy = report["summary"], report["energy"]
    (only,) = energy["repeats"]
    assert (only["tokens_per_s"], only["tokens_per_joule"]) == (0.0, None)
    assert summary["throughput_tokens_per_second"] == 0.0
    assert summary["output_tokens_per_second"] == 0.0
    assert summary["requests_per_second"] == 0.0
    assert energy["average_power_w"] is None and energy["tokens_per_joule"] is None
    assert energy["completion_tokens_per_joule"] is None
    assert energy["sampler_cpu_share"] is None and energy["preprocess_wh"] == 0.0
    assert energy["gpu_energy_wh"] == 0.0 and energy["repeat_energy_cv"] == 0.0


def test_a_run_without_passes_reports_zeroes_not_errors():
    data = run_data()
    data.passes = []
    report = build_report(data)
    assert report["summary"]["successful_prompts"] == 0
    assert report["energy"]["gpu_energy_j"] == 0.0
    assert [g["energy_j"] for g in report["energy"]["gpus"]] == [None, None]
    assert report["energy"]["trace_deviation_max"] is None


def test_a_full_warmup_pass_is_named_so():
    data = run_data(**{"scenario.warmup_pass": True})
    data.warmups = [window("warmup_pass", 1.0, 1.0, 1.0)]
    assert build_report(data)["summary"]["warmup"] == "full pass"


def test_an_estimate_says_so_and_the_image_tag_is_recorded(monkeypatch):
    monkeypatch.setenv(contract.IMAGE_TAG_ENV, "ai-energy-score:abc")
    data = run_data()
    data.source.name = "estimate"
    report = build_report(data)
    assert (report["energy"]["energy_source"], report["energy"]["estimated"]) == (
        "estimate",
        True,
    )
    assert report["provenance"]["image_tag"] == "ai-energy-score:abc"


def test_small_windows_still_have_figures():
    """Under a second, a joule or a graph: each is a figure, not a missing one."""
    data = run_data()
    small = window("repeat_3", 0.5, 0.25, 0.25)
    data.passes = [PassResult(small, FIRST.records, graphs_built=1)]
    data.idle = window("idle", 0.5, 10.0, 5.0)
    report = build_report(data)
    (only,) = report["energy"]["repeats"]
    assert only["repeat"] == 3
    assert (only["tokens_per_s"], only["tokens_per_joule"]) == (30 / 0.5, 48 / 0.5)
    assert only["recompiled"] is True and report["energy"]["flags"]["recompiled"] is True
    assert [g["idle_power_w"] for g in report["energy"]["gpus"]] == [20.0, 10.0]
    assert report["energy"]["decode_wh"] == 0.0  # no prefill window: no split


def test_the_report_says_how_reasoning_was_applied_and_by_which_version():
    from energy_bench import __version__
    from energy_bench.workload.rendering import AppliedReasoning

    data = run_data()
    applied = AppliedReasoning(
        enabled=False, requested_control="auto", applied_control="chat_template_kwarg",
        effort=None, uses_chat_template=True, template_kwargs={"enable_thinking": False},
        system_prompt=None, prompt_prefix=None, assistant_prefix=None, note="family table",
    )  # fmt: skip
    data.backend.applied_reasoning = applied
    report = build_report(data)
    assert report["reasoning"] == applied.__dict__ and report["reasoning"] is not applied.__dict__
    assert report["reasoning_control"] == "chat_template_kwarg"
    assert report["provenance"]["benchmark_version"] == __version__


class ImageBackend(Backend):
    def protocol(self) -> dict[str, object]:
        return {"num_inference_steps": 30, "height": 1024, "width": 1024, "batch_size": 1}


def image_record(repeat: int, i: int, latency: float, images: int, ok: bool = True):
    return PromptRecord(repeat, i, i, 0, 0, latency, None, ok, "" if ok else "boom", images)


def image_run_data(*passes: PassResult) -> RunData:
    """The text run's data with an image config, an image backend and these passes."""
    data = run_data()
    data.config = load_config(
        contract.IMAGE_CONFIG_NAME, ["backend.model=org/pipe", "scenario.num_samples=3"]
    )
    data.backend, data.passes = ImageBackend(), list(passes)
    return data


def test_an_image_run_reports_its_images_at_the_worst_pass_and_no_token_figure():
    """Two passes: 3 images in 6 s and 2 (one call failed) in 4 s; two images were kept."""
    data = image_run_data(
        PassResult(
            window("repeat_0", 6.0, 600.0, 0.0),
            (image_record(0, 0, 1.0, 1), image_record(0, 1, 2.0, 1), image_record(0, 2, 3.0, 1)),
        ),
        PassResult(
            window("repeat_1", 4.0, 400.0, 0.0),
            (
                image_record(1, 0, 1.5, 1),
                image_record(1, 1, 9.0, 1, ok=False),
                image_record(1, 2, 2.5, 1),
            ),
        ),
    )
    data.images = [(0, object()), (1, object())]
    report = build_report(data)
    assert report["images"] == {
        "num_inference_steps": 30, "height": 1024, "width": 1024, "batch_size": 1,
        "images": 2,  # the worst pass: its failed call's image is not counted
        "images_per_second": 2 / 5.0,  # over the mean pass, (6 + 4) / 2 s
        "avg_latency_per_image_s": statistics.fmean([2.0, 2.0]),  # each pass's ok calls
        "saved_images": 2,
    }  # fmt: skip
    summary, energy = report["summary"], report["energy"]
    assert summary["warmup"] == "2 pipeline calls"
    assert [k for k in summary if summary[k] is None] == [
        k for k in summary if k in TOKEN_SUMMARY_KEYS
    ]
    assert set(TOKEN_SUMMARY_KEYS) <= set(summary)
    assert (energy["tokens_per_joule"], energy["completion_tokens_per_joule"]) == (None, None)
    assert (energy["prefill_wh"], energy["decode_wh"]) == (None, None)
    assert energy["prefill_decode_split"] == NO_SPLIT


def test_an_image_run_without_a_pass_has_no_rate():
    images = build_report(image_run_data())["images"]
    assert (images["images"], images["images_per_second"], images["saved_images"]) == (0, 0.0, 0)
    assert images["avg_latency_per_image_s"] is None


def test_an_image_pass_of_no_measured_time_has_no_rate_rather_than_a_made_up_one():
    data = image_run_data(
        PassResult(window("repeat_0", 0.0, 0.0, 0.0), (image_record(0, 0, 0.0, 1),))
    )
    images = build_report(data)["images"]
    assert (images["images"], images["images_per_second"]) == (1, 0.0)
