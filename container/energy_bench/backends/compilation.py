"""The compiled generation path: a static KV cache sized once per run, a compiled decode step.

transformers compiles the decode step by itself when ``generate`` is given a static cache on a
GPU (``torch.compile`` in its ``reduce-overhead`` mode: the step replays as a CUDA graph). This
module decides which path a run takes, holds what the run records about it, and counts the
graphs the compiler has built, so that a run can show that none was built inside a measured
window and that the compiled path really compiled.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from energy_bench.contract import GENERATION_COMPILED, GENERATION_EAGER


def resolve(requested: str, device_type: str) -> str:
    """The path ``backend.generation`` asks for on this device: ``auto`` compiles on GPUs only.

    On a CPU the compiler builds C++ code (no CUDA graphs) and takes longer than a small run.
    """
    if requested == "auto":
        return GENERATION_COMPILED if device_type == "cuda" else GENERATION_EAGER
    return requested


def compile_count() -> int:
    """Graphs the compiler has built in this process so far."""
    from torch._dynamo.utils import counters

    return int(counters["stats"]["unique_graphs"])


def cuda_graph_skips() -> int:
    """Compiled graphs that run without a CUDA graph (the compiler says why in its log)."""
    from torch._dynamo.utils import counters

    return int(counters["inductor"]["cudagraph_skips"])


def reset_compiler() -> None:
    """Forget every compiled graph (after a failed compile, before falling back to eager)."""
    import torch

    torch._dynamo.reset()


@dataclass
class GenerationRecord:
    """The path a run asked for, the one it measured, and what compiling it cost."""

    requested: str
    path: str
    fallback_reason: str = ""
    static_cache_tokens: int | None = None
    compile_seconds: float | None = None
    graphs_compiled: int = 0
    cuda_graph_skips: int = 0

    def fall_back(self, reason: str) -> None:
        self.path = GENERATION_EAGER
        self.fallback_reason = reason
        self.static_cache_tokens = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
