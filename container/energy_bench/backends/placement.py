"""Placing a model across exactly the GPUs a run was given.

A model with real weights is loaded by transformers with ``device_map="auto"`` and memory limits
for those GPUs only. A model with random weights (``backend.no_weights``) bigger than one GPU is
built here: parameters start on the meta device, a balanced device map over the run's GPUs is
computed, and each parameter is made directly on its GPU with random values, so a 70B model
never passes through host memory.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

log = logging.getLogger(__name__)

HEADROOM = 0.9  # of each GPU's free memory for weights: the rest is for activations and cache


def devices_for(cfg: Any) -> list[Any]:
    """The torch devices a run computes on: ``backend.num_gpus`` GPUs, from ``device_ids``.

    The CPU when asked for, or when no CUDA device is visible.
    """
    import torch

    from energy_bench.errors import BenchConfigError

    want = cfg.device
    has_cuda = torch.cuda.is_available()
    if want == "cuda" and not has_cuda:
        raise BenchConfigError("backend.device=cuda but no CUDA device is visible")
    if want == "cpu" or not has_cuda:
        return [torch.device("cpu")]
    count = torch.cuda.device_count()
    wanted, ids = cfg.num_gpus, cfg.device_ids
    if ids is None:
        if wanted > count:
            raise BenchConfigError(f"backend.num_gpus={wanted} but {count} GPU(s) are visible")
        return [torch.device("cuda", i) for i in range(wanted)]
    visible = [i for i in ids if i < count]
    if len(visible) < wanted:
        raise BenchConfigError(
            f"backend.device_ids={','.join(map(str, ids))} names {len(visible)} of the "
            f"{count} visible GPU(s), fewer than backend.num_gpus={wanted}"
        )
    if len(visible) < len(ids):
        log.info("backend.device_ids: %d GPU(s) visible, the others ignored", count)
    return [torch.device("cuda", i) for i in visible[:wanted]]


def uuid_of(device: Any) -> str:
    """A CUDA device's UUID as NVML spells it (``GPU-…``)."""
    import torch

    return "GPU-" + str(torch.cuda.get_device_properties(device).uuid)


def software_and_devices(devices: Sequence[Any]) -> dict[str, Any]:
    """Provenance every backend that computes here records: torch, transformers, the devices."""
    import torch
    import transformers

    return {
        "torch_version": torch.__version__,
        "torch_cuda_version": torch.version.cuda,
        "transformers_version": transformers.__version__,
        "devices": [str(d) for d in devices],
        "device_names": [
            torch.cuda.get_device_name(d) if d.type == "cuda" else "cpu" for d in devices
        ],
    }


def max_memory(devices: Sequence[Any]) -> dict[int, int]:
    """Memory the weights may take on each of the run's GPUs (and on no other device)."""
    import torch

    return {d.index: int(torch.cuda.mem_get_info(d)[0] * HEADROOM) for d in devices}


def device_for(name: str, device_map: Mapping[str, Any]) -> Any:
    """The device of parameter ``name``: that of the longest module path of the map holding it."""
    best = None
    for module in device_map:
        if (module == "" or name == module or name.startswith(module + ".")) and (
            best is None or len(module) > len(best)
        ):
            best = module
    if best is None:
        raise KeyError(f"{name} is in no module of the device map")
    return device_map[best]


def random_model_across(config: Any, devices: Sequence[Any], dtype: Any, remote: bool) -> Any:
    """A model of ``config`` with random weights spread over ``devices`` (CUDA devices)."""
    import torch
    from accelerate import dispatch_model, infer_auto_device_map, init_empty_weights
    from accelerate.utils import get_balanced_memory, set_module_tensor_to_device
    from transformers import AutoModelForCausalLM

    with init_empty_weights():  # parameters on the meta device; the small buffers are real
        model = AutoModelForCausalLM.from_config(config, dtype=dtype, trust_remote_code=remote)
    # Tie before mapping: the map then keeps tied modules (input and output embeddings) together.
    if hasattr(model, "tie_weights"):
        model.tie_weights()
    no_split = getattr(model, "_no_split_modules", None) or []
    limits = get_balanced_memory(
        model, max_memory=max_memory(devices), no_split_module_classes=no_split, dtype=dtype
    )
    device_map = infer_auto_device_map(
        model, max_memory=limits, no_split_module_classes=no_split, dtype=dtype
    )
    allowed = {d.index for d in devices}
    if not set(device_map.values()) <= allowed:
        raise ValueError(
            f"the model does not fit on GPUs {sorted(allowed)}: the device map asks for "
            f"{sorted(set(map(str, device_map.values())))}"
        )
    std = float(getattr(config, "initializer_range", 0.02) or 0.02)
    for name, param in list(model.named_parameters()):  # a tied parameter comes once
        device = torch.device("cuda", device_for(name, device_map))
        value = torch.empty(param.shape, dtype=param.dtype, device=device)
        if param.dim() > 1:
            value.normal_(0.0, std)
        elif name.endswith("weight"):  # norm scales, as the models initialise them
            value.fill_(1.0)
        else:
            value.zero_()
        set_module_tensor_to_device(model, name, device, value=value)
    if hasattr(model, "tie_weights"):
        model.tie_weights()  # the tied twin now points at the materialised parameter
    log.info("placed across GPUs %s: %d modules", sorted(allowed), len(device_map))
    return dispatch_model(model, device_map=device_map)
