"""The ``local`` runner: the benchmark package as a subprocess, for hosts without Docker.

Same contract as the docker runner: the same single-run command, output streamed into the log,
a timeout that terminates then kills, the process (group) gone on every path, Ctrl-C included.
The benchmark runs with this interpreter, where the project is installed (``pip install -e .``).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
from importlib import metadata
from pathlib import Path

from energy_bench import contract
from orchestrator.execution.runners.base import LogPump
from orchestrator.execution.spec import Cause, RunOutcome, RunSpec, classify_exit
from orchestrator.secrets import Redactor
from orchestrator.store.paths import PID_FILE, OutputLayout

GRACE_S = 10.0
# Secrets of this process that the benchmark never gets from its environment: the Hub token
# goes in by name only when the run needs one; a Ray cluster's token (a node's runs inherit
# its environment) never.
HOST_SECRETS = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "RAY_AUTH_TOKEN")


class LocalRunner:
    """Runs ``python -m energy_bench`` with this interpreter (or the one given)."""

    name = "local"

    def __init__(self, python: str = sys.executable) -> None:
        self.python = python
        self._active: set[subprocess.Popen[bytes]] = set()
        self._lock = threading.Lock()

    def cancel(self) -> None:
        """SIGTERM to every running benchmark at once; SIGKILL what is left after the grace.

        The grace is the timeout's: a run unwinding on a loaded host needs seconds to write its
        failure report, and one grace is shared by all, so Ctrl-C waits at most that long.
        """
        with self._lock:
            active = list(self._active)
        for proc in active:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + GRACE_S
        for proc in active:
            _stop(proc, grace_s=max(deadline - time.monotonic(), 0.0))

    def software_id(self, image: str) -> str:
        """The benchmark package's files and the versions of the libraries it runs on."""
        return f"local {package_digest()}"

    def remove_leftovers(self, out_dir: Path) -> int:
        """Stop the benchmark processes an earlier sweep of ``out_dir`` left running; how many.

        Called while holding the folder's lock, so no live sweep owns them. Each process is
        found by the id file in its attempt folder, and stopped only if its command line still
        names that folder (a process id may have been reused since).
        """
        stopped = 0
        for pid_file in OutputLayout(out_dir).pid_files():
            try:
                pid = int(pid_file.read_text().strip())
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except (OSError, ValueError):
                cmdline = []
            if str(pid_file.parent).encode() in cmdline:
                _stop_group(pid)
                stopped += 1
            pid_file.unlink(missing_ok=True)
        return stopped

    def command(self, spec: RunSpec) -> list[str]:
        """The argument vector (holds no secret)."""
        return [
            self.python,
            "-m",
            "energy_bench",
            "--config-name",
            spec.config_name,
            "--results-dir",
            str(spec.results_dir),
            *spec.overrides,
        ]

    def _environment(self, spec: RunSpec, token: str | None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in HOST_SECRETS}
        env.update(spec.env)
        env["PYTHONUNBUFFERED"] = "1"
        env["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID"
        # A served run reads its server's GPUs through NVML, which sees every GPU: CUDA none.
        env["CUDA_VISIBLE_DEVICES"] = "" if spec.measures_server else ",".join(spec.gpu_uuids)
        if spec.cpus:  # the benchmark pins itself to these cores and sizes its threads
            env[contract.CPUS_ENV] = contract.cpu_list(spec.cpus)
        if spec.hf_cache_dir is not None:
            env["HF_HOME"] = str(spec.hf_cache_dir)
        if token:
            env["HF_TOKEN"] = token
        return env

    def run(self, spec: RunSpec, *, token: str | None = None) -> RunOutcome:
        spec.results_dir.mkdir(parents=True, exist_ok=True)
        spec.log_path.parent.mkdir(parents=True, exist_ok=True)
        start = time.monotonic()
        with spec.log_path.open("ab") as log:
            pump = LogPump(log, Redactor(token))
            try:
                proc = subprocess.Popen(
                    self.command(spec),
                    env=self._environment(spec, token),
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # our own group: Ctrl-C reaches us, we stop it
                )
            except OSError as exc:
                return RunOutcome(
                    Cause.RUNNER_ERROR, None, 0.0, f"cannot start {self.python}: {exc}"
                )
            with self._lock:
                self._active.add(proc)
            pid_file = spec.results_dir / PID_FILE
            reader = threading.Thread(target=_copy, args=(proc, pump), daemon=True)
            reader.start()
            timed_out = False
            try:
                pid_file.write_text(str(proc.pid))  # a full disk here still stops the process
                try:
                    code = proc.wait(timeout=spec.timeout_s)
                except subprocess.TimeoutExpired:
                    timed_out = True
                    _stop(proc)
                    code = proc.wait()
            finally:
                if proc.poll() is None:  # interrupted: never leave the benchmark behind
                    _stop(proc)
                with self._lock:
                    self._active.discard(proc)
                pid_file.unlink(missing_ok=True)
                reader.join(timeout=5)
                pump.close()
        duration = time.monotonic() - start
        if timed_out:
            return RunOutcome(
                Cause.TIMEOUT, code, duration, f"timed out after {spec.timeout_s:g} s; stopped"
            )
        outcome = classify_exit(_exit_status(code), pump.tail())
        return RunOutcome(outcome.cause, outcome.exit_code, duration, outcome.message)


BENCHMARK_LIBRARIES = ("torch", "transformers", "accelerate", "diffusers")


def missing_libraries() -> list[str]:
    """The benchmark's libraries this interpreter lacks (their metadata is read, none imported).

    A host installed for Docker only (``pip install -e .``) has none of them.
    """
    missing = []
    for package in BENCHMARK_LIBRARIES:
        try:
            metadata.version(package)
        except metadata.PackageNotFoundError:
            missing.append(package)
    return missing


def package_digest() -> str:
    """A digest of the benchmark package (code, configs, prompts) and its libraries' versions.

    The versions of ``BENCHMARK_LIBRARIES`` come from their metadata: none is imported.
    """
    root = Path(contract.__file__).resolve().parent
    digest = hashlib.sha256()
    files = [p for p in sorted(root.rglob("*")) if p.is_file() and "__pycache__" not in p.parts]
    files += sorted((root.parent / "configs").glob("*.yaml"))  # beside it in a source tree
    for path in files:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    for package in BENCHMARK_LIBRARIES:
        try:
            digest.update(f"{package} {metadata.version(package)}".encode())
        except metadata.PackageNotFoundError:
            digest.update(f"{package} missing".encode())
    return digest.hexdigest()[:12]


def _copy(proc: subprocess.Popen[bytes], pump: LogPump) -> None:
    assert proc.stdout is not None
    for chunk in iter(lambda: proc.stdout.read1(65536), b""):  # type: ignore[union-attr]
        pump.feed(chunk)


def _stop(proc: subprocess.Popen[bytes], grace_s: float = GRACE_S) -> None:
    """SIGTERM to the process group, then SIGKILL after a grace period."""
    for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _stop_group(pid: int, grace_s: float = GRACE_S) -> None:
    """SIGTERM to a process group that is not our child, then SIGKILL if it is still there."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline:
            if not process_alive(pid):
                return
            time.sleep(0.1)


def process_alive(pid: int) -> bool:
    """The process exists and has not exited (a zombie awaiting its parent counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")


def _exit_status(code: int) -> int:
    """Popen's negative signal numbers as a shell would show them (SIGKILL -> 137)."""
    return 128 - code if code < 0 else code
