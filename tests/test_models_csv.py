"""The models CSV reader: the project's models.csv, the quirks of real files, and bad input."""

from __future__ import annotations

import errno
import os
from collections import Counter
from pathlib import Path

import pytest

from model_config_parser import ModelConfigParser
from orchestrator.errors import ConfigError
from orchestrator.models.config import ModelClass, ReasoningState, Task, TokenBudgets
from orchestrator.models.csv_reader import read_models_csv, single_config

ROOT = Path(__file__).resolve().parent.parent
HEADER = ",Models to Add,Priority (1=hi),Class,Task,Reasoning State,Chat Template"


@pytest.fixture(scope="module")
def configs():
    return ModelConfigParser(ROOT / "models.csv").parse()


def write(tmp_path: Path, body: str | bytes, name: str = "models.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(body if isinstance(body, bytes) else body.encode())
    return path


def test_project_csv_counts(configs):
    assert len(configs) == 60
    assert len({c.model_id for c in configs}) == 43
    assert Counter(c.model_class for c in configs) == {
        ModelClass.C: 24,
        ModelClass.A: 19,
        ModelClass.B: 14,
        None: 3,
    }
    assert Counter(c.task for c in configs) == {Task.TEXT_GEN: 57, Task.IMAGE_GEN: 3}


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"model_name": "gpt-oss"}, 7),
        ({"model_name": "GPT-OSS"}, 7),
        ({"model_class": "a"}, 19),
        ({"model_class": " C "}, 24),
        ({"reasoning_state": "On"}, 24),
        ({"reasoning_state": "Off"}, 33),
        ({"reasoning_state": "High"}, 2),
        ({"reasoning_state": "off (n/a)"}, 21),
        ({"task": "image"}, 3),
        ({"model_name": "gpt-oss", "reasoning_state": "On"}, 6),
        ({"model_name": "gpt-oss", "model_class": "B"}, 4),
        ({"model_name": "qwen3", "model_class": "A", "reasoning_state": "Off"}, 1),
        ({"model_name": "gpt-oss", "task": "image_gen"}, 0),
        ({}, 60),
    ],
)
def test_filters_and_together(configs, filters, expected):
    selected = ModelConfigParser.filter_configs(configs, **filters)
    assert len(selected) == expected
    for config in selected:
        assert filters.get("model_name", "").lower() in config.model_id.lower()


def test_seed_api_as_the_readme_shows():
    parser = ModelConfigParser(str(ROOT / "models.csv"))
    filtered = parser.filter_configs(parser.parse(), model_name="gpt-oss")
    first = filtered[0]
    assert first.model_id == "openai/gpt-oss-20b"
    assert first.reasoning_state == "On (High)"
    assert f"{first.reasoning_state}" == "On (High)"
    assert first.use_harmony and first.reasoning_params == {"reasoning_effort": "high"}
    assert first.state_slug == "On_High"


def test_configs_are_immutable(configs):
    with pytest.raises(AttributeError):
        configs[0].model_id = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        configs[0].chat_template_params["reasoning"] = False  # type: ignore[index]


def test_multiline_template_cells_are_parsed(configs):
    row = configs[0]
    assert row.chat_template_params == {
        "reasoning": True,
        "reasoning_params": {"reasoning_effort": "high"},
    }
    assert row.line == 2
    assert configs[1].line == 5  # the record before spans three physical lines


QUIRKS_TEMPLATE = "reasoning: True\nreasoning_params:\n  enable_thinking: True"
QUIRKS = (
    HEADER + ",Notes\n"
    f',https://huggingface.co/Qwen/Qwen3-0.6B ,1,A,text_gen,On,"{QUIRKS_TEMPLATE}",extra\n'
    ",  Qwen/Qwen3-0.6B  , 2 ,a, text_gen ,off,N/A (default)\n"
    ",https://huggingface.co/google/gemma-3-1b-it/tree/main,3,A,text_gen,On (high),N/A\n"
    ",./local-model,1,B,text_gen,Off (N/A),\n"
    ",black-forest-labs/FLUX.1-dev,2,,image_gen,,N/A\n"
    ",stabilityai/sdxl-turbo,2,n/a,image_gen,N/A (default)\n"  # the trailing empty cell left off
    ",org/plain,1,C,text_gen,Off,chatml\n"
    ",,,,,,\n\n\n"
)


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"], ids=["lf", "crlf", "cr"])
def test_quirks_of_real_files(tmp_path, newline):
    path = write(tmp_path, QUIRKS.replace("\n", newline))
    configs = read_models_csv(path)
    assert [c.model_id for c in configs] == [
        "Qwen/Qwen3-0.6B",
        "Qwen/Qwen3-0.6B",
        "google/gemma-3-1b-it",
        str((tmp_path / "local-model").resolve()),
        "black-forest-labs/FLUX.1-dev",
        "stabilityai/sdxl-turbo",
        "org/plain",
    ]
    # A Hub URL is shown as its model id; a local folder as the cell spells it.
    assert [c.model_name for c in configs[:4]] == [
        "Qwen/Qwen3-0.6B",
        "Qwen/Qwen3-0.6B",
        "google/gemma-3-1b-it",
        "./local-model",
    ]
    assert [c.line for c in configs] == [2, 5, 6, 7, 8, 9, 10]
    assert [c.reasoning_state for c in configs] == [
        ReasoningState.ON,
        ReasoningState.OFF,
        ReasoningState.ON_HIGH,
        ReasoningState.OFF_NA,
        ReasoningState.NONE,
        ReasoningState.NONE,
        ReasoningState.OFF,
    ]
    assert configs[0].chat_template_params["reasoning_params"] == {"enable_thinking": True}
    # A multi-line cell is kept as the file spells it, its own line ends included.
    assert configs[0].chat_template == QUIRKS_TEMPLATE.replace("\n", newline)
    assert configs[1].priority == 2 and configs[1].model_class is ModelClass.A
    assert configs[1].chat_template == "" and configs[2].chat_template == ""
    for image in configs[4:6]:
        assert image.model_class is None and image.reasoning.enabled is None
        assert image.max_new_tokens is None and image.min_new_tokens is None
        assert image.chat_template == "" and image.chat_template_params == {}
    # A cell that is text rather than YAML keys is kept as the template, with no parameters.
    assert configs[6].chat_template == "chatml" and configs[6].chat_template_params == {}


def test_columns_in_another_order_and_spaced_headers(tmp_path):
    body = (
        " Reasoning State , Task ,Class, Models to Add ,Priority (1=hi)\n"
        "Off,text_gen,B,openai/gpt-oss-20b,1\n"
    )
    (config,) = read_models_csv(write(tmp_path, body))
    assert config.model_id == "openai/gpt-oss-20b"
    assert config.model_class is ModelClass.B and config.chat_template == ""
    assert config.reasoning.effort == "low"


def test_a_priority_column_spelled_otherwise_is_the_first_one_so_named(tmp_path):
    # Sheets name it "Priority" or "Priority (1=highest)"; a later note column about priorities
    # must not take its place.
    body = (
        ",Models to Add,Priority,Class,Task,Reasoning State,Priority notes\n"
        ",org/model,2,A,text_gen,Off,raise it later\n"
    )
    (config,) = read_models_csv(write(tmp_path, body))
    assert config.priority == 2


def test_utf8_bom_is_accepted(tmp_path):
    body = "\ufeff" + HEADER + "\n,org/model,1,A,text_gen,Off,\n"
    (config,) = read_models_csv(write(tmp_path, body))
    assert config.model_id == "org/model"


def test_token_budgets_are_overridable(tmp_path):
    body = HEADER + "\n,Qwen/Qwen3-0.6B,1,A,text_gen,On,\n,Qwen/Qwen3-0.6B,1,A,text_gen,Off,\n"
    on, off = read_models_csv(write(tmp_path, body), TokenBudgets(off_tokens=20, on_max_tokens=512))
    assert (on.min_new_tokens, on.max_new_tokens) == (1, 512)
    assert (off.min_new_tokens, off.max_new_tokens) == (20, 20)


ROW = ",org/model,1,A,text_gen,Off,"
BAD_INPUTS = [
    # (name, file content, line, text expected in the message)
    (
        "missing column",
        ",Models to Add,Class,Task,Reasoning State\n,org/m,A,text_gen,Off\n",
        1,
        "missing required column(s) 'Priority (1=hi)'",
    ),
    (
        "missing columns",
        ",Models to Add,Task\n,org/m,text_gen\n",
        1,
        "missing required column(s) 'Priority (1=hi)', 'Class'",
    ),
    ("unknown class", HEADER + "\n" + ROW.replace(",A,", ",D,"), 2, "unknown class"),
    ("priority zero", HEADER + "\n" + ROW + "\n" + ROW.replace(",1,", ",0,"), 3, "priority"),
    ("priority text", HEADER + "\n" + ROW.replace(",1,", ",x,"), 2, "'x'"),
    ("priority four", HEADER + "\n" + ROW.replace(",1,", ",4,"), 2, "'4'"),
    ("unknown state", HEADER + "\n" + ROW.replace(",Off,", ",Maybe,"), 2, "'Maybe'"),
    ("unknown task", HEADER + "\n" + ROW.replace("text_gen", "audio"), 2, "'audio'"),
    ("empty file", "", None, "empty"),
    ("blank lines only", "\n\r\n  \n", None, "empty"),
    ("header only", HEADER + "\n\n", 1, "no model rows"),
    ("non-utf8", HEADER + "\n" + ROW + "\n,caf\xe9/model,1,A,text_gen,Off,\n", 3, "not UTF-8"),
    (
        "duplicate rows that differ",
        HEADER + "\n" + ROW + "\n" + ROW.replace(",1,", ",2,") + "\n",
        3,
        "duplicate row: same model, task and reasoning state as line 2",
    ),
    ("binary garbage", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", 3, "binary"),
    ("NUL bytes on two lines", HEADER + "\n,org/m\x00,1,A\n,\n,x\x00\n", 2, "binary"),
    ("empty model", HEADER + "\n,,1,A,text_gen,Off,\n", 2, "empty model"),
    ("text row without class", HEADER + "\n" + ROW.replace(",A,", ",,"), 2, "need a class"),
    ("text row without state", HEADER + "\n" + ROW.replace(",Off,", ",,"), 2, "reasoning state"),
    (
        "URL with a space",
        HEADER + "\n,https://huggingface.co/my org/model,1,A,text_gen,Off,\n",
        2,
        "not a model URL",
    ),
    ("model with spaces", HEADER + "\n,my model,1,A,text_gen,Off,\n", 2, "not a Hub id"),
    ("unclosed quote", HEADER + "\n" + ROW + '\n,org/b,1,A,text_gen,Off,"open\n', 3, "CSV"),
    (
        "image row with a text key",
        HEADER + "\n,org/pipe,1,,image_gen,,max_new_tokens: 8\n",
        2,
        "takes only",
    ),
]

FULL_MESSAGES = {  # the whole message of each bad input, {path} the file's
    "missing column": (
        "{path}:1: missing required column(s) 'Priority (1=hi)'; header has 'Models to Add', "
        "'Class', 'Task', 'Reasoning State'"
    ),
    "missing columns": (
        "{path}:1: missing required column(s) 'Priority (1=hi)', 'Class', 'Reasoning State'; "
        "header has 'Models to Add', 'Task'"
    ),
    "unknown class": ("{path}:2: column 'Class': unknown class; expected A, B or C (got 'D')"),
    "priority zero": (
        "{path}:3: column 'Priority (1=hi)': priority must be 1, 2 or 3 (1 = highest) (got '0')"
    ),
    "priority text": (
        "{path}:2: column 'Priority (1=hi)': priority must be a whole number 1-3 (got 'x')"
    ),
    "priority four": (
        "{path}:2: column 'Priority (1=hi)': priority must be 1, 2 or 3 (1 = highest) (got '4')"
    ),
    "unknown state": (
        "{path}:2: column 'Reasoning State': unknown reasoning state; expected one of On, On "
        "(High), On (Medium), On (Low), Off, Off (N/A) or empty (got 'Maybe')"
    ),
    "unknown task": (
        "{path}:2: column 'Task': unknown task; expected one of text_gen, image_gen (got 'audio')"
    ),
    "empty file": ("{path}: the file is empty: no header and no rows"),
    "blank lines only": ("{path}: the file is empty: no header and no rows"),
    "header only": ("{path}:1: the file has a header but no model rows"),
    "non-utf8": ("{path}:3: not UTF-8 text (byte 0xe9)"),
    "duplicate rows that differ": (
        "{path}:3: duplicate row: same model, task and reasoning state as line 2, with other "
        "settings (priority, class or chat template); keep one of them (got 'org/model Off')"
    ),
    "binary garbage": ("{path}:3: binary data (a NUL byte): not a CSV text file"),
    "NUL bytes on two lines": ("{path}:2: binary data (a NUL byte): not a CSV text file"),
    "empty model": ("{path}:2: column 'Models to Add': empty model cell"),
    "text row without class": (
        "{path}:2: column 'Class': text_gen rows need a class (A, B or C) (got '')"
    ),
    "text row without state": (
        "{path}:2: column 'Reasoning State': text_gen rows need a reasoning state (On, On "
        "(High), On (Medium), On (Low), Off, Off (N/A)) (got '')"
    ),
    "model with spaces": (
        "{path}:2: column 'Models to Add': not a Hub id (org/name), a Hub URL or a local "
        "folder path (got 'my model')"
    ),
    "URL with a space": (
        "{path}:2: column 'Models to Add': not a model URL of the form <host>/<org>/<name> "
        "(got 'https://huggingface.co/my org/model')"
    ),
    "unclosed quote": ("{path}:3: malformed CSV: unexpected end of data"),
    "image row with a text key": (
        "{path}:2: column 'Chat Template': an image_gen row's YAML takes only "
        "num_inference_steps, height, width, guidance_scale, torch_dtype, save_images, "
        "text_encoder_4 (got 'max_new_tokens')"
    ),
}


@pytest.mark.parametrize(
    ("name", "content", "line", "text"), BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS]
)
def test_bad_input_names_file_line_and_value(tmp_path, name, content, line, text):
    if name == "non-utf8":
        content = content.encode("latin-1")
    path = write(tmp_path, content)
    with pytest.raises(ConfigError) as caught:
        read_models_csv(path)
    error = caught.value
    assert error.line == line
    assert text in str(error)
    prefix = str(path) if line is None else f"{path}:{line}:"
    assert str(error).startswith(prefix)
    assert str(error) == FULL_MESSAGES[name].replace("{path}", str(path))


def test_an_identical_duplicate_row_is_run_once_with_a_warning(tmp_path, caplog):
    # An older AI Energy Score CSV lists DeepSeek-R1-Distill-Llama-70B On twice, word for word.
    row = ",https://huggingface.co/deepseek-ai/DeepSeek-R1-Distill-Llama-70B,1,C,text_gen,On,"
    repeat = row.replace("https://huggingface.co/", "")
    body = HEADER + "\n" + row + "\n" + ROW + "\n" + repeat + "\n,org/after,1,A,text_gen,On,\n"
    configs = read_models_csv(write(tmp_path, body))
    assert [(c.model_id, c.line) for c in configs] == [  # the rows after the repeat are read too
        ("deepseek-ai/DeepSeek-R1-Distill-Llama-70B", 2),
        ("org/model", 3),
        ("org/after", 5),
    ]
    (warning,) = [r for r in caplog.records if r.levelname == "WARNING"]
    assert f"{tmp_path / 'models.csv'}:4: the same row as line 2" in warning.getMessage()


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError) as caught:
        read_models_csv(tmp_path / "nope.csv")
    assert str(caught.value) == f"{tmp_path / 'nope.csv'}: file not found"


def test_directory_instead_of_file(tmp_path):
    with pytest.raises(ConfigError) as caught:
        read_models_csv(tmp_path)
    # The system's reason, not the exception's repr with its errno.
    assert str(caught.value) == f"{tmp_path}: cannot read the file: {os.strerror(errno.EISDIR)}"


def test_contradicting_template_warns_and_state_wins(tmp_path, caplog):
    body = (
        HEADER + "\n,Qwen/Qwen3-0.6B,1,A,text_gen,On,reasoning: False\n"
        ",Qwen/Qwen3-0.6B,1,A,text_gen,Off,reasoning: False\n"  # agrees
        ",org/m,1,A,text_gen,On,max_new_tokens: 64\n"  # says nothing about reasoning
    )
    path = write(tmp_path, body)
    config = read_models_csv(path)[0]
    assert config.reasoning.enabled is True
    (warning,) = [r for r in caplog.records if r.levelname == "WARNING"]
    assert warning.getMessage() == (
        f"{path}:2: Chat Template says reasoning: False but Reasoning State is 'On'; "
        "the Reasoning State is used"
    )


def test_a_row_can_set_its_own_token_budget(tmp_path):
    body = (
        HEADER + "\n"
        ',Qwen/Qwen3-0.6B,1,A,text_gen,On,"reasoning: True\nmax_new_tokens: 32"\n'
        ",Qwen/Qwen3-0.6B,1,A,text_gen,Off,max_new_tokens: 20\n"
        ',org/m,1,A,text_gen,Off,"max_new_tokens: 5\nmin_new_tokens: 2"\n'
        ",org/one,1,A,text_gen,On,max_new_tokens: 1\n"
        ",org/low,1,A,text_gen,Off,min_new_tokens: 3\n"  # a floor only: the budget stays 10
    )
    on, off, both, one, low = read_models_csv(write(tmp_path, body))
    assert (on.min_new_tokens, on.max_new_tokens) == (1, 32)
    assert (off.min_new_tokens, off.max_new_tokens) == (20, 20)
    assert (both.min_new_tokens, both.max_new_tokens) == (2, 5)
    assert (one.min_new_tokens, one.max_new_tokens) == (1, 1)
    assert (low.min_new_tokens, low.max_new_tokens) == (3, TokenBudgets().off_tokens)


def test_a_row_can_set_its_gpus_and_trust_its_model_s_code(tmp_path):
    body = HEADER + '\n,org/own,1,C,text_gen,Off,"num_gpus: 1\ntrust_remote_code: true"\n' + ROW
    own, plain = read_models_csv(write(tmp_path, body))
    assert (own.num_gpus, own.trust_remote_code) == (1, True)
    assert (plain.num_gpus, plain.trust_remote_code) == (None, False)  # its class's GPUs


WHOLE = "must be a whole number of at least 1"


@pytest.mark.parametrize(
    ("cell", "reason"),
    [
        ("max_new_tokens: 0", f"max_new_tokens {WHOLE} (got '0')"),
        ("max_new_tokens: lots", f"max_new_tokens {WHOLE} (got 'lots')"),
        ("max_new_tokens: true", f"max_new_tokens {WHOLE} (got 'True')"),
        ('"max_new_tokens: 4\nmin_new_tokens: 9"', "min_new_tokens 9 is above max_new_tokens 4"),
        ("num_gpus: 0", f"num_gpus {WHOLE} (got '0')"),
        ("num_gpus: two", f"num_gpus {WHOLE} (got 'two')"),
        ("num_gpus: true", f"num_gpus {WHOLE} (got 'True')"),
        ("trust_remote_code: maybe", "trust_remote_code must be true or false (got 'maybe')"),
    ],
)
def test_bad_row_settings_name_the_chat_template_column(tmp_path, cell, reason):
    path = write(tmp_path, HEADER + f"\n,org/m,1,A,text_gen,On,{cell}\n")
    with pytest.raises(ConfigError) as caught:
        read_models_csv(path)
    assert caught.value.line == 2
    assert str(caught.value) == f"{path}:2: column 'Chat Template': {reason}"


def test_demo_csv_parses():
    configs = read_models_csv(ROOT / "examples" / "demo_models.csv")
    assert [c.reasoning_state.value for c in configs] == ["Off", "On", "Off (N/A)", ""]
    assert [c.task.value for c in configs] == ["text_gen"] * 3 + ["image_gen"]
    assert {c.model_id for c in configs[:3]} == {str(ROOT / "examples" / "tiny-model")}
    assert configs[3].model_id == str(ROOT / "examples" / "tiny-image-pipeline")
    assert configs[1].max_new_tokens == 32
    assert configs[3].max_new_tokens is None and configs[3].model_class is None


def test_filters_take_the_ai_energy_score_positional_order():
    configs = ModelConfigParser(ROOT / "models.csv").parse()
    positional = ModelConfigParser.filter_configs(configs, "qwen3", "A", "text_gen", "On")
    assert positional and all(c.reasoning_state == "On" for c in positional)
    assert positional == ModelConfigParser.filter_configs(
        configs, model_name="qwen3", model_class="A", task="text_gen", reasoning_state="On"
    )


def test_a_local_folder_spelled_twice_is_one_row_run_once(tmp_path, caplog):
    (tmp_path / "tiny").mkdir()
    body = HEADER + "\n,./tiny,1,A,text_gen,Off,\n,tiny ,1,A,text_gen,Off,\n"
    (config,) = read_models_csv(write(tmp_path, body))
    assert (config.model_name, config.line) == ("./tiny", 2)  # the first spelling is shown
    (warning,) = [r for r in caplog.records if r.levelname == "WARNING"]
    assert warning.getMessage() == (
        f"{tmp_path / 'models.csv'}:3: the same row as line 2 (tiny Off); it is run once"
    )


def test_folders_whose_names_only_fold_together_are_two_models(tmp_path):
    # "ß" upper-cases to "SS": the rows name two folders, so two models, not one row twice.
    for name in ("maße", "masse"):
        (tmp_path / name).mkdir()
    body = HEADER + "\n,./maße,1,A,text_gen,Off,\n,./masse,2,A,text_gen,Off,\n"
    configs = read_models_csv(write(tmp_path, body))
    assert [(c.model_name, c.priority) for c in configs] == [("./maße", 1), ("./masse", 2)]


def test_a_command_line_model_is_validated_as_a_row_without_a_line():
    config = single_config("org/model")
    assert (config.source, config.line) == ("command line", 0)
    with pytest.raises(ConfigError) as caught:
        single_config("my model")
    assert str(caught.value) == (
        "command line: column 'Models to Add': not a Hub id (org/name), a Hub URL or a local "
        "folder path (got 'my model')"
    )
