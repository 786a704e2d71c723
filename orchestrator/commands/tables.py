"""The sweep's tables on the console: the plan (``--dry-run``) and the final summary."""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console, JustifyMethod
from rich.table import Table

from orchestrator.execution.scheduler import SweepResult, triage
from orchestrator.execution.slots import Slot, describe
from orchestrator.planning.plan import IMAGE_EXTRA_KEYS, IMAGE_SIDE, IMAGE_STEPS, RunPlan
from orchestrator.store.master import collect_rows
from orchestrator.store.paths import OutputLayout

WIDE = 120
"""Consoles at least this wide show every column; narrower ones leave out the minor ones."""


@dataclass(frozen=True)
class Col:
    """A column of a console table.

    ``text`` columns (names, reasons, errors) fold onto more lines rather than being cut; the
    others (numbers, short codes) never break. ``minor`` ones show only on wide consoles.
    """

    header: str
    text: bool = False
    minor: bool = False
    justify: JustifyMethod = "left"


def fit_table(
    console: Console, title: str, columns: Sequence[Col], rows: Iterable[Sequence[str]]
) -> Table:
    """A table whose every cell stays readable at ``console``'s width."""
    shown = [i for i, col in enumerate(columns) if console.width >= WIDE or not col.minor]
    table = Table(title=title)
    for i in shown:
        col = columns[i]
        table.add_column(
            col.header,
            justify=col.justify,
            no_wrap=not col.text,
            overflow="fold" if col.text else "ellipsis",
        )
    for row in rows:
        table.add_row(*(row[i] for i in shown))
    return table


PLAN_COLUMNS = (
    Col("run", text=True),
    Col("run id", minor=True),
    Col("class"),
    Col("GPUs"),
    Col("generates"),
    Col("status", text=True),
)
SUMMARY_COLUMNS = (
    Col("run", text=True),
    Col("status", text=True),
    Col("seconds"),
    Col("GPU Wh"),  # "energy Wh" where a run's figure is an estimate (no GPU counter)
    Col("tokens/J"),
    Col("error", text=True),
)


def _image_size(plan: RunPlan) -> str:
    """An image run's size and steps, as its overrides set them (else the config's)."""
    steps = plan.setting("scenario.num_inference_steps") or IMAGE_STEPS
    width = plan.setting("scenario.width") or IMAGE_SIDE
    return f"{width}x{plan.setting('scenario.height') or IMAGE_SIDE}, {steps} steps"


def image_lines(plans: Sequence[RunPlan]) -> list[str]:
    """A line per image run: its pipeline class, the components it adds, its protocol."""
    lines = []
    for plan in plans:
        if not plan.is_image:
            continue
        pipeline = plan.setting("backend.pipeline") or "the class its model_index.json names"
        extras = [
            f"{key}={value}"
            for key in IMAGE_EXTRA_KEYS
            if (value := plan.setting(f"backend.{key}")) is not None
        ]
        guidance = plan.setting("scenario.guidance_scale") or "the pipeline's default"
        lines.append(
            f"{plan.name}: {pipeline}{''.join(f' + {e}' for e in extras)}; one image a prompt, "
            f"{_image_size(plan)}, guidance {guidance}"
        )
    return lines


def _generates(plan: RunPlan) -> str:
    """What each prompt makes: its token budget, or an image's size and steps."""
    c = plan.config
    if plan.is_image:
        return _image_size(plan)
    if c.max_new_tokens is None:
        return "-"
    if c.min_new_tokens == c.max_new_tokens:
        return f"{c.max_new_tokens} tokens"
    return f"{c.min_new_tokens}-{c.max_new_tokens} tokens"


def print_plan(
    console: Console,
    plans: Sequence[RunPlan],
    args: argparse.Namespace,
    slots: Sequence[Slot],
    runner_name: str,
    *,
    hf_home: Path | None = None,
    fits: Callable[[RunPlan], str] | None = None,
    where: str = "",
) -> list[RunPlan]:
    """The ``--dry-run`` table: what would run where, and what is skipped (why) or complete.

    Decided as the sweep decides (``triage``, with the executor's ``fits``); returns the runs
    that would run. ``where`` names the slots (by default, each slot).
    """
    todo, done, skipped = triage(
        plans, args.output_dir, force=args.force, slots=slots, hf_home=hf_home, fits=fits
    )
    reasons = {p.run_id: r for p, r in skipped}
    on_gpus = any(s.gpu for s in slots)
    rows = []
    for plan in sorted(plans, key=lambda p: p.config.priority):
        if plan in done:
            status = "complete (resume skips it)"
        elif plan.run_id in reasons:
            status = f"skip: {reasons[plan.run_id]}"
        else:
            status = "to run"
        rows.append(
            (
                plan.name,
                plan.run_id,
                plan.config.model_class or "-",
                str(plan.gpus_needed if on_gpus else 0),
                _generates(plan),
                status,
            )
        )
    title = f"plan: {len(todo)} to run, {len(done)} complete, {len(skipped)} skipped"
    console.print(fit_table(console, title, PLAN_COLUMNS, rows))
    for line in image_lines(plans):
        console.print(line, highlight=False, markup=False)
    where = where or describe(slots)
    console.print(f"runner {runner_name}, image {args.image}, slots: {where}")
    return todo


def print_summary(console: Console, result: SweepResult, out_dir: Path) -> None:
    """The final table and totals."""
    rows = {r["run_id"]: r for r in collect_rows(out_dir)}
    # On a narrow console the estimate's note goes under its number, so the column stays narrow.
    note = " (estimate)" if console.width >= WIDE else "\n(estimate)"
    cells, energy, best, estimated = [], 0.0, (0.0, ""), False
    for record in result.records:
        row = rows.get(record.run_id, {})
        wh, tpj = row.get("gpu_energy_wh"), row.get("tokens_per_joule")
        energy += wh or 0.0
        if tpj and tpj > best[0]:
            best = (tpj, record.name)
        status = "resumed" if record.name in result.resumed else record.status
        estimate = note if row.get("energy_source") == "estimate" else ""
        estimated = estimated or bool(estimate)
        cells.append(
            (
                record.name,
                status,
                f"{record.duration_s:.1f}",
                f"{wh:.4f}{estimate}" if wh is not None else "-",
                f"{tpj:.3f}" if tpj else "-",
                record.error_message[:160],
            )
        )
    columns = [
        Col("energy Wh") if estimated and col.header == "GPU Wh" else col for col in SUMMARY_COLUMNS
    ]
    console.print(fit_table(console, "sweep summary", columns, cells))
    counts = Counter(r.status for r in result.records)
    interrupted = f", {counts['interrupted']} interrupted" if counts["interrupted"] else ""
    total = (
        f"total energy {energy:.4f} Wh (estimates included)"
        if estimated
        else f"total GPU energy {energy:.4f} Wh"
    )
    console.print(
        f"{counts['ok']} ok ({len(result.resumed)} resumed), {counts['failed']} failed"
        f"{interrupted}, {counts['skipped']} skipped; {total}"
        + (f"; best {best[0]:.3f} tokens/J ({best[1]})" if best[1] else "")
        + f"\nresults: {OutputLayout(out_dir).master_csv}"
    )
