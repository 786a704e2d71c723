"""The runner contract, on the local runner and on a real Docker engine (marker ``docker``)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

import docker
import pytest
from conftest import TINY_MODEL

from orchestrator.execution.runners.docker import LABEL_OUTPUT_DIR, LABEL_RUN_ID, DockerRunner
from orchestrator.execution.runners.local import LocalRunner
from orchestrator.execution.spec import Cause, RunSpec
from orchestrator.secrets import MASK

TOKEN = "hf_TestTokenDoNotLeak1234"
QUICK = (
    f"backend.model={TINY_MODEL}",
    "backend.torch_dtype=float32",
    "scenario.dataset_name=bundled",
    "scenario.num_samples=4",
    "scenario.warmup_pass=False",
    "energy.idle_seconds=0.2",
)
# Minutes of work whatever the energy source (an estimate has no idle window to sit in): 200
# prompts of exactly 300 new tokens each.
SLOW = (
    *QUICK[:3],
    "scenario.num_samples=200",
    "scenario.warmup_pass=False",
    "energy.idle_seconds=0",
    "scenario.generate_kwargs.max_new_tokens=300",
    "scenario.generate_kwargs.min_new_tokens=300",
)
OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def spec(tmp_path: Path, overrides=QUICK, *, timeout=None, image="", run_id="t1") -> RunSpec:
    return RunSpec(
        run_id=run_id,
        overrides=tuple(overrides),
        output_dir=tmp_path,
        results_dir=tmp_path / "results",
        log_path=tmp_path / "logs" / "run.log",
        timeout_s=timeout,
        image=image,
        hf_cache_dir=tmp_path / "hf",
        read_only_paths=(TINY_MODEL,),
        env=OFFLINE,
    )


def files_text(folder: Path) -> str:
    return "".join(p.read_text(errors="replace") for p in folder.rglob("*") if p.is_file())


@pytest.fixture(params=["local", pytest.param("docker", marks=pytest.mark.docker)])
def runner_and_image(request):
    if request.param == "local":
        return LocalRunner(), ""
    image = request.getfixturevalue("docker_image")
    request.getfixturevalue("no_leftover_containers")
    return DockerRunner(user="1000:1000"), image


def test_a_run_writes_its_results_and_hides_the_token(tmp_path, runner_and_image):
    runner, image = runner_and_image
    s = spec(tmp_path, image=image)
    outcome = runner.run(s, token=TOKEN)
    assert outcome.ok, (outcome, s.log_path.read_text()[-2000:])
    names = {p.name for p in s.results_dir.iterdir()}
    assert {
        "benchmark_report.json",
        "GPU_ENERGY_WH.txt",
        "GPU_ENERGY_SUMMARY.json",
        "per_prompt.csv",
        "power_trace.csv",
        "benchmark_results.csv",
    } <= names
    report = json.loads((s.results_dir / "benchmark_report.json").read_text())
    assert report["summary"]["total_completion_tokens"] == 40
    assert "done: 4/4 prompts" in s.log_path.read_text()
    assert TOKEN not in s.log_path.read_text() and TOKEN not in files_text(s.results_dir)
    if isinstance(runner, DockerRunner):
        owners = {p.stat().st_uid for p in s.results_dir.iterdir()}
        assert owners == {1000}  # written by the container's non-root user
        assert report["provenance"]["image_tag"] == image
    else:
        assert TOKEN not in " ".join(runner.command(s))


CANARY = "hf_CanaryTokenMustBeMasked77"


@pytest.mark.parametrize(
    ("dataset", "printed"),
    [
        # Offline, a dataset name that is no file is logged in a warning; the run goes on.
        (CANARY, f"Hub dataset {MASK} unavailable"),
        # A missing prompt file is the run's error line: the log and the outcome's message.
        (f"/no/such/{CANARY}.jsonl", f"scenario.dataset_name='/no/such/{MASK}.jsonl'"),
    ],
    ids=["warning", "error-line"],
)
def test_a_token_the_benchmark_prints_is_masked_in_its_log(
    tmp_path, runner_and_image, dataset, printed
):
    """The benchmark echoes an override holding the run's token: the log shows only the mask."""
    runner, image = runner_and_image
    s = spec(tmp_path, (*QUICK, f"scenario.dataset_name={dataset}"), image=image)
    outcome = runner.run(s, token=CANARY)
    log_text = s.log_path.read_text()
    assert printed in log_text, log_text[-2000:]  # the benchmark really printed it
    assert CANARY not in log_text
    assert CANARY not in outcome.message  # the message goes into the record and the CSV
    if "/" in dataset:
        assert outcome.cause is Cause.CONFIG_ERROR and MASK in outcome.message
    else:
        assert outcome.ok, (outcome, log_text[-2000:])


def test_a_bad_config_is_classified(tmp_path, runner_and_image):
    runner, image = runner_and_image
    outcome = runner.run(spec(tmp_path, (*QUICK, "scenario.bogus=1"), image=image))
    assert outcome.cause is Cause.CONFIG_ERROR and outcome.exit_code == 2
    assert "unknown config key 'scenario.bogus'" in outcome.message


def test_a_run_past_its_timeout_is_stopped(tmp_path, runner_and_image):
    runner, image = runner_and_image
    start = time.monotonic()
    outcome = runner.run(spec(tmp_path, SLOW, timeout=6, image=image))
    assert outcome.cause is Cause.TIMEOUT, outcome
    assert "timed out after 6 s" in outcome.message
    assert 6 <= outcome.duration_s < 30 and time.monotonic() - start < 40
    # The benchmark ends on SIGTERM (its report written), not by the kill after the grace.
    assert outcome.duration_s < 6 + 8, outcome.duration_s


def _kill_soon(runner, run_id: str, after_s: float) -> threading.Thread:
    def kill() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            time.sleep(0.5)
            if isinstance(runner, DockerRunner):
                found = runner.client.containers.list(filters={"label": f"{LABEL_RUN_ID}={run_id}"})
                if found and time.monotonic() > deadline - 60 + after_s:
                    found[0].kill()  # SIGKILL
                    return
            else:
                active = list(runner._active)
                if active and time.monotonic() > deadline - 60 + after_s:
                    os.killpg(active[0].pid, signal.SIGKILL)
                    return

    thread = threading.Thread(target=kill, daemon=True)
    thread.start()
    return thread


def test_a_run_killed_mid_way_is_reported_killed(tmp_path, runner_and_image):
    runner, image = runner_and_image
    killer = _kill_soon(runner, "victim", after_s=4)
    outcome = runner.run(spec(tmp_path, SLOW, timeout=120, image=image, run_id="victim"))
    killer.join(timeout=5)
    assert outcome.cause is Cause.KILLED and outcome.exit_code == 137, outcome
    assert "SIGKILL" in outcome.message


SLOW_TO_STOP = """#!{python}
import signal, sys, time
from pathlib import Path

results = Path(sys.argv[sys.argv.index("--results-dir") + 1])


def stop(signum, frame):
    time.sleep(3.5)  # a loaded host: the run unwinds and writes its failure report slowly
    (results / "stopped cleanly").write_text("yes")
    sys.exit(130)


signal.signal(signal.SIGTERM, stop)
print("under way", flush=True)
time.sleep(60)
"""


def test_a_cancelled_run_has_the_grace_period_to_end_before_it_is_killed(tmp_path):
    # Ctrl-C cancels the runs; one that needs a few seconds to write its report still writes it
    # (it was killed after 2 s, and a loaded CI host lost the report).
    python = tmp_path / "python"
    python.write_text(SLOW_TO_STOP.format(python=sys.executable))
    python.chmod(0o755)
    runner = LocalRunner(python=str(python))
    run_spec = spec(tmp_path)
    outcomes = []
    thread = threading.Thread(target=lambda: outcomes.append(runner.run(run_spec)))
    thread.start()
    deadline = time.monotonic() + 30
    while "under way" not in _text(run_spec.log_path) and time.monotonic() < deadline:
        time.sleep(0.1)
    runner.cancel()
    thread.join(timeout=30)
    assert (run_spec.results_dir / "stopped cleanly").is_file()
    assert outcomes[0].cause is Cause.INTERRUPTED and outcomes[0].exit_code == 130, outcomes


def _text(path: Path) -> str:
    return path.read_text() if path.is_file() else ""


@pytest.mark.docker
def test_missing_image_says_how_to_build_it(tmp_path, docker_image, no_leftover_containers):
    outcome = DockerRunner().run(spec(tmp_path, image="ai_energy_score:no-such-tag"))
    assert outcome.cause is Cause.IMAGE_MISSING
    assert "python batch_runner.py build-image" in outcome.message


@pytest.mark.docker
def test_token_in_environment_not_in_command(tmp_path, docker_image, no_leftover_containers):
    runner = DockerRunner()
    container = runner.client.containers.create(
        **runner.container_kwargs(spec(tmp_path, image=docker_image), TOKEN)
    )
    try:
        attrs = container.attrs
        assert f"HF_TOKEN={TOKEN}" in attrs["Config"]["Env"]
        assert TOKEN not in json.dumps(attrs["Config"]["Cmd"]) + json.dumps(attrs["Args"])
        assert TOKEN not in json.dumps(attrs["Config"].get("Entrypoint"))
    finally:
        container.remove(force=True)


@pytest.mark.docker
def test_containers_an_earlier_sweep_left_are_removed_with_that_folder_only(
    tmp_path, docker_image, no_leftover_containers
):
    runner = DockerRunner()
    mine = spec(tmp_path / "mine", image=docker_image, run_id="left-1")
    other = spec(tmp_path / "other", image=docker_image, run_id="left-2")
    left = [
        runner.client.containers.create(**runner.container_kwargs(s, None))
        for s in (mine, mine, other)
    ]
    try:
        assert runner.remove_leftovers(mine.output_dir) == 2
        assert runner.remove_leftovers(mine.output_dir) == 0
        label = f"{LABEL_OUTPUT_DIR}={other.output_dir}"
        remaining = runner.client.containers.list(all=True, filters={"label": label})
        assert [c.id for c in remaining] == [left[2].id]  # another folder's are kept
    finally:
        for container in left:
            with contextlib.suppress(docker.errors.NotFound):
                container.remove(force=True)


@pytest.mark.docker
def test_gpu_request_names_the_exact_uuids(tmp_path, docker_image, no_leftover_containers):
    uuids = ("GPU-11111111-2222-3333-4444-555555555555", "GPU-66666666-7777-8888-9999-000000000000")
    runner = DockerRunner()
    s = RunSpec(**{**spec(tmp_path, image=docker_image).__dict__, "gpu_uuids": uuids})
    kwargs = runner.container_kwargs(s, None)
    container = runner.client.containers.create(**kwargs)
    try:
        (request,) = container.attrs["HostConfig"]["DeviceRequests"]
        assert request["DeviceIDs"] == list(uuids)
        assert request["Capabilities"] == [["gpu"]]
        assert container.attrs["HostConfig"]["ShmSize"] == 2**30
        assert container.attrs["Config"]["Labels"][LABEL_RUN_ID] == "t1"
        assert container.attrs["Config"]["User"] == runner.user
    finally:
        container.remove(force=True)


@pytest.mark.docker
def test_a_failed_gpu_start_leaves_no_container(tmp_path, docker_image, no_leftover_containers):
    # This machine has no GPU: the engine refuses the device request at start, after create.
    s = RunSpec(**{**spec(tmp_path, image=docker_image).__dict__, "gpu_uuids": ("GPU-x",)})
    outcome = DockerRunner().run(s)
    assert outcome.cause is Cause.RUNNER_ERROR
    assert "did not start" in outcome.message


def test_seed_run_docker_script_maps_to_a_single_run(tmp_path):
    import subprocess
    import sys

    from conftest import ROOT

    out = tmp_path / "out"
    done = subprocess.run(
        [
            "bash",
            str(ROOT / "container" / "run_docker.sh"),
            "-n",
            "3",
            "--config-name",
            "text_generation",
            f"backend.model={TINY_MODEL}",
            "--runner",
            "local",
            "--output-dir",
            str(out),
            "backend.torch_dtype=float32",
            "scenario.dataset_name=bundled",
            "scenario.warmup_pass=False",
            "energy.idle_seconds=0",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHON": sys.executable, **OFFLINE},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(
        (out / "individual_runs" / "tiny-model_Off" / "benchmark_report.json").read_text()
    )
    assert report["summary"]["total_prompts"] == 3
    assert (out / "master_results.csv").is_file()
