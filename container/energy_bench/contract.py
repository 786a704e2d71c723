"""What the benchmark and the host orchestrator agree on, in one place both import.

The host imports this module and nothing else of the benchmark package, so it stays free of
dependencies beyond the standard library. It holds the result file names, the exit codes, the
reasoning control values and the strings they write, the format of the error line a failed run
prints last, the report's schema version with the keys a reader may rely on, and how many
prompts a run sends by default.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from enum import IntEnum
from pathlib import Path
from typing import Any, Literal, NamedTuple, get_args

VERSION = "0.2.0"  # of the project: the benchmark, the orchestrator and the image tag

# --- the image and the single-run command ----------------------------------------------------
IMAGE_REPOSITORY = "ai_energy_score"
DEFAULT_IMAGE = f"{IMAGE_REPOSITORY}:{VERSION}"
CONFIG_NAME = "text_generation"
RESULTS_DIR_ENV = "RESULTS_DIR"  # the results folder, when --results-dir is not given
IMAGE_TAG_ENV = "AI_ENERGY_SCORE_IMAGE"  # the image's tag, recorded as provenance
CPUS_ENV = "AI_ENERGY_SCORE_CPUS"  # the cores a run may use, comma-separated ("0,1,2,3")
# The sweep touches this file in the results folder while it waits for the run; the benchmark
# stops itself when the file has not changed for HEARTBEAT_ENV seconds (its sweep is gone).
HEARTBEAT_FILE = ".heartbeat"
HEARTBEAT_ENV = "AI_ENERGY_SCORE_HEARTBEAT_S"
# ``python -m energy_bench --check-overrides``: read override sets (a JSON array of strings per
# line) from stdin, print a JSON line per set, ``{"problem": ""}`` when the benchmark takes it.
CHECK_FLAG = "--check-overrides"


def cpu_list(cpus: tuple[int, ...] | list[int]) -> str:
    """The value of ``CPUS_ENV`` for these cores."""
    return ",".join(str(c) for c in cpus)


def parse_cpu_list(text: str) -> list[int]:
    """The cores of a ``CPUS_ENV`` value (empty for an empty value)."""
    return sorted({int(part) for part in text.split(",") if part.strip()})


# --- prompts ---------------------------------------------------------------------------------
# ``scenario.num_samples`` of configs/text_generation.yaml (a test holds the two equal): a run
# sends this many prompts unless told otherwise, or every prompt when its dataset has fewer.
DEFAULT_NUM_SAMPLES = 1000
# The bundled offline prompt set: the fallback when the Hub dataset cannot be read.
BUNDLED_PROMPTS_FILE = (
    Path(__file__).resolve().parent / "workload" / "data" / "bundled_prompts.jsonl"
)


# The bundled offline image prompts (field "prompt"): the fallback of text-to-image runs.
BUNDLED_IMAGE_PROMPTS_FILE = BUNDLED_PROMPTS_FILE.with_name("bundled_image_prompts.jsonl")


def bundled_prompt_count(*, image: bool = False) -> int:
    """How many prompts a bundled set holds (one JSON object per non-blank line)."""
    path = BUNDLED_IMAGE_PROMPTS_FILE if image else BUNDLED_PROMPTS_FILE
    with path.open(encoding="utf-8") as f:
        return sum(1 for line in f if line.strip())


CONTAINER_RESULTS_DIR = "/results"  # where the image expects its results folder mounted
CONTAINER_HF_HOME = "/home/user/.cache/huggingface"  # the image's Hugging Face cache

# --- result files, written into the results folder ------------------------------------------
REPORT_FILE = "benchmark_report.json"
RESULTS_CSV_FILE = "benchmark_results.csv"
ENERGY_WH_FILE = "GPU_ENERGY_WH.txt"
ENERGY_SUMMARY_FILE = "GPU_ENERGY_SUMMARY.json"
PER_PROMPT_FILE = "per_prompt.csv"
POWER_TRACE_FILE = "power_trace.csv"
RESULT_FILES = (
    REPORT_FILE,
    RESULTS_CSV_FILE,
    ENERGY_WH_FILE,
    ENERGY_SUMMARY_FILE,
    PER_PROMPT_FILE,
    POWER_TRACE_FILE,
)


# --- how a run ends ----------------------------------------------------------------------------
class ExitCode(IntEnum):
    """The benchmark's process exit status, one per way a run can end."""

    OK = 0
    FAILED = 1  # anything not named below
    CONFIG_ERROR = 2
    MODEL_LOAD_ERROR = 3  # the model exists but cannot be loaded
    OUT_OF_MEMORY = 4
    ABORTED = 5  # three failed batches in a row
    NO_ENERGY_SOURCE = 6
    GATED_MODEL = 7  # HTTP 401/403: licence not accepted or no token
    MODEL_NOT_FOUND = 8  # HTTP 404 or no such folder
    SERVER_UNAVAILABLE = 9  # the serving backend's endpoint does not answer
    INTERRUPTED = 130


ERROR_LINE_PREFIX = "energy_bench: error: "
_ERROR_LINE = re.compile(re.escape(ERROR_LINE_PREFIX) + r"(?P<kind>\w+): (?P<message>.*)")


def error_line(kind: str, message: str) -> str:
    """The last line a failed run prints on stderr: its error's type and one-line message."""
    first = message.splitlines()[0] if message else ""
    return f"{ERROR_LINE_PREFIX}{kind}: {first}"


def parse_error_line(text: str) -> tuple[str, str] | None:
    """(type, message) of the last error line in ``text``, or None when it holds none."""
    found = _ERROR_LINE.findall(text)
    return (found[-1][0], found[-1][1].strip()) if found else None


# --- reasoning ---------------------------------------------------------------------------------
Control = Literal[
    "harmony",
    "chat_template_kwarg",
    "think_prefix",
    "system_prompt",
    "prompt_prefix",
    "model_default",
    "none",
]
"""How a reasoning directive is applied to the prompt; ``none`` means it is not applied at all."""
CONTROLS: tuple[str, ...] = get_args(Control)

THINK = "/think"  # system prompt or prompt prefix of families with a soft switch
NO_THINK = "/no_think"
THINK_OPEN = "<think>\n"  # an assistant turn that starts thinking
THINK_EMPTY = "<think>\n\n</think>\n\n"  # an empty think block: answer at once


class Writes(NamedTuple):
    """What a control writes into a prompt: chat template kwargs and three texts (or None)."""

    template_kwargs: dict[str, Any]
    system_prompt: str | None
    prompt_prefix: str | None
    assistant_prefix: str | None


def control_writes(control: str, on: bool | None, effort: str | None) -> Writes:
    """What ``control`` writes for reasoning ``on`` (off when False; nothing when None)."""
    if on is None:
        return Writes({}, None, None, None)
    flag = THINK if on else NO_THINK
    return {
        "harmony": Writes({"reasoning_effort": effort}, None, None, None),
        "chat_template_kwarg": Writes({"enable_thinking": on}, None, None, None),
        "think_prefix": Writes({}, None, None, THINK_OPEN if on else THINK_EMPTY),
        "system_prompt": Writes({}, flag, None, None),
        "prompt_prefix": Writes({}, None, flag, None),
    }.get(control, Writes({}, None, None, None))


# --- generation paths ----------------------------------------------------------------------------

GENERATION_EAGER = "eager"  # transformers' generate with a dynamic cache, as upstream runs
GENERATION_COMPILED = "compiled"  # a static cache and a compiled decode step (CUDA graphs on GPUs)
GENERATION_SERVED = "served"  # requests to an OpenAI-compatible server (backend.type vllm)
GENERATION_PATHS = (GENERATION_EAGER, GENERATION_COMPILED)
"""The paths a run can generate on, as ``report["generation_path"]`` names the one it used."""


# --- image generation ------------------------------------------------------------------------
IMAGE_CONFIG_NAME = "image_generation"  # configs/image_generation.yaml: text-to-image runs
CONFIG_NAMES = {"text_gen": CONFIG_NAME, "image_gen": IMAGE_CONFIG_NAME}  # by the CSV's task
GENERATION_DIFFUSION = "diffusion"  # an image pipeline's denoising loop (no tokens generated)
IMAGES_DIR = "images"  # the PNGs a run keeps (scenario.save_images), in its results folder
IMAGE_FILE_PATTERN = re.compile(r"image_\d{4,}\.png")


def image_file(number: int) -> str:
    """The file name of a run's ``number``-th kept image (from 0), in ``IMAGES_DIR``."""
    return f"image_{number:04d}.png"


MODEL_INDEX_FILE = "model_index.json"  # a pipeline's own file: its class and components


class ImageFamily(NamedTuple):
    """A text-to-image family: the pipeline class that loads it, and what its repository lacks.

    ``extras`` are ``(component, default)``: a model the pipeline needs that is not in the
    repository (HiDream's Llama text encoder, a gated model), named by ``backend.<component>``.
    """

    marker: str  # a lowercase substring of the model id
    pipeline: str
    extras: tuple[tuple[str, str], ...] = ()


IMAGE_FAMILIES = (
    ImageFamily(
        "hidream", "HiDreamImagePipeline", (("text_encoder_4", "meta-llama/Llama-3.1-8B-Instruct"),)
    ),
    ImageFamily("qwen-image", "QwenImagePipeline"),
    ImageFamily("flux", "FluxPipeline"),
)
IMAGE_EXTRA_KEYS = ("text_encoder_4",)  # every family's extras, as backend.<key>


def image_family(model: str) -> ImageFamily | None:
    """The family of ``model`` (a Hub id or a local pipeline folder), or None.

    A local folder by its ``model_index.json`` only (its path may hold any name: a folder
    ``/data/flux-team/Qwen3-0.6B`` is no FLUX pipeline); a Hub id by its name.
    """
    path = Path(model)
    if path.is_dir():
        try:
            index = json.loads((path / MODEL_INDEX_FILE).read_text(encoding="utf-8"))
            name = index.get("_class_name")
        except (OSError, ValueError, AttributeError):
            return None
        return next((f for f in IMAGE_FAMILIES if f.pipeline == name), None)
    lowered = model.lower()
    return next((f for f in IMAGE_FAMILIES if f.marker in lowered), None)


def is_pipeline_folder(model: str) -> bool:
    """True for a local folder holding a diffusers pipeline (its ``model_index.json``)."""
    return (Path(model) / MODEL_INDEX_FILE).is_file()


# Override keys that only one config has (a test holds them to configs/*.yaml): a sweep's own
# ``key=value`` goes to the runs whose config has the key, a key of every config to every run.
CONFIG_ONLY_KEYS = {
    CONFIG_NAME: (
        "backend.device_map", "backend.endpoint", "backend.generation", "backend.processor",
        "backend.request_timeout_s", "backend.server_gpus", "backend.trust_remote_code",
        "scenario.concurrency", "scenario.generate_kwargs", "scenario.input_shapes",
        "scenario.reasoning", "scenario.reasoning_params", "scenario.truncation",
        "scenario.warmup_pass",
    ),
    IMAGE_CONFIG_NAME: (
        "backend.pipeline", "backend.text_encoder_4", "scenario.guidance_scale", "scenario.height",
        "scenario.num_inference_steps", "scenario.save_images", "scenario.width",
    ),
}  # fmt: skip


def override_applies(config_name: str, key: str) -> bool:
    """False for a key (or a key under a section) that only another config has."""
    return not any(
        key == only or key.startswith(only + ".")
        for name, keys in CONFIG_ONLY_KEYS.items()
        if name != config_name
        for only in keys
    )


# --- CSV files, on both sides --------------------------------------------------------------------
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """A value as it may go into a CSV cell.

    Text that a spreadsheet would run as a formula (``=HYPERLINK(...)``) gets a leading
    apostrophe; numbers, negative ones too, stay as they are.
    """
    if not isinstance(value, str) or not value.startswith(FORMULA_STARTS):
        return value
    try:
        float(value)
    except ValueError:
        return "'" + value
    return value


# --- the report ----------------------------------------------------------------------------------
SCHEMA_VERSION = 3  # 3: generation_path, the recompiled flag, a measured prefill
STATUS_OK = "ok"
STATUS_FAILED = "failed"

SUMMARY_KEYS = (
    "total_prompts",
    "successful_prompts",
    "failed_prompts",
    "total_duration_seconds",
    "avg_total_time",
    "avg_time_to_first_token",
    "total_tokens",
    "total_prompt_tokens",
    "total_completion_tokens",
    "throughput_tokens_per_second",
    "output_tokens_per_second",
    "repeats",
    "batch_size",
)
"""Numbers in ``report["summary"]`` (a number, or null where not measured)."""

ENERGY_KEYS = (
    "gpu_energy_wh",
    "wh_per_1000_queries",
    "co2_emissions_g",
    "tokens_per_joule",
    "avg_energy_per_prompt_wh",
    "energy_above_idle_wh",
    "idle_power_w",
    "average_power_w",
    "repeat_energy_cv",
)
"""Numbers in ``report["energy"]`` (a number, or null where not measured)."""

COUNT_KEYS = (
    "total_prompts",
    "successful_prompts",
    "failed_prompts",
    "total_tokens",
    "total_prompt_tokens",
    "total_completion_tokens",
    "repeats",
    "batch_size",
)
"""Of the numbers above, those that count things: whole numbers."""
SIGNED_KEYS = ("energy_above_idle_wh",)
"""Of the numbers above, those that may be negative (a pass below the idle baseline)."""

FLAG_KEYS = ("short_window", "counter_reset", "trace_mismatch", "foreign_process", "recompiled")
"""Booleans in ``report["energy"]["flags"]``: a true one makes the result suspect.

``recompiled``: the compiler built a graph inside a measured window (its time and energy count).
"""


def report_problem(report: Any) -> str:
    """Why ``report`` is not a readable successful report ("" when it is).

    Checks what a reader relies on: the schema version, the status, and the type of every key
    named above. A report of a failed run is readable too (its ``error`` says why), so only
    ``status == "ok"`` reports need the figures.
    """
    if not isinstance(report, Mapping):
        return "not a JSON object"
    version = report.get("schema_version")
    if version != SCHEMA_VERSION:
        return f"schema_version {version!r}, expected {SCHEMA_VERSION}"
    if report.get("status") != STATUS_OK:
        return f"status {report.get('status')!r}"
    for section, keys in (("summary", SUMMARY_KEYS), ("energy", ENERGY_KEYS)):
        values = report.get(section)
        if not isinstance(values, Mapping):
            return f"no {section} section"
        for key in keys:
            value = values.get(key, ...)
            if value is ...:
                return f"{section}.{key} is missing"
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                return f"{section}.{key} is not a number ({value!r})"
            if not math.isfinite(value) or (value < 0 and key not in SIGNED_KEYS):
                return f"{section}.{key} is not a finite non-negative number ({value!r})"
            if key in COUNT_KEYS and not isinstance(value, int):
                return f"{section}.{key} is not a whole number ({value!r})"
    flags = report["energy"].get("flags")
    if not isinstance(flags, Mapping) or any(not isinstance(flags.get(k), bool) for k in FLAG_KEYS):
        return "energy.flags is missing or not booleans"
    if not isinstance(report["energy"].get("energy_source"), str):
        return "energy.energy_source is missing"
    return ""
