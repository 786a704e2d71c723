"""From typed configs to run plans: stable run ids, folder names, the benchmark's arguments."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from orchestrator.model_config import ModelClass, ModelConfig, Task

CLASS_C_DEFAULT_GPUS = 2


@dataclass(frozen=True)
class PlanOptions:
    """Sweep-wide settings that shape every run's command."""

    image: str
    num_prompts: int | None = None
    prompts_file: Path | None = None
    extra_overrides: tuple[str, ...] = ()
    class_c_gpus: int = CLASS_C_DEFAULT_GPUS


@dataclass(frozen=True)
class RunPlan:
    """One planned run. ``skip_reason`` is set for rows this benchmark cannot run."""

    config: ModelConfig
    run_id: str
    name: str
    overrides: tuple[str, ...]
    gpus_needed: int
    read_only_paths: tuple[Path, ...]
    skip_reason: str = ""


def run_name(config: ModelConfig) -> str:
    """Folder-safe name: ``openai/gpt-oss-20b``, ``On (High)`` -> ``openai_gpt-oss-20b_On_High``."""
    model = config.model_id
    if Path(model).is_absolute():
        model = Path(model).name
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", model.replace("/", "_")).strip("_")
    return f"{slug}_{config.state_slug}"


def _bool(value: bool | None) -> str:
    return "null" if value is None else str(value)


def benchmark_overrides(config: ModelConfig, options: PlanOptions) -> tuple[str, ...]:
    """The ``key=value`` arguments of the container benchmark for one config."""
    d = config.reasoning
    items = [
        f"backend.model={config.model_id}",
        f"scenario.reasoning={_bool(d.enabled)}",
        f"scenario.reasoning_params.control={d.control}",
    ]
    if d.effort:
        items.append(f"scenario.reasoning_params.reasoning_effort={d.effort}")
    if config.max_new_tokens is not None:
        items.append(f"scenario.generate_kwargs.max_new_tokens={config.max_new_tokens}")
        items.append(f"scenario.generate_kwargs.min_new_tokens={config.min_new_tokens}")
    if options.num_prompts is not None:
        items.append(f"scenario.num_samples={options.num_prompts}")
    if options.prompts_file is not None:
        items.append(f"scenario.dataset_name={options.prompts_file}")
    return (*items, *options.extra_overrides)  # the user's overrides come last and win


def run_id(config: ModelConfig, overrides: Sequence[str], image: str) -> str:
    """Same config, prompts and image -> same id (resume relies on it)."""
    key = json.dumps(
        {
            "model": config.model_id,
            "task": config.task.value,
            "state": config.reasoning_state.value,
            "overrides": list(overrides),
            "image": image,
        },
        sort_keys=True,
    )
    return hashlib.sha256(key.encode()).hexdigest()[:12]


def gpus_for(config: ModelConfig, options: PlanOptions) -> int:
    """Class A and B get exactly one GPU; class C the configured number."""
    return options.class_c_gpus if config.model_class is ModelClass.C else 1


def plan_runs(configs: Sequence[ModelConfig], options: PlanOptions) -> list[RunPlan]:
    """A plan per config, in CSV order."""
    plans = []
    for config in configs:
        overrides = benchmark_overrides(config, options)
        paths = [Path(config.model_id)] if Path(config.model_id).is_absolute() else []
        if options.prompts_file is not None:
            paths.append(options.prompts_file)
        skip = ""
        if config.task is not Task.TEXT_GEN:
            skip = f"task {config.task.value} is not supported by the benchmark yet (text_gen only)"
        plans.append(
            RunPlan(
                config=config,
                run_id=run_id(config, overrides, options.image),
                name=run_name(config),
                overrides=overrides,
                gpus_needed=gpus_for(config, options),
                read_only_paths=tuple(paths),
                skip_reason=skip,
            )
        )
    return plans
