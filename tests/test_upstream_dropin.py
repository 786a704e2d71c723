"""Habits of AI Energy Score users keep working: their API, names, files and single-run keys."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import pytest
from conftest import ROOT, TINY_MODEL, TINY_PIPELINE

from model_config_parser import CsvNotFound, ModelConfigParser
from orchestrator.commands.run import reasoning_from_overrides
from orchestrator.errors import ConfigError, RunnerError
from orchestrator.models.config import ReasoningState, Task
from orchestrator.models.csv_reader import read_models_csv, single_config
from orchestrator.models.reasoning import load_formats
from orchestrator.planning.identity import run_names
from orchestrator.planning.plan import PlanOptions, plan_runs

CONFIGS = ModelConfigParser(ROOT / "models.csv").parse()
HEADER = ",Models to Add,Priority (1=hi),Class,Task,Reasoning State,Chat Template\n"
OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def row(model_id: str, state: str):
    (found,) = [c for c in CONFIGS if c.model_id == model_id and c.reasoning_state == state]
    return found


# --- the parser's API ------------------------------------------------------------------------


def test_a_missing_csv_fails_at_construction_as_upstream(tmp_path):
    with pytest.raises(FileNotFoundError) as caught:
        ModelConfigParser(tmp_path / "nope.csv")
    assert isinstance(caught.value, CsvNotFound) and isinstance(caught.value, ConfigError)
    assert str(caught.value) == f"{tmp_path / 'nope.csv'}: file not found"


@pytest.mark.parametrize(
    ("model_id", "state", "params", "prefix"),
    [
        ("Qwen/Qwen3-0.6B", "On", {"enable_thinking": True}, ""),
        ("Qwen/Qwen3-0.6B", "Off", {"enable_thinking": False}, ""),
        ("openai/gpt-oss-20b", "On (Low)", {"reasoning_effort": "low"}, ""),
        ("tencent/Hunyuan-1.8B-Instruct", "On", {"reasoning": True}, "/think"),
        ("tencent/Hunyuan-1.8B-Instruct", "Off", {"reasoning": False}, "/no_think"),
        ("HuggingFaceTB/SmolLM3-3B", "Off", {"reasoning": False}, ""),
    ],
)
def test_reasoning_params_and_prefixes_as_the_parser_gives_them(model_id, state, params, prefix):
    config = row(model_id, state)
    assert config.reasoning_params == params
    assert config.prompt_prefix == prefix and config.prompt_suffix == ""


def test_image_rows_have_no_reasoning_params():
    config = row("black-forest-labs/FLUX.1-dev", "")
    assert config.reasoning_params == {} and config.prompt_prefix == ""


def test_positional_filters_take_upstream_order():
    # (configs, model_name, model_class, task, reasoning_state)
    selected = ModelConfigParser.filter_configs(CONFIGS, "gpt-oss", None, "text_gen", "High")
    assert {(c.model_id, c.reasoning_state.value) for c in selected} == {
        ("openai/gpt-oss-20b", "On (High)"),
        ("openai/gpt-oss-120b", "On (High)"),
    }


# --- folder names ----------------------------------------------------------------------------


def test_run_folders_are_named_as_upstream_names_them():
    names = dict(zip(map(id, CONFIGS), run_names(CONFIGS), strict=True))
    assert names[id(row("openai/gpt-oss-20b", "On (High)"))] == "openai_gpt-oss-20b_On_High"
    assert names[id(row("Qwen/Qwen2.5-Coder-14B", "Off (N/A)"))] == (
        "Qwen_Qwen2.5-Coder-14B_Off_N_A"
    )
    assert names[id(row("Qwen/Qwen3-0.6B", "Off"))] == "Qwen_Qwen3-0.6B_Off"


# --- reasoning rows that ran the wrong mode ----------------------------------------------------


@pytest.mark.parametrize("model_id", ["zai-org/GLM-4.6", "zai-org/GLM-4.5", "zai-org/GLM-4.5-Air"])
def test_glm_off_switches_thinking_off(model_id):
    d = row(model_id, "Off (N/A)").reasoning
    assert d.enabled is False and d.control == "chat_template_kwarg"
    assert d.chat_template_kwargs == {"enable_thinking": False} and not d.mismatch


@pytest.mark.parametrize(
    ("model_id", "state", "runs"),
    [
        ("google/gemma-3-12b-it", "On", False),
        ("Qwen/Qwen3-Next-80B-A3B-Instruct", "On", False),
        ("mistralai/Magistral-Small-2507", "Off (N/A)", True),
        ("MiniMaxAI/MiniMax-M1-80k", "Off (N/A)", True),
    ],
)
def test_a_mode_the_model_lacks_runs_as_it_can_and_says_so(tmp_path, model_id, state, runs):
    config = row(model_id, state)
    d = config.reasoning
    assert d.enabled is runs and d.control == "model_default" and state in d.mismatch
    # The budget stays the row's: the run is comparable with the other rows of its state.
    assert config.max_new_tokens == (8192 if state == "On" else 10)
    (plan,) = plan_runs([config], PlanOptions(image="i", software_id="s"))
    assert plan.setting("scenario.reasoning") == str(runs)
    listing = _list(tmp_path, "--model-name", model_id)
    assert "only mode" in listing


def test_nemotron_rows_trust_remote_code_and_the_run_records_it():
    for state in ("On", "Off"):
        config = row("nvidia/Llama-3_3-Nemotron-Super-49B-v1_5", state)
        assert config.trust_remote_code
        (plan,) = plan_runs([config], PlanOptions(image="i", software_id="s"))
        assert plan.setting("backend.trust_remote_code") == "True"
    plain = row("Qwen/Qwen3-0.6B", "On")
    (plan,) = plan_runs([plain], PlanOptions(image="i", software_id="s"))
    assert not plain.trust_remote_code and plan.setting("backend.trust_remote_code") is None


def test_trust_remote_code_must_be_a_boolean(tmp_path):
    path = tmp_path / "models.csv"
    path.write_text(HEADER + ',org/m,1,A,text_gen,On,"trust_remote_code: maybe"\n')
    with pytest.raises(ConfigError, match="trust_remote_code must be true or false") as caught:
        read_models_csv(path)
    assert caught.value.line == 2


# --- the reasoning-formats file ------------------------------------------------------------------


def _list(tmp_path, *args: str) -> str:
    out = tmp_path / "listing.json"
    code = subprocess.run(
        [sys.executable, str(ROOT / "model_config_parser.py"), str(ROOT / "models.csv"), *args],
        capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"}, check=False,
    )  # fmt: skip
    out.write_text(code.stdout)
    assert code.returncode == 0, code.stderr
    return code.stdout


def test_a_user_formats_file_wins_over_the_shipped_one(tmp_path):
    extra = tmp_path / "formats.yaml"
    extra.write_text(
        "families:\n"
        "  - name: my-gemma\n"
        "    patterns: ['gemma-3-12b']\n"
        "    on: {control: system_prompt}\n"
        "    off: system_prompt\n"
    )
    formats = load_formats([extra])
    d = formats.resolve("google/gemma-3-12b-it", ReasoningState.ON, Task.TEXT_GEN)
    assert d.control == "system_prompt" and d.system_prompt == "/think" and not d.mismatch
    other = formats.resolve("google/gemma-3-1b-it", ReasoningState.ON, Task.TEXT_GEN)
    assert other.mismatch  # the shipped family still serves the others
    parser = ModelConfigParser(ROOT / "models.csv", reasoning_formats=[extra])
    chosen = parser.filter_configs(parser.parse(), "gemma-3-12b-it")[0]
    assert chosen.reasoning.control == "system_prompt"
    listing = json.loads(
        _list(
            tmp_path, "--model-name", "gemma-3-12b-it", "--json", "--reasoning-formats", str(extra)
        )
    )
    assert listing[0]["reasoning"]["system_prompt"] == "/think"
    config = single_config("google/gemma-3-12b-it", reasoning_state="On", formats=formats)
    assert config.reasoning.control == "system_prompt"


BAD_FORMATS = [
    ("not yaml", "families: [\n", "not YAML"),
    ("no families", "models: {}\n", "top-level 'families:'"),
    ("bad control", "families:\n - {name: x, patterns: [x], on: think, off: think}\n", "control"),
    (
        "bad pattern",
        "families:\n - {name: x, patterns: ['('], on: harmony, off: harmony}\n",
        "pattern",
    ),
    ("missing off", "families:\n - {name: x, patterns: [x], on: harmony}\n", "missing 'off'"),
    (
        "effort off harmony",
        "families:\n - {name: x, patterns: [x], on: {control: system_prompt, effort: high},"
        " off: system_prompt}\n",
        "effort",
    ),
    (
        "bad runs",
        "families:\n - {name: x, patterns: [x], on: {control: model_default, runs: maybe},"
        " off: model_default}\n",
        "runs must be on or off",
    ),
    ("unknown key", "families:\n - {name: x, regex: [x], on: harmony, off: harmony}\n", "regex"),
]


@pytest.mark.parametrize(("name", "text", "message"), BAD_FORMATS, ids=[b[0] for b in BAD_FORMATS])
def test_a_bad_formats_file_is_refused_naming_the_file(tmp_path, name, text, message):
    path = tmp_path / "formats.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as caught:
        load_formats([path])
    assert str(caught.value).startswith(str(path))
    done = subprocess.run(
        [sys.executable, str(ROOT / "model_config_parser.py"), str(ROOT / "models.csv"),
         "--reasoning-formats", str(path)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 2 and str(path) in done.stderr


# --- the single-run command's reasoning keys ---------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "state"),
    [
        (
            ["scenario.reasoning=True", "scenario.reasoning_params.reasoning_effort=high"],
            "On (High)",
        ),
        (["scenario.reasoning=True"], "On"),
        (["scenario.reasoning=False"], "Off"),
        (["scenario.reasoning_params.enable_thinking=true"], "On"),
        (["scenario.reasoning_params.reasoning=false"], "Off"),
        # What their batch runner sends for Qwen3 and Phi Off rows: the specific key decides.
        (["scenario.reasoning=True", "scenario.reasoning_params.enable_thinking=false"], "Off"),
        (["scenario.reasoning=True", "scenario.reasoning_params.reasoning=false"], "Off"),
        (["backend.no_weights=True"], "Off"),
    ],
)
def test_upstream_reasoning_keys_choose_the_reasoning_state(overrides, state):
    chosen, rest = reasoning_from_overrides([*overrides, "scenario.seed=1"], None)
    assert chosen == state
    # The chat template switch goes on to the benchmark too, which writes it as asked.
    kept = [o for o in overrides if "reasoning" not in o or "enable_thinking" in o]
    assert rest == (*kept, "scenario.seed=1")


@pytest.mark.parametrize(
    ("overrides", "given", "state"),
    [
        (["scenario.reasoning=True"], "On (High)", "On (High)"),
        (["scenario.reasoning=False"], "Off (N/A)", "Off (N/A)"),
        (["scenario.reasoning_params.reasoning_effort=low"], "on", "On (Low)"),
    ],
)
def test_reasoning_keys_that_agree_with_the_state_option_keep_its_detail(overrides, given, state):
    assert reasoning_from_overrides(overrides, given)[0] == state


def test_reasoning_keys_that_disagree_are_refused():
    with pytest.raises(RunnerError, match="disagree"):
        reasoning_from_overrides(
            [
                "scenario.reasoning_params.reasoning=true",
                "scenario.reasoning_params.enable_thinking=false",
            ],
            None,
        )
    with pytest.raises(RunnerError, match="disagree"):
        reasoning_from_overrides(["scenario.reasoning=True"], "Off")
    with pytest.raises(RunnerError, match="disagree"):
        reasoning_from_overrides(["scenario.reasoning_params.reasoning_effort=low"], "On (High)")
    with pytest.raises(RunnerError, match="expected true or false"):
        reasoning_from_overrides(["scenario.reasoning=maybe"], None)


def test_a_sweep_refuses_reasoning_overrides_that_would_flip_every_row(tmp_path):
    done = subprocess.run(
        [sys.executable, str(ROOT / "batch_runner.py"), "--dry-run", "--runner", "local",
         "--output-dir", str(tmp_path), "scenario.reasoning=True"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert "each row's Reasoning State decides" in done.stderr


@pytest.mark.parametrize(
    ("model_id", "family"),
    [
        ("deepseek-ai/DeepSeek-R1-0528-Qwen3-8B", "think_prefix"),
        ("Qwen/Qwen3-30B-A3B-Instruct-2507", "model_default"),
        ("Qwen/Qwen3-Coder-30B-A3B-Instruct", "model_default"),
        ("google/gemma-3-27b-it-qat-q4_0-unquantized", "model_default"),
        ("zai-org/glm-4.5-air", "chat_template_kwarg"),
    ],
)
def test_families_match_their_relatives(model_id, family):
    assert single_config(model_id, reasoning_state="On").reasoning.control == family


def test_user_patterns_keep_their_case_sensitive_escapes(tmp_path):
    extra = tmp_path / "formats.yaml"
    extra.write_text(
        "families:\n - {name: digits, patterns: ['^[^\\D/]+/m$'], on: system_prompt,"
        " off: system_prompt}\n"
    )
    formats = load_formats([extra])
    assert formats.family_of("123/M").name == "digits"  # case ignored, \\D kept as not-a-digit
    assert formats.family_of("abc/m").name != "digits"


def test_gpt_oss_with_upstream_keys_gets_harmony_at_that_effort():
    state, _ = reasoning_from_overrides(
        ["scenario.reasoning=True", "scenario.reasoning_params.reasoning_effort=medium"], None
    )
    config = single_config("openai/gpt-oss-20b", reasoning_state=state)
    assert config.reasoning.control == "harmony" and config.reasoning.effort == "medium"
    assert (config.min_new_tokens, config.max_new_tokens) == (1, 8192)


@pytest.mark.slow
def test_run_docker_takes_num_samples_as_upstream(tmp_path):
    out = tmp_path / "out"
    done = subprocess.run(
        [
            "bash", str(ROOT / "container" / "run_docker.sh"),
            "--num-samples", "2", "--config-name", "text_generation",
            f"backend.model={TINY_MODEL}", "--runner", "local", "--output-dir", str(out),
            "backend.torch_dtype=float32", "scenario.dataset_name=bundled",
            "scenario.warmup_pass=False", "energy.idle_seconds=0",
        ],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHON": sys.executable, **OFFLINE},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(
        (out / "individual_runs" / "tiny-model_Off" / "benchmark_report.json").read_text()
    )
    assert report["summary"]["total_prompts"] == 2
    (log,) = (out / "logs").glob("tiny-model_Off_*.log")
    assert len(log.stem.removeprefix("tiny-model_Off_")) == len("YYYYmmdd_HHMMSS")


@pytest.mark.slow
def test_run_docker_takes_the_image_config_as_an_image_run(tmp_path):
    out = tmp_path / "out"
    command = [
        "bash", str(ROOT / "container" / "run_docker.sh"), "-n", "2",
        "--config-name", "image_generation", f"backend.model={TINY_PIPELINE}",
        "--runner", "local", "--output-dir", str(out), "scenario.height=64", "scenario.width=64",
    ]  # fmt: skip
    env = {**os.environ, "PYTHON": sys.executable, **OFFLINE}
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(
        (out / "individual_runs" / "tiny-image-pipeline_NA" / "benchmark_report.json").read_text()
    )
    assert report["images"]["images"] == 2 and report["config_name"] == "image_generation"
    command[command.index("image_generation")] = "speech_generation"
    refused = subprocess.run(command, capture_output=True, text=True, timeout=60, env=env)
    assert refused.returncode == 2
    assert "expected text_generation or image_generation" in refused.stderr


def test_a_mismatch_reaches_the_record_the_master_csv_and_the_leaderboard(tmp_path):
    from dataclasses import replace

    from fakes import fake_report, write_report

    from orchestrator.execution.execute import ExecOptions, skipped_record
    from orchestrator.reports.leaderboard import _cells
    from orchestrator.reports.ratings import Rated
    from orchestrator.store.master import rebuild_master
    from orchestrator.store.records import save_record

    configs = [
        row("mistralai/Magistral-Small-2507", "Off (N/A)"),
        row("Qwen/Qwen3-0.6B", "Off"),
        single_config("org/plain", reasoning_state="On (High)"),
    ]
    unread = "the chat template does not read enable_thinking"
    for plan in plan_runs(configs, PlanOptions(image="i", software_id="s")):
        record = skipped_record(plan, ExecOptions(out_dir=tmp_path, image="i"), "")
        folder = tmp_path / "individual_runs" / plan.name
        save_record(folder, replace(record, status="ok", cause="", error_message=""))
        report = fake_report()
        if plan.config.model_id == "Qwen/Qwen3-0.6B":  # a template without the switch
            report["reasoning"] = {"requested_control": "chat_template_kwarg", "note": unread}
        write_report(folder, report)
    with rebuild_master(tmp_path).open(newline="") as f:
        rows = {r["model_name"]: r for r in csv.DictReader(f)}
    magistral, qwen, plain = (rows[c.model_name] for c in configs)
    assert "Off (N/A)" in magistral["reasoning_mismatch"]
    assert "always reasons" in magistral["reasoning_mismatch"]
    assert qwen["reasoning_mismatch"] == "" and qwen["reasoning_note"] == unread
    assert "no effort levels: 'high' is not applied" in plain["reasoning_note"]
    note = _cells(Rated(magistral, 3, "B"))["note"]
    assert note.startswith("reasoning: the CSV asks Off (N/A)")
    note = _cells(Rated(qwen, 3, "A"))["note"]
    assert note == f"reasoning not applied (chat_template_kwarg): {unread}"
    assert _cells(Rated(plain, 3, "A"))["note"] == ""
