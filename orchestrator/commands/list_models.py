"""``model_config_parser.py``: list the models of a CSV as a table or as JSON."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

from rich.console import Console
from rich.table import Table

from orchestrator.commands.common import add_formats_option
from orchestrator.commands.tables import Col, fit_table
from orchestrator.errors import EXIT_BAD_INPUT, ConfigError
from orchestrator.models.config import ModelConfig
from orchestrator.models.csv_reader import read_models_csv
from orchestrator.models.filters import filter_configs
from orchestrator.models.reasoning import load_formats


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="model_config_parser.py",
        description="List the models of an AI Energy Score CSV with their resolved reasoning.",
    )
    parser.add_argument("csv", nargs="?", default="models.csv", help="models CSV (models.csv)")
    parser.add_argument("--model-name", help="case-insensitive substring of the model id")
    parser.add_argument("--class", dest="model_class", help="A, B or C")
    parser.add_argument("--reasoning-state", help="substring: On, Off, High, 'Off (N/A)', ...")
    parser.add_argument("--task", help="text_gen or image_gen (substring)")
    parser.add_argument("--json", action="store_true", help="print a JSON list instead")
    add_formats_option(parser)
    return parser


def _reasoning_text(config: ModelConfig) -> str:
    d = config.reasoning
    if d.enabled is None:
        return "n/a"
    parts = ["on" if d.enabled else "off", d.control]
    if d.mismatch:  # the model has one mode only
        parts[0] = f"{parts[0]} (the model's only mode; asked {'off' if d.enabled else 'on'})"
    if d.effort:
        parts.append(f"effort={d.effort}")
    parts += [f"{k}={v}" for k, v in d.chat_template_kwargs.items() if k != "reasoning_effort"]
    for label, text in (("system", d.system_prompt), ("prefix", d.prompt_prefix)):
        if text:
            parts.append(f"{label}={text}")
    if d.assistant_prefix:
        parts.append("assistant=" + d.assistant_prefix.replace("\n", "\\n"))
    return " ".join(parts)


def _budget_text(config: ModelConfig) -> str:
    if config.max_new_tokens is None:
        return "-"
    if config.max_new_tokens == config.min_new_tokens:
        return f"exactly {config.max_new_tokens}"
    return f"{config.min_new_tokens}-{config.max_new_tokens}"


COLUMNS = (
    Col("line", minor=True, justify="right"),
    Col("model", text=True),
    Col("prio", minor=True),
    Col("class"),
    Col("task"),
    Col("state", text=True),
    Col("reasoning", text=True),
    Col("new tokens"),
)


def _table(console: Console, configs: Sequence[ModelConfig], title: str) -> Table:
    rows = [
        (
            str(c.line),
            c.model_id,
            str(c.priority),
            c.model_class or "-",
            c.task,
            c.reasoning_state or "-",
            _reasoning_text(c),
            _budget_text(c),
        )
        for c in configs
    ]
    return fit_table(console, title, COLUMNS, rows)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit status."""
    args = _parser().parse_args(argv)
    try:
        configs = read_models_csv(args.csv, formats=load_formats(args.reasoning_formats))
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    selected = filter_configs(
        configs,
        model_name=args.model_name,
        model_class=args.model_class,
        reasoning_state=args.reasoning_state,
        task=args.task,
    )
    try:
        if args.json:
            print(json.dumps([c.to_dict() for c in selected], indent=2, default=str))
        else:
            console = Console()
            console.print(_table(console, selected, str(args.csv)))
            console.print(f"{len(selected)} of {len(configs)} rows")
    except BrokenPipeError:
        # Piped into `head` and the like: the reader has gone, which is not an error.
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - keeps interpreter exit quiet
    return 0
