"""The energy meter on scripted devices and a scripted clock: which joules land in which window.

Time moves only when a test says so (``Devices.run``), the counters integrate the scripted power
and change only once per counter update, as NVML's do, and the sampler reads them only when it
asks for them (once a second), as the real source does. Every figure is then exact.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

import energy_bench
from energy_bench.energy.meter import (
    COUNTER_SAMPLE_PERIOD_S,
    SHORT_WINDOW_UPDATES,
    TRACE_TOLERANCE,
    EnergyMeter,
    Measurement,
    TraceRow,
    _trace_energy,
    spread,
)
from energy_bench.energy.nvml import PowerSample
from energy_bench.energy.sources import DeviceInfo, EstimateSource, open_source

METER_LOG = "energy_bench.energy.meter"
STEP_S = 0.125  # the scripted sampler period (exact in binary: sums of it stay exact)


class Devices:
    """Scripted GPUs and the clock they share: power per device, counters, resets, processes."""

    name = "nvml"
    trace_checks_counter = True  # power read apart from the counters, as NVML's
    known_idle_w = None

    def __init__(self, watts: list[float], counter_update_s: float = 0.25, base_j: float = 1e6):
        self.t = 0.0
        self.watts = list(watts)
        self.counter_update_s = counter_update_s
        self.energy = [base_j] * len(watts)  # the true cumulative energy since the last reset
        self.trace_factor = [1.0] * len(watts)  # what the sampler shows against the truth
        self.devices = [DeviceInfo("gpu", f"fake{i}", f"GPU-{i}", i) for i in range(len(watts))]
        self.pids: set[int] | None = {os.getpid()}
        self.synced = 0
        self.meter: EnergyMeter | None = None

    # the clock
    def now(self) -> float:
        return self.t

    def run(self, seconds: float, watts: list[float] | None = None) -> None:
        """Let ``seconds`` pass at ``watts`` (default: the current power), sampling each step."""
        if watts is not None:
            self.watts = list(watts)
        steps = round(seconds / STEP_S)
        assert steps * STEP_S == seconds, "scripted time moves in whole sampler steps"
        for _ in range(steps):
            self.t += STEP_S
            self.energy = [e + w * STEP_S for e, w in zip(self.energy, self.watts, strict=True)]
            if self.meter is not None:
                self.meter.sample()

    def reset(self) -> None:
        """The driver restarts its counters from zero (as after a reset or a reload)."""
        self.energy = [0.0] * len(self.energy)

    # the source
    def read_j(self) -> list[float]:
        """The counters as last updated: they move once per ``counter_update_s``."""
        if self.counter_update_s == 0:
            return list(self.energy)
        ticks = self.t / self.counter_update_s
        late = (ticks - int(ticks)) * self.counter_update_s
        return [e - w * late for e, w in zip(self.energy, self.watts, strict=True)]

    def sample(self, *, with_energy: bool) -> list[PowerSample]:
        counters = self.read_j() if with_energy else [None] * len(self.watts)
        shown = [w * f for w, f in zip(self.watts, self.trace_factor, strict=True)]
        return [PowerSample(w, 1980, 40, e) for w, e in zip(shown, counters, strict=True)]

    def gpu_pids(self) -> set[int] | None:
        return None if self.pids is None else set(self.pids)

    def close(self) -> None:
        pass


def scripted_meter(devices: Devices) -> EnergyMeter:
    """A meter on ``devices`` whose every reading happens at a scripted time."""

    def synchronize() -> None:
        devices.synced += 1

    meter = EnergyMeter(
        devices, synchronize=synchronize, clock=devices.now, sleep=devices.run, background=False
    )
    devices.meter = meter
    return meter


def test_a_window_holds_exactly_its_own_joules_per_device():
    devices = Devices([100.0, 50.0], counter_update_s=0)
    meter = scripted_meter(devices)
    devices.run(1.0, [300.0, 300.0])  # before the window: not in it
    with meter.window("work") as w:
        devices.run(2.0, [100.0, 50.0])
    devices.run(1.0, [300.0, 300.0])  # after it: not in it either
    m = w.measurement
    assert (m.name, m.start_s, m.duration_s) == ("work", 1.0, 2.0)
    assert m.device_energy_j == (200.0, 100.0)
    assert (m.energy_j, m.average_power_w, m.energy_wh) == (300.0, 150.0, 300.0 / 3600)
    assert devices.synced == 2  # before the start read and before the end read
    assert m.trace_samples == 2 * 17  # both devices, a sample every 0.125 s, both ends too
    assert not m.counter_reset and not m.short_window


def test_the_idle_baseline_is_its_own_window_of_the_asked_length():
    devices = Devices([80.0], counter_update_s=0)
    meter = scripted_meter(devices)
    idle = meter.measure_idle(3.0)
    with meter.window("repeat_0"):
        devices.run(1.0, [400.0])
    assert idle is not None
    assert (idle.name, idle.duration_s, idle.energy_j) == ("idle_baseline", 3.0, 240.0)
    labels = {(row.window, row.power_w) for row in meter.trace()}
    assert labels == {("idle_baseline", 80.0), ("repeat_0", 400.0)}
    assert meter.measure_idle(0) is None
    assert meter.measure_idle(0.5).duration_s == 0.5  # under a second is still measured


def test_a_window_is_short_below_ten_counter_updates_not_at_ten():
    devices = Devices([100.0], counter_update_s=0.25)  # ten updates: 2.5 s
    meter = scripted_meter(devices)
    with meter.window("at") as at:
        devices.run(SHORT_WINDOW_UPDATES * 0.25)
    with meter.window("below") as below:
        devices.run(SHORT_WINDOW_UPDATES * 0.25 - STEP_S)
    assert SHORT_WINDOW_UPDATES == 10
    assert not at.measurement.short_window
    assert below.measurement.short_window


def test_counters_that_move_in_steps_give_the_energy_of_whole_updates():
    devices = Devices([100.0], counter_update_s=0.25)
    meter = scripted_meter(devices)
    devices.run(0.125)  # the window opens mid-update: the counter still shows t = 0
    with meter.window("w") as w:
        devices.run(1.0)  # it closes at 1.125 s: the counter shows t = 1.0
    assert w.measurement.energy_j == 100.0


@pytest.mark.parametrize(
    ("factor", "flagged"), [(1.049, False), (1.05, False), (0.951, False), (1.051, True)]
)
def test_the_trace_check_flags_disagreement_above_five_percent(factor, flagged):
    devices = Devices([200.0], counter_update_s=0)
    devices.trace_factor = [factor]
    meter = scripted_meter(devices)
    with meter.window("work") as w:
        devices.run(2.0)
    m = w.measurement
    assert TRACE_TOLERANCE == 0.05
    assert m.trace_deviation == pytest.approx(factor - 1)
    assert m.trace_mismatch is flagged
    assert m.energy_j == 400.0  # the counters decide the energy, the trace only checks it


def test_the_trace_check_holds_per_gpu():
    # GPU 1's trace reads double its counter; summed with a busy GPU 0 the total differs by
    # under 2 % and would pass: the check is made device by device.
    devices = Devices([700.0, 10.0], counter_update_s=0)
    devices.trace_factor = [1.0, 2.0]
    meter = scripted_meter(devices)
    with meter.window("work") as w:
        devices.run(2.0)
    m = w.measurement
    assert m.device_trace_deviation == (pytest.approx(0.0), pytest.approx(1.0))
    assert m.trace_mismatch and m.trace_deviation == m.device_trace_deviation[1]


def test_the_sampler_reads_the_counter_once_a_second_not_every_sample():
    devices = Devices([100.0], counter_update_s=0)
    meter = scripted_meter(devices)
    devices.run(4.0)  # 32 samples
    with_counter = [row.t_s for row in meter.trace() if row.energy_j is not None]
    assert COUNTER_SAMPLE_PERIOD_S == 1.0
    assert with_counter == [0.125, 1.0, 2.0, 3.0, 4.0]  # the first sample reads it
    assert len(meter.trace()) == 32


def test_a_reset_the_end_reading_shows_takes_the_trace_energy_per_gpu(caplog):
    devices = Devices([100.0, 300.0], counter_update_s=0, base_j=5000.0)
    meter = scripted_meter(devices)
    with caplog.at_level("WARNING", logger=METER_LOG), meter.window("work") as w:
        devices.run(1.0)
        devices.reset()
        devices.run(1.0)  # the end reading (100 J, 300 J) is below the start one
    assert [r.getMessage() for r in caplog.records] == ["energy counter reset during window 'work'"]
    m = w.measurement
    assert m.counter_reset
    assert m.device_energy_j == (pytest.approx(200.0), pytest.approx(600.0))
    assert m.energy_j == pytest.approx(800.0)
    assert m.trace_deviation is None  # nothing to check the trace against


def test_a_reset_only_the_sampled_counters_show_is_found_too():
    # The end reading is above the start one, but a counter reading that the sampler took inside
    # the window went down: the window takes the trace's energy.
    devices = Devices([5000.0], counter_update_s=0, base_j=1000.0)
    meter = scripted_meter(devices)
    devices.run(0.875)
    with meter.window("work") as w:  # starts at 5375 J
        devices.run(0.375)  # the sampler reads the counter at 1.0 s: 6000 J
        devices.reset()
        devices.run(1.375)  # ... and at 2.0 s: 3750 J; the window ends at 6875 J
    m = w.measurement
    assert m.counter_reset
    assert m.energy_j == pytest.approx(5000.0 * 1.75)


def test_a_reset_no_reading_saw_leaves_the_window_flagged_by_the_trace_check():
    # With no counter reading between the window's ends and an end reading above the start one,
    # only the trace can tell: the counters lose the energy drawn before the reset, and the trace
    # disagrees far above tolerance, so the window is suspect and is not rated.
    devices = Devices([100.0], counter_update_s=0, base_j=0.0)
    meter = scripted_meter(devices)
    devices.run(1.0)  # the sampler read the counter at 1.0 s; it reads it next at 2.0 s
    with meter.window("work") as w:  # starts at 100 J
        devices.run(0.125, [5000.0])  # 725 J
        devices.reset()
        devices.run(0.75)  # ends at 3750 J
    m = w.measurement
    assert not m.counter_reset  # the limit: nothing the meter read went down
    assert m.energy_j == pytest.approx(3650.0)  # the true energy is 4375 J
    assert m.trace_mismatch and m.trace_deviation > 2 * TRACE_TOLERANCE


@pytest.mark.parametrize("own_pid_visible", [True, False])
def test_a_process_that_appears_on_the_gpu_makes_the_window_suspect(own_pid_visible, caplog):
    devices = Devices([100.0])
    devices.pids = {os.getpid()} if own_pid_visible else {77}  # in a container: other PIDs
    meter = scripted_meter(devices)
    with meter.window("alone") as alone:
        devices.run(0.25)
    with caplog.at_level("WARNING", logger=METER_LOG), meter.window("shared") as shared:
        devices.pids = devices.pids | {4242, 99}
        devices.run(0.25)
    assert [r.getMessage() for r in caplog.records] == [
        "window 'shared': other processes on the run's GPUs: [99, 4242]"
    ]
    devices.pids = devices.pids - {4242, 99}
    with meter.window("after") as after:
        devices.run(0.25)
    assert not alone.measurement.foreign_process
    assert shared.measurement.foreign_pids == (99, 4242)
    assert not after.measurement.foreign_process  # they left before this window began


def test_a_gpu_whose_processes_cannot_be_listed_is_not_flagged():
    devices = Devices([100.0])
    devices.pids = None  # NVML cannot list processes (some virtual GPUs)
    meter = scripted_meter(devices)
    with meter.window("work") as w:
        devices.run(0.25)
    assert not w.measurement.foreign_process


def test_window_closes_on_exception():
    meter = scripted_meter(Devices([10.0]))
    with pytest.raises(RuntimeError), meter.window("boom") as w:
        raise RuntimeError("x")
    assert w.measurement is not None and w.measurement.name == "boom"
    with meter.window("boom"), pytest.raises(ValueError, match="already open"):
        meter.begin_window("boom")  # the name is free again, until it is opened


def test_the_background_sampler_samples_and_stops_on_close():
    devices = Devices([100.0], counter_update_s=0)
    meter = EnergyMeter(devices, sample_hz=200)
    deadline = time.monotonic() + 5
    while len(meter.trace()) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    meter.close()
    count = len(meter.trace())
    assert count >= 3 and meter.trace()[0].energy_j is not None  # the first reads the counter
    time.sleep(0.05)
    assert len(meter.trace()) == count
    assert not meter._thread.is_alive()
    # An unclosed meter never holds the process: the subprocess test below shows it; this line
    # checks the same here, where a test of the meter's own process can see it.
    assert meter._thread.daemon
    assert meter.sampler_wall_s > 0


def test_a_failing_sampler_stops_alone_and_the_counters_keep_measuring(caplog):
    devices = Devices([100.0], counter_update_s=0)

    def broken(*, with_energy: bool) -> list[PowerSample]:
        raise OSError("the driver went away")

    devices.sample = broken
    meter = EnergyMeter(devices, sample_hz=200)
    meter._thread.join(timeout=5)
    assert not meter._thread.is_alive()
    with meter.window("work") as w:
        devices.t += 2.0
        devices.energy = [e + 200.0 for e in devices.energy]
    meter.close()
    assert w.measurement.energy_j == 200.0 and w.measurement.trace_energy_j is None
    assert meter.sampler_wall_s > 0  # its time is still told
    assert "power sampler stopped: the driver went away" in caplog.text


def test_no_gpu_gives_a_labelled_estimate_never_zero():
    source = open_source([], 1_000_000)
    assert source.name in ("rapl", "estimate")
    if source.name == "estimate":
        assert "estimate" in source.devices[0].name
    meter = EnergyMeter(source, sample_hz=20)
    try:
        with meter.window("busy") as w:
            source.add_work(500)  # what the estimate counts; RAPL counts the loop below
            end = time.process_time() + 0.2
            while time.process_time() < end:
                pass
    finally:
        meter.close()
    assert w.measurement.source == source.name
    assert w.measurement.energy_j > 0


def test_the_estimate_counts_work_done_not_time_spent():
    source = EstimateSource(parameters=3_000_000)
    assert "3,000,000 parameters" in source.devices[0].name
    assert source.devices[0].kind == "cpu"  # as results show it: not a GPU
    end = time.process_time() + 0.1
    while time.process_time() < end:  # busy, but no work reported: nothing counted
        pass
    assert source.read_j() == [0.0]
    source.add_work(100)  # 2 x 3e6 parameters x 100 tokens x 1e-9 J per FLOP
    assert source.read_j()[0] == pytest.approx(0.6, rel=1e-12)
    source.add_work(50)
    assert source.read_j()[0] == pytest.approx(0.9, rel=1e-12)


def test_spread():
    mean, std, cv = spread([10.0, 12.0, 14.0])
    assert (mean, std, cv) == (12.0, 2.0, pytest.approx(2 / 12))
    assert spread([5.0]) == (5.0, 0.0, 0.0)
    assert spread([10.0, 14.0]) == (12.0, pytest.approx(2**1.5), pytest.approx(2**1.5 / 12))
    assert spread([]) == (0.0, 0.0, 0.0)
    assert spread([0.0, 0.0]) == (0.0, 0.0, 0.0)  # no energy: no spread, not a division by 0


def trace(device: int, *points: tuple[float, float]) -> list[TraceRow]:
    return [TraceRow(t, device, "w", power, None, None, None) for t, power in points]


# Device 0 samples at 10, 11, 12 and 13 s; device 1 at 10.5, 11.5, 12.5.
ROWS = trace(0, (10.0, 100.0), (11.0, 200.0), (12.0, 300.0), (13.0, 50.0)) + trace(
    1, (10.5, 40.0), (11.5, 60.0), (12.5, 80.0)
)


def test_the_trace_integral_interpolates_power_at_the_window_edges():
    # Device 0 over [10.5, 12.5]: 150 W at 10.5 and 175 W at 12.5 (between the samples around
    # each edge), so 0.5 s at (150+200)/2, 1 s at 250, 0.5 s at (300+175)/2. Device 1 has its
    # samples on the edges themselves.
    energies, samples = _trace_energy(ROWS, 10.5, 12.5, 2)
    assert energies == [87.5 + 250.0 + 118.75, 50.0 + 70.0]
    assert samples == 2 + 3


def test_the_trace_integral_holds_power_outside_the_samples_and_starts_on_one():
    # [10, 13.5] on device 0: the window starts on the first sample and ends after the last,
    # where the last power (50 W) is held.
    energies, samples = _trace_energy(ROWS, 10.0, 13.5, 1)
    assert energies == [150.0 + 250.0 + 175.0 + 25.0]
    assert samples == 4
    # [9.5, 11.5] on a device whose samples start at 10.5: its first power (40 W) is held.
    energies, _ = _trace_energy(trace(0, (10.5, 40.0), (11.5, 60.0)), 9.5, 11.5, 1)
    assert energies == [40.0 + 50.0]


def test_the_trace_integral_interpolates_between_samples_half_a_second_apart():
    # 150 W at 10.25, half way between samples 0.5 s apart: 0.25 s at 175 W, 0.5 s at 250 W.
    rows = trace(0, (10.0, 100.0), (10.5, 200.0), (11.0, 300.0))
    assert _trace_energy(rows, 10.25, 11.0, 1) == ([0.25 * 175.0 + 0.5 * 250.0], 2)


def test_a_window_with_fewer_than_two_samples_of_any_device_has_no_trace():
    assert _trace_energy(ROWS, 10.6, 11.4, 2) == ([None, None], 0)  # device 1 has none inside
    assert _trace_energy(ROWS, 10.9, 11.6, 2) == ([None, None], 0)  # one each


def test_samples_at_the_same_instant_are_not_a_slope():
    rows = trace(0, (10.0, 100.0), (10.0, 300.0), (11.0, 300.0))
    energies, samples = _trace_energy(rows, 10.0, 11.0, 1)
    assert (energies, samples) == ([300.0], 3)  # not a division by the zero time between


def test_a_window_as_a_dict_names_every_figure():
    m = Measurement(
        name="repeat_0", start_s=1.0, duration_s=4.0, energy_j=7200.0,
        device_energy_j=(5000.0, 2200.0), source="nvml", short_window=True, counter_reset=True,
        trace_energy_j=7000.0, trace_deviation=-0.08, trace_samples=40,
        device_trace_deviation=(-0.07, None), foreign_pids=(99,),
    )  # fmt: skip
    assert m.to_dict() == {
        "name": "repeat_0", "duration_s": 4.0, "energy_j": 7200.0, "energy_wh": 2.0,
        "average_power_w": 1800.0, "device_energy_j": [5000.0, 2200.0], "source": "nvml",
        "short_window": True, "counter_reset": True, "trace_energy_j": 7000.0,
        "trace_deviation": -0.08, "device_trace_deviation": [-0.07, None], "trace_samples": 40,
        "foreign_pids": [99],
    }  # fmt: skip
    assert (m.trace_mismatch, m.foreign_process) == (True, True)
    assert replace(m, duration_s=0.0).average_power_w == 0.0


def test_samples_are_labelled_with_the_innermost_open_window_then_idle():
    devices = Devices([100.0], counter_update_s=0)
    meter = scripted_meter(devices)
    devices.run(0.25)
    with meter.window("outer"):
        devices.run(0.25, [200.0])
        with meter.window("inner"):
            devices.run(0.25, [300.0])
        devices.run(0.25, [400.0])
    devices.run(0.25, [500.0])
    labels = sorted({(row.window, row.power_w) for row in meter.trace()}, key=lambda x: x[1])
    assert labels == [
        ("idle", 100.0), ("outer", 200.0), ("inner", 300.0), ("outer", 400.0), ("idle", 500.0),
    ]  # fmt: skip


def test_the_window_deviation_is_the_device_furthest_off_with_its_sign():
    devices = Devices([100.0, 100.0], counter_update_s=0)
    devices.trace_factor = [0.97, 1.02]  # the trace shows 3 % less on one, 2 % more on the other
    meter = scripted_meter(devices)
    devices.run(1.0)  # the clock starts away from zero: the window's own times count
    with meter.window("work") as w:
        devices.run(2.0)
    m = w.measurement
    assert m.device_trace_deviation == (pytest.approx(-0.03), pytest.approx(0.02))
    assert m.trace_deviation == pytest.approx(-0.03)
    assert m.trace_energy_j == pytest.approx(194.0 + 204.0)
    assert not m.trace_mismatch


def test_a_device_that_used_under_a_joule_is_still_checked_and_none_is_not_a_reset():
    devices = Devices([0.25, 100.0], counter_update_s=0)
    devices.trace_factor = [1.1, 1.0]
    meter = scripted_meter(devices)
    with meter.window("work") as w:
        devices.run(2.0)
    m = w.measurement
    assert m.device_energy_j == (0.5, 200.0)
    assert m.device_trace_deviation[0] == pytest.approx(0.1)  # 0.5 J is a figure, not nothing
    assert not m.counter_reset
    devices.watts = [0.0, 100.0]  # a device that used nothing: not a reset either
    with meter.window("idle_gpu") as w:
        devices.run(1.0)
    assert w.measurement.device_energy_j[0] == 0.0 and not w.measurement.counter_reset


def test_a_window_on_a_clock_that_did_not_start_at_zero_is_placed_on_the_meter_s_time():
    devices = Devices([100.0], counter_update_s=0)
    devices.t = 1000.0  # a monotonic clock reads the time since boot, never zero
    meter = scripted_meter(devices)
    devices.run(1.0)
    with meter.window("work") as w:
        devices.run(2.0, [200.0])
    m = w.measurement
    assert (m.start_s, m.duration_s, m.energy_j) == (1.0, 2.0, 400.0)
    # The trace ramps from the 100 W sample at the start to 200 W at the next one: 6.25 J less.
    assert (m.trace_energy_j, m.trace_samples) == (393.75, 17)


def test_a_reset_with_no_trace_to_stand_in_counts_the_fallen_counter_as_nothing():
    devices = Devices([100.0, 100.0], counter_update_s=0)
    meter = scripted_meter(devices)
    devices.run(1.0)
    meter.begin_window("instant")
    devices.energy = [0.0, devices.energy[1] + 5.0]  # GPU 0's counter restarts, GPU 1 moves on
    m = meter.end_window("instant")  # no time passed: no trace inside the window
    assert (m.counter_reset, m.trace_energy_j) == (True, None)
    assert (m.device_energy_j, m.energy_j) == ((0.0, 5.0), 5.0)


def test_a_process_already_on_the_gpu_is_foreign_where_the_benchmark_sees_its_own_pid():
    devices = Devices([100.0])
    devices.pids = {os.getpid(), 77}  # 77 was there before the meter started
    meter = scripted_meter(devices)
    with meter.window("work") as w:
        devices.run(0.25)
    assert w.measurement.foreign_pids == (77,)
    devices.pids = {77}  # in a container the benchmark's own PID is not shown: 77 was there
    contained = scripted_meter(devices)
    with contained.window("work") as w:
        devices.run(0.25)
    assert not w.measurement.foreign_process


def test_the_trace_keeps_each_reading_s_clock_and_temperature_and_no_sampler_time_is_told():
    devices = Devices([100.0, 50.0])
    meter = scripted_meter(devices)
    devices.run(0.25)
    rows = meter.trace()
    assert [(r.device, r.power_w, r.sm_clock_mhz, r.temperature_c) for r in rows[:2]] == [
        (0, 100.0, 1980, 40),
        (1, 50.0, 1980, 40),
    ]
    assert meter.sampler_cpu_s == meter.sampler_wall_s == 0.0  # no sampler thread ran


def test_a_counter_read_at_the_window_start_is_the_first_the_reset_check_compares_and_gaps_skip():
    from energy_bench.energy.meter import _counter_fell

    def row(t, joules):
        return TraceRow(t, 0, "w", 100.0, None, None, joules)

    assert _counter_fell([row(1.0, 900.0), row(2.0, 5.0)], start=1.0)  # fell from the start's
    assert not _counter_fell([row(0.5, 900.0), row(2.0, 5.0)], start=1.0)  # before it: not
    assert not _counter_fell([row(1.0, 900.0), row(2.0, None), row(3.0, 950.0)], start=1.0)


def test_the_background_sampler_keeps_its_rate_and_tells_its_own_time():
    hz = 100
    begun = time.monotonic()
    meter = EnergyMeter(Devices([100.0], counter_update_s=0), sample_hz=hz)
    time.sleep(0.5)
    meter.close()
    elapsed = time.monotonic() - begun
    samples = len(meter.trace())
    assert 0.7 * elapsed * hz <= samples <= elapsed * hz + 2, (samples, elapsed)
    assert 0 < meter.sampler_wall_s <= elapsed
    assert 0 <= meter.sampler_cpu_s <= meter.sampler_wall_s


def test_close_does_not_wait_for_ever_on_a_sampler_stuck_in_the_driver(monkeypatch, caplog):
    from energy_bench.energy import meter as meter_module

    monkeypatch.setattr(meter_module, "SAMPLER_STOP_S", 0.05)
    devices, stuck, release = Devices([100.0]), threading.Event(), threading.Event()
    closed = []

    def hangs(*, with_energy: bool) -> list[PowerSample]:
        stuck.set()
        release.wait(30)  # a driver call that does not return
        return []

    devices.sample = hangs
    devices.close = lambda: closed.append(True)
    meter = EnergyMeter(devices, sample_hz=100)
    assert stuck.wait(10)
    begun = time.monotonic()
    with caplog.at_level("WARNING", logger=METER_LOG):
        meter.close()
    assert time.monotonic() - begun < 5
    assert closed == []  # the driver is not shut down beneath the call still in it
    assert [r.getMessage() for r in caplog.records] == [
        "power sampler did not stop in 0.05 s; its source is left open"
    ]
    release.set()
    meter._thread.join(10)
    EnergyMeter(devices, background=False).close()
    assert closed == [True]  # a sampler that stopped: the source is released


def test_a_meter_left_open_does_not_keep_the_benchmark_from_exiting():
    code = (
        "from energy_bench.energy.meter import EnergyMeter\n"
        "from energy_bench.energy.sources import EstimateSource\n"
        "EnergyMeter(EstimateSource(1000), sample_hz=100)\n"
        "print('left')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(
            [str(Path(energy_bench.__file__).parents[1]), os.environ.get("PYTHONPATH", "")])},
    )  # fmt: skip
    assert (done.returncode, done.stdout) == (0, "left\n")
