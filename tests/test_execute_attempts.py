"""One run's attempts on a scripted runner: retries, where each ran, what the record says."""

from __future__ import annotations

import errno
import socket

import pytest
from fakes import fake_report, write_report

from orchestrator.execution.execute import ExecOptions, execute
from orchestrator.execution.spec import Cause, Placement, RunOutcome
from orchestrator.models.csv_reader import single_config
from orchestrator.planning.plan import PlanOptions, plan_runs
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
        if isinstance(ending, Exception):
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
def test_a_runner_that_breaks_fails_this_run_alone_and_says_why(tmp_path, error, cause, message):
    _, record = run(tmp_path, Scripted(error))
    assert (record.status, record.cause) == ("failed", cause)
    expected = message or f"permission_denied: Permission denied: {tmp_path}"
    assert record.error_message == expected
    assert record.finished_at
