"""``batch_runner.py build-image``: build the benchmark image and print its tag."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from orchestrator import DEFAULT_IMAGE


def _parser() -> argparse.ArgumentParser:
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


def build_image_cli(argv: Sequence[str]) -> int:
    """Entry point of ``batch_runner.py build-image``."""
    from orchestrator.execution.runners.image import build_image

    args = _parser().parse_args(argv)
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
