"""One run's master row, column by column, from a record and a report made by hand."""

from __future__ import annotations

from dataclasses import replace

import pytest
from fakes import fake_report, write_report

from energy_bench import contract
from orchestrator.store import master
from orchestrator.store.master import COLUMNS, corrupt_row, row_of
from orchestrator.store.paths import RECORD_FILE
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
