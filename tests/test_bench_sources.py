"""Energy sources read through fakes of what they read, and a sampler that breaks mid-run.

RAPL reads a folder shaped like ``/sys/class/powercap``; NVML reads a fake ``pynvml`` module
that answers in NVML's units (mJ, mW). Every figure is then exact.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
import types
from pathlib import Path

import pytest
from fakes import FakeBackend

from energy_bench import contract
from energy_bench.benchmark import run_benchmark
from energy_bench.config import load_config
from energy_bench.energy import nvml, sources
from energy_bench.energy.nvml import PowerSample
from energy_bench.energy.sources import DeviceInfo, NvmlSource, RaplSource
from energy_bench.errors import BenchConfigError, EnergyUnavailable
from energy_bench.results.report import build_report

# --- RAPL ---------------------------------------------------------------------------------------
RANGE_UJ = 262_143_328_850  # a real package counter's max_energy_range_uj


def rapl_zone(root: Path, name: str, energy_uj: int, range_uj: int = RANGE_UJ) -> Path:
    """A powercap zone folder ``root/name`` as the kernel shows it."""
    zone = root / name
    zone.mkdir()
    (zone / "name").write_text(f"package-{name.split(':')[-1]}\n")
    (zone / "max_energy_range_uj").write_text(f"{range_uj}\n")
    (zone / "energy_uj").write_text(f"{energy_uj}\n")
    return zone


def set_uj(zone: Path, energy_uj: int) -> None:
    (zone / "energy_uj").write_text(f"{energy_uj}\n")


def test_rapl_reads_each_package_and_only_packages(tmp_path):
    rapl_zone(tmp_path, "intel-rapl:1", 5_000_000)
    rapl_zone(tmp_path, "intel-rapl:0", 7_000_000)
    rapl_zone(tmp_path, "intel-rapl:0:0", 1_000_000)  # a core sub-zone, inside package 0
    source = RaplSource(root=tmp_path)
    assert [d.name for d in source.devices] == ["package-0", "package-1"]
    assert {d.kind for d in source.devices} == {"cpu"}
    assert source.read_j() == [0.0, 0.0]  # joules since the source opened


def test_rapl_counts_the_joules_across_a_counter_wrap(tmp_path):
    near_end = rapl_zone(tmp_path, "intel-rapl:0", RANGE_UJ - 1_000_000)
    steady = rapl_zone(tmp_path, "intel-rapl:1", 40_000_000)
    source = RaplSource(root=tmp_path)
    set_uj(near_end, 500_000)  # 1 J to the end of the range, then 0.5 J after it wrapped
    set_uj(steady, 42_250_000)
    first = source.read_j()
    assert first[0] == pytest.approx(1.5, abs=1e-5)
    assert first[1] == 2.25
    set_uj(near_end, 3_500_000)  # after the wrap the counter counts on as before
    set_uj(steady, 42_250_000)
    assert source.read_j() == pytest.approx([first[0] + 3.0, 2.25])


def test_rapl_counts_a_wrap_from_a_small_range_exactly_once(tmp_path):
    zone = rapl_zone(tmp_path, "intel-rapl:0", 900_000, range_uj=1_000_000)
    source = RaplSource(root=tmp_path)
    total = 0
    for raw in (100_000, 600_000, 50_000, 50_000):  # two wraps, then no change
        previous = int((zone / "energy_uj").read_text())
        set_uj(zone, raw)
        total += (raw - previous) % 1_000_000
        assert source.read_j()[0] == pytest.approx(total / 1e6, abs=1e-5)
    assert total == 1_150_000


def test_rapl_without_packages_or_counters_is_unavailable(tmp_path):
    with pytest.raises(EnergyUnavailable, match="no RAPL package zones under"):
        RaplSource(root=tmp_path)
    zone = rapl_zone(tmp_path, "intel-rapl:0", 1)
    (zone / "energy_uj").unlink()  # the kernel hides it from users without the right
    with pytest.raises(EnergyUnavailable, match="RAPL counters not readable"):
        RaplSource(root=tmp_path)


# --- NVML ---------------------------------------------------------------------------------------
class FakeGpu:
    """What the fake NVML answers for one GPU, in NVML's units; every figure its own."""

    def __init__(self, index: int, uuid: str, millijoules: int, milliwatts: int) -> None:
        self.index, self.uuid = index, uuid
        self.millijoules = millijoules
        self.instant_mw = milliwatts  # the instant-power field
        self.average_mw = milliwatts  # nvmlDeviceGetPowerUsage, where the field is not supported
        self.field_ok = True
        self.limit_mw = 700_000 - 50_000 * index
        self.counter_ok = True
        self.name = f"Fake GPU {index}"
        self.memory_bytes = (141 - index) * 2**30
        self.clock_mhz, self.temp_c = 1980 - index, 41 + index
        self.pids = [4321 + index]
        self.broken: set[str] = set()  # NVML calls that fail for this GPU


def fake_pynvml(gpus: list[FakeGpu]) -> types.ModuleType:
    """A ``pynvml`` module over ``gpus``: handles are the GPUs, numbers in mJ and mW."""
    n = types.ModuleType("pynvml")

    class NVMLError(Exception):
        pass

    by_uuid = {g.uuid: g for g in gpus}
    n.NVMLError = NVMLError
    n.NVML_SUCCESS = 0
    n.NVML_FI_DEV_POWER_INSTANT = 186
    n.NVML_CLOCK_SM = 1
    n.NVML_TEMPERATURE_GPU = 0
    n.calls = []
    n.cuda_version = 12040

    n.live = False

    def init() -> None:
        n.calls.append("init")
        n.live = True

    def shutdown() -> None:
        n.calls.append("shutdown")
        n.live = False

    def driver_version() -> str:
        if not n.live:  # as NVML: nothing answers between shutdown and the next init
            raise NVMLError("Uninitialized")
        return "550.54.15"

    def handle(uuid: str) -> FakeGpu:
        if uuid not in by_uuid:
            raise NVMLError("Not Found")
        return by_uuid[uuid]

    def answer(call: str, read):
        """An NVML call on one GPU: ``read(gpu)``, or the error the GPU was set to give."""

        def call_nvml(gpu: FakeGpu, *args):
            if call in gpu.broken:
                raise NVMLError("Not Supported")
            return read(gpu, *args)

        return call_nvml

    def energy(gpu: FakeGpu) -> int:
        if not gpu.counter_ok:
            raise NVMLError("Not Supported")
        return gpu.millijoules

    def fields(gpu: FakeGpu, ids: list[int]) -> list[types.SimpleNamespace]:
        assert ids == [n.NVML_FI_DEV_POWER_INSTANT]
        value = types.SimpleNamespace(uiVal=gpu.instant_mw)
        status = n.NVML_SUCCESS if gpu.field_ok else 3
        return [types.SimpleNamespace(nvmlReturn=status, valueType=1, value=value)]

    def clock(gpu: FakeGpu, which: int) -> int:
        assert which == n.NVML_CLOCK_SM
        return gpu.clock_mhz

    def temperature(gpu: FakeGpu, sensor: int) -> int:
        assert sensor == n.NVML_TEMPERATURE_GPU
        return gpu.temp_c

    n.nvmlInit = init
    n.nvmlShutdown = shutdown
    n.nvmlDeviceGetHandleByUUID = handle
    n.nvmlDeviceGetIndex = answer("index", lambda g: g.index)
    n.nvmlDeviceGetUUID = answer("uuid", lambda g: g.uuid)
    n.nvmlDeviceGetName = answer("name", lambda g: g.name)
    n.nvmlDeviceGetMemoryInfo = answer(
        "memory", lambda g: types.SimpleNamespace(total=g.memory_bytes, used=1, free=2)
    )
    n.nvmlDeviceGetPowerManagementLimit = answer("limit", lambda g: g.limit_mw)
    n.nvmlDeviceGetTotalEnergyConsumption = energy
    n.nvmlDeviceGetFieldValues = answer("fields", fields)
    n.nvmlDeviceGetPowerUsage = answer("power", lambda g: g.average_mw)
    n.nvmlDeviceGetClockInfo = answer("clock", clock)
    n.nvmlDeviceGetTemperature = answer("temperature", temperature)
    n.nvmlDeviceGetComputeRunningProcesses = answer(
        "pids", lambda g: [types.SimpleNamespace(pid=pid) for pid in g.pids]
    )
    n.nvmlSystemGetDriverVersion = driver_version
    n.nvmlDeviceGetCount = lambda: len(gpus)
    n.nvmlDeviceGetHandleByIndex = lambda i: gpus[i]
    n.nvmlSystemGetCudaDriverVersion = lambda: n.cuda_version
    return n


UUIDS = ["GPU-0a1b2c3d-0000-1111-2222-333344445555", "GPU-9f8e7d6c-0000-1111-2222-333344445555"]


@pytest.fixture
def gpus(monkeypatch) -> list[FakeGpu]:
    """Two fake GPUs behind a fake ``pynvml``, in a fresh NVML session count."""
    fakes = [FakeGpu(0, UUIDS[0], 123_456_789, 350_500), FakeGpu(1, UUIDS[1], 2_000, 81_250)]
    module = fake_pynvml(fakes)
    monkeypatch.setitem(sys.modules, "pynvml", module)
    monkeypatch.setattr(nvml, "_users", 0)
    return fakes


def test_nvml_counters_come_back_in_joules(gpus):
    source = NvmlSource([u.upper() for u in UUIDS])  # found by UUID whatever its spelling
    try:
        assert source.read_j() == [123_456.789, 2.0]
        gpus[0].millijoules += 1_500
        assert source.read_j() == pytest.approx([123_458.289, 2.0])
        assert [d.uuid for d in source.devices] == UUIDS
        assert [d.power_limit_w for d in source.devices] == [700.0, 650.0]
        assert source.driver() == {"driver_version": "550.54.15", "cuda_driver_version": "12.4"}
        assert source.gpu_pids() == {4321, 4322}
    finally:
        source.close()
    assert sys.modules["pynvml"].calls == ["init", "shutdown"]
    # The report asks after the meter closed the source: with no other NVML user (a served run
    # uses no CUDA), NVML is shut down by then.
    assert source.driver() == {"driver_version": "550.54.15", "cuda_driver_version": "12.4"}


def test_a_served_run_measures_the_server_gpus_named_by_index_or_uuid(gpus):
    from energy_bench.backends.serving import server_gpu_uuids

    assert server_gpu_uuids(None) == UUIDS  # every visible GPU
    assert server_gpu_uuids(("1",)) == [UUIDS[1]]
    assert server_gpu_uuids((UUIDS[0].upper(), "1")) == UUIDS
    with pytest.raises(BenchConfigError, match="GPU 2 is not one of the 2 visible"):
        server_gpu_uuids(("2",))


def test_nvml_power_comes_back_in_watts(gpus):
    gpus[1].field_ok = False  # no instant-power field: the averaged reading stands in
    gpus[1].average_mw = 75_125
    source = NvmlSource(UUIDS)
    try:
        with_counter = source.sample(with_energy=True)
        without = source.sample(with_energy=False)
    finally:
        source.close()
    assert with_counter == [
        PowerSample(350.5, 1980, 41, 123_456.789),
        PowerSample(75.125, 1979, 42, 2.0),
    ]
    assert [s.power_w for s in without] == [350.5, 75.125]
    assert [s.energy_j for s in without] == [None, None]


def test_a_gpu_without_the_energy_counter_is_unavailable_at_once(gpus):
    gpus[1].counter_ok = False
    with pytest.raises(EnergyUnavailable, match="NVML: reading the total-energy counter: Not"):
        NvmlSource(UUIDS)


def test_a_gpu_without_the_energy_counter_ends_the_session_too(gpus):
    gpus[1].counter_ok = False
    with pytest.raises(EnergyUnavailable):
        NvmlSource(UUIDS)
    assert sys.modules["pynvml"].calls == ["init", "shutdown"]


def test_an_unknown_gpu_is_unavailable_and_ends_the_session(gpus):
    with pytest.raises(EnergyUnavailable, match="NVML: finding GPU GPU-FFFF: Not Found"):
        NvmlSource([UUIDS[0], "GPU-FFFF"])
    assert sys.modules["pynvml"].calls == ["init", "shutdown"]


def test_an_nvml_session_knows_each_gpu_by_its_own_identity(gpus):
    gpus[1].broken.add("limit")  # some GPUs do not report a power limit: it is unknown, not 0
    session = nvml.Nvml(UUIDS)
    try:
        assert session.gpus == [
            nvml.GpuInfo(0, UUIDS[0], "Fake GPU 0", 700.0, 141 * 2**30),
            nvml.GpuInfo(1, UUIDS[1], "Fake GPU 1", None, 140 * 2**30),
        ]
    finally:
        session.close()


@pytest.mark.parametrize("call", ["index", "uuid", "name", "memory"])
def test_a_gpu_whose_identity_cannot_be_read_is_unavailable(gpus, call):
    gpus[1].broken.add(call)
    with pytest.raises(EnergyUnavailable, match=r"^NVML: reading GPU identity: Not Supported$"):
        nvml.Nvml(UUIDS)
    assert sys.modules["pynvml"].calls == ["init", "shutdown"]


def test_a_gpu_without_clock_or_temperature_is_still_sampled(gpus):
    gpus[0].broken.add("clock")
    gpus[1].broken.add("temperature")
    session = nvml.Nvml(UUIDS)
    try:
        assert session.samples(with_energy=False) == [
            PowerSample(350.5, None, None, None),
            PowerSample(81.25, None, None, None),
        ]
    finally:
        session.close()


def test_a_power_reading_that_fails_is_unavailable(gpus):
    gpus[1].field_ok = False
    gpus[1].broken.add("power")
    session = nvml.Nvml(UUIDS)
    try:
        with pytest.raises(EnergyUnavailable, match=r"^NVML: sampling power: Not Supported$"):
            session.samples(with_energy=False)
    finally:
        session.close()


@pytest.mark.parametrize(
    ("value_type", "member"),
    [(0, "dVal"), (1, "uiVal"), (2, "ulVal"), (3, "ullVal"), (4, "sllVal"), (5, "siVal"),
     (6, "usVal"), (99, "uiVal")],
)  # fmt: skip
def test_the_instant_power_field_is_read_from_the_member_its_type_names(value_type, member):
    members = ["dVal", "uiVal", "ulVal", "ullVal", "sllVal", "siVal", "usVal"]
    value = types.SimpleNamespace(**{m: 1000 * (i + 1) for i, m in enumerate(members)})
    field = types.SimpleNamespace(valueType=value_type, value=value)
    assert nvml._field_number(field) == 1000.0 * (members.index(member) + 1)


@pytest.mark.parametrize(
    ("given", "spelled"),
    [("GPU-0A1B-CD", "GPU-0a1b-cd"), ("gpu-0a1b-cd", "GPU-0a1b-cd"), ("  MIG-AB-CD ", "MIG-ab-cd"),
     ("0A1B-CD", "GPU-0a1b-cd"), ("mig-9F", "MIG-9f")],
)  # fmt: skip
def test_a_gpu_uuid_is_spelled_as_nvml_spells_it(given, spelled):
    assert nvml.normalise_uuid(given) == spelled


def test_nvml_sessions_nest_and_closing_twice_counts_once(gpus):
    calls = sys.modules["pynvml"].calls
    first, second = nvml.Nvml(UUIDS[:1]), nvml.Nvml(UUIDS[1:])
    assert calls == ["init"]  # NVML is initialised once for both
    first.close()
    first.close()  # idempotent: it does not end the other session's NVML
    assert calls == ["init"]
    assert second.samples(with_energy=True)[0].energy_j == 2.0
    second.close()
    assert calls == ["init", "shutdown"]
    third = nvml.Nvml(UUIDS)  # a later session initialises it again
    third.close()
    assert calls == ["init", "shutdown", "init", "shutdown"]


def test_an_nvml_that_fails_to_shut_down_still_closes_the_session(gpus):
    module = sys.modules["pynvml"]

    def refuse() -> None:
        raise module.NVMLError("Driver Not Loaded")

    module.nvmlShutdown = refuse
    session = nvml.Nvml(UUIDS)
    session.close()  # no error: there is nothing left to do about it
    assert nvml._users == 0


def test_no_driver_is_unavailable_with_the_question_to_ask(gpus):
    module = sys.modules["pynvml"]

    def no_driver() -> None:
        raise module.NVMLError("Driver Not Loaded")

    module.nvmlInit = no_driver
    with pytest.raises(EnergyUnavailable) as raised:
        nvml.Nvml(UUIDS)
    assert str(raised.value) == (
        "NVML: initialising (is an NVIDIA driver present?): Driver Not Loaded"
    )
    assert nvml._users == 0


def test_without_the_nvml_package_energy_is_unavailable(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import pynvml raises ImportError
    with pytest.raises(EnergyUnavailable) as raised:
        nvml.Nvml(UUIDS)
    assert str(raised.value) == "the nvidia-ml-py package (module pynvml) is not installed"


def test_compute_processes_are_those_of_every_gpu_or_unknown(gpus):
    gpus[1].pids = [77, 78]
    session = nvml.Nvml(UUIDS)
    try:
        assert session.compute_pids() == {4321, 77, 78}
        gpus[0].broken.add("pids")  # a virtual GPU that cannot list them
        assert session.compute_pids() is None
    finally:
        session.close()


@pytest.mark.parametrize(("raw", "cuda"), [(12040, "12.4"), (11080, "11.8"), (13000, "13.0")])
def test_the_driver_cuda_version_reads_as_major_dot_minor(gpus, raw, cuda):
    sys.modules["pynvml"].cuda_version = raw
    session = nvml.Nvml(UUIDS)
    try:
        assert session.driver() == {"driver_version": "550.54.15", "cuda_driver_version": cuda}
    finally:
        session.close()


def test_the_driver_version_unread_is_unavailable(gpus):
    session = nvml.Nvml(UUIDS)
    session.close()  # NVML shut down: nothing answers
    with pytest.raises(EnergyUnavailable, match=r"^NVML: reading the driver version: Uninit"):
        session.driver()


def test_visible_gpus_are_listed_in_index_order_and_nvml_ends(gpus):
    assert nvml.visible_uuids() == UUIDS
    assert sys.modules["pynvml"].calls == ["init", "shutdown"]
    gpus[1].broken.add("uuid")
    with pytest.raises(EnergyUnavailable, match=r"^NVML: listing the GPUs: Not Supported$"):
        nvml.visible_uuids()
    assert nvml._users == 0


def test_a_run_with_gpus_measures_them_with_nvml_each_as_a_gpu(gpus):
    source = sources.open_source(UUIDS, 1_000)
    try:
        assert isinstance(source, NvmlSource)
        assert source.devices == [
            DeviceInfo("gpu", "Fake GPU 0", UUIDS[0], 0, 700.0),
            DeviceInfo("gpu", "Fake GPU 1", UUIDS[1], 1, 650.0),
        ]
    finally:
        source.close()


def test_without_gpus_rapl_is_used_where_readable_else_the_labelled_estimate(
    tmp_path, monkeypatch, caplog
):
    rapl_zone(tmp_path, "intel-rapl:0", 1_000)
    monkeypatch.setattr(sources, "RAPL_ROOT", tmp_path)
    monkeypatch.setattr(sources, "RaplSource", lambda: RaplSource(root=tmp_path))
    assert isinstance(sources.open_source([], 1_000), RaplSource)
    (tmp_path / "intel-rapl:0" / "energy_uj").unlink()  # unreadable: the estimate, and why
    with caplog.at_level(logging.INFO, logger=sources.__name__):
        source = sources.open_source([], 1_000)
    assert isinstance(source, sources.EstimateSource)
    assert [r.getMessage() for r in caplog.records] == [
        "RAPL not usable (RAPL counters not readable: [Errno 2] No such file or directory: "
        f"'{tmp_path / 'intel-rapl:0' / 'energy_uj'}'); falling back to the work estimate",
        "no GPU and no RAPL counter: energy is an ESTIMATE "
        f"(2 x 1000 parameters x tokens processed x {sources.ESTIMATE_J_PER_FLOP:g} J per FLOP)",
    ]
    assert [r.levelname for r in caplog.records] == ["INFO", "WARNING"]


def test_host_counter_power_is_the_counter_slope_between_samples(tmp_path, monkeypatch):
    clock = iter([100.0, 100.5, 100.5, 101.5, 102.5])
    monkeypatch.setattr(sources.time, "monotonic", lambda: next(clock))
    zone = rapl_zone(tmp_path, "intel-rapl:0", 1_000_000)
    source = RaplSource(root=tmp_path)
    assert source.sample(with_energy=True) == [PowerSample(0.0, None, None, 0.0)]  # no slope yet
    set_uj(zone, 41_000_000)  # 40 J in 0.5 s
    assert source.sample(with_energy=True) == [PowerSample(80.0, None, None, 40.0)]
    set_uj(zone, 42_000_000)  # no time passed: no slope, not a division by zero
    assert source.sample(with_energy=False) == [PowerSample(0.0, None, None, 41.0)]
    set_uj(zone, 72_000_000)  # 30 J in 1 s
    assert source.sample(with_energy=False) == [PowerSample(30.0, None, None, 71.0)]
    assert source.sample(with_energy=False) == [PowerSample(0.0, None, None, 71.0)]  # 1 s, 0 J


# --- a sampler that breaks mid-run ---------------------------------------------------------------
JOULES_PER_BATCH = 5.0


class BreakingSource:
    """Counters the backend drives; power samples that fail after the first ``good`` ones."""

    name = "nvml"
    counter_update_s = 0.001

    def __init__(self, good: int) -> None:
        self.devices = [DeviceInfo("gpu", "scripted", "GPU-0", 0)]
        self.joules = 1_000.0
        self.good = good
        self.sample_calls = 0
        self.broke = threading.Event()

    def read_j(self) -> list[float]:
        return [self.joules]

    def sample(self, *, with_energy: bool) -> list[PowerSample]:
        self.sample_calls += 1
        if self.sample_calls > self.good:
            self.broke.set()
            raise OSError("the driver went away")
        return [PowerSample(200.0, 1980, 40, self.joules if with_energy else None)]

    def gpu_pids(self) -> set[int] | None:
        return None

    trace_checks_counter = True
    known_idle_w = None

    def add_work(self, tokens: int) -> None:
        pass

    def close(self) -> None:
        pass


class CountingBackend(FakeBackend):
    """Each batch adds JOULES_PER_BATCH to the source's counter; the first waits for the break."""

    def __init__(self, source: BreakingSource) -> None:
        super().__init__()
        self.source = source
        self.device_uuids = ["GPU-0"]

    def generate(self, batch, max_new_tokens=None):
        assert self.source.broke.wait(timeout=10), "the sampler never broke"
        time.sleep(0.005)
        self.source.joules += JOULES_PER_BATCH
        return super().generate(batch, max_new_tokens)


def test_a_sampler_that_breaks_mid_run_stops_alone_and_the_counters_measure_on(caplog):
    source = BreakingSource(good=3)
    cfg = load_config(
        "text_generation",
        [
            "backend.model=x",
            "scenario.dataset_name=bundled",
            "scenario.num_samples=4",
            "scenario.warmup_pass=False",
            "scenario.warmup_runs=1",
            "scenario.repeats=2",
            "energy.idle_seconds=0",
            "energy.sample_hz=100",
        ],
    )
    with caplog.at_level(logging.WARNING, logger="energy_bench"):
        data = run_benchmark(
            cfg,
            backend_factory=lambda *_: CountingBackend(source),
            source_factory=lambda *_: source,
        )
    # Every window still has its energy, from the counters, to the joule.
    assert [w.energy_j for w in data.warmups] == [JOULES_PER_BATCH]
    for measured in data.passes:
        m = measured.measurement
        assert m.energy_j == 4 * JOULES_PER_BATCH and m.device_energy_j == (4 * JOULES_PER_BATCH,)
        assert m.trace_energy_j is None and m.trace_samples == 0 and not m.counter_reset
        assert all(r.ok for r in measured.records)
    # The trace holds the readings before the break, and the sampler tried no more after it.
    assert len(data.trace) == 3 and source.sample_calls == 4
    stopped = [r for r in caplog.records if "power sampler stopped" in r.getMessage()]
    assert [r.getMessage() for r in stopped] == ["power sampler stopped: the driver went away"]
    report = build_report(data)
    assert contract.report_problem(report) == ""
    assert report["energy"]["gpu_energy_j"] == 4 * JOULES_PER_BATCH
