"""One identity per run: a folder name no other row shares, and an id that changes with the result.

The folder name is the AI Energy Score one (``openai_gpt-oss-20b_On_High``). Where two rows would
share it (``org/m`` text and image rows, local folders ``/a/tiny`` and ``/b/tiny``, Hub ids
``a/b_c`` and ``a_b/c``), each of them gets a suffix derived from what tells them apart, so the
same row keeps the same folder from one sweep to the next.

The run id is a digest of everything that changes a run's result: the model, its class, task and
reasoning state, every benchmark setting (the overrides; the defaults come with the software), the
content of a prompts file, the software that runs it (the image's ID, or the benchmark package
and libraries of a local run), the GPU model and the GPU count. A local model folder counts by its
path, not its content. Resume trusts a folder's result only when its run id is the plan's.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from orchestrator.models.config import ModelConfig

SUFFIX_DIGITS = 8


def _digest(data: object, digits: int) -> str:
    text = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:digits]


def base_name(config: ModelConfig) -> str:
    """Folder-safe name: ``openai/gpt-oss-20b``, ``On (High)`` -> ``openai_gpt-oss-20b_On_High``."""
    model = config.model_id
    if Path(model).is_absolute():
        model = Path(model).name
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", model.replace("/", "_")).strip("_")
    return f"{slug}_{config.state_slug}"


def _row_key(config: ModelConfig) -> list[str]:
    return [config.model_id, config.task.value, config.reasoning_state.value]


def run_names(configs: Sequence[ModelConfig]) -> list[str]:
    """A folder name per config, in order; a suffix only where two would otherwise clash.

    Names are compared case-insensitively, as some file systems do.
    """
    names = [base_name(c) for c in configs]
    groups: dict[str, list[int]] = defaultdict(list)
    for i, name in enumerate(names):
        groups[name.casefold()].append(i)
    for members in groups.values():
        if len(members) > 1:
            for i in members:
                names[i] = f"{names[i]}_{_digest(_row_key(configs[i]), SUFFIX_DIGITS)}"
    if len({n.casefold() for n in names}) != len(names):
        raise ValueError(f"run folder names still clash: {sorted(names)}")
    return names


def split_override(item: str) -> tuple[str, str]:
    """A ``key=value`` override as the benchmark reads it: key without spaces or leading ``+``."""
    key, _, value = item.partition("=")
    return key.strip().lstrip("+"), value.strip()


def canonical_overrides(overrides: Sequence[str]) -> dict[str, str]:
    """The settings the overrides make, as the benchmark reads them (the last value wins)."""
    return dict(sorted(dict(map(split_override, overrides)).items()))


def file_digest(path: Path) -> str:
    """A digest of a file's content (a prompts file: the same path may hold other prompts)."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def run_id(
    config: ModelConfig,
    overrides: Sequence[str],
    *,
    software_id: str,
    gpu_count: int,
    hardware: str = "",
    inputs: Sequence[str] = (),
) -> str:
    """The digest of what makes the run's result; the same plan gives the same id.

    ``hardware`` is the GPU model (or ``cpu``); ``inputs`` are digests of input files.
    """
    return _digest(
        {
            "row": _row_key(config),
            "class": config.model_class.value if config.model_class else "",
            "settings": canonical_overrides(overrides),
            "software": software_id,
            "hardware": hardware,
            "gpus": gpu_count,
            "inputs": list(inputs),
        },
        12,
    )
