"""One run's attempts on a scripted runner: retries, where each ran, what the record says."""

from __future__ import annotations

import errno
import socket
import threading
import time
from datetime import datetime

import pytest
from fakes import fake_report, write_report

from energy_bench import contract
from orchestrator.execution import heartbeat
from orchestrator.execution.execute import ExecOptions, execute
from orchestrator.execution.spec import Cause, Placement, RunOutcome
from orchestrator.models.csv_reader import single_config
from orchestrator.planning.plan import PlanOptions, Serving, plan_runs
from orchestrator.store.paths import OutputLayout
from orchestrator.store.records import load_record

FIRST = Placement("node-a", "n1", ("GPU-1",))
LAST = Placement("node-b", "n2", ("GPU-2",))


class Scripted:
    """A runner that ends its attempts as it is told, in order (an exception is raised)."""

    name = "scripted"

    def __init__(self, *endings):
        self.endings = list(endings)
        self.calls = 0

    def run(self, spec, *, token=None):
        self.calls += 1
        ending = self.endings.pop(0)
        if isinstance(ending, BaseException):
            raise ending
        if ending.ok:
            write_report(spec.results_dir, fake_report())
        return ending


def run(tmp_path, runner, retries=2):
    (plan,) = plan_runs([single_config("org/m")], PlanOptions(image="img", software_id="s"))
    options = ExecOptions(out_dir=tmp_path, image="img", retries=retries, retry_wait_s=0)
    return plan, execute(plan, runner=runner, options=options, gpu_uuids=("GPU-0",))


def test_transient_failures_are_retried_and_every_attempt_s_place_is_kept(tmp_path, caplog):
    runner = Scripted(
        RunOutcome(Cause.KILLED, 137, 1.5, "killed", FIRST),
        RunOutcome(Cause.RUNNER_ERROR, None, 2.0, "docker went away"),  # on this host
        RunOutcome(Cause.OK, 0, 3.0, "", LAST),
    )
    with caplog.at_level("WARNING"):
        plan, record = run(tmp_path, runner)
    here = Placement(socket.gethostname(), "", ("GPU-0",))
    assert (record.status, record.cause, record.error_message) == ("ok", "ok", "")
    assert (record.attempts, record.exit_code, record.duration_s) == (3, 0, 6.5)
    assert (record.host, record.node_id, record.gpu_uuids) == ("node-b", "n2", ("GPU-2",))
    assert record.attempt_nodes == (str(FIRST), str(here), str(LAST))
    assert [r.getMessage() for r in caplog.records] == [
        f"{plan.name}: attempt 2 of 3", f"{plan.name}: attempt 3 of 3",
    ]  # fmt: skip
    assert load_record(OutputLayout(tmp_path).run_dir(plan.name)) == record


def test_a_failure_that_is_not_transient_is_not_retried(tmp_path):
    runner = Scripted(RunOutcome(Cause.OUT_OF_MEMORY, 4, 2.0, "OutOfMemory: CUDA"))
    _, record = run(tmp_path, runner)
    assert runner.calls == 1
    assert (record.status, record.cause, record.attempts) == ("failed", "out_of_memory", 1)
    assert record.error_message == "out_of_memory: OutOfMemory: CUDA"
    assert (record.exit_code, record.duration_s) == (4, 2.0)


def test_retries_run_out_and_the_last_failure_is_recorded(tmp_path):
    runner = Scripted(
        RunOutcome(Cause.KILLED, 137, 1.0, "first"), RunOutcome(Cause.NODE_LOST, None, 1.0, "last")
    )
    _, record = run(tmp_path, runner, retries=1)
    assert runner.calls == 2
    assert (record.status, record.error_message, record.attempts) == (
        "failed",
        "node_lost: last",
        2,
    )


@pytest.mark.parametrize(
    ("error", "cause", "message"),
    [
        (ValueError("boom"), "runner_error", "runner_error: ValueError: boom"),
        (OSError(errno.ENOSPC, "No space left on device", "/out/x"), "disk_full",
         "disk_full: No space left on device: /out/x"),
        (PermissionError(errno.EACCES, "Permission denied"), "permission_denied", None),
    ],
)  # fmt: skip
def test_a_runner_that_breaks_fails_this_run_alone_and_says_why(
    tmp_path, caplog, error, cause, message
):
    with caplog.at_level("DEBUG", logger="orchestrator.execution.execute"):
        plan, record = run(tmp_path, Scripted(error))
    assert (record.status, record.cause) == ("failed", cause)
    expected = message or f"permission_denied: Permission denied: {tmp_path}"
    assert record.error_message == expected
    assert record.finished_at
    said = [
        (r.levelname, r.getMessage(), bool(r.exc_info))
        for r in caplog.records
        if r.name == "orchestrator.execution.execute"
    ]
    error = [("ERROR", f"{plan.name}: {expected}", False)]
    if cause == "runner_error":  # a bug somewhere: its traceback for whoever debugs it
        assert said == [("DEBUG", f"{plan.name}: runner error", True), *error]
    else:
        assert said == error


class Recording:
    """A runner that keeps what it was given and what the run's records said while it ran."""

    name = "docker"

    def __init__(self, outcome=None, *, interrupt=False, stop=None):
        self.outcome = outcome or RunOutcome(Cause.OK, 0, 2.0, "")
        self.interrupt, self.stop = interrupt, stop
        self.specs, self.tokens, self.seen = [], [], []

    def run(self, spec, *, token=None):
        self.specs.append(spec)
        self.tokens.append(token)
        run_folder = spec.results_dir.parent.parent
        self.seen.append((load_record(run_folder), load_record(spec.results_dir)))
        if self.interrupt:
            raise KeyboardInterrupt
        if self.stop is not None:
            self.stop.set()  # the sweep is being stopped while this attempt runs
        if self.outcome.ok:
            write_report(spec.results_dir, fake_report())
        return self.outcome


def plan_one(**options):
    (plan,) = plan_runs([single_config("org/m")], PlanOptions(image="img", software_id="s"))
    return plan, ExecOptions(**{"out_dir": None, "image": "img:1", "retry_wait_s": 0, **options})


def test_the_runner_gets_everything_the_run_needs_and_no_other_setting(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_ENDPOINT", "http://mirror.invalid")
    monkeypatch.setenv("HF_TOKEN", "hf_never_passed_on")
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a red apple\n")
    (plan,) = plan_runs(
        [single_config("org/pipe", task="image_gen", reasoning_state="")],
        PlanOptions(image="img", software_id="s", prompts_file=prompts),
    )
    options = ExecOptions(
        out_dir=tmp_path, image="img:1", software_id="sw", timeout_s=120.0,
        hf_cache_dir=tmp_path / "hf",
    )  # fmt: skip
    runner = Recording()
    execute(plan, runner=runner, options=options, gpu_uuids=("GPU-a", "GPU-b"), cpus=(2, 3),
            token="hf_secret")  # fmt: skip
    (spec,), layout = runner.specs, OutputLayout(tmp_path)
    assert runner.tokens == ["hf_secret"]
    assert (spec.run_id, spec.overrides, spec.output_dir) == (plan.run_id, plan.overrides, tmp_path)
    assert spec.results_dir.parent == layout.run_dir(plan.name) / "attempts"
    assert spec.log_path.parent == layout.logs
    assert spec.log_path.name.startswith(f"{plan.name}_") and spec.log_path.suffix == ".log"
    assert (spec.gpu_uuids, spec.cpus, spec.timeout_s) == (("GPU-a", "GPU-b"), (2, 3), 120.0)
    assert (spec.image, spec.hf_cache_dir) == ("img:1", tmp_path / "hf")
    assert spec.read_only_paths == plan.read_only_paths == (prompts,)
    assert dict(spec.env) == {
        "HF_HUB_OFFLINE": "1", "HF_ENDPOINT": "http://mirror.invalid", **heartbeat.environment(),
    }  # fmt: skip
    assert (spec.gpu_count, spec.measures_server) == (plan.gpus_needed, False)
    assert spec.config_name == plan.config_name == contract.IMAGE_CONFIG_NAME


def test_a_run_says_it_is_running_while_it_runs_and_how_it_ended_after(tmp_path):
    plan, options = plan_one(out_dir=tmp_path, software_id="sw", executor="local")
    runner = Recording()
    record = execute(plan, runner=runner, options=options, gpu_uuids=("GPU-a",))
    ((during, attempt),), spec = runner.seen, runner.specs[0]
    layout = OutputLayout(tmp_path)
    assert during == attempt
    assert (during.status, during.run_id, during.name) == ("running", plan.run_id, plan.name)
    assert (during.runner, during.executor, during.image, during.software_id) == (
        "docker", "local", "img:1", "sw",
    )  # fmt: skip
    assert during.gpu_uuids == ("GPU-a",) and during.started_at and not during.finished_at
    assert during.log_path == layout.relative(spec.log_path)
    assert (spec.timeout_s, during.overrides) == (plan.default_timeout_s, plan.overrides)
    here = Placement(socket.gethostname(), "", ("GPU-a",))
    assert (record.status, record.cause, record.error_message) == ("ok", "ok", "")
    assert (record.started_at, record.log_path) == (during.started_at, during.log_path)
    assert record.finished_at >= record.started_at
    assert (record.attempts, record.exit_code, record.duration_s) == (1, 0, 2.0)
    assert (record.host, record.node_id, record.gpu_uuids) == (here.host, "", ("GPU-a",))
    assert record.attempt_nodes == (str(here),)
    assert load_record(layout.run_dir(plan.name)) == record
    assert not (layout.run_dir(plan.name) / "attempts").exists()  # the attempt became the run's


def test_a_failed_attempt_never_replaces_an_earlier_success_and_stays_beside_it(tmp_path, caplog):
    plan, options = plan_one(out_dir=tmp_path)
    layout = OutputLayout(tmp_path)
    success = execute(plan, runner=Recording(), options=options)
    runner = Recording(RunOutcome(Cause.FAILED, 1, 1.0, "it broke"))
    with caplog.at_level("WARNING"):
        record = execute(plan, runner=runner, options=options)
    ((during, attempt),) = runner.seen
    assert during == success and attempt.status == "running"  # the success is never touched
    assert (record.status, record.error_message) == ("failed", "failed: it broke")
    assert load_record(layout.run_dir(plan.name)) == success
    kept = runner.specs[0].results_dir
    assert load_record(kept) == record
    assert [r.getMessage() for r in caplog.records] == [
        f"{plan.name}: this attempt failed; the earlier successful result is kept"
        f" (this attempt: {layout.relative(kept)})"
    ]


def test_ctrl_c_during_a_run_records_it_interrupted_and_goes_on_up(tmp_path):
    plan, options = plan_one(out_dir=tmp_path, retries=2)
    with pytest.raises(KeyboardInterrupt):
        execute(plan, runner=Recording(interrupt=True), options=options, gpu_uuids=("GPU-a",))
    record = load_record(OutputLayout(tmp_path).run_dir(plan.name))
    assert (record.status, record.cause) == ("interrupted", "interrupted")
    assert record.error_message == "interrupted (Ctrl-C)"
    assert (record.attempts, record.duration_s, record.exit_code) == (1, 0.0, None)
    assert record.finished_at >= record.started_at
    assert (record.gpu_uuids, record.host, record.attempt_nodes) == (("GPU-a",), "", ())


def test_a_sweep_stopped_before_a_run_starts_records_it_interrupted_unstarted(tmp_path):
    plan, options = plan_one(out_dir=tmp_path)
    stop = threading.Event()
    stop.set()
    runner = Recording()
    record = execute(plan, runner=runner, options=options, stop=stop)
    assert runner.specs == []
    assert (record.status, record.cause, record.attempts) == ("interrupted", "interrupted", 0)
    assert record.error_message == "interrupted: interrupted (Ctrl-C): not started"
    assert (record.host, record.attempt_nodes) == ("", ())


def test_a_run_that_fails_while_its_sweep_stops_is_interrupted_and_not_retried(tmp_path):
    plan, options = plan_one(out_dir=tmp_path, retries=2)
    stop = threading.Event()
    runner = Recording(RunOutcome(Cause.KILLED, 137, 4.0, "killed"), stop=stop)
    record = execute(plan, runner=runner, options=options, stop=stop)
    assert len(runner.specs) == 1
    assert (record.status, record.cause, record.exit_code) == ("interrupted", "interrupted", 137)
    assert record.error_message == "interrupted: interrupted (Ctrl-C): stopped"
    assert (record.attempts, record.duration_s) == (1, 4.0)


def test_a_served_run_measures_the_server_s_gpus_whatever_slot_it_holds(tmp_path):
    serving = Serving("http://server.invalid:8000", ("GPU-s1", "GPU-s2"))
    (plan,) = plan_runs(
        [single_config("org/m")], PlanOptions(image="img", software_id="s", serving=serving)
    )
    runner = Recording()
    options = ExecOptions(out_dir=tmp_path, image="img")
    record = execute(plan, runner=runner, options=options, gpu_uuids=("GPU-slot",))
    (spec,) = runner.specs
    assert (spec.gpu_uuids, spec.measures_server) == (("GPU-s1", "GPU-s2"), True)
    assert record.gpu_uuids == ("GPU-s1", "GPU-s2")


def test_a_run_s_log_and_attempt_are_named_by_the_utc_time_whatever_the_host_s_zone(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("TZ", "Asia/Kolkata")  # UTC+5:30: no hour of it is a UTC hour
    time.tzset()
    try:
        plan, options = plan_one(out_dir=tmp_path)
        runner = Recording(RunOutcome(Cause.FAILED, 1, 1.0, "kept in its attempt folder"))
        record = execute(plan, runner=runner, options=options)
    finally:
        monkeypatch.undo()
        time.tzset()
    (spec,) = runner.specs
    started = datetime.fromisoformat(record.started_at)
    named = datetime.strptime(spec.log_path.stem.removeprefix(f"{plan.name}_"), "%Y%m%d_%H%M%S")
    assert abs(started.replace(tzinfo=None) - named).total_seconds() < 60
    assert spec.results_dir.name.startswith(named.strftime("%Y%m%d_%H%M%S"))


def test_a_sweep_stopped_during_the_wait_before_a_retry_ends_the_wait_at_once(tmp_path):
    plan, options = plan_one(out_dir=tmp_path, retries=3, retry_wait_s=60)
    stop = threading.Event()

    class KilledThenStopped(Recording):
        def run(self, spec, *, token=None):
            threading.Timer(0.1, stop.set).start()  # Ctrl-C arrives during the 60 s backoff
            return super().run(spec, token=token)

    runner = KilledThenStopped(RunOutcome(Cause.KILLED, 137, 1.0, "killed"))
    began = time.monotonic()
    record = execute(plan, runner=runner, options=options, stop=stop)
    assert time.monotonic() - began < 30  # not the backoff's 60 s
    assert (record.status, record.attempts, len(runner.specs)) == ("interrupted", 1, 1)


def test_the_waits_before_retries_grow_from_the_asked_one_up_to_a_minute(tmp_path):
    class Waits(threading.Event):
        """A sweep's stop event that notes each wait asked of it and returns at once."""

        def __init__(self):
            super().__init__()
            self.asked = []

        def wait(self, timeout=None):
            self.asked.append(timeout)
            return False

    plan, options = plan_one(out_dir=tmp_path, retries=2, retry_wait_s=40)
    killed = RunOutcome(Cause.KILLED, 137, 1.0, "killed")
    stop = Waits()
    ok = RunOutcome(Cause.OK, 0, 1.0, "")
    execute(plan, runner=Scripted(killed, killed, ok), options=options, stop=stop)
    assert stop.asked == [40, 60]  # 40 s, then 80 s held to the 60 s ceiling


def test_ctrl_c_in_a_later_attempt_records_the_attempts_before_it(tmp_path):
    plan, options = plan_one(out_dir=tmp_path, retries=2)
    runner = Scripted(RunOutcome(Cause.KILLED, 137, 1.5, "killed", FIRST), KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        execute(plan, runner=runner, options=options)
    record = load_record(OutputLayout(tmp_path).run_dir(plan.name))
    assert (record.status, record.attempts, record.duration_s) == ("interrupted", 2, 1.5)
    assert (record.host, record.node_id, record.attempt_nodes) == ("node-a", "n1", (str(FIRST),))


def test_a_successful_attempt_replaces_an_earlier_success(tmp_path):
    plan, options = plan_one(out_dir=tmp_path)
    layout = OutputLayout(tmp_path)
    execute(plan, runner=Recording(), options=options)
    again = execute(plan, runner=Recording(RunOutcome(Cause.OK, 0, 3.0, "")), options=options)
    assert load_record(layout.run_dir(plan.name)) == again and again.duration_s == 3.0
    assert not (layout.run_dir(plan.name) / "attempts").exists()


def test_a_run_whose_folder_cannot_be_written_fails_alone_without_raising(tmp_path):
    blocker = tmp_path / "out"
    blocker.write_text("a file where the output folder should be")
    (plan,) = plan_runs([single_config("org/m")], PlanOptions(image="img", software_id="s"))
    options = ExecOptions(out_dir=blocker, image="img", retries=0, retry_wait_s=0)
    runner = Scripted(RunOutcome(Cause.OK, 0, 1.0))
    record = execute(plan, runner=runner, options=options)
    assert (record.status, runner.calls) == ("failed", 0)
    assert "Not a directory: " + str(blocker) in record.error_message  # where, and why
