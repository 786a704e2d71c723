"""The prompts of a run: the Hub dataset when reachable, a local file, or the bundled set."""

from __future__ import annotations

import csv
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from energy_bench import contract
from energy_bench.config import ScenarioConfig
from energy_bench.errors import BenchConfigError

log = logging.getLogger(__name__)

BUNDLED = contract.BUNDLED_PROMPTS_FILE
BUNDLED_IMAGES = contract.BUNDLED_IMAGE_PROMPTS_FILE
BUNDLED_NAME = "bundled"
# The prompt columns of the two tasks' datasets: a local file with either serves both tasks.
PROMPT_COLUMNS = ("text", "prompt")


class HubUnreadable(Exception):
    """The Hub dataset cannot be read here: the package that reads it is missing, or offline."""


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
            text = row[column]
            if not isinstance(text, str):  # a null would become the prompt "None"
                raise BenchConfigError(
                    f"{path}:{number}: {column!r} is not text (got {json.dumps(text)[:40]})"
                )
            if text.strip():  # blank prompts are skipped, as in a .csv or .txt file
                texts.append(text)
    return texts


def _read_csv(path: Path, column: str) -> list[str]:
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        if column not in (reader.fieldnames or []):
            raise BenchConfigError(f"{path}: no column {column!r} (has {reader.fieldnames})")
        return [row[column] for row in reader if row[column] and row[column].strip()]


def _fields(path: Path) -> list[str]:
    """The fields of a .jsonl file's first record or a .csv file's header (none if unreadable)."""
    with path.open(encoding="utf-8", newline="") as f:
        if path.suffix.lower() == ".csv":
            return next(csv.reader(f), [])
        first = next((line for line in f if line.strip()), "")
    try:
        row = json.loads(first)
    except json.JSONDecodeError:
        return []
    return list(row) if isinstance(row, dict) else []


def file_column(path: Path, scenario: ScenarioConfig) -> str:
    """The column of a local prompt file: the config's, or the other task's when only it is there.

    One file then serves a sweep of both tasks (text prompts under ``text``, image prompts under
    ``prompt``); a column the run names itself is read as named.
    """
    column = scenario.text_column_name
    if "scenario.text_column_name" in scenario.given or path.suffix.lower() == ".txt":
        return column
    fields = _fields(path)
    if column in fields:
        return column
    return next((c for c in PROMPT_COLUMNS if c in fields), column)


def _read_file(path: Path, column: str) -> list[str]:
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        return _read_jsonl(path, column)
    if suffix == ".csv":
        return _read_csv(path, column)
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _read_hub(name: str, split: str, column: str) -> list[str]:
    """The Hub dataset; ``HubUnreadable`` if it cannot be read here, else the loader's error."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        raise HubUnreadable("HF_HUB_OFFLINE is set")
    try:
        import datasets  # optional: only this path needs it
    except ModuleNotFoundError as exc:
        if exc.name != "datasets":
            raise
        raise HubUnreadable("the datasets package is not installed") from None

    data = datasets.load_dataset(name, split=split)
    return [str(t) for t in data[column]]


def _bundled(scenario: ScenarioConfig) -> list[str]:
    """The bundled set of the run's task: text prompts, or image prompts."""
    if scenario.image is not None:
        return _read_jsonl(BUNDLED_IMAGES, "prompt")
    return _read_jsonl(BUNDLED, "text")


def _hub_or_bundled(scenario: ScenarioConfig) -> tuple[list[str], str]:
    """The Hub dataset, else the bundled set.

    The default config names the Hub dataset, which an installation without its reader, or one
    kept offline, cannot read: such a run takes the bundled set quietly (its report names the
    source). A run that named the dataset itself, or that the Hub failed, is told why.
    """
    name = scenario.dataset_name
    try:
        return _read_hub(name, scenario.dataset_split, scenario.text_column_name), f"hub:{name}"
    except Exception as exc:
        if isinstance(exc, HubUnreadable) and "scenario.dataset_name" not in scenario.given:
            log.info("the Hub dataset %s is not read here; using the bundled prompt set", name)
        else:
            log.warning("Hub dataset %s unavailable (%s); using the bundled prompt set", name, exc)
    return _bundled(scenario), BUNDLED_NAME


def load_prompts(scenario: ScenarioConfig) -> PromptSet:
    """The first ``num_samples`` prompts of the configured dataset (all of it if it is shorter)."""
    name = scenario.dataset_name
    path = Path(name).expanduser()
    if name == BUNDLED_NAME:
        texts, source = _bundled(scenario), BUNDLED_NAME
    elif path.is_file():
        texts, source = _read_file(path, file_column(path, scenario)), f"file:{path}"
    elif name.endswith((".csv", ".jsonl", ".txt")) or name.startswith(("/", "./", "../")):
        raise BenchConfigError(f"scenario.dataset_name={name!r}: file not found")
    else:
        texts, source = _hub_or_bundled(scenario)
    if not texts:
        raise BenchConfigError(f"{source}: no prompts")
    # The default count takes a shorter set whole; only a count asked for is worth a warning.
    if scenario.num_samples > len(texts) and "scenario.num_samples" in scenario.given:
        log.warning(
            "scenario.num_samples=%d but %s has %d prompts: running %d",
            scenario.num_samples,
            source,
            len(texts),
            len(texts),
        )
    chosen = texts[: scenario.num_samples]
    return PromptSet(chosen, source, scenario.num_samples, len(texts))
