"""``python batch_runner.py [options]``: a sweep over the models CSV (SPEC §6)."""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.table import Table

from orchestrator.errors import RunnerError
from orchestrator.execute import ExecOptions
from orchestrator.filters import filter_configs
from orchestrator.gpus import inventory, select
from orchestrator.lock import output_lock
from orchestrator.models_csv import read_models_csv
from orchestrator.plan import CLASS_C_DEFAULT_GPUS, PlanOptions, RunPlan, plan_runs
from orchestrator.progress import make_progress
from orchestrator.results import collect_rows
from orchestrator.runners import make_runner
from orchestrator.secrets import find_hf_token
from orchestrator.single import hf_cache_for, warn_without_token
from orchestrator.sweep import Slot, SweepResult, cpu_slots, gpu_slots, run_sweep, triage

log = logging.getLogger(__name__)
ENV_PREFIX = "AI_ENERGY_SCORE_"
ENV_SETTINGS = ("csv", "output_dir", "runner", "image", "gpus", "timeout", "retries",
                "max_parallel", "num_prompts", "class_c_gpus")  # fmt: skip


def _parser(common: Callable[[argparse.ArgumentParser], None]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="batch_runner.py",
        description="Run the AI Energy Score benchmark for every (filtered) row of a models CSV. "
        "Subcommands: `run` (one model), `build-image`. Settings may also come from "
        f"{ENV_PREFIX}<OPTION> variables or a .env file (e.g. {ENV_PREFIX}OUTPUT_DIR).",
    )
    parser.add_argument("--csv", type=Path, default=Path("models.csv"), help="models CSV")
    parser.add_argument("--backend", default="pytorch", help="inference backend (pytorch)")
    parser.add_argument("--endpoint", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--model-name", help="case-insensitive substring of the model id")
    parser.add_argument("--class", dest="model_class", help="A, B or C")
    parser.add_argument("--reasoning-state", help="substring: On, Off, High, ...")
    parser.add_argument("--task", help="text_gen or image_gen")
    parser.add_argument("--dry-run", action="store_true", help="print the plan and exit")
    parser.add_argument(
        "--no-report",
        action="store_true",
        help="skip the leaderboard, labels and archive at the end",
    )
    parser.add_argument("--force", action="store_true", help="rerun runs that already completed")
    parser.add_argument(
        "--retries", type=int, default=1, help="extra attempts for transient failures (1)"
    )
    parser.add_argument(
        "--max-parallel",
        type=int,
        default=None,
        help="at most this many runs at once (default: one per free slot)",
    )
    parser.add_argument(
        "--class-c-gpus",
        type=int,
        default=CLASS_C_DEFAULT_GPUS,
        help=f"GPUs for a class C run ({CLASS_C_DEFAULT_GPUS})",
    )
    common(parser)
    parser.add_argument(
        "overrides", nargs="*", metavar="key=value", help="benchmark overrides applied to every run"
    )
    return parser


def _env_defaults() -> dict[str, str]:
    from dotenv import dotenv_values

    values = {k: v for k, v in dotenv_values(".env").items() if v is not None}
    values.update(os.environ)
    return {
        name: values[ENV_PREFIX + name.upper()]
        for name in ENV_SETTINGS
        if values.get(ENV_PREFIX + name.upper())
    }


def _debug_log(out_dir: Path) -> None:
    """Everything at debug level into ``<out>/logs/sweep_<time>.log``."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    path = out_dir / "logs" / f"sweep_{stamp}.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path)
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)


def _slots(args: argparse.Namespace) -> list[Slot]:
    gpus = select(inventory(), args.gpus)
    if gpus:
        return gpu_slots([g.uuid for g in gpus])
    if args.gpus:
        raise RunnerError(f"--gpus {args.gpus}: no usable GPU")
    return cpu_slots(args.max_parallel or 1)


def _budget(plan: RunPlan) -> str:
    c = plan.config
    if c.max_new_tokens is None:
        return "-"
    return (
        f"{c.max_new_tokens}"
        if c.min_new_tokens == c.max_new_tokens
        else f"{c.min_new_tokens}-{c.max_new_tokens}"
    )


def print_plan(
    console: Console,
    plans: Sequence[RunPlan],
    args: argparse.Namespace,
    slots: Sequence[Slot],
    runner_name: str,
) -> None:
    """The ``--dry-run`` table: what would run where, and what is skipped or complete."""
    todo, done, skipped = triage(plans, args.output_dir, force=args.force, slots=slots)
    reasons = {p.run_id: r for p, r in skipped}
    on_gpus = any(s.uuid for s in slots)
    table = Table(title=f"plan: {len(todo)} to run, {len(done)} complete, {len(skipped)} skipped")
    for name in ("run", "run id", "class", "GPUs", "new tokens", "status"):
        table.add_column(name)
    for plan in sorted(plans, key=lambda p: p.config.priority):
        if plan in done:
            status = "complete (resume skips it)"
        elif plan.run_id in reasons:
            status = f"skip: {reasons[plan.run_id]}"
        else:
            status = "to run"
        table.add_row(
            plan.name,
            plan.run_id,
            plan.config.model_class or "-",
            str(plan.gpus_needed if on_gpus else 0),
            _budget(plan),
            status,
        )
    console.print(table)
    console.print(
        f"runner {runner_name}, image {args.image}, slots: "
        f"{', '.join(s.label + (f' ({s.uuid})' if s.uuid else '') for s in slots)}"
    )


def print_summary(console: Console, result: SweepResult, out_dir: Path) -> None:
    """The final table and totals."""
    rows = {r["run_id"]: r for r in collect_rows(out_dir)}
    table = Table(title="sweep summary")
    for name in ("run", "status", "seconds", "GPU Wh", "tokens/J", "error"):
        table.add_column(name, overflow="fold")
    energy, best = 0.0, (0.0, "")
    for record in result.records:
        row = rows.get(record.run_id, {})
        wh, tpj = row.get("gpu_energy_wh"), row.get("tokens_per_joule")
        energy += wh or 0.0
        if tpj and tpj > best[0]:
            best = (tpj, record.name)
        status = "resumed" if record.name in result.resumed else record.status
        estimate = " (estimate)" if row.get("energy_source") == "estimate" else ""
        table.add_row(
            record.name,
            status,
            f"{record.duration_s:.1f}",
            f"{wh:.4f}{estimate}" if wh is not None else "-",
            f"{tpj:.3f}" if tpj else "-",
            record.error_message[:160],
        )
    console.print(table)
    counts = {
        s: sum(1 for r in result.records if r.status == s) for s in ("ok", "failed", "skipped")
    }
    console.print(
        f"{counts['ok']} ok ({len(result.resumed)} resumed), {counts['failed']} failed, "
        f"{counts['skipped']} skipped; total GPU energy {energy:.4f} Wh"
        + (f"; best {best[0]:.3f} tokens/J ({best[1]})" if best[1] else "")
        + f"\nresults: {out_dir / 'master_results.csv'}"
    )


def run_sweep_cli(argv: Sequence[str], common: Callable[[argparse.ArgumentParser], None]) -> int:
    """Parse, validate everything, then plan (``--dry-run``) or run the sweep."""
    from orchestrator.cli import setup_logging

    parser = _parser(common)
    parser.set_defaults(**_env_defaults())
    args = parser.parse_args(argv)
    setup_logging(args.verbose, args.quiet)
    if args.backend != "pytorch":
        raise RunnerError(f"--backend {args.backend}: only pytorch is supported")
    if args.endpoint:
        raise RunnerError("--endpoint: benchmarking a running server is not supported")
    configs = read_models_csv(args.csv)  # the whole file is validated before anything runs
    selected = filter_configs(
        configs,
        model_name=args.model_name,
        model_class=args.model_class,
        reasoning_state=args.reasoning_state,
        task=args.task,
    )
    if not selected:
        raise RunnerError(f"{args.csv}: no row matches the filters")
    args.output_dir = args.output_dir.resolve()
    options = PlanOptions(
        image=args.image, num_prompts=args.num_prompts,
        prompts_file=args.prompts_file.resolve() if args.prompts_file else None,
        extra_overrides=tuple(args.overrides), class_c_gpus=args.class_c_gpus,
    )  # fmt: skip
    plans = plan_runs(selected, options)
    console = Console(stderr=False)
    slots = _slots(args)
    runner = make_runner(args.runner, args.image)
    if args.dry_run:
        print_plan(console, plans, args, slots, runner.name)
        return 0
    token = find_hf_token()
    warn_without_token(plans, token is not None)
    with output_lock(args.output_dir):
        _debug_log(args.output_dir)
        log.info(
            "%d of %d rows selected; runner %s; slots %s",
            len(selected),
            len(configs),
            runner.name,
            ", ".join(s.label for s in slots),
        )
        result = run_sweep(
            plans,
            runner=runner,
            options=ExecOptions(
                out_dir=args.output_dir,
                image=args.image,
                timeout_s=args.timeout,
                retries=args.retries,
                hf_cache_dir=hf_cache_for(runner, args.hf_cache),
            ),
            slots=slots,
            progress=make_progress(console, args.quiet),
            force=args.force,
            token=token.value if token else None,
            max_parallel=args.max_parallel,
        )
    print_summary(console, result, args.output_dir)
    if not args.no_report:
        from orchestrator.reporting import make_report

        try:
            files = make_report(args.output_dir)
            console.print(f"report: {files.leaderboard_html}")
        except Exception as exc:  # a report problem never hides the sweep's own result
            log.warning("report not made: %s", exc, exc_info=args.verbose)
    return 1 if result.failed else 0
