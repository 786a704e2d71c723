"""Host behaviour no other file runs: retries, the plan, GPUs, runners, settings, Ctrl-C.

Each test goes through the real code (the command line in-process where it can), with scripted
runners and GPU lists in place of a container engine or the GPU driver.
"""

from __future__ import annotations

import csv
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from functools import partial
from pathlib import Path

import pytest
from conftest import ROOT, TINY_MODEL
from fakes import fake_report, write_report

from energy_bench import contract
from orchestrator import DEFAULT_IMAGE
from orchestrator.errors import RunnerError
from orchestrator.execution import gpus
from orchestrator.execution.execute import ExecOptions, execute
from orchestrator.execution.executors import local as local_executor
from orchestrator.execution.runners.local import LocalRunner, process_alive
from orchestrator.execution.scheduler import SweepResult
from orchestrator.execution.spec import SIGKILL_STATUS, Cause, RunOutcome, classify_exit
from orchestrator.models.csv_reader import single_config
from orchestrator.planning.plan import PlanOptions, plan_runs
from orchestrator.store.paths import OutputLayout
from orchestrator.store.records import RunRecord, load_record, load_report, save_record

HEADER = ",Models to Add,Priority (1=hi),Class,Task,Reasoning State,Chat Template\n"
ROWS = (
    ",org/alpha,1,A,text_gen,Off,\n"
    ',org/beta,2,B,text_gen,On,"reasoning: True\nmax_new_tokens: 64"\n'
    ",org/gamma,1,C,text_gen,Off,\n"
    ",org/delta,3,C,text_gen,Off,num_gpus: 4\n"
    ",org/pics,1,N/A,image_gen,N/A,\n"
)
FOUR_GPUS = [
    gpus.Gpu(0, "GPU-aaaa", "NVIDIA H200", 141.0),
    gpus.Gpu(1, "GPU-bbbb", "NVIDIA H200", 141.0),
    gpus.Gpu(2, "GPU-cccc", "NVIDIA H200", 141.0, busy_pids=(4242,)),
    gpus.Gpu(3, "GPU-dddd", "NVIDIA H200", 141.0),
]


def models_csv(folder: Path, rows: str = ROWS) -> Path:
    path = folder / "models.csv"
    path.write_text(HEADER + rows)
    return path


class Scripted:
    """A runner whose launches end as scripted, in order (the last outcome repeats)."""

    name = "scripted"

    def __init__(self, *outcomes: RunOutcome) -> None:
        self.outcomes = list(outcomes)
        self.calls = 0

    def run(self, spec, *, token=None) -> RunOutcome:
        outcome = self.outcomes[min(self.calls, len(self.outcomes) - 1)]
        self.calls += 1
        if outcome.ok:  # as the benchmark does: a success leaves its report
            write_report(spec.results_dir, fake_report())
        return outcome

    def software_id(self, image: str) -> str:
        return "scripted"

    def cancel(self) -> None:
        pass

    def remove_leftovers(self, out_dir: Path) -> int:
        return 0


def killed(duration_s: float = 1.5) -> RunOutcome:
    """How a run killed with SIGKILL ends (the classification the runners apply)."""
    return replace(classify_exit(SIGKILL_STATUS, "loading weights"), duration_s=duration_s)


OK = RunOutcome(Cause.OK, 0, 2.0)


def one_plan():
    return plan_runs([single_config("org/m")], PlanOptions(image="img", software_id="s"))[0]


def options(tmp_path: Path, retries: int) -> ExecOptions:
    return ExecOptions(out_dir=tmp_path, image="img", retries=retries, retry_wait_s=0)


@pytest.fixture
def in_process(monkeypatch, tmp_path):
    """The command line run in this process: no GPUs, no debug log file, settings unset."""
    from orchestrator.commands import sweep as sweep_command

    for name in list(os.environ):
        if name.startswith(sweep_command.ENV_PREFIX):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no .env of the checkout
    monkeypatch.setenv("COLUMNS", "250")  # the plan table is never cut
    monkeypatch.setattr(gpus, "inventory", list)
    monkeypatch.setattr(sweep_command, "add_debug_log", lambda out_dir: None)
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    yield sweep_command
    root.setLevel(level)
    root.handlers[:] = handlers


def main(*argv: str) -> int:
    from orchestrator.commands.cli import main as cli_main

    return cli_main(list(argv))


# --- 3. retries -------------------------------------------------------------------------------


def test_a_killed_run_is_retried_and_its_second_attempt_is_the_record(tmp_path):
    """Killed (exit 137) then a success: two launches, one record that says ok after 2."""
    runner = Scripted(killed(1.5), OK)
    plan = one_plan()
    record = execute(plan, runner=runner, options=options(tmp_path, retries=1))
    assert runner.calls == 2
    assert (record.status, record.cause, record.exit_code) == ("ok", "ok", 0)
    assert record.attempts == 2 and record.error_message == ""
    assert record.duration_s == pytest.approx(3.5)  # both attempts' time
    folder = OutputLayout(tmp_path).run_dir(plan.name)
    assert load_record(folder) == record
    assert load_report(folder)["status"] == "ok"


def test_without_retries_a_killed_run_fails_after_one_attempt(tmp_path):
    runner = Scripted(killed(), OK)
    record = execute(one_plan(), runner=runner, options=options(tmp_path, retries=0))
    assert runner.calls == 1
    assert (record.status, record.cause, record.exit_code) == ("failed", "killed", SIGKILL_STATUS)
    assert record.attempts == 1 and "SIGKILL" in record.error_message


@pytest.mark.parametrize("cause", [c for c in Cause if c is not Cause.OK])
def test_only_killed_runs_runner_errors_lost_nodes_and_silent_servers_are_retried(tmp_path, cause):
    """Exactly these causes are retried, ``retries`` more times; all others never are."""
    runner = Scripted(RunOutcome(cause, 1, 0.1, "no"))
    record = execute(one_plan(), runner=runner, options=options(tmp_path, retries=2))
    retried = (Cause.KILLED, Cause.RUNNER_ERROR, Cause.NODE_LOST, Cause.SERVER_UNAVAILABLE)
    expected = 3 if cause in retried else 1
    assert runner.calls == expected and record.attempts == expected
    assert record.cause == cause.value and record.status != "ok"


def test_a_sweep_stopped_while_a_run_waits_to_retry_starts_no_further_attempt(tmp_path):
    """Ctrl-C during the wait before a retry: the retry never starts (no runner would stop it)."""
    stop = threading.Event()

    class KilledThenStopped(Scripted):
        def run(self, spec, *, token=None):
            threading.Timer(0.2, stop.set).start()  # Ctrl-C arrives during the backoff
            return super().run(spec, token=token)

    runner = KilledThenStopped(killed(), OK)
    waits = ExecOptions(out_dir=tmp_path, image="img", retries=3, retry_wait_s=1)
    record = execute(one_plan(), runner=runner, options=waits, stop=stop)
    assert runner.calls == 1 and record.attempts == 1
    assert (record.status, record.cause) == ("interrupted", "interrupted")
    assert record.host and record.attempt_nodes == (record.host,)  # where the one attempt ran


def test_retries_from_the_command_line_reach_the_runs(in_process, tmp_path, monkeypatch):
    """``--retries N`` gives a killed run N more attempts; a config error still gets one."""
    csv_path = models_csv(tmp_path, ",org/alpha,1,A,text_gen,Off,\n")
    out = tmp_path / "out"
    name = "org_alpha_Off"

    # As the sweep builds them, with no wait between attempts (the backoff is tenacity's).
    monkeypatch.setattr(in_process, "ExecOptions", partial(ExecOptions, retry_wait_s=0))

    def sweep(runner: Scripted, *extra: str) -> int:
        monkeypatch.setattr(local_executor, "make_runner", lambda kind, image: runner)
        argv = ["--csv", str(csv_path), "--output-dir", str(out), "--no-report", "-q", "--force"]
        return main(*argv, *extra)

    twice_killed = Scripted(killed(), killed(), OK)
    assert sweep(twice_killed, "--retries", "1") == 1
    assert twice_killed.calls == 2
    record = load_record(OutputLayout(out).run_dir(name))
    assert (record.status, record.cause, record.attempts) == ("failed", "killed", 2)

    again = Scripted(killed(), killed(), OK)
    assert sweep(again, "--retries", "2") == 0
    assert again.calls == 3
    record = load_record(OutputLayout(out).run_dir(name))
    assert (record.status, record.attempts) == ("ok", 3)

    default = Scripted(killed(), OK)
    assert sweep(default) == 0 and default.calls == 2  # --retries defaults to 1

    bad_config = Scripted(RunOutcome(Cause.CONFIG_ERROR, 2, 0.1, "unknown config key"))
    assert sweep(bad_config, "--retries", "3") == 1
    assert bad_config.calls == 1


# --- 5. the --dry-run plan --------------------------------------------------------------------


def plan_table(text: str) -> dict[str, list[str]]:
    """The rows of the printed plan table, by run name: run id, class, GPUs, tokens, status."""
    rows = {}
    for line in text.splitlines():
        if line.startswith("│"):
            cells = [c.strip() for c in line.strip().strip("│").split("│")]
            rows[cells[0]] = cells[1:]
    return rows


def test_dry_run_prints_each_run_with_its_class_gpus_budget_and_status(
    in_process, tmp_path, capsys, monkeypatch
):
    monkeypatch.setattr(gpus, "inventory", lambda: FOUR_GPUS)
    csv_path = models_csv(tmp_path)
    out = tmp_path / "out"
    argv = ["--csv", str(csv_path), "--output-dir", str(out), "--runner", "local", "--dry-run"]
    assert main(*argv) == 0
    text = capsys.readouterr().out
    rows = plan_table(text)
    got = {name: cells[1:] for name, cells in rows.items()}
    assert got == {
        "org_alpha_Off": ["A", "1", "10 tokens", "to run"],
        "org_beta_On": ["B", "1", "1-64 tokens", "to run"],
        "org_gamma_Off": ["C", "2", "10 tokens", "to run"],
        "org_delta_Off": ["C", "4", "10 tokens", "skip: needs 4 GPUs; 3 usable on this host"],
        # an image row of no known family: the pipeline its model_index.json names
        "org_pics_NA": ["-", "1", "1024x1024, 30 steps", "to run"],
    }
    assert "plan: 4 to run, 0 complete, 1 skipped" in text
    # The busy GPU is left out of the pool.
    slots = "slots: GPU 0 (GPU-aaaa), GPU 1 (GPU-bbbb), GPU 2 (GPU-dddd)"
    assert f"runner local, image {DEFAULT_IMAGE}, {slots}" in text
    assert not out.exists()  # a plan touches nothing

    # The run id shown is the one resume checks: a complete result under it is skipped.
    alpha_id = rows["org_alpha_Off"][0]
    folder = OutputLayout(out).run_dir("org_alpha_Off")
    record = RunRecord(alpha_id, "org_alpha_Off", "org/alpha", "A", "text_gen", "Off", "ok")
    save_record(folder, record)
    write_report(folder, fake_report())
    assert main(*argv) == 0
    text = capsys.readouterr().out
    assert plan_table(text)["org_alpha_Off"][-1] == "complete (resume skips it)"
    assert "plan: 3 to run, 1 complete, 1 skipped" in text
    assert main(*argv, "--force") == 0
    assert plan_table(capsys.readouterr().out)["org_alpha_Off"][-1] == "to run"


def test_dry_run_uses_only_the_gpus_named(in_process, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(gpus, "inventory", lambda: FOUR_GPUS)
    csv_path = models_csv(tmp_path, ",org/gamma,1,C,text_gen,Off,\n")
    base = ["--csv", str(csv_path), "--output-dir", str(tmp_path / "o"), "--runner", "local"]
    assert main(*base, "--dry-run", "--gpus", "3,GPU-AAAA") == 0
    text = capsys.readouterr().out
    assert "slots: GPU 0 (GPU-dddd), GPU 1 (GPU-aaaa)\n" in text
    assert plan_table(text)["org_gamma_Off"][2:] == ["2", "10 tokens", "to run"]
    assert main(*base, "--dry-run", "--gpus", "3") == 0
    assert "needs 2 GPUs; 1 usable" in capsys.readouterr().out
    assert main(*base, "--dry-run", "--gpus", "2") == 2  # only a busy one
    assert "--gpus 2: no usable GPU" in capsys.readouterr().err


def test_dry_run_skips_a_model_larger_than_the_memory_of_the_gpus_it_gets(
    in_process, tmp_path, capsys, monkeypatch
):
    monkeypatch.setattr(gpus, "inventory", lambda: FOUR_GPUS)  # three usable, 141 GiB each
    csv_path = models_csv(
        tmp_path, ",org/huge-400B,1,C,text_gen,Off,\n,org/mid-100B,1,C,text_gen,Off,\n"
    )
    base = ["--csv", str(csv_path), "--output-dir", str(tmp_path / "o"), "--runner", "local"]
    assert main(*base, "--dry-run") == 0
    rows = plan_table(capsys.readouterr().out)
    huge = "skip: needs ~745 GiB for 400B bf16 weights; 2 GPUs here have 282 GiB"
    assert rows["org_huge-400B_Off"][-1] == huge
    assert rows["org_mid-100B_Off"][-1] == "to run"  # ~186 GiB


@pytest.fixture
def no_token(monkeypatch, tmp_path):
    """No token anywhere the sweep looks: the environment, ./.env, the Hub's token file."""
    from huggingface_hub import constants

    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-token-file"))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty-hub-cache"))


def test_the_dry_run_warns_without_a_token_naming_only_hub_models_that_will_run(
    in_process, no_token, tmp_path, capsys, caplog, monkeypatch
):
    from orchestrator.execution import slots

    monkeypatch.setattr(slots, "host_memory_bytes", lambda: 64 * 2**30, raising=False)
    rows = (
        ",org/alpha,1,A,text_gen,Off,\n"
        ",org/done,1,A,text_gen,Off,\n"
        f",{TINY_MODEL},1,A,text_gen,Off,\n"
        ",org/pics,1,N/A,image_gen,N/A,\n"
        ",org/huge-400B,1,A,text_gen,Off,\n"
    )
    csv_path = models_csv(tmp_path, rows)
    out = tmp_path / "out"
    argv = ["--csv", str(csv_path), "--output-dir", str(out), "--runner", "local", "--dry-run"]
    monkeypatch.setenv("COLUMNS", "400")  # the run id column shows
    assert main(*argv) == 0
    done_id = plan_table(capsys.readouterr().out)["org_done_Off"][0]
    folder = OutputLayout(out).run_dir("org_done_Off")
    save_record(
        folder, RunRecord(done_id, "org_done_Off", "org/done", "A", "text_gen", "Off", "ok")
    )
    write_report(folder, fake_report())
    caplog.clear()
    assert main(*argv) == 0
    (warning,) = [m for m in caplog.messages if "token" in m]
    assert "no Hugging Face token" in warning and "401/403" in warning
    # not complete, not skipped, not a local folder (the image row runs too)
    assert warning.endswith(": org/alpha, org/pics")
    assert "2 Hub models " in warning
    plan = plan_table(capsys.readouterr().out)
    assert plan["org_huge-400B_Off"][-1].startswith("skip: needs ~745 GiB")
    assert plan["org_done_Off"][-1] == "complete (resume skips it)"

    monkeypatch.setenv("HF_TOKEN", "hf_" + "x" * 30)
    caplog.clear()
    assert main(*argv) == 0
    assert not [m for m in caplog.messages if "token" in m]


# --- 5. GPU selection -------------------------------------------------------------------------


def test_gpus_are_selected_by_index_or_uuid_in_the_order_given():
    assert gpus.select(FOUR_GPUS, "3, GPU-AAAA,1") == [FOUR_GPUS[3], FOUR_GPUS[0], FOUR_GPUS[1]]
    assert gpus.select(FOUR_GPUS, "gpu-bbbb,") == [FOUR_GPUS[1]]


def test_busy_gpus_are_skipped_with_a_warning(caplog):
    with caplog.at_level(logging.WARNING, logger=gpus.__name__):
        assert gpus.select(FOUR_GPUS, None) == [FOUR_GPUS[0], FOUR_GPUS[1], FOUR_GPUS[3]]
    assert "GPU 2 (GPU-cccc) runs other processes [4242]: not used" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger=gpus.__name__):
        assert gpus.select(FOUR_GPUS, "2,3") == [FOUR_GPUS[3]]
    assert "GPU 2 (GPU-cccc)" in caplog.text
    assert gpus.select(FOUR_GPUS, "2") == []


def test_an_unknown_gpu_is_refused_naming_the_host_s_gpus(monkeypatch):
    with pytest.raises(RunnerError) as caught:
        gpus.select(FOUR_GPUS, "0,7,GPU-zzzz")
    message = str(caught.value)
    assert message.startswith("--gpus: unknown GPU 7, GPU-zzzz; this host has 0 (GPU-aaaa)")
    with pytest.raises(RunnerError, match="unknown GPU 0; this host has none"):
        gpus.select([], "0")
    monkeypatch.setattr(gpus, "inventory", lambda: FOUR_GPUS)
    with pytest.raises(RunnerError, match="--gpus 2: no usable GPU"):
        gpus.usable("2")
    assert gpus.usable("1") == [FOUR_GPUS[1]]


# --- 5. runner choice -------------------------------------------------------------------------


class FakeDocker:
    """Stands in for the Docker runner (no engine is asked)."""

    name = "docker"


@pytest.fixture
def engine(monkeypatch):
    """Set whether a Docker engine answers and whether it has the image; returns the asks."""
    from orchestrator.execution.runners import docker, image

    asked: list[str] = []
    state = {"answers": True, "has_image": True}

    def answers(timeout_s: float = 3.0) -> bool:
        asked.append("engine")
        return state["answers"]

    def exists(tag: str) -> bool:
        asked.append(tag)
        return state["has_image"]

    monkeypatch.setattr(docker, "engine_answers", answers)
    monkeypatch.setattr(docker, "DockerRunner", FakeDocker)
    monkeypatch.setattr(image, "image_exists", exists)
    return state, asked


def test_auto_takes_docker_only_when_the_engine_answers_and_has_the_image(engine, caplog):
    from orchestrator.execution.runners.choice import make_runner

    state, asked = engine
    assert isinstance(make_runner("auto", "img:1"), FakeDocker)
    assert asked == ["engine", "img:1"]
    state["has_image"] = False
    with caplog.at_level(logging.WARNING):
        assert isinstance(make_runner("auto", "img:1"), LocalRunner)
    assert "image img:1 not built" in caplog.text
    state["answers"] = False
    asked.clear()
    assert isinstance(make_runner("auto", "img:1"), LocalRunner)
    assert asked == ["engine"]  # no image lookup without an engine


def test_named_runners_are_taken_as_asked(engine):
    from orchestrator.execution.runners.choice import make_runner

    state, asked = engine
    assert isinstance(make_runner("local", "img:1"), LocalRunner) and asked == []
    state["has_image"] = False  # docker is asked for: a missing image is the run's error
    assert isinstance(make_runner("docker", "img:1"), FakeDocker)
    state["answers"] = False
    with pytest.raises(RunnerError, match="--runner docker: no Docker engine answers"):
        make_runner("docker", "img:1")


def test_a_host_installed_for_docker_only_refuses_local_runs_before_anything_runs(
    engine, monkeypatch
):
    from importlib import metadata

    from orchestrator.execution.runners.choice import make_runner

    real = metadata.version

    def without_torch(package: str) -> str:  # `pip install -e .`: no benchmark libraries
        if package in ("torch", "accelerate"):
            raise metadata.PackageNotFoundError(package)
        return real(package)

    monkeypatch.setattr(metadata, "version", without_torch)
    state, _ = engine
    assert isinstance(make_runner("auto", "img:1"), FakeDocker)  # Docker needs none of them
    for name, answers, has_image in (("local", True, True), ("auto", False, False),
                                     ("auto", True, False)):  # fmt: skip
        state["answers"], state["has_image"] = answers, has_image
        with pytest.raises(RunnerError) as refused:
            make_runner(name, "img:1")
        message = str(refused.value)
        assert "lacks the benchmark's torch, accelerate" in message
        assert "requirements-cpu.txt" in message and "build-image" in message


# --- 5. settings from the environment and .env ------------------------------------------------


def test_settings_come_from_the_environment_then_dotenv_below_the_command_line(
    in_process, tmp_path, capsys, monkeypatch
):
    csv_path = models_csv(tmp_path, ",org/alpha,1,A,text_gen,Off,\n")
    (tmp_path / ".env").write_text(
        f"AI_ENERGY_SCORE_CSV={csv_path}\n"
        "AI_ENERGY_SCORE_IMAGE=from-dotenv:1\n"
        "AI_ENERGY_SCORE_RUNNER=local\n"
    )
    assert main("--dry-run") == 0
    text = capsys.readouterr().out
    assert "org_alpha_Off" in text and "runner local, image from-dotenv:1," in text
    monkeypatch.setenv("AI_ENERGY_SCORE_IMAGE", "from-env:2")
    assert main("--dry-run") == 0
    assert "image from-env:2," in capsys.readouterr().out  # the environment beats .env
    assert main("--dry-run", "--image", "cli:3") == 0
    assert "image cli:3," in capsys.readouterr().out  # the command line beats both
    monkeypatch.setenv("AI_ENERGY_SCORE_TIMEOUT", "0")
    assert main("--dry-run") == 2  # checked as if typed
    assert "--timeout 0: must be more than 0 seconds" in capsys.readouterr().err


def test_settings_from_the_environment_reach_the_sweep_typed(in_process, tmp_path, monkeypatch):
    csv_path = models_csv(tmp_path, ",org/alpha,1,A,text_gen,Off,\n")
    out = tmp_path / "from-dotenv"
    (tmp_path / ".env").write_text(f"AI_ENERGY_SCORE_OUTPUT_DIR={out}\nAI_ENERGY_SCORE_RETRIES=9\n")
    settings = {
        "CSV": str(csv_path), "RUNNER": "local", "RETRIES": "4", "TIMEOUT": "90.5",
        "MAX_PARALLEL": "2", "ORDER": "priority", "NUM_PROMPTS": "7",
    }  # fmt: skip
    for key, value in settings.items():
        monkeypatch.setenv(f"AI_ENERGY_SCORE_{key}", value)
    seen = {}

    def run_sweep(plans, **kwargs):
        seen.update(kwargs, plans=plans)
        return SweepResult()

    monkeypatch.setattr(in_process, "run_sweep", run_sweep)
    assert main("--no-report", "-q") == 0
    exec_options = seen["options"]
    assert exec_options.out_dir == out.resolve()
    assert exec_options.retries == 4 and exec_options.timeout_s == 90.5
    assert (seen["max_parallel"], seen["order"]) == (2, "priority")
    (plan,) = seen["plans"]
    assert plan.setting("scenario.num_samples") == "7"
    assert main("--no-report", "-q", "--retries", "0") == 0
    assert seen["options"].retries == 0


def test_every_option_can_come_from_the_environment(in_process, tmp_path, capsys, monkeypatch):
    csv_path = models_csv(tmp_path, ",org/alpha,1,A,text_gen,Off,\n,org/beta,1,B,text_gen,On,\n")
    formats = tmp_path / "formats.yaml"
    formats.write_text(
        "families:\n - {name: b, patterns: [beta], on: system_prompt, off: system_prompt}\n"
    )
    for key, value in {
        "CSV": str(csv_path), "RUNNER": "local", "CLASS": "b", "REASONING_STATE": "on",
        "DRY_RUN": "true", "REASONING_FORMATS": str(formats),
    }.items():  # fmt: skip
        monkeypatch.setenv(f"AI_ENERGY_SCORE_{key}", value)
    assert main() == 0  # a dry run, of the filtered rows only
    text = capsys.readouterr().out
    assert "org_beta_On" in text and "org_alpha_Off" not in text
    monkeypatch.setenv("AI_ENERGY_SCORE_DRY_RUN", "maybe")
    assert main() == 2
    assert "AI_ENERGY_SCORE_DRY_RUN='maybe': expected true or false" in capsys.readouterr().err
    monkeypatch.setenv("AI_ENERGY_SCORE_DRY_RUN", "1")
    monkeypatch.setenv("AI_ENERGY_SCORE_RUNNER", "podman")
    assert main() == 2
    assert "AI_ENERGY_SCORE_RUNNER='podman': expected one of auto" in capsys.readouterr().err
    monkeypatch.setenv("AI_ENERGY_SCORE_RUNNER", "local")
    monkeypatch.setenv("AI_ENERGY_SCORE_REASONING_FORMATS", str(tmp_path / "missing.yaml"))
    assert main() == 2
    assert f"{tmp_path / 'missing.yaml'}: file not found" in capsys.readouterr().err


# --- 5. Ctrl-C with the local runner ----------------------------------------------------------


def test_ctrl_c_stops_a_local_sweep_its_benchmark_and_records_interrupted(tmp_path):
    csv_path = models_csv(tmp_path, f",{TINY_MODEL},1,A,text_gen,Off,\n")
    out = tmp_path / "out"
    layout = OutputLayout(out)
    command = [
        sys.executable, str(ROOT / "batch_runner.py"), "--csv", str(csv_path),
        "--output-dir", str(out), "--runner", "local", "--no-report", "-n", "2",
        "backend.torch_dtype=float32", "scenario.dataset_name=bundled",
        # It runs passes until stopped: a CPU run has no idle baseline to sit in, and with the
        # usual repeats a slow poll (a loaded host) could see the run end before the signal.
        "scenario.repeats=100000",
    ]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    sweep = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
        # As from a terminal: a parent that ignores SIGINT (a background job) passes that on.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    pid = None
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and sweep.poll() is None:
            running = load_record(layout.run_dir("tiny-model_Off"))
            log = layout.inside(running.log_path) if running else None
            if log and log.is_file() and "prompts from" in log.read_text():  # under way
                pid = int(layout.pid_files()[0].read_text())
                break
            time.sleep(0.2)
        assert pid is not None and process_alive(pid), sweep.poll()
        sweep.send_signal(signal.SIGINT)
        _, err = sweep.communicate(timeout=45)
    finally:
        if sweep.poll() is None:
            sweep.kill()
            sweep.wait()
        if pid is not None and process_alive(pid):
            os.killpg(pid, signal.SIGKILL)
    assert sweep.returncode == 130, err.decode()[-2000:]
    assert "interrupted" in err.decode().splitlines()[-1]
    assert not process_alive(pid)  # the benchmark is gone with its sweep
    assert layout.pid_files() == []
    record = load_record(layout.run_dir("tiny-model_Off"))
    assert (record.status, record.cause) == ("interrupted", Cause.INTERRUPTED.value)
    with layout.master_csv.open(newline="") as f:
        assert list(csv.DictReader(f)) == []  # the master CSV holds only completed runs
    assert load_report(layout.run_dir("tiny-model_Off"))["status"] == contract.STATUS_FAILED
