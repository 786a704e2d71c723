"""The pass loop and its report on a device whose joules come only from the work done.

Each generated prompt costs the device exactly ``J_PER_PROMPT`` joules, preprocessing costs
``J_PREPARE`` and waiting costs ``IDLE_W`` per second, so a test can say which joules land in
which window: the warmup outside every measured one, each measured pass exactly one pass.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import ClassVar

import pytest
from fakes import FakeBackend

from energy_bench import benchmark
from energy_bench.backends.base import Batch, Generation
from energy_bench.benchmark import PromptRecord, RunData, run_benchmark
from energy_bench.config import load_config
from energy_bench.energy.nvml import PowerSample
from energy_bench.energy.sources import DeviceInfo
from energy_bench.errors import BenchmarkAborted, OutOfMemory
from energy_bench.results.report import build_report

J_PER_PROMPT = 10.0
J_PREFILL = 1.5
J_PREPARE = 3.0
PROMPTS = 6


class WorkDevice:
    """One GPU whose counter moves only when the backend works."""

    name = "nvml"
    counter_update_s = 0.0

    def __init__(self) -> None:
        self.devices = [DeviceInfo("gpu", "fake", "GPU-0", 0)]
        self.energy_j = 0.0

    def read_j(self) -> list[float]:
        return [self.energy_j]

    def sample(self, *, with_energy: bool) -> list[PowerSample]:
        return [PowerSample(100.0, 1980, 40, self.energy_j if with_energy else None)]

    def gpu_pids(self) -> set[int] | None:
        return None

    trace_checks_counter = True
    known_idle_w = None

    def add_work(self, tokens: int) -> None:
        pass

    def close(self) -> None:
        pass


class WorkBackend(FakeBackend):
    """Batches of one prompt; a generate costs the device its joules; chosen calls fail.

    A full call costs ``J_PER_PROMPT`` per prompt, a prefill call (one new token)
    ``J_PREFILL``.
    """

    def __init__(self, device: WorkDevice, fail_calls: set[int] = frozenset()) -> None:
        super().__init__()
        self.device, self.fail_calls = device, set(fail_calls)
        self.device_uuids = ["GPU-0"]

    def prepare(self, prompts):
        self.device.energy_j += J_PREPARE
        return [Batch((i,), None, (5 + i,)) for i in range(len(prompts))]

    def generate(self, batch: Batch, max_new_tokens: int | None = None) -> Generation:
        gen = super().generate(batch, max_new_tokens)
        if self.calls in self.fail_calls:
            raise RuntimeError(f"failed call {self.calls}")
        cost = J_PREFILL if max_new_tokens == 1 else J_PER_PROMPT
        self.device.energy_j += cost * len(batch.indices)
        return gen


def run(fail_calls: set[int] = frozenset(), **settings: object) -> tuple[RunData, WorkBackend]:
    items = {
        "backend.model": "x",
        "scenario.dataset_name": "bundled",
        "scenario.num_samples": PROMPTS,
        "scenario.repeats": 3,
        "energy.idle_seconds": 0,
        **settings,
    }
    config = load_config("text_generation", [f"{k}={v}" for k, v in items.items()])
    device = WorkDevice()
    backend = WorkBackend(device, fail_calls)
    data = run_benchmark(
        config, backend_factory=lambda *_: backend, source_factory=lambda *_: device
    )
    return data, backend


def test_the_warmup_pass_is_outside_every_measured_pass():
    data, backend = run()
    one_pass = PROMPTS * J_PER_PROMPT
    assert [w.name for w in data.warmups] == ["warmup_pass"]
    assert data.warmups[0].energy_j == one_pass
    assert [p.measurement.name for p in data.passes] == ["repeat_0", "repeat_1", "repeat_2"]
    assert [p.measurement.energy_j for p in data.passes] == [one_pass] * 3
    assert data.preprocess is not None and data.preprocess.energy_j == J_PREPARE
    assert backend.calls == 7 * PROMPTS  # the warmup pass, three measured ones, three prefills
    report = build_report(data)
    assert report["energy"]["gpu_energy_j"] == one_pass
    assert report["energy"]["wh_per_1000_queries"] == pytest.approx(one_pass / 3.6 / PROMPTS)
    assert report["summary"]["warmup"] == "full pass"


def test_warmup_batches_are_outside_every_measured_pass_too():
    data, backend = run(**{"scenario.warmup_pass": False, "scenario.warmup_runs": 2})
    assert [(w.name, w.energy_j) for w in data.warmups] == [
        ("warmup_0", J_PER_PROMPT), ("warmup_1", J_PER_PROMPT),
    ]  # fmt: skip
    assert [p.measurement.energy_j for p in data.passes] == [PROMPTS * J_PER_PROMPT] * 3
    assert backend.calls == 2 + 6 * PROMPTS


def test_every_measured_pass_starts_from_the_same_seed():
    _, backend = run(**{"scenario.seed": 7})
    assert backend.seeds == [7] * 7  # the warmup, each of the three passes and their prefills


def test_the_report_counts_the_prompts_of_its_worst_pass():
    # Call 8 is the second prompt of the first measured pass (the warmup makes calls 1 to 6,
    # its prefill pass 13 to 18), calls 20 and 21 two prompts of the second; the third pass has
    # none failed.
    data, _ = run(fail_calls={8, 20, 21})
    ok = [sum(r.ok for r in p.records) for p in data.passes]
    assert ok == [PROMPTS - 1, PROMPTS - 2, PROMPTS]
    summary = build_report(data)["summary"]
    assert summary["successful_prompts"] == PROMPTS - 2
    assert summary["failed_prompts"] == 2
    assert summary["total_prompts"] == PROMPTS
    energy = build_report(data)["energy"]
    passes = [p["energy_j"] for p in energy["repeats"]]
    assert passes == [(PROMPTS - 1) * 10.0, (PROMPTS - 2) * 10.0, PROMPTS * 10.0]
    mean_j = sum(passes) / 3
    assert energy["wh_per_1000_queries"] == pytest.approx(mean_j / 3.6 / (PROMPTS - 2))
    assert [p["successful_prompts"] for p in energy["repeats"]] == ok


def test_a_failed_prompt_s_tokens_are_not_counted():
    data, _ = run(fail_calls={7}, **{"scenario.repeats": 1})
    report = build_report(data)
    assert report["summary"]["total_completion_tokens"] == 10 * (PROMPTS - 1)
    assert report["summary"]["total_prompt_tokens"] == sum(5 + i for i in range(1, PROMPTS))


def test_the_work_told_to_the_source_is_the_backend_s_own_count_or_else_every_token():
    class Counting(WorkDevice):
        """A source that counts work done (as the estimate does)."""

        def __init__(self) -> None:
            super().__init__()
            self.work: list[int] = []

        def add_work(self, tokens: int) -> None:
            self.work.append(tokens)

    class Weighing(WorkBackend):
        """Its even calls say what work they did (as an image pipeline's denoiser does)."""

        def generate(self, batch: Batch, max_new_tokens: int | None = None) -> Generation:
            gen = super().generate(batch, max_new_tokens)
            return replace(gen, work_tokens=1000 + self.calls) if self.calls % 2 == 0 else gen

    config = text_config(
        "scenario.num_samples=2", "scenario.repeats=1", "scenario.warmup_pass=False",
        "scenario.warmup_runs=0",
    )  # fmt: skip
    device = Counting()
    run_benchmark(
        config, backend_factory=lambda *_: Weighing(device), source_factory=lambda *_: device
    )
    # The pass (prompts of 5 and 6 tokens, 10 new each), then its prefill (1 new each).
    assert device.work == [5 + 10, 1002, 5 + 1, 1004]


def test_prefill_is_measured_in_its_own_window_after_each_pass_and_decode_is_the_rest():
    data, backend = run()
    one_pass, one_prefill = PROMPTS * J_PER_PROMPT, PROMPTS * J_PREFILL
    assert [p.prefill.name for p in data.passes] == ["prefill_0", "prefill_1", "prefill_2"]
    assert [p.prefill.energy_j for p in data.passes] == [one_prefill] * 3
    assert [p.measurement.energy_j for p in data.passes] == [one_pass] * 3  # no prefill inside
    # The warmup and each pass with the scenario's budget, each prefill pass with one token.
    assert backend.budgets == [None] * PROMPTS + ([None] * PROMPTS + [1] * PROMPTS) * 3
    energy = build_report(data)["energy"]
    assert energy["prefill_wh"] == pytest.approx(one_prefill / 3600)
    assert energy["decode_wh"] == pytest.approx((one_pass - one_prefill) / 3600)
    assert [p["decode_j"] for p in energy["repeats"]] == [one_pass - one_prefill] * 3
    assert energy["prefill_decode_split"].startswith("measured")


def test_the_prefill_pass_counts_no_prompt_of_the_measured_pass():
    # Calls 13 to 18 are the first prefill pass: failing two of them fails no measured prompt.
    data, _ = run(fail_calls={13, 14}, **{"scenario.repeats": 1})
    report = build_report(data)
    assert report["summary"]["successful_prompts"] == PROMPTS
    assert report["energy"]["repeats"][0]["prefill_failed_prompts"] == 2
    assert report["energy"]["repeats"][0]["prefill_j"] == (PROMPTS - 2) * J_PREFILL


def test_two_failed_batches_in_a_row_are_counted_three_abort():
    # Calls 7 to 12 are the first measured pass (the warmup pass makes 1 to 6).
    data, _ = run(fail_calls={7, 8, 10, 11})
    assert [r.ok for r in data.passes[0].records] == [False, False, True, False, False, True]
    assert data.passes[0].records[0].error == "RuntimeError: failed call 7"
    assert [r.ok for r in data.passes[1].records] == [True] * PROMPTS
    with pytest.raises(BenchmarkAborted) as raised:
        run(fail_calls={8, 9, 10})
    assert str(raised.value) == "3 batches in a row failed; last: RuntimeError: failed call 10"


def test_a_pass_whose_every_batch_fails_aborts_even_under_three():
    with pytest.raises(BenchmarkAborted) as raised:
        run(fail_calls={3, 4}, **{"scenario.num_samples": 2})  # warmup: calls 1 and 2
    assert str(raised.value) == "every batch of pass 0 failed; last: RuntimeError: failed call 4"


class OutOfMemoryBackend(WorkBackend):
    def generate(self, batch, max_new_tokens=None):
        if self.calls + 1 in self.fail_calls:
            self.calls += 1
            raise OutOfMemory("CUDA out of memory")
        return super().generate(batch, max_new_tokens)


@pytest.mark.parametrize(("fail", "prompts"), [({7, 8, 9}, PROMPTS), ({3, 4}, 2)])
def test_running_out_of_memory_in_a_row_ends_as_out_of_memory(fail, prompts):
    config = load_config(
        "text_generation",
        ["backend.model=x", "scenario.dataset_name=bundled", f"scenario.num_samples={prompts}",
         "energy.idle_seconds=0"],
    )  # fmt: skip
    device = WorkDevice()
    backend = OutOfMemoryBackend(device, fail)
    with pytest.raises(OutOfMemory, match="CUDA out of memory"):
        run_benchmark(config, backend_factory=lambda *_: backend, source_factory=lambda *_: device)


def test_more_warmup_batches_than_batches_go_round_them():
    data, _ = run(
        fail_calls={5}, **{"scenario.warmup_pass": False, "scenario.warmup_runs": 3,
                           "scenario.num_samples": 2}
    )  # fmt: skip
    assert [w.name for w in data.warmups] == ["warmup_0", "warmup_1", "warmup_2"]
    assert data.passes[0].records[1].error == "RuntimeError: failed call 5"


def test_each_prompt_s_record_says_where_it_ran_and_how_it_ended():
    data, _ = run(fail_calls={8})  # the second prompt of the first measured pass
    first, failed = data.passes[0].records[:2]
    assert first == PromptRecord(0, 0, 0, 5, 10, 0.001, 0.0005, True, "")
    assert failed.error == "RuntimeError: failed call 8"
    assert (failed.repeat, failed.prompt_index, failed.batch_index) == (0, 1, 1)
    assert (failed.prompt_tokens, failed.completion_tokens, failed.ttft_s, failed.ok) == (
        6, 0, None, False,
    )  # fmt: skip
    assert 0 <= failed.latency_s < 1
    assert [r.repeat for r in data.passes[2].records] == [2] * PROMPTS
    assert [r.prompt_index for r in data.passes[2].records] == list(range(PROMPTS))


class ServedBackend(WorkBackend):
    """Batches of two prompts sent as requests of their own; chosen calls fail every request."""

    def prepare(self, prompts):
        self.device.energy_j += J_PREPARE
        return [Batch((i, i + 1), None, (5, 6)) for i in range(0, len(prompts), 2)]

    def generate(self, batch, max_new_tokens=None):
        self.calls += 1
        failing = self.calls in self.fail_calls
        errors = (f"HTTP 503 ({self.calls}a)", f"HTTP 503 ({self.calls}b)") if failing else ()
        return Generation((5, 6), (0, 0) if failing else (10, 10), 0.5, 0.1,
                          latencies_s=(0.25, 0.5), ttfts_s=(0.1, 0.2), errors=errors)  # fmt: skip


def test_a_served_batch_whose_every_request_failed_counts_as_a_failed_batch():
    config = load_config(
        "text_generation",
        ["backend.model=x", "scenario.dataset_name=bundled", f"scenario.num_samples={PROMPTS}",
         "energy.idle_seconds=0", "scenario.repeats=1"],
    )  # fmt: skip
    device = WorkDevice()
    # The warmup pass is calls 1 to 3 (three batches of two), the measured pass 4 to 6.
    backend = ServedBackend(device, {4, 5})
    data = run_benchmark(
        config, backend_factory=lambda *_: backend, source_factory=lambda *_: device
    )
    records = data.passes[0].records
    assert [r.error for r in records[:4]] == [
        "HTTP 503 (4a)",
        "HTTP 503 (4b)",
        "HTTP 503 (5a)",
        "HTTP 503 (5b)",
    ]
    assert records[4] == PromptRecord(0, 4, 2, 5, 10, 0.25, 0.1, True, "")
    backend = ServedBackend(WorkDevice(), {4, 5, 6})
    with pytest.raises(BenchmarkAborted) as raised:
        run_benchmark(config, backend_factory=lambda *_: backend, source_factory=lambda *_: device)
    assert str(raised.value) == "3 batches in a row failed; last: HTTP 503 (6b)"


def test_a_backend_that_loses_a_prompt_s_answer_fails_the_run_not_the_count():
    class Losing(ServedBackend):
        def generate(self, batch, max_new_tokens=None):
            self.calls += 1
            return Generation((5,), (10,), 0.5, 0.1)  # one answer for a batch of two

    config = load_config(
        "text_generation",
        ["backend.model=x", "scenario.dataset_name=bundled", "scenario.num_samples=2",
         "energy.idle_seconds=0", "scenario.repeats=1"],
    )  # fmt: skip
    device = WorkDevice()
    backend = Losing(device)
    with pytest.raises(ValueError, match="zip"):
        run_benchmark(config, backend_factory=lambda *_: backend, source_factory=lambda *_: device)


def test_kept_images_are_numbered_by_their_prompt_when_a_call_fails(tmp_path):
    from PIL import Image

    from energy_bench.benchmark import _run_pass
    from energy_bench.results.files import write_images

    class Pictures(FakeBackend):
        def generate(self, batch: Batch, max_new_tokens: int | None = None) -> Generation:
            (i,) = batch.indices
            if i == 1:
                raise RuntimeError("the pipeline failed on this prompt")
            return Generation((5,), (0,), 0.001, None, images=(Image.new("L", (2, 2), i),))

    backend, kept = Pictures(), []
    batches = backend.prepare(["a", "b", "c", "d"])
    records = _run_pass(backend, WorkDevice(), batches, 0, keep=kept, keep_up_to=3)
    assert [r.ok for r in records] == [True, False, True, True]
    assert [r.images for r in records] == [1, 0, 1, 1]  # one image per prompt that made one
    assert [i for i, _ in kept] == [0, 2]  # the first three prompts' images; prompt 1 made none
    write_images(tmp_path, kept)
    files = sorted((tmp_path / "images").iterdir())
    assert [f.name for f in files] == ["image_0000.png", "image_0002.png"]
    assert Image.open(files[1]).getpixel((0, 0)) == 2  # prompt 2's image under prompt 2's name
    unasked = []  # no number given: no image is kept
    _run_pass(backend, WorkDevice(), batches, 0, keep=unasked)
    assert unasked == []


class Requests(FakeBackend):
    """Batches of three prompts sent as requests of their own; chosen calls fail every request."""

    def __init__(self, fail_calls: set[int]) -> None:
        super().__init__()
        self.fail_calls = fail_calls

    def prepare(self, prompts):
        return [Batch((i, i + 1, i + 2), None, (5, 6, 7)) for i in range(0, len(prompts), 3)]

    def generate(self, batch, max_new_tokens=None):
        self.calls += 1
        failing = self.calls in self.fail_calls
        errors = tuple(f"HTTP 503 ({self.calls}{x})" for x in "abc") if failing else ()
        return Generation((5, 6, 7), (0, 0, 0) if failing else (10, 10, 10), 0.5, 0.1,
                          errors=errors)  # fmt: skip


def test_a_batch_whose_every_request_failed_is_named_by_its_last_request_s_error(caplog):
    from energy_bench.benchmark import _run_pass

    backend = Requests({1, 2})
    batches = backend.prepare(["p"] * 9)
    with caplog.at_level("WARNING", logger="energy_bench.benchmark"):
        records = _run_pass(backend, WorkDevice(), batches, 4)
    assert [r.error for r in records[:3]] == ["HTTP 503 (1a)", "HTTP 503 (1b)", "HTTP 503 (1c)"]
    assert [r.ok for r in records] == [False] * 6 + [True] * 3
    assert [r.getMessage() for r in caplog.records] == [
        "batch 0 of pass 4 failed: HTTP 503 (1c)",
        "batch 1 of pass 4 failed: HTTP 503 (2c)",
    ]


def test_a_pass_whose_every_batch_of_requests_failed_aborts_on_its_last_error():
    from energy_bench.benchmark import _run_pass

    backend = Requests({1, 2})
    with pytest.raises(BenchmarkAborted) as raised:
        _run_pass(backend, WorkDevice(), backend.prepare(["p"] * 6), 0)
    assert str(raised.value) == "every batch of pass 0 failed; last: HTTP 503 (2c)"
    assert isinstance(raised.value.__cause__, BenchmarkAborted)
    assert str(raised.value.__cause__) == "HTTP 503 (2c)"


def test_a_pass_over_no_batch_is_empty_not_failed():
    from energy_bench.benchmark import _run_pass

    assert _run_pass(FakeBackend(), WorkDevice(), [], 0) == []


def test_an_error_without_a_message_is_named_by_its_type():
    from energy_bench.benchmark import _run_pass

    class Silent(FakeBackend):
        def generate(self, batch, max_new_tokens=None):
            super().generate(batch, max_new_tokens)
            if self.calls == 1:
                raise RuntimeError()
            return self.produce(batch, 10)

    backend = Silent()
    records = _run_pass(backend, WorkDevice(), backend.prepare(["a", "b"]), 0)
    assert [(r.ok, r.error) for r in records] == [(False, "RuntimeError: "), (True, "")]


def text_config(*settings: str):
    """The text benchmark's config on the bundled prompts, with no idle wait, and ``settings``."""
    base = ["backend.model=x", "scenario.dataset_name=bundled", "energy.idle_seconds=0"]
    return load_config("text_generation", [*base, *settings])


class Watched(benchmark.EnergyMeter):
    """The benchmark's meter, noting how it was made and the idle time it was asked for."""

    made: ClassVar[list[dict]] = []
    idle_asked: ClassVar[list[float]] = []

    def __init__(self, source, **options):
        Watched.made.append(options)
        super().__init__(source, **options)

    def measure_idle(self, seconds):
        Watched.idle_asked.append(seconds)
        return super().measure_idle(0)  # the length is what is checked; nothing waits


@pytest.fixture
def watched(monkeypatch):
    Watched.made, Watched.idle_asked = [], []
    monkeypatch.setattr(benchmark, "EnergyMeter", Watched)
    return Watched


class Syncing(WorkBackend):
    def __init__(self, device: WorkDevice) -> None:
        super().__init__(device)
        self.syncs = 0

    def synchronize(self) -> None:
        self.syncs += 1


def test_the_run_measures_the_backend_s_devices_at_the_asked_rate_in_sync(watched, caplog):
    config = text_config(
        f"scenario.num_samples={PROMPTS}", "scenario.repeats=2", "energy.idle_seconds=0.25",
        "energy.sample_hz=7",
    )  # fmt: skip
    device, opened = WorkDevice(), []
    backend = Syncing(device)

    def source_factory(uuids, parameters):
        opened.append((list(uuids), parameters))
        return device

    with caplog.at_level("INFO", logger="energy_bench.benchmark"):
        data = run_benchmark(
            config, backend_factory=lambda *_: backend, source_factory=source_factory
        )
    assert opened == [(["GPU-0"], backend.parameters)]
    assert [m["sample_hz"] for m in watched.made] == [7.0]
    assert watched.idle_asked == [0.25]  # the source knows no idle power: it is measured
    windows = ["preprocess", "warmup_pass", "repeat_0", "prefill_0", "repeat_1", "prefill_1"]
    assert [data.preprocess.name, *(w.name for w in data.warmups)] == windows[:2]
    assert [(p.measurement.name, p.prefill.name) for p in data.passes] == [
        tuple(windows[2:4]), tuple(windows[4:]),
    ]  # fmt: skip
    assert backend.syncs == 2 * len(windows)  # at both ends of every window
    started = datetime.fromisoformat(data.started_at)
    assert started.utcoffset() == timedelta(0)
    assert abs(datetime.now(UTC) - started) < timedelta(minutes=5)
    assert isinstance(data.sampler_wall_s, float) and isinstance(data.sampler_cpu_s, float)
    messages = [r.getMessage() for r in caplog.records]
    assert messages[0] == f"{PROMPTS} prompts from {data.prompts.source}"
    assert re.fullmatch(r"pass 1/2: \d+\.\d s, 0\.017 Wh", messages[1])  # 6 prompts of 10 J
    assert re.fullmatch(r"pass 2/2: \d+\.\d s, 0\.017 Wh", messages[2])


def test_a_source_that_knows_its_idle_power_is_not_measured_idle(watched):
    class KnowsIdle(WorkDevice):
        known_idle_w = 30.0

    config = text_config("scenario.num_samples=2", "scenario.repeats=1", "energy.idle_seconds=5")
    device = KnowsIdle()
    run_benchmark(
        config, backend_factory=lambda *_: WorkBackend(device), source_factory=lambda *_: device
    )
    assert watched.idle_asked == [0.0]


class Painter(FakeBackend):
    """An image pipeline: one image per prompt, painted with the number of its call."""

    def generate(self, batch: Batch, max_new_tokens: int | None = None) -> Generation:
        from PIL import Image

        super().generate(batch, max_new_tokens)
        image = Image.new("L", (2, 2), self.calls)
        return Generation((5,), (0,), 0.001, None, images=(image,))


@pytest.mark.parametrize("save", [0, 2])
def test_an_image_run_keeps_the_first_images_of_its_first_measured_pass_only(save):
    config = load_config(
        "image_generation",
        ["backend.model=x", "scenario.dataset_name=bundled", "scenario.num_samples=3",
         "scenario.repeats=2", "scenario.warmup_runs=1", f"scenario.save_images={save}",
         "energy.idle_seconds=0"],
    )  # fmt: skip
    device, backend = WorkDevice(), Painter()
    data = run_benchmark(
        config, backend_factory=lambda *_: backend, source_factory=lambda *_: device
    )
    assert backend.calls == 1 + 3 + 3  # the warmup call, then two passes of three prompts
    assert [r.images for p in data.passes for r in p.records] == [1] * 6
    kept = [(i, image.getpixel((0, 0))) for i, image in data.images]
    assert kept == [(0, 2), (1, 3)][:save]  # calls 2 and 3: the first measured pass's


def test_each_pass_counts_the_graphs_built_in_its_windows_and_numbers_its_prefill():
    class Compiling(WorkBackend):
        """A graph built on every call (as a compiled path would on each new shape)."""

        def graphs_built(self) -> int:
            return self.calls

    config = text_config("scenario.num_samples=2", "scenario.repeats=2")
    device = WorkDevice()
    backend = Compiling(device)
    data = run_benchmark(
        config, backend_factory=lambda *_: backend, source_factory=lambda *_: device
    )
    assert [p.graphs_built for p in data.passes] == [4, 4]  # two prompts, then their prefill
    assert [[r.repeat for r in p.prefill_records] for p in data.passes] == [[0, 0], [1, 1]]
