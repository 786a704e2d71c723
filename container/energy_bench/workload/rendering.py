"""Apply the host's reasoning directive to a prompt, exactly as given.

The directive names a mechanism (``control``) and a state; this module knows what each mechanism
writes into the prompt and checks, once per tokenizer, whether the model's chat template can take
it. Where it cannot, the run goes on and ``applied_control`` says ``none`` with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from energy_bench.config import ReasoningConfig
from energy_bench.contract import NO_THINK, THINK, THINK_EMPTY, THINK_OPEN


class ChatTokenizer(Protocol):
    """The part of a Hugging Face tokenizer that rendering uses."""

    chat_template: Any

    def apply_chat_template(self, conversation: Any, **kwargs: Any) -> Any: ...


@dataclass(frozen=True)
class AppliedReasoning:
    """How the directive was applied; recorded with every result."""

    enabled: bool | None
    requested_control: str
    applied_control: str
    effort: str | None
    uses_chat_template: bool
    template_kwargs: dict[str, Any]
    system_prompt: str | None
    prompt_prefix: str | None
    assistant_prefix: str | None
    note: str

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _template_text(tokenizer: ChatTokenizer) -> str:
    template = getattr(tokenizer, "chat_template", None)
    if isinstance(template, dict):
        return "\n".join(str(t) for t in template.values())
    return template or ""


def plan(tokenizer: ChatTokenizer, reasoning: ReasoningConfig) -> AppliedReasoning:
    """Decide, once, what rendering writes for this directive and this tokenizer."""
    template = _template_text(tokenizer)
    has_template = bool(template)
    on = reasoning.enabled
    control = reasoning.control
    kwargs: dict[str, Any] = {}
    system = prefix = assistant = None
    note = ""
    if on is None or control in ("none", "model_default"):
        pass
    elif control == "harmony":
        kwargs = {"reasoning_effort": reasoning.effort}
        if "reasoning_effort" not in template:
            note = "the chat template does not read reasoning_effort"
    elif control == "chat_template_kwarg":
        kwargs = {"enable_thinking": on}
        if "enable_thinking" not in template:
            note = "the chat template does not read enable_thinking"
    elif control == "think_prefix":
        assistant = THINK_OPEN if on else THINK_EMPTY
    elif control == "system_prompt":
        system = THINK if on else NO_THINK
    elif control == "prompt_prefix":
        prefix = THINK if on else NO_THINK
    if not has_template and (kwargs or system or assistant):
        note = "the model has no chat template"
    applied = control if not note else "none"
    if note:
        kwargs, system, assistant = {}, None, None
    return AppliedReasoning(
        enabled=on,
        requested_control=control,
        applied_control=applied,
        effort=reasoning.effort,
        uses_chat_template=has_template,
        template_kwargs=kwargs,
        system_prompt=system,
        prompt_prefix=prefix,
        assistant_prefix=assistant,
        note=note,
    )


def render(tokenizer: ChatTokenizer, prompt: str, applied: AppliedReasoning) -> str:
    """The exact text the model is given for ``prompt``."""
    user = f"{applied.prompt_prefix} {prompt}" if applied.prompt_prefix else prompt
    if not applied.uses_chat_template:
        return user
    messages = []
    if applied.system_prompt:
        messages.append({"role": "system", "content": applied.system_prompt})
    messages.append({"role": "user", "content": user})
    text = tokenizer.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=True, **applied.template_kwargs
    )
    prefix = applied.assistant_prefix
    if prefix:
        # Newer DeepSeek-R1 templates already open the think block themselves.
        if text.endswith(THINK_OPEN):
            prefix = prefix[len(THINK_OPEN) :]
        text += prefix
    return str(text)
