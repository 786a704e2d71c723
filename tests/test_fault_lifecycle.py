"""How runs end when things go wrong around them: plan-time checks, signals, a sweep that is
gone, leftovers, file-system errors."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import ROOT, TINY_MODEL

from energy_bench import contract
from orchestrator.errors import RunnerError
from orchestrator.execution.execute import ExecOptions, execute, settle_stale
from orchestrator.execution.runners.local import LocalRunner
from orchestrator.execution.spec import Cause, RunOutcome, classify_exit
from orchestrator.models.config import ModelClass
from orchestrator.models.csv_reader import single_config
from orchestrator.planning.checks import (
    check_benchmark_overrides,
    check_local_models,
    check_user_overrides,
)
from orchestrator.planning.plan import PlanOptions, plan_runs
from orchestrator.store.lock import output_lock
from orchestrator.store.paths import PID_FILE, OutputLayout
from orchestrator.store.records import RunRecord, load_record, save_record

OFFLINE = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def _plan(model="org/m", model_class="A", extra=(), **options):
    config = single_config(model, model_class=model_class)
    opts = PlanOptions(image="img", software_id="s", extra_overrides=tuple(extra), **options)
    return plan_runs([config], opts)[0], opts


# --- plan-time checks ------------------------------------------------------------------------


def test_a_model_override_is_refused():
    _, options = _plan(extra=["backend.model=other/model"])
    with pytest.raises(RunnerError, match="the model comes from the CSV row"):
        check_user_overrides(options, token=None)


@pytest.mark.parametrize(
    "override", ["scenario.dataset_name=hf_" + "a1B2" * 8, "scenario.dataset_name=MYSECRETVALUE"]
)
def test_a_token_in_an_override_is_refused_and_never_repeated(override):
    _, options = _plan(extra=[override])
    with pytest.raises(RunnerError) as caught:
        check_user_overrides(options, token="MYSECRETVALUE")
    assert "holds a Hugging Face token" in str(caught.value)
    assert override.partition("=")[2] not in str(caught.value)


def test_a_missing_local_model_folder_is_found_at_plan_time(tmp_path):
    plan, _ = _plan(model=str(tmp_path / "gone"))
    with pytest.raises(RunnerError, match="does not exist"):
        check_local_models([plan])
    present, _ = _plan(model=str(TINY_MODEL))
    check_local_models([present])


def test_the_benchmark_checks_every_distinct_override_set_at_once():
    good, _ = _plan(extra=["scenario.num_samples=3"])
    bad, _ = _plan(model="org/other", extra=["scenario.num_samples=ten"])
    check_benchmark_overrides([good])
    with pytest.raises(RunnerError) as caught:
        check_benchmark_overrides([good, bad])
    assert "org_other_Off" in str(caught.value) and "scenario.num_samples" in str(caught.value)


def test_default_timeout_grows_with_class_budget_and_prompts():
    small, _ = _plan(extra=["scenario.num_samples=10"])
    larger, _ = _plan(extra=["scenario.num_samples=1000"])
    class_c, _ = _plan(model_class="C", extra=["scenario.num_samples=1000"])
    long_budget, _ = _plan(
        extra=["scenario.num_samples=1000", "scenario.generate_kwargs.max_new_tokens=8192"]
    )
    assert small.default_timeout_s < larger.default_timeout_s < class_c.default_timeout_s
    assert long_budget.default_timeout_s > 100 * 3600  # 8,192 tokens x 1,000 prompts, twice
    # Load allowance + (warmup + 1 repeat) x 10 prompts x (2 s + 10 tokens x 0.1 s).
    assert small.default_timeout_s == pytest.approx(1800 + 2 * 10 * (2 + 10 * 0.1))
    assert single_config("org/m").model_class is ModelClass.A


# --- file-system errors ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "cause"),
    [(errno.ENOSPC, Cause.DISK_FULL), (errno.EROFS, Cause.PERMISSION_DENIED),
     (errno.EACCES, Cause.PERMISSION_DENIED)],
)  # fmt: skip
def test_a_run_that_cannot_write_fails_alone_with_its_cause(tmp_path, number, cause):
    plan, _ = _plan()

    class CannotWrite:
        name = "fake"

        def run(self, spec, *, token=None):
            raise OSError(number, os.strerror(number), str(spec.results_dir / "x.csv"))

    record = execute(plan, runner=CannotWrite(), options=ExecOptions(out_dir=tmp_path, image="i"))
    assert record.status == "failed" and record.cause == cause.value
    assert os.strerror(number) in record.error_message and "\n" not in record.error_message
    assert load_record(OutputLayout(tmp_path).run_dir(plan.name)).cause == cause.value


def test_the_benchmark_s_own_disk_full_error_is_named():
    tail = "energy_bench: error: OSError: [Errno 28] No space left on device: '/results/x'"
    assert classify_exit(1, tail).cause is Cause.DISK_FULL
    assert classify_exit(1, "energy_bench: error: ValueError: bad").cause is Cause.FAILED


def test_an_unwritable_output_folder_is_one_line_before_anything(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(RunnerError, match="cannot write here"), output_lock(blocker / "out"):
        pass


# --- runs whose sweep is gone ----------------------------------------------------------------


def test_stale_running_records_are_settled_as_interrupted(tmp_path):
    layout = OutputLayout(tmp_path)
    plan, _ = _plan()
    base = RunRecord(plan.run_id, plan.name, "org/m", "A", "text_gen", "Off", "running")
    save_record(layout.run_dir(plan.name), base)
    assert settle_stale(tmp_path, [plan.name, "absent"]) == [plan.name]
    record = load_record(layout.run_dir(plan.name))
    assert record.status == "interrupted" and record.cause == Cause.INTERRUPTED.value
    assert record.error_message == "interrupted: its sweep stopped before the run ended"
    assert record.finished_at  # when it was found so, as it never said when it ended
    assert settle_stale(tmp_path, [plan.name]) == []  # only once
    ended = replace(base, finished_at="2026-01-02T03:04:05+00:00")
    save_record(layout.run_dir(plan.name), ended)  # a run that said when it ended keeps that
    assert settle_stale(tmp_path, [plan.name]) == [plan.name]
    assert load_record(layout.run_dir(plan.name)).finished_at == ended.finished_at


def _bench(results: Path, *extra: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    command = [
        sys.executable, "-m", "energy_bench", "--results-dir", str(results),
        f"backend.model={TINY_MODEL}", "backend.torch_dtype=float32",
        "scenario.dataset_name=bundled", "scenario.num_samples=1000", "scenario.repeats=50",
        "energy.idle_seconds=0.1", *extra,
    ]  # fmt: skip
    return subprocess.Popen(
        command, env={**OFFLINE, **(env or {})}, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip


def test_the_benchmark_stops_itself_when_its_sweep_s_heartbeat_stops(tmp_path):
    results = tmp_path / "attempt"
    results.mkdir()
    (results / contract.HEARTBEAT_FILE).touch()
    started = time.monotonic()
    proc = _bench(results, env={contract.HEARTBEAT_ENV: "3"})
    try:
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == contract.ExitCode.INTERRUPTED
    assert time.monotonic() - started < 60
    assert "the sweep that started this run is gone" in err.strip().splitlines()[-1]
    report = json.loads((results / contract.REPORT_FILE).read_text())
    assert report["status"] == "failed" and "gone" in report["error"]["message"]


def test_sigterm_ends_the_benchmark_like_ctrl_c_with_its_report(tmp_path):
    results = tmp_path / "attempt"
    proc = _bench(results)
    try:
        deadline = time.monotonic() + 90
        while not results.is_dir() and time.monotonic() < deadline:
            time.sleep(0.2)  # the folder is made once the config is read
        time.sleep(2)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == contract.ExitCode.INTERRUPTED
    assert "Stopped: stopped (SIGTERM)" in err.strip().splitlines()[-1]


def test_only_the_benchmark_logs_at_info_so_its_error_stays_the_last_line():
    # At INFO, torch prints its fake tensor cache statistics at exit, after the
    # benchmark's error line, and the sweep then files that as the run's error.
    probe = (
        "import logging, sys\n"
        "from energy_bench.cli import configure_logging\n"
        "configure_logging(verbose=False)\n"
        "logging.getLogger('torch._subclasses.fake_tensor').info('library chatter')\n"
        "logging.getLogger('energy_bench.benchmark').info('own message')\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert "own message" in done.stderr
    assert "library chatter" not in done.stderr


def test_a_leftover_local_benchmark_is_stopped_only_if_it_is_still_that_run(tmp_path):
    layout = OutputLayout(tmp_path)
    mine = layout.attempt_dir("run_a", __import__("datetime").datetime(2026, 1, 1))
    other = layout.attempt_dir("run_b", __import__("datetime").datetime(2026, 1, 1))
    sleeper = "import sys, time; time.sleep(120)"
    procs = []
    for folder in (mine, other):
        folder.mkdir(parents=True)
        proc = subprocess.Popen(
            [sys.executable, "-c", sleeper, "--results-dir", str(folder if folder is mine else
             tmp_path)],
            start_new_session=True,
        )  # fmt: skip
        (folder / PID_FILE).write_text(str(proc.pid))
        procs.append(proc)
    try:
        assert LocalRunner().remove_leftovers(tmp_path) == 1
        assert procs[0].wait(timeout=15) is not None
        assert procs[1].poll() is None  # its command line does not name its folder
        assert not (mine / PID_FILE).exists()
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


def test_execute_records_how_a_real_run_was_launched_with_a_heartbeat(tmp_path):
    seen = {}

    class Watching:
        name = "fake"

        def run(self, spec, *, token=None):
            seen["env"] = dict(spec.env)
            seen["beat"] = (spec.results_dir / contract.HEARTBEAT_FILE).exists()
            return RunOutcome(Cause.FAILED, 1, 0.0, "no")

    plan, _ = _plan()
    execute(plan, runner=Watching(), options=ExecOptions(out_dir=tmp_path, image="i"))
    assert seen["beat"] and float(seen["env"][contract.HEARTBEAT_ENV]) > 0
    assert ROOT.is_dir()


@pytest.mark.parametrize(
    ("argv", "said"),
    [(["reprot"], "did you mean 'report'?"), (["sweep"], "commands: run, report, build-image")],
)
def test_a_bare_word_that_is_no_command_never_starts_a_sweep(argv, said, capsys, tmp_path):
    from orchestrator.commands.cli import main

    assert main([*argv, "--output-dir", str(tmp_path / "out")]) == 2
    assert said in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_benchmark_whose_output_pipe_closes_stops_as_interrupted(tmp_path):
    results = tmp_path / "attempt"
    command = [
        sys.executable, "-m", "energy_bench", "--results-dir", str(results),
        f"backend.model={TINY_MODEL}", "backend.torch_dtype=float32",
        "scenario.dataset_name=bundled", "scenario.num_samples=20", "scenario.repeats=50",
        "energy.idle_seconds=0.1",
    ]  # fmt: skip
    proc = subprocess.Popen(
        command, env=OFFLINE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        proc.stdout.readline()  # it is writing; then its reader goes, as a killed sweep does
        proc.stdout.close()
        assert proc.wait(timeout=120) == contract.ExitCode.INTERRUPTED
    finally:
        proc.kill()
    report = json.loads((results / contract.REPORT_FILE).read_text())
    assert report["error"]["type"] == "Stopped"
    assert "output pipe closed" in report["error"]["message"]


def test_the_summary_counts_interrupted_runs():
    import io

    from rich.console import Console

    from orchestrator.commands.tables import print_summary
    from orchestrator.execution.scheduler import SweepResult

    plan, _ = _plan()
    record = RunRecord(plan.run_id, plan.name, "org/m", "A", "text_gen", "Off", "interrupted")
    console = Console(file=io.StringIO(), width=200)
    print_summary(console, SweepResult(records=[record]), Path("/tmp/out"))
    assert "0 ok (0 resumed), 0 failed, 1 interrupted, 0 skipped" in console.file.getvalue()


# --- found by review: clocks, keys, busy GPUs, nohup, full disks, broken runners ------------


def test_the_heartbeat_counts_changes_not_the_writer_s_clock(tmp_path):
    import threading

    results = tmp_path / "attempt"
    results.mkdir()
    beat = results / contract.HEARTBEAT_FILE
    beat.touch()
    done = threading.Event()

    def skewed_writer():  # a file server whose clock is a day behind, still beating
        tick = 0
        while not done.wait(0.3):
            tick += 1
            os.utime(beat, (time.time() - 86400 + tick, time.time() - 86400 + tick))

    writer = threading.Thread(target=skewed_writer, daemon=True)
    writer.start()
    command = [
        sys.executable, "-m", "energy_bench", "--results-dir", str(results),
        f"backend.model={TINY_MODEL}", "backend.torch_dtype=float32",
        "scenario.dataset_name=bundled", "scenario.num_samples=3", "energy.idle_seconds=3",
    ]  # fmt: skip
    try:
        done_run = subprocess.run(
            command, env={**OFFLINE, contract.HEARTBEAT_ENV: "2"}, capture_output=True,
            text=True, timeout=300,
        )  # fmt: skip
    finally:
        done.set()
    assert done_run.returncode == 0, done_run.stderr[-1500:]


def test_override_keys_count_as_the_benchmark_reads_them():
    plan, _ = _plan(extra=["+scenario.generate_kwargs.max_new_tokens = 8192"])
    assert plan.setting("scenario.generate_kwargs.max_new_tokens") == "8192"
    assert plan.default_timeout_s > 100 * 3600
    huge, _ = _plan(model_class="C", extra=["scenario.generate_kwargs.max_new_tokens=10000000"])
    assert huge.default_timeout_s == 30 * 24 * 3600  # clamped: never an overflowing wait


def test_a_host_whose_every_gpu_is_busy_never_falls_back_to_the_cpu(monkeypatch):
    from orchestrator.execution import gpus

    busy = gpus.Gpu(0, "GPU-a", "H200", 141.0, busy_pids=(4242,))
    monkeypatch.setattr(gpus, "inventory", lambda: [busy])
    with pytest.raises(RunnerError, match="every GPU of this host runs other processes"):
        gpus.usable(None)
    monkeypatch.setattr(gpus, "inventory", list)
    assert gpus.usable(None) == []  # no GPU at all: the CPU is the honest choice


def test_signals_ignored_at_start_stay_ignored():
    from orchestrator.commands.cli import _stops_like_ctrl_c

    before = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        with _stops_like_ctrl_c():
            assert signal.getsignal(signal.SIGHUP) == signal.SIG_IGN  # nohup keeps working
            assert signal.getsignal(signal.SIGTERM) != signal.SIG_DFL
    finally:
        signal.signal(signal.SIGHUP, before)


def test_a_log_on_a_full_disk_keeps_draining_the_run_s_output():
    from orchestrator.execution.runners.base import LogPump
    from orchestrator.secrets import Redactor

    class FullDisk:
        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

        def flush(self):
            raise OSError(errno.ENOSPC, "No space left on device")

    pump = LogPump(FullDisk(), Redactor(None))
    for i in range(2000):
        pump.feed(f"line {i}\n".encode())
    pump.close()
    assert pump.write_error is not None and "line 1999" in pump.tail()


def test_a_runner_that_breaks_fails_its_run_alone(tmp_path):
    plan, _ = _plan()

    class Broken:
        name = "fake"

        def run(self, spec, *, token=None):
            raise OverflowError("timestamp out of range for platform time_t")

    record = execute(plan, runner=Broken(), options=ExecOptions(out_dir=tmp_path, image="i"))
    assert record.status == "failed" and record.cause == Cause.RUNNER_ERROR.value
    assert "OverflowError" in record.error_message


def test_folders_of_an_earlier_spelling_are_renamed_once_and_never_over_a_run(tmp_path):
    from orchestrator.execution.execute import adopt_legacy_folders
    from orchestrator.store.paths import OutputLayout
    from orchestrator.store.records import RunRecord, load_record, save_record

    layout = OutputLayout(tmp_path)
    old = layout.run_dir("a_Off_N_A_Off_NA")  # only the last spelling is the run's own
    old.mkdir(parents=True)
    save_record(old, RunRecord("id", old.name, "org/a", "A", "text_gen", "Off", "ok"))
    layout.run_dir("b_Off_NA").mkdir()  # its new name is taken: left as it is
    layout.run_dir("b_Off_N_A").mkdir()
    layout.run_dir("c_Off_NA").mkdir()  # a folder without a record is renamed too
    (layout.run_dir("") / "d_Off_NA").write_text("a file, not a run folder")
    layout.run_dir("_Off_NAe_On").mkdir()  # a name without the spelling has no old one
    names = ["a_Off_N_A_Off_N_A", "b_Off_N_A", "c_Off_N_A", "d_Off_N_A", "e_On"]
    assert adopt_legacy_folders(tmp_path, names) == [
        ("a_Off_N_A_Off_NA", "a_Off_N_A_Off_N_A"), ("c_Off_NA", "c_Off_N_A"),
    ]  # fmt: skip
    assert load_record(layout.run_dir("a_Off_N_A_Off_N_A")).name == "a_Off_N_A_Off_N_A"
    assert layout.run_dir("b_Off_NA").is_dir() and layout.run_dir("d_Off_NA").is_file()
    assert layout.run_dir("_Off_NAe_On").is_dir() and not layout.run_dir("e_On").exists()
    assert adopt_legacy_folders(tmp_path, names) == []  # once


def test_a_skipped_record_says_so_and_why():
    from orchestrator.execution.execute import skipped_record

    (plan,) = plan_runs([single_config("org/m")], PlanOptions(image="img", software_id="s"))
    record = skipped_record(plan, ExecOptions(out_dir=Path("/out"), image="img"), "needs 2 GPUs")
    assert (record.status, record.cause, record.error_message, record.runner) == (
        "skipped", "skipped", "needs 2 GPUs", "",
    )  # fmt: skip
    assert (record.executor, record.model_class) == ("", "A")  # no runner, no executor
    classless = replace(plan, config=replace(plan.config, model_class=None))
    assert (
        skipped_record(classless, ExecOptions(out_dir=Path("/out"), image="img"), "x").model_class
        == ""
    )
