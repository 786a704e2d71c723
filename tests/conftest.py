from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

# A suite started in the background by a script (`pytest ... &`) inherits SIGINT ignored, and
# every sweep it starts would too: the Ctrl-C tests need it delivered, as from a terminal.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

ROOT = Path(__file__).resolve().parent.parent
CONTAINER = ROOT / "container"
TINY_MODEL = ROOT / "examples" / "tiny-model"
TINY_EOS_MODEL = ROOT / "examples" / "tiny-eos-model"  # stops at once unless min_new_tokens
TINY_PIPELINE = (
    ROOT / "examples" / "tiny-image-pipeline"
)  # a FLUX-architecture text-to-image pipeline


def _has_nvidia_gpu() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


def pytest_collection_modifyitems(config, items):
    if any("gpu" in item.keywords for item in items) and not _has_nvidia_gpu():
        skip = pytest.mark.skip(reason="needs an NVIDIA GPU with CUDA (none is visible here)")
        for item in items:
            if "gpu" in item.keywords:
                item.add_marker(skip)


TEST_IMAGE = os.environ.get("AI_ENERGY_SCORE_TEST_IMAGE", "ai_energy_score:cpu-test")
REQUIRE_DOCKER = os.environ.get("AI_ENERGY_SCORE_REQUIRE_DOCKER") == "1"


def _docker_problem() -> str | None:
    try:
        import docker
    except ImportError:
        return "the docker package is not installed"
    try:
        client = docker.from_env(timeout=5)
        client.ping()
    except Exception as exc:
        return f"no Docker engine answers ({exc.__class__.__name__})"
    try:
        client.images.get(TEST_IMAGE)
    except docker.errors.ImageNotFound:
        return f"test image {TEST_IMAGE} missing (tools/build_test_image.sh builds it)"
    finally:
        client.close()
    return None


@pytest.fixture(scope="session")
def docker_image() -> str:
    problem = _docker_problem()
    if problem:
        if REQUIRE_DOCKER:
            pytest.fail(f"docker tests are required here: {problem}")
        pytest.skip(problem)
    return TEST_IMAGE


@pytest.fixture
def no_leftover_containers(docker_image):
    import docker

    from orchestrator.execution.runners.docker import LABEL_MANAGED

    client = docker.from_env()
    yield client
    left = client.containers.list(all=True, filters={"label": LABEL_MANAGED})
    for container in left:
        container.remove(force=True)
    client.close()
    assert not left, f"containers left behind: {[c.name for c in left]}"
