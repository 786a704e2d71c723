"""A Ray cluster of two nodes on this machine, for the tests of ``--executor ray``.

Both nodes live in a network namespace of their own that has only loopback: Ray replaces
127.0.0.1 by the machine's own address, and test traffic must stay on loopback. Every command
of a test that talks to the cluster runs in that namespace (``command``). The cluster uses
Ray's token authentication, with a token made for it; each node runs in a session of its own,
so that a test can kill one node (``kill_worker``) as a machine dying would.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PORT = 6390  # below Ray's worker ports (10002-19999)
BIN = Path(sys.executable).parent
# A lost node is noticed in about two seconds, not Ray's default of about thirty.
FAST_HEALTH_CHECKS = {
    "RAY_health_check_period_ms": "500",
    "RAY_health_check_timeout_ms": "500",
    "RAY_health_check_failure_threshold": "3",
    "RAY_health_check_initial_delay_ms": "0",
}


def unavailable() -> str:
    """Why such a cluster cannot start here ("" when it can)."""
    try:
        import ray  # noqa: F401
    except ImportError:
        return "Ray is not installed (requirements-dev.txt installs it)"
    for tool in ("unshare", "nsenter", "ip"):
        if shutil.which(tool) is None:
            return f"{tool} is missing"
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True)
    if probe.returncode != 0:
        return "cannot make a network namespace (unshare -n needs root)"
    return ""


class LocalRayCluster:
    """A head with ``head_gpus`` and a worker with ``worker_gpus`` declared GPUs."""

    def __init__(self, head_gpus: int = 1, worker_gpus: int = 2) -> None:
        self.head_gpus, self.worker_gpus = head_gpus, worker_gpus
        self.root = Path(tempfile.mkdtemp(prefix="aes-ray-"))  # short: Ray's sockets live here
        token = self.root / "token"
        token.write_text(secrets.token_hex(32))
        token.chmod(0o600)
        self.env = {
            **os.environ,
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "RAY_AUTH_MODE": "token",
            "RAY_AUTH_TOKEN_PATH": str(token),
            "RAY_USAGE_STATS_ENABLED": "0",
            **FAST_HEALTH_CHECKS,
        }
        self.address = f"127.0.0.1:{PORT}"
        self.holder: subprocess.Popen[bytes] | None = None
        self.head: subprocess.Popen[bytes] | None = None
        self.worker: subprocess.Popen[bytes] | None = None

    def start(self) -> LocalRayCluster:
        self.holder = subprocess.Popen(
            ["unshare", "-n", "sh", "-c", "ip link set lo up && exec sleep infinity"]
        )
        self._wait(self._namespace_ready, "the network namespace")
        self.head = self._node(
            "head", "--head", f"--port={PORT}", f"--num-gpus={self.head_gpus}",
            "--num-cpus=2", "--include-dashboard=false", f"--temp-dir={self.root / 'ray'}",
        )  # fmt: skip
        self._wait(lambda: self.alive_nodes() == 1, "the head node")
        self.start_worker()
        return self

    def start_worker(self) -> None:
        self.worker = self._node(
            "worker", f"--address={self.address}", f"--num-gpus={self.worker_gpus}",
            "--num-cpus=2",
        )  # fmt: skip
        self._wait(lambda: self.alive_nodes() == 2, "the worker node")

    def command(self, argv: list[str]) -> list[str]:
        """``argv`` run inside the cluster's network namespace."""
        assert self.holder is not None
        return ["nsenter", f"--net=/proc/{self.holder.pid}/ns/net", "--", *argv]

    def run(self, argv: list[str], **kwargs) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command(argv), env=kwargs.pop("env", self.env), text=True, capture_output=True,
            **kwargs,
        )  # fmt: skip

    def popen(self, argv: list[str], **kwargs) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.command(argv), env=kwargs.pop("env", self.env), text=True,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **kwargs,
        )  # fmt: skip

    def python(self, code: str) -> str:
        """What ``code`` prints, run in a driver connected to the cluster (``ray`` imported)."""
        script = f"import ray\nray.init(address={self.address!r}, logging_level='ERROR')\n{code}"
        done = self.run([sys.executable, "-c", script], timeout=120)
        if done.returncode != 0:
            raise RuntimeError(done.stderr[-2000:])
        return done.stdout.strip()

    def alive_nodes(self) -> int:
        try:
            return int(self.python("print(sum(1 for n in ray.nodes() if n['Alive']))"))
        except (RuntimeError, ValueError, subprocess.TimeoutExpired):
            return -1

    def worker_node_id(self) -> str:
        """The worker node's Ray id (the alive node that is not the head)."""
        return self.python(
            "print(next(n['NodeID'] for n in ray.nodes() if n['Alive'] and "
            "'node:__internal_head__' not in n['Resources']))"
        )

    def free_gpus(self) -> float:
        return float(self.python("print(ray.available_resources().get('GPU', 0))"))

    def kill_worker(self) -> None:
        """The worker node dies at once, as a machine that loses power (its runs with it)."""
        assert self.worker is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.worker.pid, signal.SIGKILL)
        self.worker.wait()
        self._wait(lambda: self.alive_nodes() == 1, "the worker's death", nodes_live=False)

    def stop(self) -> None:
        for node in (self.worker, self.head):
            if node is not None and node.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(node.pid, signal.SIGTERM)
                try:
                    node.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    os.killpg(node.pid, signal.SIGKILL)
                    node.wait()
        # Ray's own processes of this cluster, wherever they went: their command lines name
        # its folder or its port.
        subprocess.run(["pkill", "-9", "-f", str(self.root)], check=False)
        if self.holder is not None:
            self.holder.kill()
            self.holder.wait()
        shutil.rmtree(self.root, ignore_errors=True)

    def _node(self, name: str, *options: str) -> subprocess.Popen[bytes]:
        log = (self.root / f"{name}.log").open("ab")
        return subprocess.Popen(
            self.command(["ray", "start", "--block", "--disable-usage-stats", *options]),
            env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip

    def _namespace_ready(self) -> bool:
        assert self.holder is not None
        try:
            theirs = os.readlink(f"/proc/{self.holder.pid}/ns/net")
        except OSError:
            return False
        return theirs != os.readlink("/proc/self/ns/net")

    def _wait(self, ready, what: str, *, nodes_live: bool = True) -> None:  # type: ignore[no-untyped-def]
        """Until ``ready()``; a node that stops meanwhile fails at once (``nodes_live``)."""
        deadline = time.monotonic() + 90
        while not ready():
            for name, node in (("head", self.head), ("worker", self.worker)):
                if nodes_live and node is not None and node.poll() is not None:
                    log = (self.root / f"{name}.log").read_text()[-2000:]
                    raise RuntimeError(f"the Ray {name} node stopped:\n{log}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"waited 90 s for {what}")
            time.sleep(0.5)
