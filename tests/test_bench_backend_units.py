"""The PyTorch backend's pure helpers: what a failed load is called, where a model's modules sit."""

from __future__ import annotations

import pytest

from energy_bench.backends.pytorch import _hub_error, _placement
from energy_bench.errors import GatedModel, ModelLoadError, ModelNotFound


class EntryNotFoundError(Exception):
    """Named as huggingface_hub names a missing file of a repository."""


def raised_from(outer: Exception, inner: Exception, *, implicit: bool = False) -> Exception:
    """``outer`` raised while handling ``inner`` (``implicit``) or ``from`` it."""
    try:
        try:
            raise inner
        except Exception as exc:
            if implicit:
                raise outer  # noqa: B904 - the context is what is tested
            raise outer from exc
    except Exception as done:
        return done
    raise AssertionError


@pytest.mark.parametrize(
    ("error", "kind", "message"),
    [
        (OSError("disk on fire\nsecond line"), ModelLoadError,
         "cannot load org/m: OSError: disk on fire"),
        (raised_from(OSError("wrapped"), EntryNotFoundError("config.json")), ModelNotFound,
         "model org/m not found (HTTP 404)"),
        (raised_from(OSError("wrapped"), ValueError("HTTP 404 for url"), implicit=True),
         ModelNotFound, "model org/m not found (HTTP 404)"),
        (raised_from(OSError("wrapped"), ValueError("Client error 403 Forbidden"), implicit=True),
         GatedModel, "gated model org/m (HTTP 401/403): accept its licence and set HF_TOKEN"),
        (ValueError("status 401 Unauthorized"), GatedModel,
         "gated model org/m (HTTP 401/403): accept its licence and set HF_TOKEN"),
        (ValueError("no status here"), ModelLoadError,
         "cannot load org/m: ValueError: no status here"),
    ],
)  # fmt: skip
def test_a_failed_load_is_named_by_its_whole_chain_of_causes(error, kind, message):
    found = _hub_error(error, "org/m")
    assert type(found) is kind and str(found) == message


def test_a_chain_that_loops_is_read_once():
    first, second = OSError("a"), OSError("b 404")
    first.__context__, second.__context__ = second, first
    assert type(_hub_error(first, "org/m")) is ModelNotFound


def test_a_model_spread_over_devices_counts_its_modules_on_each():
    device_map = {"embed": 0, "layers.0": 0, "layers.1": 1, "norm": "cpu", "lm_head": "disk"}
    assert _placement(device_map) == {"cuda:0": 2, "cuda:1": 1, "cpu": 1, "disk": 1}
    assert _placement({"": "cuda:1"}) == {"cuda:1": 1}
    assert _placement(None) is None and _placement("auto") is None


def test_the_backend_type_picks_the_backend():
    from energy_bench.backends.pytorch import PyTorchBackend
    from energy_bench.backends.serving import ServingBackend
    from energy_bench.benchmark import make_backend
    from energy_bench.config import load_config

    served = load_config(
        "text_generation",
        ["backend.model=org/m", "backend.type=vllm", "backend.endpoint=http://127.0.0.1:9/v1"],
    )
    backend = make_backend(served.backend, served.scenario)
    assert type(backend) is ServingBackend
    assert (backend.cfg, backend.scenario) == (served.backend, served.scenario)
    local = load_config("text_generation", ["backend.model=org/m", "backend.device=cpu"])
    assert type(make_backend(local.backend, local.scenario)) is PyTorchBackend
