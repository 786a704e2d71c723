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
    """

    prompt_tokens: tuple[int, ...]
    completion_tokens: tuple[int, ...]
    latency_s: float
    ttft_s: float | None
    tokens: tuple[tuple[int, ...], ...] = ()


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
