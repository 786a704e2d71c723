"""Apply the host's reasoning directive to a prompt, exactly as given.

The directive names a mechanism (``control``) and a state; this module knows what each mechanism
writes into the prompt and checks, once per tokenizer, whether the model's chat template can take
it. Where it cannot, the run goes on and ``applied_control`` says ``none`` with the reason. A state
given without a mechanism, or an effort the mechanism does not write, is noted the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from energy_bench.config import ReasoningConfig
from energy_bench.contract import THINK_OPEN, control_writes
from energy_bench.errors import BenchConfigError


class ChatTokenizer(Protocol):
    """The part of a Hugging Face tokenizer that rendering uses."""

    chat_template: Any

    def apply_chat_template(self, conversation: Any, **kwargs: Any) -> Any: ...


class TextTokenizer(ChatTokenizer, Protocol):
    """A tokenizer that also encodes and decodes text (for cutting prompts to a length)."""

    def __call__(self, text: Any, **kwargs: Any) -> Any: ...

    def decode(self, token_ids: Any, **kwargs: Any) -> str: ...


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
    kwargs, system, prefix, assistant = control_writes(control, on, reasoning.effort)
    # why the requested control could not be applied
    unread = [k for k in kwargs if k not in template]
    problem = f"the chat template does not read {unread[0]}" if unread else ""
    if not has_template and (kwargs or system or assistant):
        problem = "the model has no chat template"
    applied = control if not problem else "none"
    if problem:
        kwargs, system, assistant = {}, None, None
    notes = [problem] if problem else []
    if on is not None and control == "none":
        # A state without a mechanism (upstream's habit) must not pass for one that was applied.
        notes.append(
            f"scenario.reasoning={on} without scenario.reasoning_params.control: nothing was "
            "applied to the prompt (the host resolves a row's mechanism from its model family)"
        )
    if reasoning.enable_thinking is not None and control != "chat_template_kwarg":
        notes.append(
            f"scenario.reasoning_params.enable_thinking={reasoning.enable_thinking} was not "
            f"written: control {control} applies the state"
        )
    if reasoning.effort is not None and control != "harmony":
        notes.append(
            f"scenario.reasoning_params.reasoning_effort={reasoning.effort} was not applied: "
            f"only control harmony writes it (control {control})"
        )
    note = "; ".join(notes)
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


def _user_text(prompt: str, applied: AppliedReasoning) -> str:
    return f"{applied.prompt_prefix} {prompt}" if applied.prompt_prefix else prompt


def messages(prompt: str, applied: AppliedReasoning) -> list[dict[str, str]]:
    """The chat turns for ``prompt``: the directive's system prompt, if any, and the user's."""
    system = [{"role": "system", "content": applied.system_prompt}] if applied.system_prompt else []
    return [*system, {"role": "user", "content": _user_text(prompt, applied)}]


def render(tokenizer: ChatTokenizer, prompt: str, applied: AppliedReasoning) -> str:
    """The exact text the model is given for ``prompt``."""
    if not applied.uses_chat_template:
        return _user_text(prompt, applied)
    turns = messages(prompt, applied)
    text = tokenizer.apply_chat_template(
        turns, tokenize=False, add_generation_prompt=True, **applied.template_kwargs
    )
    prefix = applied.assistant_prefix
    if prefix:
        # Newer DeepSeek-R1 templates already open the think block themselves.
        if text.endswith(THINK_OPEN):
            prefix = prefix[len(THINK_OPEN) :]
        text += prefix
    return str(text)


def fit(
    tokenizer: TextTokenizer,
    prompts: Sequence[str],
    applied: AppliedReasoning,
    *,
    room: int,
    special: bool,
) -> tuple[list[str], int]:
    """Every prompt rendered in at most ``room`` tokens, and how many had to be cut.

    A prompt too long is cut in its own text, its start kept, and rendered again, so that the
    chat template's turns and generation prompt stay whole. Decoding a cut and encoding it again
    may not give back the same count: it is cut until it fits. ``special``: count the special
    tokens the tokenizer adds (as the batches will). A ``BenchConfigError`` when even an empty
    prompt is too long.
    """
    texts = [render(tokenizer, p, applied) for p in prompts]
    counts = [len(ids) for ids in tokenizer(texts, add_special_tokens=special).input_ids]
    cut = [i for i, count in enumerate(counts) if count > room]
    for i in cut:
        ids = tokenizer(prompts[i], add_special_tokens=False).input_ids
        keep, excess = len(ids), counts[i] - room
        while excess > 0:
            keep -= excess
            if keep <= 0:
                raise BenchConfigError(
                    f"scenario.generate_kwargs.max_new_tokens leaves {max(room, 0)} tokens of the "
                    "model's context for a prompt (the context less the token budget): too few "
                    "for one with its chat template, even cut"
                )
            texts[i] = render(tokenizer, tokenizer.decode(ids[:keep]), applied)
            excess = len(tokenizer(texts[i], add_special_tokens=special).input_ids) - room
    return texts, len(cut)
