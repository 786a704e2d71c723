"""How much memory a run's weights take, before anything runs.

From the files the host already has: a local model folder's weight files, or the local Hugging
Face cache (only looked into: never a download, whether or not the Hub is reachable). The cache's
safetensors index gives the stored size exactly, and the model's ``config.json`` the dtype it is
stored in. Parameters are not computed from the config's sizes: the layouts (mixtures of experts,
latent attention, hybrid Mamba layers, two-matrix MLPs) differ too much for one formula. Without
those files, the size in the model id (``70B``, ``235B-A22B``, ``0.6B``) at the run's dtype.

A size is what loading cannot do without: ``backend.no_weights`` runs make the same tensors with
random values. A model of unknown size (no files, no size in its id, quantized weights not in
the cache, a dtype of ``auto`` with no config) gets None, and nothing is decided from it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.planning.plan import RunPlan

DEFAULT_DTYPE = "bfloat16"  # the benchmark's backend.torch_dtype (container/configs)
DTYPE_BYTES = {"bfloat16": 2, "float16": 2, "float32": 4}
SHORT_DTYPE = {"bfloat16": "bf16", "float16": "fp16", "float32": "fp32"}
CONFIG, INDEX, SINGLE = "config.json", "model.safetensors.index.json", "model.safetensors"
_SIZE = re.compile(r"(?<![A-Za-z0-9.])(\d+(?:\.\d+)?)([bBmM])(?![A-Za-z])")
# Names of quantized checkpoints: their count of parameters says nothing of their bytes.
_QUANTIZED = re.compile(
    r"(?<![a-z0-9])(awq|gptq|gguf|exl2|bnb|nf4|[48]bit|int[48]|w[48]a(?:8|16)|(?:nv|mx)?fp[48])"
    r"(?![a-z0-9])",
    re.IGNORECASE,
)


def named_params_b(model_id: str) -> float | None:
    """Billions of parameters the model id names, or None.

    The first size in its last part: ``Qwen3-30B-A3B`` -> 30, ``gemma-3-270m-it`` -> 0.27.
    """
    found = _SIZE.search(model_id.rsplit("/", 1)[-1])
    if not found:
        return None
    value = float(found.group(1))
    return value / 1000 if found.group(2) in "mM" else value


@dataclass(frozen=True)
class WeightSize:
    """The bytes a run's weights take; its parameters and dtype where they are known."""

    size_bytes: int
    params: float | None = None
    dtype: str | None = None
    quantized: bool = False

    def __str__(self) -> str:
        """``~438 GiB for 235B bf16 weights``, ``~65 GiB for its quantized weights``."""
        gib = f"~{gib_text(self.size_bytes)} GiB"
        if self.params is not None and self.dtype is not None:
            return f"{gib} for {params_text(self.params)} {SHORT_DTYPE[self.dtype]} weights"
        return f"{gib} for its {'quantized ' if self.quantized else ''}weights"


def gib_text(size_bytes: float) -> str:
    """Whole GiB from 10 up, one decimal below."""
    gib = size_bytes / 2**30
    return f"{gib:.0f}" if gib >= 10 else f"{gib:.1f}"


def params_text(params: float) -> str:
    """``235B``, ``30.5B``, ``1026B``, ``270M``."""
    if params < 1e9:
        return f"{params / 1e6:.3g}M"
    billions = params / 1e9
    return f"{billions:.3g}B" if billions < 1000 else f"{billions:.0f}B"


def weight_size(plan: RunPlan, *, hf_home: Path | None = None) -> WeightSize | None:
    """The memory ``plan``'s weights take at the dtype it runs in, or None when unknown.

    ``hf_home`` is the Hugging Face home the runs get (``--hf-cache``); None: the Hub's own.
    """
    dtype = (plan.setting("backend.torch_dtype") or DEFAULT_DTYPE).strip("'\"").lower()
    files = _Files(plan.config.model_id, hf_home)
    config = files.json(CONFIG) or {}
    stored_dtype = str(config.get("dtype") or config.get("torch_dtype") or "").lower()
    quantized = bool(config.get("quantization_config"))
    if dtype == "auto":  # the checkpoint's own
        dtype = stored_dtype
    stored = files.stored_bytes()
    if stored is not None:
        if quantized:  # kept as stored, or made larger: never smaller
            return WeightSize(stored, quantized=True)
        if stored_dtype in DTYPE_BYTES and dtype in DTYPE_BYTES:
            params = stored / DTYPE_BYTES[stored_dtype]
            return WeightSize(round(params * DTYPE_BYTES[dtype]), params, dtype)
        return WeightSize(stored)  # in a dtype the config does not name: as stored
    if quantized or dtype not in DTYPE_BYTES:
        return None  # bytes per parameter unknown
    if files.local:
        return None  # a folder's name is the user's, not a size
    name = plan.config.model_id.rsplit("/", 1)[-1]
    named = named_params_b(name)
    if named is None or _QUANTIZED.search(name):
        return None
    params = named * 1e9
    return WeightSize(round(params * DTYPE_BYTES[dtype]), params, dtype)


class _Files:
    """A model's files where the host has them: its folder, or the local Hub cache."""

    def __init__(self, model_id: str, hf_home: Path | None) -> None:
        self.model_id = model_id
        self.local = Path(model_id).is_absolute()
        # None: the Hub's own cache, as it resolves it (HF_HUB_CACHE, HF_HOME), read when asked.
        self.hub_cache = hf_home / "hub" if hf_home is not None else None

    def path(self, name: str) -> Path | None:
        if self.local:
            path = Path(self.model_id) / name
            return path if path.is_file() else None
        from huggingface_hub import constants, try_to_load_from_cache

        try:
            found = try_to_load_from_cache(
                self.model_id, name, cache_dir=self.hub_cache or constants.HF_HUB_CACHE
            )
        except ValueError:  # not a valid Hub id: nothing cached under it
            return None
        return Path(found) if isinstance(found, str) else None

    def json(self, name: str) -> dict[str, Any] | None:
        path = self.path(name)
        try:
            data = json.loads(path.read_text()) if path else None
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def stored_bytes(self) -> int | None:
        """The weights' size as stored: the safetensors index's total, else the files' sizes."""
        metadata = (self.json(INDEX) or {}).get("metadata")
        total = metadata.get("total_size") if isinstance(metadata, dict) else None
        if isinstance(total, int) and total > 0:
            return total
        try:
            if self.local:
                sizes = [p.stat().st_size for p in Path(self.model_id).glob("*.safetensors")]
                return sum(sizes) or None
            single = self.path(SINGLE)
            return single.stat().st_size if single else None
        except OSError:  # a file gone, a cache entry whose blob is missing
            return None
