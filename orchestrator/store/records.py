"""Per-run records: the source of truth of a sweep (one ``run_record.json`` per run folder).

A record is read back only when it validates (``record_problem``): one written by another
version, or damaged by hand, is never trusted. Readers get None for it, and the master CSV a
``corrupt_result`` row that says why, so the next sweep reruns that run.
"""

from __future__ import annotations

import math
import reprlib
from collections.abc import Callable, Mapping
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, get_args, get_type_hints

from energy_bench import contract
from orchestrator.store.files import read_json, write_json
from orchestrator.store.paths import RECORD_FILE

RECORD_SCHEMA = 1

Status = Literal["ok", "failed", "skipped", "interrupted", "running"]
STATUSES: tuple[str, ...] = get_args(Status)


class RecordError(ValueError):
    """A run record that does not validate (the message says which field and why)."""


@dataclass(frozen=True)
class RunRecord:
    """How one planned run ended, with what identifies it."""

    run_id: str
    name: str
    model_id: str
    model_class: str
    task: str
    reasoning_state: str
    status: Status
    model_name: str = ""  # the model as results show it (a local folder as the CSV wrote it)
    cause: str = ""
    error_message: str = ""
    runner: str = ""
    executor: str = ""  # where runs were placed: "local" (this host's GPUs) or "ray"
    host: str = ""  # the machine of the last attempt
    node_id: str = ""  # its Ray node ("" on the local executor)
    attempt_nodes: tuple[str, ...] = ()  # where each attempt ran, in order
    image: str = ""
    software_id: str = ""
    gpu_uuids: tuple[str, ...] = ()
    attempts: int = 0
    exit_code: int | None = None
    started_at: str = ""
    finished_at: str = ""
    duration_s: float = 0.0
    log_path: str = ""
    overrides: tuple[str, ...] = ()
    # Set when the model has only the other reasoning mode than its row's and ran in that one.
    reasoning_mismatch: str = ""
    reasoning_note: str = ""  # the directive's note: how the row's state is applied, or is not
    schema_version: int = field(default=RECORD_SCHEMA)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["gpu_uuids"] = list(self.gpu_uuids)
        data["overrides"] = list(self.overrides)
        data["attempt_nodes"] = list(self.attempt_nodes)
        return data

    @classmethod
    def from_dict(cls, data: Any) -> RunRecord:
        """The record that ``data`` holds; raises ``RecordError`` when it does not validate."""
        problem = record_problem(data)
        if problem:
            raise RecordError(problem)
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["gpu_uuids"] = tuple(values.get("gpu_uuids") or ())
        values["overrides"] = tuple(values.get("overrides") or ())
        values["attempt_nodes"] = tuple(values.get("attempt_nodes") or ())
        if "duration_s" in values:
            values["duration_s"] = float(values["duration_s"])
        return cls(**values)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_duration(value: Any) -> bool:
    number = _is_int(value) or isinstance(value, float)
    return number and math.isfinite(value) and value >= 0


def _check(kind: Any) -> tuple[Callable[[Any], bool], str]:
    """The test of a value against a record field's declared type, and what it asks for."""
    if kind is str:
        return (lambda v: isinstance(v, str)), "text"
    if kind is int:
        return (lambda v: _is_int(v) and v >= 0), "a whole number >= 0"
    if kind == int | None:
        return (lambda v: v is None or _is_int(v)), "a whole number or null"
    if kind is float:
        return _is_duration, "a finite number >= 0"
    if kind == tuple[str, ...]:
        return (lambda v: isinstance(v, list) and all(isinstance(s, str) for s in v)), (
            "a list of text"
        )
    if kind == Status:
        return (lambda v: v in STATUSES), "one of " + ", ".join(STATUSES)
    raise TypeError(f"no check for the record field type {kind!r}")


# Made once, when the module loads: a field of a type without a check fails at once.
_CHECKS = {name: _check(kind) for name, kind in get_type_hints(RunRecord).items()}
_REQUIRED = tuple(f.name for f in fields(RunRecord) if f.default is MISSING)
_SHORT = reprlib.Repr()  # a bad value as a message shows it: short, however large or deep
_SHORT.maxstring = _SHORT.maxother = 60
_SHORT.maxlevel = 3


def record_problem(data: Any) -> str:
    """Why ``data`` is not a record this version can read ("" when it is).

    Checks the schema version, that every field without a default is there, and that every
    field present has its declared type: text, a whole number, a finite non-negative duration,
    a list of text, or a known status. Keys this version does not know are ignored.
    """
    if not isinstance(data, Mapping):
        return "not a JSON object"
    version = data.get("schema_version")
    if not _is_int(version) or version != RECORD_SCHEMA:
        return f"schema_version {_SHORT.repr(version)}, expected {RECORD_SCHEMA}"
    for name in _REQUIRED:
        if name not in data:
            return f"{name} is missing"
    for name, (valid, wanted) in _CHECKS.items():
        if name in data and not valid(data[name]):
            return f"{name} is not {wanted} ({_SHORT.repr(data[name])})"
    return ""


def save_record(run_dir: Path, record: RunRecord) -> None:
    """Write the record atomically into its run folder."""
    write_json(run_dir / RECORD_FILE, record.to_dict())


def read_record(run_dir: Path) -> tuple[RunRecord | None, str]:
    """The record in ``run_dir`` and "", or None and why it cannot be used.

    ``(None, "")`` when the folder holds no record at all (a run not started yet).
    """
    path = run_dir / RECORD_FILE
    if not path.exists():
        return None, ""
    data = read_json(path)
    if data is None:
        return None, "unreadable, or not JSON"
    problem = record_problem(data)
    return (None, problem) if problem else (RunRecord.from_dict(data), "")


def load_record(run_dir: Path) -> RunRecord | None:
    """The record in ``run_dir``, or None if there is none (or it does not validate)."""
    return read_record(run_dir)[0]


def load_report(run_dir: Path) -> Any:
    """The benchmark's report in ``run_dir`` as parsed JSON (None when missing or unreadable)."""
    return read_json(run_dir / contract.REPORT_FILE)


def holds_success(run_dir: Path) -> bool:
    """True when the folder holds a successful run (of any run id) with a readable report."""
    record = load_record(run_dir)
    return (
        record is not None
        and record.status == "ok"
        and not contract.report_problem(load_report(run_dir))
    )


def is_complete(run_dir: Path, run_id: str) -> bool:
    """True when the folder holds a successful run of this very run id with a readable report."""
    record = load_record(run_dir)
    return (
        record is not None
        and record.run_id == run_id
        and record.status == "ok"
        and not contract.report_problem(load_report(run_dir))
    )
