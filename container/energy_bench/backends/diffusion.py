"""The text-to-image backend: a diffusers pipeline, loaded by its family's class, on one device.

Each family's pipeline class is named in ``contract.IMAGE_FAMILIES`` (a local folder is known by
its ``model_index.json``), so that every family loads, HiDream with the Llama text encoder its
repository lacks. ``backend.no_weights`` builds the same pipeline with random weights from its
component configs: the folder's own, or the family's bundled ones (``shapes/<class>/``), with
stand-in tokenizers of the real ones' lengths, so the compute is the same without a download.
Every image is made at the run's protocol (steps, size, guidance); the result records each value.
It never touches NVML: the meter measures around it.
"""

from __future__ import annotations

import inspect
import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from energy_bench import contract
from energy_bench.backends import placement
from energy_bench.backends.base import Batch, Generation
from energy_bench.backends.pytorch import _hub_error
from energy_bench.config import BackendConfig, ImageSettings, ScenarioConfig
from energy_bench.errors import BenchConfigError, ModelNotFound, OutOfMemory

log = logging.getLogger(__name__)

SHAPES_DIR = Path(__file__).resolve().parent / "shapes"
TOKENIZER_CONFIG = "tokenizer_config.json"
LATENT_PATCH = 2  # latent pixels per transformer token, each way, in every family (2x2 patches)


def pipeline_class_name(cfg: BackendConfig) -> str:
    """The diffusers class that loads ``cfg.model``: as given, by family, else the generic one."""
    if cfg.pipeline:
        return cfg.pipeline
    family = contract.image_family(cfg.model)
    return family.pipeline if family is not None else "DiffusionPipeline"


def word_tokenizer(max_length: int, words: Sequence[str] = ()) -> Any:
    """A word-level tokenizer of ``words`` (others are unknown), padding to ``max_length``.

    Without words, a stand-in for a tokenizer whose vocabulary is not bundled: every family pads
    its prompts to a fixed length (CLIP 77, T5 512) or nearly, so the text encoders compute the
    same as with the real vocabulary.
    """
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2, **{w: i + 3 for i, w in enumerate(words)}}
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(
        tokenizer_object=core,
        pad_token="<pad>",
        eos_token="</s>",
        unk_token="<unk>",
        model_max_length=max_length,
    )


def _random_component(folder: Path, library: str, class_name: str, dtype: Any) -> Any:
    """One component built from its config with random weights (a scheduler as configured)."""
    module = __import__(library)
    cls = getattr(module, class_name)
    if library == "diffusers":
        config = cls.load_config(str(folder))
        if "Scheduler" in class_name:
            return cls.from_config(config)
        import torch

        # Built in the run's dtype: in float32 first, Qwen-Image's transformer alone is 82 GB.
        default = torch.get_default_dtype()
        torch.set_default_dtype(dtype)
        try:
            return cls.from_config(config).to(dtype)
        finally:
            torch.set_default_dtype(default)
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(str(folder))
    return cls._from_config(config, dtype=dtype)


def random_pipeline(cls: Any, folder: Path, device: Any, dtype: Any) -> Any:
    """``cls`` built on ``device`` with random weights from the component configs in ``folder``.

    Tokenizers come from the folder where it has them, else stand-ins of the configured length.
    """
    import torch

    index = json.loads((folder / contract.MODEL_INDEX_FILE).read_text(encoding="utf-8"))
    parts: dict[str, Any] = {}
    with torch.device(device):  # random init of billions of parameters on a CPU takes minutes
        for name, spec in index.items():
            if name.startswith("_") or not isinstance(spec, list) or spec[0] is None:
                continue
            library, class_name = spec
            sub = folder / name
            if "Tokenizer" in class_name:
                files = {p.name for p in sub.iterdir()} if sub.is_dir() else set()
                if files - {TOKENIZER_CONFIG}:
                    parts[name] = getattr(__import__(library), class_name).from_pretrained(sub)
                else:
                    config = json.loads((sub / TOKENIZER_CONFIG).read_text(encoding="utf-8"))
                    parts[name] = word_tokenizer(int(config["model_max_length"]))
                continue
            parts[name] = _random_component(sub, library, class_name, dtype)
    wanted = inspect.signature(cls.__init__).parameters
    return cls(**{k: v for k, v in parts.items() if k in wanted})


class DiffusersBackend:
    """A diffusers text-to-image pipeline: one call per batch of prompts, one image each."""

    applied_reasoning = None  # no reasoning in an image pipeline
    budget_mismatches = 0
    truncated_prompts = 0

    def __init__(self, backend: BackendConfig, scenario: ScenarioConfig) -> None:
        import torch

        assert scenario.image is not None, "an image_generation config"
        self._torch = torch
        self.cfg = backend
        self.scenario = scenario
        self.image: ImageSettings = scenario.image
        self.pipe: Any = None
        self.parameters = 0
        self.component_parameters: dict[str, int] = {}
        self.load_duration_s = 0.0
        self.pipeline_class = pipeline_class_name(backend)
        self.family = contract.image_family(backend.model)
        self.devices = placement.devices_for(backend)
        self.device_uuids = [placement.uuid_of(d) for d in self.devices if d.type == "cuda"]
        self._generator: Any = None
        self.guidance_scale: float | None = None  # the one each call uses (recorded)

    @property
    def generation_path(self) -> str:
        return contract.GENERATION_DIFFUSION

    @property
    def dtype(self) -> Any:
        """The dtype asked for; ``auto``: bfloat16 on a GPU, float32 on the CPU.

        Every family is published in bfloat16; on a CPU, bfloat16 convolutions (the VAE) run
        about ten times slower than float32 ones.
        """
        torch = self._torch
        name = self.cfg.torch_dtype
        if name == "auto":
            return torch.bfloat16 if self.devices[0].type == "cuda" else torch.float32
        return getattr(torch, name)

    def _class(self) -> Any:
        import diffusers

        cls = getattr(diffusers, self.pipeline_class, None)
        if cls is None:
            raise BenchConfigError(
                f"backend.pipeline={self.pipeline_class!r}: diffusers {diffusers.__version__} "
                "has no such pipeline class"
            )
        return cls

    def _extras(self) -> dict[str, Any]:
        """The components the repository lacks (HiDream's Llama), loaded as the family says."""
        loaded: dict[str, Any] = {}
        extras = dict(self.family.extras) if self.family is not None else {}
        extras.update(self.cfg.extras)
        if "text_encoder_4" in extras:
            from transformers import AutoTokenizer, LlamaForCausalLM

            name = extras["text_encoder_4"]
            loaded["tokenizer_4"] = AutoTokenizer.from_pretrained(name)
            loaded["text_encoder_4"] = LlamaForCausalLM.from_pretrained(
                name, output_hidden_states=True, output_attentions=True, dtype=self.dtype
            )
        return loaded

    def _shape_folder(self) -> Path:
        """Where the component configs of a ``no_weights`` pipeline are read."""
        local = Path(self.cfg.model)
        if (local / contract.MODEL_INDEX_FILE).is_file():
            return local
        bundled = SHAPES_DIR / self.pipeline_class
        if not (bundled / contract.MODEL_INDEX_FILE).is_file():
            known = ", ".join(sorted(p.name for p in SHAPES_DIR.iterdir() if p.is_dir()))
            raise BenchConfigError(
                f"backend.no_weights: no bundled component configs for {self.pipeline_class} "
                f"(bundled: {known}); give a local pipeline folder instead"
            )
        return bundled

    def load(self) -> None:
        torch = self._torch
        start = time.perf_counter()
        model = self.cfg.model
        if model.startswith(("/", "./", "../")) and not Path(model).is_dir():
            raise ModelNotFound(f"model folder {model} does not exist")
        cls = self._class()
        torch.manual_seed(self.scenario.seed)
        try:
            if self.cfg.no_weights:
                self.pipe = random_pipeline(cls, self._shape_folder(), self.devices[0], self.dtype)
            else:
                self.pipe = cls.from_pretrained(model, dtype=self.dtype, **self._extras())
            self.pipe.to(self.devices[0])
        except torch.cuda.OutOfMemoryError as exc:
            raise OutOfMemory(f"out of GPU memory loading {model}: {exc}") from exc
        except (BenchConfigError, OutOfMemory):
            raise
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise _hub_error(exc, model) from exc
        self.pipe.set_progress_bar_config(disable=True)
        for name, part in self.pipe.components.items():
            if isinstance(part, torch.nn.Module):
                self.component_parameters[name] = sum(p.numel() for p in part.parameters())
        self.parameters = sum(self.component_parameters.values())
        self.guidance_scale = self._guidance()
        self.synchronize()
        self.load_duration_s = time.perf_counter() - start
        log.info(
            "%s loaded: %s parameters, %d steps at %dx%d, guidance %s",
            self.pipeline_class,
            f"{self.parameters:,}",
            self.image.steps,
            self.image.width,
            self.image.height,
            self.guidance_scale,
        )

    def _guidance(self) -> float | None:
        """The guidance each call uses: the one given, else the pipeline's default.

        None where the transformer takes no guidance (Qwen-Image, FLUX.1-schnell: its config's
        ``guidance_embeds`` is false, and the pipeline ignores the value); one given there is
        warned about and not passed, so the result never records a setting that did nothing.
        """
        transformer = getattr(self.pipe, "transformer", None)
        embeds = getattr(getattr(transformer, "config", None), "guidance_embeds", None)
        given = self.image.guidance_scale
        if embeds is False:
            if given is not None:
                log.warning(
                    "scenario.guidance_scale=%s has no effect: %s's transformer takes no guidance",
                    given,
                    self.cfg.model,
                )
            return None
        default = inspect.signature(type(self.pipe).__call__).parameters.get("guidance_scale")
        return given if given is not None else getattr(default, "default", None)

    def synchronize(self) -> None:
        for device in self.devices:
            if device.type == "cuda":
                self._torch.cuda.synchronize(device)

    def seed(self, seed: int) -> None:
        self._torch.manual_seed(seed)
        self._generator = self._torch.Generator(device=self.devices[0]).manual_seed(seed)

    def prepare(self, prompts: Sequence[str]) -> list[Batch]:
        """The prompts in batches of ``scenario.batch_size`` (the pipeline tokenizes them)."""
        size = self.scenario.batch_size
        return [
            Batch(
                tuple(range(start, min(start + size, len(prompts)))),
                list(prompts[start : start + size]),
                (0,) * len(prompts[start : start + size]),
            )
            for start in range(0, len(prompts), size)
        ]

    def compile(self, batches: Sequence[Batch]) -> None:
        """Nothing is compiled: the pipeline runs eagerly."""

    def graphs_built(self) -> int:
        return 0

    @property
    def classifier_free_guidance(self) -> bool:
        """True where each step runs the transformer twice (HiDream with guidance above 1)."""
        return self.pipeline_class == "HiDreamImagePipeline" and (self.guidance_scale or 0) > 1

    def transformer_tokens(self, images: int) -> int:
        """Tokens the denoiser processes for ``images`` images: latent patches x steps x passes.

        What the work estimate counts where nothing measures energy (2 x parameters x tokens).
        """
        side = LATENT_PATCH * self.pipe.vae_scale_factor  # image pixels per token, each way
        patches = (self.image.height // side) * (self.image.width // side)
        return patches * self.image.steps * (2 if self.classifier_free_guidance else 1) * images

    def generate(self, batch: Batch, max_new_tokens: int | None = None) -> Generation:
        """One image per prompt of the batch; ``max_new_tokens`` has no meaning here."""
        torch = self._torch
        prompts = list(batch.inputs)
        kwargs: dict[str, Any] = {
            "prompt": prompts,
            "num_inference_steps": self.image.steps,
            "height": self.image.height,
            "width": self.image.width,
            "num_images_per_prompt": 1,
            "generator": self._generator,
            "output_type": "pil",
        }
        if self.image.guidance_scale is not None and self.guidance_scale is not None:
            kwargs["guidance_scale"] = self.guidance_scale
        self.synchronize()
        start = time.perf_counter()
        try:
            with torch.inference_mode():
                output = self.pipe(**kwargs)
            self.synchronize()
        except torch.cuda.OutOfMemoryError as exc:
            raise OutOfMemory(str(exc).splitlines()[0]) from exc
        latency = time.perf_counter() - start
        images = tuple(output.images)
        if len(images) != len(prompts):
            raise RuntimeError(f"the pipeline made {len(images)} images for {len(prompts)} prompts")
        n = len(prompts)
        return Generation(
            prompt_tokens=(0,) * n,
            completion_tokens=(0,) * n,
            latency_s=latency,
            ttft_s=None,
            images=images,
            work_tokens=self.transformer_tokens(n),
        )

    def close(self) -> None:
        """The pipeline goes with the process."""

    def protocol(self) -> dict[str, Any]:
        """How each image was made: every value the run used."""
        return {
            "pipeline": self.pipeline_class,
            "family": self.family.marker if self.family is not None else None,
            "num_inference_steps": self.image.steps,
            "height": self.image.height,
            "width": self.image.width,
            "resolution": f"{self.image.width}x{self.image.height}",
            "guidance_scale": self.guidance_scale,
            "guidance_scale_given": self.image.guidance_scale is not None,
            "classifier_free_guidance": self.classifier_free_guidance,
            "images_per_prompt": 1,
            "batch_size": self.scenario.batch_size,
            "extras": {**dict(self.family.extras if self.family else ()), **self.cfg.extras},
        }

    def provenance(self) -> dict[str, Any]:
        import diffusers

        return {
            "backend": "diffusers",
            "diffusers_version": diffusers.__version__,
            **placement.software_and_devices(self.devices),
            "dtype": str(self.dtype),
            "parameters": self.parameters,
            "component_parameters": dict(self.component_parameters),
            "load_duration_s": self.load_duration_s,
            "no_weights": self.cfg.no_weights,
            "torch_threads": self._torch.get_num_threads(),
        }
