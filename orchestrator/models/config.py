"""The typed, immutable configuration of one row of the models CSV."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Literal

from energy_bench import contract
from energy_bench.contract import Control


class ModelClass(StrEnum):
    """AI Energy Score size class: A fits one consumer GPU, B one cloud GPU, C needs several."""

    A = "A"
    B = "B"
    C = "C"


class Task(StrEnum):
    """Benchmark task, spelt as in the AI Energy Score CSV."""

    TEXT_GEN = "text_gen"
    IMAGE_GEN = "image_gen"


# What an image_gen row's Chat Template YAML may set, and the benchmark key each sets (a text
# row's YAML is the chat template's own: free-form). Other keys are refused with the row's line.
IMAGE_ROW_KEYS = MappingProxyType(
    {
        "num_inference_steps": "scenario.num_inference_steps",
        "height": "scenario.height",
        "width": "scenario.width",
        "guidance_scale": "scenario.guidance_scale",
        "torch_dtype": "backend.torch_dtype",
        "save_images": "scenario.save_images",
        **{key: f"backend.{key}" for key in contract.IMAGE_EXTRA_KEYS},
    }
)


class ReasoningState(StrEnum):
    """The CSV's Reasoning State column; ``NONE`` is an empty cell (image tasks)."""

    ON = "On"
    ON_HIGH = "On (High)"
    ON_MEDIUM = "On (Medium)"
    ON_LOW = "On (Low)"
    OFF = "Off"
    OFF_NA = "Off (N/A)"
    NONE = ""

    @classmethod
    def from_text(cls, text: str) -> ReasoningState | None:
        """The non-empty state ``text`` spells, case and spacing aside (``on  (high)``); or None."""
        wanted = " ".join(text.split()).lower()
        return next((s for s in cls if s.value and s.value.lower() == wanted), None)

    @property
    def enabled(self) -> bool | None:
        """True for the On states, False for the Off states, None for an empty cell."""
        if self is ReasoningState.NONE:
            return None
        return self.value.startswith("On")

    @property
    def effort(self) -> Effort | None:
        """The effort written in the state (``On (High)`` -> ``high``), if any."""
        return _EFFORT_OF_STATE.get(self)


Effort = Literal["high", "medium", "low"]

_EFFORT_OF_STATE: dict[ReasoningState, Effort] = {
    ReasoningState.ON_HIGH: "high",
    ReasoningState.ON_MEDIUM: "medium",
    ReasoningState.ON_LOW: "low",
}


def _frozen(mapping: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True)
class TokenBudgets:
    """New-token budgets: exactly ``off_tokens`` off, up to ``on_max_tokens`` on; overridable."""

    off_tokens: int = 10
    on_max_tokens: int = 8192
    on_min_tokens: int = 1

    def __post_init__(self) -> None:
        if self.off_tokens < 1 or self.on_min_tokens < 1:
            raise ValueError("token budgets must be at least 1")
        if self.on_max_tokens < self.on_min_tokens:
            raise ValueError("on_max_tokens must not be below on_min_tokens")


@dataclass(frozen=True)
class ReasoningDirective:
    """Exactly how the container must apply the requested reasoning state.

    Resolved on the host from the CSV's Reasoning State and the model family, so that the
    container never guesses from a model name. ``enabled`` is None where reasoning does not apply
    (image tasks). ``note`` says, in words, any way in which the request cannot be honoured;
    ``mismatch`` is set when the model has only the other mode and runs in it (``enabled`` is
    then the mode that runs, not the one the CSV asked for).
    """

    enabled: bool | None
    control: Control
    effort: Effort | None = None
    chat_template_kwargs: Mapping[str, Any] = field(default_factory=dict)
    system_prompt: str | None = None
    prompt_prefix: str | None = None
    assistant_prefix: str | None = None
    note: str = ""
    mismatch: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "chat_template_kwargs", _frozen(self.chat_template_kwargs))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (the form the listing and the container command line use)."""
        return {
            "enabled": self.enabled,
            "effort": self.effort,
            "control": self.control,
            "chat_template_kwargs": dict(self.chat_template_kwargs),
            "system_prompt": self.system_prompt,
            "prompt_prefix": self.prompt_prefix,
            "assistant_prefix": self.assistant_prefix,
            "note": self.note,
            "mismatch": self.mismatch,
        }


@dataclass(frozen=True)
class ModelConfig:
    """One validated row of the models CSV with its resolved reasoning directive.

    ``model_id`` is a Hub id (``org/name``) or a local folder's resolved path: what runs.
    ``model_name`` is the model as results show it: the CSV's own spelling of a local folder
    (``./tiny-model``, relative to the CSV), else ``model_id``. ``max_new_tokens`` and
    ``min_new_tokens`` are None for tasks that generate no tokens. ``num_gpus`` is the row's own
    GPU count (its Chat Template YAML's ``num_gpus``), None to take its class's;
    ``trust_remote_code`` is its Chat Template YAML's key of that name (models whose code is not
    in transformers).
    """

    model_id: str
    priority: int
    model_class: ModelClass | None
    task: Task
    reasoning_state: ReasoningState
    reasoning: ReasoningDirective
    max_new_tokens: int | None
    min_new_tokens: int | None
    chat_template: str = ""
    chat_template_params: Mapping[str, Any] = field(default_factory=dict)
    source: str = ""
    line: int = 0
    num_gpus: int | None = None
    model_name: str = ""
    trust_remote_code: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "chat_template_params", _frozen(self.chat_template_params))
        if not self.model_name:
            object.__setattr__(self, "model_name", self.model_id)

    @property
    def use_harmony(self) -> bool:
        """True where the prompt is rendered in OpenAI's Harmony format (gpt-oss)."""
        return self.reasoning.control == "harmony"

    @property
    def reasoning_params(self) -> dict[str, Any]:
        """The reasoning parameters in the AI Energy Score parser's form.

        ``{'reasoning_effort': 'high'}`` (gpt-oss), ``{'enable_thinking': True}`` (a chat
        template switch), ``{'reasoning': True}`` (another mechanism), ``{}`` where none applies
        and for ``Off (N/A)`` rows.
        """
        d = self.reasoning
        if self.reasoning_state is ReasoningState.OFF_NA:
            return {}  # as the parser gives these rows none; ``reasoning`` has what is applied
        if d.effort:
            return {"reasoning_effort": d.effort}
        if d.chat_template_kwargs:
            return dict(d.chat_template_kwargs)
        if d.enabled is None or d.control == "none":
            return {}
        return {"reasoning": d.enabled}

    @property
    def prompt_prefix(self) -> str:
        """Text put before each prompt (``/think``, ``/no_think``), as the parser names it."""
        return self.reasoning.prompt_prefix or ""

    @property
    def prompt_suffix(self) -> str:
        """Text put after each prompt: no family uses one (kept for the parser's API)."""
        return ""

    @property
    def state_slug(self) -> str:
        """The reasoning state in folder names, as AI Energy Score spells it there.

        ``On (High)`` -> ``On_High``, ``Off (N/A)`` -> ``Off_N_A``; ``NA`` for an empty state.
        """
        words = re.sub(r"[()/]", " ", self.reasoning_state.value)
        return "_".join(words.split()) or "NA"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; the schema of ``model_config_parser.py --json``."""
        return {
            "model_id": self.model_id,
            "priority": self.priority,
            "model_class": self.model_class.value if self.model_class else None,
            "task": self.task.value,
            "reasoning_state": self.reasoning_state.value,
            "reasoning": self.reasoning.to_dict(),
            "max_new_tokens": self.max_new_tokens,
            "min_new_tokens": self.min_new_tokens,
            "num_gpus": self.num_gpus,
            "trust_remote_code": self.trust_remote_code,
            "chat_template_params": dict(self.chat_template_params),
            "source": self.source,
            "line": self.line,
        }
