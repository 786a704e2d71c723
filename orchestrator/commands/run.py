"""``batch_runner.py run``: one model, one run, the same per-run folder as a sweep."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence

from energy_bench import contract
from orchestrator.commands.common import (
    add_common_options,
    check_common,
    check_serving,
    prompts_file,
    serving,
    warn_without_token,
)
from orchestrator.commands.logs import setup_logging
from orchestrator.errors import RunnerError
from orchestrator.execution.execute import (
    ExecOptions,
    adopt_legacy_folders,
    execute,
    settle_stale,
)
from orchestrator.execution.fit import misfit
from orchestrator.execution.gpus import server_gpus, usable
from orchestrator.execution.runners.choice import hf_cache_for, make_runner
from orchestrator.execution.scheduler import other_row
from orchestrator.execution.slots import host_slots
from orchestrator.models.config import ReasoningState, Task
from orchestrator.models.csv_reader import single_config
from orchestrator.models.reasoning import load_formats
from orchestrator.planning.checks import check_plans
from orchestrator.planning.identity import split_override
from orchestrator.planning.plan import FALSE, TRUE, PlanOptions, plan_runs
from orchestrator.secrets import find_hf_token
from orchestrator.store.lock import output_lock
from orchestrator.store.master import rebuild_master
from orchestrator.store.paths import OutputLayout

log = logging.getLogger(__name__)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="batch_runner.py run",
        description="Run one model once (a debug run); writes the same per-run folder as a sweep.",
    )
    parser.add_argument("--model", required=True, help="Hub id, Hub URL or local folder")
    parser.add_argument(
        "--reasoning-state",
        default=None,
        help="On, Off, 'On (High)', ... (Off; or as scenario.reasoning=... overrides say)",
    )
    parser.add_argument("--class", dest="model_class", default="A", help="A, B or C (A)")
    parser.add_argument(
        "--task",
        choices=[t.value for t in Task],
        help="text_gen or image_gen (default: image_gen for a known image family or a local "
        "pipeline folder, else text_gen)",
    )
    parser.add_argument("--config-name", default=contract.CONFIG_NAME, help=argparse.SUPPRESS)
    add_common_options(parser)
    parser.add_argument(
        "overrides",
        nargs="*",
        metavar="key=value",
        help="benchmark overrides, e.g. backend.no_weights=True",
    )
    return parser


# The reasoning keys of the AI Energy Score scripts' single-run command. Here they choose the
# row's Reasoning State, whose mechanism the model's family decides (as for a CSV row).
REASONING_KEYS = {
    "scenario.reasoning": "reasoning",
    "scenario.reasoning_params.reasoning": "reasoning",
    "scenario.reasoning_params.enable_thinking": "reasoning",
    "scenario.reasoning_params.reasoning_effort": "effort",
}
SWITCH_KEY = "scenario.reasoning_params.enable_thinking"


def reasoning_from_overrides(
    overrides: Sequence[str], state: str | None
) -> tuple[str, tuple[str, ...]]:
    """The Reasoning State that ``--reasoning-state`` or the reasoning overrides ask for.

    ``scenario.reasoning=True`` (or ``reasoning_params.enable_thinking`` / ``.reasoning``) asks
    On, ``reasoning_params.reasoning_effort=high`` On (High), ``=False`` Off; with no such key,
    ``--reasoning-state`` or Off. Returns the state and the overrides without those keys.
    """
    rest, switches, effort, given = [], {}, None, []
    for item in overrides:
        key, value = split_override(item)
        value = value.strip("\"'").lower()
        kind = REASONING_KEYS.get(key)
        if kind is None or key == SWITCH_KEY:
            rest.append(item)  # the chat template switch is also written as asked
        if kind is None:
            continue
        given.append(item)
        if kind == "effort" and value in ("high", "medium", "low"):
            effort = value
        elif kind == "effort" and value in ("off", "none", "null", ""):
            effort = None
        elif kind == "reasoning" and value in TRUE + FALSE:
            switches[key] = value in TRUE
        else:
            raise RunnerError(f"{item}: expected true or false (or high, medium, low for effort)")
    # Their runner sends scenario.reasoning=True beside every parameter: the specific key decides.
    specific = {k: v for k, v in switches.items() if k != "scenario.reasoning"}
    if len(set(specific.values())) > 1:
        raise RunnerError(f"reasoning overrides disagree: {' '.join(given)}")
    switch = next(iter(specific.values()), switches.get("scenario.reasoning"))
    if switch is False and effort:
        raise RunnerError(f"reasoning overrides disagree: {' '.join(given)}")
    if not given:
        return state or "Off", tuple(rest)
    on = bool(switch or effort)
    asked = ("On" + (f" ({effort.title()})" if effort else "")) if on else "Off"
    if state is None:
        return asked, tuple(rest)
    chosen = ReasoningState.from_text(state)
    if chosen is None:
        valid = ", ".join(s.value for s in ReasoningState if s.value)
        raise RunnerError(f"--reasoning-state {state!r}: expected one of {valid}")
    if chosen.enabled is not on or (effort and chosen.effort not in (None, effort)):
        raise RunnerError(
            f"--reasoning-state {state!r} and {' '.join(given)} disagree (they ask {asked!r})"
        )
    return (asked if effort and not chosen.effort else state), tuple(rest)


def task_of(model: str, config_name: str) -> str:
    """The task of a model given on the command line, when ``--task`` does not say.

    image_gen for a known image family or a local pipeline folder (or ``--config-name
    image_generation``), else text_gen.
    """
    model = model.strip()
    if (
        config_name == contract.IMAGE_CONFIG_NAME
        or contract.image_family(model)
        or contract.is_pipeline_folder(model)  # of another family: loaded generically
    ):
        return Task.IMAGE_GEN.value
    return Task.TEXT_GEN.value


def run_cli(argv: Sequence[str]) -> int:
    """Entry point of ``batch_runner.py run``: 0 on success, 1 on a failed run."""
    args = _parser().parse_args(argv)
    setup_logging(args.verbose, args.quiet)
    check_common(args)
    check_serving(args)
    task = args.task or task_of(args.model, args.config_name)
    if task == Task.IMAGE_GEN:  # no class, no reasoning: as an image row of the CSV
        if args.reasoning_state:
            raise RunnerError("--reasoning-state: an image_gen run has no reasoning")
        state, overrides, model_class = "", tuple(args.overrides), ""
    else:
        state, overrides = reasoning_from_overrides(args.overrides, args.reasoning_state)
        model_class = args.model_class
    config = single_config(
        args.model,
        reasoning_state=state,
        model_class=model_class,
        task=task,
        formats=load_formats(args.reasoning_formats),
    )
    runner = make_runner(args.runner, args.image)
    software_id = runner.software_id(args.image)
    gpus = server_gpus(args.gpus) if args.backend == "vllm" else usable(args.gpus)
    options = PlanOptions(
        image=args.image,
        software_id=software_id,
        hardware=gpus[0].name if gpus else "cpu",
        num_prompts=args.num_prompts,
        prompts_file=prompts_file(args),
        extra_overrides=overrides,
        serving=serving(args, [g.uuid for g in gpus]),
    )
    (plan,) = plan_runs([config], options)
    if plan.skip_reason:
        raise RunnerError(plan.skip_reason)
    layout = OutputLayout(args.output_dir.resolve())
    clash = other_row(layout.run_dir(plan.name), plan)
    if clash:
        raise RunnerError(f"{plan.name}: {clash}")
    token = find_hf_token()
    check_plans([plan], options, token.value if token else None)
    warn_without_token([plan], token is not None)
    hf_cache = hf_cache_for(runner, args.hf_cache)
    reason = misfit(plan, host_slots(gpus), hf_home=hf_cache)  # as a sweep would skip it
    if reason:
        raise RunnerError(f"{plan.name}: {reason}")
    uuids = tuple(g.uuid for g in gpus[: plan.gpus_needed])
    log.info(
        "%s: %s runner, %s, run id %s",
        plan.name,
        runner.name,
        ", ".join(uuids) or "no GPU (CPU)",
        plan.run_id,
    )
    with output_lock(layout.root):  # never beside a sweep or another run of this folder
        if runner.remove_leftovers(layout.root):
            log.warning("cleaned up the benchmark(s) an earlier sweep or run left behind")
        try:
            for old, new in adopt_legacy_folders(layout.root, [plan.name]):
                log.warning("%s: renamed to %s, as the AI Energy Score scripts name it", old, new)
            settle_stale(layout.root, [plan.name])
        except OSError as exc:
            raise RunnerError(f"{layout.root}: cannot write here ({exc.strerror or exc})") from None
        record = execute(
            plan,
            runner=runner,
            options=ExecOptions(
                out_dir=layout.root,
                image=args.image,
                software_id=software_id,
                timeout_s=args.timeout,
                hf_cache_dir=hf_cache,
            ),
            gpu_uuids=uuids,
            token=token.value if token else None,
        )
        try:  # in full (cheap with its cache): a killed sweep may have left rows out
            master = rebuild_master(layout.root)
        except OSError as exc:  # the run's own result stands
            log.error("the master CSV was not updated: %s", exc)
            master = layout.master_csv
    if record.status == "ok":
        print(f"ok: {plan.name} -> {layout.run_dir(plan.name)} (log {record.log_path}); {master}")
        return 0
    print(f"failed: {plan.name}: {record.error_message} (log {layout.root / record.log_path})")
    return 1
