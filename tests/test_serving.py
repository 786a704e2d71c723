"""The serving backend (``--backend vllm``) against a real OpenAI-compatible server.

The server is ``transformers serve`` on a free loopback port, loading the tiny models on demand
on the CPU: a real HTTP server that streams, reports usage and refuses vLLM's ``min_tokens``.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import ROOT, TINY_EOS_MODEL, TINY_MODEL

from energy_bench.backends.serving import public_url
from orchestrator.errors import RunnerError
from orchestrator.execution.runners.docker import DockerRunner
from orchestrator.execution.spec import RunSpec

OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
ENV = {**os.environ, **OFFLINE}
HEADER = ",Models to Add,Priority (1=hi),Class,Task,Reasoning State,Chat Template\n"
SERVE = shutil.which("transformers", path=str(Path(sys.executable).parent))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as reply:
            return reply.status == 200
    except OSError:
        return False


@pytest.fixture(scope="module")
def server():
    """The base URL of a ``transformers serve`` that loads the tiny models on demand."""
    if SERVE is None:
        pytest.skip('needs transformers serve: pip install "transformers[serving]"')
    port = _free_port()
    proc = subprocess.Popen(
        [SERVE, "serve", "--host", "127.0.0.1", "--port", str(port), "--device", "cpu"],
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not _answers(f"http://127.0.0.1:{port}/health"):
            assert proc.poll() is None and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.5)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def sweep(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "batch_runner.py", "--runner", "local", "--no-report", *args]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=ENV, timeout=600)


def master(out: Path) -> tuple[list[str], list[dict[str, str]]]:
    """The master CSV's columns, and its rows by run name."""
    with (out / "master_results.csv").open(newline="") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), sorted(
            reader, key=lambda r: r["run_name"].removesuffix("_served")
        )


def report(out: Path, name: str) -> dict:
    return json.loads((out / "individual_runs" / name / "benchmark_report.json").read_text())


def files(out: Path, name: str) -> set[str]:
    return {p.name for p in (out / "individual_runs" / name).iterdir() if p.is_file()}


@pytest.mark.slow
def test_the_demo_served_writes_what_the_pytorch_backend_writes(tmp_path, server):
    local, served = tmp_path / "local", tmp_path / "served"
    demo = ("--csv", "examples/demo_models.csv", "-n", "3", "--task", "text_gen")
    done = sweep(*demo, "--output-dir", str(local))
    assert done.returncode == 0, done.stderr[-2000:]
    done = sweep(*demo, "--output-dir", str(served), "--backend", "vllm", "--endpoint", server)
    assert done.returncode == 0, done.stderr[-2000:]

    local_columns, local_rows = master(local)
    served_columns, served_rows = master(served)
    assert served_columns == local_columns
    assert [r["status"] for r in served_rows] == ["ok"] * 3
    assert [r["run_name"] for r in served_rows] == [r["run_name"] + "_served" for r in local_rows]
    for local_row, row in zip(local_rows, served_rows, strict=True):
        assert files(served, row["run_name"]) == files(local, local_row["run_name"])
        assert row["generation_path"] == "served"
        # The same prompts, rendered by the same chat template, and the same exact budgets.
        for key in ("reasoning_state", "total_prompts", "total_completion_tokens"):
            assert row[key] == local_row[key], key
    off = report(served, "tiny-model_Off_served")
    assert off["summary"]["total_completion_tokens"] == 3 * 10  # 10 tokens a prompt, as asked
    assert off["summary"]["budget_mismatches"] == 0
    assert off["summary"]["requests_per_second"] > 0
    assert off["provenance"]["endpoint"] == server
    # transformers serve refuses vLLM's min_tokens: asked again without it, and said so.
    assert off["provenance"]["budget_fields_taken"] is False
    on, local_on = report(served, "tiny-model_On_served"), report(local, "tiny-model_On")
    assert on["reasoning"]["applied_control"] == local_on["reasoning"]["applied_control"]


@pytest.mark.slow
def test_a_server_that_stops_before_the_budget_is_flagged(tmp_path, server):
    models = tmp_path / "models.csv"
    models.write_text(HEADER + f",{TINY_EOS_MODEL},1,A,text_gen,Off,\n")
    out = tmp_path / "out"
    done = sweep(
        "--csv", str(models), "--output-dir", str(out), "-n", "4",
        "--backend", "vllm", "--endpoint", server, "scenario.concurrency=2",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    summary = report(out, "tiny-eos-model_Off_served")["summary"]
    # min_tokens=10 cannot reach the server: each answer stops after one token, and is counted.
    assert summary["total_completion_tokens"] == 4
    assert summary["budget_mismatches"] == 4 * 2  # the measured pass and the warmup pass
    assert summary["concurrency"] == 2


def test_an_endpoint_that_does_not_answer_fails_each_run_clearly_and_the_sweep_goes_on(tmp_path):
    url = f"http://127.0.0.1:{_free_port()}/v1"  # nothing listens there
    out = tmp_path / "out"
    done = sweep(
        "--csv", "examples/demo_models.csv", "--output-dir", str(out), "-n", "2",
        "--task", "text_gen", "--backend", "vllm", "--endpoint", url, "--retries", "0",
    )  # fmt: skip
    assert done.returncode == 1, done.stderr[-2000:]
    records = [
        json.loads(p.read_text()) for p in sorted(out.glob("individual_runs/*/run_record.json"))
    ]
    assert len(records) == 3  # every row was tried
    for record in records:
        assert record["cause"] == "server_unavailable"
        assert f"{url} does not answer" in record["error_message"]


@pytest.mark.slow
def test_a_model_the_server_cannot_serve_fails_the_run_naming_the_server(tmp_path, server):
    models = tmp_path / "models.csv"
    models.write_text(HEADER + ",org/not-served,1,A,text_gen,Off,\n")
    out = tmp_path / "out"
    sweep("--csv", str(models), "--output-dir", str(out), "-n", "1", "--backend", "vllm",
          "--endpoint", server, "--retries", "0")  # fmt: skip
    record = json.loads(next(out.glob("individual_runs/*/run_record.json")).read_text())
    assert record["cause"] in ("model_not_found", "server_unavailable"), record
    assert f"{server} " in record["error_message"] and "'org/not-served'" in record["error_message"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--backend", "vllm"], "--backend vllm needs --endpoint URL"),
        (["--backend", "vllm", "--endpoint", "127.0.0.1:8000"], "needs --endpoint URL"),
        (["--endpoint", "http://127.0.0.1:8000/v1"], "only with --backend vllm"),
        (
            ["--backend", "vllm", "--endpoint", "http://me:secret@127.0.0.1:8000/v1"],
            "no user, password or query in the URL",
        ),
        (
            [
                "--backend",
                "vllm",
                "--endpoint",
                "http://h:1/v1",
                "backend.endpoint=http://me:secret@h",
            ],
            "backend.endpoint: give --endpoint URL",
        ),
        (["backend.type=vllm"], "backend.type=vllm disagrees with --backend pytorch"),
    ],
)
def test_backend_and_endpoint_are_checked_before_anything_runs(tmp_path, args, message):
    from orchestrator.commands.sweep import sweep_cli

    with pytest.raises(RunnerError, match=message) as caught:
        sweep_cli(["--csv", "examples/demo_models.csv", "--output-dir", str(tmp_path), *args])
    assert "secret" not in str(caught.value)


def test_a_url_shown_in_results_has_no_credentials():
    assert public_url("https://me:key@host:8000/v1/?token=x#f") == "https://host:8000/v1"


def test_a_served_run_s_container_reads_the_server_s_gpus_and_computes_on_none(tmp_path):
    spec = RunSpec(
        run_id="r",
        overrides=("backend.type=vllm",),
        output_dir=tmp_path,
        results_dir=tmp_path / "results",
        log_path=tmp_path / "run.log",
        gpu_uuids=("GPU-1", "GPU-2"),
        image="img",
        measures_server=True,
    )
    runner = DockerRunner.__new__(DockerRunner)  # no engine needed to build the arguments
    runner.user = "1000:1000"
    kwargs = runner.container_kwargs(spec, None)
    (request,) = kwargs["device_requests"]
    assert request["DeviceIDs"] == ["GPU-1", "GPU-2"]
    assert request["Capabilities"] == [["utility"]]  # NVML, not CUDA
    assert kwargs["network_mode"] == "host"  # the server's URL means what it means on the host
    computing = runner.container_kwargs(
        RunSpec("r", (), tmp_path, tmp_path, tmp_path / "l", gpu_uuids=("GPU-1",)), None
    )
    assert computing["device_requests"][0]["Capabilities"] == [["gpu"]]
    assert "network_mode" not in computing


def test_run_docker_sh_takes_the_serving_backend_from_its_environment(tmp_path):
    script = ROOT / "container" / "run_docker.sh"
    env = {**ENV, "BENCHMARK_BACKEND": "vllm", "PYTHON": sys.executable}
    refused = subprocess.run(
        [str(script), "backend.model=org/m"], capture_output=True, text=True, env=env
    )
    assert refused.returncode == 2 and "needs VLLM_ENDPOINT" in refused.stderr
    url = f"http://127.0.0.1:{_free_port()}/v1"  # nothing listens there
    env |= {"VLLM_ENDPOINT": url}
    done = subprocess.run(
        [str(script), f"backend.model={TINY_MODEL}", "--runner", "local", "--output-dir",
         str(tmp_path)],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert done.returncode == 1
    assert "tiny-model_Off_served" in done.stdout and f"{url} does not answer" in done.stdout


def test_a_request_carries_the_budget_greedy_decoding_and_the_reasoning_directive():
    from energy_bench.backends.serving import ServingBackend
    from energy_bench.config import load_config

    cfg = load_config(
        "text_generation",
        [
            "backend.type=vllm", "backend.endpoint=http://127.0.0.1:1/v1", "backend.model=org/m",
            "scenario.reasoning=False", "scenario.reasoning_params.control=chat_template_kwarg",
            "scenario.generate_kwargs.max_new_tokens=7",
            "scenario.generate_kwargs.min_new_tokens=7",
        ],
    )  # fmt: skip
    backend = ServingBackend(cfg.backend, cfg.scenario)
    (batch,) = backend.prepare(["hello"])
    body = backend._body(batch.inputs[0], 7, 7)
    assert body["messages"] == [{"role": "user", "content": "hello"}]
    assert (body["max_tokens"], body["temperature"], body["stream"]) == (7, 0.0, True)
    assert body["stream_options"] == {"include_usage": True}
    assert body["extra_body"] == {
        "min_tokens": 7,
        "ignore_eos": True,
        "chat_template_kwargs": {"enable_thinking": False},
    }
    backend.budget_fields_taken = False  # the server refused them once: never sent again
    assert "min_tokens" not in backend._body(batch.inputs[0], 7, 7)["extra_body"]
    backend.close()


class _ScriptedServer:
    """An OpenAI-style server whose answer to request ``n`` (from 0) is ``script(n)``.

    For the faults a real server does not make on demand: ``"ok"`` (one token, then the end),
    ``"cut"`` (one chunk, then the connection closes), a finish reason such as ``"abort"``, or
    ``(status, message[, seconds])`` for an HTTP error (sent after that many seconds).
    ``models`` answers ``/v1/models`` likewise.
    """

    def __init__(self, script, models=(200, "m")) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.requests = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):
                status, name = models
                if status != 200:
                    return self._error(status, name)
                listing = {"object": "list", "data": [{"id": name, "object": "model"}]}
                self._send(200, json.dumps(listing).encode())

            def do_POST(self):
                self.rfile.read(int(self.headers["Content-Length"]))
                with lock:
                    number, server.requests = server.requests, server.requests + 1
                answer = script(number)
                if isinstance(answer, tuple):
                    return self._error(*answer)
                chunk = {"id": "x", "object": "chat.completion.chunk", "created": 0, "model": "m"}
                text = {**chunk, "choices": [{"index": 0, "delta": {"content": "a"}}]}
                reason = "length" if answer in ("ok", "cut") else answer
                usage = {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}
                last = [{"index": 0, "delta": {}, "finish_reason": reason}]
                end = {**chunk, "choices": last, "usage": usage}
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                self.wfile.write(f"data: {json.dumps(text)}\n\n".encode())
                if answer == "cut":
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.wfile.write(f"data: {json.dumps(end)}\n\ndata: [DONE]\n\n".encode())

            def _error(self, status, message, seconds=0.0):
                time.sleep(seconds)
                self._send(status, json.dumps({"error": {"message": message}}).encode())

            def _send(self, status, body):
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def _backend(url: str, concurrency: int = 1):
    from energy_bench.backends.serving import ServingBackend
    from energy_bench.config import load_config

    cfg = load_config(
        "text_generation",
        [f"backend.endpoint={url}", "backend.type=vllm", "backend.model=m",
         f"scenario.concurrency={concurrency}", "scenario.generate_kwargs.max_new_tokens=1",
         "scenario.generate_kwargs.min_new_tokens=1"],
    )  # fmt: skip
    backend = ServingBackend(cfg.backend, cfg.scenario)
    backend.load()
    return backend


def _generate(url: str, prompts: int, concurrency: int = 1):
    backend = _backend(url, concurrency)
    try:
        (batch,) = backend.prepare([f"prompt {i}" for i in range(prompts)])
        return backend.generate(batch)
    finally:
        backend.close()


def test_a_stream_cut_mid_way_is_one_failed_prompt_and_the_others_count():
    with _ScriptedServer(lambda n: "cut" if n == 2 else "ok") as server:
        gen = _generate(server.url, 6, concurrency=2)
    failed = [i for i, error in enumerate(gen.errors) if error]
    assert len(failed) == 1 and "the stream ended before the answer did" in gen.errors[failed[0]]
    assert gen.completion_tokens.count(1) == 5 and len(gen.latencies_s) == 6


def test_an_answer_the_server_gave_up_on_is_a_failed_prompt():
    with _ScriptedServer(lambda n: "abort" if n == 1 else "ok") as server:
        gen = _generate(server.url, 3)
    assert gen.errors[1].endswith("the server ended the answer: abort")
    assert gen.errors[0] == gen.errors[2] == ""


def test_an_http_error_names_the_server_s_own_words():
    def script(n):
        return (400, "maximum context length is 4096 tokens") if n == 0 else "ok"

    with _ScriptedServer(script) as server:
        gen = _generate(server.url, 2)
    assert gen.errors[0].startswith(f"HTTP 400 from {server.url}")
    assert "maximum context length is 4096 tokens" in gen.errors[0]


def test_three_failed_requests_in_a_row_send_no_more_and_abort_the_pass():
    from energy_bench.errors import BenchmarkAborted

    server = _ScriptedServer(lambda n: "cut")
    with server, pytest.raises(BenchmarkAborted, match="3 requests in a row failed; last: http"):
        _generate(server.url, 20)
    assert server.requests == 3  # one at a time: the fourth was never sent


def test_refused_budget_fields_are_dropped_once_and_a_refusal_that_repeats_is_a_failure():
    refusal = (422, "Unexpected fields in the request: {'min_tokens'}")
    with _ScriptedServer(lambda n: refusal) as server:  # refuses whatever is sent
        gen = _generate(server.url, 1)
    assert server.requests == 2  # sent, then once without the fields: no loop
    assert "HTTP 422" in gen.errors[0]
    with _ScriptedServer(lambda n: refusal if n == 0 else "ok") as server:
        gen = _generate(server.url, 3)
    assert gen.errors == ("", "", "") and server.requests == 4


def test_a_server_that_refuses_the_key_is_a_configuration_error_not_retried():
    from energy_bench.errors import BenchConfigError

    server = _ScriptedServer(lambda n: "ok", models=(401, "invalid key"))
    with server, pytest.raises(BenchConfigError, match="its API key is missing; it goes in VLLM"):
        _backend(server.url)


def test_a_served_sweep_measures_the_busy_server_gpus_from_one_slot(monkeypatch, tmp_path):
    # The server's GPUs run its processes: a computing run would skip them, a served run
    # measures them, and its runs take one slot whatever class they are.
    from orchestrator.execution import gpus
    from orchestrator.execution.executors.local import local_executor

    listed = [
        gpus.Gpu(0, "GPU-aaaa", "NVIDIA H200", 141.0, busy_pids=(4242,)),
        gpus.Gpu(1, "GPU-bbbb", "NVIDIA H200", 141.0, busy_pids=(4242,)),
    ]
    monkeypatch.setattr(gpus, "inventory", lambda: listed)
    executor = local_executor("local", "img", gpus="1", cpu_runs=4, hf_cache=None, serving=True)
    assert executor.measured_gpus == ("GPU-bbbb",) and executor.hardware == "NVIDIA H200"
    assert len(executor.slots) == 1 and not executor.slots[0].uuid
    every = local_executor("local", "img", gpus=None, cpu_runs=1, hf_cache=None, serving=True)
    assert every.measured_gpus == ("GPU-aaaa", "GPU-bbbb")
    with pytest.raises(RunnerError, match="every GPU of this host runs other processes"):
        local_executor("local", "img", gpus=None, cpu_runs=1, hf_cache=None)


@pytest.mark.docker
@pytest.mark.slow
def test_a_served_run_in_a_container_reaches_a_server_on_the_host(
    tmp_path, server, docker_image, no_leftover_containers
):
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "batch_runner.py", "run", "--model", str(TINY_MODEL), "--runner",
         "docker", "--image", docker_image, "--output-dir", str(out), "-n", "2",
         "--backend", "vllm", "--endpoint", server, "scenario.warmup_pass=False"],
        cwd=ROOT, capture_output=True, text=True, env=ENV, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    _, (row,) = master(out)
    assert (row["runner"], row["generation_path"], row["status"]) == ("docker", "served", "ok")
    assert report(out, row["run_name"])["summary"]["total_completion_tokens"] == 2 * 10


def test_an_answer_resent_without_refused_fields_is_timed_from_its_own_request():
    refusal = (422, "Unexpected fields in the request: {'min_tokens'}", 0.5)
    with _ScriptedServer(lambda n: refusal if n == 0 else "ok") as server:
        gen = _generate(server.url, 1)
    assert gen.errors == ("",) and gen.latencies_s[0] < 0.4  # not the refused 0.5 s round trip


def test_fields_a_server_took_are_kept_when_a_later_error_quotes_them():
    # A validation error that echoes the request (min_tokens included) is about something else.
    echo = (400, "prompt too long; input={'min_tokens': 1, 'max_tokens': 1}")
    with _ScriptedServer(lambda n: echo if n == 1 else "ok") as server:
        backend = _backend(server.url)
        try:
            (batch,) = backend.prepare(["a", "b", "c"])
            gen = backend.generate(batch)
        finally:
            backend.close()
    assert gen.errors[1].startswith("HTTP 400") and gen.errors[0] == gen.errors[2] == ""
    assert backend.budget_fields_taken is True and server.requests == 3


def test_another_server_s_name_for_a_stop_counts_as_an_answer(caplog):
    with _ScriptedServer(lambda n: "eos_token") as server:
        gen = _generate(server.url, 2)
    assert gen.errors == ("", "") and gen.completion_tokens == (1, 1)
    assert sum("finish reason 'eos_token'" in r.getMessage() for r in caplog.records) == 1


def test_a_gpu_named_twice_is_measured_once(monkeypatch):
    from orchestrator.execution import gpus

    listed = [gpus.Gpu(0, "GPU-aaaa", "NVIDIA H200", 141.0, busy_pids=(4242,))]
    monkeypatch.setattr(gpus, "inventory", lambda: listed)
    assert [g.uuid for g in gpus.server_gpus("0,GPU-aaaa,0")] == ["GPU-aaaa"]
    listed[0] = gpus.Gpu(0, "GPU-aaaa", "NVIDIA H200", 141.0)
    assert [g.uuid for g in gpus.usable("0,GPU-AAAA")] == ["GPU-aaaa"]  # one slot, not two
