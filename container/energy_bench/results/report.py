"""Turn a run's measurements into the published figures (``benchmark_report.json``).

Per-run figures are per measured pass over all prompts; with several repeats they are the mean
over passes, and the spread (std, CV) is reported beside them.
"""

from __future__ import annotations

import os
import platform
import statistics
from typing import Any

from energy_bench import __version__, contract
from energy_bench.benchmark import PassResult, RunData
from energy_bench.energy.meter import Measurement, spread

J_PER_WH = 3600.0
PREFILL_DECODE_SPLIT = (
    "measured: after each full pass, a prefill pass over the same prompts (one new token each) "
    "in its own window; decode = full pass - prefill pass"
)

NO_SPLIT = "none: an image pipeline has no prefill and decode"
TOKEN_SUMMARY_KEYS = (
    "avg_time_to_first_token",
    "total_tokens",
    "total_prompt_tokens",
    "total_completion_tokens",
    "throughput_tokens_per_second",
    "output_tokens_per_second",
    "max_new_tokens",
    "min_new_tokens",
)


def _pass_figures(p: PassResult, idle_power_w: float | None) -> dict[str, Any]:
    m = p.measurement
    ok = [r for r in p.records if r.ok]
    prompt_tokens = sum(r.prompt_tokens for r in ok)
    completion_tokens = sum(r.completion_tokens for r in ok)
    tokens = prompt_tokens + completion_tokens
    ttft = [r.ttft_s for r in ok if r.ttft_s is not None]
    prefill = p.prefill
    prefill_j = prefill.energy_j if prefill is not None else None
    above_idle = m.energy_j - idle_power_w * m.duration_s if idle_power_w is not None else None
    return {
        "repeat": int(m.name.split("_")[-1]),
        "duration_s": m.duration_s,
        "energy_j": m.energy_j,
        "energy_wh": m.energy_wh,
        "energy_above_idle_j": above_idle,
        "average_power_w": m.average_power_w,
        "device_energy_j": list(m.device_energy_j),
        "prompts": len(p.records),
        "successful_prompts": len(ok),
        "failed_prompts": len(p.records) - len(ok),
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "tokens_per_s": completion_tokens / m.duration_s if m.duration_s > 0 else 0.0,
        "tokens_per_joule": tokens / m.energy_j if m.energy_j > 0 else None,
        "prefill_j": prefill_j,
        "decode_j": m.energy_j - prefill_j if prefill_j is not None else None,
        "prefill_duration_s": prefill.duration_s if prefill is not None else None,
        "prefill_failed_prompts": sum(1 for r in p.prefill_records if not r.ok),
        "prefill_window": prefill.to_dict() if prefill is not None else None,
        "graphs_built": p.graphs_built,
        "recompiled": p.graphs_built > 0,
        "avg_latency_s": statistics.fmean(r.latency_s for r in ok) if ok else None,
        "avg_ttft_s": statistics.fmean(ttft) if ttft else None,
        "short_window": m.short_window,
        "counter_reset": m.counter_reset,
        "trace_energy_j": m.trace_energy_j,
        "trace_deviation": m.trace_deviation,
        "device_trace_deviation": list(m.device_trace_deviation),
        "trace_mismatch": m.trace_mismatch,
        "foreign_process": m.foreign_process,
        "foreign_pids": list(m.foreign_pids),
    }


def _per_device(data: RunData, passes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each measured device on its own: energy per pass (mean), idle power, worst trace check."""
    out = []
    for i, device in enumerate(data.source.devices):
        energies = [p["device_energy_j"][i] for p in passes]
        deviations = [
            p["device_trace_deviation"][i]
            for p in passes
            if i < len(p["device_trace_deviation"]) and p["device_trace_deviation"][i] is not None
        ]
        out.append(
            {
                **device.__dict__,
                "energy_j": statistics.fmean(energies) if energies else None,
                "pass_energy_j": energies,
                "idle_power_w": _idle_power(data, i),
                "trace_deviation_max": max(deviations, key=abs) if deviations else None,
            }
        )
    return out


def _idle_power(data: RunData, device: int) -> float | None:
    """One device's idle power: measured, else what the source knows of it, else unknown."""
    idle = data.idle
    if idle is not None and idle.duration_s > 0:
        return idle.device_energy_j[device] / idle.duration_s
    return data.source.known_idle_w


def _mean(passes: list[dict[str, Any]], key: str) -> Any:
    values = [p[key] for p in passes if p[key] is not None]
    return statistics.fmean(values) if values else None


def _image_figures(data: RunData, passes: list[dict[str, Any]]) -> dict[str, Any]:
    """What an image run made: its protocol, images, images per second and per image latency."""
    made = [sum(r.images for r in p.records if r.ok) for p in data.passes]
    images = min(made, default=0)
    duration = _mean(passes, "duration_s") or 0.0
    protocol = data.backend.protocol()  # type: ignore[attr-defined]
    return {
        **protocol,
        "images": images,
        "images_per_second": images / duration if duration else 0.0,
        "avg_latency_per_image_s": _mean(passes, "avg_latency_s"),
        "saved_images": len(data.images),
    }


def _window(m: Measurement | None) -> dict[str, object] | None:
    return m.to_dict() if m is not None else None


def build_report(data: RunData) -> dict[str, Any]:
    """The full report as a JSON-ready dict."""
    cfg = data.config
    idle_w = data.idle.average_power_w if data.idle is not None else None
    if data.source.known_idle_w is not None:
        idle_w = data.source.known_idle_w
    passes = [_pass_figures(p, idle_w) for p in data.passes]
    energy_j = _mean(passes, "energy_j") or 0.0
    successful = min((p["successful_prompts"] for p in passes), default=0)
    total_prompts = len(data.prompts.texts)
    prompt_tokens = round(_mean(passes, "prompt_tokens") or 0)
    completion_tokens = round(_mean(passes, "completion_tokens") or 0)
    energy_wh = energy_j / J_PER_WH
    e_mean, e_std, e_cv = spread([p["energy_j"] for p in passes])
    duration = _mean(passes, "duration_s") or 0.0
    carbon = cfg.energy.carbon_intensity_g_per_kwh
    source = data.source.name
    latency_s = _mean(passes, "avg_latency_s")  # end to end, per successful prompt
    summary = {
        "total_prompts": total_prompts,
        "successful_prompts": successful,
        "failed_prompts": total_prompts - successful,
        "total_duration_seconds": duration,
        "avg_total_time": latency_s,
        "avg_latency_seconds": latency_s,  # upstream's name of avg_total_time
        "avg_time_to_first_token": _mean(passes, "avg_ttft_s"),
        "total_tokens": prompt_tokens + completion_tokens,
        "total_prompt_tokens": prompt_tokens,
        "total_completion_tokens": completion_tokens,
        # AI Energy Score's meaning: prompt and completion tokens per second of the pass.
        "throughput_tokens_per_second": (prompt_tokens + completion_tokens) / duration
        if duration
        else 0.0,
        "output_tokens_per_second": completion_tokens / duration if duration else 0.0,
        "prompt_source": data.prompts.source,
        "prompts_requested": data.prompts.requested,
        "repeats": len(passes),
        "batch_size": cfg.scenario.batch_size,
        "max_new_tokens": cfg.scenario.max_new_tokens,
        "min_new_tokens": cfg.scenario.min_new_tokens,
        "warmup": "full pass" if cfg.scenario.warmup_pass else f"{len(data.warmups)} batches",
        "truncated_prompts": data.backend.truncated_prompts,  # cut to fit (scenario.truncation)
        # answers whose token count broke the budget: a server that ignores min_tokens
        "budget_mismatches": data.backend.budget_mismatches,
        "concurrency": cfg.scenario.concurrency,
        "requests_per_second": successful / duration if duration else 0.0,
        "run_wall_seconds": data.wall_s,
    }
    idle_energy = idle_w * duration if idle_w is not None else None
    co2_g = energy_wh / 1000 * carbon
    energy = {
        "energy_source": source,
        "estimated": source == "estimate",
        "devices": [d.__dict__ for d in data.source.devices],
        "gpu_energy_wh": energy_wh,
        "gpu_energy_j": energy_j,
        "energy_wh": energy_wh,  # upstream's name: the GPUs' energy, as gpu_energy_wh
        "energy_above_idle_wh": (energy_j - idle_energy) / J_PER_WH
        if idle_energy is not None
        else None,
        "idle_power_w": idle_w,
        "average_power_w": energy_j / duration if duration else None,
        "wh_per_1000_queries": energy_wh / successful * 1000 if successful else None,
        "avg_energy_per_prompt_wh": energy_wh / successful if successful else None,
        "tokens_per_joule": (prompt_tokens + completion_tokens) / energy_j if energy_j else None,
        "completion_tokens_per_joule": completion_tokens / energy_j if energy_j else None,
        "co2_emissions_g": co2_g,
        "emissions_g_co2eq": co2_g,  # upstream's names of co2_emissions_g
        "emissions_kg_co2eq": co2_g / 1000,
        "carbon_intensity_g_per_kwh": carbon,
        "repeat_energy_mean_j": e_mean,
        "repeat_energy_std_j": e_std,
        "repeat_energy_cv": e_cv,
        "preprocess_wh": data.preprocess.energy_wh if data.preprocess else 0.0,
        "prefill_wh": (_mean(passes, "prefill_j") or 0.0) / J_PER_WH,
        "decode_wh": (_mean(passes, "decode_j") or 0.0) / J_PER_WH,
        "prefill_decode_split": PREFILL_DECODE_SPLIT,
        "flags": {key: any(p[key] for p in passes) for key in contract.FLAG_KEYS},
        "gpus": _per_device(data, passes),
        "trace_deviation_max": max(
            (abs(p["trace_deviation"]) for p in passes if p["trace_deviation"] is not None),
            default=None,
        ),
        "sample_hz": cfg.energy.sample_hz,
        "trace_samples": len(data.trace),
        "sampler_cpu_seconds": data.sampler_cpu_s,
        "sampler_wall_seconds": data.sampler_wall_s,
        "sampler_cpu_share": data.sampler_cpu_s / data.sampler_wall_s
        if data.sampler_wall_s
        else None,
        "idle_baseline": _window(data.idle),
        "preprocess_window": _window(data.preprocess),
        "compile_window": _window(data.compile),
        "warmup_windows": [w.to_dict() for w in data.warmups],
        "repeats": passes,
    }
    provenance: dict[str, Any] = {
        "benchmark_version": __version__,
        "image_tag": os.environ.get(contract.IMAGE_TAG_ENV),
        "python_version": platform.python_version(),
        "config_hash": cfg.config_hash,
        "seed": cfg.scenario.seed,
        **data.provenance,
    }
    applied = data.backend.applied_reasoning
    images = _image_figures(data, passes) if cfg.scenario.image is not None else None
    if images is not None:  # no token is generated: token figures are not measured
        for key in TOKEN_SUMMARY_KEYS:
            summary[key] = None
        energy["tokens_per_joule"] = energy["completion_tokens_per_joule"] = None
        energy["prefill_wh"] = energy["decode_wh"] = None
        energy["prefill_decode_split"] = NO_SPLIT
        summary["warmup"] = f"{len(data.warmups)} pipeline calls"
    return {
        "schema_version": contract.SCHEMA_VERSION,
        "status": contract.STATUS_OK,
        "error": None,
        "started_at": data.started_at,
        "config_name": cfg.name,
        "config": cfg.raw,
        "model": cfg.backend.model,
        "summary": summary,
        "energy": energy,
        "reasoning": applied.to_dict() if applied else None,
        "reasoning_control": applied.applied_control if applied else "none",
        "generation_path": data.backend.generation_path,
        "images": images,
        "provenance": provenance,
    }
