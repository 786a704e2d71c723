"""Choose a runner: ``docker``, ``local``, or ``auto`` (docker when it can run, else local)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

from orchestrator.errors import RunnerError
from orchestrator.execution.runners.base import Runner
from orchestrator.execution.runners.local import LocalRunner, missing_libraries

log = logging.getLogger(__name__)

RunnerName = Literal["auto", "docker", "local"]


def _local(why: str) -> LocalRunner:
    """The local runner, when this interpreter can run the benchmark (else a one-line error)."""
    missing = missing_libraries()
    if missing:
        raise RunnerError(
            f"{why}, and this Python lacks the benchmark's {', '.join(missing)}: install "
            "requirements-cpu.txt for a machine without GPU (README, 'Set up and run'), or "
            "start Docker and build the image (python batch_runner.py build-image)"
        )
    return LocalRunner()


def make_runner(name: RunnerName, image: str) -> Runner:
    """The runner for ``name``. ``auto`` takes docker when an engine answers and has the image."""
    if name == "local":
        return _local("--runner local runs the benchmark in this Python")
    # The Docker SDK loads only where Docker may be used: a local-only host needs none of it.
    from orchestrator.execution.runners.docker import DockerRunner, engine_answers

    if name == "docker":
        if not engine_answers():
            raise RunnerError("--runner docker: no Docker engine answers (is dockerd running?)")
        return DockerRunner()
    if not engine_answers():
        log.info("runner auto: no Docker engine answers; running locally")
        return _local("runner auto: no Docker engine answers, so runs would be local")
    from orchestrator.execution.runners.image import image_exists

    if not image_exists(image):
        runner = _local(f"runner auto: the image {image} is not built, so runs would be local")
        log.warning(
            "runner auto: image %s not built (python batch_runner.py build-image); running locally",
            image,
        )
        return runner
    return DockerRunner()


def hf_cache_for(runner: Runner, wanted: Path | None) -> Path | None:
    """The cache to mount: the one asked for, else the Hub's own for containers."""
    if wanted is not None or runner.name != "docker":
        return wanted
    from huggingface_hub import constants

    return Path(constants.HF_HOME)
