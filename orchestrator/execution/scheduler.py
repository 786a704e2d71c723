"""Run a sweep: a pool of GPU slots, one run per free slot, resume, Ctrl-C that cleans up.

Each run gets exactly the GPUs its plan needs (class A/B one, class C the configured number).
Runs start greedily in priority order as slots free up; the master CSV is rebuilt after every run.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.commands.progress import ProgressView
from orchestrator.execution.execute import ExecOptions, execute, skipped_record
from orchestrator.execution.runners.base import Runner
from orchestrator.planning.plan import RunPlan
from orchestrator.store.master import rebuild_master
from orchestrator.store.paths import OutputLayout
from orchestrator.store.records import RunRecord, is_complete, load_record, save_record

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Slot:
    """A unit of the pool: a GPU (by UUID), or a logical CPU slot on a host without GPUs."""

    label: str
    uuid: str | None = None


@dataclass
class SweepResult:
    """Every planned run's record, and which were resumed (not rerun)."""

    records: list[RunRecord] = field(default_factory=list)
    resumed: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[RunRecord]:
        return [r for r in self.records if r.status in ("failed", "interrupted")]


def gpu_slots(uuids: Sequence[str]) -> list[Slot]:
    """A slot per GPU."""
    return [Slot(f"GPU {i}", u) for i, u in enumerate(uuids)]


def cpu_slots(count: int) -> list[Slot]:
    """Logical slots for a host without GPUs."""
    return [Slot(f"CPU slot {i}") for i in range(count)]


def triage(
    plans: Sequence[RunPlan], out_dir: Path, *, force: bool, slots: Sequence[Slot]
) -> tuple[list[RunPlan], list[RunPlan], list[tuple[RunPlan, str]]]:
    """(to run, already complete, skipped with reason), in priority then CSV order."""
    layout = OutputLayout(out_dir)
    on_gpus = any(s.uuid for s in slots)
    todo, done, skipped = [], [], []
    for plan in sorted(plans, key=lambda p: p.config.priority):
        need = plan.gpus_needed if on_gpus else 1
        if plan.skip_reason:
            skipped.append((plan, plan.skip_reason))
        elif need > len(slots):
            skipped.append((plan, f"needs {need} GPUs; {len(slots)} usable on this host"))
        elif not force and is_complete(layout.run_dir(plan.name), plan.run_id):
            done.append(plan)
        else:
            todo.append(plan)
    return todo, done, skipped


def run_sweep(
    plans: Sequence[RunPlan],
    *,
    runner: Runner,
    options: ExecOptions,
    slots: Sequence[Slot],
    progress: ProgressView,
    force: bool = False,
    token: str | None = None,
    max_parallel: int | None = None,
) -> SweepResult:
    """Run every plan that is not complete; returns all records.

    Ctrl-C stops the running runs, leaves the master CSV consistent, then re-raises.
    """
    result = SweepResult()
    layout = OutputLayout(options.out_dir)
    removed = runner.remove_leftovers(options.out_dir)
    if removed:
        log.warning("removed %d container(s) left behind by an earlier sweep", removed)
    todo, done, skipped = triage(plans, options.out_dir, force=force, slots=slots)
    for plan in done:
        record = load_record(layout.run_dir(plan.name))
        assert record is not None  # is_complete read it a moment ago
        result.records.append(record)
        result.resumed.append(plan.name)
    for plan, reason in skipped:
        record = skipped_record(plan, options, reason)
        save_record(layout.run_dir(plan.name), record)
        result.records.append(record)
    on_gpus = any(s.uuid for s in slots)
    free = list(slots)
    lock = threading.Lock()
    stop = threading.Event()
    progress.start(len(todo))
    running: dict[Future[RunRecord], tuple[RunPlan, list[Slot]]] = {}
    pending = list(todo)

    def launch(plan: RunPlan, taken: list[Slot]) -> RunRecord:
        label = ", ".join(s.label for s in taken)
        progress.started(label, plan.name)
        record = execute(
            plan,
            runner=runner,
            options=options,
            stop=stop,
            gpu_uuids=tuple(s.uuid for s in taken if s.uuid),
            token=token,
        )
        with lock:
            rebuild_master(options.out_dir)
        progress.finished(label, plan.name, record.status)
        return record

    pool = ThreadPoolExecutor(max_workers=max(len(slots), 1), thread_name_prefix="run")
    try:
        while pending or running:
            for plan in list(pending):
                need = plan.gpus_needed if on_gpus else 1
                if max_parallel is not None and len(running) >= max_parallel:
                    break
                if need <= len(free):
                    taken, free[:] = free[:need], free[need:]
                    pending.remove(plan)
                    running[pool.submit(launch, plan, taken)] = (plan, taken)
            finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for future in finished:
                plan, taken = running.pop(future)
                free.extend(taken)
                result.records.append(future.result())
    except KeyboardInterrupt:
        stop.set()
        log.warning("interrupted: stopping %d running run(s)", len(running))
        runner.cancel()
        for future in list(running):
            try:
                result.records.append(future.result(timeout=120))
            except Exception as exc:  # the record on disk says interrupted already
                log.debug("run ended with %s", exc)
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        rebuild_master(options.out_dir)
        progress.stop()
    return result
