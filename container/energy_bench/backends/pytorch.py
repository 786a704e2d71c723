"""The PyTorch backend: transformers' ``generate`` on the devices the run was given.

It loads the model on the devices it was given (one GPU unless told otherwise, never
spread over every visible GPU), renders prompts with the reasoning directive (cutting one too
long for the context, with ``scenario.truncation``), and generates with exact token budgets, on
the eager path (a dynamic cache) or the compiled one (a static cache sized once for the run's
longest prompt and budget, and a compiled decode step; see ``compilation``).
It never touches NVML: the meter measures around it.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from energy_bench.backends import compilation, placement
from energy_bench.backends.base import Batch, Generation
from energy_bench.config import BackendConfig, ScenarioConfig
from energy_bench.contract import GENERATION_COMPILED
from energy_bench.errors import (
    BenchConfigError,
    GatedModel,
    ModelLoadError,
    ModelNotFound,
    OutOfMemory,
)
from energy_bench.workload import rendering

log = logging.getLogger(__name__)


def _causes(exc: BaseException) -> list[BaseException]:
    """``exc`` and the errors it was raised from (transformers wraps the Hub's in an OSError)."""
    chain: list[BaseException] = []
    while exc is not None and exc not in chain:
        chain.append(exc)
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return chain


def _hub_error(exc: BaseException, model: str) -> ModelLoadError:
    chain = _causes(exc)
    # The Hub's error classes by name (GatedRepoError is a RepositoryNotFoundError: first).
    kinds = {cls.__name__ for e in chain for cls in type(e).__mro__}
    text = " ".join(f"{type(e).__name__}: {e}" for e in chain)
    if "GatedRepoError" in kinds or " 401" in text or " 403" in text:
        return GatedModel(
            f"gated model {model} (HTTP 401/403): accept its licence and set HF_TOKEN"
        )
    if kinds & {"RepositoryNotFoundError", "EntryNotFoundError"} or " 404" in text:
        return ModelNotFound(f"model {model} not found (HTTP 404)")
    return ModelLoadError(f"cannot load {model}: {f'{type(exc).__name__}: {exc}'.splitlines()[0]}")


def _longest(batches: Sequence[Batch]) -> int:
    """The most tokens a prompt of these batches has (0 without any)."""
    return max((max(b.prompt_tokens) for b in batches), default=0)


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
    """transformers + PyTorch: ``generate`` on the eager or the compiled path."""

    budget_mismatches = 0  # generate holds every budget itself

    def __init__(self, backend: BackendConfig, scenario: ScenarioConfig) -> None:
        import torch

        self._torch = torch
        self.cfg = backend
        self.scenario = scenario
        self.model: Any = None
        self.tokenizer: Any = None
        self.applied_reasoning: rendering.AppliedReasoning | None = None
        self.load_duration_s = 0.0
        self.parameters = 0
        self.truncated_prompts = 0  # prompts cut to fit the context (scenario.truncation)
        self.devices = self._devices()
        self.device_uuids = [self._uuid(d) for d in self.devices if d.type == "cuda"]
        self.generation = compilation.GenerationRecord(
            requested=backend.generation,
            path=compilation.resolve(backend.generation, self.devices[0].type),
        )
        self._compile_config: Any = None
        self._caches: dict[int, Any] = {}  # static caches by batch size, reused by every call

    def _devices(self) -> list[Any]:
        return placement.devices_for(self.cfg)

    def _uuid(self, device: Any) -> str:
        return placement.uuid_of(device)

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
        self.parameters = sum(p.numel() for p in self.model.parameters())
        tok = self.tokenizer
        tok.padding_side = "left"
        if tok.pad_token_id is None:
            tok.pad_token = tok.eos_token
        self.applied_reasoning = rendering.plan(tok, self.scenario.reasoning)
        if self.generation_path == GENERATION_COMPILED and self.devices[0].type != "cuda":
            from transformers import CompileConfig

            # transformers compiles by itself on GPUs only; on a CPU it must be asked (no graphs).
            self._compile_config = CompileConfig(mode="default")
            self._compile_config._compile_all_devices = True
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
        """Render and tokenize every prompt, in batches of ``scenario.batch_size``.

        With ``scenario.truncation``, prompts too long for the context beside the budget are cut
        and the batches made again (only then: the prompts are tokenized once otherwise).
        """
        assert self.applied_reasoning is not None, "load() first"
        special = not self.applied_reasoning.uses_chat_template  # templates add BOS themselves
        batches = self._batches([self.render(p) for p in prompts], special)
        self.truncated_prompts = 0
        context = self._context()
        budget = self.scenario.max_new_tokens
        too_long = context is not None and _longest(batches) + budget > context
        if self.scenario.truncation and too_long:
            batches = self._batches(self._cut(prompts, special, context), special)
        longest = _longest(batches)
        self._check_context(longest)
        if self.generation_path == GENERATION_COMPILED:
            # One cache size for every batch: a new size would compile the decode step again.
            width = max((b.inputs["input_ids"].shape[1] for b in batches), default=longest)
            self.generation.static_cache_tokens = width + budget
        return batches

    def _batches(self, texts: Sequence[str], special: bool) -> list[Batch]:
        """The rendered prompts tokenized in batches of ``scenario.batch_size``, on the device."""
        size = self.scenario.batch_size
        batches = []
        for start in range(0, len(texts), size):
            chunk = texts[start : start + size]
            inputs = self.tokenizer(
                chunk, return_tensors="pt", padding=True, add_special_tokens=special
            ).to(self.devices[0])
            counts = tuple(int(n) for n in inputs["attention_mask"].sum(dim=1).tolist())
            batches.append(Batch(tuple(range(start, start + len(chunk))), inputs, counts))
        return batches

    @property
    def generation_path(self) -> str:
        """The path this run generates on (``compile`` may fall back to eager)."""
        return self.generation.path

    def graphs_built(self) -> int:
        """Graphs compiled, or left without CUDA graphs, so far (none may come while measuring)."""
        return compilation.compile_count() + compilation.cuda_graph_skips()

    def compile(self, batches: Sequence[Batch]) -> None:
        """Compile the decode step for every batch shape of the run, or fall back to eager.

        Runs one batch of each size (the one with the longest prompt) before the warmup, so that
        compiling and capturing graphs happen outside every measured window. A model the compiler
        fails on, or one transformers does not compile, is run on the eager path instead, and
        the record says why.
        """
        record = self.generation
        if record.path != GENERATION_COMPILED:
            return
        if self.scenario.max_new_tokens < 2:
            record.fall_back("a budget of one token has no decode step to compile")
            return
        chosen: dict[int, Batch] = {}
        for batch in batches:
            size = len(batch.indices)
            if size not in chosen or max(batch.prompt_tokens) > max(chosen[size].prompt_tokens):
                chosen[size] = batch
        before = compilation.compile_count()
        start = time.perf_counter()
        try:
            for batch in chosen.values():
                self.generate(batch)
        except OutOfMemory:
            raise
        except Exception as exc:
            compilation.reset_compiler()
            first = str(exc).splitlines()[0] if str(exc) else ""
            record.fall_back(f"compiling failed: {type(exc).__name__}: {first}")
            log.warning("generation path: eager (%s)", record.fallback_reason)
            return
        record.compile_seconds = time.perf_counter() - start
        record.graphs_compiled = compilation.compile_count() - before
        record.cuda_graph_skips = compilation.cuda_graph_skips()
        if record.graphs_compiled == 0:
            compilation.reset_compiler()
            record.fall_back("transformers did not compile the decode step of this model")
            log.warning("generation path: eager (%s)", record.fallback_reason)
            return
        log.info(
            "generation path: compiled (%d graphs in %.1f s, static cache of %d tokens)",
            record.graphs_compiled,
            record.compile_seconds,
            record.static_cache_tokens,
        )

    def _context(self) -> int | None:
        """The model's context in tokens (None when its config does not say)."""
        config = self.model.config
        text = config.get_text_config() if hasattr(config, "get_text_config") else config
        context = getattr(text, "max_position_embeddings", None)
        return context if isinstance(context, int) else None

    def _cut(self, prompts: Sequence[str], special: bool, context: int) -> list[str]:
        """Every prompt rendered, those too long beside the budget cut to fit the context."""
        assert self.applied_reasoning is not None, "load() first"
        room = context - self.scenario.max_new_tokens
        if room <= 0:
            raise BenchConfigError(
                f"scenario.generate_kwargs.max_new_tokens={self.scenario.max_new_tokens} is not "
                f"less than the model's context ({context} tokens): no room for a prompt"
            )
        texts, self.truncated_prompts = rendering.fit(
            self.tokenizer, prompts, self.applied_reasoning, room=room, special=special
        )
        log.warning(
            "scenario.truncation: %d of %d prompts cut to %d tokens (the model's context "
            "less max_new_tokens)",
            self.truncated_prompts,
            len(texts),
            room,
        )
        return texts

    def _check_context(self, longest_prompt: int) -> None:
        """Refuse a budget that the model's context cannot hold (it would fail or run forever)."""
        context = self._context()
        need = longest_prompt + self.scenario.max_new_tokens
        if context is not None and need > context:
            raise BenchConfigError(
                f"scenario.generate_kwargs.max_new_tokens={self.scenario.max_new_tokens} plus the "
                f"longest prompt ({longest_prompt} tokens) is more than the model's context "
                f"({context} tokens); scenario.truncation=true cuts such prompts"
            )

    def generate(self, batch: Batch, max_new_tokens: int | None = None) -> Generation:
        """Generate for one batch; ``max_new_tokens`` replaces the budget (1: a prefill pass)."""
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
        budget = s.max_new_tokens if max_new_tokens is None else max_new_tokens
        kwargs: dict[str, Any] = {
            "max_new_tokens": budget,
            "min_new_tokens": min(s.min_new_tokens, budget),
            "pad_token_id": self.tokenizer.pad_token_id,
        }
        if self._compile_config is not None:
            kwargs["compile_config"] = self._compile_config
        kwargs.update(s.generate_kwargs)
        kwargs.setdefault("do_sample", False)
        sync()
        start = clock()
        try:
            with torch.inference_mode():
                if self.generation_path == GENERATION_COMPILED:
                    kwargs[self._cache_argument()] = self._static_cache(len(batch.indices))
                output = self.model.generate(
                    **batch.inputs, logits_processor=LogitsProcessorList([FirstToken()]), **kwargs
                )
            sync()
        except torch.cuda.OutOfMemoryError as exc:
            raise OutOfMemory(str(exc).splitlines()[0]) from exc
        end = clock()
        width = batch.inputs["input_ids"].shape[1]
        new = output[:, width:].tolist()
        counts = tuple(self._count(row) for row in new)
        return Generation(
            prompt_tokens=batch.prompt_tokens,
            completion_tokens=counts,
            latency_s=end - start,
            ttft_s=first[0] - start if first else None,
            tokens=tuple(tuple(row[:n]) for row, n in zip(new, counts, strict=True)),
        )

    def _cache_argument(self) -> str:
        """The name ``generate`` takes a cache by: ``cache`` in newer transformers."""
        forward = inspect.signature(type(self.model).forward).parameters
        return "cache" if "cache" in forward else "past_key_values"

    def _static_cache(self, batch_size: int) -> Any:
        """The run's static cache for batches of this size, emptied for the next call.

        One cache per batch size for the whole run: the CUDA graphs read the cache at fixed
        addresses, and a new cache per call (what ``cache_implementation="static"`` makes) has the
        graphs recorded again at every call, until PyTorch stops using graphs for the step
        (after 128 recordings), in the middle of a run.
        """
        cache = self._caches.get(batch_size)
        if cache is None:
            from transformers import StaticCache

            cache = StaticCache(
                config=self.model.config, max_cache_len=self.generation.static_cache_tokens
            )
            self._caches[batch_size] = cache
        else:
            cache.reset()
        return cache

    def _count(self, tokens: list[int]) -> int:
        """Generated tokens up to and including the first end-of-sequence token."""
        eos = self.model.generation_config.eos_token_id
        eos_ids = set(eos if isinstance(eos, list) else [] if eos is None else [eos])
        pad = self.tokenizer.pad_token_id
        for i, token in enumerate(tokens):
            if token in eos_ids:
                return i + 1
        return sum(1 for t in tokens if t != pad or pad in eos_ids)

    def close(self) -> None:
        """The model goes with the process."""

    def provenance(self) -> dict[str, Any]:
        torch = self._torch
        return {
            "backend": "pytorch",
            "generation": self.generation.to_dict(),
            **placement.software_and_devices(self.devices),
            "dtype": str(getattr(self.model, "dtype", self.cfg.torch_dtype)),
            "parameters": self.parameters,
            "attn_implementation": getattr(
                getattr(self.model, "config", None), "_attn_implementation", None
            ),
            "load_duration_s": self.load_duration_s,
            "placement": _placement(getattr(self.model, "hf_device_map", None)),
            "torch_threads": torch.get_num_threads(),
        }
