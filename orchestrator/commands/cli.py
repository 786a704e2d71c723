"""``batch_runner.py``: sweeps over the models CSV, single debug runs, reports, image builds.

python batch_runner.py [sweep options]            a sweep (see --help)
python batch_runner.py run --model X [-n N] ...   one model (what run_docker.sh calls)
python batch_runner.py report [--output-dir DIR]  ratings, leaderboard, labels, archive
python batch_runner.py build-image [--base-image X]
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Sequence

from orchestrator.errors import EXIT_BAD_INPUT, EXIT_INTERRUPTED, RunnerError

log = logging.getLogger("orchestrator")


def _command(name: str) -> Callable[[Sequence[str]], int] | None:
    """The entry point of subcommand ``name`` (imported on demand: each pulls its own libraries)."""
    if name == "run":
        from orchestrator.commands.run import run_cli

        return run_cli
    if name == "report":
        from orchestrator.commands.report import report_cli

        return report_cli
    if name == "build-image":
        from orchestrator.commands.build_image import build_image_cli

        return build_image_cli
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (0 only when every run succeeded)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        command = _command(argv[0]) if argv else None
        if command is not None:
            return command(argv[1:])
        from orchestrator.commands.sweep import sweep_cli

        return sweep_cli(argv)
    except RunnerError as exc:
        log.debug("error", exc_info=True)
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
