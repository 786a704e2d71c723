from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONTAINER = ROOT / "container"
TINY_MODEL = ROOT / "examples" / "tiny-model"
for path in (ROOT, CONTAINER):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))


def _has_nvidia_gpu() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


def pytest_collection_modifyitems(config, items):
    import pytest

    if any("gpu" in item.keywords for item in items) and not _has_nvidia_gpu():
        skip = pytest.mark.skip(reason="needs an NVIDIA GPU (run through the device tool)")
        for item in items:
            if "gpu" in item.keywords:
                item.add_marker(skip)
