"""What runs on a node of a Ray cluster: its probe, and one attempt of a run.

Both run as Ray tasks, in the project installed on the node. An attempt runs the node's own
runner (Docker on the node's daemon, or the local runner) into a folder of its own on the node,
then hands back the outcome, the result files and the log, which the driver writes into the run
folder: the nodes need no storage shared with the driver.
"""

from __future__ import annotations

import shutil
import socket
import tempfile
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from energy_bench import contract
from orchestrator.errors import RunnerError
from orchestrator.execution import heartbeat
from orchestrator.execution.gpus import Gpu, inventory
from orchestrator.execution.runners.base import Runner
from orchestrator.execution.runners.choice import RunnerName, hf_cache_for, make_runner
from orchestrator.execution.slots import host_cpus, host_memory_bytes, split_cpus
from orchestrator.execution.spec import Cause, Placement, RunOutcome, RunSpec

POLL_S = 0.2  # how often an attempt's task looks up from its run (a cancel arrives then)
BUSY_POLL_S = 2.0  # how often a task whose GPUs are in use looks again
BUSY_MARGIN_S = 15.0  # beyond the heartbeat limit, for a leftover benchmark to end
WORK_PREFIX = "ai-energy-score-"  # an attempt's folder on its node, in the temporary folder


@dataclass(frozen=True)
class NodeInfo:
    """One node as a sweep sees it.

    ``ray_gpus``: the GPUs Ray schedules there (declared with ``ray start --num-gpus``, or
    found); ``gpus``: the NVIDIA GPUs NVML lists there (none where GPUs are only declared, on a
    machine without them: its runs then go to the CPU). ``problem``: why the node cannot run
    benchmarks ("" when it can).
    """

    node_id: str
    host: str
    ray_gpus: int
    gpus: tuple[Gpu, ...] = ()
    memory_bytes: int | None = None
    runner: str = ""
    software_id: str = ""
    version: str = ""
    problem: str = ""

    @property
    def gpu_name(self) -> str:
        """The GPU model runs get here: the first GPU's, or ``cpu`` (GPUs only declared)."""
        return self.gpus[0].name if self.gpus else "cpu"


def probe(node_id: str, ray_gpus: int, runner_name: RunnerName, image: str) -> NodeInfo:
    """What this node offers, with the runner it would use and that runner's software."""
    info = NodeInfo(
        node_id=node_id,
        host=socket.gethostname(),
        ray_gpus=ray_gpus,
        gpus=tuple(inventory()),
        memory_bytes=host_memory_bytes(),
        version=contract.VERSION,
    )
    try:
        runner = make_runner(runner_name, image)
        info = replace(info, runner=runner.name, software_id=runner.software_id(image))
    except (RunnerError, OSError) as exc:
        return replace(info, problem=str(exc))
    if runner.name == "docker":  # the Docker SDK loads only where Docker is used
        from orchestrator.execution.runners.image import image_exists

        if not image_exists(image):
            return replace(info, problem=f"the image {image} is not on this node's Docker engine")
    return info


@dataclass(frozen=True)
class AttemptResult:
    """What an attempt hands back: how it ended, where, and the files it made.

    ``files``: each result file's name and bytes; ``log``: the run's log (redacted on the node);
    ``started``: the node's clock when the task started, for the dispatch overhead.
    """

    outcome: RunOutcome
    files: dict[str, bytes] = field(default_factory=dict)
    log: bytes = b""
    started: float = 0.0


@dataclass(frozen=True)
class Expected:
    """What the sweep planned every run with: the node must offer the same, or refuse."""

    runner: RunnerName
    image: str
    software_id: str
    hardware: str
    hf_cache: Path | None = None
    node_gpus: dict[str, int] = field(default_factory=dict)  # Ray GPUs per node id, probed
    version: str = contract.VERSION  # the driver's version of the project


def attempt(spec: RunSpec, expected: Expected, token: str | None) -> AttemptResult:
    """Run ``spec`` once on this node with the GPUs Ray gave this task.

    A cancel (Ray raises KeyboardInterrupt in the task) stops the benchmark and removes its
    container before the task ends; so does the end of the task any other way.
    """
    import ray

    started = time.time()
    context = ray.get_runtime_context()
    node_id = context.get_node_id()
    ids = context.get_accelerator_ids().get("GPU", [])
    here = Placement(socket.gethostname(), node_id)
    try:
        gpus = _gpus(ids, inventory())
        here = replace(here, gpu_uuids=tuple(g.uuid for g in gpus))
        runner = make_runner(expected.runner, expected.image)
        refusal = _refusal(here.host, runner, gpus, expected)
    except (RunnerError, OSError, ValueError) as exc:
        refusal = f"{here.host}: {exc}"
    if refusal:
        outcome = RunOutcome(Cause.CONFIG_ERROR, None, 0.0, refusal, here)
        return AttemptResult(outcome, started=started)
    # As long as a benchmark whose task died may still run: its heartbeat limit, and a margin.
    leftover_s = heartbeat.limit_s(spec.env) + BUSY_MARGIN_S
    busy = wait_until_free(here.gpu_uuids, leftover_s)
    if busy:
        outcome = RunOutcome(Cause.RUNNER_ERROR, None, 0.0, f"{here.host}: {busy}", here)
        return AttemptResult(outcome, started=started)
    root = Path(tempfile.gettempdir())
    remove_stale_work(root, leftover_s)
    work = Path(tempfile.mkdtemp(prefix=WORK_PREFIX, dir=root))
    try:
        node_spec = replace(
            spec,
            results_dir=work / "results",
            log_path=work / "run.log",
            gpu_uuids=here.gpu_uuids,
            cpus=_cpus(ids, expected.node_gpus.get(node_id, len(ids))),
            hf_cache_dir=hf_cache_for(runner, expected.hf_cache),
        )
        outcome = _run(runner, node_spec, token)
        results = node_spec.results_dir
        kept = sorted((results / contract.IMAGES_DIR).glob("*.png"))
        files = {
            p.relative_to(results).as_posix(): p.read_bytes()
            for p in [*sorted(results.iterdir()), *kept]
            if p.is_file()
            and (p.name in contract.RESULT_FILES or contract.IMAGE_FILE_PATTERN.fullmatch(p.name))
        }
        log = node_spec.log_path.read_bytes() if node_spec.log_path.exists() else b""
        return AttemptResult(replace(outcome, placement=here), files, log, started)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def remove_stale_work(root: Path, older_than_s: float) -> list[Path]:
    """Remove the work folders of attempts whose task died (a killed worker skips its clean-up).

    A folder is stale when neither it nor its run's heartbeat changed for ``older_than_s``: a
    live attempt's heartbeat moves every few seconds, and a dead one's benchmark has stopped
    itself by then. Returns the folders removed.
    """
    removed = []
    now = time.time()
    for folder in root.glob(f"{WORK_PREFIX}*"):
        beat = folder / "results" / contract.HEARTBEAT_FILE
        try:
            last = max(p.stat().st_mtime for p in (folder, beat) if p.exists())
        except (OSError, ValueError):  # gone meanwhile
            continue
        if now - last > older_than_s:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def wait_until_free(uuids: tuple[str, ...], timeout_s: float) -> str:
    """Wait until no other process uses these GPUs; what still does after ``timeout_s``.

    Ray counts a GPU free when its task ended, but a benchmark whose task died (a killed worker,
    a driver gone) runs on until its heartbeat stops: a run beside it would measure both.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        busy = {g.uuid: g.busy_pids for g in inventory() if g.uuid in uuids and g.busy}
        if not busy:
            return ""
        if time.monotonic() >= deadline:
            held = "; ".join(f"{u} by process {', '.join(map(str, p))}" for u, p in busy.items())
            return f"its GPUs stayed in use by other processes for {timeout_s:.0f} s ({held})"
        time.sleep(BUSY_POLL_S)


def _gpus(ids: list[str], listed: list[Gpu]) -> list[Gpu]:
    """The GPUs of Ray's ids (NVML indices or UUIDs); none where NVML lists none (declared)."""
    if not listed:
        return []
    by_uuid = {g.uuid: g for g in listed}
    found = []
    for gpu_id in ids:
        if gpu_id in by_uuid:
            found.append(by_uuid[gpu_id])
        elif gpu_id.isdigit() and int(gpu_id) < len(listed):
            found.append(listed[int(gpu_id)])
        else:
            raise ValueError(f"Ray gave GPU {gpu_id!r}; NVML lists {len(listed)} GPUs here")
    return found


def _cpus(ids: list[str], node_gpus: int) -> tuple[int, ...]:
    """The cores of these GPUs: the node's cores split evenly among its GPUs, as on one host."""
    shares = split_cpus(host_cpus(), max(node_gpus, 1))
    taken = {c for i in ids if i.isdigit() for c in shares[int(i) % len(shares)]}
    return tuple(sorted(taken)) or tuple(host_cpus())


def _refusal(host: str, runner: Runner, gpus: list[Gpu], expected: Expected) -> str:
    """Why this node must not run the sweep's runs ("" when it may): their run ids would lie."""
    hardware = gpus[0].name if gpus else "cpu"
    if expected.version != contract.VERSION:
        return (
            f"{host} has version {contract.VERSION} of the project; the driver {expected.version}"
        )
    if hardware != expected.hardware:
        return f"{host} has {hardware}; this sweep's runs are planned on {expected.hardware}"
    software = runner.software_id(expected.image)
    if software != expected.software_id:
        return (
            f"{host} runs the benchmark as {software}; this sweep planned {expected.software_id} "
            "(install the same project version, or load the same image, on every node)"
        )
    return ""


def _run(runner: Runner, spec: RunSpec, token: str | None) -> RunOutcome:
    """``runner.run`` in a thread, this one waiting where a cancel can reach it.

    The wait is on an event, never ``Thread.join``: a KeyboardInterrupt that lands inside
    ``join`` marks a thread that still runs as ended (CPython 3.11).
    """
    outcome: list[RunOutcome] = []
    failure: list[BaseException] = []
    ended = threading.Event()

    def target() -> None:
        try:
            spec.results_dir.mkdir(parents=True, exist_ok=True)
            # the limit the run's benchmark was given, in its environment (the driver's)
            with heartbeat.beating(spec.results_dir, heartbeat.limit_s(spec.env)):
                outcome.append(runner.run(spec, token=token))
        except BaseException as exc:  # handed to the waiting thread
            failure.append(exc)
        finally:
            ended.set()

    try:
        threading.Thread(target=target, name="benchmark", daemon=True).start()
        while not ended.wait(POLL_S):
            pass
    except BaseException:  # Ray's cancel (KeyboardInterrupt), the worker's SIGTERM (SystemExit)
        # Until the run has ended: a benchmark or container that starts after a cancel is
        # stopped by the next one.
        while not ended.is_set():
            runner.cancel()
            ended.wait(POLL_S * 5)
        raise
    if failure:
        raise failure[0]
    return outcome[0]
