"""``--executor ray``: a sweep's runs on a Ray cluster.

The checks of the cluster and the placement rules run on descriptions of nodes. The sweeps run
on a real cluster of two nodes on this machine (``ray_cluster``), in a network namespace of its
own: the demo gives the same rows as on the local executor, a node that dies mid-sweep loses
nothing, and Ctrl-C leaves no task and no benchmark behind.
"""

from __future__ import annotations

import _thread
import csv
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import ROOT
from ray_cluster import LocalRayCluster, unavailable

from orchestrator.errors import RunnerError
from orchestrator.execution.executors import ray_node
from orchestrator.execution.executors.ray_cluster import check_nodes, cluster_misfit
from orchestrator.execution.executors.ray_node import NodeInfo, _cpus, _gpus
from orchestrator.execution.gpus import Gpu
from orchestrator.execution.spec import Cause, RunOutcome, RunSpec
from orchestrator.models.csv_reader import single_config
from orchestrator.planning.plan import PlanOptions, plan_runs

GIB = 2**30
H200 = "NVIDIA H200"


def node(host: str, ray_gpus: int, gpus: int = 0, **kw) -> NodeInfo:
    from energy_bench import contract

    name = kw.pop("gpu_name", H200)
    listed = tuple(Gpu(i, f"GPU-{host}-{i}", name, 141.0) for i in range(gpus))
    defaults = {"software_id": "local abc", "version": contract.VERSION, "runner": "local"}
    return NodeInfo(f"{host}-id-0000", host, ray_gpus, listed, 64 * GIB, **(defaults | kw))


def test_the_cluster_s_gpu_nodes_must_agree_on_gpu_model_and_software():
    head = node("head", 0, software_id="", problem="no torch")  # runs nothing: not checked
    assert check_nodes([head, node("a", 2, 2), node("b", 8, 8)]) == (H200, "local abc")
    with pytest.raises(RunnerError, match=r"GPU model \(NVIDIA H200 on a.*A100 on b"):
        check_nodes([node("a", 2, 2), node("b", 1, 1, gpu_name="A100")])
    with pytest.raises(RunnerError, match=r"benchmark software \(local abc on a.*local def on b"):
        check_nodes([node("a", 2, 2), node("b", 1, 1, software_id="local def")])
    with pytest.raises(RunnerError, match=r"b \(node b-id-000\): no Docker engine"):
        check_nodes([node("a", 2, 2), node("b", 1, 1, problem="no Docker engine")])
    with pytest.raises(RunnerError, match=r"has version 0\.0\.1 of the project"):
        check_nodes([node("a", 2, 2), node("b", 1, 1, version="0.0.1")])
    # GPUs declared on machines without them: the runs go to the CPU, and say so in run ids
    assert check_nodes([node("a", 2), node("b", 1)]) == ("cpu", "local abc")
    with pytest.raises(RunnerError, match=r"no node of the Ray cluster has a GPU \(2 node"):
        check_nodes([head, node("cpu-only", 0)])  # a sweep that would skip every run


def _plan(model_class: str, params: str = "7B"):
    config = single_config(f"org/model-{params}", model_class=model_class)
    options = PlanOptions(image="i", software_id="s", hardware=H200, class_c_gpus=4)
    return plan_runs([config], options)[0]


def test_a_run_fits_when_one_node_has_the_gpus_and_their_memory():
    nodes = [node("small", 2, 2), node("big", 4, 4)]
    assert cluster_misfit(_plan("C"), nodes, None) == ""  # 4 GPUs: the big node
    assert cluster_misfit(_plan("C"), nodes[:1], None) == (
        "needs 4 GPUs; the largest node of the Ray cluster has 2"
    )
    # two nodes of 2 GPUs are not one of 4: a run never spans nodes
    assert "largest node of the Ray cluster has 2" in cluster_misfit(
        _plan("C"), [node("x", 2, 2), node("y", 2, 2)], None
    )
    too_big = cluster_misfit(_plan("B", "400B"), [node("a", 1, 1)], None)
    assert (
        too_big.startswith("needs ")
        and "(node a; no node of the Ray cluster can take it)" in too_big
    )
    assert "has a GPU" in cluster_misfit(_plan("A"), [node("cpu-only", 0)], None)
    # a node whose GPUs are only declared runs on its CPU: one device, as a host without GPUs
    declared = cluster_misfit(_plan("C"), [node("a", 4)], None)
    assert declared.startswith("needs 4 GPUs; the GPUs of a are only declared")
    assert cluster_misfit(_plan("A"), [node("a", 4)], None) == ""


def test_ray_s_gpu_ids_become_nvml_uuids_and_the_gpus_cores():
    listed = [Gpu(i, f"GPU-{i}", H200, 141.0) for i in range(4)]
    assert [g.uuid for g in _gpus(["2", "0"], listed)] == ["GPU-2", "GPU-0"]
    assert [g.uuid for g in _gpus(["GPU-3"], listed)] == ["GPU-3"]
    assert _gpus(["0", "1"], []) == []  # declared GPUs, no NVIDIA driver: the CPU
    with pytest.raises(ValueError, match="Ray gave GPU '7'; NVML lists 4"):
        _gpus(["7"], listed)
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) >= 2:  # each GPU its share of the node's cores, as slots share a host's
        first, second = _cpus(["0"], 2), _cpus(["1"], 2)
        assert first and second and not set(first) & set(second)
        assert set(first) | set(second) == set(cores)
        assert set(_cpus(["0", "1"], 2)) == set(cores)


def test_a_task_waits_for_its_gpus_to_be_left_by_a_benchmark_whose_task_died(monkeypatch):
    """Ray frees the GPU of a dead task at once; its benchmark ends only with its heartbeat."""
    monkeypatch.setattr(ray_node, "BUSY_POLL_S", 0.01)
    left = [Gpu(0, "GPU-0", H200, 141.0, busy_pids=(4242,)), Gpu(1, "GPU-1", H200, 141.0)]
    views = iter([left, left, [Gpu(0, "GPU-0", H200, 141.0)]])
    monkeypatch.setattr(ray_node, "inventory", lambda: next(views))
    assert ray_node.wait_until_free(("GPU-0",), 5.0) == ""  # free on the third look
    monkeypatch.setattr(ray_node, "inventory", lambda: left)
    assert ray_node.wait_until_free(("GPU-1",), 5.0) == ""  # another GPU's process: not ours
    busy = ray_node.wait_until_free(("GPU-0",), 0.05)
    assert busy == "its GPUs stayed in use by other processes for 0 s (GPU-0 by process 4242)"


def test_work_folders_of_dead_attempts_are_removed_and_live_ones_kept(tmp_path):
    from energy_bench import contract

    def attempt_folder(name: str, age_s: float, beat_age_s: float | None) -> Path:
        folder = tmp_path / f"{ray_node.WORK_PREFIX}{name}"
        (folder / "results").mkdir(parents=True)
        now = time.time()
        if beat_age_s is not None:
            beat = folder / "results" / contract.HEARTBEAT_FILE
            beat.touch()
            os.utime(beat, (now - beat_age_s, now - beat_age_s))
        os.utime(folder, (now - age_s, now - age_s))
        return folder

    dead = attempt_folder("dead", 600, 500)
    never_beat = attempt_folder("killed-early", 600, None)
    live = attempt_folder("live", 600, 2)  # an old folder whose run still beats
    new = attempt_folder("new", 1, None)  # just made, before its first beat
    other = tmp_path / "someone-else"
    other.mkdir()
    os.utime(other, (time.time() - 600, time.time() - 600))
    assert sorted(ray_node.remove_stale_work(tmp_path, 75)) == sorted([dead, never_beat])
    assert live.is_dir() and new.is_dir() and other.is_dir() and not dead.exists()


class LateStart:
    """A runner whose benchmark starts only after a moment, and runs until it is cancelled."""

    name = "late"

    def __init__(self) -> None:
        self.started, self.stopped = threading.Event(), threading.Event()

    def run(self, spec, *, token=None) -> RunOutcome:
        time.sleep(0.5)  # a container being created: nothing to stop yet
        self.started.set()
        self.stopped.wait(20)
        return RunOutcome(Cause.INTERRUPTED, 130, 0.5)

    def cancel(self) -> None:
        if self.started.is_set():
            self.stopped.set()


@pytest.fixture
def sigint_handled():
    """Python's own SIGINT handler: a test process started in the background ignores SIGINT,
    and then ``interrupt_main`` (what Ray's cancel does) does nothing."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.mark.usefixtures("sigint_handled")
def test_a_cancel_that_comes_before_the_benchmark_started_still_stops_it(tmp_path):
    """Ray's cancel reaches the task at once; the benchmark it was starting is stopped too."""
    runner = LateStart()
    spec = RunSpec("r", (), tmp_path, tmp_path / "results", tmp_path / "run.log")
    threading.Timer(0.1, _thread.interrupt_main).start()  # as Ray's cancel interrupts a task
    began = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        ray_node._run(runner, spec, None)
    assert runner.started.is_set() and runner.stopped.is_set()
    assert time.monotonic() - began < 5  # not the benchmark's whole run


def _sweep(*extra: str) -> list[str]:
    return [sys.executable, str(ROOT / "batch_runner.py"), *extra]


def test_the_ray_executor_without_ray_says_how_to_install_it(tmp_path):
    shadow = tmp_path / "ray"
    shadow.mkdir()
    (shadow / "__init__.py").write_text("raise ImportError('no ray here')\n")
    path = f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"
    done = subprocess.run(
        _sweep("--csv", "examples/demo_models.csv", "--executor", "ray", "--dry-run"),
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": path},
    )  # fmt: skip
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and '.[ray]"' in lines[0] and "Traceback" not in done.stderr


def test_a_driver_set_for_tokens_without_one_is_told_in_one_line(tmp_path):
    listening = socket.create_server(("127.0.0.1", 0))  # something answers; Ray asks no further
    port = listening.getsockname()[1]
    with listening:
        done = subprocess.run(
            _sweep("--csv", "examples/demo_models.csv", "--executor", "ray", "--ray-address",
                   f"127.0.0.1:{port}", "--dry-run"),
            cwd=ROOT, capture_output=True, text=True, timeout=120,
            env={k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
            | {"HOME": str(tmp_path), "RAY_AUTH_MODE": "token"},
        )  # fmt: skip
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "no authentication token was found" in lines[0], done.stderr


def test_an_address_where_nothing_answers_is_refused_at_once():
    """Ray itself would wait without end for a head node that is not there."""
    began = time.monotonic()
    done = subprocess.run(
        _sweep("--csv", "examples/demo_models.csv", "--executor", "ray", "--ray-address",
               "127.0.0.1:1", "--dry-run"),
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")},
    )  # fmt: skip
    assert done.returncode == 2 and time.monotonic() - began < 30
    assert done.stderr.strip() == (
        "error: --ray-address 127.0.0.1:1: nothing answers there (Connection refused); is the "
        "head node started (ray start --head --port 1)?"
    )


def test_gpus_are_refused_with_the_ray_executor():
    done = subprocess.run(
        _sweep("--csv", "examples/demo_models.csv", "--gpus", "0", "--dry-run"),
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**os.environ, "AI_ENERGY_SCORE_EXECUTOR": "ray"},
    )  # fmt: skip
    assert done.returncode == 2 and "--executor ray uses the cluster's" in done.stderr


# The sweeps below run on a real cluster.

ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "COLUMNS": "200"}
# Columns that depend on time (the short-window flag too: how long the measured window lasted)
# or on where a run ran; every other one must be equal.
VARYING = {
    "timestamp", "total_duration_seconds", "avg_total_time", "avg_time_to_first_token",
    "throughput_tokens_per_second", "output_tokens_per_second", "average_power_w",
    "short_window", "run_wall_seconds", "log_path", "executor", "host", "node_id",
    "attempt_nodes", "images_per_second",
}  # fmt: skip
BENCHMARK = "energy_bench"  # in the command line of every benchmark process


@pytest.fixture(scope="module")
def cluster():
    problem = unavailable()
    if problem:
        if os.environ.get("AI_ENERGY_SCORE_REQUIRE_RAY") == "1":
            pytest.fail(f"the Ray tests are required here: {problem}")
        pytest.skip(problem)
    running = LocalRayCluster(head_gpus=1, worker_gpus=2).start()
    try:
        yield running
    finally:
        running.stop()


def _demo(out: Path, *extra: str) -> list[str]:
    """The demo sweep: three text runs and one image run."""
    return _sweep(
        "--csv", str(ROOT / "examples" / "demo_models.csv"), "--output-dir", str(out),
        "--runner", "local", "--no-report", *extra,
    )  # fmt: skip


def _rows(out: Path) -> list[dict[str, str]]:
    with (out / "master_results.csv").open(newline="") as f:
        return sorted(csv.DictReader(f), key=lambda r: r["run_name"])


def _benchmarks() -> list[str]:
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    return [line for line in ps.splitlines() if f"-m {BENCHMARK}" in line]


def _wait_for(ready, timeout_s: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if ready():
            return True
        time.sleep(0.3)
    return False


@pytest.mark.ray
@pytest.mark.slow
def test_the_demo_on_a_ray_cluster_gives_the_rows_of_the_local_executor(cluster, tmp_path):
    local = subprocess.run(
        _demo(tmp_path / "local", "-n", "4"), env=cluster.env | ENV, capture_output=True,
        text=True, timeout=300,
    )  # fmt: skip
    assert local.returncode == 0, local.stderr[-3000:]
    ray = cluster.run(
        _demo(tmp_path / "ray", "-n", "4", "--executor", "ray", "--ray-address", cluster.address),
        env=cluster.env | ENV, timeout=300,
    )  # fmt: skip
    assert ray.returncode == 0, ray.stderr[-3000:]
    local_rows, ray_rows = _rows(tmp_path / "local"), _rows(tmp_path / "ray")
    assert [r["status"] for r in ray_rows] == ["ok"] * 4
    assert {r["executor"] for r in ray_rows} == {"ray"} and {r["runner"] for r in ray_rows} == {
        "local"
    }
    for row in ray_rows:  # where each run ran: a node of the cluster, once
        assert len(row["node_id"]) == 56 and row["attempts"] == "1"
        assert row["attempt_nodes"] == f"{row['host']} (Ray node {row['node_id']})"
    assert [r["run_id"] for r in local_rows] == [r["run_id"] for r in ray_rows]
    differ = [
        {k: (a[k], b[k]) for k in a if k not in VARYING and a[k] != b[k]}
        for a, b in zip(local_rows, ray_rows, strict=True)
    ]
    assert differ == [{}] * 4
    # the runs' files came back into the driver's folders, as a local run leaves them
    for row in ray_rows:
        run = tmp_path / "ray" / "individual_runs" / row["run_name"]
        assert (run / "benchmark_report.json").is_file()
        assert "# ran on " in (tmp_path / "ray" / row["log_path"]).read_text()
    # the image run's kept images came back with it
    (image_row,) = [r for r in ray_rows if r["task"] == "image_gen"]
    images = tmp_path / "ray" / "individual_runs" / image_row["run_name"] / "images"
    assert sorted(p.name for p in images.iterdir()) == [f"image_{i:04d}.png" for i in range(4)]
    assert image_row["images"] == "4"
    assert cluster.free_gpus() == 3


@pytest.mark.ray
@pytest.mark.slow
@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_cancels_every_task_and_the_rerun_completes(cluster, tmp_path, stop):
    out = tmp_path / "out"
    command = _demo(
        out, "-n", "60", "--task", "text_gen", "--executor", "ray", "--ray-address", cluster.address
    )  # the three text runs: one per GPU of the cluster
    sweep = cluster.popen(command, env=cluster.env | ENV)
    try:
        assert _wait_for(lambda: len(_benchmarks()) == 3, 120), "three runs never started"
        sweep.send_signal(stop)
        output, _ = sweep.communicate(timeout=120)
    finally:
        if sweep.poll() is None:
            sweep.kill()
    assert sweep.returncode == 130, output[-3000:]
    assert _benchmarks() == []  # stopped before the driver returned
    assert cluster.free_gpus() == 3  # no task holds a GPU
    assert {r["status"] for r in _rows(out)} <= {"interrupted", "ok"}
    assert not list(out.glob("individual_runs/*/attempts"))  # each attempt folder adopted

    rerun = cluster.run(command, env=cluster.env | ENV, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert [r["status"] for r in _rows(out)] == ["ok"] * 3


@pytest.mark.ray
@pytest.mark.slow
def test_a_node_that_dies_mid_sweep_has_its_runs_retried_elsewhere(cluster, tmp_path):
    out = tmp_path / "out"
    command = _demo(
        out, "-n", "40", "--task", "text_gen", "--executor", "ray", "--ray-address", cluster.address
    )  # the three text runs: one per GPU of the cluster
    sweep = cluster.popen(command, env=cluster.env | ENV | {"AI_ENERGY_SCORE_HEARTBEAT_S": "4"})
    worker = cluster.worker_node_id()
    try:
        assert _wait_for(lambda: len(_benchmarks()) == 3, 120), "three runs never started"
        cluster.kill_worker()  # two of the three runs were on it
        output, _ = sweep.communicate(timeout=300)
    finally:
        if sweep.poll() is None:
            sweep.kill()
        cluster.start_worker()
    assert sweep.returncode == 0, output[-3000:]
    rows = _rows(out)
    assert [r["status"] for r in rows] == ["ok"] * 3  # nothing lost
    head = {r["node_id"] for r in rows if r["attempts"] == "1"}
    retried = [r for r in rows if r["attempts"] == "2"]
    assert len(retried) == 2 and len(head) == 1
    for row in retried:  # first on the worker that died, then on the head
        first, second = row["attempt_nodes"].split("; ")
        assert head == {row["node_id"]} and second.endswith(f"(Ray node {row['node_id']})")
        assert first.endswith(f"(Ray node {worker})") and worker not in head
    assert _wait_for(lambda: _benchmarks() == [], 30)  # the dead node's benchmarks stopped too


@pytest.mark.ray
@pytest.mark.slow
def test_a_driver_without_the_cluster_s_token_is_told_what_it_needs(cluster, tmp_path):
    env = {k: v for k, v in cluster.env.items() if not k.startswith("RAY_AUTH")} | ENV
    done = cluster.run(
        _demo(tmp_path / "out", "--executor", "ray", "--ray-address", cluster.address, "--dry-run"),
        env=env, timeout=180,
    )  # fmt: skip
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "RAY_AUTH_MODE=token" in lines[0], done.stderr[-2000:]
    assert not (tmp_path / "out").exists()
