"""The PyTorch backend: transformers' ``generate`` on the devices the run was given.

It loads the model on the devices it was given (one GPU unless told otherwise, never
spread over every visible GPU), renders prompts with the reasoning directive, and generates with
exact token budgets. It never touches NVML: the meter measures around it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from energy_bench.backends import placement
from energy_bench.backends.base import Batch, Generation
from energy_bench.config import BackendConfig, ScenarioConfig
from energy_bench.errors import (
    BenchConfigError,
    GatedModel,
    ModelLoadError,
    ModelNotFound,
    OutOfMemory,
)
from energy_bench.workload import rendering

log = logging.getLogger(__name__)


def _hub_error(exc: BaseException, model: str) -> ModelLoadError:
    text = f"{type(exc).__name__}: {exc}"
    name = type(exc).__name__
    if name == "GatedRepoError" or " 401" in text or " 403" in text:
        return GatedModel(
            f"gated model {model} (HTTP 401/403): accept its licence and set HF_TOKEN"
        )
    if name in ("RepositoryNotFoundError", "EntryNotFoundError") or " 404" in text:
        return ModelNotFound(f"model {model} not found (HTTP 404)")
    return ModelLoadError(f"cannot load {model}: {text.splitlines()[0]}")


def _placement(device_map: Any) -> dict[str, int] | None:
    """How many modules of a model spread over devices sit on each device (None: one device)."""
    if not isinstance(device_map, dict):
        return None
    counts: dict[str, int] = {}
    for device in device_map.values():
        key = f"cuda:{device}" if isinstance(device, int) else str(device)
        counts[key] = counts.get(key, 0) + 1
    return counts


class PyTorchBackend:
    """transformers + PyTorch, eager ``generate`` with a dynamic cache."""

    def __init__(self, backend: BackendConfig, scenario: ScenarioConfig) -> None:
        import torch

        self._torch = torch
        self.cfg = backend
        self.scenario = scenario
        self.model: Any = None
        self.tokenizer: Any = None
        self.applied_reasoning: rendering.AppliedReasoning | None = None
        self.load_duration_s = 0.0
        self.devices = self._devices()
        self.device_uuids = [self._uuid(d) for d in self.devices if d.type == "cuda"]

    def _devices(self) -> list[Any]:
        torch = self._torch
        want = self.cfg.device
        has_cuda = torch.cuda.is_available()
        if want == "cuda" and not has_cuda:
            raise BenchConfigError("backend.device=cuda but no CUDA device is visible")
        if want == "cpu" or not has_cuda:
            return [torch.device("cpu")]
        count = torch.cuda.device_count()
        if self.cfg.num_gpus > count:
            raise BenchConfigError(
                f"backend.num_gpus={self.cfg.num_gpus} but {count} GPU(s) are visible"
            )
        return [torch.device("cuda", i) for i in range(self.cfg.num_gpus)]

    def _uuid(self, device: Any) -> str:
        return "GPU-" + str(self._torch.cuda.get_device_properties(device).uuid)

    @property
    def dtype(self) -> Any:
        torch = self._torch
        if self.cfg.torch_dtype == "auto":
            return "auto"
        return getattr(torch, self.cfg.torch_dtype)

    def load(self) -> None:
        from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

        torch = self._torch
        start = time.perf_counter()
        model_id = self.cfg.model
        remote = self.cfg.trust_remote_code
        if model_id.startswith(("/", "./", "../")) and not Path(model_id).is_dir():
            raise ModelNotFound(f"model folder {model_id} does not exist")
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(
                self.cfg.processor or model_id, trust_remote_code=remote
            )
            if self.cfg.no_weights:
                config = AutoConfig.from_pretrained(model_id, trust_remote_code=remote)
                torch.manual_seed(self.scenario.seed)
                if len(self.devices) > 1:
                    self.model = placement.random_model_across(
                        config, self.devices, self.dtype, remote
                    )
                else:
                    # Built on the device: random init of a large model on the CPU takes minutes.
                    with self.devices[0]:
                        self.model = AutoModelForCausalLM.from_config(
                            config, dtype=self.dtype, trust_remote_code=remote
                        )
            else:
                one = len(self.devices) == 1
                self.model = AutoModelForCausalLM.from_pretrained(
                    model_id,
                    dtype=self.dtype,
                    device_map=self.devices[0] if one else "auto",
                    max_memory=None if one else placement.max_memory(self.devices),
                    trust_remote_code=remote,
                )
        except torch.cuda.OutOfMemoryError as exc:
            raise OutOfMemory(f"out of GPU memory loading {model_id}: {exc}") from exc
        except (BenchConfigError, OutOfMemory):
            raise
        except (OSError, ValueError, KeyError) as exc:
            raise _hub_error(exc, model_id) from exc
        self.model.eval()
        tok = self.tokenizer
        tok.padding_side = "left"
        if tok.pad_token_id is None:
            tok.pad_token = tok.eos_token
        self.applied_reasoning = rendering.plan(tok, self.scenario.reasoning)
        if self.applied_reasoning.note:
            log.warning("reasoning directive: %s", self.applied_reasoning.note)
        self.synchronize()
        self.load_duration_s = time.perf_counter() - start

    def synchronize(self) -> None:
        for device in self.devices:
            if device.type == "cuda":
                self._torch.cuda.synchronize(device)

    def seed(self, seed: int) -> None:
        self._torch.manual_seed(seed)  # seeds every CUDA device too

    def render(self, prompt: str) -> str:
        """The text the model is given for ``prompt``, reasoning directive applied."""
        assert self.applied_reasoning is not None, "load() first"
        return rendering.render(self.tokenizer, prompt, self.applied_reasoning)

    def prepare(self, prompts: Sequence[str]) -> list[Batch]:
        """Render and tokenize every prompt, in batches of ``scenario.batch_size``."""
        assert self.applied_reasoning is not None, "load() first"
        texts = [self.render(p) for p in prompts]
        special = not self.applied_reasoning.uses_chat_template  # templates add BOS themselves
        size = self.scenario.batch_size
        batches = []
        for start in range(0, len(texts), size):
            chunk = texts[start : start + size]
            inputs = self.tokenizer(
                chunk, return_tensors="pt", padding=True, add_special_tokens=special
            ).to(self.devices[0])
            counts = tuple(int(n) for n in inputs["attention_mask"].sum(dim=1).tolist())
            batches.append(Batch(tuple(range(start, start + len(chunk))), inputs, counts))
        self._check_context(max((max(b.prompt_tokens) for b in batches), default=0))
        return batches

    def _check_context(self, longest_prompt: int) -> None:
        """Refuse a budget that the model's context cannot hold (it would fail or run forever)."""
        config = self.model.config
        text = config.get_text_config() if hasattr(config, "get_text_config") else config
        context = getattr(text, "max_position_embeddings", None)
        need = longest_prompt + self.scenario.max_new_tokens
        if isinstance(context, int) and need > context:
            raise BenchConfigError(
                f"scenario.generate_kwargs.max_new_tokens={self.scenario.max_new_tokens} plus the "
                f"longest prompt ({longest_prompt} tokens) is more than the model's context "
                f"({context} tokens)"
            )

    def generate(self, batch: Batch) -> Generation:
        from transformers import LogitsProcessor, LogitsProcessorList

        torch = self._torch
        sync = self.synchronize
        clock = time.perf_counter
        first: list[float] = []

        class FirstToken(LogitsProcessor):
            # Called once per step after the forward pass; the first call ends the prefill.
            def __call__(self, input_ids: Any, scores: Any) -> Any:
                if not first:
                    sync()
                    first.append(clock())
                return scores

        s = self.scenario
        kwargs = {
            "max_new_tokens": s.max_new_tokens,
            "min_new_tokens": s.min_new_tokens,
            "pad_token_id": self.tokenizer.pad_token_id,
            **dict(s.generate_kwargs),
        }
        kwargs.setdefault("do_sample", False)
        sync()
        start = clock()
        try:
            with torch.inference_mode():
                output = self.model.generate(
                    **batch.inputs, logits_processor=LogitsProcessorList([FirstToken()]), **kwargs
                )
            sync()
        except torch.cuda.OutOfMemoryError as exc:
            raise OutOfMemory(str(exc).splitlines()[0]) from exc
        end = clock()
        width = batch.inputs["input_ids"].shape[1]
        new = output[:, width:].tolist()
        return Generation(
            prompt_tokens=batch.prompt_tokens,
            completion_tokens=tuple(self._count(row) for row in new),
            latency_s=end - start,
            ttft_s=first[0] - start if first else None,
        )

    def _count(self, tokens: list[int]) -> int:
        """Generated tokens up to and including the first end-of-sequence token."""
        eos = self.model.generation_config.eos_token_id
        eos_ids = set(eos if isinstance(eos, list) else [] if eos is None else [eos])
        pad = self.tokenizer.pad_token_id
        for i, token in enumerate(tokens):
            if token in eos_ids:
                return i + 1
        return sum(1 for t in tokens if t != pad or pad in eos_ids)

    def provenance(self) -> dict[str, Any]:
        import transformers

        torch = self._torch
        params = sum(p.numel() for p in self.model.parameters()) if self.model is not None else 0
        return {
            "backend": "pytorch",
            "generation_path": "transformers generate, eager, dynamic cache",
            "torch_version": torch.__version__,
            "torch_cuda_version": torch.version.cuda,
            "transformers_version": transformers.__version__,
            "devices": [str(d) for d in self.devices],
            "device_names": [
                torch.cuda.get_device_name(d) if d.type == "cuda" else "cpu" for d in self.devices
            ],
            "dtype": str(getattr(self.model, "dtype", self.cfg.torch_dtype)),
            "parameters": params,
            "attn_implementation": getattr(
                getattr(self.model, "config", None), "_attn_implementation", None
            ),
            "load_duration_s": self.load_duration_s,
            "placement": _placement(getattr(self.model, "hf_device_map", None)),
            "torch_threads": torch.get_num_threads(),
        }
