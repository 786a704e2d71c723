"""The container's config: YAML defaults, typed Hydra-style overrides, clear errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from energy_bench import contract
from energy_bench.config import apply_overrides, load_config
from energy_bench.errors import BenchConfigError


def test_defaults_hold_every_spec_key():
    cfg = load_config("text_generation", ["backend.model=org/m"])
    assert cfg.backend.torch_dtype == "bfloat16" and cfg.backend.no_weights is False
    assert cfg.scenario.dataset_name == "EnergyStarAI/text_generation"
    assert cfg.scenario.text_column_name == "text" and cfg.scenario.batch_size == 1
    assert (cfg.scenario.min_new_tokens, cfg.scenario.max_new_tokens) == (10, 10)
    assert cfg.energy.idle_seconds > 0 and cfg.energy.sample_hz == 10.0
    assert cfg.energy.carbon_intensity_g_per_kwh > 0


def test_overrides_are_typed():
    cfg = load_config(
        "text_generation",
        [
            "backend.model=org/m",
            "backend.no_weights=True",
            "scenario.num_samples=10",
            "scenario.reasoning=False",
            "scenario.reasoning_params.control=harmony",
            "scenario.reasoning_params.reasoning_effort=High",
            "scenario.generate_kwargs.max_new_tokens=8192",
            "scenario.generate_kwargs.min_new_tokens=1",
            "scenario.generate_kwargs.temperature=0.7",
            "energy.idle_seconds=0",
            "scenario.dataset_split=2024",
        ],
    )
    assert cfg.backend.no_weights is True
    assert cfg.scenario.num_samples == 10 and isinstance(cfg.scenario.num_samples, int)
    assert cfg.scenario.reasoning.enabled is False
    assert cfg.scenario.reasoning.effort == "high"
    assert cfg.scenario.max_new_tokens == 8192 and cfg.scenario.min_new_tokens == 1
    assert cfg.scenario.generate_kwargs == {"do_sample": False, "temperature": 0.7}
    assert cfg.energy.idle_seconds == 0.0
    assert cfg.scenario.dataset_split == "2024"


def test_quoted_values_stay_strings_with_escapes():
    tree = apply_overrides(
        {"a": {"b": "x"}},
        [
            'a.b="10"',
        ],
    )
    assert tree["a"]["b"] == "10"
    assert apply_overrides({"a": {"b": "x"}}, ['a.b="<think>\\n"'])["a"]["b"] == "<think>\n"


def test_config_hash_is_stable_and_sensitive():
    one = load_config("text_generation", ["backend.model=org/m"]).config_hash
    assert one == load_config("text_generation", ["backend.model=org/m"]).config_hash
    assert one != load_config("text_generation", ["backend.model=org/n"]).config_hash


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("backend.modle=x", "unknown config key 'backend.modle'; did you mean 'backend.model'?"),
        ("zzz.qqq=x", "unknown config key 'zzz.qqq'; valid keys: backend.device"),
        ("scenario.generate_kwargs.max_new_tokens=1e20", "more than 10,000,000 tokens"),
        ("scenario.generate_kwargs.max_new_tokens=12.5", "expected a whole number of tokens"),
        ("scenario.repeats=2.5", "expected a whole number (default 1), got a number"),
        ("scenario.num_samples=ten", "expected a whole number"),
        ("scenario.num_samples=0", "must be at least 1"),
        ("backend.no_weights=1", "expected true or false"),
        ("backend.torch_dtype=int3", "expected one of bfloat16"),
        ("scenario.reasoning_params.control=magic", "expected one of harmony"),
        ("scenario.reasoning_params.reasoning_effort=extreme", "expected one of high"),
        ("scenario.generate_kwargs.min_new_tokens=20", "above max_new_tokens"),
        ("scenario.reasoning=maybe", "expected true, false or null"),
        ("energy.sample_hz=1000", "at most 100"),
        ("novalue", "not of the form key=value"),
    ],
)
def test_bad_overrides_are_clear(override, message):
    with pytest.raises(BenchConfigError) as caught:
        load_config("text_generation", ["backend.model=org/m", override])
    assert message in str(caught.value)


def test_model_is_required_and_config_name_checked():
    with pytest.raises(BenchConfigError, match=r"backend\.model is required"):
        load_config("text_generation")
    with pytest.raises(BenchConfigError, match="known: text_generation"):
        load_config("image_generation", ["backend.model=x"])


def test_harmony_needs_an_effort():
    with pytest.raises(
        BenchConfigError, match=r"needs scenario\.reasoning_params\.reasoning_effort"
    ):
        load_config(
            "text_generation", ["backend.model=x", "scenario.reasoning_params.control=harmony"]
        )


def test_cli_bad_key_exits_2_listing_valid_keys(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "energy_bench",
            "--results-dir",
            str(tmp_path),
            "backend.model=x",
            "scenario.bogus=1",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(
        "energy_bench: error: BenchConfigError: unknown config key 'scenario.bogus'"
    )
    assert "scenario.num_samples" in last and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("override", "key", "expected"),
    [
        ("energy.idle_seconds=1e1", ("energy", "idle_seconds"), 10.0),
        ("energy.idle_seconds=1E+1", ("energy", "idle_seconds"), 10.0),
        ("carbon.intensity_g_per_kwh=1e12", ("carbon", "intensity_g_per_kwh"), 1e12),
        ("energy.idle_seconds=3", ("energy", "idle_seconds"), 3.0),
        ("scenario.num_samples=1e2", ("scenario", "num_samples"), 100),
        ("scenario.num_samples=1_000", ("scenario", "num_samples"), 1000),
    ],
)
def test_numbers_in_any_yaml_or_json_spelling(override, key, expected):
    cfg = load_config("text_generation", ["backend.model=org/m", override])
    value = cfg.raw[key[0]][key[1]]
    assert value == expected and type(value) is type(expected)


def test_token_budgets_in_exponent_spelling_are_whole_numbers():
    cfg = load_config(
        "text_generation",
        ["backend.model=m", "scenario.generate_kwargs.max_new_tokens=1e3"],
    )
    assert cfg.scenario.max_new_tokens == 1000


def test_check_mode_answers_a_line_per_set_and_loads_nothing():
    sets = [
        ["backend.model=org/m", "scenario.num_samples=3"],
        ["backend.model=org/m", "scenario.nmu_samples=3"],
        ["backend.model=org/m", "scenario.generate_kwargs.max_new_tokens=1e20"],
    ]
    done = subprocess.run(
        [sys.executable, "-m", "energy_bench", contract.CHECK_FLAG],
        input="".join(json.dumps(s) + "\n" for s in sets),
        capture_output=True,
        text=True,
        check=False,
    )
    answers = [json.loads(line)["problem"] for line in done.stdout.splitlines()]
    assert done.returncode == contract.ExitCode.CONFIG_ERROR
    assert answers[0] == ""
    assert "did you mean 'scenario.num_samples'" in answers[1]
    assert "more than 10,000,000 tokens" in answers[2]
    assert "torch" not in done.stderr
