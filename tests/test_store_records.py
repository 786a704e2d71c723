"""Run records read back only when they validate, with the whole reason when they do not."""

from __future__ import annotations

import json
import math

import pytest
from fakes import fake_report

from energy_bench import contract
from orchestrator.store import records
from orchestrator.store.records import (
    RECORD_SCHEMA,
    STATUSES,
    RunRecord,
    Status,
    holds_success,
    is_complete,
    read_record,
    record_problem,
    save_record,
)

RECORD = RunRecord(
    run_id="id-1", name="m_Off", model_id="org/m", model_class="A", task="text_gen",
    reasoning_state="Off", status="ok", gpu_uuids=("GPU-1", "GPU-2"), attempts=2, exit_code=0,
    duration_s=3.5, overrides=("a=1",), attempt_nodes=("n1", "n2"),
)  # fmt: skip


def test_a_record_round_trips_through_its_dict_with_lists_for_tuples():
    data = RECORD.to_dict()
    assert (data["gpu_uuids"], data["overrides"], data["attempt_nodes"]) == (
        ["GPU-1", "GPU-2"], ["a=1"], ["n1", "n2"],
    )  # fmt: skip
    assert data["schema_version"] == RECORD_SCHEMA == 1
    assert RunRecord.from_dict(json.loads(json.dumps(data))) == RECORD
    minimal = {k: data[k] for k in ("run_id", "name", "model_id", "model_class", "task")}
    minimal |= {"reasoning_state": "Off", "status": "failed", "schema_version": 1, "x": 1}
    again = RunRecord.from_dict(minimal)  # unknown keys ignored, defaults for the rest
    assert (again.gpu_uuids, again.overrides, again.attempt_nodes) == ((), (), ())
    assert (again.duration_s, again.exit_code, again.attempts) == (0.0, None, 0)
    assert RunRecord.from_dict({**data, "duration_s": 4}).duration_s == 4.0
    assert isinstance(RunRecord.from_dict({**data, "duration_s": 4}).duration_s, float)


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda d: [d], "not a JSON object"),
        (lambda d: d | {"schema_version": 2}, "schema_version 2, expected 1"),
        (lambda d: d | {"schema_version": True}, "schema_version True, expected 1"),
        (lambda d: {k: v for k, v in d.items() if k != "schema_version"},
         "schema_version None, expected 1"),
        (lambda d: {k: v for k, v in d.items() if k != "task"}, "task is missing"),
        (lambda d: d | {"name": 3}, "name is not text (3)"),
        (lambda d: d | {"attempts": -1}, "attempts is not a whole number >= 0 (-1)"),
        (lambda d: d | {"attempts": True}, "attempts is not a whole number >= 0 (True)"),
        (lambda d: d | {"attempts": 1.0}, "attempts is not a whole number >= 0 (1.0)"),
        (lambda d: d | {"exit_code": "1"}, "exit_code is not a whole number or null ('1')"),
        (lambda d: d | {"exit_code": False}, "exit_code is not a whole number or null (False)"),
        (lambda d: d | {"duration_s": -0.5}, "duration_s is not a finite number >= 0 (-0.5)"),
        (lambda d: d | {"duration_s": float("inf")},
         "duration_s is not a finite number >= 0 (inf)"),
        (lambda d: d | {"duration_s": "3"}, "duration_s is not a finite number >= 0 ('3')"),
        (lambda d: d | {"duration_s": True}, "duration_s is not a finite number >= 0 (True)"),
        (lambda d: d | {"gpu_uuids": "GPU-1"}, "gpu_uuids is not a list of text ('GPU-1')"),
        (lambda d: d | {"overrides": ["a", 1]}, "overrides is not a list of text (['a', 1])"),
        (lambda d: d | {"status": "done"},
         "status is not one of ok, failed, skipped, interrupted, running ('done')"),
    ],
)  # fmt: skip
def test_a_record_that_does_not_validate_says_which_field_and_why(change, problem):
    assert record_problem(change(RECORD.to_dict())) == problem


def test_a_bad_value_is_shown_short_however_large():
    problem = record_problem(RECORD.to_dict() | {"name": ["x" * 200]})
    short = "x" * 27 + "..." + "x" * 28  # reprlib keeps the two ends of a long string
    assert problem == f"name is not text (['{short}'])"


def test_reading_a_record_tells_none_from_damaged(tmp_path):
    assert read_record(tmp_path) == (None, "")
    (tmp_path / "run_record.json").write_text("{")
    assert read_record(tmp_path) == (None, "unreadable, or not JSON")
    (tmp_path / "run_record.json").write_text(json.dumps(RECORD.to_dict() | {"attempts": "2"}))
    assert read_record(tmp_path) == (None, "attempts is not a whole number >= 0 ('2')")
    save_record(tmp_path, RECORD)
    assert read_record(tmp_path) == (RECORD, "")


@pytest.mark.parametrize("status", ["failed", "skipped", "interrupted", "running"])
def test_only_an_ok_run_with_a_readable_report_is_complete(tmp_path, status):
    save_record(tmp_path, RECORD)
    assert not is_complete(tmp_path, "id-1") and not holds_success(tmp_path)  # no report yet
    (tmp_path / contract.REPORT_FILE).write_text(json.dumps(fake_report()))
    assert is_complete(tmp_path, "id-1") and holds_success(tmp_path)
    assert not is_complete(tmp_path, "id-2") and holds_success(tmp_path)  # another run's success
    save_record(tmp_path, RunRecord(**{**RECORD.__dict__, "status": status}))
    assert not is_complete(tmp_path, "id-1") and not holds_success(tmp_path)


@pytest.mark.parametrize(
    ("kind", "good", "bad", "asks"),
    [
        (str, ["", "ok"], [None, 1, b"x"], "text"),
        (int, [0, 7], [-1, 1.5, True, "3", None], "a whole number >= 0"),
        (int | None, [None, -2, 0, 9], [1.5, False, "1"], "a whole number or null"),
        (
            float,
            [0, 0.0, 2.5, 3],
            [-0.5, math.inf, math.nan, True, "1"],
            "a finite number >= 0",
        ),
        (tuple[str, ...], [[], ["a", "b"]], [("a",), ["a", 1], "a", None], "a list of text"),
        (Status, list(STATUSES), ["done", "", None, "OK"], "one of " + ", ".join(STATUSES)),
    ],
)
def test_each_field_type_has_its_check(kind, good, bad, asks):
    """The checks are made once at import, so the test calls the maker itself for each type."""
    check, wanted = records._check(kind)
    assert wanted == asks
    assert [v for v in good if not check(v)] == []
    assert [v for v in bad if check(v)] == []


def test_a_field_type_without_a_check_is_refused():
    with pytest.raises(TypeError, match=r"^no check for the record field type <class 'bytes'>$"):
        records._check(bytes)
