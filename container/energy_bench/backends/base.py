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
    """What one batch produced and how long it took."""

    prompt_tokens: tuple[int, ...]
    completion_tokens: tuple[int, ...]
    latency_s: float
    ttft_s: float | None


class InferenceBackend(Protocol):
    """Load a model, prepare batches, generate; report the devices used."""

    device_uuids: list[str]
    applied_reasoning: AppliedReasoning | None

    def load(self) -> None: ...

    def synchronize(self) -> None: ...

    def seed(self, seed: int) -> None: ...

    def prepare(self, prompts: Sequence[str]) -> list[Batch]: ...

    def generate(self, batch: Batch) -> Generation: ...

    def provenance(self) -> dict[str, Any]: ...
