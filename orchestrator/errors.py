"""Typed errors of the host package.

Each carries the data a user needs to fix the cause; ``str(error)`` is the one readable line that
the command-line tools print.
"""

from __future__ import annotations

from pathlib import Path


class RunnerError(Exception):
    """Base of every error the orchestrator reports to a user."""


class ConfigError(RunnerError):
    """A models CSV (or a value in it) that cannot be used.

    ``line`` is the 1-based physical line of the file where the offending record starts, or
    ``None`` when the problem is the file as a whole (missing, empty, not text).
    """

    def __init__(
        self,
        path: str | Path,
        message: str,
        *,
        line: int | None = None,
        column: str | None = None,
        value: str | None = None,
    ) -> None:
        self.path = str(path)
        self.line = line
        self.column = column
        self.value = value
        self.reason = message
        where = self.path if line is None else f"{self.path}:{line}"
        what = message
        if column is not None:
            what = f"column '{column}': {what}"
        if value is not None:
            what = f"{what} (got {value!r})"
        super().__init__(f"{where}: {what}")


# Exit statuses of the command lines.
EXIT_FAILED_RUNS = 1  # the sweep ran, and at least one run failed
EXIT_BAD_INPUT = 2  # nothing ran: a bad CSV, option or folder
EXIT_INTERRUPTED = 130  # Ctrl-C
