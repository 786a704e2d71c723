"""Logging of the command lines: the console's level, and a sweep's debug log file."""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from pathlib import Path

from orchestrator.store.paths import OutputLayout


def setup_logging(verbose: bool, quiet: bool) -> None:
    """Log to stderr: debug with --verbose, warnings only with --quiet."""
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    logging.basicConfig(level=level, format="%(levelname)s %(message)s", stream=sys.stderr)
    # The level sits on the console handler too: a debug log file may lower the root's later.
    for handler in logging.getLogger().handlers:
        handler.setLevel(level)
    logging.getLogger("matplotlib").setLevel(logging.WARNING)  # font-search chatter
    logging.raiseExceptions = False  # a log file on a full disk never prints a traceback


def add_debug_log(out_dir: Path) -> Path | None:
    """Everything at debug level into the output folder's sweep log; returns its path.

    None, with a warning, when the log cannot be created (a full disk): the sweep goes on.
    """
    path = OutputLayout(out_dir).sweep_log(datetime.now(UTC))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(path)
    except OSError as exc:
        logging.getLogger(__name__).warning("no sweep log: %s", exc)
        return None
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    return path
