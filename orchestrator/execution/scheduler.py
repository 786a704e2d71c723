"""Run a sweep: a pool of GPU slots, runs started as slots free up, resume, Ctrl-C that cleans up.

Each run gets exactly the GPUs its plan needs (class A/B one, class C the configured number) and
the cores of those slots. By default runs start longest first (``ordering``), with measured
durations remembered per run id and GPU model; ``order="priority"`` starts them in priority then
CSV order, first fit. The master CSV takes each run's row as it finishes (the other rows from
its cache) and is rebuilt in full at the end.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Literal, Protocol

from orchestrator.execution.execute import (
    ExecOptions,
    adopt_legacy_folders,
    execute,
    settle_stale,
    skipped_record,
)
from orchestrator.execution.fit import misfit
from orchestrator.execution.ordering import Job, expected_durations, longest_first, to_start
from orchestrator.execution.runners.base import Runner
from orchestrator.execution.slots import Slot
from orchestrator.planning.plan import RunPlan
from orchestrator.store.durations import duration_key, load_durations, save_duration
from orchestrator.store.master import rebuild_master, update_master
from orchestrator.store.paths import OutputLayout
from orchestrator.store.records import RunRecord, is_complete, load_record, save_record

log = logging.getLogger(__name__)

Order = Literal["longest", "priority"]


class ProgressView(Protocol):
    """What the sweep reports while it runs."""

    def start(self, total: int) -> None: ...

    def started(self, slot: str, name: str) -> None: ...

    def finished(self, slot: str, name: str, status: str) -> None: ...

    def stop(self) -> None: ...


@dataclass
class SweepResult:
    """Every planned run's record, and which were resumed (not rerun)."""

    records: list[RunRecord] = field(default_factory=list)
    resumed: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[RunRecord]:
        return [r for r in self.records if r.status in ("failed", "interrupted")]


def triage(
    plans: Sequence[RunPlan],
    out_dir: Path,
    *,
    force: bool,
    slots: Sequence[Slot],
    hf_home: Path | None = None,
    fits: Callable[[RunPlan], str] | None = None,
) -> tuple[list[RunPlan], list[RunPlan], list[tuple[RunPlan, str]]]:
    """(to run, already complete, skipped with reason), in priority then CSV order.

    A complete result of the very run id proves the run fits this kind of hardware, so it
    stays complete; ``force`` never runs what cannot fit: ``fits`` (the executor's ``misfit``)
    says why, by default ``fit.misfit`` of these ``slots`` (sizes are looked up in ``hf_home``,
    the Hugging Face home the runs get).
    """
    fits = fits or partial(misfit, slots=slots, hf_home=hf_home)
    layout = OutputLayout(out_dir)
    todo, done, skipped = [], [], []
    for plan in sorted(plans, key=lambda p: p.config.priority):
        folder = layout.run_dir(plan.name)
        if plan.skip_reason:
            skipped.append((plan, plan.skip_reason))
        elif owner := other_row(folder, plan):
            skipped.append((plan, owner))
        elif not force and is_complete(folder, plan.run_id):
            done.append(plan)
        elif reason := fits(plan):
            skipped.append((plan, reason))
        else:
            todo.append(plan)
    return todo, done, skipped


def other_row(folder: Path, plan: RunPlan) -> str:
    """Why ``folder`` cannot take this run: it holds another row's results ("" when it can)."""
    record = load_record(folder)
    c = plan.config
    mine = (c.model_id, c.task.value, c.reasoning_state.value)
    if record is None or (record.model_id, record.task, record.reasoning_state) == mine:
        return ""
    return (
        f"its folder {folder.name} holds the results of another row ({record.model_id}, "
        f"{record.task}, {record.reasoning_state or 'no state'}); use another --output-dir"
    )


@contextlib.contextmanager
def _logged_os_errors(what: str) -> Iterator[None]:
    """A file-system error (a full disk) in bookkeeping is one logged line; the sweep goes on."""
    try:
        yield
    except OSError as exc:
        log.error("%s: %s", what, exc)


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
    order: Order = "longest",
    fits: Callable[[RunPlan], str] | None = None,
) -> SweepResult:
    """Run every plan that is not complete; returns all records.

    ``runner``, ``slots`` and ``fits`` come from the executor (``executors``): where runs go.

    Ctrl-C stops the running runs, leaves the master CSV consistent, then re-raises.
    """
    result = SweepResult()
    layout = OutputLayout(options.out_dir)
    removed = runner.remove_leftovers(options.out_dir)
    if removed:
        log.warning("cleaned up %d benchmark(s) left behind by an earlier sweep", removed)
    with _logged_os_errors("run folders of an earlier version were not renamed"):
        for old, new in adopt_legacy_folders(options.out_dir, (p.name for p in plans)):
            log.warning("%s: renamed to %s, as the AI Energy Score scripts name it", old, new)
    with _logged_os_errors("stale records were not settled"):
        for name in settle_stale(options.out_dir, (p.name for p in plans)):
            log.warning("%s: its earlier sweep stopped before it ended; marked interrupted", name)
    todo, done, skipped = triage(
        plans, options.out_dir, force=force, slots=slots, hf_home=options.hf_cache_dir, fits=fits
    )
    for plan in done:
        record = load_record(layout.run_dir(plan.name))
        assert record is not None  # is_complete read it a moment ago
        result.records.append(record)
        result.resumed.append(plan.name)
    for plan, reason in skipped:
        record = skipped_record(plan, options, reason)
        folder = layout.run_dir(plan.name)
        # Never over another row's record, nor over this run's success (--force on a misfit).
        if not other_row(folder, plan) and not is_complete(folder, plan.run_id):
            with _logged_os_errors(f"{plan.name}: its skipped record was not saved"):
                save_record(folder, record)
        result.records.append(record)
    on_gpus = any(s.gpu for s in slots)
    gpu_name = slots[0].gpu_name if slots else "cpu"
    # Calibrated over every planned run, completed ones included, whose duration is known.
    expected = expected_durations(plans, load_durations(options.out_dir), gpu_name)
    jobs = [Job(p, p.gpus_needed if on_gpus else 1, *expected[p.run_id]) for p in todo]
    pending = longest_first(jobs) if order == "longest" else jobs
    for job in pending:
        log.debug(
            "%s: %s %.0f s", job.plan.name, "took" if job.known else "estimated", job.expected_s
        )
    free = list(slots)
    lock = threading.Lock()
    stop = threading.Event()
    progress.start(len(todo))
    running: dict[Future[RunRecord], tuple[Job, list[Slot], float]] = {}

    def launch(plan: RunPlan, taken: list[Slot]) -> RunRecord:
        label = ", ".join(s.label for s in taken)
        progress.started(label, plan.name)
        record = execute(
            plan,
            runner=runner,
            options=options,
            stop=stop,
            gpu_uuids=tuple(s.uuid for s in taken if s.uuid),
            cpus=tuple(sorted({c for s in taken for c in s.cpus})),
            token=token,
        )
        with lock, _logged_os_errors(f"{plan.name}: the master CSV was not updated"):
            if record.status == "ok":
                key = duration_key(plan.run_id, gpu_name)
                save_duration(options.out_dir, key, record.duration_s)
            update_master(options.out_dir, [plan.name])
        progress.finished(label, plan.name, record.status)
        return record

    def starting_now() -> list[Job]:
        if order == "priority":  # first fit in priority order
            chosen, left = [], len(free)
            for job in pending:
                if job.need <= left:
                    chosen.append(job)
                    left -= job.need
        else:
            now = time.monotonic()
            ends = [(t0 + job.expected_s, job.need) for job, _, t0 in running.values()]
            chosen = to_start(pending, len(free), ends, now)
        if max_parallel is not None:
            chosen = chosen[: max(max_parallel - len(running), 0)]
        return chosen

    pool = ThreadPoolExecutor(max_workers=max(len(slots), 1), thread_name_prefix="run")
    try:
        while pending or running:
            for job in starting_now():
                taken, free[:] = free[: job.need], free[job.need :]
                pending.remove(job)
                running[pool.submit(launch, job.plan, taken)] = (job, taken, time.monotonic())
            if not running:  # nothing runs and nothing could start: never spin
                raise RuntimeError(f"no pending run fits {len(free)} free slot(s)")
            finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for future in finished:
                _, taken, _ = running.pop(future)
                free.extend(taken)
                result.records.append(future.result())
    except KeyboardInterrupt:
        stop.set()
        log.warning("interrupted: stopping %d running run(s)", len(running))
        runner.cancel()
        raise  # the pool's shutdown below waits for the cancelled runs to write their records
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        with _logged_os_errors("the master CSV was not rebuilt"):
            rebuild_master(options.out_dir)
        progress.stop()
    return result
