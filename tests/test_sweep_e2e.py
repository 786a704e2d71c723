"""Whole sweeps through ``batch_runner.py``: docker runner, resume, force, Ctrl-C, the lock,
and the README's CPU default."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import ROOT, TINY_MODEL, TINY_PIPELINE

from orchestrator.execution.runners.docker import LABEL_MANAGED
from orchestrator.store.master import AI_ENERGY_SCORE_COLUMNS

HEADER = ",Models to Add,Priority (1=hi),Class,Task,Reasoning State,Chat Template\n"
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "COLUMNS": "200"}


def sweep_cmd(csv_path: Path, out: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        str(ROOT / "batch_runner.py"),
        "--csv",
        str(csv_path),
        "--output-dir",
        str(out),
        "-n",
        "4",
        *extra,
        "backend.torch_dtype=float32",
        "scenario.dataset_name=bundled",
    ]


def master_rows(out: Path) -> tuple[list[str], list[dict[str, str]]]:
    with (out / "master_results.csv").open(newline="") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


def write_csv(tmp_path: Path, rows: list[str]) -> Path:
    path = tmp_path / "models.csv"
    path.write_text(HEADER + "".join(f",{r}\n" for r in rows))
    return path


class ContainerWatch:
    """Counts this project's running containers while a sweep runs."""

    def __init__(self, client):
        self.client, self.peak, self._stop = client, 0, threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self):
        while not self._stop.wait(0.3):
            running = self.client.containers.list(sparse=True, filters={"label": LABEL_MANAGED})
            self.peak = max(self.peak, len(running))

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


@pytest.mark.docker
def test_docker_sweep_resume_force(tmp_path, docker_image, no_leftover_containers):
    models = write_csv(
        tmp_path,
        [
            f"{TINY_MODEL},1,A,text_gen,Off,",
            f'{TINY_MODEL},1,A,text_gen,On,"max_new_tokens: 12"',
            f"{TINY_MODEL},2,A,text_gen,Off (N/A),",
            "nobody/no-such-model,3,A,text_gen,Off,",  # offline: fails to load, alone
            f'{TINY_PIPELINE},3,,image_gen,,"height: 256\nwidth: 256\nsave_images: 2"',
        ],
    )
    out = tmp_path / "out"
    base = sweep_cmd(
        models,
        out,
        "--runner",
        "docker",
        "--image",
        docker_image,
        "--max-parallel",
        "2",
        "--retries",
        "0",
    )
    with ContainerWatch(no_leftover_containers) as watch:
        first = subprocess.run(base, capture_output=True, text=True, env=ENV, timeout=400)
    assert first.returncode == 1, first.stderr[-3000:]  # one run failed
    assert 1 <= watch.peak <= 2
    header, rows = master_rows(out)
    assert tuple(header[:21]) == AI_ENERGY_SCORE_COLUMNS
    by_name = {r["run_name"]: r for r in rows}
    assert len(rows) == 5 and len(by_name) == 5
    assert {
        by_name[n]["status"] for n in ("tiny-model_Off", "tiny-model_On", "tiny-model_Off_N_A")
    } == {"ok"}
    failed = by_name["nobody_no-such-model_Off"]
    assert failed["status"] == "failed" and failed["cause"] in (
        "model_not_found",
        "model_load_error",
    )
    assert float(failed["total_duration_seconds"]) > 0
    image = by_name["tiny-image-pipeline_NA"]  # an image run, in the same image
    assert image["status"] == "ok" and image["task"] == "image_gen"
    assert int(image["images"]) == int(image["successful_prompts"]) == 4
    assert image["image_pipeline"] == "FluxPipeline" and image["total_tokens"] == ""
    assert image["image_protocol"].startswith("30 steps, 256x256, guidance 3.5")
    kept = out / "individual_runs" / "tiny-image-pipeline_NA" / "images"
    assert sorted(p.name for p in kept.iterdir()) == ["image_0000.png", "image_0001.png"]
    ok = by_name["tiny-model_Off"]
    assert float(ok["wh_per_1000_queries"]) == pytest.approx(
        float(ok["gpu_energy_wh"]) / int(ok["successful_prompts"]) * 1000
    )
    assert float(ok["tokens_per_joule"]) == pytest.approx(
        int(ok["total_tokens"]) / (float(ok["gpu_energy_wh"]) * 3600)
    )
    assert int(ok["total_completion_tokens"]) == 40 and ok["runner"] == "docker"
    assert len(list((out / "logs").glob("tiny-model_Off_2*.log"))) == 1

    second = subprocess.run(base, capture_output=True, text=True, env=ENV, timeout=400)
    assert second.returncode == 1
    assert "4 ok (4 resumed)" in " ".join(second.stdout.split())
    _, rows2 = master_rows(out)
    assert len(rows2) == 5
    assert {r["timestamp"] for r in rows2 if r["status"] == "ok"} == {
        r["timestamp"] for r in rows if r["status"] == "ok"
    }

    forced = subprocess.run(
        [*base, "--force", "--model-name", "tiny", "--reasoning-state", "On"],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=400,
    )
    assert forced.returncode == 0, forced.stderr[-2000:]
    assert "1 ok (0 resumed)" in " ".join(forced.stdout.split())
    assert len(list((out / "logs").glob("tiny-model_On_2*.log"))) == 2
    _, rows3 = master_rows(out)
    assert len(rows3) == 5


def _wait_for(predicate, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.3)
    return False


def _ok_rows(out: Path) -> int:
    try:
        return sum(1 for r in master_rows(out)[1] if r["status"] == "ok")
    except (OSError, csv.Error):
        return 0


@pytest.mark.docker
def test_ctrl_c_lock_and_resume(tmp_path, docker_image, no_leftover_containers):
    models = write_csv(
        tmp_path, [f"{TINY_MODEL},1,A,text_gen,{s}," for s in ("Off", "On", "Off (N/A)")]
    )
    out = tmp_path / "out"
    base = sweep_cmd(
        models,
        out,
        "--runner",
        "docker",
        "--image",
        docker_image,
        "energy.idle_seconds=4",
        "scenario.generate_kwargs.max_new_tokens=10",
        "scenario.generate_kwargs.min_new_tokens=10",
    )
    sweep = subprocess.Popen(
        base, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV
    )
    try:
        assert _wait_for(lambda: (out / ".sweep.lock").is_file() and _ok_rows(out) >= 1, 120)
        second = subprocess.run(base, capture_output=True, text=True, env=ENV, timeout=60)
        assert second.returncode == 2 and "in use by another sweep" in second.stderr
        assert _wait_for(
            lambda: bool(no_leftover_containers.containers.list(filters={"label": LABEL_MANAGED})),
            30,
        )
        sweep.send_signal(signal.SIGINT)
        sweep.communicate(timeout=120)
    finally:
        if sweep.poll() is None:
            sweep.kill()
    assert sweep.returncode == 130
    assert no_leftover_containers.containers.list(all=True, filters={"label": LABEL_MANAGED}) == []
    _, rows = master_rows(out)
    completed = [r for r in rows if r["status"] == "ok"]
    assert rows == completed and 1 <= len(rows) <= 2  # exactly the completed runs
    for row in rows:
        assert (out / "individual_runs" / row["run_name"] / "benchmark_report.json").is_file()

    rerun = subprocess.run(base, capture_output=True, text=True, env=ENV, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    _, rows = master_rows(out)
    assert len(rows) == 3 and {r["status"] for r in rows} == {"ok"}
    assert f"3 ok ({len(completed)} resumed)" in " ".join(rerun.stdout.split())


@pytest.mark.slow
def test_readme_cpu_default_sweep(tmp_path):
    """The README's demo on 20 prompts a run (.ci/run runs the README's command as written)."""
    out = tmp_path / "demo"
    result = subprocess.run(
        [
            sys.executable,
            "batch_runner.py",
            "--csv",
            "examples/demo_models.csv",
            "--output-dir",
            str(out),
            "-n",
            "20",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=ENV,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    _, rows = master_rows(out)
    assert [r["status"] for r in rows] == ["ok", "ok", "ok", "ok"]
    assert {r["runner"] for r in rows} == {"local"} or {r["runner"] for r in rows} == {"docker"}
    assert {r["energy_source"] for r in rows} <= {"estimate", "rapl", "nvml"}
    assert [r["task"] for r in rows].count("image_gen") == 1
    page = (out / "report" / "leaderboard.html").read_text()  # made at the end of the sweep
    assert "tiny-image-pipeline_NA" in page and page.count('<img src="data:image/png') == 4
    # two rating groups (text generation of class A, image generation): the best of each
    assert len(list((out / "report" / "labels").glob("*.png"))) == 2
    on = next(r for r in rows if r["reasoning_state"] == "On")
    assert 3 <= int(on["total_completion_tokens"]) / int(on["total_prompts"]) <= 32


@pytest.mark.docker
def test_a_killed_sweep_s_container_stops_itself_and_the_rerun_cleans_up(
    tmp_path, docker_image, no_leftover_containers
):
    models = write_csv(tmp_path, [f"{TINY_MODEL},1,A,text_gen,Off,"])
    out = tmp_path / "out"
    base = sweep_cmd(
        models, out, "--runner", "docker", "--image", docker_image, "--no-report",
        "scenario.repeats=200",
    )  # fmt: skip
    env = {**ENV, "AI_ENERGY_SCORE_HEARTBEAT_S": "4"}  # the sweep passes it on to its runs
    sweep = subprocess.Popen(base, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    client = no_leftover_containers
    try:
        assert _wait_for(
            lambda: bool(client.containers.list(filters={"label": LABEL_MANAGED})), 120
        )
        time.sleep(3)
        sweep.kill()  # SIGKILL: the sweep can stop nothing
        sweep.wait()
        assert _wait_for(
            lambda: not client.containers.list(filters={"label": LABEL_MANAGED}), 60
        ), "the container kept running after its sweep was killed"
    finally:
        if sweep.poll() is None:
            sweep.kill()
    (record,) = (out / "individual_runs").glob("*/run_record.json")
    assert '"running"' in record.read_text()  # nobody was left to say how it ended
    rerun = subprocess.run(
        [*base[:-1], "scenario.repeats=1"], capture_output=True, text=True, env=ENV, timeout=300
    )
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert "marked interrupted" in rerun.stderr and "cleaned up 1 benchmark" in rerun.stderr
    assert client.containers.list(all=True, filters={"label": LABEL_MANAGED}) == []
