"""ModelConfigParser: the models CSV as typed configs, and a command that lists them.

    from model_config_parser import ModelConfigParser
    parser = ModelConfigParser("models.csv")
    configs = parser.parse()
    filtered = parser.filter_configs(configs, model_name="gpt-oss")

Run ``python model_config_parser.py --help`` for the listing command.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path

from orchestrator.models.config import (
    ModelClass,
    ModelConfig,
    ReasoningDirective,
    ReasoningState,
    Task,
    TokenBudgets,
)
from orchestrator.models.csv_reader import read_models_csv
from orchestrator.models.filters import filter_configs

__all__ = [
    "ModelClass",
    "ModelConfig",
    "ModelConfigParser",
    "ReasoningDirective",
    "ReasoningState",
    "Task",
    "TokenBudgets",
]


class ModelConfigParser:
    """Reads one models CSV; ``parse`` validates the whole file before returning anything."""

    def __init__(self, csv_path: str | Path = "models.csv", budgets: TokenBudgets | None = None):
        self.csv_path = Path(csv_path)
        self.budgets = budgets or TokenBudgets()

    def parse(self) -> list[ModelConfig]:
        """Every row as a ``ModelConfig``; raises ``orchestrator.errors.ConfigError`` if bad."""
        return read_models_csv(self.csv_path, self.budgets)

    @staticmethod
    def filter_configs(
        configs: Iterable[ModelConfig],
        model_name: str | None = None,
        model_class: str | None = None,
        task: str | None = None,
        reasoning_state: str | None = None,
    ) -> list[ModelConfig]:
        """The configs passing every given filter; see ``orchestrator.models.filters``.

        The positional order (name, class, task, reasoning state) is the AI Energy Score parser's.
        """
        return filter_configs(
            configs,
            model_name=model_name,
            model_class=model_class,
            reasoning_state=reasoning_state,
            task=task,
        )


if __name__ == "__main__":
    from orchestrator.commands.list_models import main

    sys.exit(main())
