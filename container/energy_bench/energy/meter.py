"""The energy meter: named windows over an energy source, an idle baseline, and a power trace.

``begin_window(name)`` / ``end_window(name) -> Measurement`` (and ``window(name)``, built on them)
read the source's cumulative counters after synchronising the devices, so queued GPU work is
inside the window it belongs to. A background thread samples power, SM clock and temperature into
a trace; each window's trace integral is cross-checked against its counter delta, device by
device. At each window's start and end the meter asks which processes use the run's GPUs: one
that is not the benchmark makes the window suspect (``foreign_process``).
"""

from __future__ import annotations

import itertools
import logging
import os
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from energy_bench.energy.sources import EnergySource

log = logging.getLogger(__name__)

SHORT_WINDOW_UPDATES = 10  # a window shorter than ten counter updates is flagged
TRACE_TOLERANCE = 0.05  # trace vs counter disagreement above 5 % is flagged
COUNTER_SAMPLE_PERIOD_S = 1.0  # the sampler reads the (costly) energy counter this often
SAMPLER_STOP_S = 5.0  # how long close() waits for a sampler stuck in a driver call


@dataclass(frozen=True)
class TraceRow:
    """One sampler reading of one device."""

    t_s: float  # seconds since the meter started
    device: int
    window: str
    power_w: float
    sm_clock_mhz: int | None
    temperature_c: int | None
    energy_j: float | None


@dataclass(frozen=True)
class Measurement:
    """The energy of one named window, summed over the run's devices (and per device)."""

    name: str
    start_s: float
    duration_s: float
    energy_j: float
    device_energy_j: tuple[float, ...]
    source: str
    short_window: bool
    counter_reset: bool
    trace_energy_j: float | None = None
    trace_deviation: float | None = None
    trace_samples: int = 0
    device_trace_deviation: tuple[float | None, ...] = ()
    foreign_pids: tuple[int, ...] = ()

    @property
    def energy_wh(self) -> float:
        return self.energy_j / 3600.0

    @property
    def average_power_w(self) -> float:
        return self.energy_j / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def trace_mismatch(self) -> bool:
        """True when the trace and the counter disagree beyond tolerance on any device."""
        return self.trace_deviation is not None and abs(self.trace_deviation) > TRACE_TOLERANCE

    @property
    def foreign_process(self) -> bool:
        return bool(self.foreign_pids)

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "duration_s": self.duration_s,
            "energy_j": self.energy_j,
            "energy_wh": self.energy_wh,
            "average_power_w": self.average_power_w,
            "device_energy_j": list(self.device_energy_j),
            "source": self.source,
            "short_window": self.short_window,
            "counter_reset": self.counter_reset,
            "trace_energy_j": self.trace_energy_j,
            "trace_deviation": self.trace_deviation,
            "device_trace_deviation": list(self.device_trace_deviation),
            "trace_samples": self.trace_samples,
            "foreign_pids": list(self.foreign_pids),
        }


@dataclass
class _Open:
    start: float
    counters: list[float]
    foreign: set[int]


@dataclass
class WindowResult:
    """Filled in when a ``window(...)`` block ends."""

    measurement: Measurement | None = field(default=None)


class EnergyMeter:
    """Measures named windows on one energy source; ``close`` stops the sampler.

    ``synchronize`` waits for queued device work (``torch.cuda.synchronize``); it keeps the meter
    free of any framework. ``clock`` and ``sleep`` are the monotonic clock and the idle wait;
    with ``background=False`` no sampler thread runs and the caller takes each trace reading
    with ``sample()`` (a scripted clock then decides every time the meter sees).
    """

    def __init__(
        self,
        source: EnergySource,
        *,
        synchronize: Callable[[], None] = lambda: None,
        sample_hz: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        background: bool = True,
    ) -> None:
        self.source = source
        self._sync = synchronize
        self._period = 1.0 / sample_hz
        self._clock = clock
        self._sleep = sleep
        self._t0 = clock()
        self._next_counter = self._t0
        self._open: dict[str, _Open] = {}
        self._label = "idle"
        self._trace: list[TraceRow] = []
        self._trace_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample_loop, name="power-sampler", daemon=True)
        self.sampler_cpu_s = 0.0
        self.sampler_wall_s = 0.0
        self._present = source.gpu_pids() or set()  # the benchmark itself, once it is loaded
        if background:
            self._thread.start()

    # --- sampler ---------------------------------------------------------------------------
    def sample(self) -> None:
        """Take one trace reading of every device (the counter too, once a counter period)."""
        now = self._clock()
        with_energy = now >= self._next_counter
        if with_energy:
            self._next_counter += COUNTER_SAMPLE_PERIOD_S
        samples = self.source.sample(with_energy=with_energy)
        t = self._clock() - self._t0
        with self._trace_lock:
            self._trace.extend(
                TraceRow(t, i, self._label, s.power_w, s.sm_clock_mhz, s.temperature_c, s.energy_j)
                for i, s in enumerate(samples)
            )

    def _sample_loop(self) -> None:
        cpu_start = time.thread_time()
        wall_start = next_tick = self._clock()
        while not self._stop.is_set():
            try:
                self.sample()
            except Exception as exc:  # keep measuring with the counters alone
                log.warning("power sampler stopped: %s", exc)
                break
            next_tick += self._period
            self._stop.wait(max(0.0, next_tick - self._clock()))
        self.sampler_cpu_s = time.thread_time() - cpu_start
        self.sampler_wall_s = self._clock() - wall_start

    def trace(self) -> list[TraceRow]:
        """A copy of the power trace so far."""
        with self._trace_lock:
            return list(self._trace)

    # --- windows ---------------------------------------------------------------------------
    def foreign_pids(self) -> set[int]:
        """Processes on the run's GPUs that are not this benchmark.

        Where NVML shows this process's own PID (the same PID namespace), every other PID is
        foreign; inside a container, whatever was not there when the meter started.
        """
        pids = self.source.gpu_pids()
        if pids is None:  # NVML cannot list them here: nothing to flag
            return set()
        own = os.getpid()
        return pids - {own} if own in pids else pids - self._present

    def begin_window(self, name: str) -> None:
        """Start window ``name`` (after the devices finish their queued work)."""
        if name in self._open:
            raise ValueError(f"window {name!r} is already open")
        self._sync()
        foreign = self.foreign_pids()
        self._open[name] = _Open(self._clock(), self.source.read_j(), foreign)
        self._label = name

    def end_window(self, name: str) -> Measurement:
        """End window ``name`` and return its measurement."""
        self._sync()
        counters = self.source.read_j()
        end = self._clock()
        opened = self._open.pop(name)
        foreign = opened.foreign | self.foreign_pids()
        if foreign:
            log.warning("window %r: other processes on the run's GPUs: %s", name, sorted(foreign))
        self._label = next(reversed(self._open), "idle")
        deltas = [b - a for a, b in zip(opened.counters, counters, strict=True)]
        duration = end - opened.start
        rows = self.trace()  # one snapshot serves both checks
        start_s, end_s = opened.start - self._t0, end - self._t0
        device_trace, n = _trace_energy(rows, start_s, end_s, len(deltas))
        trace_j = sum(device_trace) if n else None  # type: ignore[arg-type]
        reset = any(d < 0 for d in deltas) or _counter_fell(rows, start_s)
        if reset:
            log.warning("energy counter reset during window %r", name)
            deltas = [max(d, 0.0) for d in deltas]
        energy = sum(deltas)
        if reset and trace_j is not None:  # the trace stands in for the counters, GPU by GPU
            deltas = [t if t is not None else 0.0 for t in device_trace]
            energy = trace_j
        checked = self.source.trace_checks_counter and not reset
        per_device = tuple(
            (t - d) / d if checked and t is not None and d > 0 else None
            for t, d in zip(device_trace, deltas, strict=True)
        )
        known = [x for x in per_device if x is not None]
        deviation = max(known, key=abs) if known else None
        return Measurement(
            name=name,
            start_s=start_s,
            duration_s=duration,
            energy_j=energy,
            device_energy_j=tuple(deltas),
            source=self.source.name,
            short_window=duration < SHORT_WINDOW_UPDATES * self.source.counter_update_s,
            counter_reset=reset,
            trace_energy_j=trace_j,
            trace_deviation=deviation,
            trace_samples=n,
            device_trace_deviation=per_device,
            foreign_pids=tuple(sorted(foreign)),
        )

    @contextmanager
    def window(self, name: str) -> Iterator[WindowResult]:
        """``with meter.window("x") as w: ...`` then ``w.measurement``; closed on any exit."""
        result = WindowResult()
        self.begin_window(name)
        try:
            yield result
        finally:
            result.measurement = self.end_window(name)

    def measure_idle(self, seconds: float) -> Measurement | None:
        """The idle baseline: a window of ``seconds`` with nothing running (None if 0)."""
        if seconds <= 0:
            return None
        with self.window("idle_baseline") as idle:
            self._sleep(seconds)
        return idle.measurement

    def close(self) -> None:
        """Stop the sampler and release the source."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=SAMPLER_STOP_S)
        if self._thread.is_alive():  # stuck in a driver call: not shut down beneath it
            log.warning(
                "power sampler did not stop in %g s; its source is left open", SAMPLER_STOP_S
            )
            return
        self.source.close()


def _counter_fell(rows: list[TraceRow], start: float) -> bool:
    """True if any device's sampled counter went down since ``start`` (a reset)."""
    last: dict[int, float] = {}
    for row in rows:
        if row.t_s < start or row.energy_j is None:
            continue
        if row.energy_j < last.get(row.device, float("-inf")):
            return True
        last[row.device] = row.energy_j
    return False


def _trace_energy(
    rows: list[TraceRow], start: float, end: float, devices: int
) -> tuple[list[float | None], int]:
    """Trapezoid integral of each device's sampled power over [start, end], and the samples used.

    A device with fewer than two samples inside the window has no trace energy (None); then the
    window as a whole has none either (count 0).
    """
    energies: list[float | None] = []
    count = 0
    for device in range(devices):
        points = [(r.t_s, r.power_w) for r in rows if r.device == device]
        inside = [p for p in points if start <= p[0] <= end]
        if len(inside) < 2:
            return [None] * devices, 0
        before = [p for p in points if p[0] < start][-1:]
        after = [p for p in points if p[0] > end][:1]
        series = _clip(before + inside + after, start, end)
        pairs = itertools.pairwise(series)
        energies.append(sum((t2 - t1) * (p1 + p2) / 2 for (t1, p1), (t2, p2) in pairs))
        count += len(inside)
    return energies, count


def _clip(points: list[tuple[float, float]], start: float, end: float) -> list[tuple[float, float]]:
    """Linear interpolation of the series at the window edges, then the points inside."""

    def at(t: float) -> float:
        for (t1, p1), (t2, p2) in itertools.pairwise(points):
            if t1 <= t <= t2 and t2 > t1:
                return p1 + (p2 - p1) * (t - t1) / (t2 - t1)
        return points[0][1] if t < points[0][0] else points[-1][1]

    inner = [p for p in points if start < p[0] < end]
    return [(start, at(start)), *inner, (end, at(end))]


def spread(values: list[float]) -> tuple[float, float, float]:
    """Mean, sample standard deviation and coefficient of variation of ``values``."""
    mean = statistics.fmean(values) if values else 0.0
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return mean, std, (std / mean if mean else 0.0)
