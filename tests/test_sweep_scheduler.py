"""The sweep's scheduling on a fake runner: slots, failures, resume, force, class C, timing."""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import replace

import pytest
from fakes import failed_report, fake_report, write_report

from energy_bench.contract import REPORT_FILE, RESULT_FILES
from orchestrator.commands.progress import LogProgress
from orchestrator.execution import scheduler
from orchestrator.execution.execute import ExecOptions
from orchestrator.execution.scheduler import run_sweep
from orchestrator.execution.slots import cpu_slots, gpu_slots
from orchestrator.execution.spec import EXIT_CAUSES, Cause, RunOutcome, RunSpec
from orchestrator.models.csv_reader import single_config
from orchestrator.planning.plan import PlanOptions, plan_runs
from orchestrator.store.paths import OutputLayout
from orchestrator.store.records import load_record, load_report

# The exit status with which the benchmark itself ends for each cause it can report.
EXIT_OF = {cause: int(code) for code, cause in EXIT_CAUSES.items()}


class FakeRunner:
    """Sleeps for each run's configured time; fails models whose name contains 'bad'.

    As the real benchmark does, a run that fails by its own exit status leaves a report of status
    "failed" in its results folder; one that never ran or was killed (runner error, SIGKILL)
    leaves none.
    """

    name = "fake"

    def __init__(self, seconds=0.2, fail_cause=Cause.FAILED):
        self.seconds, self.fail_cause = seconds, fail_cause
        self.lock = threading.Lock()
        self.active = self.peak = self.calls = 0
        self.gpus_seen: list[tuple[str, ...]] = []

    def run(self, spec: RunSpec, *, token=None) -> RunOutcome:
        with self.lock:
            self.active += 1
            self.calls += 1
            self.peak = max(self.peak, self.active)
            self.gpus_seen.append(spec.gpu_uuids)
        time.sleep(self.seconds)
        with self.lock:
            self.active -= 1
        if "bad" in spec.overrides[0]:
            code = EXIT_OF.get(self.fail_cause)
            if code is not None:
                write_report(spec.results_dir, failed_report(exit_code=code))
            return RunOutcome(self.fail_cause, code, self.seconds, "it broke")
        write_report(spec.results_dir, fake_report())
        return RunOutcome(Cause.OK, 0, self.seconds)

    def software_id(self, image):
        return "fake"

    def cancel(self):
        pass

    def remove_leftovers(self, out_dir):
        return 0


def plans(names, model_class="A"):
    configs = [single_config(f"org/{n}", model_class=model_class) for n in names]
    return plan_runs(configs, PlanOptions(image="img", software_id="fake"))


def sweep(tmp_path, the_plans, runner, slots, **kw):
    options = ExecOptions(
        out_dir=tmp_path, image="img", retries=kw.pop("retries", 0), retry_wait_s=0
    )
    return run_sweep(
        the_plans, runner=runner, options=options, slots=slots, progress=LogProgress(), **kw
    )


def test_concurrency_never_exceeds_slots_and_failure_is_isolated(tmp_path):
    runner = FakeRunner()
    result = sweep(tmp_path, plans(["m1", "m2", "bad3", "m4", "m5"]), runner, cpu_slots(2))
    assert runner.peak == 2
    statuses = {r.name: r.status for r in result.records}
    assert statuses == {
        "org_m1_Off": "ok",
        "org_m2_Off": "ok",
        "org_bad3_Off": "failed",
        "org_m4_Off": "ok",
        "org_m5_Off": "ok",
    }
    assert [r.name for r in result.failed] == ["org_bad3_Off"]
    assert (tmp_path / "master_results.csv").read_text().count("\n") == 6


def test_resume_skips_completed_and_force_reruns(tmp_path):
    the_plans = plans(["m1", "m2", "bad3"])
    first = FakeRunner()
    sweep(tmp_path, the_plans, first, cpu_slots(1))
    failed = OutputLayout(tmp_path).run_dir("org_bad3_Off")
    assert load_report(failed)["status"] == "failed"  # left by the failure, as the real one does
    again = FakeRunner()
    result = sweep(tmp_path, the_plans, again, cpu_slots(1))
    assert again.calls == 1  # only the failed run is tried again
    assert sorted(result.resumed) == ["org_m1_Off", "org_m2_Off"]
    forced = FakeRunner()
    sweep(tmp_path, the_plans, forced, cpu_slots(1), force=True)
    assert forced.calls == 3


def test_a_run_finished_under_an_earlier_folder_name_is_resumed_once(tmp_path):
    # Earlier versions named Off (N/A) folders "_Off_NA"; the AI Energy Score scripts "_Off_N_A".
    configs = [single_config("org/m1", reasoning_state="Off (N/A)")]
    the_plans = plan_runs(configs, PlanOptions(image="img", software_id="fake"))
    assert the_plans[0].name == "org_m1_Off_N_A"
    sweep(tmp_path, the_plans, FakeRunner(), cpu_slots(1))
    runs = tmp_path / "individual_runs"
    (runs / "org_m1_Off_N_A").rename(runs / "org_m1_Off_NA")  # as an earlier version left it
    again = FakeRunner()
    result = sweep(tmp_path, the_plans, again, cpu_slots(1))
    assert again.calls == 0 and result.resumed == ["org_m1_Off_N_A"]
    assert sorted(p.name for p in runs.iterdir()) == ["org_m1_Off_N_A"]
    assert load_record(runs / "org_m1_Off_N_A").name == "org_m1_Off_N_A"
    assert (tmp_path / "master_results.csv").read_text().count("\n") == 2  # one row


@pytest.mark.parametrize("cause", [Cause.FAILED, Cause.OUT_OF_MEMORY, Cause.CONFIG_ERROR])
def test_a_failed_run_with_its_failed_report_is_rerun_not_resumed(tmp_path, cause):
    """A run folder with a failed record and the failed report is rerun; a complete one is not."""
    the_plans = plans(["m1", "bad2"])
    sweep(tmp_path, the_plans, FakeRunner(seconds=0.01, fail_cause=cause), cpu_slots(1))
    folder = OutputLayout(tmp_path).run_dir("org_bad2_Off")
    before = load_record(folder)
    assert before.status == "failed" and before.cause == cause.value
    report = load_report(folder)  # the failed attempt's report was adopted into the run folder
    assert report["status"] == "failed" and report["error"]["exit_code"] == before.exit_code

    class Fixed(FakeRunner):
        """Every run succeeds now; remembers which runs it was given."""

        def __init__(self):
            super().__init__(seconds=0.01)
            self.models: list[str] = []

        def run(self, spec, *, token=None):
            self.models.append(spec.overrides[0].partition("=")[2])
            write_report(spec.results_dir, fake_report())
            return RunOutcome(Cause.OK, 0, 0.01)

    again = Fixed()
    result = sweep(tmp_path, the_plans, again, cpu_slots(1))
    assert again.models == ["org/bad2"]  # the failed run is retried, the complete one is not
    assert result.resumed == ["org_m1_Off"]
    after = load_record(folder)
    assert after.status == "ok" and after.run_id == before.run_id
    assert load_report(folder)["status"] == "ok"
    third = Fixed()
    assert sorted(sweep(tmp_path, the_plans, third, cpu_slots(1)).resumed) == [
        "org_bad2_Off",
        "org_m1_Off",
    ]
    assert third.models == []


def test_gpu_runs_get_exactly_the_gpus_they_need(tmp_path):
    runner = FakeRunner(seconds=0.1)
    the_plans = plans(["a1", "a2"]) + plans(["c1"], model_class="C")
    sweep(tmp_path, the_plans, runner, gpu_slots(["GPU-0", "GPU-1", "GPU-2"]))
    sizes = sorted(len(g) for g in runner.gpus_seen)
    assert sizes == [1, 1, 2]
    assert all(len(set(g)) == len(g) for g in runner.gpus_seen)


def test_runs_needing_more_gpus_than_exist_are_skipped(tmp_path):
    runner = FakeRunner(seconds=0.01)
    result = sweep(tmp_path, plans(["c1"], model_class="C"), runner, gpu_slots(["GPU-0"]))
    (record,) = result.records
    assert record.status == "skipped" and "needs 2 GPUs" in record.error_message
    assert runner.calls == 0 and not result.failed


def test_max_parallel_caps_concurrency(tmp_path):
    runner = FakeRunner(seconds=0.1)
    sweep(tmp_path, plans([f"m{i}" for i in range(4)]), runner, cpu_slots(4), max_parallel=1)
    assert runner.peak == 1


def test_only_transient_failures_are_retried(tmp_path):
    transient = FakeRunner(seconds=0.01, fail_cause=Cause.RUNNER_ERROR)
    sweep(tmp_path / "t", plans(["bad"]), transient, cpu_slots(1), retries=2)
    assert transient.calls == 3
    oom = FakeRunner(seconds=0.01, fail_cause=Cause.OUT_OF_MEMORY)
    result = sweep(tmp_path / "o", plans(["bad"]), oom, cpu_slots(1), retries=2)
    assert oom.calls == 1 and result.records[0].cause == "out_of_memory"


def test_stale_results_are_removed_before_a_rerun(tmp_path):
    the_plans = plans(["bad"])
    folder = tmp_path / "individual_runs" / "org_bad_Off"
    folder.mkdir(parents=True)
    for name in RESULT_FILES:
        (folder / name).write_text("old")
    sweep(tmp_path, the_plans, FakeRunner(seconds=0.01), cpu_slots(1))
    left = [name for name in RESULT_FILES if (folder / name).exists()]
    assert left == [REPORT_FILE]  # only the failed attempt's own report; nothing stale
    assert load_report(folder)["status"] == "failed"


@pytest.mark.parametrize("slots", [2, 4])
def test_makespan_close_to_ideal(tmp_path, slots):
    durations = [0.3, 0.5, 0.2, 0.4, 0.3, 0.6, 0.2, 0.5]

    class Timed(FakeRunner):
        def run(self, spec, *, token=None):
            self.seconds = durations[int(spec.overrides[0].split("m")[-1])]
            return super().run(spec, token=token)

    the_plans = plans([f"m{i}" for i in range(len(durations))])
    start = time.monotonic()
    sweep(tmp_path, the_plans, Timed(), cpu_slots(slots))
    makespan = time.monotonic() - start
    ideal = max(sum(durations) / slots, max(durations))
    assert makespan < ideal * 1.5 + 0.5, (makespan, ideal)


def test_longest_runs_start_first_once_their_durations_are_known(tmp_path):
    seconds = {"org/quick": 0.02, "org/slow": 0.3, "org/middle": 0.15}

    class Timed(FakeRunner):
        def __init__(self):
            super().__init__()
            self.order: list[str] = []

        def run(self, spec, *, token=None):
            model = spec.overrides[0].partition("=")[2]
            self.order.append(model)
            self.seconds = seconds[model]
            return super().run(spec, token=token)

    the_plans = plans(["quick", "slow", "middle"])
    first = Timed()
    sweep(tmp_path, the_plans, first, cpu_slots(1))
    assert first.order == ["org/quick", "org/slow", "org/middle"]  # equal estimates: CSV order
    again = Timed()
    sweep(tmp_path, the_plans, again, cpu_slots(1), force=True)
    assert again.order == ["org/slow", "org/middle", "org/quick"]
    kept = Timed()
    sweep(tmp_path, the_plans, kept, cpu_slots(1), force=True, order="priority")
    assert kept.order == ["org/quick", "org/slow", "org/middle"]


def test_runs_get_the_cores_of_their_slots(tmp_path):
    runner = FakeRunner(seconds=0.01)
    seen = []
    original = runner.run

    def run(spec, *, token=None):
        seen.append(spec.cpus)
        return original(spec, token=token)

    runner.run = run
    slots = gpu_slots(["GPU-0", "GPU-1"], cpus=range(8))
    sweep(tmp_path, plans(["a1"]) + plans(["c1"], model_class="C"), runner, slots)
    assert sorted(seen) == [(0, 1, 2, 3), (0, 1, 2, 3, 4, 5, 6, 7)]


def test_a_failed_attempt_never_destroys_an_earlier_success(tmp_path):
    from orchestrator.store.master import collect_rows

    the_plans = plans(["m1"])
    sweep(tmp_path, the_plans, FakeRunner(seconds=0.01), cpu_slots(1))
    folder = tmp_path / "individual_runs" / "org_m1_Off"
    good_report = (folder / "benchmark_report.json").read_text()
    good_record = (folder / "run_record.json").read_text()

    class Broken(FakeRunner):
        def run(self, spec, *, token=None):
            (spec.results_dir / "benchmark_report.json").write_text('{"status": "failed"}')
            return RunOutcome(Cause.CONFIG_ERROR, 2, 0.01, "unknown config key 'nmu_samples'")

    result = sweep(tmp_path, the_plans, Broken(seconds=0.01), cpu_slots(1), force=True)
    assert result.records[0].status == "failed" and "nmu_samples" in result.records[0].error_message
    assert (folder / "benchmark_report.json").read_text() == good_report  # kept, untouched
    assert (folder / "run_record.json").read_text() == good_record
    (attempt,) = (folder / "attempts").iterdir()  # the failed attempt, kept for reading
    assert '"failed"' in (attempt / "run_record.json").read_text()
    assert (attempt / "benchmark_report.json").is_file()
    (row,) = collect_rows(tmp_path)
    assert row["status"] == "ok"  # the master CSV still shows the success
    # A later success replaces it, and the kept attempt stays until then.
    sweep(tmp_path, the_plans, FakeRunner(seconds=0.01), cpu_slots(1), force=True)
    assert json.loads((folder / "run_record.json").read_text())["status"] == "ok"


def test_a_mistyped_override_stops_the_sweep_before_it_touches_results(tmp_path):
    import subprocess
    import sys

    from conftest import ROOT, TINY_MODEL

    csv_path = tmp_path / "models.csv"
    csv_path.write_text(
        ",Models to Add,Priority (1=hi),Class,Task,Reasoning State,Chat Template\n"
        f",{TINY_MODEL},1,A,text_gen,Off,\n"
    )
    out = tmp_path / "out"
    base = [
        sys.executable, str(ROOT / "batch_runner.py"), "--csv", str(csv_path),
        "--output-dir", str(out), "--runner", "local", "--no-report", "-n", "2",
        "backend.torch_dtype=float32", "scenario.dataset_name=bundled",
        "scenario.warmup_pass=False", "energy.idle_seconds=0.1",
    ]  # fmt: skip
    env = {**__import__("os").environ, "HF_HUB_OFFLINE": "1"}
    assert subprocess.run(base, capture_output=True, env=env, timeout=300).returncode == 0
    report = out / "individual_runs" / "tiny-model_Off" / "benchmark_report.json"
    good = report.read_text()
    typo = subprocess.run([*base, "scenario.nmu_samples=3"], capture_output=True, env=env,
                          text=True, timeout=300)  # fmt: skip
    # Refused before anything starts, with the key it meant.
    assert typo.returncode == 2 and "did you mean 'scenario.num_samples'" in typo.stderr
    assert "Traceback" not in typo.stdout + typo.stderr
    assert report.read_text() == good
    assert "tiny-model_Off" in (out / "master_results.csv").read_text()
    assert ",ok," in (out / "master_results.csv").read_text()


def test_a_sweep_says_what_it_found_left_by_an_earlier_one(tmp_path, caplog):
    from dataclasses import replace

    from orchestrator.store.records import save_record

    the_plans = plans(["m1", "m2"])
    sweep(tmp_path, the_plans, FakeRunner(seconds=0), cpu_slots(1))
    folder = OutputLayout(tmp_path).run_dir("org_m2_Off")
    save_record(folder, replace(load_record(folder), status="running"))  # its sweep was killed

    class Leftovers(FakeRunner):
        def remove_leftovers(self, out_dir):
            return 2

    with caplog.at_level("WARNING", logger="orchestrator.execution.scheduler"):
        result = sweep(tmp_path, the_plans, Leftovers(seconds=0), cpu_slots(1))
    assert [r.getMessage() for r in caplog.records] == [
        "cleaned up 2 benchmark(s) left behind by an earlier sweep",
        "org_m2_Off: its earlier sweep stopped before it ended; marked interrupted",
    ]
    assert result.resumed == ["org_m1_Off"]
    assert {(r.name, r.status) for r in result.records} == {
        ("org_m1_Off", "ok"), ("org_m2_Off", "ok"),
    }  # fmt: skip


def test_a_sweep_adopts_a_folder_of_the_earlier_spelling_and_logs_each_run_s_expected_time(
    tmp_path, caplog
):
    configs = [single_config("org/na", reasoning_state="Off (N/A)"), single_config("org/m2")]
    the_plans = plan_runs(configs, PlanOptions(image="img", software_id="fake"))
    assert the_plans[0].name == "org_na_Off_N_A"
    sweep(tmp_path, the_plans[:1], FakeRunner(seconds=0.6), cpu_slots(1))
    layout = OutputLayout(tmp_path)
    layout.run_dir("org_na_Off_N_A").rename(layout.run_dir("org_na_Off_NA"))  # as 1.x named it
    with caplog.at_level("DEBUG", logger="orchestrator.execution.scheduler"):
        result = sweep(tmp_path, the_plans, FakeRunner(seconds=0), cpu_slots(1), force=True)
    messages = [r.getMessage() for r in caplog.records]
    assert messages[0] == (
        "org_na_Off_NA: renamed to org_na_Off_N_A, as the AI Energy Score scripts name it"
    )
    took = [m for m in messages if m.startswith("org_na_Off_N_A: ")]
    assert took[0] == "org_na_Off_N_A: took 1 s"  # its last run's time (0.6 s) is known
    estimated = [m for m in messages if m.startswith("org_m2_Off: ")]
    assert re.fullmatch(r"org_m2_Off: estimated \d+ s", estimated[0])
    assert {r.name: r.status for r in result.records} == {
        "org_na_Off_N_A": "ok",
        "org_m2_Off": "ok",
    }


class Events:
    """A progress view that keeps what it was told, in order."""

    def __init__(self):
        self.said = []

    def start(self, total):
        self.said.append(("start", total))

    def started(self, slot, name):
        self.said.append(("started", slot, name))

    def finished(self, slot, name, status):
        self.said.append(("finished", slot, name, status))

    def stop(self):
        self.said.append(("stop",))


class Instant(FakeRunner):
    """Ends each run at once, as FakeRunner does, with a duration of its own, and keeps specs."""

    def __init__(self):
        super().__init__(seconds=0)
        self.specs = []

    def run(self, spec, *, token=None):
        self.specs.append((spec, token))
        outcome = super().run(spec, token=token)
        return RunOutcome(outcome.cause, outcome.exit_code, 7.5, outcome.message)


def test_each_run_is_reported_on_its_gpus_with_its_cores_and_only_successes_are_timed(tmp_path):
    from orchestrator.store.durations import duration_key, load_durations

    the_plans = plans(["m1", "bad"], model_class="C")  # class C: two GPUs each
    slots = gpu_slots(["GPU-a", "GPU-b"], ["H200", "H200"], cpus=[0, 1, 2, 3])
    events, runner = Events(), Instant()
    options = ExecOptions(out_dir=tmp_path, image="img", retry_wait_s=0)
    result = run_sweep(the_plans, runner=runner, options=options, slots=slots, progress=events,
                       token="hf_x", order="priority")  # fmt: skip
    assert events.said == [
        ("start", 2),
        ("started", "GPU 0, GPU 1", "org_m1_Off"),
        ("finished", "GPU 0, GPU 1", "org_m1_Off", "ok"),
        ("started", "GPU 0, GPU 1", "org_bad_Off"),
        ("finished", "GPU 0, GPU 1", "org_bad_Off", "failed"),
        ("stop",),
    ]
    assert [(s.gpu_uuids, s.cpus, token) for s, token in runner.specs] == [
        (("GPU-a", "GPU-b"), (0, 1, 2, 3), "hf_x"),
    ] * 2
    ok = the_plans[0]
    assert load_durations(tmp_path) == {duration_key(ok.run_id, "H200"): 7.5}
    assert [(r.name, r.status) for r in result.records] == [
        ("org_m1_Off", "ok"), ("org_bad_Off", "failed"),
    ]  # fmt: skip
    rows = OutputLayout(tmp_path).master_csv.read_text().splitlines()
    assert len(rows) == 3  # the header and both runs


def test_a_run_that_fits_no_slot_of_the_pool_stops_the_sweep_instead_of_waiting(tmp_path):
    the_plans = plans(["big"], model_class="C")  # two GPUs, where the pool has one
    with pytest.raises(RuntimeError, match=r"^no pending run fits 1 free slot\(s\)$"):
        sweep(tmp_path, the_plans, Instant(), gpu_slots(["GPU-a"], cpus=[0]), fits=lambda p: "")


def test_max_parallel_one_runs_one_at_a_time_in_priority_order(tmp_path):
    late, first = single_config("org/late"), single_config("org/first")
    configs = [replace(late, priority=2), replace(first, priority=1)]
    the_plans = plan_runs(configs, PlanOptions(image="img", software_id="fake"))
    events, runner = Events(), Instant()
    options = ExecOptions(out_dir=tmp_path, image="img", retry_wait_s=0)
    run_sweep(the_plans, runner=runner, options=options, slots=cpu_slots(2, cpus=[0, 1]),
              progress=events, order="priority", max_parallel=1)  # fmt: skip
    assert events.said == [
        ("start", 2), ("started", "CPU slot 0", "org_first_Off"),
        ("finished", "CPU slot 0", "org_first_Off", "ok"),
        ("started", "CPU slot 1", "org_late_Off"),  # the next free slot: one run at a time
        ("finished", "CPU slot 1", "org_late_Off", "ok"), ("stop",),
    ]  # fmt: skip


def test_ctrl_c_during_a_sweep_cancels_the_running_runs_then_rebuilds_the_master(tmp_path, caplog):
    cancelled = threading.Event()

    class Interrupted(Instant):
        def run(self, spec, *, token=None):
            self.specs.append((spec, token))
            if "m1" in spec.overrides[0]:
                raise KeyboardInterrupt
            cancelled.wait(10)  # the other run ends when the sweep cancels it, as if killed
            return RunOutcome(Cause.KILLED, 137, 1.0, "killed")

        def cancel(self):
            cancelled.set()

    events, runner = Events(), Interrupted()
    options = ExecOptions(out_dir=tmp_path, image="img", retries=2, retry_wait_s=0)
    logged = caplog.at_level("WARNING", logger="orchestrator.execution.scheduler")
    with logged, pytest.raises(KeyboardInterrupt):
        run_sweep(plans(["m1", "m2"]), runner=runner, options=options,
                  slots=cpu_slots(2, cpus=[0, 1]), progress=events)  # fmt: skip
    assert cancelled.is_set()
    assert [r.getMessage() for r in caplog.records] == ["interrupted: stopping 1 running run(s)"]
    assert events.said[-1] == ("stop",)
    layout = OutputLayout(tmp_path)
    stopped = load_record(layout.run_dir("org_m2_Off"))  # killed by the stop: not retried
    assert (stopped.status, stopped.attempts, stopped.exit_code) == ("interrupted", 1, 137)
    assert stopped.error_message == "interrupted: interrupted (Ctrl-C): stopped"
    assert len(runner.specs) == 2
    assert load_record(layout.run_dir("org_m1_Off")).status == "interrupted"
    assert layout.master_csv.is_file()


def disk_full(*args, **kwargs):
    raise OSError(28, "No space left on device")


def test_bookkeeping_that_cannot_write_is_one_logged_line_each_and_the_sweep_goes_on(
    tmp_path, monkeypatch, caplog
):
    for name in (
        "adopt_legacy_folders",
        "settle_stale",
        "save_record",
    ):  # the last: a skipped run's
        monkeypatch.setattr(scheduler, name, disk_full)  # the skipped run's record
    (skipped,) = plans(["m1"])
    skipped = replace(skipped, skip_reason="not on this host")
    with caplog.at_level("ERROR", logger="orchestrator.execution.scheduler"):
        result = sweep(tmp_path, [skipped], Instant(), cpu_slots(1, cpus=[0]))
    assert [r.getMessage() for r in caplog.records] == [
        "run folders of an earlier version were not renamed: [Errno 28] No space left on device",
        "stale records were not settled: [Errno 28] No space left on device",
        "org_m1_Off: its skipped record was not saved: [Errno 28] No space left on device",
    ]
    assert [(r.status, r.error_message) for r in result.records] == [
        ("skipped", "not on this host"),
    ]  # fmt: skip


def test_the_runs_fit_is_judged_with_the_models_the_runs_will_see(tmp_path, monkeypatch):
    seen = []

    def misfit(plan, *, slots, hf_home):
        seen.append((plan.name, hf_home))
        return ""

    monkeypatch.setattr(scheduler, "misfit", misfit)
    options = ExecOptions(out_dir=tmp_path, image="img", hf_cache_dir=tmp_path / "hf")
    run_sweep(plans(["m1"]), runner=Instant(), options=options, slots=cpu_slots(1, cpus=[0]),
              progress=Events())  # fmt: skip
    assert seen == [("org_m1_Off", tmp_path / "hf")]


def test_a_sweep_with_no_slot_resumes_what_is_done_and_says_what_it_cannot_start(tmp_path, caplog):
    from orchestrator.store.durations import duration_key, save_duration

    done, left = plans(["m1", "m2"])
    sweep(tmp_path, [done], Instant(), cpu_slots(1, cpus=[0]))
    save_duration(tmp_path, duration_key(left.run_id, "cpu"), 42.0)
    result = sweep(tmp_path, [done], Instant(), [])
    assert result.resumed == ["org_m1_Off"]
    with (
        caplog.at_level("DEBUG", logger="orchestrator.execution.scheduler"),
        pytest.raises(RuntimeError, match=r"^no pending run fits 0 free slot\(s\)$"),
    ):
        sweep(tmp_path, [done, left], Instant(), [], fits=lambda p: "")
    assert "org_m2_Off: took 42 s" in [r.getMessage() for r in caplog.records]


def test_a_class_c_run_takes_one_slot_on_a_host_without_gpus(tmp_path):
    result = sweep(tmp_path, plans(["big"], model_class="C"), Instant(), cpu_slots(1, cpus=[0]),
                   fits=lambda plan: "")  # the executor says it fits (a small model)  # fmt: skip
    assert [(r.name, r.status) for r in result.records] == [("org_big_Off", "ok")]


def test_a_master_csv_that_cannot_be_written_is_logged_and_the_runs_still_end(
    tmp_path, monkeypatch, caplog
):
    monkeypatch.setattr(scheduler, "update_master", disk_full)
    monkeypatch.setattr(scheduler, "rebuild_master", disk_full)
    with caplog.at_level("ERROR", logger="orchestrator.execution.scheduler"):
        result = sweep(tmp_path, plans(["m1"]), Instant(), cpu_slots(1, cpus=[0]))
    assert [r.getMessage() for r in caplog.records] == [
        "org_m1_Off: the master CSV was not updated: [Errno 28] No space left on device",
        "the master CSV was not rebuilt: [Errno 28] No space left on device",
    ]
    assert [r.status for r in result.records] == ["ok"]


def test_a_slot_freed_by_one_run_is_taken_while_the_others_still_run(tmp_path):
    third_started = threading.Event()
    waited = []

    class Overlapping(Instant):
        def run(self, spec, *, token=None):
            if "m1" in spec.overrides[0]:  # runs until the third run has started beside it
                waited.append(third_started.wait(10))
            if "m3" in spec.overrides[0]:
                third_started.set()
            return super().run(spec, token=token)

    result = sweep(tmp_path, plans(["m1", "m2", "m3"]), Overlapping(), cpu_slots(2, cpus=[0, 1]),
                   order="priority")  # fmt: skip
    assert waited == [True]  # m2's slot went to m3 before m1 ended
    assert sorted(r.status for r in result.records) == ["ok"] * 3


def test_a_sweep_stopped_by_ctrl_c_returns_only_once_every_run_has_ended(tmp_path):
    ended = []

    class Stubborn(Instant):
        """The first run is interrupted; the other ignores the cancel and ends a second later."""

        def run(self, spec, *, token=None):
            if "m1" in spec.overrides[0]:
                raise KeyboardInterrupt
            threading.Event().wait(1.0)
            ended.append(spec.run_id)
            return RunOutcome(Cause.INTERRUPTED, 130, 1.0, "stopped late")

    with pytest.raises(KeyboardInterrupt):
        sweep(tmp_path, plans(["m1", "m2"]), Stubborn(), cpu_slots(2, cpus=[0, 1]))
    assert len(ended) == 1  # not returned while a run was still going
    assert load_record(OutputLayout(tmp_path).run_dir("org_m2_Off")).status == "interrupted"


def test_every_slot_of_a_large_pool_runs_at_once(tmp_path):
    together = threading.Barrier(40, timeout=10)  # broken unless all 40 runs are live at once

    class Meeting(Instant):
        def run(self, spec, *, token=None):
            together.wait()
            return super().run(spec, token=token)

    slots = gpu_slots([f"GPU-{i}" for i in range(40)], cpus=list(range(40)))
    names = [f"m{i}" for i in range(40)]
    result = sweep(tmp_path, plans(names), Meeting(), slots, fits=lambda plan: "")
    assert [r.status for r in result.records] == ["ok"] * 40


def _waits_for_b(known_s, order, tmp_path):
    """Sweep a (class A), c (class C, both GPUs), b and x (class A) on two GPUs.

    Each run's duration is known beforehand (``known_s``); x ends at once, and a runs until b
    has started beside it. Returns whether b started while a still ran.
    """
    from orchestrator.store.durations import duration_key, save_duration

    the_plans = plans(["a"]) + plans(["c"], model_class="C") + plans(["b", "x"])
    the_plans = [p for p in the_plans if p.config.model_id in known_s]
    for plan in the_plans:
        save_duration(tmp_path, duration_key(plan.run_id, "GPU"), known_s[plan.config.model_id])
    b_started, waited = threading.Event(), []

    class BesideA(Instant):
        def run(self, spec, *, token=None):
            model = spec.overrides[0].partition("=")[2]
            if model == "org/b":
                b_started.set()
            if model == "org/a":
                waited.append(b_started.wait(10))
            return super().run(spec, token=token)

    result = sweep(tmp_path, the_plans, BesideA(), gpu_slots(["GPU-0", "GPU-1"], cpus=[0, 1]),
                   order=order, fits=lambda plan: "")  # fmt: skip
    assert sorted(r.status for r in result.records) == ["ok"] * len(the_plans)
    return waited == [True]


def test_priority_order_starts_a_later_run_that_fits_beside_one_waiting_for_more_gpus(tmp_path):
    # a takes one GPU; c, next in priority, needs both and waits; b, after it, fits the other
    # GPU and starts at once, although it is expected to end long after a: in priority order
    # any run that fits starts (backfilling would keep that GPU free for c).
    known = {"org/a": 10.0, "org/c": 5.0, "org/b": 100.0}
    assert _waits_for_b(known, "priority", tmp_path)


def test_longest_order_backfills_a_run_expected_to_end_before_the_running_one(tmp_path):
    # a and x start together; x ends at once; c, the longest waiting, needs both GPUs, so it
    # waits for a, expected to run 100 s from its start; b (10 s) ends before then and takes
    # x's GPU meanwhile.
    known = {"org/a": 100.0, "org/x": 60.0, "org/c": 50.0, "org/b": 10.0}
    assert _waits_for_b(known, "longest", tmp_path)
