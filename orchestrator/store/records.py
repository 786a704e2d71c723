"""Per-run records: the source of truth of a sweep (one ``run_record.json`` per run folder)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from energy_bench import contract
from orchestrator.store.files import read_json, write_json
from orchestrator.store.paths import RECORD_FILE

RECORD_SCHEMA = 1

Status = Literal["ok", "failed", "skipped", "interrupted", "running"]


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
    cause: str = ""
    error_message: str = ""
    runner: str = ""
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
    schema_version: int = field(default=RECORD_SCHEMA)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["gpu_uuids"] = list(self.gpu_uuids)
        data["overrides"] = list(self.overrides)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunRecord:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["gpu_uuids"] = tuple(values.get("gpu_uuids") or ())
        values["overrides"] = tuple(values.get("overrides") or ())
        return cls(**values)


def save_record(run_dir: Path, record: RunRecord) -> None:
    """Write the record atomically into its run folder."""
    write_json(run_dir / RECORD_FILE, record.to_dict())


def load_record(run_dir: Path) -> RunRecord | None:
    """The record in ``run_dir``, or None if there is none (or it is unreadable)."""
    data = read_json(run_dir / RECORD_FILE)
    if not isinstance(data, dict):
        return None
    try:
        return RunRecord.from_dict(data)
    except TypeError:
        return None


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
