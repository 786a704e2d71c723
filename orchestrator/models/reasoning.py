"""Resolve a CSV Reasoning State into an explicit directive for the model's family.

The CSV's state is authoritative. Each family knows the one mechanism its models honour; where a
family has no way to honour a state, the directive says so (``control="none"`` or a ``note``)
instead of running something else silently.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from energy_bench.contract import NO_THINK, THINK, THINK_EMPTY, THINK_OPEN
from orchestrator.models.config import Effort, ReasoningDirective, ReasoningState, Task


def _gpt_oss(on: bool, effort: Effort | None) -> ReasoningDirective:
    if on:
        return ReasoningDirective(
            enabled=True,
            control="harmony",
            effort=effort or "high",
            chat_template_kwargs={"reasoning_effort": effort or "high"},
        )
    return ReasoningDirective(
        enabled=False,
        control="harmony",
        effort="low",
        chat_template_kwargs={"reasoning_effort": "low"},
        note="gpt-oss has no off switch: lowest effort with the reasoning-off token budget",
    )


def _enable_thinking_kwarg(on: bool, effort: Effort | None) -> ReasoningDirective:
    return ReasoningDirective(
        enabled=on,
        control="chat_template_kwarg",
        chat_template_kwargs={"enable_thinking": on},
        note=_effort_ignored(effort),
    )


def _deepseek_r1(on: bool, effort: Effort | None) -> ReasoningDirective:
    return ReasoningDirective(
        enabled=on,
        control="think_prefix",
        assistant_prefix=THINK_OPEN if on else THINK_EMPTY,
        note=_effort_ignored(effort),
    )


def _hunyuan(on: bool, effort: Effort | None) -> ReasoningDirective:
    return ReasoningDirective(
        enabled=on,
        control="prompt_prefix",
        prompt_prefix=THINK if on else NO_THINK,
        note=_effort_ignored(effort),
    )


def _system_flag(on: bool, effort: Effort | None) -> ReasoningDirective:
    return ReasoningDirective(
        enabled=on,
        control="system_prompt",
        system_prompt=THINK if on else NO_THINK,
        note=_effort_ignored(effort),
    )


def _default_family(on: bool, effort: Effort | None) -> ReasoningDirective:
    if on:
        return ReasoningDirective(
            enabled=True,
            control="model_default",
            note=_effort_ignored(effort) or "reasoning as the model's own chat template does it",
        )
    # The container checks whether the template reads the flag and reports "none" if it does not.
    return ReasoningDirective(
        enabled=False,
        control="chat_template_kwarg",
        chat_template_kwargs={"enable_thinking": False},
        note="enable_thinking=False where the chat template accepts it",
    )


def _effort_ignored(effort: Effort | None) -> str:
    return f"this family has no effort levels: '{effort}' is not applied" if effort else ""


Resolver = Callable[[bool, Effort | None], ReasoningDirective]


@dataclass(frozen=True)
class Family:
    """A model family: the id fragments that identify it and how it takes reasoning."""

    name: str
    fragments: tuple[str, ...]
    resolve: Resolver
    versions: tuple[str, ...] = ()

    def matches(self, model_id: str) -> bool:
        """True when the lower-cased id holds a fragment and, if versions are named, one of them."""
        text = model_id.lower()
        return any(f in text for f in self.fragments) and (
            not self.versions or any(v in text for v in self.versions)
        )


FAMILIES: tuple[Family, ...] = (
    Family("gpt-oss", ("gpt-oss",), _gpt_oss),
    Family("qwen3", ("qwen3",), _enable_thinking_kwarg),
    Family("deepseek-r1", ("deepseek-r1",), _deepseek_r1),
    Family("hunyuan", ("hunyuan",), _hunyuan),
    Family("exaone-4", ("exaone-4",), _enable_thinking_kwarg),
    Family("nemotron-v1.5", ("nemotron",), _system_flag, versions=("v1_5", "v1.5")),
    Family("smollm3", ("smollm3",), _system_flag),
)
DEFAULT_FAMILY = Family("default", (), _default_family)

NOT_APPLICABLE = ReasoningDirective(enabled=None, control="none", note="no reasoning for this task")
NO_REASONING_MODE = ReasoningDirective(
    enabled=False, control="none", note="the model has no reasoning mode (Off (N/A))"
)


def family_of(model_id: str) -> Family:
    """The family whose fragments the model id contains (the default family otherwise)."""
    return next((f for f in FAMILIES if f.matches(model_id)), DEFAULT_FAMILY)


def resolve_directive(model_id: str, state: ReasoningState, task: Task) -> ReasoningDirective:
    """The reasoning directive for one CSV row."""
    enabled = state.enabled
    if task is not Task.TEXT_GEN or enabled is None:
        return NOT_APPLICABLE
    family = family_of(model_id)
    if state is ReasoningState.OFF_NA and family is DEFAULT_FAMILY:
        return NO_REASONING_MODE
    return family.resolve(enabled, state.effort)
