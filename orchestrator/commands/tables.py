"""The sweep's tables on the console: the plan (``--dry-run``) and the final summary."""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.table import Table

from orchestrator.execution.scheduler import SweepResult, triage
from orchestrator.execution.slots import Slot
from orchestrator.planning.plan import RunPlan
from orchestrator.store.master import collect_rows
from orchestrator.store.paths import OutputLayout


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
    counts = Counter(r.status for r in result.records)
    interrupted = f", {counts['interrupted']} interrupted" if counts["interrupted"] else ""
    console.print(
        f"{counts['ok']} ok ({len(result.resumed)} resumed), {counts['failed']} failed"
        f"{interrupted}, {counts['skipped']} skipped; total GPU energy {energy:.4f} Wh"
        + (f"; best {best[0]:.3f} tokens/J ({best[1]})" if best[1] else "")
        + f"\nresults: {OutputLayout(out_dir).master_csv}"
    )
