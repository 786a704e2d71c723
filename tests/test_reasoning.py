"""Every row of models.csv resolves to the reasoning directive its family prescribes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from model_config_parser import ModelConfigParser
from orchestrator.errors import ConfigError
from orchestrator.models.config import ReasoningState, Task
from orchestrator.models.reasoning import (
    NOT_APPLICABLE,
    SHIPPED_FORMATS,
    ReasoningFormats,
    Rule,
    load_formats,
    read_formats,
    resolve_directive,
)

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ModelConfigParser(ROOT / "models.csv").parse()

# Written out by hand from each family's documented switch, independently of the family table
# in orchestrator.models.reasoning:
# model id -> (how "On" is applied, how "Off" is applied).
EXPECTED_CONTROL = {
    "openai/gpt-oss-20b": ("harmony", "harmony"),
    "openai/gpt-oss-120b": ("harmony", "harmony"),
    "Qwen/Qwen3-30B-A3B": ("chat_template_kwarg", "chat_template_kwarg"),
    "Qwen/Qwen3-0.6B": ("chat_template_kwarg", "chat_template_kwarg"),
    "Qwen/Qwen3-235B-A22B": ("chat_template_kwarg", "chat_template_kwarg"),
    "Qwen/Qwen3-Next-80B-A3B-Thinking": ("model_default", None),  # thinking only
    "Qwen/Qwen3-Next-80B-A3B-Instruct": ("model_default", None),  # instruct only
    "deepseek-ai/DeepSeek-R1": ("think_prefix", "think_prefix"),
    "deepseek-ai/DeepSeek-R1-0528": ("think_prefix", "think_prefix"),
    "deepseek-ai/DeepSeek-R1-Distill-Llama-70B": ("think_prefix", "think_prefix"),
    "deepseek-ai/DeepSeek-R1-Distill-Qwen-32B": ("think_prefix", "think_prefix"),
    "tencent/Hunyuan-1.8B-Instruct": ("prompt_prefix", "prompt_prefix"),
    "LGAI-EXAONE/EXAONE-4.0-32B": ("chat_template_kwarg", "chat_template_kwarg"),
    "nvidia/Llama-3_3-Nemotron-Super-49B-v1_5": ("system_prompt", "system_prompt"),
    "HuggingFaceTB/SmolLM3-3B": ("system_prompt", "system_prompt"),
    "microsoft/Phi-4-reasoning-plus": ("model_default", "chat_template_kwarg"),
    "zai-org/GLM-4.6": (None, "chat_template_kwarg"),  # thinks by default; honours the switch
    "zai-org/GLM-4.5": (None, "chat_template_kwarg"),
    "zai-org/GLM-4.5-Air": (None, "chat_template_kwarg"),
    "mistralai/Magistral-Small-2507": (None, "model_default"),  # always reasons
    "MiniMaxAI/MiniMax-M1-80k": (None, "model_default"),  # always reasons
    "google/gemma-3-270m-it": ("model_default", None),
    "google/gemma-3-1b-it": ("model_default", None),
    "google/gemma-3-12b-it": ("model_default", None),
    "google/gemma-3-27b-it": ("model_default", None),
}
# Rows whose model has one mode only, the other one than the CSV asks: it runs in its own mode.
ONE_MODE = {
    "google/gemma-3-270m-it": False,
    "google/gemma-3-1b-it": False,
    "google/gemma-3-12b-it": False,
    "google/gemma-3-27b-it": False,
    "Qwen/Qwen3-Next-80B-A3B-Instruct": False,
    "mistralai/Magistral-Small-2507": True,
    "MiniMaxAI/MiniMax-M1-80k": True,
}
GPT_OSS_EFFORT = {
    ReasoningState.ON_HIGH: "high",
    ReasoningState.ON_MEDIUM: "medium",
    ReasoningState.ON_LOW: "low",
    ReasoningState.OFF_NA: "low",
}


@pytest.mark.parametrize(
    "config", CONFIGS, ids=[f"{c.line}-{c.model_id}-{c.reasoning_state}" for c in CONFIGS]
)
def test_row_resolves_as_the_spec_says(config):
    d = config.reasoning
    state = config.reasoning_state
    if config.task is Task.IMAGE_GEN:
        assert d.enabled is None and d.control == "none" and config.max_new_tokens is None
        return
    asked = state.value.startswith("On")
    on = ONE_MODE.get(config.model_id, asked)
    assert d.enabled is on
    assert bool(d.mismatch) is (on != asked)
    if on != asked:  # said in the row's note, with the mode that runs
        assert state.value in d.mismatch and ("only reasoning" if on else "without") in d.mismatch
    if asked:  # the budget is the row's, whichever mode the model has
        assert (config.min_new_tokens, config.max_new_tokens) == (1, 8192)
        assert d.control == EXPECTED_CONTROL[config.model_id][0]
    else:
        assert config.min_new_tokens == config.max_new_tokens == 10
        # Off is off wherever a template may have a switch; the container checks that it does.
        expected = EXPECTED_CONTROL.get(config.model_id, (None, "chat_template_kwarg"))[1]
        assert d.control == expected

    if "gpt-oss" in config.model_id:
        assert d.effort == GPT_OSS_EFFORT[state]
        assert d.chat_template_kwargs == {"reasoning_effort": GPT_OSS_EFFORT[state]}
        if not on:
            assert "no off switch" in d.note
    elif d.control == "chat_template_kwarg":
        assert d.chat_template_kwargs == {"enable_thinking": on}
    elif d.control == "think_prefix":
        assert d.assistant_prefix == ("<think>\n" if on else "<think>\n\n</think>\n\n")
    elif d.control == "system_prompt":
        assert d.system_prompt == ("/think" if on else "/no_think")
    elif d.control == "prompt_prefix":
        assert d.prompt_prefix == ("/think" if on else "/no_think")
    else:
        assert d.control in {"model_default", "none"}
        assert not d.chat_template_kwargs and not d.system_prompt and not d.assistant_prefix


def test_plain_on_for_gpt_oss_is_high_effort():
    d = resolve_directive("openai/gpt-oss-20b", ReasoningState.ON, Task.TEXT_GEN)
    assert d.effort == "high" and d.enabled


def test_effort_on_a_family_without_levels_is_flagged():
    d = resolve_directive("Qwen/Qwen3-8B", ReasoningState.ON_LOW, Task.TEXT_GEN)
    assert d.enabled and d.chat_template_kwargs == {"enable_thinking": True}
    assert "no effort levels" in d.note


def test_local_folder_ids_use_the_folder_name_for_the_family():
    d = resolve_directive("/models/Qwen3-0.6B", ReasoningState.OFF, Task.TEXT_GEN)
    assert d.control == "chat_template_kwarg" and d.chat_template_kwargs == {
        "enable_thinking": False
    }


def test_older_nemotron_is_not_taken_for_v1_5():
    d = resolve_directive("nvidia/Llama-3_1-Nemotron-Nano-8B-v1", ReasoningState.ON, Task.TEXT_GEN)
    assert d.control == "model_default"


# --- a reasoning-formats file with a mistake: the message names the file, the entry and value -
GOOD_OFF = "off: {control: chat_template_kwarg}"


@pytest.mark.parametrize(
    ("family", "message"),
    [
        ("- just text", "families[0]: expected a mapping (got 'just text')"),
        ("- {patterns: [x], on: system_prompt, off: system_prompt}",
         "families[0]: every family needs a name"),
        ("- {name: '  ', patterns: [x]}", "families[0]: every family needs a name"),
        ("- {name: f, patterns: [x], on: system_prompt, off: system_prompt, colour: red}",
         "family 'f': unknown key(s) colour; expected name, off, on, patterns"),
        ("- {name: f, patterns: [], on: system_prompt, off: system_prompt}",
         "family 'f': patterns must be a list of regular expressions"),
        ("- {name: f, patterns: '(', on: system_prompt, off: system_prompt}",
         "family 'f': bad pattern (missing ), unterminated subpattern at position 0) (got '(')"),
        ("- {name: f, patterns: [x], on: system_prompt}", "family 'f': missing 'off'"),
        ("- {name: f, patterns: [x], off: system_prompt}", "family 'f': missing 'on'"),
        ("- {name: f, patterns: [x], on: [1], off: system_prompt}",
         "family 'f', on: expected a mapping with 'control' (got '[1]')"),
        ("- {name: f, patterns: [x], on: {control: harmony, level: 3}, off: system_prompt}",
         "family 'f', on: unknown key(s) level; expected control, effort, note, runs"),
        ("- {name: f, patterns: [x], on: system_prompt, off: none}",
         "family 'f', off: control must be one of "
         "harmony, chat_template_kwarg, think_prefix, system_prompt, prompt_prefix, model_default "
         "(got 'none')"),
        ("- {name: f, patterns: [x], on: {control: system_prompt, effort: high}, off: harmony}",
         "family 'f', on: effort is for control harmony, one of high, medium, low (got 'high')"),
        ("- {name: f, patterns: [x], on: {control: harmony, effort: max}, off: harmony}",
         "family 'f', on: effort is for control harmony, one of high, medium, low (got 'max')"),
        ("- {name: f, patterns: [x], on: {control: harmony, runs: maybe}, off: harmony}",
         "family 'f', on: runs must be on or off (got 'maybe')"),
        ("- {name: f, patterns: [x], on: {control: harmony, note: 3}, off: harmony}",
         "family 'f', on: note must be text (got '3')"),
    ],
)  # fmt: skip
def test_a_formats_file_with_a_mistake_is_refused_with_its_place(tmp_path, family, message):
    path = tmp_path / "formats.yaml"
    path.write_text(f"families:\n  {family}\n")
    with pytest.raises(ConfigError) as raised:
        read_formats(path)
    assert str(raised.value) == f"{path}: {message}"
    assert raised.value.path == str(path)


def test_a_formats_file_reads_rules_in_every_spelling(tmp_path):
    path = tmp_path / "formats.yaml"
    path.write_text(
        "families:\n"
        "  - name: ' f '\n"
        "    patterns: '^org/f-'\n"  # one pattern as text
        "    on: {control: harmony, effort: low, runs: on, note: ' thinks '}\n"
        "    off: {control: system_prompt, runs: false}\n"  # on / off or true / false
        "  - {name: g, patterns: [x], on: prompt_prefix, off: {control: harmony}}\n"
    )
    f, g = read_formats(path)
    assert (f.name, [p.pattern for p in f.patterns]) == ("f", ["^org/f-"])
    assert f.patterns[0].flags & re.IGNORECASE
    assert f.on == Rule("harmony", "low", True, "thinks")
    assert f.off == Rule("system_prompt", None, False, "")
    assert (g.on, g.off) == (Rule("prompt_prefix", None, None, ""), Rule("harmony", None, None, ""))


@pytest.mark.parametrize(
    ("text", "message"),
    [("families: []\n", ": expected a top-level 'families:' list"),
     ("- a\n", ": expected a top-level 'families:' list"),
     ("families: [\n", ":2: not YAML: expected the node content, but found '<stream end>'")],
)  # fmt: skip
def test_a_formats_file_that_is_not_a_list_of_families_is_refused(tmp_path, text, message):
    path = tmp_path / "formats.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as raised:
        read_formats(path)
    assert str(raised.value) == f"{path}{message}"


def test_a_formats_file_that_cannot_be_read_or_holds_a_control_character_is_refused(tmp_path):
    path = tmp_path / "formats.yaml"
    path.write_bytes(b"\xff\xfefamilies: []\n")  # not UTF-8
    with pytest.raises(ConfigError) as raised:
        read_formats(path)
    assert str(raised.value) == (
        f"{path}: cannot read the file: 'utf-8' codec can't decode byte 0xff in position 0: "
        "invalid start byte"
    )
    path.write_text("families: \x07\n")  # the reader refuses it before any mark is set
    with pytest.raises(ConfigError) as raised:
        read_formats(path)
    assert str(raised.value) == (
        f"{path}: not YAML: unacceptable character #x0007: special characters are not allowed\n"
        '  in "<unicode string>", position 10'
    )
    assert raised.value.line is None


def formats(tmp_path, *families: str) -> ReasoningFormats:
    path = tmp_path / "formats.yaml"
    path.write_text("families:\n" + "".join(f"  - {f}\n" for f in families))
    return ReasoningFormats(read_formats(path))


def test_harmony_takes_the_state_s_effort_then_the_rule_s_then_high_on_and_low_off(tmp_path):
    table = formats(
        tmp_path,
        "{name: bare, patterns: [bare], on: harmony, off: harmony}",
        "{name: set, patterns: [set], on: {control: harmony, effort: medium},"
        " off: {control: harmony, effort: medium}}",
    )

    def effort(model, state):
        return table.resolve(model, state, Task.TEXT_GEN).effort

    assert [effort("org/bare", s) for s in (ReasoningState.ON, ReasoningState.OFF)] == [
        "high", "low",
    ]  # fmt: skip
    assert [effort("org/set", s) for s in (ReasoningState.ON, ReasoningState.OFF)] == [
        "medium", "medium",
    ]  # fmt: skip
    assert effort("org/set", ReasoningState.ON_LOW) == "low"  # the state's own effort first
    assert effort("org/bare", ReasoningState.OFF_NA) == "low"


def test_a_family_without_effort_levels_has_none_and_says_so_only_when_one_was_asked(tmp_path):
    table = formats(
        tmp_path,
        "{name: h, patterns: [gpt], on: harmony, off: harmony}",
        "{name: k, patterns: ['.'], on: {control: chat_template_kwarg, note: kwarg family},"
        " off: chat_template_kwarg}",
    )
    plain = table.resolve("org/m", ReasoningState.ON, Task.TEXT_GEN)
    assert (plain.effort, plain.note, plain.mismatch) == (None, "kwarg family", "")
    asked = table.resolve("org/m", ReasoningState.ON_HIGH, Task.TEXT_GEN)
    assert asked.effort is None
    assert asked.note == ("kwarg family; this family has no effort levels: 'high' is not applied")
    harmony = table.resolve("org/gpt", ReasoningState.ON_LOW, Task.TEXT_GEN)
    assert (harmony.effort, harmony.note) == ("low", "")


def test_a_one_mode_model_says_which_mode_it_runs_in(tmp_path):
    table = formats(
        tmp_path,
        "{name: t, patterns: [think], on: model_default,"
        " off: {control: model_default, runs: on, note: it always thinks}}",
        "{name: i, patterns: ['.'], on: {control: model_default, runs: off}, off: model_default}",
    )
    thinking = table.resolve("org/think", ReasoningState.OFF, Task.TEXT_GEN)
    assert (thinking.enabled, thinking.mismatch) == (
        True, "the CSV asks Off, but the model runs only reasoning: it always thinks",
    )  # fmt: skip
    instruct = table.resolve("org/m", ReasoningState.ON, Task.TEXT_GEN)
    assert (instruct.enabled, instruct.mismatch) == (
        False, "the CSV asks On, but the model runs only without reasoning",  # no note to add
    )  # fmt: skip


def test_reasoning_applies_to_text_generation_with_a_state_only():
    table = ReasoningFormats(read_formats(SHIPPED_FORMATS))
    for state in ReasoningState:
        assert table.resolve("org/m", state, Task.IMAGE_GEN) == NOT_APPLICABLE
    assert table.resolve("org/m", ReasoningState.NONE, Task.TEXT_GEN) == NOT_APPLICABLE
    assert table.resolve("org/m", ReasoningState.ON, Task.TEXT_GEN) != NOT_APPLICABLE


def test_a_user_s_formats_file_is_tried_before_the_shipped_families(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(
        "families:\n  - {name: mine, patterns: [gpt-oss], on: system_prompt, off: system_prompt}\n"
    )
    table = load_formats([path])
    gpt = table.resolve("openai/gpt-oss-20b", ReasoningState.ON, Task.TEXT_GEN)
    assert (gpt.control, gpt.system_prompt) == ("system_prompt", "/think")
    qwen = table.resolve("Qwen/Qwen3-8B", ReasoningState.ON, Task.TEXT_GEN)
    assert qwen.control == "chat_template_kwarg"  # the shipped families still follow


def test_a_table_without_a_family_for_the_model_names_the_model(tmp_path):
    # The shipped table ends in a family that matches every id; a table read alone may not.
    table = formats(tmp_path, "{name: h, patterns: [gpt], on: harmony, off: harmony}")
    with pytest.raises(LookupError) as raised:
        table.resolve("org/m", ReasoningState.ON, Task.TEXT_GEN)
    assert str(raised.value) == "no reasoning family matches 'org/m'"


@pytest.mark.parametrize(
    ("model", "state", "writes"),
    [
        ("openai/gpt-oss-20b", "On (Medium)", ({"reasoning_effort": "medium"}, None, None, None)),
        ("openai/gpt-oss-20b", "Off", ({"reasoning_effort": "low"}, None, None, None)),
        ("Qwen/Qwen3-0.6B", "Off", ({"enable_thinking": False}, None, None, None)),
        ("deepseek-ai/DeepSeek-R1", "On", ({}, None, None, "<think>\n")),
        ("deepseek-ai/DeepSeek-R1", "Off", ({}, None, None, "<think>\n\n</think>\n\n")),
        ("HuggingFaceTB/SmolLM3-3B", "On", ({}, "/think", None, None)),
        ("tencent/Hunyuan-1.8B-Instruct", "Off", ({}, None, "/no_think", None)),
        ("google/gemma-3-1b-it", "On", ({}, None, None, None)),
    ],
)
def test_each_control_writes_its_own_strings_for_the_mode(model, state, writes):
    # (chat template kwargs, system prompt, prompt prefix, assistant prefix), written out from
    # each family's documented switch.
    d = resolve_directive(model, ReasoningState(state), Task.TEXT_GEN)
    assert (dict(d.chat_template_kwargs), d.system_prompt, d.prompt_prefix, d.assistant_prefix) == (
        writes
    )
