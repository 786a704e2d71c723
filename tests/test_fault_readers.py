"""Every reader is total: a damaged record, report or result file never stops a sweep or a report.

A record or report that does not validate becomes a ``corrupt_result`` row that names the file and
the reason, and the next sweep reruns that run; a result file the report cannot read, or a name
that matplotlib would take for a formula, costs at most its own part of the report.
"""

from __future__ import annotations

import csv
import json
import logging
import subprocess
import sys
import zipfile

import pytest
from conftest import ROOT
from fakes import fake_report, write_report

from orchestrator.reports.build import make_report
from orchestrator.store.master import collect_rows, rebuild_master
from orchestrator.store.records import (
    RecordError,
    RunRecord,
    holds_success,
    is_complete,
    load_record,
    save_record,
)

MATHTEXT = r"$\undefinedcmd{x}$"


def add_run(out, name, *, gpu="NVIDIA H200", model_id=None, trace=True):
    folder = out / "individual_runs" / name
    log = out / "logs" / f"{name}_20261129_000000.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("loading model\ndone\n")
    record = RunRecord(
        run_id=f"{name}-id",
        name=name,
        model_id=model_id or f"org/{name}",
        model_class="A",
        task="text_gen",
        reasoning_state="Off",
        status="ok",
        duration_s=12.5,
        finished_at="2026-11-29T00:00:00+00:00",
        log_path=str(log.relative_to(out)),
    )
    save_record(folder, record)
    write_report(folder, fake_report(gpu=gpu))
    if trace:
        rows = "".join(f"{t / 10:.1f},0,GPU-x,repeat_0,{150 + t},1980,40,\n" for t in range(30))
        (folder / "power_trace.csv").write_text(
            "t_s,device,device_uuid,window,power_w,sm_clock_mhz,temperature_c,energy_j\n" + rows
        )
        (folder / "per_prompt.csv").write_text("prompt,latency_s\n0,0.1\n")
    return folder, record


def master_rows(out):
    rebuild_master(out)
    with (out / "master_results.csv").open(newline="") as f:
        return {row["run_name"]: row for row in csv.DictReader(f)}


def damage_record(folder, change):
    path = folder / "run_record.json"
    data = json.loads(path.read_text())
    path.write_text(json.dumps(change(data)))


# --- 1. a record of wrong types ------------------------------------------------------------------
RECORD_DAMAGE = [
    (lambda d: d | {"duration_s": "abc"}, "duration_s"),
    (lambda d: d | {"duration_s": float("nan")}, "duration_s"),
    (lambda d: d | {"attempts": "x"}, "attempts"),
    (lambda d: d | {"attempts": True}, "attempts"),
    (lambda d: d | {"gpu_uuids": 5}, "gpu_uuids"),
    (lambda d: d | {"overrides": ["a", 1]}, "overrides"),
    (lambda d: d | {"status": "weird"}, "status"),
    (lambda d: d | {"model_id": ["org/x"]}, "model_id"),
    (lambda d: d | {"exit_code": "0"}, "exit_code"),
    (lambda d: d | {"schema_version": 99}, "schema_version"),
    (lambda d: {k: v for k, v in d.items() if k != "name"}, "name is missing"),
    (lambda d: [d], "not a JSON object"),
    (lambda d: "ok", "not a JSON object"),
]


@pytest.mark.parametrize(("change", "reason"), RECORD_DAMAGE)
def test_a_record_that_does_not_validate_is_a_corrupt_result(tmp_path, change, reason):
    add_run(tmp_path, "a_Off")
    folder, record = add_run(tmp_path, "b_Off")
    add_run(tmp_path, "c_Off")
    damage_record(folder, change)
    rows = master_rows(tmp_path)  # never raises: the sweep goes on after this run
    assert set(rows) == {"a_Off", "b_Off", "c_Off"}
    bad = rows["b_Off"]  # known by its folder's name
    assert bad["status"] == bad["cause"] == "corrupt_result"
    assert "run_record.json" in bad["error_message"] and reason in bad["error_message"], bad
    assert bad["gpu_energy_wh"] == ""
    assert rows["a_Off"]["status"] == rows["c_Off"]["status"] == "ok"
    assert [r["run_name"] for r in collect_rows(tmp_path)] == ["a_Off", "b_Off", "c_Off"]
    assert load_record(folder) is None
    assert not is_complete(folder, record.run_id)  # so the next sweep reruns it
    assert not holds_success(folder)


def test_a_report_over_records_that_do_not_validate(tmp_path):
    add_run(tmp_path, "a_Off")
    for i, (change, _) in enumerate(RECORD_DAMAGE):
        folder, _ = add_run(tmp_path, f"bad{i:02d}_Off")
        damage_record(folder, change)
    files = make_report(tmp_path)
    assert not files.problems
    with files.layout.leaderboard_csv.open(newline="") as f:
        board = {r["run_name"]: r for r in csv.DictReader(f)}
    assert len(board) == 1 + len(RECORD_DAMAGE) and board["a_Off"]["stars"] == "5"
    assert all("corrupt_result" in r["note"] for n, r in board.items() if n != "a_Off")
    with zipfile.ZipFile(files.layout.archive) as zf:
        assert {n.split("/")[0] for n in zf.namelist()} == {"a_Off", "manifest.json"}


@pytest.mark.parametrize("garbage", [b'{"run_id": ', b"\xff\xfe", b"[" * 100_000])
def test_a_record_that_is_not_json_is_a_corrupt_result(tmp_path, garbage):
    folder, _ = add_run(tmp_path, "b_Off")
    (folder / "run_record.json").write_bytes(garbage)
    (row,) = master_rows(tmp_path).values()
    assert row["run_name"] == "b_Off" and row["status"] == "corrupt_result"
    assert "run_record.json" in row["error_message"]


def test_from_dict_checks_every_type():
    good = RunRecord(
        run_id="i", name="n", model_id="m", model_class="A", task="text_gen",
        reasoning_state="Off", status="ok", gpu_uuids=("GPU-1",), attempts=2, exit_code=0,
        duration_s=3, overrides=("a=1",),
    ).to_dict()  # fmt: skip
    again = RunRecord.from_dict(good)
    assert again.gpu_uuids == ("GPU-1",) and again.duration_s == 3.0 and again.attempts == 2
    for change, reason in RECORD_DAMAGE:
        with pytest.raises(RecordError, match=reason):
            RunRecord.from_dict(change(dict(good)))


# --- 2. a report without its figures --------------------------------------------------------------
@pytest.mark.parametrize(
    "report",
    [
        {"status": "ok", "summary": {}, "energy": {}},
        {"schema_version": 2, "status": "ok", "summary": {}, "energy": {}},
        {"schema_version": 2, "status": "ok", "summary": [], "energy": "x"},
    ],
)
def test_a_report_without_its_figures_is_a_corrupt_result(tmp_path, report):
    folder, record = add_run(tmp_path, "b_Off")
    write_report(folder, report)
    (row,) = master_rows(tmp_path).values()
    assert row["status"] == "corrupt_result" and "benchmark_report.json" in row["error_message"]
    assert not is_complete(folder, record.run_id) and not holds_success(folder)
    assert make_report(tmp_path).layout.leaderboard_csv.is_file()


# --- 3. a garbage report in an ok run -------------------------------------------------------------
@pytest.mark.parametrize(
    "garbage",
    [b"\x00\xffnot json at all", b"[" * 100_000, b'{"a":' * 100_000, b"null", b"[]"],
    ids=["binary", "deep-list", "deep-object", "null", "list"],
)
def test_a_garbage_report_in_an_ok_run_is_not_complete(tmp_path, garbage):
    add_run(tmp_path, "a_Off", gpu="GPU one")
    folder, record = add_run(tmp_path, "b_Off", gpu="GPU two")
    (folder / "benchmark_report.json").write_bytes(garbage)
    rows = master_rows(tmp_path)
    bad = rows["b_Off"]
    assert bad["status"] == "corrupt_result" and bad["wh_per_1000_queries"] == ""
    assert "benchmark_report.json" in bad["error_message"]
    assert not is_complete(folder, record.run_id) and not holds_success(folder)
    files = make_report(tmp_path)
    with files.layout.leaderboard_csv.open(newline="") as f:
        board = {r["run_name"]: r for r in csv.DictReader(f)}
    assert board["b_Off"]["stars"] == "" and "corrupt_result" in board["b_Off"]["note"]
    with zipfile.ZipFile(files.layout.archive) as zf:
        assert not any(n.startswith("b_Off/") for n in zf.namelist())


# --- 4. garbage result files read by the report ---------------------------------------------------
GARBAGE = [
    b"\x00\xff\xfe garbage,\n1,2,3\nzz",
    b"t_s,power_w\n1,abc\n",
    b"t_s,power_w\n1,nan\n2,inf\n",
    b"only,a,header\n",
    b"t_s,device,power_w\n1,0\n",
    b"",
]


def test_garbage_result_files_cost_only_their_own_traces(tmp_path):
    add_run(tmp_path, "a_Off")
    for i, garbage in enumerate(GARBAGE):
        folder, _ = add_run(tmp_path, f"bad{i}_Off")
        (folder / "power_trace.csv").write_bytes(garbage)
        (folder / "per_prompt.csv").write_bytes(garbage)
    files = make_report(tmp_path)
    assert not files.problems
    page = files.layout.leaderboard_html.read_text()
    assert page.count("<figure") == 4 and page.count("<svg") >= 4 and "bad0_Off" in page
    assert files.layout.archive.is_file() and files.layout.leaderboard_csv.is_file()
    done = subprocess.run(
        [sys.executable, str(ROOT / "batch_runner.py"), "report", "--output-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr


# --- 5. text that matplotlib would read as a formula ----------------------------------------------
def test_a_name_matplotlib_would_parse_is_drawn_as_written(tmp_path):
    add_run(tmp_path, "a_Off", gpu="GPU one")
    add_run(tmp_path, "b_$x$_Off", gpu="GPU two", model_id="org/" + MATHTEXT)
    add_run(tmp_path, MATHTEXT, gpu="GPU three", model_id=MATHTEXT)
    files = make_report(tmp_path)
    assert len(files.labels) == 6  # every run is the best of its group: PNG and SVG each
    assert all(p.is_file() for p in files.labels)
    page = files.layout.leaderboard_html.read_text()
    assert page.count("<figure") == 4 and page.count("<svg") >= 4
    with zipfile.ZipFile(files.layout.archive) as zf:
        assert f"{MATHTEXT}/benchmark_report.json" in zf.namelist()


def test_a_label_that_fails_alone_is_skipped_with_a_warning(tmp_path, monkeypatch, caplog):
    import orchestrator.reports.build as build

    for name, gpu in (("a_Off", "GPU one"), ("b_Off", "GPU two"), ("c_Off", "GPU three")):
        add_run(tmp_path, name, gpu=gpu)
    real = build.draw_label

    def draw(r, layout):
        if r.row.get("run_name") == "b_Off":
            raise ValueError("cannot draw this one")
        return real(r, layout)

    monkeypatch.setattr(build, "draw_label", draw)
    with caplog.at_level(logging.WARNING):
        files = make_report(tmp_path)
    assert sorted(p.name for p in files.labels) == [
        "a_Off.png", "a_Off.svg", "c_Off.png", "c_Off.svg",
    ]  # fmt: skip
    assert any("b_Off" in m and "cannot draw" in m for m in caplog.messages), caplog.messages
    assert files.layout.leaderboard_html.is_file() and files.layout.leaderboard_csv.is_file()
    with zipfile.ZipFile(files.layout.archive) as zf:
        assert "b_Off/benchmark_report.json" in zf.namelist()
