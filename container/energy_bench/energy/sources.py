"""Where energy readings come from: NVML on NVIDIA GPUs, else RAPL, else a labelled estimate.

A source returns cumulative counters in joules (one per device) and instantaneous samples; the
meter turns them into windows. No source ever reports a silent zero: ``estimate`` says so in its
name, and a run with no source at all says ``none``.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from energy_bench.energy.nvml import Nvml, PowerSample
from energy_bench.errors import EnergyUnavailable

log = logging.getLogger(__name__)

SourceName = Literal["nvml", "rapl", "estimate"]
RAPL_ROOT = Path("/sys/class/powercap")
# The estimate where no counter can be read: joules per floating-point operation of the model's
# forward passes. A coarse, documented assumption (a CPU core drawing about 10 W while it does
# about 10 GFLOP/s of inference work), used only there, and always labelled.
ESTIMATE_J_PER_FLOP = 1e-9


@dataclass(frozen=True)
class DeviceInfo:
    """One measured device as it appears in results."""

    kind: Literal["gpu", "cpu"]
    name: str
    uuid: str | None = None
    index: int | None = None
    power_limit_w: float | None = None


class EnergySource(Protocol):
    """Cumulative energy counters and instantaneous samples for the run's devices."""

    name: SourceName
    devices: list[DeviceInfo]
    counter_update_s: float
    # Whether its power trace is read apart from its counter, so that the one checks the other.
    trace_checks_counter: bool
    # Idle power known without measuring it (the estimate counts work only: 0 W); None: measure.
    known_idle_w: float | None

    def read_j(self) -> list[float]: ...

    def sample(self, *, with_energy: bool) -> list[PowerSample]: ...

    def gpu_pids(self) -> set[int] | None:
        """Processes using the measured GPUs (none without GPUs; None if they cannot be listed)."""
        ...

    def add_work(self, tokens: int) -> None:
        """The model processed ``tokens`` more tokens, prompt and generated.

        Only an estimate counts them; a measuring source ignores them.
        """
        ...

    def close(self) -> None: ...


class NvmlSource:
    """NVML's total-energy counter (updated about every 100 ms) for the given GPUs."""

    name: SourceName = "nvml"
    counter_update_s = 0.1
    trace_checks_counter = True  # power fields, read apart from the energy counter
    known_idle_w = None

    def __init__(self, uuids: Sequence[str]) -> None:
        self._nvml = Nvml(uuids)
        self.devices = [
            DeviceInfo("gpu", g.name, g.uuid, g.index, g.power_limit_w) for g in self._nvml.gpus
        ]
        try:
            self.read_j()  # fails now, not mid-run, on GPUs without the counter
            # Read while the session is open: the report asks after the meter closed it, and
            # NVML is shut down then unless another user (CUDA) still holds it.
            self._driver = self._nvml.driver()
        except BaseException:
            self._nvml.close()  # nobody else holds the session to end it
            raise

    def read_j(self) -> list[float]:
        return self._nvml.energy_j()

    def sample(self, *, with_energy: bool) -> list[PowerSample]:
        return self._nvml.samples(with_energy=with_energy)

    def gpu_pids(self) -> set[int] | None:
        return self._nvml.compute_pids()

    def add_work(self, tokens: int) -> None:
        pass

    def driver(self) -> dict[str, str]:
        return dict(self._driver)

    def close(self) -> None:
        self._nvml.close()


class _DerivedPower:
    """Instantaneous power as the slope of a counter between two samples."""

    def __init__(self) -> None:
        self._last: tuple[float, list[float]] | None = None

    def samples(self, energies: list[float]) -> list[PowerSample]:
        now = time.monotonic()
        last, self._last = self._last, (now, energies)
        if last is None or now <= last[0]:
            powers = [0.0] * len(energies)
        else:
            powers = [
                max(e - p, 0.0) / (now - last[0]) for e, p in zip(energies, last[1], strict=True)
            ]
        return [PowerSample(p, None, None, e) for p, e in zip(powers, energies, strict=True)]


class _HostCounters:
    """What the sources without GPUs share.

    Power is the slope of their own counter (so the trace cannot check the counter), and no GPU
    process can disturb them.
    """

    _power: _DerivedPower
    trace_checks_counter = False
    known_idle_w: float | None = None

    def read_j(self) -> list[float]:
        raise NotImplementedError

    def sample(self, *, with_energy: bool) -> list[PowerSample]:
        return self._power.samples(self.read_j())

    def gpu_pids(self) -> set[int]:
        return set()

    def add_work(self, tokens: int) -> None:
        pass

    def close(self) -> None:
        pass


class RaplSource(_HostCounters):
    """Intel/AMD RAPL package counters (``/sys/class/powercap``), with wrap-around handled."""

    name: SourceName = "rapl"
    counter_update_s = 0.001

    def __init__(self, root: Path = RAPL_ROOT) -> None:
        zones = sorted(
            p for p in root.glob("intel-rapl:*") if ":" in p.name and p.name.count(":") == 1
        )
        if not zones:
            raise EnergyUnavailable(f"no RAPL package zones under {root}")
        self._zones = zones
        self._max = [int((z / "max_energy_range_uj").read_text()) for z in zones]
        try:
            self._last = [self._raw(z) for z in zones]
        except OSError as exc:
            raise EnergyUnavailable(f"RAPL counters not readable: {exc}") from exc
        self._total = [0.0] * len(zones)
        self.devices = [DeviceInfo("cpu", (z / "name").read_text().strip()) for z in zones]
        self._power = _DerivedPower()

    @staticmethod
    def _raw(zone: Path) -> int:
        return int((zone / "energy_uj").read_text())

    def read_j(self) -> list[float]:
        for i, zone in enumerate(self._zones):
            raw = self._raw(zone)
            delta = raw - self._last[i]
            if delta < 0:  # the counter wrapped
                delta += self._max[i]
            self._last[i] = raw
            self._total[i] += delta / 1e6
        return list(self._total)


class EstimateSource(_HostCounters):
    """Not a measurement: the work done, 2 x parameters per token processed, x joules per FLOP.

    Its counter moves only when the benchmark reports work (``add_work``), so the same run gives
    the same figure on an idle or a busy machine, and estimates of different runs can be ranked.
    It does not see what the work cost on this machine: a padded batch, a slow core, attention
    over long contexts.
    """

    name: SourceName = "estimate"
    counter_update_s = 0.01
    known_idle_w = 0.0  # it counts work only: idle is zero by construction, not measured

    def __init__(self, parameters: int, j_per_flop: float = ESTIMATE_J_PER_FLOP) -> None:
        self.j_per_token = 2 * parameters * j_per_flop
        self.devices = [
            DeviceInfo(
                "cpu",
                f"work estimate (2 x {parameters:,} parameters x tokens x {j_per_flop:g} J/FLOP)",
            )
        ]
        self._power = _DerivedPower()
        self._joules = 0.0

    def add_work(self, tokens: int) -> None:
        self._joules += tokens * self.j_per_token

    def read_j(self) -> list[float]:
        return [self._joules]


def open_source(gpu_uuids: Sequence[str], parameters: int) -> EnergySource:
    """NVML for the given GPUs; with no GPUs, RAPL where readable, else the labelled estimate.

    ``parameters`` (the model's) sizes the estimate.
    """
    if gpu_uuids:
        return NvmlSource(gpu_uuids)
    if os.access(RAPL_ROOT, os.R_OK):
        try:
            return RaplSource()
        except (EnergyUnavailable, OSError) as exc:
            log.info("RAPL not usable (%s); falling back to the work estimate", exc)
    log.warning(
        "no GPU and no RAPL counter: energy is an ESTIMATE "
        "(2 x %d parameters x tokens processed x %g J per FLOP)",
        parameters,
        ESTIMATE_J_PER_FLOP,
    )
    return EstimateSource(parameters)
