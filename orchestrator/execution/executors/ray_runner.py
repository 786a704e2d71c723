"""The runner of the ``ray`` executor, on the driver: each attempt is one Ray task.

The task reserves the run's GPUs (``num_gpus``), so Ray places it on a node that has them free,
and runs ``ray_node.attempt`` there. Its result files and log come back with the outcome and
are written into the attempt folder on this machine, as a local run would have left them; the
sweep (``execute``) then records the run exactly as it records a local one.

Retries stay the sweep's (``--retries``): a task is never retried by Ray itself, so that every
attempt is counted and the record says where each one ran. A node lost mid-run ends its attempt
with ``node_lost``, a transient cause, and the next attempt goes wherever Ray finds the GPUs.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from typing import Any

from orchestrator.execution.executors import ray_node
from orchestrator.execution.spec import Cause, Placement, RunOutcome, RunSpec

log = logging.getLogger(__name__)

CANCEL_GRACE_S = 30.0  # a cancelled task stops its benchmark within this, or is killed
WAIT_S = 10.0  # how often a waiting attempt checks that some node can still take it
NOWHERE_S = 60.0  # how long no live node may be able to take an attempt before it ends


class NoNodeFits(Exception):
    """No live node of the cluster has the GPUs an attempt needs."""


class RayRunner:
    """Runs each attempt as a Ray task on whichever node has the GPUs it needs.

    ``name`` is the runner the nodes use (``local`` or ``docker``), as records show it;
    ``hosts`` the host name of each node id the probe saw.
    """

    def __init__(self, name: str, expected: ray_node.Expected, hosts: dict[str, str]) -> None:
        import ray

        self.name = name
        self._expected = expected
        self._hosts = hosts
        self._task = ray.remote(ray_node.attempt)
        self._active: set[Any] = set()
        self._cancelled = False
        self._lock = threading.Lock()

    def software_id(self, image: str) -> str:
        return self._expected.software_id

    def remove_leftovers(self, out_dir: object) -> int:
        """Nothing to remove on this machine (none of the runs ran here).

        A task dies with the driver that owns it, and its benchmark stops itself when the
        task's heartbeat stops.
        """
        return 0

    def cancel(self) -> None:
        """Cancel every attempt in flight and wait for their benchmarks to stop; kill late ones.

        A running task gets Ray's KeyboardInterrupt, stops its benchmark and removes its
        container, then ends; a queued one never starts; none is submitted any more.
        """
        import ray

        with self._lock:
            self._cancelled = True
            refs = list(self._active)
        for ref in refs:
            ray.cancel(ref)
        if not refs:
            return
        _, late = ray.wait(refs, num_returns=len(refs), timeout=CANCEL_GRACE_S)
        for ref in late:
            log.warning("a cancelled Ray task did not end within %.0f s: killed", CANCEL_GRACE_S)
            ray.cancel(ref, force=True)

    def run(self, spec: RunSpec, *, token: str | None = None) -> RunOutcome:
        from ray import exceptions as rx

        need = max(spec.gpu_count, 1)
        submitted = time.time()
        if not _fits_now(need):  # a node was lost: fail at once, not after NOWHERE_S each
            message = f"no live node of the Ray cluster has {need} GPUs"
            return self._ended(spec, Cause.NODE_LOST, message)
        with self._lock:
            if self._cancelled:
                return self._ended(spec, Cause.INTERRUPTED, "cancelled (Ctrl-C): not started")
            ref = self._task.options(
                num_gpus=need, num_cpus=0, max_retries=0, retry_exceptions=False
            ).remote(spec, self._expected, token)
            self._active.add(ref)
        try:
            result: ray_node.AttemptResult = self._result(ref, need)
        except rx.TaskCancelledError:
            return self._ended(spec, Cause.INTERRUPTED, "cancelled (Ctrl-C)")
        except (rx.NodeDiedError, rx.LocalRayletDiedError) as exc:  # a node, or this machine's
            return self._ended(spec, Cause.NODE_LOST, _first_line(exc), self._node_of(exc))
        except (rx.WorkerCrashedError, rx.ObjectLostError) as exc:  # the node lives on
            return self._ended(spec, Cause.KILLED, _first_line(exc))
        except NoNodeFits as exc:
            return self._ended(spec, Cause.NODE_LOST, str(exc))
        except rx.RayError as exc:  # the task itself broke (not the benchmark): worth a retry
            return self._ended(spec, Cause.RUNNER_ERROR, _first_line(exc))
        finally:
            with self._lock:
                self._active.discard(ref)
        returned = time.time()
        self._write(spec, result)
        outcome = result.outcome
        overhead = (returned - submitted) - outcome.duration_s
        log.info(
            "run %s on %s: %.2f s of benchmark; Ray added %.2f s (dispatch %.2f s)",
            spec.run_id,
            outcome.placement,
            outcome.duration_s,
            overhead,
            result.started - submitted,
        )
        return outcome

    @staticmethod
    def _ended(
        spec: RunSpec, cause: Cause, message: str, where: Placement | None = None
    ) -> RunOutcome:
        """An attempt that brought nothing back: its log says so, its record where it ran."""
        where = where or Placement("")  # a task that never reported ran on an unknown node
        spec.log_path.parent.mkdir(parents=True, exist_ok=True)
        with spec.log_path.open("a") as log_file:
            log_file.write(f"# on {where}: {cause.value}: {message} (no output came back)\n")
        return RunOutcome(cause, None, 0.0, message, where)

    def _result(self, ref: Any, need: int) -> ray_node.AttemptResult:
        """The task's result; ``NoNodeFits`` when no live node can take it for ``NOWHERE_S``.

        Ray keeps a task that no node can take waiting for one (an autoscaler may add it): the
        sweep does not wait for a node that may never come.
        """
        import ray

        since = None
        while True:
            ready, _ = ray.wait([ref], timeout=WAIT_S)
            if ready:
                return ray.get(ref)
            if _fits_now(need):
                since = None
                continue
            since = since or time.monotonic()
            if time.monotonic() - since >= NOWHERE_S:
                ray.cancel(ref, force=True)
                raise NoNodeFits(
                    f"no live node of the Ray cluster has {need} GPUs (for {NOWHERE_S:.0f} s)"
                )

    def _node_of(self, exc: BaseException) -> Placement:
        """The node a lost task ran on, as Ray's error names it."""
        found = re.search(r"node ID: ([0-9a-f]+)", str(exc))
        node_id = found.group(1) if found else ""
        return Placement(self._hosts.get(node_id, ""), node_id)

    @staticmethod
    def _write(spec: RunSpec, result: ray_node.AttemptResult) -> None:
        """The attempt's files and log where a run on this machine would have left them."""
        spec.results_dir.mkdir(parents=True, exist_ok=True)
        for name, data in result.files.items():  # result files, and images/ (kept images)
            path = spec.results_dir / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        spec.log_path.parent.mkdir(parents=True, exist_ok=True)
        with spec.log_path.open("ab") as log_file:
            log_file.write(f"# ran on {result.outcome.placement}\n".encode())
            log_file.write(result.log)


def _fits_now(need: int) -> bool:
    """Some live node of the cluster has ``need`` GPUs (busy or not)."""
    import ray

    return any(n.get("Alive") and n.get("Resources", {}).get("GPU", 0) >= need for n in ray.nodes())


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]
