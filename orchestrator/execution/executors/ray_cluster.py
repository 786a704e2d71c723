"""The ``ray`` executor: a sweep's runs on the GPUs of a Ray cluster, one task per attempt.

The driver joins the cluster (``--ray-address``), asks every node what it offers
(``ray_node.probe``: its GPUs, the runner it would use, that runner's software), and refuses to
start when the nodes that would run benchmarks disagree: their run ids, and ratings, would mix
GPU models or software. Runs that need more GPUs than any node has are skipped before anything
starts. Ray is an optional dependency, imported only here and by the modules this one uses.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import sys
import tempfile
from collections.abc import Iterator, Sequence
from functools import partial
from pathlib import Path

from energy_bench import contract
from orchestrator.errors import RunnerError
from orchestrator.execution.executors.base import Executor
from orchestrator.execution.executors.ray_node import Expected, NodeInfo, probe
from orchestrator.execution.fit import misfit
from orchestrator.execution.runners.choice import RunnerName
from orchestrator.execution.slots import Slot, host_slots
from orchestrator.planning.plan import RunPlan

log = logging.getLogger(__name__)

INSTALL = 'pip install "ai-energy-score-runner[ray]" (in a clone: pip install -e ".[ray]")'
CONNECT_TIMEOUT_S = 10.0  # for a TCP connection to the head
PROBE_TIMEOUT_S = 120.0  # a node's first task starts a Python worker there and imports us


def import_ray():  # type: ignore[no-untyped-def]
    """The ray module, or a one-line error that says how to install it."""
    try:
        import ray
    except ImportError:
        raise RunnerError(
            f"--executor ray needs Ray, on this machine and on every node: {INSTALL}"
        ) from None
    return ray


def connect(address: str) -> None:
    """Join the cluster at ``address`` (``auto``: the one started on this machine).

    What Ray's core prints meanwhile (a line a second while it cannot connect) is logged at
    debug level (shown with -v), not printed: the error says what failed, in one line. The
    sweep's own handling of SIGTERM and SIGHUP (the Ctrl-C path) is kept: ``ray.init`` would
    replace it with an exit that cancels nothing.
    """
    ray = import_ray()
    _answers(address)
    try:
        with _stderr_to_debug_log(), _signal_handlers_kept():
            ray.init(address=address, logging_level=logging.ERROR, log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError, ray.exceptions.RayError) as exc:
        raise RunnerError(
            f"--ray-address {address}: cannot join a Ray cluster ({_first_line(exc)}). Start "
            "one with `ray start --head`; a cluster started with RAY_AUTH_MODE=token needs "
            "RAY_AUTH_MODE=token and its token here too (README, 'Sweeps on a Ray cluster')"
        ) from None


def _answers(address: str) -> None:
    """A RunnerError unless something listens at ``address`` (``host:port``, ``ray://...``).

    Ray waits without end for a head that is not there; ``auto`` is left to Ray, which finds
    the cluster started on this machine or says at once that there is none.
    """
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if address == "auto" or not host or not port.isdigit():
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise RunnerError(
            f"--ray-address {address}: nothing answers there ({exc.strerror or exc}); is the "
            f"head node started (ray start --head --port {port})?"
        ) from None


@contextlib.contextmanager
def _signal_handlers_kept() -> Iterator[None]:
    """The handlers of SIGINT, SIGTERM and SIGHUP as they were before the block."""
    kept = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in kept.items():
            if handler is not None:
                signal.signal(sig, handler)


@contextlib.contextmanager
def _stderr_to_debug_log() -> Iterator[None]:
    """Standard error (file descriptor 2) of this process into the debug log, while in the block."""
    with tempfile.TemporaryFile() as captured:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            for line in captured.read().decode(errors="replace").splitlines()[-20:]:
                log.debug("ray: %s", line)


def probe_nodes(runner: RunnerName, image: str) -> list[NodeInfo]:
    """What every live node offers, asked of the node itself (a task pinned to it)."""
    ray = import_ray()
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    alive = [n for n in ray.nodes() if n.get("Alive")]
    task = ray.remote(probe)
    asked = {}
    for node in alive:
        node_id, gpus = node["NodeID"], int(node.get("Resources", {}).get("GPU", 0))
        ref = task.options(
            num_cpus=0, scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False)
        ).remote(node_id, gpus, runner, image)
        asked[ref] = NodeInfo(node_id, node.get("NodeManagerHostname", "?"), gpus)
    ready, late = ray.wait(list(asked), num_returns=len(asked), timeout=PROBE_TIMEOUT_S)
    nodes = []
    for ref in ready:
        try:
            nodes.append(ray.get(ref))
        except ray.exceptions.RayError as exc:
            nodes.append(_broken(asked[ref], _first_line(exc)))
    nodes += [_broken(asked[ref], f"did not answer within {PROBE_TIMEOUT_S:.0f} s") for ref in late]
    return sorted(nodes, key=lambda n: (n.host, n.node_id))


def _broken(node: NodeInfo, problem: str) -> NodeInfo:
    return NodeInfo(node.node_id, node.host, node.ray_gpus, problem=problem)


def _name(node: NodeInfo) -> str:
    return f"{node.host} (node {node.node_id[:8]})"


def check_nodes(nodes: Sequence[NodeInfo]) -> tuple[str, str]:
    """The GPU model and software the cluster's GPU nodes share; a RunnerError if they do not.

    Only nodes with GPUs run benchmarks, so only theirs count: each must be able to run one,
    with this driver's version of the project, and all on one GPU model (ratings compare one)
    and one software (it is part of every run id).
    """
    gpu_nodes = [n for n in nodes if n.ray_gpus > 0]
    problems = [f"{_name(n)}: {n.problem}" for n in gpu_nodes if n.problem]
    problems += [
        f"{_name(n)}: has version {n.version} of the project; this driver {contract.VERSION}"
        for n in gpu_nodes
        if not n.problem and n.version != contract.VERSION
    ]
    if problems:
        raise RunnerError(
            "GPU nodes of the Ray cluster cannot run benchmarks: " + "; ".join(problems)
        )
    for what, value in (("GPU model", "gpu_name"), ("benchmark software", "software_id")):
        seen: dict[str, list[str]] = {}
        for n in gpu_nodes:
            seen.setdefault(getattr(n, value), []).append(_name(n))
        if len(seen) > 1:
            kinds = "; ".join(f"{k} on {', '.join(v)}" for k, v in seen.items())
            raise RunnerError(
                f"the Ray cluster's GPU nodes differ in {what} ({kinds}): one sweep rates one "
                "GPU model with one software; run a sweep per kind of node"
            )
    if not gpu_nodes:  # every run would be skipped: a sweep that does nothing is a mistake
        raise RunnerError(
            f"no node of the Ray cluster has a GPU ({len(nodes)} node(s)); start GPU nodes, "
            "or declare GPUs with ray start --num-gpus N (on a machine without them, their runs "
            "go to its CPU)"
        )
    return gpu_nodes[0].gpu_name, gpu_nodes[0].software_id


def node_slots(node: NodeInfo) -> list[Slot]:
    """The node as the fit check sees one host: its GPUs, or its CPU where GPUs are declared."""
    if node.gpus:
        return host_slots(list(node.gpus[: node.ray_gpus]))
    return [Slot(f"{node.host} CPU", memory_bytes=node.memory_bytes)]


def _node_misfit(plan: RunPlan, node: NodeInfo, hf_home: Path | None) -> str:
    """Why ``node`` cannot run ``plan`` ("" when it can), as one host would say it."""
    if not node.gpus and plan.gpus_needed > 1:  # its runs go to the CPU, as on a host without
        return (
            f"needs {plan.gpus_needed} GPUs; the GPUs of {node.host} are only declared, so its "
            "runs go to the CPU (--class-c-gpus 1 runs it there)"
        )
    return misfit(plan, node_slots(node), hf_home=hf_home)


def cluster_misfit(plan: RunPlan, nodes: Sequence[NodeInfo], hf_home: Path | None) -> str:
    """Why no node of the cluster can run ``plan`` ("" when one can, or none can tell)."""
    need = plan.gpus_needed
    gpu_nodes = [n for n in nodes if n.ray_gpus > 0]
    if not gpu_nodes:
        return "no node of the Ray cluster has a GPU (ray start --num-gpus N declares them)"
    most = max(n.ray_gpus for n in gpu_nodes)
    if need > most:
        return f"needs {need} GPUs; the largest node of the Ray cluster has {most}"
    reasons = [(_node_misfit(plan, n, hf_home), n) for n in gpu_nodes if n.ray_gpus >= need]
    if any(not reason for reason, _ in reasons):
        return ""
    reason, node = reasons[0]
    return f"{reason} (node {node.host}; no node of the Ray cluster can take it)"


def ray_executor(
    address: str, runner: RunnerName, image: str, *, hf_cache: Path | None
) -> Executor:
    """The executor of the cluster at ``address``, its nodes probed and checked."""
    ray = import_ray()
    connect(address)
    try:
        nodes = probe_nodes(runner, image)
        hardware, software_id = check_nodes(nodes)
    except BaseException:
        ray.shutdown()
        raise
    from orchestrator.execution.executors.ray_runner import RayRunner

    gpu_nodes = [n for n in nodes if n.ray_gpus > 0]  # one runner: their software is one
    expected = Expected(
        runner=runner,
        image=image,
        software_id=software_id,
        hardware=hardware,
        hf_cache=hf_cache,
        node_gpus={n.node_id: n.ray_gpus for n in nodes},
    )
    slots = tuple(
        Slot(f"Ray GPU {i}", gpu_name=hardware, cluster=True)
        for i in range(sum(n.ray_gpus for n in gpu_nodes))
    )
    described = ", ".join(
        f"{_name(n)} {n.ray_gpus} GPU{'s' if n.ray_gpus != 1 else ''}" for n in nodes
    )
    return Executor(
        name="ray",
        runner=RayRunner(gpu_nodes[0].runner, expected, {n.node_id: n.host for n in nodes}),
        slots=slots,
        misfit=partial(cluster_misfit, nodes=nodes, hf_home=hf_cache),
        hardware=hardware,
        software_id=software_id,
        where=f"Ray cluster at {address}: {described}; runs on {hardware}",
        hf_home=hf_cache,  # a path every node has, or None: each node's own
        close=ray.shutdown,
    )


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:500] if lines else type(exc).__name__
