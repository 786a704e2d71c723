"""The run's configuration: YAML defaults plus Hydra-style ``a.b=value`` overrides.

Values are typed the YAML way (``False`` is a boolean, ``10`` an int, ``null`` is None; quote a
value to keep it a string). Unknown keys and wrongly typed values are a ``BenchConfigError`` that
lists what is valid.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from energy_bench import contract
from energy_bench.contract import CONTROLS, Control
from energy_bench.errors import BenchConfigError


def _config_dir() -> Path:
    """The folder of YAML configs: inside the package once installed, else ``container/configs``."""
    here = Path(__file__).resolve().parent
    installed = here / "configs"
    return installed if installed.is_dir() else here.parent / "configs"


CONFIG_DIR = _config_dir()
FREE_FORM = ("scenario.generate_kwargs",)
BUDGET_KEYS = ("scenario.generate_kwargs.max_new_tokens", "scenario.generate_kwargs.min_new_tokens")
# No model's context is longer: a budget above it is a typo, refused before anything loads.
MAX_TOKEN_BUDGET = 10_000_000
DTYPES = ("bfloat16", "float16", "float32", "auto")
DEVICES = ("auto", "cuda", "cpu")
GENERATION_PATHS = ("auto", *contract.GENERATION_PATHS)  # auto: compiled on GPUs, else eager
EFFORTS = ("high", "medium", "low")
BACKEND_TYPES = ("pytorch", "vllm")  # vllm: any OpenAI-compatible server, at backend.endpoint
TASKS = ("text-generation", "text_generation")
IMAGE_BACKEND = "diffusers"  # the text-to-image backend (configs/image_generation.yaml)
IMAGE_TASKS = ("text-to-image", "image_generation")
MAX_IMAGE_SIDE = 16_384  # pixels: beyond it, a typo (and no pipeline's latents fit)


@dataclass(frozen=True)
class BackendConfig:
    """How the model is loaded and placed."""

    model: str
    processor: str | None
    torch_dtype: str
    no_weights: bool
    device: str
    num_gpus: int
    trust_remote_code: bool
    generation: str
    # GPU indices, among those visible, the run may take its ``num_gpus`` from (None: the first).
    device_ids: tuple[int, ...] | None = None
    type: str = "pytorch"
    endpoint: str = ""  # the server's OpenAI-compatible base URL (type vllm)
    # The server's GPUs whose energy is measured (UUIDs or indices; None: every visible GPU).
    server_gpus: tuple[str, ...] | None = None
    request_timeout_s: float = 600.0
    pipeline: str | None = None  # diffusers: the pipeline class (None: by family)
    # diffusers: components the repository lacks, by name (HiDream's ``text_encoder_4``).
    extras: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ReasoningConfig:
    """The reasoning directive resolved on the host; applied as given, never guessed."""

    enabled: bool | None
    control: Control
    effort: str | None
    enable_thinking: bool | None = None  # given as such (upstream's key), beside the control


@dataclass(frozen=True)
class ImageSettings:
    """How each image is made: the text-to-image protocol (every value goes into the result).

    ``guidance_scale`` None is the pipeline's own default; ``save_images`` keeps the first N
    images of the first measured pass as PNGs.
    """

    steps: int
    height: int
    width: int
    guidance_scale: float | None
    save_images: int = 0


@dataclass(frozen=True)
class ScenarioConfig:
    """What is run: prompts, batching, warmup, repeats, generation settings."""

    dataset_name: str
    dataset_split: str
    text_column_name: str
    num_samples: int
    batch_size: int
    warmup_pass: bool
    warmup_runs: int
    repeats: int
    seed: int
    reasoning: ReasoningConfig
    max_new_tokens: int
    min_new_tokens: int
    generate_kwargs: Mapping[str, Any] = field(default_factory=dict)
    # The ``scenario.*`` keys the overrides set; the others hold the config file's defaults.
    given: frozenset[str] = frozenset()
    truncation: bool = True  # cut a prompt too long for the context, else refuse the run
    concurrency: int = 1  # requests in flight at once (the serving backend)
    image: ImageSettings | None = None  # text-to-image runs: the protocol (None: text)


@dataclass(frozen=True)
class EnergyConfig:
    """How energy is measured."""

    idle_seconds: float
    sample_hz: float
    carbon_intensity_g_per_kwh: float


@dataclass(frozen=True)
class BenchConfig:
    """The whole, validated run configuration; ``raw`` is the merged tree as given."""

    name: str
    backend: BackendConfig
    scenario: ScenarioConfig
    energy: EnergyConfig
    raw: Mapping[str, Any]

    @property
    def config_hash(self) -> str:
        """A short, stable digest of the merged configuration (for provenance and run ids)."""
        text = json.dumps(self.raw, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping) and dotted not in FREE_FORM:
            flat.update(_flatten(value, dotted + "."))
        else:
            flat[dotted] = value
    return flat


def _parse_value(text: str) -> Any:
    if text.startswith('"') and text.endswith('"') and len(text) >= 2:
        try:
            return json.loads(text)  # JSON string escapes, e.g. "\n"
        except json.JSONDecodeError:
            return text[1:-1]
    try:
        return yaml.safe_load(text) if text.strip() else ""
    except yaml.YAMLError:
        return text


def _number(text: str, want: type) -> Any:
    """A number in any YAML or JSON spelling (``1e12``, ``1E+3``, ``1_000``); None if not one.

    YAML 1.1 reads ``1e12`` as a string; an integral value such as ``1e3`` counts as an int.
    """
    try:
        value = float(text.strip().replace("_", ""))
    except ValueError:
        return None
    if want is float:
        return value if math.isfinite(value) else None
    return int(value) if value.is_integer() else None


def _type_ok(default: Any, value: Any) -> bool:
    if default is None or value is None:
        return True
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, int | float) and not isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(default, str):
        return isinstance(value, str | int | float) and not isinstance(value, bool)
    return isinstance(value, type(default))


_KINDS = {bool: "true or false", int: "a whole number", float: "a number", str: "a string"}


def _set(tree: dict[str, Any], dotted: str, value: Any) -> None:
    node = tree
    *parents, leaf = dotted.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value


def apply_overrides(defaults: Mapping[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """The defaults tree with every ``key=value`` override applied and type-checked."""
    tree = copy.deepcopy(dict(defaults))
    flat = _flatten(tree)
    for item in overrides:
        key, sep, text = item.partition("=")
        key = key.strip().lstrip("+")
        if not sep or not key:
            raise BenchConfigError(f"override {item!r} is not of the form key=value")
        value = _parse_value(text)
        # free-form below a key its config has (an image config has no generate_kwargs)
        free = next((f for f in FREE_FORM if key.startswith(f + ".") and f in flat), None)
        want = type(flat.get(key)) if free is None else int if key in BUDGET_KEYS else None
        if want in (int, float) and not isinstance(value, bool) and not isinstance(value, want):
            number = _number(text, want)
            value = value if number is None else number
        if free is None and key not in flat:
            close = difflib.get_close_matches(key, flat, n=1, cutoff=0.85)
            if close:
                raise BenchConfigError(f"unknown config key {key!r}; did you mean {close[0]!r}?")
            valid = ", ".join(sorted(f"{k}.*" if k in FREE_FORM else k for k in flat))
            raise BenchConfigError(f"unknown config key {key!r}; valid keys: {valid}")
        if free is None and not _type_ok(flat[key], value):
            raise BenchConfigError(
                f"{key}={text!r}: expected {_KINDS.get(type(flat[key]), 'a value')} "
                f"(default {flat[key]!r}), got {_KINDS.get(type(value), 'a value')}"
            )
        if isinstance(flat.get(key), str) and isinstance(value, int | float):
            value = text.strip()
        _set(tree, key, value)
    return tree


def _choice(key: str, value: Any, allowed: Sequence[Any]) -> Any:
    if value not in allowed:
        raise BenchConfigError(f"{key}={value!r}: expected one of {', '.join(map(str, allowed))}")
    return value


def _at_least(key: str, value: Any, low: float) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BenchConfigError(f"{key}={value!r}: expected a number")
    if isinstance(value, float) and not math.isfinite(value):  # YAML's own .inf and .nan
        raise BenchConfigError(f"{key}={value!r}: expected a finite number")
    if value < low:
        raise BenchConfigError(f"{key}={value!r}: must be at least {low}")
    return value


def _whole(key: str, value: Any, low: int, unit: str = "") -> int:
    """A whole number of at least ``low`` (``unit`` names what it counts in the message)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise BenchConfigError(f"{key}={value!r}: expected a whole number{unit}")
    return int(_at_least(key, value, low))


def _budget(key: str, value: Any, low: int) -> int:
    """A token budget: a whole number from ``low`` up to ``MAX_TOKEN_BUDGET``."""
    value = _whole(key, value, low, " of tokens")
    if value > MAX_TOKEN_BUDGET:
        raise BenchConfigError(f"{key}={value}: more than {MAX_TOKEN_BUDGET:,} tokens")
    return value


def _flag(key: str, value: Any, *, null: bool = True) -> bool | None:
    if not isinstance(value, bool) and (value is not None or not null):
        raise BenchConfigError(f"{key}={value!r}: expected true, false{' or null' * null}")
    return value


def _device_ids(value: Any) -> tuple[int, ...] | None:
    """``backend.device_ids`` as GPU indices: null, one index, ``"0,1"`` or a list."""
    if value is None:
        return None
    items = value.split(",") if isinstance(value, str) else value
    ids = []
    for item in items if isinstance(items, list) else [items]:
        if isinstance(item, str) and item.strip().isascii() and item.strip().isdigit():
            item = int(item)
        if isinstance(item, bool) or not isinstance(item, int) or item < 0:
            raise BenchConfigError(
                f"backend.device_ids={value!r}: expected GPU indices from 0, as 0,1 or [0, 1]"
            )
        ids.append(item)
    if len(set(ids)) < len(ids):
        raise BenchConfigError(f"backend.device_ids={value!r}: names a GPU twice")
    return tuple(ids)


def _server_gpus(value: Any) -> tuple[str, ...] | None:
    """``backend.server_gpus``: GPU UUIDs or indices, as ``"0,1"``, a list, or null."""
    if value is None:
        return None
    items = value.split(",") if isinstance(value, str) else value
    items = items if isinstance(items, list) else [items]
    gpus = tuple(str(item).strip() for item in items if str(item).strip())
    bad = [g for g in gpus if not (g.isdigit() or g.upper().startswith(("GPU-", "MIG-")))]
    if bad or not gpus:
        raise BenchConfigError(
            f"backend.server_gpus={value!r}: expected GPU indices or UUIDs, as 0,1 or GPU-…"
        )
    return gpus


def _backend(b: Mapping[str, Any]) -> BackendConfig:
    _choice("backend.type", b["type"], BACKEND_TYPES)
    _choice("backend.task", b["task"], TASKS)
    if b["device_map"] not in ("auto", None):
        raise BenchConfigError(
            f"backend.device_map={b['device_map']!r}: expected auto or null; the benchmark "
            "places the model itself over backend.num_gpus GPUs (backend.device_ids picks which)"
        )
    kind = b["type"]
    endpoint = str(b.get("endpoint") or "").strip()
    if kind == "vllm" and not endpoint.startswith(("http://", "https://")):
        raise BenchConfigError(
            f"backend.endpoint={endpoint!r}: backend.type=vllm needs the server's base URL, "
            "as http://host:8000/v1"
        )
    parts = urlsplit(endpoint)
    if parts.username or parts.password or parts.query:  # the URL goes into every result
        raise BenchConfigError(
            "backend.endpoint: no user, password or query in the URL; a key goes in the "
            "VLLM_API_KEY environment variable"
        )
    return BackendConfig(
        type=kind,
        endpoint=endpoint,
        server_gpus=_server_gpus(b.get("server_gpus")),
        request_timeout_s=_at_least("backend.request_timeout_s", b["request_timeout_s"], 1),
        model=str(b["model"]).strip(),
        processor=b.get("processor"),
        torch_dtype=_choice("backend.torch_dtype", b["torch_dtype"], DTYPES),
        no_weights=bool(b["no_weights"]),
        device=_choice("backend.device", b["device"], DEVICES),
        num_gpus=_at_least("backend.num_gpus", b["num_gpus"], 1),
        trust_remote_code=bool(b["trust_remote_code"]),
        generation=_choice("backend.generation", b["generation"], GENERATION_PATHS),
        device_ids=_device_ids(b["device_ids"]),
    )


def _reasoning(s: Mapping[str, Any]) -> ReasoningConfig:
    """The directive, with the upstream spellings of its state folded in.

    The AI Energy Score runner sends ``scenario.reasoning=True`` beside every parameter it
    forwards, ``enable_thinking=False`` included: the more specific key decides the state.
    ``enable_thinking`` without a mechanism (or with ``model_default``) is the chat template's
    switch; beside another mechanism, that one applies the state and the report says so.
    """
    params = s.get("reasoning_params") or {}
    effort = params.get("reasoning_effort")
    if effort is not None:
        effort = _choice("scenario.reasoning_params.reasoning_effort", str(effort).lower(), EFFORTS)
    on = _flag("scenario.reasoning", s.get("reasoning"))
    same = _flag("scenario.reasoning_params.reasoning", params.get("reasoning"))
    thinking = _flag("scenario.reasoning_params.enable_thinking", params.get("enable_thinking"))
    if same is not None and thinking is not None and same != thinking:
        raise BenchConfigError(
            f"scenario.reasoning_params.enable_thinking={thinking} disagrees with "
            f"scenario.reasoning_params.reasoning={same}: give the same state"
        )
    on = next((v for v in (thinking, same, on) if v is not None), None)
    control = _choice("scenario.reasoning_params.control", params.get("control"), CONTROLS)
    if thinking is not None and control in ("none", "model_default"):
        control = "chat_template_kwarg"
    if control == "harmony" and effort is None:
        raise BenchConfigError("control=harmony needs scenario.reasoning_params.reasoning_effort")
    return ReasoningConfig(enabled=on, control=control, effort=effort, enable_thinking=thinking)


def _batch_size(s: Mapping[str, Any], given: frozenset[str]) -> int:
    size = _at_least("scenario.batch_size", s["batch_size"], 1)
    alias = (s.get("input_shapes") or {}).get("batch_size")
    if alias is None:
        return int(size)
    alias = _whole("scenario.input_shapes.batch_size", alias, 1)
    if "scenario.batch_size" in given and alias != size:
        raise BenchConfigError(
            f"scenario.input_shapes.batch_size={alias} disagrees with scenario.batch_size={size}"
        )
    return alias


def _image_backend(b: Mapping[str, Any]) -> BackendConfig:
    _choice("backend.type", b["type"], (IMAGE_BACKEND,))
    _choice("backend.task", b["task"], IMAGE_TASKS)
    num_gpus = _whole("backend.num_gpus", b["num_gpus"], 1)
    if num_gpus != 1:
        raise BenchConfigError(f"backend.num_gpus={num_gpus}: an image pipeline runs on one GPU")
    pipeline = b.get("pipeline")
    return BackendConfig(
        type=IMAGE_BACKEND,
        model=str(b["model"]).strip(),
        processor=None,
        torch_dtype=_choice("backend.torch_dtype", b["torch_dtype"], DTYPES),
        no_weights=bool(_flag("backend.no_weights", b["no_weights"], null=False)),
        device=_choice("backend.device", b["device"], DEVICES),
        num_gpus=1,
        trust_remote_code=False,
        generation=contract.GENERATION_DIFFUSION,
        device_ids=_device_ids(b["device_ids"]),
        pipeline=str(pipeline).strip() if pipeline else None,
        extras={k: str(b[k]).strip() for k in contract.IMAGE_EXTRA_KEYS if b.get(k)},
    )


def _side(key: str, value: Any) -> int:
    """An image side in pixels: a whole multiple of 16 (the latent patches of every family)."""
    value = _whole(key, value, 16, " of pixels")
    if value % 16 or value > MAX_IMAGE_SIDE:
        raise BenchConfigError(f"{key}={value}: expected a multiple of 16 up to {MAX_IMAGE_SIDE}")
    return value


def _image_scenario(s: Mapping[str, Any], given: frozenset[str]) -> ScenarioConfig:
    guidance = s["guidance_scale"]
    if guidance is not None:
        guidance = float(_at_least("scenario.guidance_scale", guidance, 0.0))
    return ScenarioConfig(
        dataset_name=str(s["dataset_name"]),
        dataset_split=str(s["dataset_split"]),
        text_column_name=str(s["text_column_name"]),
        num_samples=_whole("scenario.num_samples", s["num_samples"], 1),
        batch_size=_whole("scenario.batch_size", s["batch_size"], 1),
        warmup_pass=False,
        warmup_runs=_whole("scenario.warmup_runs", s["warmup_runs"], 0),
        repeats=_whole("scenario.repeats", s["repeats"], 1),
        seed=s["seed"],
        reasoning=ReasoningConfig(enabled=None, control="none", effort=None),
        max_new_tokens=0,
        min_new_tokens=0,
        given=frozenset(k for k in given if k.startswith("scenario.")),
        image=ImageSettings(
            steps=_whole("scenario.num_inference_steps", s["num_inference_steps"], 1),
            height=_side("scenario.height", s["height"]),
            width=_side("scenario.width", s["width"]),
            guidance_scale=guidance,
            save_images=_whole("scenario.save_images", s["save_images"], 0),
        ),
    )


def _energy(tree: Mapping[str, Any]) -> EnergyConfig:
    e = tree["energy"]
    sample_hz = float(_at_least("energy.sample_hz", e["sample_hz"], 0.1))
    if sample_hz > 100:
        raise BenchConfigError(f"energy.sample_hz={sample_hz}: at most 100")
    return EnergyConfig(
        idle_seconds=float(_at_least("energy.idle_seconds", e["idle_seconds"], 0.0)),
        sample_hz=sample_hz,
        carbon_intensity_g_per_kwh=float(
            _at_least("carbon.intensity_g_per_kwh", tree["carbon"]["intensity_g_per_kwh"], 0.0)
        ),
    )


def _build(name: str, tree: Mapping[str, Any], given: frozenset[str]) -> BenchConfig:
    b, s = tree["backend"], tree["scenario"]
    if b["model"] is None or not str(b["model"]).strip():
        raise BenchConfigError("backend.model is required (a Hub id or a local folder)")
    if "num_inference_steps" in s:  # an image config (configs/image_generation.yaml)
        return BenchConfig(name, _image_backend(b), _image_scenario(s, given), _energy(tree), tree)
    generate = dict(s.get("generate_kwargs") or {})
    max_new = _budget(BUDGET_KEYS[0], generate.pop("max_new_tokens", None), 1)
    min_new = generate.pop("min_new_tokens", None)
    min_new = 0 if min_new is None else _budget(BUDGET_KEYS[1], min_new, 0)
    if min_new > max_new:
        raise BenchConfigError(f"min_new_tokens={min_new} is above max_new_tokens={max_new}")
    reasoning = _reasoning(s)
    return BenchConfig(
        name=name,
        backend=_backend(b),
        scenario=ScenarioConfig(
            dataset_name=str(s["dataset_name"]),
            dataset_split=str(s["dataset_split"]),
            text_column_name=str(s["text_column_name"]),
            num_samples=_at_least("scenario.num_samples", s["num_samples"], 1),
            batch_size=_batch_size(s, given),
            warmup_pass=bool(s["warmup_pass"]),
            warmup_runs=_at_least("scenario.warmup_runs", s["warmup_runs"], 0),
            repeats=_at_least("scenario.repeats", s["repeats"], 1),
            seed=s["seed"],
            reasoning=reasoning,
            max_new_tokens=max_new,
            min_new_tokens=min_new,
            generate_kwargs=generate,
            given=frozenset(k for k in given if k.startswith("scenario.")),
            truncation=bool(_flag("scenario.truncation", s["truncation"], null=False)),
            concurrency=_whole("scenario.concurrency", s["concurrency"], 1),
        ),
        energy=_energy(tree),
        raw=tree,
    )


def load_config(
    name: str, overrides: Sequence[str] = (), *, config_dir: Path = CONFIG_DIR
) -> BenchConfig:
    """The validated configuration ``name`` (a YAML file in ``config_dir``) with overrides."""
    path = config_dir / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in config_dir.glob("*.yaml"))) or "none"
        raise BenchConfigError(f"unknown --config-name {name!r}; known: {known}")
    defaults = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    given = frozenset(item.partition("=")[0].strip().lstrip("+") for item in overrides)
    return _build(name, apply_overrides(defaults, overrides), given)
