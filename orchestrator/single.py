"""``batch_runner.py run``: one model, one run, the same per-run folder as a sweep."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from orchestrator.errors import RunnerError
from orchestrator.execute import ExecOptions, execute
from orchestrator.gpus import inventory, select
from orchestrator.models_csv import single_config
from orchestrator.plan import PlanOptions, RunPlan, plan_runs
from orchestrator.results import rebuild_master
from orchestrator.runner import Runner
from orchestrator.runners import make_runner
from orchestrator.secrets import find_hf_token

log = logging.getLogger(__name__)


def hf_cache_for(runner: Runner, wanted: Path | None) -> Path | None:
    """The cache to mount: the one asked for, else the Hub's own for containers."""
    if wanted is not None or runner.name != "docker":
        return wanted
    from huggingface_hub import constants

    return Path(constants.HF_HOME)


def warn_without_token(plans: list[RunPlan], token_found: bool) -> None:
    """Gated models fail with 401/403 without a token: say so before anything runs."""
    hub = [p.config.model_id for p in plans if not Path(p.config.model_id).is_absolute()]
    if hub and not token_found:
        log.warning(
            "no Hugging Face token (HF_TOKEN, .env or the Hub's token file): gated models "
            "among %s will fail with 401/403",
            ", ".join(sorted(set(hub))[:5]),
        )


def run_single(args: argparse.Namespace) -> int:
    """Run the model of ``args``; returns 0 on success, 1 on a failed run."""
    config = single_config(
        args.model, reasoning_state=args.reasoning_state, model_class=args.model_class
    )
    options = PlanOptions(
        image=args.image,
        num_prompts=args.num_prompts,
        prompts_file=args.prompts_file.resolve() if args.prompts_file else None,
        extra_overrides=tuple(args.overrides),
    )
    (plan,) = plan_runs([config], options)
    if plan.skip_reason:
        raise RunnerError(plan.skip_reason)
    token = find_hf_token()
    warn_without_token([plan], token is not None)
    runner = make_runner(args.runner, args.image)
    gpus = select(inventory(), args.gpus)
    if gpus and len(gpus) < plan.gpus_needed:
        raise RunnerError(f"{plan.name} needs {plan.gpus_needed} free GPUs; {len(gpus)} are free")
    uuids = tuple(g.uuid for g in gpus[: plan.gpus_needed])
    out_dir = args.output_dir.resolve()
    log.info(
        "%s: %s runner, %s, run id %s",
        plan.name,
        runner.name,
        ", ".join(uuids) or "no GPU (CPU)",
        plan.run_id,
    )
    record = execute(
        plan,
        runner=runner,
        options=ExecOptions(
            out_dir=out_dir,
            image=args.image,
            timeout_s=args.timeout,
            hf_cache_dir=hf_cache_for(runner, args.hf_cache),
        ),
        gpu_uuids=uuids,
        token=token.value if token else None,
    )
    master = rebuild_master(out_dir)
    if record.status == "ok":
        print(
            f"ok: {plan.name} -> {out_dir / 'individual_runs' / plan.name} (log {record.log_path});"
            f" {master}"
        )
        return 0
    print(f"failed: {plan.name}: {record.error_message} (log {out_dir / record.log_path})")
    return 1
