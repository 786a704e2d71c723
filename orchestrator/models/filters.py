"""Select configurations by model name, class, reasoning state and task."""

from __future__ import annotations

from collections.abc import Iterable

from orchestrator.models.config import ModelConfig


def filter_configs(
    configs: Iterable[ModelConfig],
    *,
    model_name: str | None = None,
    model_class: str | None = None,
    reasoning_state: str | None = None,
    task: str | None = None,
) -> list[ModelConfig]:
    """The configs that pass every given filter (filters AND together; None means any).

    Model name, reasoning state and task match as case-insensitive substrings (``On`` matches
    ``On (High)``); the class matches case-insensitively and exactly.
    """

    def contains(value: str, wanted: str | None) -> bool:
        return wanted is None or wanted.strip().lower() in value.lower()

    wanted_class = model_class.strip().upper() if model_class is not None else None
    return [
        c
        for c in configs
        if contains(c.model_id, model_name)
        and contains(c.reasoning_state.value, reasoning_state)
        and contains(c.task.value, task)
        and (wanted_class is None or (c.model_class or "") == wanted_class)
    ]
