"""Pure logic of the host side: exit causes, redaction, tokens, plans, the master CSV, the lock."""

from __future__ import annotations

import contextlib
import csv
import errno
import io
from pathlib import Path

import pytest
from conftest import TINY_MODEL
from fakes import fake_report, write_report

from orchestrator.errors import ConfigError, RunnerError
from orchestrator.execution.execute import ExecOptions, skipped_record
from orchestrator.execution.runners.base import LogPump
from orchestrator.execution.spec import (
    Cause,
    Placement,
    RunOutcome,
    classify_exit,
    filesystem_cause,
)
from orchestrator.models.csv_reader import single_config
from orchestrator.planning.plan import PlanOptions, Serving, plan_runs
from orchestrator.secrets import HfToken, Redactor, find_hf_token
from orchestrator.store.lock import output_lock
from orchestrator.store.master import AI_ENERGY_SCORE_COLUMNS, rebuild_master
from orchestrator.store.paths import MASTER_FILE
from orchestrator.store.records import RunRecord, is_complete, save_record


@pytest.mark.parametrize(
    ("code", "tail", "oom", "cause"),
    [
        (0, "", False, Cause.OK),
        (2, "energy_bench: error: BenchConfigError: unknown key 'x'", False, Cause.CONFIG_ERROR),
        (7, "energy_bench: error: GatedModel: gated model a/b (HTTP 401/403)", False,
         Cause.GATED_MODEL),
        (8, "energy_bench: error: ModelNotFound: model a/b not found (HTTP 404)", False,
         Cause.MODEL_NOT_FOUND),
        (3, "energy_bench: error: ModelLoadError: cannot load a/b: OSError", False,
         Cause.MODEL_LOAD_ERROR),
        # The cause comes from the exit status, never guessed from the text of the message.
        (3, "energy_bench: error: ModelLoadError: weights say 403 not found gated", False,
         Cause.MODEL_LOAD_ERROR),
        (4, "energy_bench: error: OutOfMemory: CUDA out of memory", False, Cause.OUT_OF_MEMORY),
        (5, "energy_bench: error: BenchmarkAborted: 3 batches", False, Cause.ABORTED),
        (6, "energy_bench: error: EnergyUnavailable: NVML", False, Cause.NO_ENERGY_SOURCE),
        (130, "energy_bench: error: KeyboardInterrupt: ", False, Cause.INTERRUPTED),
        (137, "last words", False, Cause.KILLED),
        (137, "", True, Cause.OUT_OF_MEMORY),
        (1, "Traceback...\nValueError: boom", False, Cause.FAILED),
        (42, "something else", False, Cause.FAILED),
    ],
)  # fmt: skip
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


def options(**kw):
    return PlanOptions(**{"image": "img:1", "software_id": "image sha256:1", **kw})


def test_run_names_and_ids():
    high = single_config(
        "https://huggingface.co/openai/gpt-oss-20b", reasoning_state="On (High)", model_class="B"
    )
    (plan,) = plan_runs([high], options())
    assert plan.name == "openai_gpt-oss-20b_On_High"
    assert plan.run_id == plan_runs([high], options())[0].run_id
    assert "scenario.reasoning_params.reasoning_effort=high" in plan.overrides
    assert "scenario.generate_kwargs.max_new_tokens=8192" in plan.overrides
    off = single_config("Qwen/Qwen3-0.6B", reasoning_state="Off")
    (plan,) = plan_runs([off], options(num_prompts=7, extra_overrides=("a.b=1",)))
    assert plan.name == "Qwen_Qwen3-0.6B_Off"
    assert plan.overrides[-1] == "a.b=1" and "scenario.num_samples=7" in plan.overrides
    assert "scenario.reasoning=False" in plan.overrides
    assert "scenario.generate_kwargs.min_new_tokens=10" in plan.overrides
    assert plan.gpus_needed == 1
    assert "backend.num_gpus=1" in plan.overrides
    big = single_config("deepseek-ai/DeepSeek-R1", reasoning_state="On", model_class="C")
    (big_plan,) = plan_runs([big], options(class_c_gpus=4))
    assert big_plan.gpus_needed == 4 and "backend.num_gpus=4" in big_plan.overrides


def test_a_row_may_name_its_own_gpu_count(tmp_path):
    from orchestrator.models.csv_reader import read_models_csv

    csv_path = tmp_path / "m.csv"
    csv_path.write_text(
        ",Models to Add,Priority (1=hi),Class,Task,Reasoning State,Chat Template\n"
        ',org/big,1,C,text_gen,Off,"num_gpus: 3"\n,org/small,1,A,text_gen,Off,\n'
    )
    big, small = plan_runs(read_models_csv(csv_path), options(class_c_gpus=2))
    assert (big.gpus_needed, small.gpus_needed) == (3, 1)
    assert "backend.num_gpus=3" in big.overrides
    csv_path.write_text(csv_path.read_text().replace("num_gpus: 3", "num_gpus: 0"))
    with pytest.raises(ConfigError, match="num_gpus"):
        read_models_csv(csv_path)


def test_run_id_changes_with_what_changes_the_result(tmp_path):
    config = single_config("org/m", reasoning_state="Off")
    (base,) = plan_runs([config], options())
    prompts = tmp_path / "p.txt"
    prompts.write_text("one\n")
    with_file = plan_runs([config], options(prompts_file=prompts))[0].run_id
    prompts.write_text("two\n")  # the same path, other prompts
    assert plan_runs([config], options(prompts_file=prompts))[0].run_id != with_file
    changed = {
        "another image ID under the same tag": options(software_id="image sha256:2"),
        "a benchmark setting": options(extra_overrides=("scenario.batch_size=8",)),
        "the prompt count": options(num_prompts=5),
        "the GPU model": options(hardware="NVIDIA H100 80GB HBM3"),
    }
    for what, opts in changed.items():
        assert plan_runs([config], opts)[0].run_id != base.run_id, what
    other_class = single_config("org/m", reasoning_state="Off", model_class="B")
    assert plan_runs([other_class], options())[0].run_id != base.run_id  # rated in its class
    c_config = single_config("org/m", reasoning_state="Off", model_class="C")
    two, four = (plan_runs([c_config], options(class_c_gpus=n))[0] for n in (2, 4))
    assert two.run_id != four.run_id and two.name == four.name  # the GPU count
    # The same settings spelt in another order, or repeated, are the same run.
    a = plan_runs([config], options(extra_overrides=("x.a=1", "x.b=2")))[0]
    b = plan_runs([config], options(extra_overrides=("x.b=2", "x.a=0", "x.a=1")))[0]
    assert a.run_id == b.run_id
    # The tag alone no longer names the software: two tags of one image ID are one run.
    assert plan_runs([config], options(image="other:tag"))[0].run_id == base.run_id


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (("org/m", "text_gen", "Off"), ("org/m", "image_gen", "Off")),
        (("/a/tiny", "text_gen", "Off"), ("/b/tiny", "text_gen", "Off")),
        (("a/b_c", "text_gen", "On"), ("a_b/c", "text_gen", "On")),
        (("Org/Model", "text_gen", "On"), ("org/model", "text_gen", "On")),  # case-insensitive FS
    ],
)
def test_two_rows_never_share_a_run_folder(first, second, tmp_path):
    def config(model, task, state):
        if model.startswith("/"):
            model = str(tmp_path / model.lstrip("/"))
            Path(model).mkdir(parents=True)
        cls = "A" if task == "text_gen" else ""
        return single_config(model, reasoning_state=state, model_class=cls, task=task)

    configs = [config(*first), config(*second)]
    names = [p.name for p in plan_runs(configs, options())]
    assert len({n.casefold() for n in names}) == 2, names
    # Stable: the same rows get the same names, whatever their order.
    again = [p.name for p in plan_runs(configs[::-1], options())][::-1]
    assert again == names
    # A row alone keeps the plain name, as the AI Energy Score scripts write it.
    (alone,) = plan_runs(configs[:1], options())
    assert names[0].startswith(alone.name + "_")
    # A sweep that selects one of the two rows still names it among the whole CSV.
    (selected,) = plan_runs(configs[1:], options(), all_rows=configs)
    assert selected.name == names[1]


def test_a_run_never_writes_into_another_rows_folder(tmp_path):
    from orchestrator.execution.scheduler import triage
    from orchestrator.execution.slots import cpu_slots

    mine, other = (single_config(m, reasoning_state="Off") for m in ("a/b_c", "a_b/c"))
    (plan,) = plan_runs([mine], options())
    (theirs,) = plan_runs([other], options())
    assert plan.name == theirs.name  # planned alone, as `run` does
    _run(tmp_path, theirs.name)  # the folder holds org/<name>'s result
    todo, done, skipped = triage([plan], tmp_path, force=True, slots=cpu_slots(1))
    assert not todo and not done
    assert "holds the results of another row" in skipped[0][1]
    from orchestrator.execution.runners.local import LocalRunner
    from orchestrator.execution.scheduler import run_sweep
    from orchestrator.store.records import load_record

    result = run_sweep(
        [plan], runner=LocalRunner(), options=ExecOptions(out_dir=tmp_path, image="i"),
        slots=cpu_slots(1), progress=_Quiet(), force=True,
    )  # fmt: skip
    assert result.records[0].status == "skipped"
    assert load_record(tmp_path / "individual_runs" / theirs.name).model_id == "org/" + theirs.name


@pytest.mark.parametrize(("state", "shown"), [("On", "On"), ("", "no state")])
def test_a_folder_of_another_row_is_refused_with_that_row_s_model_task_and_state(
    tmp_path, state, shown
):
    from orchestrator.execution.scheduler import other_row

    (plan,) = plan_runs([single_config("org/mine", reasoning_state="Off")], options())
    folder = tmp_path / plan.name
    save_record(
        folder,
        RunRecord(
            run_id="other-id", name=plan.name, model_id="org/other", model_class="A",
            task="text_gen", reasoning_state=state, status="ok",
        ),
    )  # fmt: skip
    assert other_row(folder, plan) == (
        f"its folder {plan.name} holds the results of another row "
        f"(org/other, text_gen, {shown}); use another --output-dir"
    )


class _Quiet:
    def start(self, total): ...

    def started(self, slot, name): ...

    def finished(self, slot, name, status): ...

    def stop(self): ...


def test_image_rows_are_planned_as_image_runs_on_one_gpu(tmp_path):
    image = single_config(
        "black-forest-labs/FLUX.1-dev", reasoning_state="", model_class="", task="image_gen"
    )
    (plan,) = plan_runs([image], options(class_c_gpus=4))
    assert plan.skip_reason == "" and plan.is_image and plan.gpus_needed == 1
    assert plan.config_name == "image_generation"
    assert plan.overrides == (
        "backend.model=black-forest-labs/FLUX.1-dev",
        "backend.pipeline=FluxPipeline",
    )  # no reasoning, no token budget
    served = plan_runs([image], options(serving=Serving("http://127.0.0.1:8000/v1")))[0]
    assert served.skip_reason.startswith("a served run measures text generation only")


def _run(out, name, *, status="ok", energy_wh=0.5, ok_prompts=100, duration=12.5, **figures):
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
        write_report(folder, fake_report(energy_wh=energy_wh, ok_prompts=ok_prompts, **figures))
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


def test_master_takes_every_figure_from_the_report_as_written(tmp_path):
    # Figures that no host formula would give: the host must copy, never recompute.
    _run(
        tmp_path, "a_Off", energy_wh=0.5, wh_per_1000_queries=123.0, tokens_per_joule=4.5,
        avg_energy_per_prompt_wh=0.25, co2_emissions_g=9.0,
    )  # fmt: skip
    rebuild_master(tmp_path)
    _, (row,) = read_master(tmp_path)
    assert row["wh_per_1000_queries"] == "123.0" and row["tokens_per_joule"] == "4.5"
    assert row["avg_energy_per_prompt_wh"] == "0.25" and row["co2_emissions_g"] == "9.0"
    assert row["throughput_tokens_per_second"] == "300.0"  # prompt + completion tokens / s
    assert row["output_tokens_per_second"] == "100.0"
    assert row["total_prompts"] == "100"  # integers stay integers
    assert (row["generation_path"], row["recompiled"]) == ("compiled", "False")
    _run(tmp_path, "b_Off", status="failed")  # a row without figures beside it
    rebuild_master(tmp_path)
    assert read_master(tmp_path)[1][0]["successful_prompts"] == "100"


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda r: r.update(schema_version=1), "schema_version 1"),
        (lambda r: r["summary"].pop("successful_prompts"), "summary.successful_prompts is missing"),
        (lambda r: r["energy"].update(gpu_energy_wh="abc"), "energy.gpu_energy_wh is not a number"),
        (lambda r: r.update(energy={}), "energy.gpu_energy_wh is missing"),
        (lambda r: r["energy"].update(flags={}), "energy.flags"),
        (lambda r: r["energy"].update(gpu_energy_wh=float("nan")), "not a finite"),
        (lambda r: r["energy"].update(wh_per_1000_queries=-1.0), "not a finite non-negative"),
        (lambda r: r["summary"].update(total_prompts=2.5), "not a whole number"),
        (lambda r: r.clear(), "schema_version None"),
    ],
)
def test_a_report_that_does_not_validate_is_a_corrupt_result(tmp_path, damage, reason):
    record = _run(tmp_path, "a_Off")
    folder = tmp_path / "individual_runs" / "a_Off"
    report = fake_report()
    damage(report)
    write_report(folder, report)
    rebuild_master(tmp_path)
    _, (row,) = read_master(tmp_path)
    assert row["status"] == "corrupt_result" and reason in row["error_message"], row
    assert row["gpu_energy_wh"] == ""  # no figure from a report that cannot be read
    assert not is_complete(folder, record.run_id)  # so the next sweep reruns it


def test_garbage_in_a_report_file_is_a_corrupt_result(tmp_path):
    _run(tmp_path, "a_Off")
    (tmp_path / "individual_runs" / "a_Off" / "benchmark_report.json").write_text("{not json")
    rebuild_master(tmp_path)
    _, (row,) = read_master(tmp_path)
    assert row["status"] == "corrupt_result" and "not a JSON object" in row["error_message"]


def test_master_has_one_row_per_run_after_reruns(tmp_path):
    _run(tmp_path, "a_Off", status="failed")
    rebuild_master(tmp_path)
    _run(tmp_path, "a_Off", energy_wh=0.7)
    rebuild_master(tmp_path)
    _, rows = read_master(tmp_path)
    assert len(rows) == 1 and rows[0]["status"] == "ok"


def test_rebuild_reads_again_a_report_changed_underneath(tmp_path):
    _run(tmp_path, "a_Off", wh_per_1000_queries=1.0)
    _run(tmp_path, "b_Off", wh_per_1000_queries=2.0)
    rebuild_master(tmp_path)
    write_report(tmp_path / "individual_runs" / "a_Off", fake_report(wh_per_1000_queries=7.25))
    rebuild_master(tmp_path)
    _, (a, b) = read_master(tmp_path)
    assert (a["wh_per_1000_queries"], b["wh_per_1000_queries"]) == ("7.25", "2.0")
    # A damaged cache is ignored, never trusted.
    (tmp_path / ".master_rows.json").write_text('{"columns": 1, "runs": []}')
    rebuild_master(tmp_path)
    assert read_master(tmp_path)[1][0]["wh_per_1000_queries"] == "7.25"


def test_is_complete_needs_same_id_ok_status_and_report(tmp_path):
    record = _run(tmp_path, "a_Off")
    folder = tmp_path / "individual_runs" / "a_Off"
    assert is_complete(folder, record.run_id)
    assert not is_complete(folder, "other-id")
    (folder / "benchmark_report.json").unlink()
    assert not is_complete(folder, record.run_id)


def test_skipped_record_carries_the_reason():
    image = single_config("org/img", reasoning_state="", model_class="", task="image_gen")
    (plan,) = plan_runs([image], options(serving=Serving("http://127.0.0.1:8000/v1")))
    record = skipped_record(plan, ExecOptions(out_dir=Path("."), image="i"), plan.skip_reason)
    assert record.status == "skipped" and "text generation only" in record.error_message


class _Finishing:
    """A runner named as a real one whose runs end as the benchmark's do: a report, exit 0."""

    def __init__(self, name: str) -> None:
        self.name = name

    def run(self, spec, *, token=None):
        from orchestrator.execution.spec import RunOutcome

        write_report(spec.results_dir, fake_report())
        return RunOutcome(Cause.OK, 0, 1.0)

    def software_id(self, image):
        return self.name

    def cancel(self): ...

    def remove_leftovers(self, out_dir):
        return 0


@pytest.mark.parametrize(("runner", "image"), [("local", ""), ("docker", "ai_energy_score:9")])
def test_only_a_run_in_a_container_names_an_image(tmp_path, runner, image):
    from orchestrator.execution.execute import execute
    from orchestrator.store.records import load_record

    (plan,) = plan_runs([single_config("org/m")], options())
    options_ = ExecOptions(out_dir=tmp_path, image="ai_energy_score:9")
    record = execute(plan, runner=_Finishing(runner), options=options_)
    assert record.image == image
    assert load_record(tmp_path / "individual_runs" / plan.name).image == image
    rebuild_master(tmp_path)
    (row,) = read_master(tmp_path)[1]
    assert (row["runner"], row["image"]) == (runner, image)


def test_a_local_model_is_shown_as_the_csv_names_it(tmp_path):
    from orchestrator.execution.execute import execute
    from orchestrator.models.csv_reader import read_models_csv
    from orchestrator.reports.build import make_report

    (tmp_path / "models" / "tiny").mkdir(parents=True)
    csv_path = tmp_path / "models" / "m.csv"
    csv_path.write_text(
        ",Models to Add,Priority (1=hi),Class,Task,Reasoning State,Chat Template\n"
        ",./tiny,1,A,text_gen,Off,\n,tiny ,1,A,text_gen,On,\n"
    )
    plans = plan_runs(read_models_csv(csv_path), options())
    folder = str((tmp_path / "models" / "tiny").resolve())
    assert [p.setting("backend.model") for p in plans] == [folder, folder]  # what runs
    assert [p.name for p in plans] == ["tiny_Off", "tiny_On"]
    out = tmp_path / "out"
    for plan in plans:
        record = execute(
            plan, runner=_Finishing("local"), options=ExecOptions(out_dir=out, image="i")
        )
        assert record.model_id == folder
    rebuild_master(out)
    shown = {"tiny_Off": "./tiny", "tiny_On": "tiny"}
    assert {r["run_name"]: r["model_name"] for r in read_master(out)[1]} == shown
    files = make_report(out, labels="all")
    with files.layout.leaderboard_csv.open(newline="") as f:
        assert {r["run_name"]: r["model_name"] for r in csv.DictReader(f)} == shown
    labels = [p.read_text() for p in files.labels if p.suffix == ".svg"]
    assert len(labels) == 2 and not any(folder in svg for svg in labels)
    assert all("<!-- ./tiny -->" in svg or "<!-- tiny -->" in svg for svg in labels)
    one = single_config("examples/tiny-model")  # `run --model`
    assert (one.model_name, one.model_id) == ("examples/tiny-model", str(TINY_MODEL.resolve()))


def test_second_lock_on_a_folder_is_refused(tmp_path):
    with (
        output_lock(tmp_path),
        pytest.raises(RunnerError, match="in use by another sweep"),
        output_lock(tmp_path),
    ):
        pass
    with output_lock(tmp_path):  # released after use
        pass


@pytest.mark.parametrize("ends", ["normally", "on an error"])
def test_a_lock_leaves_no_file_behind(tmp_path, ends):
    from orchestrator.store.lock import report_lock
    from orchestrator.store.paths import OutputLayout, ReportLayout

    out_lock, report = OutputLayout(tmp_path).lock, ReportLayout(tmp_path / "report")
    with (
        pytest.raises(ValueError) if ends == "on an error" else contextlib.nullcontext(),
        output_lock(tmp_path),
        report_lock(report),
    ):
        assert out_lock.is_file() and report.lock.is_file()
        with pytest.raises(RunnerError, match="in use by another sweep"), output_lock(tmp_path):
            pass
        assert out_lock.is_file()  # the refused locker leaves the holder's file alone
        with pytest.raises(RunnerError, match="in use by another sweep"), output_lock(tmp_path):
            pass  # and the holder still holds it
        if ends == "on an error":
            raise ValueError("the sweep broke")
    assert not out_lock.exists() and not report.lock.exists()


def test_a_holder_whose_file_was_deleted_leaves_a_newer_holders_file_alone(tmp_path):
    from orchestrator.store.paths import OutputLayout

    path = OutputLayout(tmp_path).lock
    with output_lock(tmp_path):
        path.unlink()  # deleted by hand while held: the folder looks free
        newer = contextlib.ExitStack()
        newer.enter_context(output_lock(tmp_path))  # a second sweep takes a new file
    with newer:  # the first has let go: the second's file is still there, still held
        assert path.is_file()
        with pytest.raises(RunnerError, match="in use by another sweep"), output_lock(tmp_path):
            pass
    assert not path.exists()


def test_a_lock_file_replaced_before_it_was_locked_is_not_held(tmp_path, monkeypatch):
    """The holder unlinks its file as it lets go, and a third locker creates a new one: a locker
    that opened the old file in between must not hold it beside the third (two writers)."""
    import fcntl
    import os

    from orchestrator.store import lock
    from orchestrator.store.paths import OutputLayout

    path = OutputLayout(tmp_path).lock
    real_flock, third = fcntl.flock, []

    def flock(fd, operation):
        if not third:  # between this locker's open and its flock
            path.unlink()
            third.append(os.open(path, os.O_RDWR | os.O_CREAT, 0o644))
            real_flock(third[0], fcntl.LOCK_EX | fcntl.LOCK_NB)
        return real_flock(fd, operation)

    monkeypatch.setattr(lock.fcntl, "flock", flock)
    try:
        with pytest.raises(RunnerError, match="in use by another sweep"), output_lock(tmp_path):
            pass
        assert path.is_file()  # still the third's
    finally:
        os.close(third[0])


def test_console_keeps_its_level_when_a_debug_file_is_added(tmp_path, capsys):
    import logging

    from orchestrator.commands.logs import add_debug_log, setup_logging

    root = logging.getLogger()
    saved = (root.level, list(root.handlers))
    root.handlers = []
    try:
        setup_logging(verbose=False, quiet=False)
        add_debug_log(tmp_path)
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


def _spec(tmp_path, **kw):
    from orchestrator.execution.spec import RunSpec

    return RunSpec(
        run_id="r1",
        overrides=("backend.model=org/m",),
        output_dir=tmp_path,
        results_dir=tmp_path / "r",
        log_path=tmp_path / "r.log",
        **kw,
    )


def test_local_runs_see_only_their_gpus_and_cores(tmp_path):
    from orchestrator.execution.runners.local import LocalRunner

    env = LocalRunner()._environment(
        _spec(tmp_path, gpu_uuids=("GPU-a", "GPU-b"), cpus=(4, 5, 6)), token=None
    )
    assert env["CUDA_VISIBLE_DEVICES"] == "GPU-a,GPU-b"
    assert env["AI_ENERGY_SCORE_CPUS"] == "4,5,6"
    assert "AI_ENERGY_SCORE_CPUS" not in LocalRunner()._environment(_spec(tmp_path), token=None)


def test_a_local_run_never_inherits_a_secret_of_its_host(tmp_path, monkeypatch):
    """On a Ray node the runs inherit the node's environment, which may hold the cluster's token."""
    from orchestrator.execution.runners.local import LocalRunner

    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "RAY_AUTH_TOKEN"):
        monkeypatch.setenv(name, "secret-of-the-host")
    env = LocalRunner()._environment(_spec(tmp_path), token=None)
    assert "secret-of-the-host" not in env.values()
    assert LocalRunner()._environment(_spec(tmp_path), token="t")["HF_TOKEN"] == "t"


def test_containers_are_held_to_their_gpus_and_cores(tmp_path):
    from types import SimpleNamespace

    from orchestrator.execution.runners.docker import DockerRunner

    runner = DockerRunner(client=SimpleNamespace(), user="1000:1000")
    kwargs = runner.container_kwargs(
        _spec(tmp_path, gpu_uuids=("GPU-a", "GPU-b"), cpus=(0, 1)), token=None
    )
    (request,) = kwargs["device_requests"]
    assert request["DeviceIDs"] == ["GPU-a", "GPU-b"]
    assert kwargs["cpuset_cpus"] == "0,1" and kwargs["environment"]["AI_ENERGY_SCORE_CPUS"] == "0,1"
    assert kwargs["labels"]["ai_energy_score.output_dir"] == str(tmp_path)


@pytest.mark.parametrize(
    "bad", [["--max-parallel", "0"], ["--max-parallel", "-1"], ["--class-c-gpus", "0"]]
)
def test_counts_that_cannot_work_stop_before_anything_runs(tmp_path, capsys, bad):
    from orchestrator.commands.cli import main

    csv_path = "examples/demo_models.csv"
    assert main(["--csv", csv_path, "--output-dir", str(tmp_path), "--dry-run", *bad]) == 2
    assert "must be at least 1" in capsys.readouterr().err
    assert not (tmp_path / "individual_runs").exists()


@pytest.mark.parametrize(
    ("command", "bad", "says"),
    [
        ([], ["-n", "0"], "at least one prompt"),
        ([], ["--timeout", "-1"], "more than 0 seconds"),
        (["run", "--model", "examples/tiny-model"], ["-n", "0"], "at least one prompt"),
        (["run", "--model", "examples/tiny-model"], ["--timeout", "0"], "more than 0 seconds"),
    ],
)
def test_common_values_that_cannot_work_stop_sweeps_and_runs(tmp_path, capsys, command, bad, says):
    from orchestrator.commands.cli import main

    extra = ["--dry-run", "--csv", "examples/demo_models.csv"] if not command else []
    assert main([*command, "--output-dir", str(tmp_path), *extra, *bad]) == 2
    assert says in capsys.readouterr().err


@pytest.mark.parametrize(
    ("words", "says"),
    [
        (["backend.bogus=1"], "unknown config key 'backend.bogus'"),
        (["scenario.batch_size=abc"], "scenario.batch_size"),
        (["foo"], "override 'foo' is not of the form key=value"),
    ],
)
def test_the_dry_run_refuses_what_the_sweep_would_refuse(tmp_path, capsys, words, says):
    from orchestrator.commands.cli import main

    argv = ["--csv", "examples/demo_models.csv", "--output-dir", str(tmp_path), "--runner", "local"]
    assert main([*argv, "--dry-run", *words]) == 2
    err = capsys.readouterr().err
    assert says in err and "Traceback" not in err
    assert not (tmp_path / "individual_runs").exists()


def test_a_single_run_is_refused_while_a_sweep_holds_the_folder(tmp_path, capsys):
    from orchestrator.commands.cli import main

    with output_lock(tmp_path):
        code = main(["run", "--model", "examples/tiny-model", "--output-dir", str(tmp_path),
                     "--runner", "local", "-n", "1"])  # fmt: skip
    assert code == 2 and "in use by another sweep or run" in capsys.readouterr().err
    assert not (tmp_path / "individual_runs").exists()


def test_two_reports_never_write_one_folder_at_once(tmp_path):
    from orchestrator.reports.build import make_report
    from orchestrator.store.lock import report_lock
    from orchestrator.store.paths import ReportLayout

    _run(tmp_path, "a_Off")
    with (
        report_lock(ReportLayout(tmp_path / "report")),
        pytest.raises(RunnerError, match="in use by another report"),
    ):
        make_report(tmp_path)
    assert make_report(tmp_path).layout.leaderboard_csv.is_file()  # free again afterwards


def test_text_a_spreadsheet_would_run_is_defused_in_every_csv(tmp_path):
    from energy_bench.contract import csv_cell

    assert csv_cell('=HYPERLINK("http://x")') == '\'=HYPERLINK("http://x")'
    assert csv_cell("@SUM(A1)") == "'@SUM(A1)" and csv_cell("+1+cmd") == "'+1+cmd"
    assert csv_cell("-0.25") == "-0.25" and csv_cell(-0.25) == -0.25  # numbers stay numbers
    record = _run(tmp_path, "a_Off", energy_above_idle_wh=-0.1)
    save_record(
        tmp_path / "individual_runs" / "a_Off",
        RunRecord(**{**record.to_dict(), "image": "=HYPERLINK(\"http://evil\")", "gpu_uuids": (),
                     "overrides": ()}),
    )  # fmt: skip
    rebuild_master(tmp_path)
    text = (tmp_path / MASTER_FILE).read_text()
    assert "'=HYPERLINK" in text and ",=HYPERLINK" not in text
    _, (row,) = read_master(tmp_path)
    assert row["energy_above_idle_wh"] == "-0.1"


def test_the_archive_takes_no_file_from_outside_the_output_folder(tmp_path):
    import os
    import zipfile

    from orchestrator.reports.build import make_report

    secret = tmp_path / "secret.txt"
    secret.write_text("outside-the-output-folder")
    out = tmp_path / "out"
    record = _run(out, "a_Off")
    folder = out / "individual_runs" / "a_Off"
    save_record(folder, RunRecord(**{**record.to_dict(), "log_path": f"../{secret.name}",
                                     "gpu_uuids": (), "overrides": ()}))  # fmt: skip
    os.symlink(secret, folder / "per_prompt.csv")  # a result file that leads out of the folder
    files = make_report(out)
    with zipfile.ZipFile(files.layout.archive) as zf:
        names = zf.namelist()
        assert not any(b"outside-the-output-folder" in zf.read(n) for n in names)
    assert "a_Off/benchmark_report.json" in names and "a_Off/per_prompt.csv" not in names


def _top_level_help(capsys) -> str:
    from orchestrator.commands.cli import main

    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    return capsys.readouterr().out


def test_the_top_level_help_lists_every_subcommand_with_a_line_each(capsys, monkeypatch):
    import re

    from orchestrator.commands.cli import COMMANDS

    monkeypatch.setenv("COLUMNS", "100")
    text = _top_level_help(capsys)
    for name in COMMANDS:
        assert re.search(rf"^ +{re.escape(name)} {{2,}}\w", text, re.M), (name, text)


def test_the_prompt_count_help_says_what_a_run_sends_without_it(capsys, monkeypatch):
    from energy_bench.config import load_config
    from energy_bench.workload.prompts import BUNDLED

    monkeypatch.setenv("COLUMNS", "100")
    text = " ".join(_top_level_help(capsys).split())
    default = load_config("text_generation", ["backend.model=x"]).scenario.num_samples
    bundled = sum(1 for line in BUNDLED.read_text().splitlines() if line.strip())
    help_n = text[text.index("-n NUM_PROMPTS, --num-prompts NUM_PROMPTS") :]
    help_n = help_n[: help_n.index(" --prompts-file")]
    assert f"default {default}" in help_n and f"all {bundled}" in help_n, help_n
    assert "every prompt of the dataset" not in help_n


@pytest.mark.parametrize(
    ("code", "tail", "oom", "outcome"),
    [
        (0, "energy_bench: error: X: y", False, RunOutcome(Cause.OK, 0, 0.0)),
        (137, "", False, RunOutcome(Cause.KILLED, 137, 0.0, "killed (SIGKILL, exit 137)")),
        (137, "loading\n  weights  \n\n", False,
         RunOutcome(Cause.KILLED, 137, 0.0, "killed (SIGKILL, exit 137); last output: weights")),
        (137, "x", True,
         RunOutcome(Cause.OUT_OF_MEMORY, 137, 0.0, "killed by the kernel: out of host memory")),
        (1, "", False, RunOutcome(Cause.FAILED, 1, 0.0, "exit status 1")),
        (99, "a\n" + "b" * 400 + "\n", False, RunOutcome(Cause.FAILED, 99, 0.0, "b" * 300)),
        (1, "energy_bench: error: OSError: [Errno 28] No space left on device", False,
         RunOutcome(Cause.DISK_FULL, 1, 0.0, "OSError: [Errno 28] No space left on device")),
        (1, "energy_bench: error: OSError: [Errno 122] Disk quota exceeded", False,
         RunOutcome(Cause.DISK_FULL, 1, 0.0, "OSError: [Errno 122] Disk quota exceeded")),
        (1, "PermissionError: [Errno 13] Permission denied: '/out'", False,
         RunOutcome(Cause.PERMISSION_DENIED, 1, 0.0,
                    "PermissionError: [Errno 13] Permission denied: '/out'")),
        (1, "[Errno 1] Operation not permitted", False,
         RunOutcome(Cause.PERMISSION_DENIED, 1, 0.0, "[Errno 1] Operation not permitted")),
        (1, "[Errno 30] Read-only file system", False,
         RunOutcome(Cause.PERMISSION_DENIED, 1, 0.0, "[Errno 30] Read-only file system")),
        (1, "[Errno 2] No such file or directory", False,
         RunOutcome(Cause.FAILED, 1, 0.0, "[Errno 2] No such file or directory")),
        # An errno in the message of a run that failed for a known reason changes nothing.
        (4, "energy_bench: error: OutOfMemory: [Errno 28] while saving", False,
         RunOutcome(Cause.OUT_OF_MEMORY, 4, 0.0, "OutOfMemory: [Errno 28] while saving")),
    ],
)  # fmt: skip
def test_an_exit_is_classified_with_its_whole_message(code, tail, oom, outcome):
    assert classify_exit(code, tail, oom_killed=oom) == outcome


def test_a_file_system_error_names_its_cause():
    assert filesystem_cause(OSError(errno.ENOSPC, "full")) is Cause.DISK_FULL
    assert filesystem_cause(OSError(errno.EACCES, "no")) is Cause.PERMISSION_DENIED
    assert filesystem_cause(OSError(errno.EIO, "io")) is Cause.RUNNER_ERROR
    assert filesystem_cause(OSError("no errno")) is Cause.RUNNER_ERROR


def test_a_placement_reads_as_its_machine_and_node():
    assert str(Placement("gpu-7")) == "gpu-7"
    assert str(Placement("gpu-7", "ab12")) == "gpu-7 (Ray node ab12)"
    assert str(Placement("", "ab12")) == "unknown host (Ray node ab12)"
    assert str(Placement("")) == "unknown node"
    assert RunOutcome(Cause.OK, 0, 1.0).ok and not RunOutcome(Cause.KILLED, 137, 1.0).ok
