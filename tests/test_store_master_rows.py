"""One run's master row, column by column, from a record and a report made by hand; and which
run folders an update of the master CSV reads again."""

from __future__ import annotations

import csv
import json
from dataclasses import replace

import pytest
from fakes import fake_report, write_report

from energy_bench import contract
from orchestrator.store import master
from orchestrator.store.master import COLUMNS, corrupt_row, rebuild_master, row_of, update_master
from orchestrator.store.paths import RECORD_FILE, OutputLayout
from orchestrator.store.records import RunRecord, save_record

RECORD = RunRecord(
    run_id="id-9", name="org_m_On", model_id="org/m", model_class="B", task="text_gen",
    reasoning_state="On", status="ok", model_name="./m", cause="ok", error_message="",
    runner="docker", executor="ray", host="gpu-7", node_id="ab12", attempt_nodes=("n1", "n2"),
    image="img:1", software_id="sw", gpu_uuids=("GPU-1", "GPU-2"), attempts=2, exit_code=0,
    started_at="2026-12-02T10:00:00", finished_at="2026-12-02T10:05:00", duration_s=300.12345,
    log_path="logs/org_m_On.log", reasoning_mismatch="", reasoning_note="state On by the table",
)  # fmt: skip


def report() -> dict:
    made = fake_report(energy_wh=2.0, ok_prompts=80, total_prompts=100, gpu="NVIDIA H200", cv=0.02)
    made["energy"]["gpus"] = [{"energy_j": 1234.56}, {"energy_j": 99.04}, "not a device"]
    made["energy"]["flags"]["recompiled"] = True
    made["provenance"] = {"device_names": ["NVIDIA H200", "NVIDIA H200"], "config_hash": "c0ffee"}
    made["reasoning"] = {"requested_control": "chat_template_kwarg", "note": "kwarg applied"}
    made["reasoning_control"] = "chat_template_kwarg"
    return made


def test_a_successful_run_s_row_holds_its_record_and_its_report_figures():
    done = report()
    summary, energy = done["summary"], done["energy"]
    assert row_of(RECORD, done) == {
        "model_name": "./m", "model_class": "B", "task": "text_gen", "reasoning_state": "On",
        "timestamp": "2026-12-02T10:05:00", "error_message": "", "run_id": "id-9",
        "run_name": "org_m_On", "status": "ok", "cause": "ok", "runner": "docker",
        "executor": "ray", "host": "gpu-7", "node_id": "ab12", "image": "img:1",
        "software_id": "sw", "gpu_uuids": "GPU-1 GPU-2", "attempts": 2,
        "attempt_nodes": "n1; n2", "run_wall_seconds": 300.123, "log_path": "logs/org_m_On.log",
        "reasoning_mismatch": "",
        **{k: summary[k] for k in contract.SUMMARY_KEYS},  # the benchmark's, not the record's
        **{k: energy[k] for k in contract.ENERGY_KEYS},
        "short_window": False, "counter_reset": False, "trace_mismatch": False,
        "foreign_process": False, "recompiled": True, "energy_source": "nvml",
        "warmup": "full pass", "gpu_name": "NVIDIA H200, NVIDIA H200", "config_hash": "c0ffee",
        "gpu_count": 2, "gpu_energy_j_each": "1234.6 99.0",
        "reasoning_control": "chat_template_kwarg",
        "reasoning_requested_control": "chat_template_kwarg",
        "reasoning_note": "state On by the table; kwarg applied",
        "generation_path": "compiled",
        "images": None, "images_per_second": None, "image_pipeline": None,
        "image_protocol": None,  # a text run's: empty
    }  # fmt: skip
    assert set(row_of(RECORD, done)) == set(COLUMNS)
    assert row_of(RECORD, done)["total_duration_seconds"] == 10.0  # the report's pass time


def test_a_failed_run_s_row_is_its_record_with_its_real_duration():
    failed = RunRecord(**{**RECORD.__dict__, "status": "failed", "finished_at": "",
                          "error_message": "timeout: 600 s", "model_name": ""})  # fmt: skip
    row = row_of(failed, None)
    assert (row["status"], row["error_message"], row["total_duration_seconds"]) == (
        "failed", "timeout: 600 s", 300.123,
    )  # fmt: skip
    assert row["timestamp"] == "2026-12-02T10:00:00"  # not finished: when it started
    assert row["model_name"] == "org/m"
    assert "wh_per_1000_queries" not in row


def test_odd_report_parts_become_empty_cells_not_errors():
    done = report()
    done["provenance"] = {"device_names": "NVIDIA H200", "config_hash": ["x"]}
    done["reasoning"] = "on"
    done["summary"]["warmup"] = {"passes": 1}
    done["energy"]["gpus"] = "two"
    row = row_of(RECORD, done)
    assert (row["gpu_name"], row["config_hash"], row["warmup"]) == ("NVIDIA H200", None, None)
    assert row["reasoning_requested_control"] is None
    assert row["reasoning_note"] == "state On by the table"
    assert "gpu_count" not in row and "gpu_energy_j_each" not in row
    done["provenance"] = "none"
    assert row_of(RECORD, done)["gpu_name"] == ""


def test_a_report_that_does_not_validate_makes_the_row_corrupt():
    done = report()
    del done["energy"]["gpu_energy_wh"]
    row = row_of(RECORD, done)
    assert (row["status"], row["cause"]) == ("corrupt_result", "corrupt_result")
    assert row["error_message"] == (
        f"corrupt_result: {contract.REPORT_FILE}: {contract.report_problem(done)}"
    )
    assert corrupt_row("x_On", "run_record.json", "bad") == {
        "run_name": "x_On", "status": "corrupt_result", "cause": "corrupt_result",
        "error_message": "corrupt_result: run_record.json: bad",
    }  # fmt: skip


def test_an_image_run_s_row_holds_its_images_and_protocol():
    image = RunRecord(**{**RECORD.__dict__, "task": "image_gen", "model_class": "",
                         "reasoning_state": ""})  # fmt: skip
    made = report()
    made["images"] = {
        "images": 8, "images_per_second": 0.1856, "pipeline": "FluxPipeline",
        "num_inference_steps": 30, "resolution": "1024x1024", "guidance_scale": 3.5,
        "classifier_free_guidance": False,
    }  # fmt: skip
    row = row_of(image, made)
    assert (row["images"], row["images_per_second"], row["image_pipeline"]) == (
        8,
        0.1856,
        "FluxPipeline",
    )
    assert row["image_protocol"] == "30 steps, 1024x1024, guidance 3.5"
    made["images"] |= {"pipeline": "HiDreamImagePipeline", "num_inference_steps": 50,
                       "resolution": "1024x768", "guidance_scale": 5.0,
                       "classifier_free_guidance": True}  # fmt: skip
    assert row_of(image, made)["image_protocol"] == "50 steps, 1024x768, guidance 5.0 (CFG)"
    made["images"] |= {"guidance_scale": None, "classifier_free_guidance": False}
    assert row_of(image, made)["image_protocol"] == "50 steps, 1024x768, guidance None"
    made["images"]["images"] = {"odd": 1}  # an odd part: an empty cell, not an error
    assert row_of(image, made)["images"] is None


def test_a_run_folder_has_a_row_once_its_record_is_final_and_only_a_success_reads_its_report(
    tmp_path, monkeypatch
):
    folder = tmp_path / RECORD.name
    folder.mkdir()
    assert master._row(folder) is None  # no record yet: not started
    write_report(folder, report())
    for status in ("running", "interrupted"):
        save_record(folder, replace(RECORD, status=status))
        assert master._row(folder) is None
    save_record(folder, RECORD)
    assert master._row(folder) == row_of(RECORD, report())
    failed = replace(RECORD, status="failed", cause="timeout", error_message="timeout: 600 s")
    save_record(folder, failed)
    assert master._row(folder) == row_of(failed, None)  # a failed run's report is not its figures
    monkeypatch.setattr(master, "load_report", lambda _: pytest.fail("a failed run's report read"))
    assert master._row(folder) == row_of(failed, None)


def test_an_unreadable_record_makes_a_corrupt_row_that_says_which_file_and_why(tmp_path):
    folder = tmp_path / "org_m_On"
    folder.mkdir()
    (folder / RECORD_FILE).write_text("{ not json")
    assert master._row(folder) == corrupt_row("org_m_On", RECORD_FILE, "unreadable, or not JSON")


def test_a_folder_that_breaks_its_reader_is_a_corrupt_row_and_a_warning(
    tmp_path, monkeypatch, caplog
):
    folder = tmp_path / RECORD.name
    folder.mkdir()
    save_record(folder, RECORD)

    def broken(_folder):
        raise RuntimeError("x" * 300)

    monkeypatch.setattr(master, "load_report", broken)
    with caplog.at_level("WARNING", logger=master.__name__):
        row = master._row(folder)
    error = repr(RuntimeError("x" * 300))
    assert row == corrupt_row(RECORD.name, "run folder", f"cannot be read ({error[:200]})")
    assert [r.getMessage() for r in caplog.records] == [
        f"{RECORD.name}: cannot make its master row: {error}"
    ]


def save_run(out, record, made):
    """A finished run's folder in the output folder ``out``: its record and its report."""
    folder = OutputLayout(out).run_dir(record.name)
    save_record(folder, record)
    write_report(folder, made)
    return folder


def energy_column(out, name):
    """The ``gpu_energy_wh`` cell of run ``name`` in the master CSV of ``out``."""
    rows = csv.DictReader(OutputLayout(out).master_csv.read_text().splitlines())
    return {row["run_name"]: row["gpu_energy_wh"] for row in rows}[name]


@pytest.mark.parametrize("name", ["", "..", "../elsewhere", "a/b"])
def test_an_update_naming_no_run_folder_rebuilds_from_every_folder(tmp_path, name):
    # The run changes behind the sweep's back: an update that reads only the named runs keeps
    # its cached row, a full rebuild reads it again.
    folder = save_run(tmp_path, RECORD, report())
    rebuild_master(tmp_path)
    assert energy_column(tmp_path, RECORD.name) == "2.0"
    write_report(folder, fake_report(energy_wh=7.5))
    update_master(tmp_path, [name])
    assert energy_column(tmp_path, RECORD.name) == "7.5"


def test_an_update_naming_a_run_that_has_no_folder_keeps_the_other_rows(tmp_path):
    save_run(tmp_path, RECORD, report())
    csv_path = rebuild_master(tmp_path)
    before = csv_path.read_text()
    assert update_master(tmp_path, ["org_never_started_Off"]) == csv_path
    assert csv_path.read_text() == before


def test_the_master_csv_has_plain_newlines_and_an_empty_cell_for_a_figure_that_is_not_a_number(
    tmp_path,
):
    image = replace(RECORD, name="org_img_", task="image_gen", model_class="", reasoning_state="")
    made = report()
    made["images"] = {"images": 8, "images_per_second": float("nan"), "pipeline": "FluxPipeline"}
    save_run(tmp_path, image, made)  # the report file holds NaN, as a JSON writer may
    text = rebuild_master(tmp_path).read_bytes().decode()
    assert "\r" not in text and text.count("\n") == 2
    (row,) = csv.DictReader(text.splitlines())
    cells = (row["images"], row["images_per_second"], row["image_pipeline"])
    assert cells == ("8", "", "FluxPipeline")


@pytest.mark.parametrize(
    "damage",
    [
        lambda stamp, values: [5, values],  # a stamp that is not a list
        lambda stamp, values: [stamp[:-1], values],  # one of another layout
        lambda stamp, values: [stamp, 5],  # values that are not a list
        lambda stamp, values: [stamp, values[:-1]],  # values of other columns
    ],
)
def test_an_update_rebuilds_when_a_cached_entry_has_the_wrong_shape(tmp_path, damage):
    folder = save_run(tmp_path, RECORD, report())
    other = replace(RECORD, name="org_n_On", run_id="id-10", model_id="org/n")
    save_run(tmp_path, other, report())
    layout = OutputLayout(tmp_path)
    rebuild_master(tmp_path)
    cache = json.loads(layout.master_cache.read_text())
    cache["runs"][RECORD.name] = damage(*cache["runs"][RECORD.name])
    layout.master_cache.write_text(json.dumps(cache))
    write_report(folder, fake_report(energy_wh=7.5))  # not named below: only a rebuild sees it
    update_master(tmp_path, [other.name])
    assert energy_column(tmp_path, RECORD.name) == "7.5"


def test_a_rebuild_reads_again_only_the_folders_whose_files_changed(tmp_path, monkeypatch):
    done = save_run(tmp_path, RECORD, report())
    failed = replace(RECORD, name="org_n_On", model_id="org/n", status="failed", cause="timeout")
    save_record(OutputLayout(tmp_path).run_dir(failed.name), failed)  # no report
    OutputLayout(tmp_path).run_dir("org_o_On").mkdir()  # not started: no record either
    rebuild_master(tmp_path)
    read = []
    real_row = master._row
    monkeypatch.setattr(master, "_row", lambda folder: read.append(folder.name) or real_row(folder))
    text = rebuild_master(tmp_path).read_text()
    assert read == []
    write_report(done, fake_report(energy_wh=7.5))
    assert rebuild_master(tmp_path).read_text() != text
    assert read == [RECORD.name]
