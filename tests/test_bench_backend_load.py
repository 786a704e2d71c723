"""What the PyTorch backend asks transformers for when it loads a model and generates, and what
it logs about compiling.

transformers' own loaders stay in place: a recorder notes what each was called with and calls the
real one on the tiny model, so the backend runs as it would for a real model on one CPU. Branches
for a model spread over several GPUs need them, and are left to the tests marked ``gpu``.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import transformers
from conftest import TINY_EOS_MODEL, TINY_MODEL
from huggingface_hub import constants as hub_constants

from energy_bench.backends.pytorch import PyTorchBackend
from energy_bench.config import CONFIG_DIR, load_config
from energy_bench.errors import BenchConfigError, ModelNotFound

PROMPTS = ["Hi.", "Name three rivers, and say which one is the longest of them."]


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    """No test here reaches the network, whatever the environment says."""
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)


def backend_for(*overrides: str, model: Path | str = TINY_MODEL) -> PyTorchBackend:
    cfg = load_config(
        "text_generation",
        [
            f"backend.model={model}",
            "backend.torch_dtype=float32",
            "scenario.batch_size=2",
            *overrides,
        ],
    )
    return PyTorchBackend(cfg.backend, cfg.scenario)


def recorded(monkeypatch, owner: type, name: str) -> list[tuple[tuple, dict]]:
    """Every call of ``owner.name`` (a class method of transformers), still made for real."""
    calls: list[tuple[tuple, dict]] = []
    real = getattr(owner, name)

    def record(*args, **kwargs):
        calls.append((args, kwargs))
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, record)
    return calls


def tokenizers_changed(monkeypatch, change) -> None:
    """transformers' tokenizer loader, with ``change`` made to every tokenizer it loads."""
    real = transformers.AutoTokenizer.from_pretrained

    def load(*args, **kwargs):
        tok = real(*args, **kwargs)
        change(tok)
        return tok

    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", load)


def generate_calls(backend: PyTorchBackend) -> list[dict]:
    """The keyword arguments of every ``model.generate`` call of a loaded backend."""
    calls: list[dict] = []
    real = backend.model.generate

    def record(**kwargs):
        calls.append(kwargs)
        return real(**kwargs)

    backend.model.generate = record
    return calls


def logged(caplog) -> list[tuple[int, str]]:
    """The benchmark's own log records: level and message."""
    return [
        (r.levelno, r.getMessage()) for r in caplog.records if r.name.startswith("energy_bench")
    ]


# --- loading --------------------------------------------------------------------------------
def test_weights_load_on_the_one_device_of_the_run_in_the_configured_dtype(monkeypatch):
    tokenizers = recorded(monkeypatch, transformers.AutoTokenizer, "from_pretrained")
    models = recorded(monkeypatch, transformers.AutoModelForCausalLM, "from_pretrained")
    backend = backend_for(
        "backend.torch_dtype=bfloat16",
        "backend.trust_remote_code=true",
        f"backend.processor={TINY_EOS_MODEL}",
    )
    backend.load()
    # The tokenizer comes from the processor named, the weights from the model.
    assert tokenizers == [((str(TINY_EOS_MODEL),), {"trust_remote_code": True})]
    assert models == [
        (
            (str(TINY_MODEL),),
            {
                "dtype": torch.bfloat16,
                "device_map": torch.device("cpu"),
                "max_memory": None,  # one device: no limits to spread by
                "trust_remote_code": True,
            },
        )
    ]
    assert backend.model.dtype == torch.bfloat16


def test_without_a_processor_the_tokenizer_comes_from_the_model(monkeypatch):
    tokenizers = recorded(monkeypatch, transformers.AutoTokenizer, "from_pretrained")
    backend_for().load()
    assert tokenizers == [((str(TINY_MODEL),), {"trust_remote_code": False})]


def test_random_weights_are_built_from_the_model_s_config_with_the_scenario_s_seed(monkeypatch):
    configs = recorded(monkeypatch, transformers.AutoConfig, "from_pretrained")
    built = recorded(monkeypatch, transformers.AutoModelForCausalLM, "from_config")
    settings = ["backend.no_weights=true", "backend.torch_dtype=bfloat16"]
    first = backend_for(*settings, "backend.trust_remote_code=true", "scenario.seed=7")
    first.load()
    # The tokenizer's loader reads the config too, with arguments of its own.
    assert ((str(TINY_MODEL),), {"trust_remote_code": True}) in configs
    ((config,), kwargs) = built[0]
    assert isinstance(config, transformers.LlamaConfig) and config.hidden_size == 64
    assert kwargs == {"dtype": torch.bfloat16, "trust_remote_code": True}
    assert first.model.dtype == torch.bfloat16
    weights = first.model.lm_head.weight
    # The same seed draws the same weights, whatever the random state before; another does not.
    torch.manual_seed(1234)
    again = backend_for(*settings, "scenario.seed=7")
    again.load()
    other = backend_for(*settings, "scenario.seed=8")
    other.load()
    assert torch.equal(again.model.lm_head.weight, weights)
    assert not torch.equal(other.model.lm_head.weight, weights)
    assert len(built) == 3


@pytest.mark.parametrize("folder", ["/no/such/model", "./no-such-model", "../no-such-model"])
def test_a_model_folder_that_does_not_exist_is_named_before_anything_loads(monkeypatch, folder):
    tokenizers = recorded(monkeypatch, transformers.AutoTokenizer, "from_pretrained")
    with pytest.raises(ModelNotFound) as raised:
        backend_for(model=folder).load()
    assert str(raised.value) == f"model folder {folder} does not exist"
    assert tokenizers == []


def test_the_tokenizer_pads_on_the_left_with_its_own_pad_token():
    backend = backend_for()
    backend.load()
    tok = backend.tokenizer
    assert tok.padding_side == "left"  # the model continues right after the prompt
    assert (tok.pad_token, tok.pad_token_id) == ("<|pad|>", 0) and tok.eos_token_id == 2


def test_a_tokenizer_without_a_pad_token_pads_with_its_end_of_sequence_token(monkeypatch):
    tokenizers_changed(monkeypatch, lambda tok: setattr(tok, "pad_token", None))
    backend = backend_for()
    backend.load()
    tok = backend.tokenizer
    assert (tok.pad_token, tok.pad_token_id) == ("<|eos|>", 2)
    assert backend.generate(backend.prepare(PROMPTS)[0]).completion_tokens == (10, 10)
    # A model that stops: its rows end on that token, counted once (the minimum's 3, then it).
    stops = backend_for("scenario.generate_kwargs.min_new_tokens=3", model=TINY_EOS_MODEL)
    stops.load()
    assert stops.generate(stops.prepare(PROMPTS)[0]).completion_tokens == (4, 4)


def test_the_model_s_parameters_and_the_time_loading_took_are_recorded():
    backend = backend_for()
    before = time.perf_counter()
    backend.load()
    took = time.perf_counter() - before
    assert backend.parameters == sum(p.numel() for p in backend.model.parameters())
    # The embedding (shared with the head), two layers of attention, MLP and norms, a norm.
    assert (
        backend.parameters
        == 512 * 64 + 2 * (2 * 64 * 64 + 2 * 64 * 32 + 3 * 64 * 128 + 2 * 64) + 64
    )
    assert 0 < backend.load_duration_s <= took


def test_a_reasoning_directive_that_cannot_be_applied_is_logged_as_a_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="energy_bench"):
        backend = backend_for("scenario.reasoning=True")
        backend.load()
    note = backend.applied_reasoning.note
    assert note.startswith("scenario.reasoning=True without scenario.reasoning_params.control")
    assert logged(caplog) == [(logging.WARNING, f"reasoning directive: {note}")]


def test_a_directive_applied_as_asked_logs_nothing(caplog):
    with caplog.at_level(logging.WARNING, logger="energy_bench"):
        backend_for().load()
    assert logged(caplog) == []


# --- preparing ------------------------------------------------------------------------------
def test_a_backend_not_loaded_yet_says_so_when_asked_to_render_or_prepare():
    backend = backend_for()
    with pytest.raises(AssertionError, match=r"^load\(\) first$"):
        backend.render("Hi.")
    with pytest.raises(AssertionError, match=r"^load\(\) first$"):
        backend.prepare(PROMPTS)


def test_batches_are_tokenized_onto_the_run_s_first_device(monkeypatch):
    backend = backend_for()
    backend.load()
    moved = recorded(monkeypatch, transformers.BatchEncoding, "to")
    batches = backend.prepare([*PROMPTS, "One more."])
    assert [b.indices for b in batches] == [(0, 1), (2,)]
    assert [args[1:] for args, _ in moved] == [(torch.device("cpu"),)] * 2


@pytest.mark.parametrize("template", [True, False], ids=["chat-template", "plain"])
def test_the_tokenizer_s_bos_is_added_only_where_no_chat_template_writes_one(monkeypatch, template):
    def change(tok):
        tok.add_bos_token = True  # the tokenizer starts every text with BOS, as Llama's do
        if not template:
            tok.chat_template = None

    tokenizers_changed(monkeypatch, change)
    backend = backend_for()
    backend.load()
    (batch,) = backend.prepare(["Hi."])
    text = backend.tokenizer.decode(batch.inputs["input_ids"][0])
    # The tiny model's chat template writes BOS itself: once, not twice.
    assert text == ("<|bos|><|user|>Hi.\n<|assistant|>" if template else "<|bos|>Hi.")


def test_truncation_cuts_only_prompts_past_the_context_beside_the_budget_and_says_so(caplog):
    backend = backend_for("scenario.truncation=True")
    backend.load()
    whole = backend.prepare(PROMPTS)
    longest, budget = max(whole[0].prompt_tokens), backend.scenario.max_new_tokens
    config = backend.model.config  # the same model with a shorter context, as prepare reads it
    config.max_position_embeddings = longest + budget  # the longest prompt just fits
    with caplog.at_level(logging.WARNING, logger="energy_bench"):
        fits = backend.prepare(PROMPTS)
    assert logged(caplog) == [] and backend.truncated_prompts == 0
    assert fits[0].prompt_tokens == whole[0].prompt_tokens
    config.max_position_embeddings = longest + budget - 1  # one token short
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="energy_bench"):
        cut = backend.prepare(PROMPTS)
    assert backend.truncated_prompts == 1
    assert cut[0].prompt_tokens[0] == whole[0].prompt_tokens[0]
    assert cut[0].prompt_tokens[1] <= longest - 1
    assert logged(caplog) == [
        (
            logging.WARNING,
            f"scenario.truncation: 1 of 2 prompts cut to {longest - 1} tokens (the model's "
            "context less max_new_tokens)",
        )
    ]
    config.max_position_embeddings = 2048
    backend.prepare(PROMPTS)
    assert backend.truncated_prompts == 0  # counted again for every prepare


def test_a_budget_one_token_short_of_the_context_leaves_that_token_to_each_prompt(monkeypatch):
    # Without a chat template a prompt can be cut down to a single token.
    tokenizers_changed(monkeypatch, lambda tok: setattr(tok, "chat_template", None))
    backend = backend_for()
    backend.load()
    backend.model.config.max_position_embeddings = backend.scenario.max_new_tokens + 1
    (batch,) = backend.prepare(PROMPTS)
    assert batch.prompt_tokens == (1, 1) and backend.truncated_prompts == 2


def test_the_context_is_read_from_the_text_part_of_a_config_made_of_several():
    class Composite:
        """The config of a model that reads more than text: the context is its text part's."""

        def get_text_config(self):
            return SimpleNamespace(max_position_embeddings=12)

    backend = backend_for("scenario.truncation=False")
    backend.load()
    whole = backend.prepare(PROMPTS)[0].prompt_tokens
    for config in (Composite(), SimpleNamespace(max_position_embeddings=12)):
        backend.model.config = config
        with pytest.raises(BenchConfigError, match=r"the model's context \(12 tokens\)"):
            backend.prepare(PROMPTS)
    # A config that gives no context as a number of tokens sets no limit.
    for config in (SimpleNamespace(), SimpleNamespace(max_position_embeddings="12")):
        backend.model.config = config
        assert backend.prepare(PROMPTS)[0].prompt_tokens == whole


def test_no_prompts_make_no_batches_and_a_static_cache_for_the_budget_alone():
    backend = backend_for("backend.generation=compiled")
    backend.load()
    assert backend.prepare([]) == []
    assert backend.generation.static_cache_tokens == backend.scenario.max_new_tokens


# --- generating -----------------------------------------------------------------------------
def test_the_compiled_path_on_a_cpu_asks_transformers_to_compile_there():
    backend = backend_for(
        "backend.generation=compiled", "scenario.generate_kwargs.disable_compile=true"
    )
    backend.load()
    calls = generate_calls(backend)
    backend.generate(backend.prepare(PROMPTS)[0])
    config = calls[0]["compile_config"]
    assert isinstance(config, transformers.CompileConfig)
    assert config.mode == "default" and config._compile_all_devices is True
    caches = [v for v in calls[0].values() if isinstance(v, transformers.StaticCache)]
    assert caches == [backend._caches[2]]  # the run's own cache, for batches of two


def test_the_eager_path_passes_no_compile_config_and_no_cache():
    backend = backend_for("backend.generation=eager")
    backend.load()
    calls = generate_calls(backend)
    backend.generate(backend.prepare(PROMPTS)[0])
    assert "compile_config" not in calls[0]
    assert not {"past_key_values", "cache"} & set(calls[0])


def test_generation_is_greedy_with_the_scenario_s_budget_unless_it_says_otherwise():
    backend = backend_for(
        "scenario.generate_kwargs.min_new_tokens=3", "scenario.generate_kwargs.max_new_tokens=6"
    )
    backend.load()
    calls = generate_calls(backend)
    batch = backend.prepare(PROMPTS)[0]
    backend.generate(batch)
    kwargs = {k: v for k, v in calls[0].items() if k not in ("input_ids", "attention_mask")}
    processors = kwargs.pop("logits_processor")
    assert len(processors) == 1
    assert kwargs == {
        "max_new_tokens": 6,
        "min_new_tokens": 3,
        "pad_token_id": 0,
        "do_sample": False,
    }
    sampled = backend_for("scenario.generate_kwargs.do_sample=true")
    sampled.load()
    calls = generate_calls(sampled)
    sampled.generate(batch)
    assert calls[0]["do_sample"] is True


def test_a_config_silent_on_sampling_generates_greedily_whatever_the_model_prefers(tmp_path):
    bundled = (CONFIG_DIR / "text_generation.yaml").read_text()
    silent = bundled.replace("    do_sample: false\n", "")
    assert silent != bundled
    (tmp_path / "text_generation.yaml").write_text(silent)
    cfg = load_config(
        "text_generation",
        [f"backend.model={TINY_MODEL}", "backend.torch_dtype=float32", "scenario.batch_size=2"],
        config_dir=tmp_path,
    )
    assert "do_sample" not in cfg.scenario.generate_kwargs
    backend = PyTorchBackend(cfg.backend, cfg.scenario)
    backend.load()
    # Chat models often ship a generation config that samples, hot enough here to show.
    preferred = backend.model.generation_config
    preferred.do_sample, preferred.temperature, preferred.top_k = True, 3.0, 0
    calls = generate_calls(backend)
    batch = backend.prepare(PROMPTS)[0]
    tokens = []
    for seed in (1, 2):
        backend.seed(seed)
        tokens.append(backend.generate(batch).tokens)
    assert tokens[0] == tokens[1]
    assert [c["do_sample"] for c in calls] == [False, False]


def test_a_budget_given_to_generate_replaces_the_scenario_s_and_caps_its_minimum():
    backend = backend_for(model=TINY_EOS_MODEL)
    backend.load()
    calls = generate_calls(backend)
    batch = backend.prepare(PROMPTS)[0]
    assert backend.generate(batch, max_new_tokens=1).completion_tokens == (1, 1)  # the prefill
    assert backend.generate(batch, max_new_tokens=4).completion_tokens == (4, 4)
    assert backend.generate(batch).completion_tokens == (10, 10)  # the scenario's 10 and 10
    assert [(c["max_new_tokens"], c["min_new_tokens"]) for c in calls] == [(1, 1), (4, 4), (10, 10)]


def test_the_time_to_first_token_falls_inside_the_batch_s_latency():
    backend = backend_for()
    backend.load()
    batch = backend.prepare(PROMPTS)[0]
    before = time.perf_counter()
    done = backend.generate(batch)
    took = time.perf_counter() - before
    assert done.ttft_s is not None
    assert 0 < done.ttft_s < done.latency_s <= took
    assert done.prompt_tokens == batch.prompt_tokens
    assert done.completion_tokens == (10, 10) and [len(t) for t in done.tokens] == [10, 10]


def test_a_generation_whose_steps_are_never_seen_has_no_time_to_first_token():
    backend = backend_for()
    backend.load()
    batch = backend.prepare(PROMPTS)[0]
    ids = batch.inputs["input_ids"]
    answer = torch.tensor([[5, 6, 7]] * ids.shape[0])

    # A generate that hands back its tokens without running the logits processors.
    backend.model.generate = lambda **kwargs: torch.cat([kwargs["input_ids"], answer], dim=1)
    done = backend.generate(batch)
    assert done.ttft_s is None and done.latency_s > 0
    assert done.tokens == ((5, 6, 7), (5, 6, 7)) and done.completion_tokens == (3, 3)


def test_a_row_counts_up_to_any_of_the_model_s_end_tokens_or_else_up_to_its_padding():
    backend = backend_for()
    backend.load()
    batch = backend.prepare(PROMPTS)[0]
    pad = backend.tokenizer.pad_token_id
    # Row one stopped on something other than an end token of the model (a stop string, say)
    # and was padded after it; row two has token 7 second.
    answer = torch.tensor([[5, 6, pad, pad], [5, 7, 8, 9]])
    backend.model.generate = lambda **kwargs: torch.cat([kwargs["input_ids"], answer], dim=1)
    counts = {}
    for eos in ([2, 7], 7, None):
        backend.model.generation_config.eos_token_id = eos
        counts[str(eos)] = backend.generate(batch).completion_tokens
    assert counts == {"[2, 7]": (2, 2), "7": (2, 2), "None": (2, 4)}


# --- compiling ------------------------------------------------------------------------------
def test_a_decode_step_left_uncompiled_is_logged_as_a_fall_back_to_eager(caplog):
    backend = backend_for(
        "backend.generation=compiled",
        "scenario.generate_kwargs.disable_compile=true",
        "scenario.generate_kwargs.max_new_tokens=2",
        "scenario.generate_kwargs.min_new_tokens=2",
    )
    backend.load()
    batches = backend.prepare(PROMPTS)
    with caplog.at_level(logging.INFO, logger="energy_bench"):
        backend.compile(batches)
    assert backend.generation_path == "eager"
    assert logged(caplog) == [
        (
            logging.WARNING,
            "generation path: eager (transformers did not compile the decode step of this model)",
        )
    ]


def test_a_compiled_decode_step_is_logged_with_its_graphs_time_and_cache(monkeypatch, caplog):
    from energy_bench.backends import compilation

    backend = backend_for(
        "backend.generation=compiled",
        "scenario.generate_kwargs.max_new_tokens=2",
        "scenario.generate_kwargs.min_new_tokens=2",
    )
    backend.load()
    batches = backend.prepare(PROMPTS)
    # Compiling for real takes tens of seconds: the step is counted as compiled, not built.
    monkeypatch.setattr(backend, "generate", lambda batch: None)
    counts = iter([5, 8])
    monkeypatch.setattr(compilation, "compile_count", lambda: next(counts))
    with caplog.at_level(logging.INFO, logger="energy_bench"):
        backend.compile(batches)
    record = backend.generation
    assert record.path == "compiled" and record.static_cache_tokens == 2 + max(
        b.inputs["input_ids"].shape[1] for b in batches
    )
    assert logged(caplog) == [
        (
            logging.INFO,
            f"generation path: compiled (3 graphs in {record.compile_seconds:.1f} s, "
            f"static cache of {record.static_cache_tokens} tokens)",
        )
    ]
