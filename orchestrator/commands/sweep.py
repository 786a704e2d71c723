"""``python batch_runner.py [options]``: a sweep over the models CSV."""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console

from orchestrator.commands import COMMANDS
from orchestrator.commands.common import (
    add_common_options,
    check_common,
    check_serving,
    prompts_file,
    serving,
    warn_without_token,
)
from orchestrator.commands.logs import add_debug_log, setup_logging
from orchestrator.commands.progress import make_progress
from orchestrator.commands.tables import print_plan, print_summary
from orchestrator.errors import EXIT_FAILED_RUNS, RunnerError
from orchestrator.execution.execute import ExecOptions
from orchestrator.execution.executors.base import EXECUTORS, Executor
from orchestrator.execution.executors.local import local_executor
from orchestrator.execution.scheduler import SweepResult, run_sweep, triage
from orchestrator.models.config import ModelConfig
from orchestrator.models.csv_reader import read_models_csv
from orchestrator.models.filters import filter_configs
from orchestrator.models.reasoning import load_formats
from orchestrator.planning.checks import check_plans
from orchestrator.planning.plan import (
    CLASS_C_DEFAULT_GPUS,
    FALSE,
    TRUE,
    PlanOptions,
    plan_runs,
    sets_reasoning,
)
from orchestrator.secrets import find_hf_token
from orchestrator.store.lock import output_lock

log = logging.getLogger(__name__)
ORDERS = ("longest", "priority")
ENV_PREFIX = "AI_ENERGY_SCORE_"


def _parser() -> argparse.ArgumentParser:
    commands = "\n".join(f"  {name:<20}  {line}" for name, line in COMMANDS.items())
    parser = argparse.ArgumentParser(
        prog="batch_runner.py",
        formatter_class=argparse.RawDescriptionHelpFormatter,  # the commands' lines as written
        description="Run the AI Energy Score benchmark for every (filtered) row of a models CSV,\n"
        "or one of the commands listed at the end. Settings may also come from\n"
        f"{ENV_PREFIX}<OPTION> variables or a .env file (e.g. {ENV_PREFIX}OUTPUT_DIR).",
        epilog=f"commands (python batch_runner.py COMMAND --help):\n{commands}",
    )
    parser.add_argument("--csv", type=Path, default=Path("models.csv"), help="models CSV")
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
        "--order",
        choices=ORDERS,
        default="longest",
        help="start the longest runs first (durations of earlier runs, else estimates), or in "
        "priority then CSV order (longest)",
    )
    parser.add_argument(
        "--class-c-gpus",
        type=int,
        default=CLASS_C_DEFAULT_GPUS,
        help=f"GPUs for a class C run ({CLASS_C_DEFAULT_GPUS})",
    )
    parser.add_argument(
        "--executor",
        choices=EXECUTORS,
        default="local",
        help="where runs execute: this host's GPUs, or a Ray cluster's (local)",
    )
    parser.add_argument(
        "--ray-address",
        default="auto",
        metavar="ADDRESS",
        help="the Ray cluster of --executor ray: auto (started on this machine), host:port, or "
        "ray://host:10001 (auto)",
    )
    add_common_options(parser)
    parser.add_argument(
        "overrides", nargs="*", metavar="key=value", help="benchmark overrides applied to every run"
    )
    return parser


def env_name(action: argparse.Action) -> str:
    """The variable of an option: ``--max-parallel`` -> ``AI_ENERGY_SCORE_MAX_PARALLEL``."""
    option = next(o for o in reversed(action.option_strings) if o.startswith("--"))
    return ENV_PREFIX + option.removeprefix("--").replace("-", "_").upper()


def _env_defaults(parser: argparse.ArgumentParser) -> dict[str, Any]:
    """Every option's value from its ``AI_ENERGY_SCORE_<OPTION>`` variable, else from ``.env``.

    Values are read as the command line reads them (argparse converts a text default with the
    option's type); flags take true / false, repeatable options a list split on ``os.pathsep``.
    """
    from dotenv import dotenv_values

    values = {k: v for k, v in dotenv_values(".env").items() if v is not None}
    values.update(os.environ)
    defaults: dict[str, Any] = {}
    for action in parser._actions:
        if not any(o.startswith("--") for o in action.option_strings) or action.dest == "help":
            continue
        name = env_name(action)
        text = values.get(name, "").strip()
        if not text:
            continue
        if action.nargs == 0:  # a flag
            if text.lower() not in TRUE + FALSE:
                raise RunnerError(f"{name}={text!r}: expected true or false")
            defaults[action.dest] = text.lower() in TRUE
        elif isinstance(action.default, list):  # repeatable
            convert = action.type if callable(action.type) else str
            defaults[action.dest] = [convert(p) for p in text.split(os.pathsep) if p]
        else:
            if action.choices is not None and text not in action.choices:
                raise RunnerError(f"{name}={text!r}: expected one of {', '.join(action.choices)}")
            defaults[action.dest] = text
    return defaults


def _check(args: argparse.Namespace) -> None:
    """Values argparse lets through (they may come from the environment) but that cannot work."""
    check_common(args)
    if args.max_parallel is not None and args.max_parallel < 1:
        raise RunnerError(f"--max-parallel {args.max_parallel}: must be at least 1")
    if args.class_c_gpus < 1:
        raise RunnerError(f"--class-c-gpus {args.class_c_gpus}: must be at least 1")
    if args.order not in ORDERS:
        raise RunnerError(f"--order {args.order}: expected one of {', '.join(ORDERS)}")
    reasoning = [o for o in args.overrides if sets_reasoning(o)]
    if reasoning:
        raise RunnerError(
            f"{' '.join(reasoning)}: in a sweep each row's Reasoning State decides its reasoning "
            "(filter with --reasoning-state; one model: batch_runner.py run)"
        )


def _executor(args: argparse.Namespace) -> Executor:
    """Where the runs go (``--executor``)."""
    if args.executor == "ray":
        if args.gpus:
            raise RunnerError("--gpus picks this host's GPUs; --executor ray uses the cluster's")
        from orchestrator.execution.executors.ray_cluster import ray_executor

        return ray_executor(args.ray_address, args.runner, args.image, hf_cache=args.hf_cache)
    return local_executor(
        args.runner,
        args.image,
        gpus=args.gpus,
        cpu_runs=args.max_parallel or 1,
        hf_cache=args.hf_cache,
        serving=args.backend == "vllm",
    )


def sweep_cli(argv: Sequence[str]) -> int:
    """Entry point of a sweep: parse, validate everything, then plan (``--dry-run``) or run."""
    parser = _parser()
    parser.set_defaults(**_env_defaults(parser))
    args = parser.parse_args(argv)
    setup_logging(args.verbose, args.quiet)
    _check(args)
    check_serving(args)
    if args.backend == "vllm" and args.executor == "ray":
        raise RunnerError("--backend vllm measures a server from this host: --executor local")
    # The whole file is validated before anything runs.
    configs = read_models_csv(args.csv, formats=load_formats(args.reasoning_formats))
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
    executor = _executor(args)
    try:
        result = _plan_and_run(args, executor, selected, configs)
    finally:
        executor.close()
    if result is None:  # the dry run
        return 0
    console = Console(stderr=False)
    print_summary(console, result, args.output_dir)
    if not args.no_report:
        from orchestrator.reports.build import make_report  # matplotlib loads only here

        try:
            files = make_report(args.output_dir)
            console.print(f"report: {files.layout.leaderboard_html}")
        except Exception as exc:  # a report problem never hides the sweep's own result
            log.warning("report not made: %s", exc, exc_info=args.verbose)
    return EXIT_FAILED_RUNS if result.failed else 0


def _plan_and_run(
    args: argparse.Namespace,
    executor: Executor,
    selected: Sequence[ModelConfig],
    configs: Sequence[ModelConfig],
) -> SweepResult | None:
    """Plan the selected rows on ``executor``, then print the plan (``--dry-run``, None) or run."""
    options = PlanOptions(
        image=args.image, software_id=executor.software_id, hardware=executor.hardware,
        num_prompts=args.num_prompts,
        prompts_file=prompts_file(args),
        extra_overrides=tuple(args.overrides), class_c_gpus=args.class_c_gpus,
        serving=serving(args, executor.measured_gpus),
    )  # fmt: skip
    plans = plan_runs(selected, options, all_rows=configs)
    token = find_hf_token()
    check_plans(plans, options, token.value if token else None)
    console = Console(stderr=False)
    slots = list(executor.slots)
    if args.dry_run:
        todo = print_plan(
            console, plans, args, slots, executor.runner.name, hf_home=executor.hf_home,
            fits=executor.misfit, where=executor.where,
        )  # fmt: skip
        warn_without_token(todo, token is not None)
        return None
    todo, _, _ = triage(plans, args.output_dir, force=args.force, slots=slots, fits=executor.misfit)
    warn_without_token(todo, token is not None)
    with output_lock(args.output_dir):
        add_debug_log(args.output_dir)
        log.info(
            "%d of %d rows selected; %s executor, %s runner; %s",
            len(selected),
            len(configs),
            executor.name,
            executor.runner.name,
            executor.where,
        )
        return run_sweep(
            plans,
            runner=executor.runner,
            options=ExecOptions(
                out_dir=args.output_dir,
                image=args.image,
                software_id=executor.software_id,
                timeout_s=args.timeout,
                retries=args.retries,
                hf_cache_dir=executor.hf_home,
                executor=executor.name,
            ),
            slots=slots,
            fits=executor.misfit,
            progress=make_progress(console, args.quiet),
            force=args.force,
            token=token.value if token else None,
            max_parallel=args.max_parallel,
            order=args.order,
        )
