"""From typed configs to run plans: the benchmark's arguments, GPUs, folder names and run ids."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from energy_bench import contract
from orchestrator.models.config import IMAGE_ROW_KEYS, ModelClass, ModelConfig, Task
from orchestrator.planning.identity import (
    canonical_overrides,
    file_digest,
    run_id,
    run_names,
    split_override,
)

CLASS_C_DEFAULT_GPUS = 2
DEFAULT_PROMPTS = 1000  # the benchmark's default scenario.num_samples
# The default timeout's bounds (README, "Failures and interruption"): time to load a model, and
# the slowest a working run generates (seconds per prompt, plus per token of its budget).
LOAD_S = {ModelClass.A: 1800.0, ModelClass.B: 3600.0, ModelClass.C: 7200.0, None: 3600.0}
TOKEN_S = {ModelClass.A: 0.1, ModelClass.B: 0.25, ModelClass.C: 0.5, None: 0.25}
PROMPT_S = 2.0
STEP_S = 4.0  # an image: the slowest a working run makes one denoising step (seconds)
MAX_TIMEOUT_S = 30 * 24 * 3600.0  # 30 days: beyond it, a bound means nothing (and overflows)
TRUE = ("true", "yes", "on", "1")  # how an override or setting spells a boolean
FALSE = ("false", "no", "off", "0")
SERVED_SUFFIX = "_served"  # a served run's folder: never the same as the model's local run
IMAGE_EXTRA_KEYS = contract.IMAGE_EXTRA_KEYS
IMAGE_STEPS = 30  # configs/image_generation.yaml's scenario.num_inference_steps
IMAGE_WARMUP_RUNS = 2  # and its scenario.warmup_runs
IMAGE_SIDE = 1024  # and its scenario.height and scenario.width


@dataclass(frozen=True)
class PlanOptions:
    """Sweep-wide settings that shape every run's command.

    ``software_id`` names the software that runs the benchmark (the runner's ``software_id``) and
    ``hardware`` the GPU model the runs get (``cpu`` without GPUs); both are part of every run id.
    """

    image: str
    software_id: str
    hardware: str = ""
    num_prompts: int | None = None
    prompts_file: Path | None = None
    extra_overrides: tuple[str, ...] = ()
    class_c_gpus: int = CLASS_C_DEFAULT_GPUS
    serving: Serving | None = None  # --backend vllm: the runs send prompts to a server


@dataclass(frozen=True)
class Serving:
    """The server the runs send their prompts to (``--backend vllm --endpoint``).

    ``gpus``: the UUIDs of the server's GPUs on this host, whose counters the runs read (none:
    the server is elsewhere, or this host has no GPU).
    """

    endpoint: str
    gpus: tuple[str, ...] = ()

    def overrides(self) -> list[str]:
        items = ["backend.type=vllm", f"backend.endpoint={self.endpoint}"]
        if self.gpus:
            items.append(f"backend.server_gpus={','.join(self.gpus)}")
        return items


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
    serving: Serving | None = None  # the run measures a server; it computes on no GPU itself
    config_name: str = contract.CONFIG_NAME  # the benchmark config it starts from (by task)

    @property
    def is_image(self) -> bool:
        """True for a text-to-image run."""
        return self.config.task is Task.IMAGE_GEN

    def setting(self, key: str) -> str | None:
        """The value an override gives ``key`` (the last one wins), or None."""
        return canonical_overrides(self.overrides).get(key)

    def whole(self, key: str, default: int) -> int:
        """The whole number an override gives ``key``, else ``default``."""
        try:
            return int(float(self.setting(key) or default))
        except ValueError:
            return default

    @property
    def default_timeout_s(self) -> float:
        """The time after which the run counts as hung when ``--timeout`` is not given.

        A bound, not an estimate: loading the model (by class), then every generated prompt
        (the warmup pass and each repeat) at a floor of speed no working run falls below.
        """
        cls = self.config.model_class
        prompts = self.whole("scenario.num_samples", DEFAULT_PROMPTS)
        if self.is_image:  # every image the same: the warmup is a few calls
            images = self.whole("scenario.repeats", 1) * prompts
            images += self.whole("scenario.warmup_runs", IMAGE_WARMUP_RUNS)
            per_image = self.whole("scenario.num_inference_steps", IMAGE_STEPS) * STEP_S
            return min(LOAD_S[cls] + images * per_image, MAX_TIMEOUT_S)
        budget = self.whole("scenario.generate_kwargs.max_new_tokens", 10)
        warmup = (self.setting("scenario.warmup_pass") or "true").lower() not in FALSE
        passes = self.whole("scenario.repeats", 1) + warmup
        per_prompt = PROMPT_S + budget * TOKEN_S[cls]
        return min(LOAD_S[cls] + passes * prompts * per_prompt, MAX_TIMEOUT_S)


def sets_reasoning(override: str) -> bool:
    """True for a ``key=value`` of the reasoning directive, which each row's state decides."""
    key = split_override(override)[0]
    return key == "scenario.reasoning" or key.startswith("scenario.reasoning_params.")


def _bool(value: bool | None) -> str:
    return "null" if value is None else str(value)


def _inputs(options: PlanOptions) -> list[str]:
    """The overrides of the sweep's prompt count and prompts file."""
    items = []
    if options.num_prompts is not None:
        items.append(f"scenario.num_samples={options.num_prompts}")
    if options.prompts_file is not None:
        items.append(f"scenario.dataset_name={options.prompts_file}")
    return items


def user_overrides(options: PlanOptions, config_name: str) -> tuple[str, ...]:
    """The sweep's own ``key=value`` items that a run of ``config_name`` takes.

    A key only the other task's config has (``backend.generation``, ``scenario.height``) skips
    this run; a key no config has goes to every run, whose check then refuses it.
    """
    return tuple(
        item
        for item in options.extra_overrides
        if contract.override_applies(config_name, split_override(item)[0])
    )


def image_overrides(config: ModelConfig, options: PlanOptions) -> tuple[str, ...]:
    """The benchmark's arguments for an image row: its pipeline class, extras and protocol.

    The family's pipeline class and the components its repository lacks (HiDream's Llama) are
    named here, so that the plan shows them; the row's Chat Template YAML may set the keys of
    ``IMAGE_ROW_KEYS``.
    """
    params = config.chat_template_params
    items = [f"backend.model={config.model_id}"]
    family = contract.image_family(config.model_id)
    if family is not None:
        items.append(f"backend.pipeline={family.pipeline}")
        items += [f"backend.{key}={params.get(key, default)}" for key, default in family.extras]
    extras = {key for key, _ in family.extras} if family is not None else set()
    items += [
        f"{target}={params[key]}"
        for key, target in IMAGE_ROW_KEYS.items()
        if key in params and key not in extras
    ]
    return (*items, *_inputs(options), *user_overrides(options, contract.IMAGE_CONFIG_NAME))


def benchmark_overrides(config: ModelConfig, options: PlanOptions) -> tuple[str, ...]:
    """The ``key=value`` arguments of the container benchmark for one config."""
    if config.task is Task.IMAGE_GEN:
        return image_overrides(config, options)
    d = config.reasoning
    items = [
        f"backend.model={config.model_id}",
        f"backend.num_gpus={gpus_for(config, options)}",
        f"scenario.reasoning={_bool(d.enabled)}",
        f"scenario.reasoning_params.control={d.control}",
    ]
    if d.effort:
        items.append(f"scenario.reasoning_params.reasoning_effort={d.effort}")
    if config.trust_remote_code:
        items.append("backend.trust_remote_code=True")
    if config.max_new_tokens is not None:
        items.append(f"scenario.generate_kwargs.max_new_tokens={config.max_new_tokens}")
        items.append(f"scenario.generate_kwargs.min_new_tokens={config.min_new_tokens}")
    items += _inputs(options)
    if options.serving is not None:
        items += options.serving.overrides()
    # the user's overrides come last and win
    return (*items, *user_overrides(options, contract.CONFIG_NAME))


def local_extras(config: ModelConfig) -> list[Path]:
    """The local folders of an image row's extra components (HiDream's Llama), to mount."""
    if config.task is not Task.IMAGE_GEN:
        return []
    values = [config.chat_template_params.get(key) for key in contract.IMAGE_EXTRA_KEYS]
    return [Path(v) for v in values if isinstance(v, str) and Path(v).is_absolute()]


def gpus_for(config: ModelConfig, options: PlanOptions) -> int:
    """How many GPUs the run is given.

    One for an image row; else the row's own count if it names one, one for class A and B,
    and ``--class-c-gpus`` for class C.
    """
    if config.task is Task.IMAGE_GEN:
        return 1  # a pipeline runs on one GPU
    if config.num_gpus is not None:
        return config.num_gpus
    return options.class_c_gpus if config.model_class is ModelClass.C else 1


def plan_runs(
    configs: Sequence[ModelConfig],
    options: PlanOptions,
    *,
    all_rows: Sequence[ModelConfig] | None = None,
) -> list[RunPlan]:
    """A plan per config, in CSV order.

    Folder names are decided among ``all_rows`` (the whole CSV, before any filter; every config
    is one of them), so a row keeps its folder whichever rows a sweep selects.
    """
    universe = list(all_rows) if all_rows is not None else list(configs)
    inputs = [file_digest(options.prompts_file)] if options.prompts_file is not None else []
    names = dict(zip(map(id, universe), run_names(universe), strict=True))
    plans = []
    for config in configs:
        name = names[id(config)] + (SERVED_SUFFIX if options.serving else "")
        overrides = benchmark_overrides(config, options)
        gpus = gpus_for(config, options)
        paths = [Path(config.model_id)] if Path(config.model_id).is_absolute() else []
        paths += local_extras(config)
        if options.prompts_file is not None:
            paths.append(options.prompts_file)
        skip = ""
        if config.task is Task.IMAGE_GEN and options.serving is not None:
            skip = "a served run measures text generation only (image_gen runs here)"
        plans.append(
            RunPlan(
                config=config,
                run_id=run_id(
                    config,
                    overrides,
                    software_id=options.software_id,
                    gpu_count=gpus,
                    hardware=options.hardware,
                    inputs=inputs,
                ),
                name=name,
                overrides=overrides,
                gpus_needed=gpus,
                read_only_paths=tuple(paths),
                skip_reason=skip,
                serving=options.serving,
                config_name=contract.CONFIG_NAMES[config.task.value],
            )
        )
    return plans
