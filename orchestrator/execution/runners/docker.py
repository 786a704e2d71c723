"""The ``docker`` runner: one container per run through the Docker SDK for Python.

GPUs are requested by UUID; the container runs as the invoking user with a 1 GB /dev/shm, the
results folder and the Hugging Face cache mounted, the token in its environment (never in its
command); logs stream into the run's log while it runs; a timeout stops then kills it; and the
container is removed on every path (a failed start that leaves it Created, a timeout, Ctrl-C).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

import docker
import requests
from docker.errors import APIError, ImageNotFound, NotFound
from docker.types import DeviceRequest
from tenacity import retry, retry_if_exception, stop_after_attempt, wait_exponential

from energy_bench import contract
from orchestrator.execution.runners.base import LogPump
from orchestrator.execution.spec import Cause, RunOutcome, RunSpec, classify_exit
from orchestrator.secrets import Redactor

log = logging.getLogger(__name__)

LABEL_MANAGED = "ai_energy_score.managed"
LABEL_RUN_ID = "ai_energy_score.run_id"
LABEL_OUTPUT_DIR = "ai_energy_score.output_dir"
STOP_GRACE_S = 10
PERMANENT_API_ERRORS = ("could not select device driver", "no such image", "invalid", "conflict")


def _transient(exc: BaseException) -> bool:
    """Connection resets and 5xx answers that may pass; not a GPU-driver or image problem."""
    if isinstance(exc, requests.exceptions.ConnectionError):
        return True
    if isinstance(exc, APIError) and not isinstance(exc, NotFound):
        text = str(exc).lower()
        return exc.is_server_error() and not any(p in text for p in PERMANENT_API_ERRORS)
    return False


docker_retry = retry(
    retry=retry_if_exception(_transient),
    stop=stop_after_attempt(4),
    wait=wait_exponential(multiplier=0.5, max=8),
    reraise=True,
)


def engine_answers(timeout_s: float = 3.0) -> bool:
    """True when a Docker engine answers a ping."""
    try:
        client = docker.from_env(timeout=int(max(timeout_s, 1)))
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        return False


class DockerRunner:
    """Runs the benchmark image for each spec through the Docker SDK."""

    name = "docker"

    def __init__(self, client: Any | None = None, *, user: str | None = None) -> None:
        self.client = client or docker.from_env(timeout=60)
        self.user = user or f"{os.getuid()}:{os.getgid()}"
        self._active: dict[str, Any] = {}
        self._lock = threading.Lock()

    def cancel(self) -> None:
        with self._lock:
            active = list(self._active.values())
        for container in active:
            _remove(container)

    def software_id(self, image: str) -> str:
        """The image's ID: a rebuilt image under the same tag is other software."""
        try:
            return f"image {self.client.images.get(image).id}"
        except (ImageNotFound, APIError, requests.exceptions.RequestException):
            return f"image {image} (not found)"

    def remove_leftovers(self, out_dir: Path) -> int:
        """Remove the containers an earlier sweep of ``out_dir`` left behind; returns how many.

        Called while holding the folder's lock, so no live sweep owns them.
        """
        label = f"{LABEL_OUTPUT_DIR}={out_dir}"
        removed = 0
        # Sparse: a full list inspects each container, and one removed meanwhile is a 404.
        for container in self.client.containers.list(
            all=True, sparse=True, filters={"label": label}
        ):
            log.warning("removing container %s left by an earlier sweep", container.short_id)
            _remove(container)
            removed += 1
        return removed

    def container_kwargs(self, spec: RunSpec, token: str | None) -> dict[str, Any]:
        """The arguments of ``containers.create`` for a spec (the token only in environment)."""
        volumes = {str(spec.results_dir): {"bind": contract.CONTAINER_RESULTS_DIR, "mode": "rw"}}
        if spec.hf_cache_dir is not None:
            volumes[str(spec.hf_cache_dir)] = {"bind": contract.CONTAINER_HF_HOME, "mode": "rw"}
        for path in spec.read_only_paths:  # local models and prompt files, at the same path
            volumes[str(path)] = {"bind": str(path), "mode": "ro"}
        environment = {contract.RESULTS_DIR_ENV: contract.CONTAINER_RESULTS_DIR, **spec.env}
        cpus = {}
        if spec.cpus:  # the kernel holds the container to these cores; the benchmark sizes threads
            environment[contract.CPUS_ENV] = contract.cpu_list(spec.cpus)
            cpus["cpuset_cpus"] = contract.cpu_list(spec.cpus)
        if token:
            environment["HF_TOKEN"] = token
        # A served run reads its server's GPU counters (NVML: the utility capability) and
        # computes on none; it reaches the server as this host does (the host's network).
        capability = "utility" if spec.measures_server else "gpu"
        devices = (
            [DeviceRequest(device_ids=list(spec.gpu_uuids), capabilities=[[capability]])]
            if spec.gpu_uuids
            else []
        )
        network = {"network_mode": "host"} if spec.measures_server else {}
        return {
            "image": spec.image,
            "command": [
                "--config-name",
                spec.config_name,
                "--results-dir",
                contract.CONTAINER_RESULTS_DIR,
                *spec.overrides,
            ],
            "user": self.user,
            "shm_size": "1g",
            "environment": environment,
            "volumes": volumes,
            "device_requests": devices,
            **cpus,
            **network,
            "labels": {
                LABEL_MANAGED: "true",
                LABEL_RUN_ID: spec.run_id,
                LABEL_OUTPUT_DIR: str(spec.output_dir),
            },
            "detach": True,
        }

    @docker_retry
    def _create(self, kwargs: dict[str, Any]) -> Any:
        return self.client.containers.create(**kwargs)

    @docker_retry
    def _start(self, container: Any) -> None:
        container.start()

    def run(self, spec: RunSpec, *, token: str | None = None) -> RunOutcome:
        spec.results_dir.mkdir(parents=True, exist_ok=True)
        if self.user.split(":")[0] != str(os.getuid()):
            spec.results_dir.chmod(0o777)  # writable by the container's other uid
        spec.log_path.parent.mkdir(parents=True, exist_ok=True)
        if spec.hf_cache_dir is not None:
            spec.hf_cache_dir.mkdir(parents=True, exist_ok=True)
        start = time.monotonic()
        missing = [str(p) for p in spec.read_only_paths if not p.exists()]
        if missing:  # docker would create them as empty root-owned folders
            return RunOutcome(
                Cause.CONFIG_ERROR, None, 0.0, f"no such file or folder: {', '.join(missing)}"
            )
        try:
            container = self._create(self.container_kwargs(spec, token))
        except ImageNotFound:
            return RunOutcome(
                Cause.IMAGE_MISSING,
                None,
                time.monotonic() - start,
                f"image {spec.image} not found: build it with `python batch_runner.py build-image`",
            )
        except (APIError, requests.exceptions.RequestException) as exc:
            return RunOutcome(Cause.RUNNER_ERROR, None, time.monotonic() - start, _api_text(exc))
        with self._lock:
            self._active[container.id] = container
        with spec.log_path.open("ab") as log_file:
            pump = LogPump(log_file, Redactor(token))
            try:
                return self._run_container(container, spec, pump, start)
            finally:
                _remove(container)
                with self._lock:
                    self._active.pop(container.id, None)
                pump.close()

    def _run_container(
        self, container: Any, spec: RunSpec, pump: LogPump, start: float
    ) -> RunOutcome:
        def elapsed() -> float:
            return time.monotonic() - start

        try:
            self._start(container)
        except (APIError, requests.exceptions.RequestException) as exc:
            return RunOutcome(
                Cause.RUNNER_ERROR, None, elapsed(), f"container did not start: {_api_text(exc)}"
            )
        streamer = threading.Thread(target=_stream_logs, args=(container, pump), daemon=True)
        streamer.start()
        try:
            status = container.wait(timeout=spec.timeout_s) if spec.timeout_s else container.wait()
        except requests.exceptions.RequestException:  # the wait outlived the run's timeout
            _stop(container)
            streamer.join(timeout=10)
            return RunOutcome(
                Cause.TIMEOUT, None, elapsed(), f"timed out after {spec.timeout_s:g} s; stopped"
            )
        streamer.join(timeout=30)
        code = int(status.get("StatusCode", -1))
        try:
            container.reload()
            oom = bool(container.attrs.get("State", {}).get("OOMKilled"))
        except (APIError, requests.exceptions.RequestException):
            oom = False
        outcome = classify_exit(code, pump.tail(), oom_killed=oom)
        return RunOutcome(outcome.cause, outcome.exit_code, elapsed(), outcome.message)


def _stream_logs(container: Any, pump: LogPump) -> None:
    try:
        for chunk in container.logs(stream=True, follow=True, stdout=True, stderr=True):
            pump.feed(chunk)
    except (APIError, requests.exceptions.RequestException) as exc:
        log.debug("log stream of %s ended: %s", container.id[:12], exc)


def _stop(container: Any) -> None:
    try:
        container.stop(timeout=STOP_GRACE_S)  # SIGTERM, then SIGKILL after the grace period
    except (NotFound, APIError, requests.exceptions.RequestException) as exc:
        log.debug("stop %s: %s", container.id[:12], exc)


def _remove(container: Any) -> None:
    try:
        container.remove(force=True)
    except NotFound:
        pass
    except (APIError, requests.exceptions.RequestException) as exc:
        log.warning("could not remove container %s: %s", container.id[:12], exc)


def _api_text(exc: BaseException) -> str:
    explanation = getattr(exc, "explanation", None)
    return str(explanation or exc).splitlines()[0][:300]
