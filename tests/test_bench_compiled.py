"""The compiled generation path on the CPU: the eager path's tokens, one cache size, fallbacks.

On a CPU the compiled path is the GPU one without CUDA graphs: the same static cache, sized once
for the run, and the decode step compiled to C++. Compiling takes tens of seconds, so the fast
tests keep the static cache and turn the compiler off with transformers' own
``disable_compile``; one slow test compiles for real.
"""

from __future__ import annotations

import pytest
from conftest import TINY_EOS_MODEL, TINY_MODEL

from energy_bench import contract
from energy_bench.backends.pytorch import PyTorchBackend
from energy_bench.benchmark import run_benchmark
from energy_bench.config import load_config
from energy_bench.energy.sources import EstimateSource
from energy_bench.results.report import build_report

PROMPTS = [
    "Hi.",
    "Explain, in a few careful sentences, why the sky looks blue on a clear afternoon.",
    "Name three rivers.",
    "What is the boiling point of water at the top of a high mountain, and why is it lower?",
    "Count to five.",
]
NO_COMPILER = "scenario.generate_kwargs.disable_compile=true"


def budget(tokens: int) -> list[str]:
    return [f"scenario.generate_kwargs.{k}_new_tokens={tokens}" for k in ("max", "min")]


def loaded(*overrides: str, model: str = TINY_MODEL) -> PyTorchBackend:
    cfg = load_config(
        "text_generation",
        [f"backend.model={model}", "backend.torch_dtype=float32", *overrides],
    )
    backend = PyTorchBackend(cfg.backend, cfg.scenario)
    backend.load()
    return backend


def generated(backend: PyTorchBackend) -> list[tuple[int, ...]]:
    """Every prompt's generated token ids, batch after batch."""
    batches = backend.prepare(PROMPTS)
    backend.seed(42)
    return [tokens for batch in batches for tokens in backend.generate(batch).tokens]


@pytest.mark.parametrize("batch_size", [1, 3])
@pytest.mark.parametrize(
    ("model", "budget", "expected"),
    [
        (TINY_MODEL, ["max_new_tokens=12", "min_new_tokens=12"], 12),  # never stops early
        (TINY_EOS_MODEL, ["max_new_tokens=9", "min_new_tokens=4"], 5),  # its EOS right after 4
    ],
    ids=["exact-budget", "early-eos"],
)
def test_the_static_cache_generates_the_eager_path_s_tokens(model, budget, expected, batch_size):
    settings = [f"scenario.batch_size={batch_size}"]
    settings += [f"scenario.generate_kwargs.{b}" for b in budget]
    eager = loaded("backend.generation=eager", *settings, model=model)
    static = loaded("backend.generation=compiled", NO_COMPILER, *settings, model=model)
    assert (eager.generation_path, static.generation_path) == ("eager", "compiled")
    tokens = generated(eager)
    assert generated(static) == tokens
    assert [len(t) for t in tokens] == [expected] * len(PROMPTS)
    # Padding is neither a prompt token nor an output token: the prompts of a batch of three
    # count as they do alone.
    alone = [b.prompt_tokens[0] for b in loaded(model=model).prepare(PROMPTS)]
    assert [n for b in static.prepare(PROMPTS) for n in b.prompt_tokens] == alone


def test_the_static_cache_is_sized_once_for_the_widest_batch_and_the_budget():
    backend = loaded("backend.generation=compiled", "scenario.batch_size=2", NO_COMPILER)
    batches = backend.prepare(PROMPTS)
    widest = max(b.inputs["input_ids"].shape[1] for b in batches)
    assert widest == max(max(b.prompt_tokens) for b in batches)  # left padding to the longest
    assert backend.generation.static_cache_tokens == widest + 10
    assert backend.generation.to_dict()["static_cache_tokens"] == widest + 10


def test_every_call_reuses_the_one_cache_of_its_batch_size_emptied():
    # CUDA graphs read the cache at fixed addresses: a new cache per call re-records them, and
    # after 128 calls PyTorch stops using graphs for the step, in the middle of a run.
    backend = loaded("backend.generation=compiled", "scenario.batch_size=2", NO_COMPILER)
    batches = backend.prepare(PROMPTS)  # two batches of two, one of one
    caches = []
    for batch in [*batches, *batches]:
        backend.generate(batch)
        cache = backend._caches[len(batch.indices)]
        caches.append((id(cache), cache.layers[0].keys.data_ptr()))
    assert caches[:3] == caches[3:] and caches[0] == caches[1] != caches[2]
    # Emptied between calls: the same batch gives the same tokens the second time.
    first = backend.generate(batches[0]).tokens
    backend.generate(batches[1])
    assert backend.generate(batches[0]).tokens == first


def test_auto_generates_eagerly_on_the_cpu_and_says_so():
    backend = loaded()
    assert backend.generation_path == contract.GENERATION_EAGER
    assert backend.provenance()["generation"] == {
        "requested": "auto",
        "path": "eager",
        "fallback_reason": "",
        "static_cache_tokens": None,
        "compile_seconds": None,
        "graphs_compiled": 0,
        "cuda_graph_skips": 0,
    }


def run(*overrides: str):
    cfg = load_config(
        "text_generation",
        [
            f"backend.model={TINY_MODEL}",
            "backend.torch_dtype=float32",
            "backend.generation=compiled",
            "scenario.dataset_name=bundled",
            "scenario.num_samples=4",
            "scenario.batch_size=2",
            "scenario.repeats=1",
            "energy.idle_seconds=0",
            *overrides,
        ],
    )
    data = run_benchmark(cfg, source_factory=lambda _, n: EstimateSource(n))
    return data, build_report(data)


def test_a_model_whose_decode_step_is_not_compiled_runs_eager_and_says_why():
    data, report = run(NO_COMPILER)
    assert report["generation_path"] == "eager"
    generation = data.backend.provenance()["generation"]
    assert generation["requested"] == "compiled"
    assert generation["fallback_reason"] == (
        "transformers did not compile the decode step of this model"
    )
    assert generation["static_cache_tokens"] is None
    # The attempt ran in its own window, before the warmup and the measured pass.
    assert [m["name"] for m in [report["energy"]["compile_window"]]] == ["compile"]
    assert data.passes[0].records and all(r.ok for r in data.passes[0].records)
    assert report["energy"]["flags"]["recompiled"] is False


def test_a_one_token_budget_has_no_decode_step_to_compile():
    data, report = run(
        "scenario.generate_kwargs.max_new_tokens=1", "scenario.generate_kwargs.min_new_tokens=1"
    )
    assert report["generation_path"] == "eager"
    assert data.backend.provenance()["generation"]["fallback_reason"] == (
        "a budget of one token has no decode step to compile"
    )
    assert report["summary"]["total_completion_tokens"] == 4


def test_an_eager_run_has_no_compile_window():
    data, report = run("backend.generation=eager")
    assert data.compile is None and report["energy"]["compile_window"] is None
    assert report["generation_path"] == "eager"


@pytest.mark.slow
def test_the_compiled_decode_step_gives_the_eager_tokens_and_compiles_only_once():
    settings = ["scenario.batch_size=3", *budget(8)]
    tokens = generated(loaded("backend.generation=eager", *settings))
    backend = loaded("backend.generation=compiled", *settings)
    batches = backend.prepare(PROMPTS)  # a batch of three and one of two
    backend.compile(batches)
    record = backend.generation
    assert (record.path, record.fallback_reason) == ("compiled", "")
    assert record.graphs_compiled >= 1 and record.compile_seconds > 0
    built = backend.graphs_built()
    assert generated(backend) == tokens
    assert backend.graphs_built() == built  # every shape was compiled before


def test_compiling_runs_the_longest_batch_of_each_size_once_and_counts_its_graphs(monkeypatch):
    from energy_bench.backends import compilation
    from energy_bench.backends.base import Batch

    backend = loaded("backend.generation=compiled", "scenario.batch_size=2", *budget(2))
    ran = []
    monkeypatch.setattr(backend, "generate", lambda batch: ran.append(batch))
    counts = iter([5, 8])  # before and after: three graphs built
    monkeypatch.setattr(compilation, "compile_count", lambda: next(counts))
    monkeypatch.setattr(compilation, "cuda_graph_skips", lambda: 1)
    batches = [
        Batch((0, 1), None, (4, 9)), Batch((2, 3), None, (9, 2)), Batch((4,), None, (3,)),
        Batch((5, 6), None, (7, 9)),
    ]  # fmt: skip
    backend.compile(batches)
    assert ran == [batches[0], batches[2]]  # the first of the longest of size 2, then size 1
    record = backend.provenance()["generation"]
    assert (record["path"], record["graphs_compiled"], record["cuda_graph_skips"]) == (
        "compiled", 3, 1,
    )  # fmt: skip
    assert 0 <= record["compile_seconds"] < 5


@pytest.mark.parametrize(
    ("error", "reason"),
    [(RuntimeError("inductor broke\nat line 3"), "compiling failed: RuntimeError: inductor broke"),
     (ValueError(), "compiling failed: ValueError: ")],
)  # fmt: skip
def test_a_model_the_compiler_fails_on_runs_eager_and_says_why(monkeypatch, caplog, error, reason):
    backend = loaded("backend.generation=compiled", *budget(2))

    def fail(batch):
        raise error

    monkeypatch.setattr(backend, "generate", fail)
    backend.compile(backend.prepare(PROMPTS[:2]))
    record = backend.provenance()["generation"]
    assert (record["path"], record["fallback_reason"]) == ("eager", reason)
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"][-1] == (
        f"generation path: eager ({reason})"
    )


def test_generate_on_the_compiled_path_fills_the_run_s_own_cache():
    backend = loaded("backend.generation=compiled", "scenario.batch_size=2", NO_COMPILER)
    (batch, *_) = backend.prepare(PROMPTS)
    backend.generate(batch)
    keys = backend._caches[2].layers[0].keys
    assert keys.abs().sum() > 0  # the model wrote its keys there: the cache reached generate
