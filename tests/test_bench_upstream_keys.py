"""Override keys of the AI Energy Score scripts: each is taken with a meaning, or refused clearly.

The report also carries the names upstream's result readers look for, beside the project's own.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from contextlib import redirect_stdout
from unittest import mock

import pytest
import torch
from conftest import TINY_MODEL
from fakes import FakeBackend

from energy_bench import contract
from energy_bench.backends import placement
from energy_bench.backends.pytorch import PyTorchBackend
from energy_bench.benchmark import run_benchmark
from energy_bench.cli import check_overrides
from energy_bench.config import CONFIG_DIR, BackendConfig, load_config
from energy_bench.energy.sources import EstimateSource
from energy_bench.errors import BenchConfigError
from energy_bench.results.files import write_report_files
from energy_bench.results.report import build_report
from energy_bench.workload import rendering
from energy_bench.workload.prompts import load_prompts

CONTEXT = 2048  # max_position_embeddings of examples/tiny-model
TINY = [f"backend.model={TINY_MODEL}", "backend.torch_dtype=float32"]
LONG_PROMPT = "Glaciers are rivers of ice that flow downhill under their own weight. " * 20


def cfg(*overrides: str, model: str = "org/m"):
    return load_config("text_generation", [f"backend.model={model}", *overrides])


def refused(*overrides: str) -> str:
    with pytest.raises(BenchConfigError) as caught:
        cfg(*overrides)
    return str(caught.value)


# --- backend.type, backend.task, backend.device_map -----------------------------------------
def test_backend_type_takes_pytorch_or_vllm_with_its_endpoint():
    assert cfg("backend.type=pytorch").backend.type == "pytorch"
    served = cfg("backend.type=vllm", "backend.endpoint=http://127.0.0.1:8000/v1").backend
    assert (served.type, served.endpoint) == ("vllm", "http://127.0.0.1:8000/v1")
    message = refused("backend.type=optimum")
    assert "backend.type='optimum'" in message and "expected one of pytorch, vllm" in message
    assert "needs the server's base URL" in refused("backend.type=vllm")
    assert "needs the server's base URL" in refused("backend.type=vllm", "backend.endpoint=host:1")
    leaky = refused("backend.type=vllm", "backend.endpoint=http://me:s3cret@host:1/v1")
    assert "no user, password or query" in leaky and "s3cret" not in leaky


@pytest.mark.parametrize("task", ["text-generation", "text_generation"])
def test_backend_task_takes_both_spellings_of_text_generation(task):
    assert cfg(f"backend.task={task}").raw["backend"]["task"] == task


def test_backend_task_refuses_another_task():
    message = refused("backend.task=image-to-text")
    assert "backend.task='image-to-text'" in message and "text-generation" in message


@pytest.mark.parametrize("value", ["auto", "null"])
def test_device_map_takes_auto_or_null(value):
    assert cfg(f"backend.device_map={value}").backend.num_gpus == 1


def test_device_map_refuses_a_map_the_benchmark_does_not_make():
    message = refused("backend.device_map=balanced")
    assert "backend.device_map='balanced'" in message
    assert "places the model itself over backend.num_gpus GPUs" in message


# --- backend.device_ids ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "ids"),
    [
        ("null", None),
        ("1", (1,)),
        ("0,1", (0, 1)),
        ('"0, 1, 2"', (0, 1, 2)),
        ("[3, 0]", (3, 0)),
    ],
)
def test_device_ids_in_every_upstream_spelling(value, ids):
    assert cfg(f"backend.device_ids={value}").backend.device_ids == ids


@pytest.mark.parametrize("value", ["-1", "a,b", "0,0", "1.5", "True", "", "[0, -2]", "0,,1"])
def test_device_ids_that_are_not_gpu_indices_are_refused(value):
    assert "backend.device_ids=" in refused(f"backend.device_ids={value}")


def devices(*, visible: int, num_gpus: int, ids=None, device="auto"):
    """The devices a backend picks on a host with ``visible`` GPUs (none: the CPU)."""
    cfg = BackendConfig(
        model="m",
        processor=None,
        torch_dtype="bfloat16",
        no_weights=True,
        device=device,
        num_gpus=num_gpus,
        trust_remote_code=False,
        generation="auto",
        device_ids=ids,
    )
    with (
        mock.patch.object(torch.cuda, "is_available", lambda: visible > 0),
        mock.patch.object(torch.cuda, "device_count", lambda: visible),
    ):
        return [str(d) for d in placement.devices_for(cfg)]


def test_device_ids_pick_the_run_gpus_in_the_order_given_among_the_visible():
    assert devices(visible=4, num_gpus=2, ids=(3, 1, 0)) == ["cuda:3", "cuda:1"]
    assert devices(visible=2, num_gpus=2, ids=(5, 1, 0)) == ["cuda:1", "cuda:0"]  # 5: not here
    assert devices(visible=4, num_gpus=2) == ["cuda:0", "cuda:1"]  # null: the first ones


def test_device_ids_with_too_few_visible_gpus_are_refused():
    with pytest.raises(BenchConfigError) as caught:
        devices(visible=2, num_gpus=2, ids=(1, 6))
    message = str(caught.value)
    assert "backend.device_ids=1,6" in message and "backend.num_gpus=2" in message
    assert "2 visible GPU(s)" in message


def test_device_ids_have_no_effect_on_the_cpu():
    assert devices(visible=0, num_gpus=1, ids=(3,)) == ["cpu"]
    assert devices(visible=4, num_gpus=1, ids=(3,), device="cpu") == ["cpu"]


# --- scenario.input_shapes.batch_size ----------------------------------------------------------
def test_input_shapes_batch_size_sets_the_batch_size():
    assert cfg("scenario.input_shapes.batch_size=4").scenario.batch_size == 4
    both = cfg("scenario.batch_size=4", "scenario.input_shapes.batch_size=4")
    assert both.scenario.batch_size == 4
    assert cfg().scenario.batch_size == 1


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["scenario.batch_size=2", "scenario.input_shapes.batch_size=4"],
            "scenario.input_shapes.batch_size=4 disagrees with scenario.batch_size=2",
        ),
        (["scenario.input_shapes.batch_size=0"], "must be at least 1"),
        (["scenario.input_shapes.batch_size=2.5"], "expected a whole number"),
    ],
)
def test_bad_input_shapes_batch_size_is_refused(overrides, message):
    assert message in refused(*overrides)


# --- scenario.reasoning_params.reasoning and .enable_thinking ------------------------------
def test_reasoning_params_reasoning_is_scenario_reasoning():
    assert cfg("scenario.reasoning_params.reasoning=True").scenario.reasoning.enabled is True
    agreed = cfg("scenario.reasoning=False", "scenario.reasoning_params.reasoning=False")
    assert agreed.scenario.reasoning.enabled is False
    # The more specific key decides (their runner sends scenario.reasoning=True beside it).
    specific = cfg("scenario.reasoning=True", "scenario.reasoning_params.reasoning=False")
    assert specific.scenario.reasoning.enabled is False
    assert "expected true, false or null" in refused("scenario.reasoning_params.reasoning=maybe")


def test_enable_thinking_without_a_control_is_the_chat_template_kwarg():
    directive = cfg("scenario.reasoning_params.enable_thinking=False").scenario.reasoning
    assert (directive.enabled, directive.control) == (False, "chat_template_kwarg")
    agreed = cfg("scenario.reasoning=True", "scenario.reasoning_params.enable_thinking=True")
    assert agreed.scenario.reasoning.control == "chat_template_kwarg"
    # What their batch runner sends for a Qwen3 Off row: the switch decides.
    off = cfg("scenario.reasoning=True", "scenario.reasoning_params.enable_thinking=False")
    assert (off.scenario.reasoning.enabled, off.scenario.reasoning.control) == (
        False,
        "chat_template_kwarg",
    )
    default = cfg(
        "scenario.reasoning_params.control=model_default",
        "scenario.reasoning_params.enable_thinking=True",
    ).scenario.reasoning
    assert (default.enabled, default.control) == (True, "chat_template_kwarg")


def test_enable_thinking_beside_another_control_sets_the_state_that_control_applies(tokenizer):
    kept = cfg(
        "scenario.reasoning_params.control=system_prompt",
        "scenario.reasoning_params.enable_thinking=False",
    ).scenario.reasoning
    assert (kept.enabled, kept.control) == (False, "system_prompt")
    applied = rendering.plan(tokenizer, kept)
    assert applied.system_prompt == "/no_think" and applied.template_kwargs == {}
    assert "enable_thinking=False was not written: control system_prompt applies" in applied.note


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            [
                "scenario.reasoning_params.reasoning=True",
                "scenario.reasoning_params.enable_thinking=False",
            ],
            "enable_thinking=False disagrees with scenario.reasoning_params.reasoning=True",
        ),
        (["scenario.reasoning_params.enable_thinking=maybe"], "expected true, false or null"),
    ],
)
def test_bad_enable_thinking_is_refused(overrides, message):
    assert message in refused(*overrides)


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(TINY_MODEL)


def test_enable_thinking_false_reaches_the_tiny_models_template(tokenizer):
    directive = cfg("scenario.reasoning_params.enable_thinking=False").scenario.reasoning
    applied = rendering.plan(tokenizer, directive)
    assert applied.applied_control == "chat_template_kwarg" and applied.note == ""
    assert applied.template_kwargs == {"enable_thinking": False}
    text = rendering.render(tokenizer, "What is a glacier?", applied)
    assert text.endswith("<|assistant|><think>\n\n</think>\n\n")


# --- notes where nothing is applied ------------------------------------------------------------
def test_a_state_and_an_effort_without_a_control_are_noted(tokenizer):
    directive = cfg(
        "scenario.reasoning=True", "scenario.reasoning_params.reasoning_effort=high"
    ).scenario.reasoning
    applied = rendering.plan(tokenizer, directive)
    assert applied.applied_control == "none"
    assert "scenario.reasoning=True without scenario.reasoning_params.control" in applied.note
    assert "nothing was applied to the prompt" in applied.note
    assert "reasoning_effort=high was not applied" in applied.note


def test_an_effort_beside_another_control_is_noted_and_the_control_still_applied(tokenizer):
    directive = cfg(
        "scenario.reasoning=False",
        "scenario.reasoning_params.control=chat_template_kwarg",
        "scenario.reasoning_params.reasoning_effort=low",
    ).scenario.reasoning
    applied = rendering.plan(tokenizer, directive)
    assert applied.applied_control == "chat_template_kwarg"
    assert applied.note.startswith("scenario.reasoning_params.reasoning_effort=low was not applied")
    assert rendering.plan(tokenizer, cfg().scenario.reasoning).note == ""  # the model's default


# --- scenario.truncation -----------------------------------------------------------------------
def loaded(*overrides: str) -> PyTorchBackend:
    config = load_config("text_generation", [*TINY, *overrides])
    backend = PyTorchBackend(config.backend, config.scenario)
    backend.load()
    return backend


NEAR_CONTEXT = [  # 48 tokens of the context are left for a prompt
    f"scenario.generate_kwargs.max_new_tokens={CONTEXT - 48}",
    "scenario.generate_kwargs.min_new_tokens=1",
]


def test_truncation_cuts_a_long_prompt_keeping_its_start_and_the_generation_prompt(caplog):
    backend = loaded(*NEAR_CONTEXT, "scenario.reasoning_params.enable_thinking=False")
    short = "What is a glacier?"
    batches = backend.prepare([short, LONG_PROMPT])
    assert backend.truncated_prompts == 1
    kept, cut = (backend.tokenizer.decode(b.inputs["input_ids"][0]) for b in batches)
    assert kept == backend.render(short)  # a prompt that fits is left whole
    assert 0 < batches[1].prompt_tokens[0] <= 48
    assert cut.startswith("<|bos|><|user|>Glaciers are rivers of ice that flow downhill")
    assert cut.endswith("\n<|assistant|><think>\n\n</think>\n\n")  # the template's turn, intact
    assert len(cut) < len(backend.render(LONG_PROMPT))
    warnings = [r for r in caplog.records if "scenario.truncation" in r.getMessage()]
    assert len(warnings) == 1 and "1 of 2 prompts cut" in warnings[0].getMessage()


def test_without_truncation_a_prompt_too_long_for_the_context_is_refused():
    backend = loaded(*NEAR_CONTEXT, "scenario.truncation=False")
    with pytest.raises(BenchConfigError, match="more than the model's context"):
        backend.prepare(["What is a glacier?", LONG_PROMPT])


def test_a_budget_that_leaves_no_room_for_any_prompt_is_refused_even_with_truncation():
    backend = loaded(f"scenario.generate_kwargs.max_new_tokens={CONTEXT}")
    with pytest.raises(BenchConfigError, match=f"max_new_tokens={CONTEXT} is not less than the mo"):
        backend.prepare(["What is a glacier?"])
    backend = loaded(f"scenario.generate_kwargs.max_new_tokens={CONTEXT - 3}")
    with pytest.raises(BenchConfigError, match=r"leaves 3 tokens .* too few for one with its chat"):
        backend.prepare(["What is a glacier?"])


@pytest.mark.parametrize("value", ["null", "sometimes"])
def test_truncation_is_true_or_false(value):
    assert "scenario.truncation=" in refused(f"scenario.truncation={value}")
    assert cfg().scenario.truncation is True


# --- the report --------------------------------------------------------------------------------
def test_the_report_carries_upstreams_names_beside_ours(tmp_path):
    config = cfg(
        "scenario.dataset_name=bundled",
        "scenario.num_samples=6",
        "scenario.warmup_pass=False",
        "scenario.warmup_runs=0",
        "energy.idle_seconds=0",
    )
    data = run_benchmark(
        config,
        backend_factory=lambda *_: FakeBackend(),
        source_factory=lambda _, n: EstimateSource(n),
    )
    report = build_report(data)
    s, e = report["summary"], report["energy"]
    assert s["avg_latency_seconds"] == s["avg_total_time"] > 0
    assert e["energy_wh"] == e["gpu_energy_wh"] > 0
    assert e["emissions_g_co2eq"] == e["co2_emissions_g"] > 0
    assert e["emissions_kg_co2eq"] == pytest.approx(e["co2_emissions_g"] / 1000)
    assert s["truncated_prompts"] == 0  # a backend that never cuts
    assert contract.report_problem(report) == ""
    write_report_files(tmp_path, report)
    with (tmp_path / contract.RESULTS_CSV_FILE).open(newline="") as f:
        (row,) = csv.DictReader(f)
    assert float(row["summary.avg_latency_seconds"]) == pytest.approx(s["avg_total_time"])
    assert float(row["energy.energy_wh"]) == pytest.approx(e["gpu_energy_wh"])
    assert float(row["energy.emissions_g_co2eq"]) == pytest.approx(e["co2_emissions_g"])
    assert float(row["energy.emissions_kg_co2eq"]) == pytest.approx(e["co2_emissions_g"] / 1000)
    assert row["summary.truncated_prompts"] == "0"


def test_a_run_with_cut_prompts_counts_them_in_the_report(tmp_path):
    model = tmp_path / "short-context"
    shutil.copytree(TINY_MODEL, model)
    settings = json.loads((model / "config.json").read_text())
    settings["max_position_embeddings"] = 64  # the same model, with a context bundled prompts fill
    (model / "config.json").write_text(json.dumps(settings))
    config = load_config(
        "text_generation",
        [
            f"backend.model={model}",
            "backend.torch_dtype=float32",
            "scenario.dataset_name=bundled",
            "scenario.num_samples=8",
            "scenario.input_shapes.batch_size=4",
            "scenario.warmup_pass=False",
            "scenario.warmup_runs=0",
            "scenario.generate_kwargs.max_new_tokens=40",
            "scenario.generate_kwargs.min_new_tokens=40",
            "energy.idle_seconds=0",
        ],
    )
    data = run_benchmark(config, source_factory=lambda _, n: EstimateSource(n))
    backend = data.backend
    whole = backend.tokenizer([backend.render(p) for p in load_prompts(config.scenario).texts])
    too_long = sum(1 for ids in whole.input_ids if len(ids) + 40 > 64)
    assert 0 < too_long < 8  # some bundled prompts fit, some must be cut
    report = build_report(data)
    assert report["summary"]["truncated_prompts"] == too_long
    assert report["summary"]["batch_size"] == 4
    records = data.passes[0].records
    assert all(r.ok and r.completion_tokens == 40 for r in records)
    assert max(r.prompt_tokens for r in records) <= 24


# --- the command -------------------------------------------------------------------------------
def test_check_mode_takes_the_upstream_keys(tmp_path):
    upstream = [
        "backend.model=org/m",
        "backend.type=pytorch",
        "backend.task=text_generation",
        "backend.device_map=auto",
        "backend.device_ids=0,1",
        "backend.num_gpus=2",
        "scenario.truncation=True",
        "scenario.input_shapes.batch_size=2",
        "scenario.reasoning=True",
        "scenario.reasoning_params.reasoning=True",
        "scenario.reasoning_params.reasoning_effort=high",
    ]
    out = io.StringIO()
    with redirect_stdout(out):
        code = check_overrides("text_generation", CONFIG_DIR, [json.dumps(upstream)])
    assert json.loads(out.getvalue()) == {"problem": ""} and code == contract.ExitCode.OK
