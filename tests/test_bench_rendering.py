"""The reasoning directive reaches the prompt exactly as the host resolved it."""

from __future__ import annotations

import pytest
from conftest import TINY_MODEL

from energy_bench.config import ReasoningConfig
from energy_bench.workload.rendering import plan, render


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(TINY_MODEL)


def rendered(tokenizer, enabled, control, effort=None, prompt="What is a glacier?"):
    applied = plan(tokenizer, ReasoningConfig(enabled, control, effort))
    return applied, render(tokenizer, prompt, applied)


def test_enable_thinking_kwarg_changes_the_prompt(tokenizer):
    on_plan, on = rendered(tokenizer, True, "chat_template_kwarg")
    off_plan, off = rendered(tokenizer, False, "chat_template_kwarg")
    assert on != off
    assert on.endswith("<|assistant|><think>\n")
    assert off.endswith("<|assistant|><think>\n\n</think>\n\n")
    assert on_plan.applied_control == off_plan.applied_control == "chat_template_kwarg"
    assert off_plan.template_kwargs == {"enable_thinking": False}


def test_system_prompt_flags(tokenizer):
    _, on = rendered(tokenizer, True, "system_prompt")
    _, off = rendered(tokenizer, False, "system_prompt")
    assert "<|system|>/think\n" in on and "<|system|>/no_think\n" in off


def test_prompt_prefix(tokenizer):
    _, on = rendered(tokenizer, True, "prompt_prefix")
    _, off = rendered(tokenizer, False, "prompt_prefix")
    assert "<|user|>/think What is a glacier?" in on
    assert "<|user|>/no_think What is a glacier?" in off


def test_think_prefix_opens_or_closes_the_block(tokenizer):
    _, on = rendered(tokenizer, True, "think_prefix")
    _, off = rendered(tokenizer, False, "think_prefix")
    assert on.endswith("<|assistant|><think>\n")
    assert off.endswith("<|assistant|><think>\n\n</think>\n\n")


def test_model_default_and_none_leave_the_template_alone(tokenizer):
    _, default = rendered(tokenizer, True, "model_default")
    _, none = rendered(tokenizer, None, "none")
    assert default == none and default.endswith("<|assistant|>")


class NoThinkingTemplate:
    chat_template = "{% for m in messages %}{{ m['content'] }}{% endfor %}"

    def apply_chat_template(self, messages, **kwargs):
        return "".join(m["content"] for m in messages)


class NoTemplate:
    chat_template = None

    def apply_chat_template(self, messages, **kwargs):  # pragma: no cover - never called
        raise AssertionError


def test_template_that_ignores_the_flag_is_reported_as_none():
    applied, _ = rendered(NoThinkingTemplate(), False, "chat_template_kwarg")
    assert applied.requested_control == "chat_template_kwarg"
    assert applied.applied_control == "none"
    assert "does not read enable_thinking" in applied.note
    applied, _ = rendered(NoThinkingTemplate(), True, "harmony", "high")
    assert applied.applied_control == "none" and "reasoning_effort" in applied.note


def test_no_template_means_raw_text_and_prefix_only():
    applied, text = rendered(NoTemplate(), True, "system_prompt")
    assert applied.applied_control == "none" and text == "What is a glacier?"
    applied, text = rendered(NoTemplate(), False, "prompt_prefix")
    assert applied.applied_control == "prompt_prefix" and text == "/no_think What is a glacier?"
