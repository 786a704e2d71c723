"""Carry out one planned run: prepare its folders, launch it (with retries), record the outcome."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import threading
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tenacity import (
    RetryError,
    Retrying,
    retry_if_result,
    stop_after_attempt,
    stop_when_event_set,
    wait_exponential,
)

from energy_bench import contract
from orchestrator.execution import heartbeat
from orchestrator.execution.runners.base import Runner
from orchestrator.execution.spec import (
    TRANSIENT,
    Cause,
    Placement,
    RunOutcome,
    RunSpec,
    filesystem_cause,
)
from orchestrator.planning.plan import RunPlan
from orchestrator.store.paths import OutputLayout
from orchestrator.store.records import RunRecord, holds_success, load_record, save_record

log = logging.getLogger(__name__)

# Host settings that runs inherit (offline mode, a Hub mirror); never a secret.
PASSTHROUGH_ENV = (
    "HF_HUB_OFFLINE",
    "TRANSFORMERS_OFFLINE",
    "HF_ENDPOINT",
    "HF_HUB_ETAG_TIMEOUT",
    "VLLM_API_KEY",  # a served run's key for its server: environment only, never an argument
)


@dataclass(frozen=True)
class ExecOptions:
    """How every run of a sweep is launched."""

    out_dir: Path
    image: str
    software_id: str = ""
    timeout_s: float | None = None
    retries: int = 0
    hf_cache_dir: Path | None = None
    retry_wait_s: float = 5.0
    executor: str = "local"


def now_iso() -> str:
    """The current UTC time, ISO 8601 to the millisecond (runs on several GPUs overlap)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _base_record(plan: RunPlan, runner: str, options: ExecOptions, status: str) -> RunRecord:
    c = plan.config
    return RunRecord(
        run_id=plan.run_id,
        name=plan.name,
        model_id=c.model_id,
        model_name=c.model_name,
        model_class=c.model_class.value if c.model_class else "",
        task=c.task.value,
        reasoning_state=c.reasoning_state.value,
        status=status,  # type: ignore[arg-type]
        runner=runner,
        executor=options.executor if runner else "",
        image=options.image if runner == "docker" else "",
        software_id=options.software_id,
        overrides=plan.overrides,
        reasoning_mismatch=c.reasoning.mismatch,
        reasoning_note=c.reasoning.note,
    )


def skipped_record(plan: RunPlan, options: ExecOptions, reason: str) -> RunRecord:
    """The record of a planned run that was not launched."""
    return replace(
        _base_record(plan, "", options, "skipped"), cause="skipped", error_message=reason
    )


def execute(
    plan: RunPlan,
    *,
    runner: Runner,
    options: ExecOptions,
    gpu_uuids: tuple[str, ...] = (),
    cpus: tuple[int, ...] = (),
    token: str | None = None,
    stop: threading.Event | None = None,
) -> RunRecord:
    """Launch ``plan`` and return (and save) its record. Raises only on KeyboardInterrupt.

    ``stop`` set (a sweep being interrupted) turns a failed launch into ``interrupted`` and
    prevents further attempts.

    The benchmark writes into an attempt folder inside the run folder. A successful attempt
    replaces the run folder's results and record; a failed one does too where the folder holds
    no successful result, and otherwise stays in its attempt folder beside the earlier success,
    which is never destroyed by a later attempt.
    """
    try:
        return _execute(plan, runner, options, gpu_uuids, cpus, token, stop or threading.Event())
    except Exception as exc:  # this run cannot write its folder, or its runner broke: alone
        if isinstance(exc, OSError):
            cause = filesystem_cause(exc)
            message = f"{cause.value}: {exc.strerror or exc}: {exc.filename or options.out_dir}"
        else:
            cause = Cause.RUNNER_ERROR
            message = f"{cause.value}: {type(exc).__name__}: {exc}"
            log.debug("%s: runner error", plan.name, exc_info=True)
        log.error("%s: %s", plan.name, message)
        record = replace(
            _base_record(plan, runner.name, options, "failed"),
            cause=cause.value,
            error_message=message,
            finished_at=now_iso(),
        )
        folder = OutputLayout(options.out_dir).run_dir(plan.name)
        with contextlib.suppress(OSError):
            if not holds_success(folder):
                save_record(folder, record)
        return record


def _execute(
    plan: RunPlan,
    runner: Runner,
    options: ExecOptions,
    gpu_uuids: tuple[str, ...],
    cpus: tuple[int, ...],
    token: str | None,
    stopping: threading.Event,
) -> RunRecord:
    layout = OutputLayout(options.out_dir)
    folder = layout.run_dir(plan.name)
    keep = holds_success(folder)
    when = datetime.now(UTC)
    attempt_dir = layout.attempt_dir(plan.name, when)
    attempt_dir.mkdir(parents=True, exist_ok=True)  # before Docker mounts it
    log_path = layout.run_log(plan.name, when)
    if plan.serving is not None:  # it measures the server's GPUs, whatever slot it holds
        gpu_uuids = plan.serving.gpus
    spec = RunSpec(
        run_id=plan.run_id,
        overrides=plan.overrides,
        output_dir=options.out_dir,
        results_dir=attempt_dir,
        log_path=log_path,
        gpu_uuids=gpu_uuids,
        cpus=cpus,
        timeout_s=options.timeout_s if options.timeout_s is not None else plan.default_timeout_s,
        image=options.image,
        hf_cache_dir=options.hf_cache_dir,
        read_only_paths=plan.read_only_paths,
        env={k: os.environ[k] for k in PASSTHROUGH_ENV if k in os.environ}
        | heartbeat.environment(),
        gpu_count=plan.gpus_needed,
        measures_server=plan.serving is not None,
        config_name=plan.config_name,
    )
    started = now_iso()
    record = replace(
        _base_record(plan, runner.name, options, "running"),
        gpu_uuids=gpu_uuids,
        started_at=started,
        log_path=layout.relative(log_path),
    )

    def save(state: RunRecord) -> None:
        save_record(attempt_dir, state)
        if not keep:
            save_record(folder, state)

    save(record)
    attempts = 0
    duration = 0.0
    here = Placement(socket.gethostname(), "", gpu_uuids)
    placements: list[Placement] = []

    def attempt() -> RunOutcome:
        nonlocal attempts, duration
        if stopping.is_set():  # stopped while waiting to retry: no attempt starts after that
            return RunOutcome(Cause.INTERRUPTED, None, 0.0, "interrupted (Ctrl-C): not started")
        attempts += 1
        if attempts > 1:
            log.warning("%s: attempt %d of %d", plan.name, attempts, options.retries + 1)
        with heartbeat.beating(attempt_dir):
            outcome = runner.run(spec, token=token)
        duration += outcome.duration_s
        placements.append(outcome.placement or here)
        return outcome

    def where() -> dict[str, Any]:
        """The record's fields that say where the attempts ran (the last one's node and GPUs)."""
        if not placements:  # none started
            return {}
        last = placements[-1]
        return {
            "host": last.host,
            "node_id": last.node_id,
            "gpu_uuids": last.gpu_uuids,
            "attempt_nodes": tuple(map(str, placements)),
        }

    try:
        outcome = Retrying(
            retry=retry_if_result(lambda o: o.cause in TRANSIENT and not stopping.is_set()),
            stop=stop_after_attempt(options.retries + 1) | stop_when_event_set(stopping),
            wait=wait_exponential(multiplier=options.retry_wait_s, max=60),
            sleep=stopping.wait,  # a sweep being stopped never sleeps into another attempt
            reraise=True,
        )(attempt)
    except RetryError as exc:  # only when the last attempt was transient too
        outcome = exc.last_attempt.result()
    except KeyboardInterrupt:
        save(
            replace(
                record,
                status="interrupted",
                cause=Cause.INTERRUPTED.value,
                error_message="interrupted (Ctrl-C)",
                finished_at=now_iso(),
                attempts=attempts,
                duration_s=duration,
                **where(),
            ),
        )
        raise
    if stopping.is_set() and not outcome.ok and outcome.cause is not Cause.INTERRUPTED:
        outcome = RunOutcome(
            Cause.INTERRUPTED,
            outcome.exit_code,
            outcome.duration_s,
            "interrupted (Ctrl-C): stopped",
        )
    status = (
        "ok" if outcome.ok else "interrupted" if outcome.cause is Cause.INTERRUPTED else "failed"
    )
    message = "" if outcome.ok else f"{outcome.cause.value}: {outcome.message}".strip()
    final = replace(
        record,
        status=status,  # type: ignore[arg-type]
        cause=outcome.cause.value,
        error_message=message,
        attempts=attempts,
        exit_code=outcome.exit_code,
        finished_at=now_iso(),
        duration_s=duration,
        **where(),
    )
    if final.status == "ok" or not keep:
        adopt_attempt(layout, plan.name, attempt_dir)
        save_record(folder, final)
    else:
        save_record(attempt_dir, final)
        log.warning(
            "%s: this attempt %s; the earlier successful result is kept (this attempt: %s)",
            plan.name,
            final.status,
            layout.relative(attempt_dir),
        )
    return final


# Folder names of earlier versions that now have the AI Energy Score spelling.
LEGACY_SPELLINGS = (("_Off_N_A", "_Off_NA"),)


def adopt_legacy_folders(out_dir: Path, names: Iterable[str]) -> list[tuple[str, str]]:
    """Rename run folders an earlier version named otherwise (``_Off_NA``) to these names.

    Called with the folder's lock held, before resume decides what is done: a run finished
    under the old name is then resumed, not run again, and the master CSV holds it once. A
    folder is renamed only when the new name is free. Returns the (old, new) names renamed.
    """
    layout = OutputLayout(out_dir)
    renamed = []
    for name in names:
        for new, old in LEGACY_SPELLINGS:
            head, found, tail = name.rpartition(new)
            legacy = layout.run_dir(head + old + tail) if found else None
            if legacy is None or not legacy.is_dir() or layout.run_dir(name).exists():
                continue
            legacy.rename(layout.run_dir(name))
            record = load_record(layout.run_dir(name))
            if record is not None:
                save_record(layout.run_dir(name), replace(record, name=name))
            renamed.append((legacy.name, name))
    return renamed


def settle_stale(out_dir: Path, names: Iterable[str]) -> list[str]:
    """Mark ``interrupted`` the records of these runs still saying ``running``; their names.

    Called with the folder's lock held: no live sweep or run owns them, so their sweep was
    killed before it could say how they ended.
    """
    layout = OutputLayout(out_dir)
    settled = []
    for name in names:
        record = load_record(layout.run_dir(name))
        if record is not None and record.status == "running":
            save_record(
                layout.run_dir(name),
                replace(
                    record,
                    status="interrupted",
                    cause=Cause.INTERRUPTED.value,
                    error_message="interrupted: its sweep stopped before the run ended",
                    finished_at=record.finished_at or now_iso(),
                ),
            )
            settled.append(name)
    return settled


def adopt_attempt(layout: OutputLayout, name: str, attempt_dir: Path) -> None:
    """Make an attempt's result files the run folder's (none of the earlier ones stays)."""
    for file in contract.RESULT_FILES:
        made, target = attempt_dir / file, layout.result(name, file)
        if made.exists():
            os.replace(made, target)
        else:
            target.unlink(missing_ok=True)
    images, kept = attempt_dir / contract.IMAGES_DIR, layout.images_dir(name)
    shutil.rmtree(kept, ignore_errors=True)
    if images.is_dir():
        os.replace(images, kept)
    shutil.rmtree(attempt_dir, ignore_errors=True)
    with contextlib.suppress(OSError):  # only where no other attempt is kept
        attempt_dir.parent.rmdir()
