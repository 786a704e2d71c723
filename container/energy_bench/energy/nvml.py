"""The one module that talks to NVML (package nvidia-ml-py, module ``pynvml``).

It resolves the run's GPUs by UUID once, converts NVML's units (mJ, mW) in exactly one place
each, and maps ``NVMLError`` to ``EnergyUnavailable``.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from energy_bench.errors import EnergyUnavailable

_lock = threading.Lock()
_users = 0


@dataclass(frozen=True)
class GpuInfo:
    """What identifies one GPU in a result."""

    index: int
    uuid: str
    name: str
    power_limit_w: float | None
    memory_total_bytes: int


@dataclass(frozen=True)
class PowerSample:
    """One reading of the sampler for one GPU."""

    power_w: float
    sm_clock_mhz: int | None
    temperature_c: int | None
    energy_j: float | None  # None when the counter was not read on this tick


def _pynvml() -> Any:
    try:
        import pynvml
    except ImportError as exc:
        raise EnergyUnavailable(
            "the nvidia-ml-py package (module pynvml) is not installed"
        ) from exc
    return pynvml


@contextmanager
def _nvml_errors(what: str) -> Iterator[None]:
    pynvml = _pynvml()
    try:
        yield
    except pynvml.NVMLError as exc:
        raise EnergyUnavailable(f"NVML: {what}: {exc}") from exc


def _mj_to_j(millijoules: int) -> float:
    return millijoules / 1000.0


def _mw_to_w(milliwatts: float) -> float:
    return milliwatts / 1000.0


def normalise_uuid(uuid: str) -> str:
    """NVML's spelling of a GPU UUID (``GPU-`` followed by the lower-case hex groups)."""
    text = uuid.strip()
    if text.upper().startswith(("GPU-", "MIG-")):
        return text[:4].upper() + text[4:].lower()
    return "GPU-" + text.lower()


class Nvml:
    """An NVML session over the given GPUs (by UUID); ``close`` ends it.

    Sessions nest: NVML is initialised by the first and shut down by the last.
    """

    def __init__(self, uuids: Sequence[str]) -> None:
        global _users
        self._pynvml = _pynvml()
        with _lock, _nvml_errors("initialising (is an NVIDIA driver present?)"):
            if _users == 0:
                self._pynvml.nvmlInit()
            _users += 1
        self._closed = False
        try:
            self._handles = [self._handle(u) for u in uuids]
            self.gpus = [self._info(h) for h in self._handles]
        except BaseException:
            self.close()
            raise

    def _handle(self, uuid: str) -> Any:
        with _nvml_errors(f"finding GPU {uuid}"):
            return self._pynvml.nvmlDeviceGetHandleByUUID(normalise_uuid(uuid))

    def _info(self, handle: Any) -> GpuInfo:
        n = self._pynvml
        with _nvml_errors("reading GPU identity"):
            try:
                limit: float | None = _mw_to_w(n.nvmlDeviceGetPowerManagementLimit(handle))
            except n.NVMLError:
                limit = None
            return GpuInfo(
                index=n.nvmlDeviceGetIndex(handle),
                uuid=n.nvmlDeviceGetUUID(handle),
                name=n.nvmlDeviceGetName(handle),
                power_limit_w=limit,
                memory_total_bytes=n.nvmlDeviceGetMemoryInfo(handle).total,
            )

    def energy_j(self) -> list[float]:
        """Each GPU's total-energy counter, in joules since the driver was loaded."""
        n = self._pynvml
        with _nvml_errors("reading the total-energy counter"):
            return [_mj_to_j(n.nvmlDeviceGetTotalEnergyConsumption(h)) for h in self._handles]

    def _power_w(self, handle: Any) -> float:
        n = self._pynvml
        (field,) = n.nvmlDeviceGetFieldValues(handle, [n.NVML_FI_DEV_POWER_INSTANT])
        if field.nvmlReturn == n.NVML_SUCCESS:
            return _mw_to_w(_field_number(field))
        return _mw_to_w(n.nvmlDeviceGetPowerUsage(handle))

    def samples(self, *, with_energy: bool) -> list[PowerSample]:
        """Instantaneous power, SM clock, temperature (and the energy counter) of each GPU.

        Reading the energy counter costs about 2.8 ms of CPU per call on an H200 (power, clock
        and temperature a few microseconds), so the sampler asks for it only now and then.
        """
        n = self._pynvml
        out = []
        with _nvml_errors("sampling power"):
            for handle in self._handles:
                try:
                    clock: int | None = n.nvmlDeviceGetClockInfo(handle, n.NVML_CLOCK_SM)
                    temp: int | None = n.nvmlDeviceGetTemperature(handle, n.NVML_TEMPERATURE_GPU)
                except n.NVMLError:
                    clock = temp = None
                out.append(
                    PowerSample(
                        power_w=self._power_w(handle),
                        sm_clock_mhz=clock,
                        temperature_c=temp,
                        energy_j=(
                            _mj_to_j(n.nvmlDeviceGetTotalEnergyConsumption(handle))
                            if with_energy
                            else None
                        ),
                    )
                )
        return out

    def compute_pids(self) -> set[int] | None:
        """PIDs of the compute processes on any of the session's GPUs.

        None where NVML cannot list them (some virtual GPUs, old drivers): the list is a check,
        never a reason to fail a run.
        """
        n = self._pynvml
        try:
            return {p.pid for h in self._handles for p in n.nvmlDeviceGetComputeRunningProcesses(h)}
        except n.NVMLError:
            return None

    def driver(self) -> dict[str, str]:
        """Driver version and the CUDA version the driver supports."""
        n = self._pynvml
        with _nvml_errors("reading the driver version"):
            cuda = n.nvmlSystemGetCudaDriverVersion()
            return {
                "driver_version": str(n.nvmlSystemGetDriverVersion()),
                "cuda_driver_version": f"{cuda // 1000}.{cuda % 1000 // 10}",
            }

    def close(self) -> None:
        """End the session (idempotent)."""
        global _users
        if self._closed:
            return
        self._closed = True
        with _lock:
            _users -= 1
            if _users == 0:
                with contextlib.suppress(self._pynvml.NVMLError):
                    self._pynvml.nvmlShutdown()


def visible_uuids() -> list[str]:
    """The UUID of every GPU NVML sees here, in index order (``EnergyUnavailable``: no driver)."""
    session = Nvml(())
    n = session._pynvml
    try:
        with _nvml_errors("listing the GPUs"):
            return [
                n.nvmlDeviceGetUUID(n.nvmlDeviceGetHandleByIndex(i))
                for i in range(n.nvmlDeviceGetCount())
            ]
    finally:
        session.close()


def _field_number(field: Any) -> float:
    kind = int(field.valueType)
    member = {0: "dVal", 1: "uiVal", 2: "ulVal", 3: "ullVal", 4: "sllVal", 5: "siVal", 6: "usVal"}
    return float(getattr(field.value, member.get(kind, "uiVal")))
