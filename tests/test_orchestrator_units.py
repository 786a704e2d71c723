"""Pure logic of the host side: exit causes, redaction, tokens, plans, the master CSV, the lock."""

from __future__ import annotations

import csv
import io
import json

import pytest

from orchestrator.errors import RunnerError
from orchestrator.execute import skipped_record
from orchestrator.lock import output_lock
from orchestrator.models_csv import single_config
from orchestrator.plan import PlanOptions, plan_runs, run_name
from orchestrator.records import RunRecord, is_complete, save_record
from orchestrator.results import AI_ENERGY_SCORE_COLUMNS, MASTER_FILE, rebuild_master
from orchestrator.runner import Cause, LogPump, classify_exit
from orchestrator.secrets import HfToken, Redactor, find_hf_token


@pytest.mark.parametrize(
    ("code", "tail", "oom", "cause"),
    [
        (0, "", False, Cause.OK),
        (
            2,
            "energy_bench: error: BenchConfigError: unknown config key 'x'",
            False,
            Cause.CONFIG_ERROR,
        ),
        (
            3,
            "energy_bench: error: ModelLoadError: gated model a/b (HTTP 401/403): ...",
            False,
            Cause.GATED_MODEL,
        ),
        (
            3,
            "energy_bench: error: ModelLoadError: model a/b not found (HTTP 404)",
            False,
            Cause.MODEL_NOT_FOUND,
        ),
        (
            3,
            "energy_bench: error: ModelLoadError: cannot load a/b: OSError",
            False,
            Cause.MODEL_LOAD_ERROR,
        ),
        (4, "energy_bench: error: OutOfMemory: CUDA out of memory", False, Cause.OUT_OF_MEMORY),
        (5, "energy_bench: error: BenchmarkAborted: 3 batches", False, Cause.ABORTED),
        (137, "last words", False, Cause.KILLED),
        (137, "", True, Cause.OUT_OF_MEMORY),
        (1, "Traceback...\nValueError: boom", False, Cause.FAILED),
    ],
)
def test_exit_causes(code, tail, oom, cause):
    outcome = classify_exit(code, tail, oom_killed=oom)
    assert outcome.cause is cause
    if code not in (0, 137):
        assert outcome.message
    if cause is Cause.KILLED:
        assert "137" in outcome.message and "last words" in outcome.message


def test_config_error_message_is_the_benchmarks_line():
    outcome = classify_exit(2, "noise\nenergy_bench: error: BenchConfigError: unknown key 'z'\n")
    assert outcome.message == "BenchConfigError: unknown key 'z'"


def test_log_pump_redacts_a_token_split_across_reads():
    sink = io.BytesIO()
    pump = LogPump(sink, Redactor("hf_abcdefSECRET"))
    pump.feed(b"token=hf_abc")
    pump.feed(b"defSECRET ok\nsecond line hf_abcdefSECRET")
    pump.close()
    text = sink.getvalue().decode()
    assert "SECRET" not in text
    assert text == "token=*** ok\nsecond line ***\n"
    assert pump.tail() == text


def test_token_lookup_order(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hub"))  # no token file
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    assert find_hf_token(tmp_path / ".env") is None
    (tmp_path / ".env").write_text("HF_TOKEN=hf_from_dotenv\n")
    found = find_hf_token(tmp_path / ".env")
    assert found is not None and found.value == "hf_from_dotenv" and ".env" in found.source
    monkeypatch.setenv("HF_TOKEN", "hf_from_env")
    assert find_hf_token(tmp_path / ".env").value == "hf_from_env"
    assert "hf_from_env" not in repr(find_hf_token()) and "hf_from_env" not in str(find_hf_token())


def test_token_repr_never_shows_the_value():
    assert "hf_x" not in repr(HfToken("hf_xyz123", "$HF_TOKEN"))


def test_run_names_and_ids():
    options = PlanOptions(image="img:1")
    high = single_config(
        "https://huggingface.co/openai/gpt-oss-20b", reasoning_state="On (High)", model_class="B"
    )
    assert run_name(high) == "openai_gpt-oss-20b_On_High"
    (plan,) = plan_runs([high], options)
    assert plan.run_id == plan_runs([high], options)[0].run_id
    assert plan.run_id != plan_runs([high], PlanOptions(image="img:2"))[0].run_id
    assert plan.run_id != plan_runs([high], PlanOptions(image="img:1", num_prompts=5))[0].run_id
    assert "scenario.reasoning_params.reasoning_effort=high" in plan.overrides
    assert "scenario.generate_kwargs.max_new_tokens=8192" in plan.overrides
    off = single_config("Qwen/Qwen3-0.6B", reasoning_state="Off")
    (plan,) = plan_runs([off], PlanOptions(image="i", num_prompts=7, extra_overrides=("a.b=1",)))
    assert plan.overrides[-1] == "a.b=1" and "scenario.num_samples=7" in plan.overrides
    assert "scenario.reasoning=False" in plan.overrides
    assert "scenario.generate_kwargs.min_new_tokens=10" in plan.overrides
    assert plan.gpus_needed == 1
    big = single_config("deepseek-ai/DeepSeek-R1", reasoning_state="On", model_class="C")
    assert plan_runs([big], PlanOptions(image="i", class_c_gpus=4))[0].gpus_needed == 4


def test_image_rows_are_planned_as_skipped(tmp_path):
    image = single_config(
        "black-forest-labs/FLUX.1-dev", reasoning_state="", model_class="", task="image_gen"
    )
    (plan,) = plan_runs([image], PlanOptions(image="i"))
    assert "not supported" in plan.skip_reason


def _run(out, name, *, status="ok", energy_wh=0.5, ok_prompts=100, duration=12.5):
    folder = out / "individual_runs" / name
    record = RunRecord(
        run_id=name + "-id",
        name=name,
        model_id=f"org/{name}",
        model_class="A",
        task="text_gen",
        reasoning_state="Off",
        status=status,
        error_message="" if status == "ok" else "out_of_memory: CUDA OOM",
        duration_s=duration,
        finished_at="2026-11-29T00:00:00+00:00",
    )
    save_record(folder, record)
    if status == "ok":
        report = {
            "status": "ok",
            "summary": {
                "total_prompts": 100, "successful_prompts": ok_prompts,
                "failed_prompts": 100 - ok_prompts, "total_duration_seconds": 10.0,
                "avg_total_time": 0.1, "avg_time_to_first_token": 0.01, "total_tokens": 3000,
                "total_prompt_tokens": 2000, "total_completion_tokens": 1000,
                "throughput_tokens_per_second": 100.0, "repeats": 3, "batch_size": 1,
                "warmup": "full pass",
            },
            "energy": {
                "gpu_energy_wh": energy_wh, "co2_emissions_g": 0.2, "energy_source": "nvml",
                "energy_above_idle_wh": 0.1, "idle_power_w": 80.0, "average_power_w": 180.0,
                "repeat_energy_cv": 0.01,
                "flags": {"short_window": False, "counter_reset": False, "trace_mismatch": False},
            },
            "provenance": {"device_names": ["NVIDIA H200"], "config_hash": "abc"},
            "reasoning_control": "none",
            "reasoning": {"requested_control": "none"},
        }  # fmt: skip
        (folder / "benchmark_report.json").write_text(json.dumps(report))
    return record


def read_master(out):
    with (out / MASTER_FILE).open(newline="") as f:
        reader = csv.DictReader(f)
        return reader.fieldnames, list(reader)


def test_master_csv_contract(tmp_path):
    _run(tmp_path, "a_Off", energy_wh=0.5, ok_prompts=100)
    _run(tmp_path, "b_Off", status="failed", duration=42.0)
    _run(tmp_path, "c_Off", energy_wh=1.2, ok_prompts=80)
    header, rows = read_master(tmp_path) if rebuild_master(tmp_path) else (None, None)
    assert header[:21] == [
        "model_name", "model_class", "task", "reasoning_state", "total_prompts",
        "successful_prompts", "failed_prompts", "total_duration_seconds", "avg_total_time",
        "avg_time_to_first_token", "total_tokens", "total_prompt_tokens",
        "total_completion_tokens", "throughput_tokens_per_second", "gpu_energy_wh",
        "wh_per_1000_queries", "co2_emissions_g", "tokens_per_joule", "avg_energy_per_prompt_wh",
        "timestamp", "error_message",
    ]  # fmt: skip
    assert tuple(header[:21]) == AI_ENERGY_SCORE_COLUMNS
    assert {"run_id", "energy_above_idle_wh", "repeat_energy_cv", "reasoning_control"} <= set(
        header
    )
    a, b, c = rows
    assert float(a["wh_per_1000_queries"]) == pytest.approx(0.5 / 100 * 1000)
    assert float(a["tokens_per_joule"]) == pytest.approx(3000 / (0.5 * 3600))
    assert float(a["avg_energy_per_prompt_wh"]) == pytest.approx(0.005)
    assert float(c["wh_per_1000_queries"]) == pytest.approx(1.2 / 80 * 1000)
    assert b["status"] == "failed" and b["error_message"] == "out_of_memory: CUDA OOM"
    assert float(b["total_duration_seconds"]) == 42.0 and b["gpu_energy_wh"] == ""


def test_master_has_one_row_per_run_after_reruns(tmp_path):
    _run(tmp_path, "a_Off", status="failed")
    rebuild_master(tmp_path)
    _run(tmp_path, "a_Off", energy_wh=0.7)
    rebuild_master(tmp_path)
    _, rows = read_master(tmp_path)
    assert len(rows) == 1 and rows[0]["status"] == "ok"


def test_is_complete_needs_same_id_ok_status_and_report(tmp_path):
    record = _run(tmp_path, "a_Off")
    folder = tmp_path / "individual_runs" / "a_Off"
    assert is_complete(folder, record.run_id)
    assert not is_complete(folder, "other-id")
    (folder / "benchmark_report.json").unlink()
    assert not is_complete(folder, record.run_id)


def test_skipped_record_carries_the_reason():
    image = single_config("org/img", reasoning_state="", model_class="", task="image_gen")
    (plan,) = plan_runs([image], PlanOptions(image="i"))
    record = skipped_record(plan, plan.skip_reason)
    assert record.status == "skipped" and "not supported" in record.error_message


def test_second_lock_on_a_folder_is_refused(tmp_path):
    with (
        output_lock(tmp_path),
        pytest.raises(RunnerError, match="in use by another sweep"),
        output_lock(tmp_path),
    ):
        pass
    with output_lock(tmp_path):  # released after use
        pass


def test_console_keeps_its_level_when_a_debug_file_is_added(tmp_path, capsys):
    import logging

    from orchestrator.cli import setup_logging
    from orchestrator.sweep_cli import _debug_log

    root = logging.getLogger()
    saved = (root.level, list(root.handlers))
    root.handlers = []
    try:
        setup_logging(verbose=False, quiet=False)
        _debug_log(tmp_path)
        logging.getLogger("some.library").debug("chatter-at-debug")
        logging.getLogger("orchestrator").info("progress-at-info")
        err = capsys.readouterr().err
        assert "progress-at-info" in err and "chatter-at-debug" not in err
        (log_file,) = (tmp_path / "logs").glob("sweep_*.log")
        assert "chatter-at-debug" in log_file.read_text()
    finally:
        for handler in root.handlers:
            handler.close()
        root.setLevel(saved[0])
        root.handlers = saved[1]
