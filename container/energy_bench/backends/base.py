"""The seam between the benchmark and an inference backend: load, prepare, generate.

A backend loads the model on the devices it was given, turns prompts into batches, generates
with exact token budgets and reports what it did. It never touches an energy counter: the meter
measures around it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from energy_bench.workload.rendering import AppliedReasoning


@dataclass(frozen=True)
class Batch:
    """Prompts tokenized together; ``indices`` are positions in the prompt set."""

    indices: tuple[int, ...]
    inputs: Any
    prompt_tokens: tuple[int, ...]


@dataclass(frozen=True)
class Generation:
    """What one batch produced and how long it took.

    ``tokens`` holds each prompt's generated token ids, up to its first end-of-sequence token
    (``completion_tokens`` counts them); a backend that does not keep them leaves it empty.
    A backend whose prompts run as requests of their own (a server) gives each prompt's latency
    and time to first token in ``latencies_s`` and ``ttfts_s``, and its error ("" when it
    succeeded) in ``errors``; empty, the batch's figures hold for every prompt.
    An image pipeline gives each prompt's image in ``images``, and the tokens its denoiser
    processed in ``work_tokens`` (what a work estimate counts; None: prompt and completion
    tokens).
    """

    prompt_tokens: tuple[int, ...]
    completion_tokens: tuple[int, ...]
    latency_s: float
    ttft_s: float | None
    tokens: tuple[tuple[int, ...], ...] = ()
    latencies_s: tuple[float, ...] = ()
    ttfts_s: tuple[float | None, ...] = ()
    errors: tuple[str, ...] = ()
    images: tuple[Any, ...] = ()
    work_tokens: int | None = None

    def per_prompt(self) -> list[tuple[int, int, float, float | None, str]]:
        """(prompt tokens, completion tokens, latency, TTFT, error) of each prompt."""
        n = len(self.prompt_tokens)
        latencies = self.latencies_s or (self.latency_s,) * n
        ttfts = self.ttfts_s or (self.ttft_s,) * n
        errors = self.errors or ("",) * n
        return list(
            zip(self.prompt_tokens, self.completion_tokens, latencies, ttfts, errors, strict=True)
        )


class InferenceBackend(Protocol):
    """Load a model, prepare batches, compile, generate; report the devices and path used.

    ``generation_path`` is the path the run measures (``contract.GENERATION_PATHS``);
    ``graphs_built`` counts the graphs compiled so far, so that the benchmark can show that none
    was compiled inside a measured window.
    """

    device_uuids: list[str]
    applied_reasoning: AppliedReasoning | None
    parameters: int  # the model's, once loaded (0 before)
    truncated_prompts: int  # prompts that ``prepare`` cut to fit the model's context
    budget_mismatches: int  # answers whose token count broke the budget (a server's)

    @property
    def generation_path(self) -> str: ...

    def load(self) -> None: ...

    def synchronize(self) -> None: ...

    def seed(self, seed: int) -> None: ...

    def prepare(self, prompts: Sequence[str]) -> list[Batch]: ...

    def compile(self, batches: Sequence[Batch]) -> None: ...

    def graphs_built(self) -> int: ...

    def generate(self, batch: Batch, max_new_tokens: int | None = None) -> Generation: ...

    def provenance(self) -> dict[str, Any]: ...

    def close(self) -> None: ...
