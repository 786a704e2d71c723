"""The sweep's scheduling on a fake runner: slots, failures, resume, force, class C, timing."""

from __future__ import annotations

import json
import re
import threading
import time

import pytest
from fakes import failed_report, fake_report, write_report

from energy_bench.contract import REPORT_FILE, RESULT_FILES
from orchestrator.commands.progress import LogProgress
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
