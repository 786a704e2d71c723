"""The prompts of a run: the Hub dataset when reachable, a local file, or the bundled set."""

from __future__ import annotations

import csv
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from energy_bench.config import ScenarioConfig
from energy_bench.errors import BenchConfigError

log = logging.getLogger(__name__)

BUNDLED = Path(__file__).resolve().parent / "data" / "bundled_prompts.jsonl"
BUNDLED_NAME = "bundled"


@dataclass(frozen=True)
class PromptSet:
    """The prompts in run order and where they came from."""

    texts: list[str]
    source: str
    requested: int
    available: int


def _read_jsonl(path: Path, column: str) -> list[str]:
    texts = []
    with path.open(encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise BenchConfigError(f"{path}:{number}: not JSON: {exc.msg}") from None
            if not isinstance(row, dict) or column not in row:
                raise BenchConfigError(f"{path}:{number}: no {column!r} field")
            texts.append(str(row[column]))
    return texts


def _read_csv(path: Path, column: str) -> list[str]:
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        if column not in (reader.fieldnames or []):
            raise BenchConfigError(f"{path}: no column {column!r} (has {reader.fieldnames})")
        return [row[column] for row in reader if row[column] and row[column].strip()]


def _read_file(path: Path, column: str) -> list[str]:
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        return _read_jsonl(path, column)
    if suffix == ".csv":
        return _read_csv(path, column)
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _read_hub(name: str, split: str, column: str) -> list[str]:
    """The Hub dataset; raises if ``datasets`` is missing, the Hub is off or unreachable."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        raise OSError("HF_HUB_OFFLINE is set")
    import datasets  # optional: only this path needs it

    data = datasets.load_dataset(name, split=split)
    return [str(t) for t in data[column]]


def load_prompts(scenario: ScenarioConfig) -> PromptSet:
    """The first ``num_samples`` prompts of the configured dataset (fewer if it is shorter)."""
    name = scenario.dataset_name
    column = scenario.text_column_name
    path = Path(name).expanduser()
    if name == BUNDLED_NAME:
        texts, source = _read_jsonl(BUNDLED, "text"), BUNDLED_NAME
    elif path.is_file():
        texts, source = _read_file(path, column), f"file:{path}"
    elif name.endswith((".csv", ".jsonl", ".txt")) or name.startswith(("/", "./", "../")):
        raise BenchConfigError(f"scenario.dataset_name={name!r}: file not found")
    else:
        try:
            texts, source = _read_hub(name, scenario.dataset_split, column), f"hub:{name}"
        except Exception as exc:
            log.warning("Hub dataset %s unavailable (%s); using the bundled prompt set", name, exc)
            texts, source = _read_jsonl(BUNDLED, "text"), BUNDLED_NAME
    if not texts:
        raise BenchConfigError(f"{source}: no prompts")
    if scenario.num_samples > len(texts):
        log.warning(
            "scenario.num_samples=%d but %s has %d prompts: running %d",
            scenario.num_samples,
            source,
            len(texts),
            len(texts),
        )
    chosen = texts[: scenario.num_samples]
    return PromptSet(chosen, source, scenario.num_samples, len(texts))
