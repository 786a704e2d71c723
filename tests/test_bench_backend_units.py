"""The PyTorch backend's pure helpers (what a failed load is called, where a model's modules sit),
and what it does on devices this machine lacks, with stand-in GPUs."""

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
    from conftest import TINY_PIPELINE

    from energy_bench import contract
    from energy_bench.backends.diffusion import DiffusersBackend
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
    image = load_config(contract.IMAGE_CONFIG_NAME, [f"backend.model={TINY_PIPELINE}"])
    painter = make_backend(image.backend, image.scenario)  # nothing is loaded yet
    assert type(painter) is DiffusersBackend
    assert (painter.cfg, painter.scenario) == (image.backend, image.scenario)


@pytest.mark.parametrize("no_weights", [False, True])
def test_a_model_on_several_devices_is_placed_across_them_within_their_memory(
    monkeypatch, no_weights
):
    """Two devices: the model is spread over them (the devices stand in for two GPUs here)."""
    import torch
    import transformers
    from conftest import TINY_MODEL

    from energy_bench.backends import placement
    from energy_bench.backends.pytorch import PyTorchBackend
    from energy_bench.config import load_config

    cfg = load_config(
        "text_generation",
        [f"backend.model={TINY_MODEL}", "backend.torch_dtype=float32",
         f"backend.no_weights={no_weights}"],
    )  # fmt: skip
    backend = PyTorchBackend(cfg.backend, cfg.scenario)
    backend.devices = [torch.device("cpu"), torch.device("cpu")]
    asked = {}
    monkeypatch.setattr(
        placement, "max_memory", lambda devices: asked.setdefault("max_memory", devices) and {}
    )

    # Where the modules went, as the model spread over two GPUs carries it.
    device_map = {"model.embed_tokens": 0, "model.layers.0": 0, "model.layers.1": 1, "lm_head": 1}

    def spread(model):
        model.hf_device_map = dict(device_map)
        return model

    def across(config, devices, dtype, remote):
        asked["across"] = (config.model_type, devices, dtype, remote)
        return spread(transformers.AutoModelForCausalLM.from_config(config, dtype=dtype))

    monkeypatch.setattr(placement, "random_model_across", across)
    real = transformers.AutoModelForCausalLM.from_pretrained

    def pretrained(model_id, **kwargs):
        asked["pretrained"] = kwargs
        return spread(real(model_id, dtype=kwargs["dtype"]))

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", pretrained)
    backend.load()
    if no_weights:
        assert asked["across"] == ("llama", backend.devices, torch.float32, False)
        assert "pretrained" not in asked
    else:
        assert asked["pretrained"] == {
            "dtype": torch.float32, "device_map": "auto", "max_memory": {},
            "trust_remote_code": False,
        }  # fmt: skip
        assert asked["max_memory"] == backend.devices
    assert backend.parameters > 0
    assert backend.provenance()["placement"] == {"cuda:0": 2, "cuda:1": 2}


def test_on_a_gpu_the_compiled_path_is_left_to_transformers_own_compilation(monkeypatch):
    """Asked of transformers on a CPU only (where it would not compile by itself)."""
    import torch
    import transformers
    from conftest import TINY_MODEL

    from energy_bench.backends.pytorch import PyTorchBackend
    from energy_bench.config import load_config

    cfg = load_config(
        "text_generation",
        [f"backend.model={TINY_MODEL}", "backend.torch_dtype=float32",
         "backend.generation=compiled"],
    )  # fmt: skip
    backend = PyTorchBackend(cfg.backend, cfg.scenario)
    backend.devices = [torch.device("cuda", 0)]  # a stand-in: nothing is put on it here
    monkeypatch.setattr(backend, "synchronize", lambda: None)
    real = transformers.AutoModelForCausalLM.from_pretrained
    monkeypatch.setattr(
        transformers.AutoModelForCausalLM, "from_pretrained",
        lambda model_id, **kwargs: real(model_id, dtype=kwargs["dtype"]),
    )  # fmt: skip
    backend.load()
    assert backend.generation_path == "compiled" and backend._compile_config is None


def gpu_stand_ins(monkeypatch, count: int) -> list:
    """``count`` CUDA devices for the run, each with a UUID: stand-ins, nothing is put on them."""
    import torch

    from energy_bench.backends import placement

    gpus = [torch.device("cuda", i) for i in range(count)]
    monkeypatch.setattr(placement, "devices_for", lambda cfg: gpus)
    monkeypatch.setattr(placement, "uuid_of", lambda device: f"GPU-uuid-{device.index}")
    return gpus


def test_on_gpus_the_backend_names_each_compiles_by_default_and_waits_for_every_one(monkeypatch):
    import torch

    from energy_bench.backends.pytorch import PyTorchBackend
    from energy_bench.config import load_config

    cfg = load_config("text_generation", ["backend.model=org/m"])
    assert cfg.backend.generation == "auto"
    cpu = PyTorchBackend(cfg.backend, cfg.scenario)
    waited: list = []
    monkeypatch.setattr(torch.cuda, "synchronize", waited.append)
    cpu.synchronize()
    assert (cpu.device_uuids, cpu.generation_path, waited) == ([], "eager", [])
    gpus = gpu_stand_ins(monkeypatch, 2)
    backend = PyTorchBackend(cfg.backend, cfg.scenario)
    assert backend.device_uuids == ["GPU-uuid-0", "GPU-uuid-1"]  # what the meter measures
    assert backend.generation_path == "compiled"
    backend.synchronize()
    assert waited == gpus


def test_the_static_cache_is_passed_by_the_name_the_model_s_forward_takes():
    from energy_bench.backends.pytorch import PyTorchBackend
    from energy_bench.config import load_config

    class Newer:
        def forward(self, input_ids, cache=None): ...

    class Older:
        def forward(self, input_ids, past_key_values=None): ...

    cfg = load_config("text_generation", ["backend.model=org/m"])
    backend = PyTorchBackend(cfg.backend, cfg.scenario)
    backend.model = Newer()
    assert backend._cache_argument() == "cache"
    backend.model = Older()
    assert backend._cache_argument() == "past_key_values"


def test_graphs_built_counts_those_compiled_and_those_left_without_cuda_graphs(monkeypatch):
    from energy_bench.backends import compilation
    from energy_bench.backends.pytorch import PyTorchBackend
    from energy_bench.config import load_config

    cfg = load_config("text_generation", ["backend.model=org/m"])
    backend = PyTorchBackend(cfg.backend, cfg.scenario)
    monkeypatch.setattr(compilation, "compile_count", lambda: 5)
    monkeypatch.setattr(compilation, "cuda_graph_skips", lambda: 2)
    assert backend.graphs_built() == 7
