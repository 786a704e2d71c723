"""The container's config: YAML defaults, typed Hydra-style overrides, clear errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from energy_bench import contract
from energy_bench.config import CONFIG_DIR, apply_overrides, load_config
from energy_bench.errors import BenchConfigError


def test_defaults_hold_every_spec_key():
    cfg = load_config("text_generation", ["backend.model=org/m"])
    assert cfg.name == "text_generation"
    assert cfg.backend.torch_dtype == "bfloat16" and cfg.backend.no_weights is False
    assert cfg.scenario.dataset_name == "EnergyStarAI/text_generation"
    assert cfg.scenario.text_column_name == "text" and cfg.scenario.batch_size == 1
    assert cfg.scenario.warmup_pass is True and cfg.scenario.truncation is True
    assert cfg.scenario.seed == 42
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
            "scenario.warmup_pass=false",
            "scenario.truncation=false",
            "scenario.seed=7",
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
    assert cfg.scenario.warmup_pass is False and cfg.scenario.truncation is False
    assert cfg.scenario.seed == 7


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
    with pytest.raises(BenchConfigError) as raised:
        load_config("text_generation")
    assert str(raised.value) == "backend.model is required (a Hub id or a local folder)"
    with pytest.raises(BenchConfigError, match="known: image_generation, text_generation"):
        load_config("speech_generation", ["backend.model=x"])


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
        # YAML reads an int with its underscores anywhere; a float key still gets a float.
        ("energy.idle_seconds=2__5", ("energy", "idle_seconds"), 25.0),
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


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (['backend.type=onnx'], "backend.type='onnx': expected one of pytorch, vllm"),
        (['backend.task=fly'],
         "backend.task='fly': expected one of text-generation, text_generation"),
        (['backend.device_map=balanced'],
         "backend.device_map='balanced': expected auto or null; the benchmark places the "
         'model itself over backend.num_gpus GPUs (backend.device_ids picks which)'),
        (['backend.type=vllm'],
         "backend.endpoint='': backend.type=vllm needs the server's base URL, as "
         'http://host:8000/v1'),
        (['backend.type=vllm', 'backend.endpoint=ftp://x'],
         "backend.endpoint='ftp://x': backend.type=vllm needs the server's base URL, as "
         'http://host:8000/v1'),
        (['backend.endpoint=http://u:p@h:8000/v1'],
         'backend.endpoint: no user, password or query in the URL; a key goes in the '
         'VLLM_API_KEY environment variable'),
        (['backend.endpoint=http://h:8000/v1?k=1'],
         'backend.endpoint: no user, password or query in the URL; a key goes in the '
         'VLLM_API_KEY environment variable'),
        (['backend.request_timeout_s=0'], 'backend.request_timeout_s=0: must be at least 1'),
        (['backend.torch_dtype=float8'],
         "backend.torch_dtype='float8': expected one of bfloat16, float16, float32, auto"),
        (['backend.device=tpu'], "backend.device='tpu': expected one of auto, cuda, cpu"),
        (['backend.num_gpus=0'], 'backend.num_gpus=0: must be at least 1'),
        (['backend.generation=jit'],
         "backend.generation='jit': expected one of auto, eager, compiled"),
        (['backend.device_ids=0,0'], "backend.device_ids='0,0': names a GPU twice"),
        (['backend.device_ids=-1'],
         'backend.device_ids=-1: expected GPU indices from 0, as 0,1 or [0, 1]'),
        (['backend.device_ids=a'],
         "backend.device_ids='a': expected GPU indices from 0, as 0,1 or [0, 1]"),
        (['backend.device_ids=true'],
         'backend.device_ids=True: expected GPU indices from 0, as 0,1 or [0, 1]'),
        (['backend.server_gpus=x'],
         "backend.server_gpus='x': expected GPU indices or UUIDs, as 0,1 or GPU-…"),
        (['backend.server_gpus=,'],
         "backend.server_gpus=',': expected GPU indices or UUIDs, as 0,1 or GPU-…"),
        (['scenario.generate_kwargs.max_new_tokens=0'],
         'scenario.generate_kwargs.max_new_tokens=0: must be at least 1'),
        (['scenario.generate_kwargs.max_new_tokens=2.5'],
         'scenario.generate_kwargs.max_new_tokens=2.5: expected a whole number of tokens'),
        (['scenario.generate_kwargs.min_new_tokens=20'],
         'min_new_tokens=20 is above max_new_tokens=10'),
        (['scenario.repeats=0'], 'scenario.repeats=0: must be at least 1'),
        (['scenario.batch_size=0'], 'scenario.batch_size=0: must be at least 1'),
        (['scenario.concurrency=0'], 'scenario.concurrency=0: must be at least 1'),
        (['energy.idle_seconds=-1'], 'energy.idle_seconds=-1.0: must be at least 0.0'),
        (['energy.sample_hz=0'], 'energy.sample_hz=0.0: must be at least 0.1'),
        (['carbon.intensity_g_per_kwh=-1'],
         'carbon.intensity_g_per_kwh=-1.0: must be at least 0.0'),
        (['scenario.reasoning=maybe'], "scenario.reasoning='maybe': expected true, false or null"),
        (['scenario.reasoning_params.reasoning_effort=extreme'],
         "scenario.reasoning_params.reasoning_effort='extreme': expected one of high, "
         'medium, low'),
        (['scenario.reasoning_params.control=magic'],
         "scenario.reasoning_params.control='magic': expected one of harmony, "
         'chat_template_kwarg, think_prefix, system_prompt, prompt_prefix, model_default, '
         'none'),
        (['scenario.warmup_runs=-1'], 'scenario.warmup_runs=-1: must be at least 0'),
        (['scenario.num_samples=0'], 'scenario.num_samples=0: must be at least 1'),
        (['backend.endpoint=http://u@h:8000/v1'],
         'backend.endpoint: no user, password or query in the URL; a key goes in the '
         'VLLM_API_KEY environment variable'),
        (['backend.model=" "'], 'backend.model is required (a Hub id or a local folder)'),
        (['scenario.reasoning_params.reasoning=maybe'],
         "scenario.reasoning_params.reasoning='maybe': expected true, false or null"),
        (['scenario.reasoning_params.enable_thinking=maybe'],
         "scenario.reasoning_params.enable_thinking='maybe': expected true, false or null"),
        (['scenario.reasoning_params.control=harmony'],
         'control=harmony needs scenario.reasoning_params.reasoning_effort'),
        (['scenario.input_shapes.batch_size=0'],
         'scenario.input_shapes.batch_size=0: must be at least 1'),
        (['scenario.generate_kwargs.min_new_tokens=-1'],
         'scenario.generate_kwargs.min_new_tokens=-1: must be at least 0'),
        (['energy.sample_hz=100.5'], 'energy.sample_hz=100.5: at most 100'),
        # null passes the type check of a key whose default is a value: the range check names it.
        (['scenario.num_samples=null'], 'scenario.num_samples=None: expected a number'),
        (['scenario.concurrency=null'], 'scenario.concurrency=None: expected a whole number'),
        (['scenario.truncation=null'], 'scenario.truncation=None: expected true, false'),
        # YAML's own spellings of infinity and not-a-number read as floats: refused all the same.
        (['energy.idle_seconds=.inf'], 'energy.idle_seconds=inf: expected a finite number'),
        (['energy.sample_hz=.nan'], 'energy.sample_hz=nan: expected a finite number'),
        (['carbon.intensity_g_per_kwh=.nan'],
         'carbon.intensity_g_per_kwh=nan: expected a finite number'),
        (['backend.model=null'], 'backend.model is required (a Hub id or a local folder)'),
        (['scenario.generate_kwargs=null'],
         'scenario.generate_kwargs.max_new_tokens=None: expected a whole number of tokens'),
        (['energy.idle_seconds=null'], 'energy.idle_seconds=None: expected a number'),
        (['carbon.intensity_g_per_kwh=null'], 'carbon.intensity_g_per_kwh=None: expected a number'),
        ([f"scenario.generate_kwargs.max_new_tokens={'9' * 400}"],
         f"scenario.generate_kwargs.max_new_tokens={'9' * 400}: more than 10,000,000 tokens"),
    ],
)  # fmt: skip
def test_a_setting_the_benchmark_cannot_use_is_refused_with_its_key_and_value(overrides, message):
    with pytest.raises(BenchConfigError) as raised:
        load_config("text_generation", ["backend.model=org/m", *overrides])
    assert str(raised.value) == message


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("backend.model", "override 'backend.model' is not of the form key=value"),
        ("=3", "override '=3' is not of the form key=value"),
        ("backend.modle=x", "unknown config key 'backend.modle'; did you mean 'backend.model'?"),
        ("scenario.num_samples=abc",
         "scenario.num_samples='abc': expected a whole number (default 1000), got a string"),
        ("scenario.num_samples=1.5",
         "scenario.num_samples='1.5': expected a whole number (default 1000), got a number"),
        ("scenario.warmup_pass=3",
         "scenario.warmup_pass='3': expected true or false (default True), got a whole number"),
        ("energy.sample_hz=fast",
         "energy.sample_hz='fast': expected a number (default 10.0), got a string"),
        # Spellings a float reads as infinite or not-a-number are not numbers here.
        ("energy.idle_seconds=1e999",
         "energy.idle_seconds='1e999': expected a number (default 5.0), got a string"),
        ("carbon.intensity_g_per_kwh=nan",
         "carbon.intensity_g_per_kwh='nan': expected a number (default 400.0), got a string"),
        # Of no simple kind: called a value.
        ("scenario.generate_kwargs=5",
         "scenario.generate_kwargs='5': expected a value (default {'max_new_tokens': 10, "
         "'min_new_tokens': 10, 'do_sample': False}), got a whole number"),
        ("scenario.num_samples=[1]",
         "scenario.num_samples='[1]': expected a whole number (default 1000), got a value"),
        ("scenario.dataset_split=true",
         "scenario.dataset_split='true': expected a string (default 'train'), got true or false"),
        ("scenario.dataset_split=[a, b]",
         "scenario.dataset_split='[a, b]': expected a string (default 'train'), got a value"),
    ],
)  # fmt: skip
def test_an_override_that_is_not_a_setting_is_refused_with_what_was_expected(override, message):
    with pytest.raises(BenchConfigError) as raised:
        load_config("text_generation", ["backend.model=org/m", override])
    assert str(raised.value) == message


def test_an_unknown_key_far_from_any_lists_every_valid_key():
    with pytest.raises(BenchConfigError) as raised:
        load_config("text_generation", ["backend.model=org/m", "nothing.like_it=1"])
    text = str(raised.value)
    assert text.startswith("unknown config key 'nothing.like_it'; valid keys: backend.device, ")
    assert text.endswith(", scenario.warmup_pass, scenario.warmup_runs")
    assert ", scenario.generate_kwargs.*, " in text and "scenario.generate_kwargs, " not in text
    with pytest.raises(BenchConfigError) as raised:  # an image config has no generate_kwargs
        load_config("image_generation", ["backend.model=org/m", "nothing.like_it=1"])
    assert "generate_kwargs" not in str(raised.value)
    assert str(raised.value).endswith(", scenario.warmup_runs, scenario.width")


def test_the_config_folder_is_found_where_the_package_lies():
    """The folder is looked up once at import; the test calls the lookup again, in this layout."""
    from energy_bench import config

    folder = config._config_dir()
    assert folder == config.CONFIG_DIR
    assert folder.name == "configs" and folder.is_absolute()
    assert sorted(p.stem for p in folder.glob("*.yaml")) == sorted(contract.CONFIG_NAMES.values())


def test_overrides_leave_the_defaults_they_were_given_untouched():
    defaults = {"scenario": {"num_samples": 1000, "seed": 42}}
    tree = apply_overrides(defaults, ["scenario.num_samples=3"])
    assert tree == {"scenario": {"num_samples": 3, "seed": 42}}
    assert defaults == {"scenario": {"num_samples": 1000, "seed": 42}}


def test_an_override_splits_at_its_first_equals_sign():
    tree = apply_overrides({"scenario": {"dataset_name": "x"}}, ["scenario.dataset_name=a=b.csv"])
    assert tree["scenario"]["dataset_name"] == "a=b.csv"


def test_a_leading_plus_on_a_key_is_dropped_and_nothing_else():
    assert apply_overrides({"scenario": {"seed": 42}}, ["+scenario.seed=7"]) == {
        "scenario": {"seed": 7}
    }
    with pytest.raises(BenchConfigError) as raised:
        apply_overrides({"scenario": {"seed": 42}}, ["Xscenario.seed=7"])
    assert str(raised.value) == (
        "unknown config key 'Xscenario.seed'; did you mean 'scenario.seed'?"
    )


def test_an_unknown_key_only_somewhat_like_a_valid_one_lists_every_valid_key():
    with pytest.raises(BenchConfigError) as raised:
        load_config("text_generation", ["backend.model=org/m", "energy.hz=5"])
    assert str(raised.value).startswith("unknown config key 'energy.hz'; valid keys: ")


def test_a_free_form_generation_setting_keeps_the_number_type_it_was_given():
    cfg = load_config(
        "text_generation", ["backend.model=org/m", "scenario.generate_kwargs.temperature=2.0"]
    )
    temperature = cfg.scenario.generate_kwargs["temperature"]
    assert temperature == 2.0 and type(temperature) is float


@pytest.mark.parametrize(
    ("value", "gpus"),
    [
        ("0,1", ("0", "1")),
        ("[0, 1]", ("0", "1")),
        ("1", ("1",)),
        ("0, ,1,", ("0", "1")),
        ("GPU-abc,mig-def", ("GPU-abc", "mig-def")),
    ],
)
def test_the_server_gpus_are_indices_or_uuids_in_any_spelling(value, gpus):
    cfg = load_config("text_generation", ["backend.model=org/m", f"backend.server_gpus={value}"])
    assert cfg.backend.server_gpus == gpus


@pytest.mark.parametrize(("installed", "expected"), [(True, "pkg/configs"), (False, "configs")])
def test_the_config_folder_is_the_package_s_own_when_it_has_one(
    tmp_path, monkeypatch, installed, expected
):
    from energy_bench import config

    package = tmp_path / "pkg"
    package.mkdir()
    (tmp_path / "configs").mkdir()
    if installed:
        (package / "configs").mkdir()
    monkeypatch.setattr(config, "__file__", str(package / "config.py"))
    assert config._config_dir() == tmp_path.resolve() / expected


def test_a_value_at_the_edge_of_its_range_is_accepted():
    cfg = load_config(
        "text_generation",
        [
            "backend.model=org/m",
            "scenario.generate_kwargs.max_new_tokens=10_000_000",
            "scenario.generate_kwargs.min_new_tokens=0",
            "energy.sample_hz=100",
        ],
    )
    assert (cfg.scenario.max_new_tokens, cfg.scenario.min_new_tokens) == (10_000_000, 0)
    assert cfg.energy.sample_hz == 100.0


def test_a_server_backend_takes_an_http_or_https_endpoint():
    for endpoint in ("http://h:8000/v1", "https://h/v1"):
        cfg = load_config(
            "text_generation",
            ["backend.model=org/m", "backend.type=vllm", f"backend.endpoint={endpoint}"],
        )
        assert (cfg.backend.type, cfg.backend.endpoint) == ("vllm", endpoint)


def test_a_null_minimum_budget_means_no_floor():
    cfg = load_config(
        "text_generation", ["backend.model=org/m", "scenario.generate_kwargs.min_new_tokens=null"]
    )
    assert cfg.scenario.min_new_tokens == 0
    assert "min_new_tokens" not in cfg.scenario.generate_kwargs


def test_a_config_file_without_a_minimum_budget_has_no_floor(tmp_path):
    text = (CONFIG_DIR / "text_generation.yaml").read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if "min_new_tokens:" not in line]
    (tmp_path / "short.yaml").write_text("\n".join(lines), encoding="utf-8")
    cfg = load_config("short", ["backend.model=org/m"], config_dir=tmp_path)
    assert (cfg.name, cfg.scenario.min_new_tokens, cfg.scenario.max_new_tokens) == ("short", 0, 10)


def test_a_config_folder_without_configs_says_so(tmp_path):
    with pytest.raises(BenchConfigError) as raised:
        load_config("text_generation", config_dir=tmp_path)
    assert str(raised.value) == "unknown --config-name 'text_generation'; known: none"


def test_the_scenario_keys_given_are_named_however_they_were_spelled():
    cfg = load_config(
        "text_generation",
        [
            "backend.model=org/m",
            " +scenario.dataset_name=a=b.csv",
            "scenario.num_samples=3",
            "energy.sample_hz=5",
        ],
    )
    assert cfg.scenario.given == {"scenario.dataset_name", "scenario.num_samples"}
    assert cfg.scenario.dataset_name == "a=b.csv"


def test_an_empty_value_is_an_empty_string():
    defaults = {"backend": {"endpoint": "http://h:8000/v1", "processor": None}}
    tree = apply_overrides(defaults, ["backend.endpoint=", "backend.processor= "])
    assert tree == {"backend": {"endpoint": "", "processor": ""}}


def test_a_quoted_value_that_is_not_json_keeps_what_lies_between_its_quotes():
    tree = apply_overrides({"a": {"b": "x", "c": "x"}}, ['a.b="say "hi""', 'a.c="unclosed'])
    # Quotes inside are kept as typed; a lone opening quote is part of the value.
    assert tree == {"a": {"b": 'say "hi"', "c": '"unclosed'}}


def test_a_dotted_key_below_a_free_form_setting_nests():
    tree = apply_overrides(
        {"scenario": {"generate_kwargs": {"do_sample": False}}},
        ["scenario.generate_kwargs.extra.top_k=5"],
    )
    assert tree == {"scenario": {"generate_kwargs": {"do_sample": False, "extra": {"top_k": 5}}}}
