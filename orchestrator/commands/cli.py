"""``batch_runner.py``: sweeps over the models CSV, single debug runs, reports, image builds.

python batch_runner.py [sweep options]            a sweep (see --help)
python batch_runner.py run --model X [-n N] ...   one model (what run_docker.sh calls)
python batch_runner.py report [--output-dir DIR]  ratings, leaderboard, labels, archive
python batch_runner.py build-image [--base-image X]
"""

from __future__ import annotations

import difflib
import logging
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from types import FrameType

from orchestrator.commands import COMMANDS
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


def _not_a_command(word: str) -> None:
    """A bare first word that is no subcommand (``reprot``) is a mistake, never a sweep."""
    if word.startswith("-") or "=" in word or word in COMMANDS:
        return
    close = difflib.get_close_matches(word, list(COMMANDS), n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}?" if close else f"commands: {', '.join(COMMANDS)}"
    raise RunnerError(f"unknown command {word!r}; {hint} (benchmark overrides are key=value)")


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP: stop like Ctrl-C (runs stopped, records saying so), then exit."""


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise Terminated(signal.Signals(signum).name)


@contextmanager
def _stops_like_ctrl_c() -> Iterator[None]:
    """While the command runs, SIGTERM and SIGHUP take the Ctrl-C path (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    # A signal ignored when we start (SIGHUP under nohup) stays ignored.
    wanted = [s for s in (signal.SIGTERM, signal.SIGHUP) if signal.getsignal(s) != signal.SIG_IGN]
    before = {sig: signal.signal(sig, _terminate) for sig in wanted}
    try:
        yield
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (0 only when every run succeeded)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    with _stops_like_ctrl_c():
        return _main(argv)


def _main(argv: list[str]) -> int:
    try:
        if argv:
            _not_a_command(argv[0])
        command = _command(argv[0]) if argv else None
        if command is not None:
            return command(argv[1:])
        from orchestrator.commands.sweep import sweep_cli

        return sweep_cli(argv)
    except RunnerError as exc:
        log.debug("error", exc_info=True)
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt as exc:
        print(
            f"interrupted ({exc})" if isinstance(exc, Terminated) else "interrupted",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
