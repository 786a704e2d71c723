"""One benchmark run: prompts, load, preprocess, idle baseline, compile, warmup, measured repeats.

Each repeat is a full pass over every prompt, then (text generation) a prefill pass over the same
prompts (one new token each), measured as its own window: decode energy is the difference. An
image run's repeat is its pass alone; it keeps the first ``scenario.save_images`` images.
``run_benchmark`` returns a ``RunData`` with every measurement; ``report.build_report`` turns it
into the published figures. Failures inside a pass are counted; three failed batches in a row
abort the run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from energy_bench.backends.base import Batch, Generation, InferenceBackend
from energy_bench.backends.pytorch import PyTorchBackend
from energy_bench.config import BackendConfig, BenchConfig, ScenarioConfig
from energy_bench.contract import GENERATION_COMPILED
from energy_bench.energy.meter import EnergyMeter, Measurement, TraceRow
from energy_bench.energy.sources import EnergySource, open_source
from energy_bench.errors import BenchmarkAborted, OutOfMemory
from energy_bench.workload.prompts import PromptSet, load_prompts

log = logging.getLogger(__name__)

MAX_CONSECUTIVE_FAILURES = 3


@dataclass(frozen=True)
class PromptRecord:
    """One prompt in one measured pass."""

    repeat: int
    prompt_index: int
    batch_index: int
    prompt_tokens: int
    completion_tokens: int
    latency_s: float
    ttft_s: float | None
    ok: bool
    error: str = ""
    images: int = 0  # images made for the prompt (text generation: none)


@dataclass(frozen=True)
class PassResult:
    """One measured pass over every prompt, and the prefill pass measured after it.

    ``graphs_built`` counts the graphs compiled during both windows (zero when the warmup did
    its job).
    """

    measurement: Measurement
    records: tuple[PromptRecord, ...]
    prefill: Measurement | None = None
    prefill_records: tuple[PromptRecord, ...] = ()
    graphs_built: int = 0


@dataclass
class RunData:
    """Everything one run measured, before it is summarised."""

    config: BenchConfig
    prompts: PromptSet
    started_at: str
    backend: InferenceBackend
    source: EnergySource
    preprocess: Measurement | None = None
    idle: Measurement | None = None
    compile: Measurement | None = None
    warmups: list[Measurement] = field(default_factory=list)
    passes: list[PassResult] = field(default_factory=list)
    trace: list[TraceRow] = field(default_factory=list)
    sampler_cpu_s: float = 0.0
    sampler_wall_s: float = 0.0
    wall_s: float = 0.0
    images: list[tuple[int, object]] = field(default_factory=list)  # kept: (prompt, image)
    provenance: dict[str, object] = field(default_factory=dict)


def _generate(
    backend: InferenceBackend, source: EnergySource, batch: Batch, max_new_tokens: int | None = None
) -> Generation:
    """One batch generated, and the tokens it processed told to the source (an estimate counts)."""
    gen = backend.generate(batch, max_new_tokens)
    work = gen.work_tokens
    source.add_work(sum(gen.prompt_tokens) + sum(gen.completion_tokens) if work is None else work)
    return gen


def _run_pass(
    backend: InferenceBackend,
    source: EnergySource,
    batches: Sequence[Batch],
    repeat: int,
    max_new_tokens: int | None = None,
    keep: list[object] | None = None,
    keep_up_to: int = 0,
) -> list[PromptRecord]:
    """Every batch generated once; failures counted, three in a row abort.

    ``keep`` collects ``(prompt index, image)`` for the prompts numbered under ``keep_up_to``.
    """
    records: list[PromptRecord] = []
    failures_in_a_row = 0
    last_error: Exception | None = None
    for number, batch in enumerate(batches):
        start = time.perf_counter()
        try:
            gen = _generate(backend, source, batch, max_new_tokens)
        except Exception as exc:
            last_error = exc
            message = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            elapsed = time.perf_counter() - start
            records += [
                PromptRecord(repeat, i, number, t, 0, elapsed, None, False, message)
                for i, t in zip(batch.indices, batch.prompt_tokens, strict=True)
            ]
        else:
            prompts = gen.per_prompt()
            made = [1] * len(gen.images) or [0] * len(prompts)
            records += [
                PromptRecord(repeat, i, number, p, c, latency, ttft, not error, error, n)
                for i, (p, c, latency, ttft, error), n in zip(
                    batch.indices, prompts, made, strict=True
                )
            ]
            if keep is not None and gen.images:  # by prompt: a failed call leaves its numbers out
                pairs = zip(batch.indices, gen.images, strict=True)
                keep += [(i, image) for i, image in pairs if i < keep_up_to]
            if not prompts or not all(error for *_, error in prompts):
                failures_in_a_row = 0
                continue
            message = prompts[-1][-1]  # every request of it failed (a server's)
            last_error = BenchmarkAborted(message)
        failures_in_a_row += 1
        log.warning("batch %d of pass %d failed: %s", number, repeat, message)
        if failures_in_a_row >= MAX_CONSECUTIVE_FAILURES:
            if isinstance(last_error, OutOfMemory):
                raise last_error
            raise BenchmarkAborted(
                f"{MAX_CONSECUTIVE_FAILURES} batches in a row failed; last: {message}"
            ) from last_error
    if last_error is not None and failures_in_a_row == len(batches):  # fewer than the abort needs
        if isinstance(last_error, OutOfMemory):
            raise last_error
        raise BenchmarkAborted(
            f"every batch of pass {repeat} failed; last: {records[-1].error}"
        ) from last_error
    return records


def _warm_up(
    backend: InferenceBackend,
    source: EnergySource,
    meter: EnergyMeter,
    batches: Sequence[Batch],
    config: BenchConfig,
) -> list[Measurement]:
    """Unmeasured work before the measured passes; its windows are kept for the record.

    A full pass is the default: on an H200 the first pass over the prompt set cost 1.7x the
    energy of the next even after two warmup batches, because kernel plans (cuDNN attention) are
    built once per new prompt length and decode length (docs/BENCHMARKS.md).
    """
    s = config.scenario
    windows: list[Measurement] = []
    backend.seed(s.seed)
    if s.warmup_pass:
        with meter.window("warmup_pass") as warm:
            _run_pass(backend, source, batches, repeat=-1)
        windows.append(warm.measurement)  # type: ignore[arg-type]
        return windows
    for i in range(s.warmup_runs):
        with meter.window(f"warmup_{i}") as warm:
            _generate(backend, source, batches[i % len(batches)])
        windows.append(warm.measurement)  # type: ignore[arg-type]
    return windows


def make_backend(backend: BackendConfig, scenario: ScenarioConfig) -> InferenceBackend:
    """The backend ``backend.type`` names: PyTorch here, requests to a server, or diffusers."""
    if backend.type == "vllm":
        from energy_bench.backends.serving import ServingBackend

        return ServingBackend(backend, scenario)
    if backend.type == "diffusers":
        from energy_bench.backends.diffusion import DiffusersBackend

        return DiffusersBackend(backend, scenario)
    return PyTorchBackend(backend, scenario)


def run_benchmark(
    config: BenchConfig,
    *,
    backend_factory: Callable[..., InferenceBackend] = make_backend,
    source_factory: Callable[[Sequence[str], int], EnergySource] = open_source,
) -> RunData:
    """Run the whole benchmark; returns every measurement (raises on load or abort)."""
    wall = time.perf_counter()
    started = datetime.now(UTC).isoformat(timespec="seconds")
    s = config.scenario
    prompts = load_prompts(s)
    log.info("%d prompts from %s", len(prompts.texts), prompts.source)
    backend = backend_factory(config.backend, s)
    backend.load()
    source = source_factory(backend.device_uuids, backend.parameters)
    data = RunData(config, prompts, started, backend, source)
    meter = EnergyMeter(source, synchronize=backend.synchronize, sample_hz=config.energy.sample_hz)
    try:
        with meter.window("preprocess") as pre:
            batches = backend.prepare(prompts.texts)
        data.preprocess = pre.measurement
        idle_s = 0.0 if source.known_idle_w is not None else config.energy.idle_seconds
        data.idle = meter.measure_idle(idle_s)
        if backend.generation_path == GENERATION_COMPILED:
            with meter.window("compile") as compiling:
                backend.compile(batches)
            data.compile = compiling.measurement
        data.warmups = _warm_up(backend, source, meter, batches, config)
        for r in range(s.repeats):
            built = backend.graphs_built()
            backend.seed(s.seed)
            keep = s.image.save_images if s.image is not None and r == 0 else 0
            with meter.window(f"repeat_{r}") as measured:
                records = _run_pass(backend, source, batches, r, keep=data.images, keep_up_to=keep)
            prefill_window, prefill_records = None, []
            if s.image is None:  # an image pipeline has no prefill to tell apart
                backend.seed(s.seed)
                with meter.window(f"prefill_{r}") as prefill:
                    prefill_records = _run_pass(backend, source, batches, r, max_new_tokens=1)
                prefill_window = prefill.measurement
            assert measured.measurement is not None
            data.passes.append(
                PassResult(
                    measured.measurement,
                    tuple(records),
                    prefill_window,
                    tuple(prefill_records),
                    backend.graphs_built() - built,
                )
            )
            log.info(
                "pass %d/%d: %.1f s, %.3f Wh",
                r + 1,
                s.repeats,
                measured.measurement.duration_s,
                measured.measurement.energy_wh,
            )
    finally:
        meter.close()
        backend.close()
        data.trace = meter.trace()
        data.sampler_cpu_s = meter.sampler_cpu_s
        data.sampler_wall_s = meter.sampler_wall_s
        data.wall_s = time.perf_counter() - wall
    return data
