"""``batch_runner.py``: sweeps over the models CSV, single debug runs, image builds.

python batch_runner.py [sweep options]            a sweep (see --help)
python batch_runner.py run --model X [-n N] ...   one model, the seed's run_docker.sh use
python batch_runner.py build-image [--base-image X]
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from orchestrator import DEFAULT_IMAGE
from orchestrator.errors import RunnerError

log = logging.getLogger("orchestrator")
EXIT_FAILED_RUNS = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=Path("batch_results"),
        help="where results, logs and master_results.csv go (./batch_results)",
    )
    parser.add_argument(
        "--runner",
        choices=("auto", "docker", "local"),
        default="auto",
        help="docker, local subprocess, or auto (docker when it can run)",
    )
    parser.add_argument("--image", default=DEFAULT_IMAGE, help=f"benchmark image ({DEFAULT_IMAGE})")
    parser.add_argument(
        "-n",
        "--num-prompts",
        type=int,
        default=None,
        help="prompts per run (default: every prompt of the dataset)",
    )
    parser.add_argument(
        "--prompts-file",
        type=Path,
        default=None,
        help="a local .csv/.jsonl/.txt prompt file instead of the Hub dataset",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="stop a run after this long (default: no limit)",
    )
    parser.add_argument(
        "--gpus", default=None, help="GPUs to use: indices or UUIDs, comma-separated"
    )
    parser.add_argument(
        "--hf-cache",
        type=Path,
        default=None,
        help="Hugging Face cache mounted into containers (default: the Hub's)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("-q", "--quiet", action="store_true", help="warnings and the summary only")


def _run_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="batch_runner.py run",
        description="Run one model once (a debug run); writes the same per-run folder as a sweep.",
    )
    parser.add_argument("--model", required=True, help="Hub id, Hub URL or local folder")
    parser.add_argument("--reasoning-state", default="Off", help="On, Off, 'On (High)', ... (Off)")
    parser.add_argument("--class", dest="model_class", default="A", help="A, B or C (A)")
    parser.add_argument("--config-name", default="text_generation", help=argparse.SUPPRESS)
    _common(parser)
    parser.add_argument(
        "overrides",
        nargs="*",
        metavar="key=value",
        help="benchmark overrides, e.g. backend.no_weights=True",
    )
    return parser


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="batch_runner.py build-image",
        description="Build the benchmark image from container/Dockerfile; prints its tag.",
    )
    parser.add_argument("--tag", default=DEFAULT_IMAGE, help=f"image tag ({DEFAULT_IMAGE})")
    parser.add_argument(
        "--base-image",
        default=None,
        help="base image (default: the Dockerfile's CUDA PyTorch runtime image)",
    )
    parser.add_argument(
        "--extra-ca",
        type=Path,
        action="append",
        default=[],
        help="a CA certificate (PEM) to trust, e.g. a corporate TLS proxy's",
    )
    parser.add_argument(
        "--wheel",
        type=Path,
        action="append",
        default=[],
        help="a wheel installed before the requirements (e.g. a CPU torch build)",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="print only the tag")
    return parser


def setup_logging(verbose: bool, quiet: bool) -> None:
    """Log to stderr: debug with --verbose, warnings only with --quiet."""
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    logging.basicConfig(level=level, format="%(levelname)s %(message)s", stream=sys.stderr)
    # The level sits on the console handler too: a debug log file may lower the root's later.
    for handler in logging.getLogger().handlers:
        handler.setLevel(level)
    logging.getLogger("matplotlib").setLevel(logging.WARNING)  # font-search chatter


def _cmd_build(argv: Sequence[str]) -> int:
    from orchestrator.image import build_image

    args = _build_parser().parse_args(argv)
    echo = (lambda _line: None) if args.quiet else (lambda line: print(line, file=sys.stderr))
    tag = build_image(
        tag=args.tag,
        base_image=args.base_image,
        extra_ca=args.extra_ca,
        wheels=args.wheel,
        echo=echo,
    )
    print(tag)
    return 0


def _cmd_run(argv: Sequence[str]) -> int:
    from orchestrator.single import run_single

    args = _run_parser().parse_args(argv)
    setup_logging(args.verbose, args.quiet)
    return run_single(args)


def _cmd_report(argv: Sequence[str]) -> int:
    from orchestrator.reporting import report_cli  # matplotlib loads only when reporting

    return report_cli(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (0 only when every run succeeded)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = {"run": _cmd_run, "build-image": _cmd_build, "report": _cmd_report}
    try:
        if argv and argv[0] in commands:
            return commands[argv[0]](argv[1:])
        from orchestrator.sweep_cli import run_sweep_cli

        return run_sweep_cli(argv, _common)
    except RunnerError as exc:
        log.debug("error", exc_info=True)
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
