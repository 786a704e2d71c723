"""Read the AI Energy Score models CSV into validated, typed ``ModelConfig`` rows.

The whole file is validated before anything is returned: the first bad record raises a
``ConfigError`` naming the file, the line where that record starts, the column and the value.
"""

from __future__ import annotations

import csv
import io
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from energy_bench import contract
from orchestrator.errors import ConfigError
from orchestrator.models.config import (
    IMAGE_ROW_KEYS,
    ModelClass,
    ModelConfig,
    ReasoningState,
    Task,
    TokenBudgets,
)
from orchestrator.models.reasoning import ReasoningFormats, load_formats

log = logging.getLogger(__name__)

MODEL = "Models to Add"
PRIORITY = "Priority (1=hi)"
CLASS = "Class"
TASK = "Task"
STATE = "Reasoning State"
TEMPLATE = "Chat Template"
REQUIRED_COLUMNS = (MODEL, PRIORITY, CLASS, TASK, STATE)

_NOT_APPLICABLE = {"", "n/a", "n/a (default)", "na", "none"}
_HUB_URL = re.compile(r"^https?://(?:www\.)?huggingface\.co/(?P<path>[^?#]+)$", re.IGNORECASE)
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
_LOCAL_PREFIXES = ("/", "./", "../", "~")


def _normalise(text: str) -> str:
    return " ".join(text.split()).lower()


class _Row:
    """One CSV record with the line it starts on, read through the header's column positions."""

    def __init__(self, path: Path, line: int, cells: Sequence[str], columns: Mapping[str, int]):
        self.path, self.line, self._cells, self._columns = path, line, cells, columns

    def get(self, column: str) -> str:
        index = self._columns.get(column)
        if index is None or index >= len(self._cells):
            return ""
        return self._cells[index].strip()

    def error(self, column: str, message: str, value: str | None = None) -> ConfigError:
        return ConfigError(self.path, message, line=self.line or None, column=column, value=value)


def _decode(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(path, "file not found") from None
    except OSError as exc:
        raise ConfigError(path, f"cannot read the file: {exc.strerror or exc}") from None
    if b"\x00" in raw:
        line = raw[: raw.index(b"\x00")].count(b"\n") + 1
        raise ConfigError(path, "binary data (a NUL byte): not a CSV text file", line=line)
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        bad = raw[exc.start : exc.start + 1].hex()
        raise ConfigError(path, f"not UTF-8 text (byte 0x{bad})", line=line) from None


def _records(path: Path, text: str) -> list[tuple[int, list[str]]]:
    """(start line, cells) for every non-blank record; quoted cells may span lines."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    records: list[tuple[int, list[str]]] = []
    start = 1
    try:
        for cells in reader:
            if any(cell.strip() for cell in cells):
                records.append((start, cells))
            start = reader.line_num + 1
    except csv.Error as exc:
        raise ConfigError(path, f"malformed CSV: {exc}", line=start) from None
    return records


def _header_columns(path: Path, line: int, header: Sequence[str]) -> dict[str, int]:
    wanted = {_normalise(name): name for name in (*REQUIRED_COLUMNS, TEMPLATE)}
    columns: dict[str, int] = {}
    for index, name in enumerate(header):
        canonical = wanted.get(_normalise(name))
        if canonical is None and _normalise(name).startswith("priority"):
            canonical = PRIORITY
        if canonical is not None and canonical not in columns:
            columns[canonical] = index
    missing = [name for name in REQUIRED_COLUMNS if name not in columns]
    if missing:
        found = ", ".join(repr(h.strip()) for h in header if h.strip()) or "none"
        raise ConfigError(
            path,
            f"missing required column(s) {', '.join(map(repr, missing))}; header has {found}",
            line=line,
        )
    return columns


def _beside_csv(row: _Row, cell: str) -> Path:
    """A local path as a cell spells it: relative ones are taken from the CSV's folder."""
    local = Path(cell).expanduser()
    return local if local.is_absolute() else row.path.parent / local


def _model_id(row: _Row) -> str:
    cell = row.get(MODEL)
    if not cell:
        raise row.error(MODEL, "empty model cell")
    url = _HUB_URL.match(cell)
    if url:
        parts = [p for p in url.group("path").split("/") if p]
        candidate = "/".join(parts[:2])
        if _HUB_ID.match(candidate):
            return candidate
        raise row.error(MODEL, "not a model URL of the form <host>/<org>/<name>", cell)
    local = _beside_csv(row, cell)
    # An existing folder wins over a Hub id of the same spelling, as in from_pretrained.
    if cell.startswith(_LOCAL_PREFIXES) or local.is_dir():
        return str(local.resolve())
    if _HUB_ID.match(cell):
        return cell
    raise row.error(MODEL, "not a Hub id (org/name), a Hub URL or a local folder path", cell)


def _priority(row: _Row) -> int:
    cell = row.get(PRIORITY)
    try:
        value = int(cell)
    except ValueError:
        raise row.error(PRIORITY, "priority must be a whole number 1-3", cell) from None
    if not 1 <= value <= 3:
        raise row.error(PRIORITY, "priority must be 1, 2 or 3 (1 = highest)", cell)
    return value


def _task(row: _Row) -> Task:
    cell = row.get(TASK)
    try:
        return Task(cell.lower())
    except ValueError:
        valid = ", ".join(t.value for t in Task)
        raise row.error(TASK, f"unknown task; expected one of {valid}", cell) from None


def _model_class(row: _Row, task: Task) -> ModelClass | None:
    cell = row.get(CLASS)
    if cell.lower() in _NOT_APPLICABLE:
        if task is Task.TEXT_GEN:
            raise row.error(CLASS, "text_gen rows need a class (A, B or C)", cell)
        return None
    try:
        return ModelClass(cell.upper())
    except ValueError:
        raise row.error(CLASS, "unknown class; expected A, B or C", cell) from None


def _reasoning_state(row: _Row, task: Task) -> ReasoningState:
    cell = row.get(STATE)
    key = _normalise(cell)
    if key in _NOT_APPLICABLE:
        if task is Task.TEXT_GEN:
            valid = ", ".join(s.value for s in ReasoningState if s.value)
            raise row.error(STATE, f"text_gen rows need a reasoning state ({valid})", cell)
        return ReasoningState.NONE
    state = ReasoningState.from_text(cell)
    if state is None:
        valid = ", ".join(s.value for s in ReasoningState if s.value)
        raise row.error(STATE, f"unknown reasoning state; expected one of {valid} or empty", cell)
    return state


def _template(row: _Row, state: ReasoningState) -> tuple[str, dict[str, Any]]:
    cell = row.get(TEMPLATE)
    if cell.lower() in _NOT_APPLICABLE:
        return "", {}
    try:
        parsed = yaml.safe_load(cell)
    except yaml.YAMLError:
        return cell, {}
    params = parsed if isinstance(parsed, dict) else {}
    declared = params.get("reasoning")
    if isinstance(declared, bool) and state.enabled is not None and declared != state.enabled:
        log.warning(
            "%s:%d: Chat Template says reasoning: %s but Reasoning State is %r; "
            "the Reasoning State is used",
            row.path,
            row.line,
            declared,
            state.value,
        )
    return cell, params


def _row_budget(
    row: _Row, params: Mapping[str, Any], max_tokens: int, min_tokens: int | None
) -> tuple[int, int | None]:
    """A row's own ``max_new_tokens`` / ``min_new_tokens`` from its Chat Template YAML."""
    values = {"max_new_tokens": max_tokens, "min_new_tokens": min_tokens}
    for key in values:
        if key in params:
            value = params[key]
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise row.error(TEMPLATE, f"{key} must be a whole number of at least 1", str(value))
            values[key] = value
    if "max_new_tokens" in params and "min_new_tokens" not in params and min_tokens == max_tokens:
        values["min_new_tokens"] = values["max_new_tokens"]  # an exact budget stays exact
    low, high = values["min_new_tokens"], values["max_new_tokens"]
    if low is not None and high is not None and low > high:
        raise row.error(TEMPLATE, f"min_new_tokens {low} is above max_new_tokens {high}")
    return int(high or max_tokens), low


def _row_trust(row: _Row, params: Mapping[str, Any]) -> bool:
    """Whether the row's model runs its own code (``trust_remote_code`` in its Chat Template)."""
    value = params.get("trust_remote_code", False)
    if not isinstance(value, bool):
        raise row.error(TEMPLATE, "trust_remote_code must be true or false", str(value))
    return value


def _row_gpus(row: _Row, params: Mapping[str, Any]) -> int | None:
    """A row's own GPU count (``num_gpus`` in its Chat Template YAML), or None."""
    if "num_gpus" not in params:
        return None
    value = params["num_gpus"]
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise row.error(TEMPLATE, "num_gpus must be a whole number of at least 1", str(value))
    return value


def _image_params(row: _Row, params: Mapping[str, Any]) -> dict[str, Any]:
    """An image row's YAML: only the keys of ``IMAGE_ROW_KEYS``; a local encoder made absolute.

    A local extra encoder (``text_encoder_4: ./llama``) is resolved against the CSV's folder,
    as a local model is, so that the plan can check and mount it.
    """
    unknown = sorted(set(params) - set(IMAGE_ROW_KEYS))
    if unknown:
        known = ", ".join(IMAGE_ROW_KEYS)
        raise row.error(TEMPLATE, f"an image_gen row's YAML takes only {known}", unknown[0])
    resolved = dict(params)
    for key in contract.IMAGE_EXTRA_KEYS:
        value = params.get(key)
        if isinstance(value, str) and value.startswith(_LOCAL_PREFIXES):
            resolved[key] = str(_beside_csv(row, value).resolve())
    return resolved


def _config(row: _Row, budgets: TokenBudgets, formats: ReasoningFormats) -> ModelConfig:
    model_id = _model_id(row)
    priority = _priority(row)
    task = _task(row)
    model_class = _model_class(row, task)
    state = _reasoning_state(row, task)
    template, params = _template(row, state)
    if task is Task.IMAGE_GEN:
        params = _image_params(row, params)
    directive = formats.resolve(model_id, state, task)
    # The budget is the row's state's, also where the model runs in its only other mode.
    if directive.enabled is None:
        max_tokens: int | None = None
        min_tokens: int | None = None
    elif state.enabled:
        max_tokens, min_tokens = budgets.on_max_tokens, budgets.on_min_tokens
    else:
        max_tokens = min_tokens = budgets.off_tokens
    if max_tokens is not None:
        max_tokens, min_tokens = _row_budget(row, params, max_tokens, min_tokens)
    return ModelConfig(
        model_id=model_id,
        # A local folder is shown as written (relative to the CSV), never as this host's path.
        model_name=row.get(MODEL) if Path(model_id).is_absolute() else model_id,
        priority=priority,
        model_class=model_class,
        task=task,
        reasoning_state=state,
        reasoning=directive,
        max_new_tokens=max_tokens,
        min_new_tokens=min_tokens,
        chat_template=template,
        chat_template_params=params,
        source=str(row.path),
        line=row.line,
        num_gpus=_row_gpus(row, params),
        trust_remote_code=_row_trust(row, params),
    )


def single_config(
    model: str,
    *,
    reasoning_state: str = "Off",
    model_class: str = "A",
    task: str = "text_gen",
    budgets: TokenBudgets | None = None,
    formats: ReasoningFormats | None = None,
) -> ModelConfig:
    """The config of one model given on the command line, validated like a CSV row."""
    columns = {name: i for i, name in enumerate((MODEL, PRIORITY, CLASS, TASK, STATE))}
    row = _Row(Path("command line"), 0, [model, "1", model_class, task, reasoning_state], columns)
    return _config(row, budgets or TokenBudgets(), formats or load_formats())


def read_models_csv(
    path: str | Path,
    budgets: TokenBudgets | None = None,
    formats: ReasoningFormats | None = None,
) -> list[ModelConfig]:
    """Every row of the models CSV at ``path`` as a ``ModelConfig``, in file order.

    ``formats`` are the reasoning families (the shipped ones unless given).

    Raises ``ConfigError`` for the first problem found; nothing is returned from a file that is
    partly bad.
    """
    path = Path(path)
    records = _records(path, _decode(path))
    if not records:
        raise ConfigError(path, "the file is empty: no header and no rows")
    header_line, header = records[0]
    columns = _header_columns(path, header_line, header)
    if len(records) == 1:
        raise ConfigError(path, "the file has a header but no model rows", line=header_line)
    budgets = budgets or TokenBudgets()
    formats = formats or load_formats()
    configs: list[ModelConfig] = []
    first_seen: dict[tuple[str, Task, ReasoningState], ModelConfig] = {}
    for line, cells in records[1:]:
        config = _config(_Row(path, line, cells, columns), budgets, formats)
        key = (config.model_id.lower(), config.task, config.reasoning_state)
        first = first_seen.get(key)
        if first is not None and _same_row(first, config):
            log.warning(
                "%s:%d: the same row as line %d (%s %s); it is run once",
                path, line, first.line, config.model_name, config.reasoning_state.value,
            )  # fmt: skip
            continue
        if first is not None:
            raise ConfigError(
                path,
                f"duplicate row: same model, task and reasoning state as line {first.line}, "
                "with other settings (priority, class or chat template); keep one of them",
                line=line,
                value=f"{config.model_id} {config.reasoning_state.value}".strip(),
            )
        first_seen[key] = config
        configs.append(config)
    return configs


def _same_row(a: ModelConfig, b: ModelConfig) -> bool:
    """True when two rows ask for the same run: they differ at most in where they are."""
    return replace(a, line=0, model_name="") == replace(b, line=0, model_name="")
