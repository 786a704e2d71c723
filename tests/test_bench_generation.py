"""Token budgets, early stops, out of memory, model errors and prompt files, through the real code.

The EOS model (examples/tiny-eos-model) ends every answer with its first token that
``min_new_tokens`` leaves free: a budget's minimum shows in the counts, where the tiny model that
never stops shows only the maximum. Runs go through ``run_benchmark`` or ``energy_bench.cli.main``
in this process, with the real PyTorch backend; a patch stands only where an error arises.
"""

from __future__ import annotations

import csv
import json
import logging
import signal
from pathlib import Path

import httpx2  # the HTTP client of huggingface_hub: its errors are built from its responses
import huggingface_hub
import pytest
import torch
import transformers
from conftest import TINY_EOS_MODEL
from huggingface_hub import constants as hub_constants
from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, RepositoryNotFoundError
from huggingface_hub.utils import hf_raise_for_status
from transformers.generation.utils import GenerationMixin

from energy_bench import cli, contract
from energy_bench.backends.pytorch import PyTorchBackend
from energy_bench.benchmark import run_benchmark
from energy_bench.config import load_config
from energy_bench.energy.sources import EstimateSource
from energy_bench.workload.prompts import load_prompts

FAST = [
    f"backend.model={TINY_EOS_MODEL}",
    "backend.torch_dtype=float32",
    "scenario.dataset_name=bundled",
    "scenario.num_samples=4",
    "scenario.batch_size=2",
    "scenario.warmup_pass=False",
    "scenario.warmup_runs=0",
    "scenario.repeats=1",
    "energy.idle_seconds=0",
]
REASONING_ON = ["scenario.reasoning=True", "scenario.reasoning_params.control=chat_template_kwarg"]
HUB_MODEL = "test-org/some-model"
OOM = "CUDA out of memory. Tried to allocate 20.00 GiB. GPU 0 has a total capacity of 139.80 GiB"


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    """No test here reaches the network, whatever the environment says."""
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)


def completion_counts(*overrides: str) -> list[int]:
    """Completion tokens of every prompt of one measured pass of the EOS model."""
    cfg = load_config("text_generation", [*FAST, *overrides])
    data = run_benchmark(cfg, source_factory=lambda _, n: EstimateSource(n))
    (measured,) = data.passes
    assert all(r.ok for r in measured.records)
    return [r.completion_tokens for r in measured.records]


# --- budgets ----------------------------------------------------------------------------------
def test_the_default_budget_gives_exactly_ten_tokens_from_a_model_that_would_stop_at_once():
    assert completion_counts() == [10, 10, 10, 10]  # max_new_tokens = min_new_tokens = 10
    # The same prompts without the minimum stop on their first token, the end-of-sequence one.
    assert completion_counts("scenario.generate_kwargs.min_new_tokens=0") == [1, 1, 1, 1]


@pytest.mark.parametrize("minimum", [1, 3, 0])
def test_a_reasoning_on_budget_stops_right_after_its_minimum(minimum):
    counts = completion_counts(
        *REASONING_ON,
        "scenario.generate_kwargs.max_new_tokens=1024",  # the on budget, cut to the context
        f"scenario.generate_kwargs.min_new_tokens={minimum}",
    )
    # The minimum's tokens, then the end-of-sequence token (counted: its step was computed).
    assert counts == [minimum + 1] * 4


# --- early stops inside a batch -------------------------------------------------------------
def test_a_batch_counts_each_row_up_to_its_own_eos_and_never_the_padding_after_it():
    cfg = load_config(
        "text_generation",
        [
            *FAST,
            "scenario.num_samples=8",
            "scenario.batch_size=4",
            "scenario.generate_kwargs.max_new_tokens=12",
            "scenario.generate_kwargs.min_new_tokens=1",
            # Sampling hot enough that the end-of-sequence token is no longer certain: rows of
            # one batch stop at different steps, and the finished ones are padded meanwhile.
            "scenario.generate_kwargs.do_sample=True",
            "scenario.generate_kwargs.temperature=3.0",
            "scenario.generate_kwargs.top_k=0",
        ],
    )
    backend = PyTorchBackend(cfg.backend, cfg.scenario)
    backend.load()
    eos, pad = backend.tokenizer.eos_token_id, backend.tokenizer.pad_token_id
    assert eos != pad
    generated: list[list[list[int]]] = []
    real_generate = backend.model.generate

    def recording_generate(**kwargs):
        output = real_generate(**kwargs)
        generated.append(output[:, kwargs["input_ids"].shape[1] :].tolist())
        return output

    backend.model.generate = recording_generate
    backend.seed(cfg.scenario.seed)
    batches = backend.prepare(load_prompts(cfg.scenario).texts)
    counts = [backend.generate(batch).completion_tokens for batch in batches]
    for rows, got in zip(generated, counts, strict=True):
        want = tuple(row.index(eos) + 1 if eos in row else len(row) for row in rows)
        assert got == want, rows
    # The case is really there: a batch whose rows stopped at different steps, with padding
    # after an end-of-sequence token, and a row that ran to max_new_tokens.
    assert any(len(set(batch)) > 1 for batch in counts)
    padded = [row for rows in generated for row in rows if eos in row and row[-1] == pad]
    assert padded and all(set(row[row.index(eos) + 1 :]) == {pad} for row in padded)
    assert 12 in [c for batch in counts for c in batch]


# --- the command, in this process --------------------------------------------------------------
@pytest.fixture
def bench(monkeypatch, capsys):
    """Run ``energy_bench.cli.main``; returns (exit code, last stderr line, report or None)."""
    monkeypatch.delenv(contract.CPUS_ENV, raising=False)
    monkeypatch.delenv(contract.HEARTBEAT_ENV, raising=False)
    sigterm = signal.getsignal(signal.SIGTERM)
    logger = logging.getLogger("energy_bench")
    level = logger.level

    def run(results: Path, *overrides: str) -> tuple[int, str, dict | None]:
        code = cli.main(["--results-dir", str(results), *overrides])
        lines = capsys.readouterr().err.strip().splitlines()
        report_file = results / contract.REPORT_FILE
        report = json.loads(report_file.read_text()) if report_file.is_file() else None
        return code, lines[-1] if lines else "", report

    yield run
    signal.signal(signal.SIGTERM, sigterm)
    logger.setLevel(level)


def assert_failed(code: int, line: str, report: dict | None, kind: str, message: str, exit_code):
    """The run ended with ``exit_code``, its last line and its failure report saying the same.

    The line holds the first line of the error's message; the report holds all of it.
    """
    assert code == exit_code
    assert line == contract.error_line(kind, message)
    assert report is not None and report["status"] == contract.STATUS_FAILED
    error = report["error"]
    assert (error["type"], error["exit_code"]) == (kind, exit_code)
    assert error["message"].splitlines()[0] == message


# --- out of memory ------------------------------------------------------------------------------
def out_of_memory(*args, **kwargs):
    raise torch.cuda.OutOfMemoryError(f"{OOM}\nOf the allocated memory 1.2 GiB is allocated")


def test_out_of_memory_in_generate_ends_the_run_with_exit_4_and_says_so(
    bench, monkeypatch, tmp_path
):
    monkeypatch.setattr(GenerationMixin, "generate", out_of_memory)
    done = bench(
        tmp_path,
        *FAST,
        "scenario.num_samples=3",
        "scenario.batch_size=1",
        "scenario.warmup_pass=True",  # the default: three batches fail in a row in it
    )
    assert_failed(*done, "OutOfMemory", OOM, contract.ExitCode.OUT_OF_MEMORY)


def test_out_of_memory_while_loading_ends_the_run_with_exit_4_and_says_so(
    bench, monkeypatch, tmp_path
):
    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", out_of_memory)
    message = f"out of GPU memory loading {TINY_EOS_MODEL}: {OOM}"
    assert_failed(*bench(tmp_path, *FAST), "OutOfMemory", message, contract.ExitCode.OUT_OF_MEMORY)


def test_a_run_whose_every_batch_runs_out_of_memory_is_never_reported_ok(
    bench, monkeypatch, tmp_path
):
    monkeypatch.setattr(GenerationMixin, "generate", out_of_memory)
    code, _, report = bench(tmp_path, *FAST, "scenario.num_samples=2", "scenario.batch_size=1")
    assert report is not None and report["status"] == contract.STATUS_FAILED
    assert code == contract.ExitCode.OUT_OF_MEMORY


# --- gated and missing models -------------------------------------------------------------------
def hub_error(status: int, code: str) -> Exception:
    """The exception huggingface_hub raises for the Hub's answer ``status`` / ``X-Error-Code``."""
    url = f"{hub_constants.ENDPOINT}/{HUB_MODEL}/resolve/main/config.json"
    headers = {"X-Error-Code": code} if code else {}
    response = httpx2.Response(status, headers=headers, request=httpx2.Request("HEAD", url))
    try:
        hf_raise_for_status(response)
    except Exception as exc:
        return exc
    raise AssertionError(f"no error for HTTP {status}")


def bare(kind: type[Exception], status: int) -> Exception:
    """``kind`` with a message that names no HTTP status: only its type can tell what it is."""
    request = httpx2.Request("HEAD", f"{hub_constants.ENDPOINT}/{HUB_MODEL}")
    return kind("refused", response=httpx2.Response(status, request=request))


GATED = (
    "GatedModel",
    f"gated model {HUB_MODEL} (HTTP 401/403): accept its licence and set HF_TOKEN",
)
NOT_FOUND = ("ModelNotFound", f"model {HUB_MODEL} not found (HTTP 404)")
REFUSALS = {  # how huggingface_hub raises the Hub's answer -> what the benchmark ends with
    "gated": (lambda: hub_error(403, "GatedRepo"), GatedRepoError, GATED, 7),
    "not-found": (lambda: hub_error(404, "RepoNotFound"), RepositoryNotFoundError, NOT_FOUND, 8),
    # No token: the Hub answers 401 for gated, private and missing repos alike (contract: gated).
    "no-token": (lambda: hub_error(401, ""), RepositoryNotFoundError, GATED, 7),
    "forbidden": (lambda: hub_error(403, ""), HfHubHTTPError, GATED, 7),
    "gated-by-type": (lambda: bare(GatedRepoError, 403), GatedRepoError, GATED, 7),
    "not-found-by-type": (
        lambda: bare(RepositoryNotFoundError, 404),
        RepositoryNotFoundError,
        NOT_FOUND,
        8,
    ),
}


@pytest.mark.parametrize("loader", ["tokenizer", "weights"])
@pytest.mark.parametrize("refusal", REFUSALS, ids=list(REFUSALS))
def test_a_refused_model_ends_with_its_own_exit_code_and_one_line(
    bench, monkeypatch, tmp_path, refusal, loader
):
    make, kind, (error_type, message), exit_code = REFUSALS[refusal]
    error = make()
    assert type(error) is kind

    def refuse(*args, **kwargs):
        raise error

    if loader == "tokenizer":
        monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", refuse)
    else:
        local = transformers.AutoTokenizer.from_pretrained(TINY_EOS_MODEL)
        monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", lambda *a, **k: local)
        monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", refuse)
    done = bench(tmp_path, *FAST, f"backend.model={HUB_MODEL}")
    assert_failed(*done, error_type, message, exit_code)


@pytest.fixture
def hub_answers(monkeypatch):
    """Every request to the Hub gets the given (status, X-Error-Code) answer, here and now."""
    answer: list[tuple[int, str]] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        status, code = answer[0]
        return httpx2.Response(status, headers={"X-Error-Code": code}, request=request)

    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", False)
    huggingface_hub.set_client_factory(
        lambda: httpx2.Client(transport=httpx2.MockTransport(handler))
    )
    yield answer
    huggingface_hub.set_client_factory(huggingface_hub.utils._http.default_client_factory)


@pytest.mark.parametrize(
    "answer, expected",
    [((403, "GatedRepo"), (*GATED, 7)), ((404, "RepoNotFound"), (*NOT_FOUND, 8))],
    ids=["gated", "not-found"],
)
def test_a_model_the_hub_refuses_ends_with_its_own_exit_code(
    bench, hub_answers, tmp_path, answer, expected
):
    hub_answers.append(answer)
    assert_failed(*bench(tmp_path, *FAST, f"backend.model={HUB_MODEL}"), *expected)


# --- prompts from a file ---------------------------------------------------------------------
@pytest.mark.parametrize(
    "name, body, column",
    [
        ("p.jsonl", '{"q": "Why is the sky blue?"}\n\n{"q": "Name a prime."}\n', "q"),
        ("p.txt", "Why is the sky blue?\n\nName a prime.\n", "text"),
    ],
    ids=["jsonl", "txt"],
)
def test_a_run_measures_the_prompts_of_the_file_it_is_given(
    bench, monkeypatch, tmp_path, name, body, column
):
    path = tmp_path / name
    path.write_text(body)
    given: list[list[str]] = []
    real_prepare = PyTorchBackend.prepare

    def recording_prepare(self, prompts):
        given.append(list(prompts))
        return real_prepare(self, prompts)

    monkeypatch.setattr(PyTorchBackend, "prepare", recording_prepare)
    results = tmp_path / "out"
    code, line, report = bench(
        results,
        *FAST,
        f"scenario.dataset_name={path}",
        f"scenario.text_column_name={column}",
        "scenario.num_samples=5",
    )
    assert code == 0, line
    assert given == [["Why is the sky blue?", "Name a prime."]]
    assert report["summary"]["prompt_source"] == f"file:{path}"
    assert report["summary"]["total_prompts"] == report["summary"]["successful_prompts"] == 2
    with (results / contract.PER_PROMPT_FILE).open(newline="") as f:
        assert [r["completion_tokens"] for r in csv.DictReader(f)] == ["10", "10"]


def test_a_missing_prompt_file_is_a_config_error_that_names_it(bench, tmp_path):
    missing = tmp_path / "nowhere" / "prompts.jsonl"
    done = bench(tmp_path / "out", *FAST, f"scenario.dataset_name={missing}")
    message = f"scenario.dataset_name={str(missing)!r}: file not found"
    assert_failed(*done, "BenchConfigError", message, contract.ExitCode.CONFIG_ERROR)


@pytest.mark.parametrize(
    "bad, problem",
    [
        ("{oops", "not JSON: Expecting property name enclosed in double quotes"),
        ('{"prompt": "x"}', "no 'text' field"),
        ('["text"]', "no 'text' field"),
    ],
    ids=["not-json", "no-field", "not-an-object"],
)
def test_a_bad_prompt_line_is_a_config_error_that_names_file_and_line(
    bench, tmp_path, bad, problem
):
    path = tmp_path / "prompts.jsonl"
    path.write_text(f'{{"text": "first"}}\n\n{bad}\n{{"text": "last"}}\n')
    done = bench(tmp_path / "out", *FAST, f"scenario.dataset_name={path}")
    message = f"{path}:3: {problem}"
    assert_failed(*done, "BenchConfigError", message, contract.ExitCode.CONFIG_ERROR)


def test_a_cpu_run_records_what_it_ran_on_and_with():
    cfg = load_config("text_generation", FAST)
    backend = PyTorchBackend(cfg.backend, cfg.scenario)
    backend.load()
    found = backend.provenance()
    assert found == {
        "backend": "pytorch",
        "generation": backend.generation.to_dict(),
        "torch_version": torch.__version__,
        "torch_cuda_version": torch.version.cuda,
        "transformers_version": transformers.__version__,
        "devices": ["cpu"],
        "device_names": ["cpu"],
        "dtype": "torch.float32",
        "parameters": backend.parameters,
        "attn_implementation": backend.model.config._attn_implementation,
        "load_duration_s": backend.load_duration_s,
        "placement": None,  # one device: no map of modules
        "torch_threads": torch.get_num_threads(),
    }
    assert backend.parameters == sum(p.numel() for p in backend.model.parameters()) > 0
    assert found["attn_implementation"] in ("sdpa", "eager")
    assert 0 < backend.load_duration_s < 60
