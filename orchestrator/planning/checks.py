"""Checks of a whole plan before anything starts: a problem here stops the sweep with exit 2.

A mistyped override key, a value of the wrong type, an absurd token budget, a local model folder
that is not there, or a token typed into an override would otherwise fail (or leak) run by run.
Overrides are checked by the benchmark itself (``contract.CHECK_FLAG``: its own config loader,
run once for every distinct set, nothing loaded), so the host never duplicates its rules.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from energy_bench import contract
from orchestrator.errors import RunnerError
from orchestrator.planning.identity import split_override
from orchestrator.planning.plan import PlanOptions, RunPlan, local_extras

# The shape of a Hugging Face access token, whoever's it is.
TOKEN_SHAPE = re.compile(r"\bhf_[A-Za-z0-9]{20,}")
MODEL_KEY = "backend.model"


def _where(plan: RunPlan) -> str:
    c = plan.config
    return f"{c.source}:{c.line} ({plan.name})" if c.source and c.line else plan.name


def check_user_overrides(options: PlanOptions, token: str | None) -> None:
    """The overrides typed on the command line: no model switch, no secret."""
    for item in options.extra_overrides:
        key = split_override(item)[0]
        if key == MODEL_KEY:
            raise RunnerError(
                f"override {MODEL_KEY}=...: the model comes from the CSV row (or `run --model`); "
                "an override would file its results under another row's name"
            )
        if (token and token in item) or TOKEN_SHAPE.search(item):
            raise RunnerError(
                f"override {key}=...: holds a Hugging Face token; give tokens through HF_TOKEN "
                "or .env, never on the command line"
            )


def check_overrides_reach(plans: Sequence[RunPlan], options: PlanOptions) -> None:
    """Each override typed on the command line reaches a planned run (none is dropped quietly)."""
    active = [p for p in plans if not p.skip_reason]
    for item in options.extra_overrides if active else ():
        if not any(item in p.overrides for p in active):
            key = split_override(item)[0]
            task = next(
                t for t, n in contract.CONFIG_NAMES.items() if contract.override_applies(n, key)
            )
            raise RunnerError(
                f"override {item}: only {task} runs take {key}, and this sweep plans none"
            )


def check_local_models(plans: Sequence[RunPlan]) -> None:
    """Every local model folder named by a planned run exists, and its components' folders."""
    for plan in plans:
        if plan.skip_reason:
            continue
        model = plan.config.model_id
        if Path(model).is_absolute() and not Path(model).is_dir():
            raise RunnerError(f"{_where(plan)}: model folder {model} does not exist")
        for folder in local_extras(plan.config):
            if not folder.is_dir():
                raise RunnerError(f"{_where(plan)}: component folder {folder} does not exist")


def check_benchmark_overrides(plans: Sequence[RunPlan], python: str = sys.executable) -> None:
    """The benchmark takes every planned run's overrides (one process checks them all)."""
    sets = list(dict.fromkeys((p.config_name, p.overrides) for p in plans if not p.skip_reason))
    if not sets:
        return
    lines = "".join(
        json.dumps({"config_name": name, "overrides": list(items)}) + "\n" for name, items in sets
    )
    try:
        done = subprocess.run(
            [python, "-m", "energy_bench", contract.CHECK_FLAG],
            input=lines,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RunnerError(f"cannot check the overrides with {python}: {exc}") from None
    answers = []
    for line in done.stdout.splitlines():
        try:
            answers.append(json.loads(line)["problem"])
        except (ValueError, KeyError, TypeError):
            continue
    if len(answers) != len(sets):
        detail = (done.stderr.strip().splitlines() or ["no answer"])[-1]
        raise RunnerError(f"cannot check the overrides with {python}: {detail}")
    for (name, overrides), problem in zip(sets, answers, strict=True):
        if problem:
            plan = next(p for p in plans if (p.config_name, p.overrides) == (name, overrides))
            raise RunnerError(f"{_where(plan)}: the benchmark refuses its overrides: {problem}")


def check_plans(plans: Sequence[RunPlan], options: PlanOptions, token: str | None) -> None:
    """Everything about the plan that can be known wrong before a run starts."""
    check_user_overrides(options, token)
    check_overrides_reach(plans, options)
    check_local_models(plans)
    check_benchmark_overrides(plans)
